/* model/quant.c -- int8 inference: quantization, calibration, the forward
 * pass and its naive reference. See quant.h. */
#include "model/quant.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/err.h"
#include "model/kernels.h"
#include "model/layers.h"
#include "model/mem.h"
#include "model/net.h"
#include "model/pool.h"
#include "model/qkernels.h"

extern const qkernel_ops qkernels_portable;
#if defined(MNISTD_KERNELS_X86)
extern const qkernel_ops qkernels_avx2;
extern const qkernel_ops qkernels_avxvnni;
extern const qkernel_ops qkernels_avx512;
#endif

static const qkernel_ops *_Atomic forced_qkernels;

void qkernels_force(const qkernel_ops *k)
{
    atomic_store(&forced_qkernels, k);
}

const qkernel_ops *qkernels(void)
{
    const qkernel_ops *forced = atomic_load(&forced_qkernels);
    if (forced)
        return forced;
#if defined(MNISTD_KERNELS_X86)
    const char *level = kernels()->name;
    if (strcmp(level, "avx512") == 0 || strcmp(level, "avx2") == 0) {
        __builtin_cpu_init();
        if (strcmp(level, "avx512") == 0 && __builtin_cpu_supports("avx512vnni"))
            return &qkernels_avx512;
        return __builtin_cpu_supports("avxvnni") ? &qkernels_avxvnni : &qkernels_avx2;
    }
#endif
    return &qkernels_portable;
}

/* ---- the FP32 steps, shared by the forward pass and its reference -------- */

/* The input image as u8: pixel * 255 rounded (exact for MNIST's k / 255);
 * img has 4 more bytes, zero, that conv1's last loads read. */
static void quantize_image(uint8_t *img, const float *x)
{
    for (int i = 0; i < NET_IN_PIXELS; i++)
        img[i] = (uint8_t)qk_u8(x[i] * 255.0f);
    memset(img + NET_IN_PIXELS, 0, 4);
}

/* fc1's output h (64) from its sums, then fc2: logits (10) */
static void head(float *logits, const int32_t *acc, const float *m, const float *c, const float *w2,
                 const float *b2)
{
    float h[QK_OC];
    for (int oc = 0; oc < QK_OC; oc++) {
        float v = (float)acc[oc] * m[oc] + c[oc];
        h[oc] = v > 0.0f ? v : 0.0f;
    }
    for (int k = 0; k < NET_CLASSES; k++) {
        float s = b2[k];
        for (int j = 0; j < QK_OC; j++)
            s += w2[k * QK_OC + j] * h[j];
        logits[k] = s;
    }
}

/* Symmetric per-output-channel quantization of w (OC, K): wq (OC, K) and
 * the scales sw (OC). */
static void quantize_weights(int8_t *wq, float *sw, const float *w, int OC, int K)
{
    for (int oc = 0; oc < OC; oc++) {
        const float *r = w + (size_t)oc * K;
        float mx = 0.0f;
        for (int k = 0; k < K; k++)
            mx = fabsf(r[k]) > mx ? fabsf(r[k]) : mx;
        const float s = mx > 0.0f ? mx / 127.0f : 1.0f;
        sw[oc] = s;
        for (int k = 0; k < K; k++) {
            long q = lrintf(r[k] / s);
            wq[(size_t)oc * K + k] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
        }
    }
}

/* The multipliers and offsets of the three requantizations (see quant.h). */
typedef struct {
    float m1[32], c1[32];
    float m2[QK_OC], c2[QK_OC], m3[QK_OC], c3[QK_OC], m4[QK_OC], c4[QK_OC];
} qsteps;

/* conv1's weights (32, 3, 3, 1) quantized, as conv1_pool reads them: w1
 * (3, 32, 4), the fourth of each row 0; their scales sw1 (32). */
static void quantize_conv1(int8_t *w1, float *sw1, const float *w)
{
    int8_t wq[32 * 9];
    quantize_weights(wq, sw1, w, 32, 9);
    for (int kh = 0; kh < 3; kh++)
        for (int oc = 0; oc < 32; oc++)
            for (int kw = 0; kw < 4; kw++)
                w1[(kh * 32 + oc) * 4 + kw] = kw < 3 ? wq[oc * 9 + kh * 3 + kw] : 0;
}

static int check_scales(const float *scales, char *err, size_t errlen)
{
    for (int i = 0; i < QUANT_NSCALES; i++)
        if (!isfinite(scales[i]) || !(scales[i] > 0.0f)) {
            err_set(err, errlen, "int8 activation scale %d is not a finite positive number", i + 1);
            return -1;
        }
    return 0;
}

static void fill_steps(qsteps *st, const net_params *p, const float *s, const float *sw1,
                       const float *sw2, const float *sw3, const float *sw4)
{
    /* the image's scale is 1/255 */
    for (int oc = 0; oc < 32; oc++) {
        st->m1[oc] = sw1[oc] / (255.0f * s[0]);
        st->c1[oc] = p->conv1_b[oc] / s[0];
    }
    for (int oc = 0; oc < QK_OC; oc++) {
        st->m2[oc] = s[0] * sw2[oc] / s[1];
        st->c2[oc] = p->conv2_b[oc] / s[1];
        st->m3[oc] = s[1] * sw3[oc] / s[2];
        st->c3[oc] = p->conv3_b[oc] / s[2];
        st->m4[oc] = s[2] * sw4[oc];
        st->c4[oc] = p->fc1_b[oc];
    }
}

/* ---- calibration ----------------------------------------------------------- */

/* The largest value of each calibrated activation over n images, into mx
 * (0 for an image-less call). The activations are those of FP32 inference
 * (model/net.c), by the same kernels: conv2 and conv3 direct on their
 * packed weights, conv2 on the 10x10 pixels its pooling reads. 0, or -1
 * with err set. */
static int calib_max(const float *params, const float *x, int n, float mx[QUANT_NSCALES], char *err,
                     size_t errlen)
{
    enum { M = 8 };
    for (int i = 0; i < QUANT_NSCALES; i++)
        mx[i] = 0.0f;
    net_params p;
    net_params_map(&p, (float *)params);
    float *wt2 = mem_aligned(sizeof(float) * 288 * 64);
    float *wt3 = mem_aligned(sizeof(float) * 576 * 64);
    float *p1 = mem_aligned(sizeof(float) * M * 13 * 13 * 32);
    float *col = mem_aligned(sizeof(float) * 100 * 288);
    float *a2 = mem_aligned(sizeof(float) * M * 100 * 64);
    float *p2 = mem_aligned(sizeof(float) * M * 25 * 64);
    float *a3 = mem_aligned(sizeof(float) * M * 9 * 64);
    int rc = -1;
    if (!wt2 || !wt3 || !p1 || !col || !a2 || !p2 || !a3) {
        err_set(err, errlen, "out of memory calibrating the int8 scales");
        goto done;
    }
    conv3x3_pack(wt2, p.conv2_w, 32, 64, 0, 288);
    conv3x3_pack(wt3, p.conv3_w, 64, 64, 0, 576);
    for (int s = 0; s < n; s += M) {
        const int m = n - s < M ? n - s : M;
        conv1_pool_forward(p1, NULL, x + (size_t)s * NET_IN_PIXELS, p.conv1_w, p.conv1_b, m);
        for (int b = 0; b < m; b++)
            conv3x3_rows_forward(a2 + b * 100 * 64, 64, col, p1 + b * 13 * 13 * 32, 13, 13, 32, wt2, 64,
                                 p.conv2_b, 64, 0, 10, 10, 1);
        maxpool2_forward(p2, NULL, a2, m, 10, 10, 64);
        for (int b = 0; b < m; b++)
            conv3x3_rows_forward(a3 + b * 9 * 64, 64, col, p2 + b * 25 * 64, 5, 5, 64, wt3, 64, p.conv3_b, 64,
                                 0, 3, 3, 1);
        const float *t[QUANT_NSCALES] = {p1, p2, a3};
        const int len[QUANT_NSCALES] = {m * 13 * 13 * 32, m * 25 * 64, m * 9 * 64};
        for (int i = 0; i < QUANT_NSCALES; i++)
            for (int j = 0; j < len[i]; j++)
                mx[i] = t[i][j] > mx[i] ? t[i][j] : mx[i];
    }
    rc = 0;
done:
    mem_free(wt2);
    mem_free(wt3);
    mem_free(p1);
    mem_free(col);
    mem_free(a2);
    mem_free(p2);
    mem_free(a3);
    return rc;
}

static int scales_of_max(const float mx[QUANT_NSCALES], float scales[QUANT_NSCALES], char *err,
                         size_t errlen)
{
    for (int i = 0; i < QUANT_NSCALES; i++) {
        if (!(mx[i] > 0.0f) || !isfinite(mx[i])) {
            err_set(err, errlen, "calibration: activation %d is zero on every image", i + 1);
            return -1;
        }
        scales[i] = mx[i] / 255.0f;
    }
    return 0;
}

int quant_calibrate(const float *params, const float *x, int n, float scales[QUANT_NSCALES], char *err,
                    size_t errlen)
{
    float mx[QUANT_NSCALES];
    if (n < 1) {
        err_set(err, errlen, "calibration needs at least one image");
        return -1;
    }
    if (calib_max(params, x, n, mx, err, errlen) != 0)
        return -1;
    return scales_of_max(mx, scales, err, errlen);
}

/* A calibration on the threads of a pool: thread tid takes a run of the
 * images, and the maxima are combined (the same scales as one thread, to
 * the bit). */
enum { CALIB_MAX_PARTS = 8 };
typedef struct {
    const float *params, *x;
    int n;
    int rc[CALIB_MAX_PARTS];
    float mx[CALIB_MAX_PARTS][QUANT_NSCALES];
    char err[CALIB_MAX_PARTS][160];
} calib_job;

static void calib_part(void *arg, int tid, int nt)
{
    calib_job *c = arg;
    const int a = (int)((long)c->n * tid / nt), b = (int)((long)c->n * (tid + 1) / nt);
    c->rc[tid] = calib_max(c->params, c->x + (size_t)a * NET_IN_PIXELS, b - a, c->mx[tid], c->err[tid],
                           sizeof c->err[tid]);
}

/* quant_calibrate on up to `threads` threads (0 = all cores). */
static int calibrate_threads(const float *params, const float *x, int n, int threads,
                             float scales[QUANT_NSCALES], char *err, size_t errlen)
{
    if (threads <= 0)
        threads = pool_ncores();
    int parts = threads < CALIB_MAX_PARTS ? threads : CALIB_MAX_PARTS;
    if (parts > n)
        parts = n;
    pool *p = parts > 1 ? pool_create(parts) : NULL;
    if (!p)  /* one thread, or no thread could be started */
        return quant_calibrate(params, x, n, scales, err, errlen);
    calib_job c = {.params = params, .x = x, .n = n};
    pool_run(p, calib_part, &c);
    pool_free(p);
    float mx[QUANT_NSCALES] = {0};
    for (int t = 0; t < parts; t++) {
        if (c.rc[t] != 0) {
            err_set(err, errlen, "%s", c.err[t]);
            return -1;
        }
        for (int i = 0; i < QUANT_NSCALES; i++)
            mx[i] = c.mx[t][i] > mx[i] ? c.mx[t][i] : mx[i];
    }
    return scales_of_max(mx, scales, err, errlen);
}

int quant_calibrate_set(const float *params, const mnist_set *train, int threads,
                        float scales[QUANT_NSCALES], char *err, size_t errlen)
{
    if (!train || train->n < 1 || train->rows * train->cols != NET_IN_PIXELS) {
        err_set(err, errlen, "calibration needs 28x28 training images");
        return -1;
    }
    const int n = train->n < QUANT_CALIB_IMAGES ? train->n : QUANT_CALIB_IMAGES;
    float *x = mem_aligned(sizeof(float) * (size_t)n * NET_IN_PIXELS);
    if (!x) {
        err_set(err, errlen, "out of memory calibrating the int8 scales");
        return -1;
    }
    mnist_to_float(train, 0, n, x);
    int rc = calibrate_threads(params, x, n, threads, scales, err, errlen);
    mem_free(x);
    return rc;
}

/* ---- the context ------------------------------------------------------------ */

#define QMB 8
enum { P1 = 13 * 13 * 32, A2 = 100 * QK_OC, P2 = 25 * QK_OC, A3 = 9 * QK_OC };

typedef struct {
    uint8_t *img;   /* one image as u8 (+4 bytes) */
    uint8_t *p1q;   /* (13, 13, 32) conv1's pooled output */
    int32_t *acc;   /* (10, 10, 64) conv2's sums of one image, then conv3's (3, 3, 64) */
    uint8_t *p2q;   /* (5, 5, 64) */
    uint8_t *a3q;   /* (QMB, 576) conv3's output, fc1's input */
    int32_t *acc4;  /* (QMB, 64) fc1's sums */
    float *logits;  /* (QMB, 10) */
} qws;

struct qnet_ctx {
    int max_batch;
    pool *pool;
    qws ws[64];
    const qkernel_ops *k; /* the level the weights are packed for */
    void *w2, *w3, *w4;   /* packed conv2, conv3, fc1 weights */
    int8_t *wq;           /* scratch: one quantized weight matrix */
    int8_t w1[3 * 32 * 4];
    qsteps st;
    float fc2_w[640], fc2_b[10];
    int ready;
    /* the current job */
    const float *x;
    float *probs, *logits;
    int B;
};

/* The packed size of the largest level's layout (16-bit) for K. */
static size_t packed_max(int K)
{
    return (size_t)K * QK_OC * sizeof(int16_t);
}

qnet_ctx *qnet_ctx_create(int max_batch, int threads)
{
    if (max_batch < 1)
        return NULL;
    qnet_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    if (threads <= 0)
        threads = pool_ncores();
    if (threads > 64)
        threads = 64;
    c->max_batch = max_batch;
    c->pool = pool_create(threads);
    c->w2 = mem_aligned(packed_max(288));
    c->w3 = mem_aligned(packed_max(576));
    c->w4 = mem_aligned(packed_max(576));
    c->wq = mem_aligned(576 * QK_OC);
    if (!c->pool || !c->w2 || !c->w3 || !c->w4 || !c->wq) {
        qnet_ctx_free(c);
        return NULL;
    }
    for (int t = 0; t < pool_size(c->pool); t++) {
        qws *w = &c->ws[t];
        w->img = mem_aligned(NET_IN_PIXELS + 4);
        w->p1q = mem_aligned(P1);
        w->acc = mem_aligned(sizeof(int32_t) * A2);
        w->p2q = mem_aligned(P2);
        w->a3q = mem_aligned(QMB * A3);
        w->acc4 = mem_aligned(sizeof(int32_t) * QMB * QK_OC);
        w->logits = mem_aligned(sizeof(float) * QMB * NET_CLASSES);
        if (!w->img || !w->p1q || !w->acc || !w->p2q || !w->a3q || !w->acc4 || !w->logits) {
            qnet_ctx_free(c);
            return NULL;
        }
    }
    return c;
}

void qnet_ctx_free(qnet_ctx *c)
{
    if (!c)
        return;
    for (int t = 0; t < 64; t++) {
        qws *w = &c->ws[t];
        mem_free(w->img);
        mem_free(w->p1q);
        mem_free(w->acc);
        mem_free(w->p2q);
        mem_free(w->a3q);
        mem_free(w->acc4);
        mem_free(w->logits);
    }
    pool_free(c->pool);
    mem_free(c->w2);
    mem_free(c->w3);
    mem_free(c->w4);
    mem_free(c->wq);
    free(c);
}

int qnet_prepare(qnet_ctx *c, const float *params, const float scales[QUANT_NSCALES], char *err,
                 size_t errlen)
{
    c->ready = 0;
    if (check_scales(scales, err, errlen) != 0)
        return -1;
    net_params p;
    net_params_map(&p, (float *)params);
    float sw1[32], sw2[QK_OC], sw3[QK_OC], sw4[QK_OC];
    c->k = qkernels();
    quantize_conv1(c->w1, sw1, p.conv1_w);
    quantize_weights(c->wq, sw2, p.conv2_w, QK_OC, 288);
    c->k->pack(c->w2, c->wq, 288);
    quantize_weights(c->wq, sw3, p.conv3_w, QK_OC, 576);
    c->k->pack(c->w3, c->wq, 576);
    quantize_weights(c->wq, sw4, p.fc1_w, QK_OC, 576);
    c->k->pack(c->w4, c->wq, 576);
    fill_steps(&c->st, &p, scales, sw1, sw2, sw3, sw4);
    memcpy(c->fc2_w, p.fc2_w, sizeof c->fc2_w);
    memcpy(c->fc2_b, p.fc2_b, sizeof c->fc2_b);
    c->ready = 1;
    return 0;
}

/* The tap offsets of a 3x3 window in an (H, W, C) image. */
static void taps3x3(int *off, int W, int C)
{
    for (int t = 0; t < 9; t++)
        off[t] = ((t / 3) * W + t % 3) * C;
}

/* Sums of the valid 3x3 convolution, rows 0..OH-1 and columns 0..OW-1. */
static void conv_sums(const qkernel_ops *k, int32_t *out, const uint8_t *in, int W, int C, int OH,
                      int OW, const void *wp)
{
    const uint8_t *base[100];
    int off[9];
    taps3x3(off, W, C);
    for (int y = 0; y < OH; y++)
        for (int x = 0; x < OW; x++)
            base[y * OW + x] = in + (y * W + x) * C;
    k->qdot(out, base, OH * OW, off, 9, C, wp);
}

/* m <= QMB images through the whole network; logits (m, 10) in w. */
static void qforward_mb(qnet_ctx *c, qws *w, const float *x, int m)
{
    const qkernel_ops *k = c->k;
    const uint8_t *base[QMB];
    const int off0 = 0;
    for (int b = 0; b < m; b++) {
        quantize_image(w->img, x + (size_t)b * NET_IN_PIXELS);
        k->conv1_pool(w->p1q, w->img, c->w1, c->st.m1, c->st.c1);
        conv_sums(k, w->acc, w->p1q, 13, 32, 10, 10, c->w2);
        k->pool_requant(w->p2q, w->acc, c->st.m2, c->st.c2);
        conv_sums(k, w->acc, w->p2q, 5, 64, 3, 3, c->w3);
        k->requant(w->a3q + b * A3, w->acc, c->st.m3, c->st.c3, 9);
        base[b] = w->a3q + b * A3;
    }
    k->qdot(w->acc4, base, m, &off0, 1, A3, c->w4);
    for (int b = 0; b < m; b++)
        head(w->logits + b * NET_CLASSES, w->acc4 + b * QK_OC, c->st.m4, c->st.c4, c->fc2_w, c->fc2_b);
}

static void qforward_task(void *arg, int tid, int n)
{
    qnet_ctx *c = arg;
    qws *w = &c->ws[tid];
    int lo = (int)((long)c->B * tid / n), hi = (int)((long)c->B * (tid + 1) / n);
    for (int s = lo; s < hi; s += QMB) {
        const int m = hi - s < QMB ? hi - s : QMB;
        qforward_mb(c, w, c->x + (size_t)s * NET_IN_PIXELS, m);
        softmax_forward(c->probs + (size_t)s * NET_CLASSES, w->logits, m);
        if (c->logits)
            memcpy(c->logits + (size_t)s * NET_CLASSES, w->logits, sizeof(float) * NET_CLASSES * m);
    }
}

int qnet_forward(qnet_ctx *c, const float *x, int B, float *probs, float *logits)
{
    if (!c || !c->ready || B < 1 || B > c->max_batch)
        return -1;
    c->x = x;
    c->probs = probs;
    c->logits = logits;
    c->B = B;
    /* one image is too little work to share (a few microseconds) */
    if (B == 1 || pool_size(c->pool) == 1)
        qforward_task(c, 0, 1);
    else
        pool_run(c->pool, qforward_task, c);
    return 0;
}

/* ---- evaluation and metadata ------------------------------------------------ */

int quant_accuracy(const float *params, const float scales[QUANT_NSCALES], const mnist_set *set,
                   int threads, double *accuracy, char *err, size_t errlen)
{
    enum { BS = 256 };
    if (!set || set->n < 1 || set->rows * set->cols != NET_IN_PIXELS) {
        err_set(err, errlen, "evaluation set is empty or not 28x28");
        return -1;
    }
    qnet_ctx *c = qnet_ctx_create(BS, threads);
    float *x = mem_aligned(sizeof(float) * BS * NET_IN_PIXELS);
    float *probs = mem_aligned(sizeof(float) * BS * NET_CLASSES);
    int rc = -1;
    if (!c || !x || !probs) {
        err_set(err, errlen, "out of memory evaluating in int8");
        goto done;
    }
    if (qnet_prepare(c, params, scales, err, errlen) != 0)
        goto done;
    long ok = 0;
    for (int s = 0; s < set->n; s += BS) {
        const int m = set->n - s < BS ? set->n - s : BS;
        mnist_to_float(set, s, m, x);
        qnet_forward(c, x, m, probs, NULL);
        for (int b = 0; b < m; b++)
            ok += net_argmax(probs + b * NET_CLASSES) == set->labels[s + b];
    }
    *accuracy = (double)ok / set->n;
    rc = 0;
done:
    qnet_ctx_free(c);
    mem_free(x);
    mem_free(probs);
    return rc;
}

int quant_fill_meta(ckpt_meta *meta, const float *params, const mnist_set *train,
                    const mnist_set *test, int threads, char *err, size_t errlen)
{
    float scales[QUANT_NSCALES];
    double acc = -1;
    char sbuf[96], abuf[32];
    if (quant_calibrate_set(params, train, threads, scales, err, errlen) != 0 ||
        (test && quant_accuracy(params, scales, test, threads, &acc, err, errlen) != 0))
        return -1;
    quant_scales_format(scales, sbuf, sizeof sbuf);
    snprintf(abuf, sizeof abuf, "%.6f", acc);
    ckpt_meta copy = *meta;
    if (ckpt_meta_set(&copy, QUANT_SCALES_KEY, sbuf) != 0 ||
        (test && ckpt_meta_set(&copy, QUANT_ACCURACY_KEY, abuf) != 0)) {
        err_set(err, errlen, "the model's metadata is full");
        return -1;
    }
    if (!test)
        for (int i = 0; i < copy.n; i++)
            if (strcmp(copy.key[i], QUANT_ACCURACY_KEY) == 0) {
                /* an accuracy of other scales would mislead */
                copy.n--;
                memmove(copy.key[i], copy.key[i + 1], sizeof copy.key[0] * (size_t)(copy.n - i));
                memmove(copy.val[i], copy.val[i + 1], sizeof copy.val[0] * (size_t)(copy.n - i));
                break;
            }
    *meta = copy;
    return 0;
}

/* ---- the naive reference ------------------------------------------------------ */

static void ref_conv1_pool(uint8_t *q, const uint8_t *img, const int8_t *w1, const qsteps *st)
{
    for (int py = 0; py < 13; py++)
        for (int px = 0; px < 13; px++)
            for (int oc = 0; oc < 32; oc++) {
                int32_t best = 0;
                for (int d = 0; d < 4; d++) {
                    const int y = 2 * py + d / 2, x = 2 * px + d % 2;
                    int32_t s = 0;
                    for (int kh = 0; kh < 3; kh++)
                        for (int kw = 0; kw < 3; kw++)
                            s += (int32_t)img[(y + kh) * 28 + x + kw] * (int32_t)w1[(kh * 32 + oc) * 4 + kw];
                    best = d == 0 || s > best ? s : best;
                }
                q[(py * 13 + px) * 32 + oc] = (uint8_t)qk_u8((float)best * st->m1[oc] + st->c1[oc]);
            }
}

static void ref_conv(int32_t *out, const uint8_t *in, int W, int C, const int8_t *w, int OH, int OW)
{
    for (int y = 0; y < OH; y++)
        for (int x = 0; x < OW; x++)
            for (int oc = 0; oc < QK_OC; oc++) {
                int32_t s = 0;
                for (int kh = 0; kh < 3; kh++)
                    for (int kw = 0; kw < 3; kw++)
                        for (int ci = 0; ci < C; ci++)
                            s += (int32_t)in[((y + kh) * W + x + kw) * C + ci] *
                                 (int32_t)w[((oc * 3 + kh) * 3 + kw) * C + ci];
                out[(y * OW + x) * QK_OC + oc] = s;
            }
}

static void ref_requant(uint8_t *q, const int32_t *acc, const float *m, const float *c, int n)
{
    for (int i = 0; i < n * QK_OC; i++)
        q[i] = (uint8_t)qk_u8((float)acc[i] * m[i % QK_OC] + c[i % QK_OC]);
}

int qnet_forward_ref(const float *params, const float scales[QUANT_NSCALES], const float *x, int B,
                     float *logits)
{
    if (check_scales(scales, NULL, 0) != 0)
        return -1;
    net_params p;
    net_params_map(&p, (float *)params);
    int8_t *w2 = malloc(288 * QK_OC), *w3 = malloc(576 * QK_OC), *w4 = malloc(576 * QK_OC);
    int8_t w1[3 * 32 * 4];
    uint8_t *img = malloc(NET_IN_PIXELS + 4), *p1q = malloc(P1), *p2q = malloc(P2), *a3q = malloc(A3);
    int32_t *acc = malloc(sizeof(int32_t) * 121 * QK_OC), pooled[P2]; /* conv2 all 11x11 */
    qsteps *st = malloc(sizeof *st);
    int rc = -1;
    if (!w2 || !w3 || !w4 || !img || !p1q || !p2q || !a3q || !acc || !st)
        goto done;
    float sw1[32], sw2[QK_OC], sw3[QK_OC], sw4[QK_OC];
    quantize_conv1(w1, sw1, p.conv1_w);
    quantize_weights(w2, sw2, p.conv2_w, QK_OC, 288);
    quantize_weights(w3, sw3, p.conv3_w, QK_OC, 576);
    quantize_weights(w4, sw4, p.fc1_w, QK_OC, 576);
    fill_steps(st, &p, scales, sw1, sw2, sw3, sw4);
    for (int b = 0; b < B; b++) {
        quantize_image(img, x + (size_t)b * NET_IN_PIXELS);
        ref_conv1_pool(p1q, img, w1, st);
        ref_conv(acc, p1q, 13, 32, w2, 11, 11);
        for (int y = 0; y < 5; y++)
            for (int xx = 0; xx < 5; xx++)
                for (int oc = 0; oc < QK_OC; oc++) {
                    int32_t v = INT32_MIN;
                    for (int d = 0; d < 4; d++) {
                        const int32_t a = acc[((2 * y + d / 2) * 11 + 2 * xx + d % 2) * QK_OC + oc];
                        v = a > v ? a : v;
                    }
                    pooled[(y * 5 + xx) * QK_OC + oc] = v;
                }
        ref_requant(p2q, pooled, st->m2, st->c2, 25);
        ref_conv(acc, p2q, 5, 64, w3, 3, 3);
        ref_requant(a3q, acc, st->m3, st->c3, 9);
        for (int oc = 0; oc < QK_OC; oc++) {
            int32_t s = 0;
            for (int i = 0; i < A3; i++)
                s += (int32_t)a3q[i] * (int32_t)w4[oc * A3 + i];
            acc[oc] = s;
        }
        head(logits + b * NET_CLASSES, acc, st->m4, st->c4, p.fc2_w, p.fc2_b);
    }
    rc = 0;
done:
    free(w2);
    free(w3);
    free(w4);
    free(img);
    free(p1q);
    free(p2q);
    free(a3q);
    free(acc);
    free(st);
    return rc;
}

/* ---- raw integer layers, for the tests ----------------------------------------- */

int qconv3x3_int(int32_t *out, const uint8_t *in, int H, int W, int C, const int8_t *w, int OH, int OW)
{
    const qkernel_ops *k = qkernels();
    if (C % 4 || OH > H - 2 || OW > W - 2 || OH * OW > 100)
        return -1;
    void *wp = mem_aligned(k->packed_size(9 * C));
    if (!wp)
        return -1;
    k->pack(wp, w, 9 * C);
    conv_sums(k, out, in, W, C, OH, OW, wp);
    mem_free(wp);
    return 0;
}

int qdense_int(int32_t *out, const uint8_t *in, int B, int IN, const int8_t *w)
{
    const qkernel_ops *k = qkernels();
    if (IN % 4 || B < 1)
        return -1;
    void *wp = mem_aligned(k->packed_size(IN));
    const uint8_t **base = malloc(sizeof(*base) * (size_t)B);
    if (!wp || !base) {
        mem_free(wp);
        free(base);
        return -1;
    }
    k->pack(wp, w, IN);
    for (int b = 0; b < B; b++)
        base[b] = in + (size_t)b * IN;
    const int off0 = 0;
    k->qdot(out, base, B, &off0, 1, IN, wp);
    mem_free(wp);
    free(base);
    return 0;
}
