/* model/net.c -- the reference CNN: parameters, forward, backward, Adam.
 *
 * Parallelism: a batch is split into one contiguous slice per thread; each
 * thread runs its slice through the whole network in micro-batches small
 * enough for its activations to stay in the core's L2 cache, and, when
 * training, accumulates its own gradient buffer. A single image is split
 * inside each layer instead (forward1_task). The buffers are summed in a
 * fixed order afterwards, so the result depends only on the inputs and the
 * thread count, never on timing. Everything is allocated in the *_create
 * functions; forward and backward never allocate. */
#include "model/net.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/kernels.h"
#include "model/layers.h"
#include "model/mem.h"
#include "model/pool.h"
#include "model/rng.h"

const net_tensor net_tensors[NET_NUM_TENSORS] = {
    {"conv1.weight", 4, {32, 3, 3, 1}, 0, 288, 9, 288},
    {"conv1.bias", 1, {32, 0, 0, 0}, 288, 32, 0, 0},
    {"conv2.weight", 4, {64, 3, 3, 32}, 320, 18432, 288, 576},
    {"conv2.bias", 1, {64, 0, 0, 0}, 18752, 64, 0, 0},
    {"conv3.weight", 4, {64, 3, 3, 64}, 18816, 36864, 576, 576},
    {"conv3.bias", 1, {64, 0, 0, 0}, 55680, 64, 0, 0},
    {"fc1.weight", 2, {64, 576, 0, 0}, 55744, 36864, 576, 64},
    {"fc1.bias", 1, {64, 0, 0, 0}, 92608, 64, 0, 0},
    {"fc2.weight", 2, {10, 64, 0, 0}, 92672, 640, 64, 10},
    {"fc2.bias", 1, {10, 0, 0, 0}, 93312, 10, 0, 0},
};

void net_params_map(net_params *p, float *flat)
{
    p->conv1_w = flat + net_tensors[0].offset;
    p->conv1_b = flat + net_tensors[1].offset;
    p->conv2_w = flat + net_tensors[2].offset;
    p->conv2_b = flat + net_tensors[3].offset;
    p->conv3_w = flat + net_tensors[4].offset;
    p->conv3_b = flat + net_tensors[5].offset;
    p->fc1_w = flat + net_tensors[6].offset;
    p->fc1_b = flat + net_tensors[7].offset;
    p->fc2_w = flat + net_tensors[8].offset;
    p->fc2_b = flat + net_tensors[9].offset;
}

void net_init(float *params, uint64_t seed)
{
    rng r;
    rng_seed(&r, seed);
    for (int t = 0; t < NET_NUM_TENSORS; t++) {
        const net_tensor *ti = &net_tensors[t];
        float *w = params + ti->offset;
        if (ti->fan_in == 0) {
            memset(w, 0, ti->count * sizeof(float));
            continue;
        }
        /* glorot-uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)) */
        float lim = sqrtf(6.0f / (float)(ti->fan_in + ti->fan_out));
        for (size_t i = 0; i < ti->count; i++)
            w[i] = (2.0f * rng_float(&r) - 1.0f) * lim;
    }
}

/* ---- per-thread workspace ------------------------------------------------ */

/* Micro-batches: the number of samples a thread pushes through all layers
 * at once. Training keeps every activation of a micro-batch for the
 * backward pass (MB_TRAIN); inference reuses its buffers layer to layer
 * (MB). Both are 8, so that a micro-batch's activations stay in a 2 MB L2
 * cache. Buffers are sized for MB, except conv2's: it runs one image at a
 * time on the 10x10 pixels its pooling reads (conv3x3_rows_forward), so its
 * output holds 100 pixels per sample and its scratch (used only where the
 * level has no direct kernel) one image's im2col. */
#define MB 8
#define MB_TRAIN 8
_Static_assert(MB_TRAIN <= MB, "the workspace buffers are sized for MB samples");

/* Sizes per sample. */
enum {
    P1 = 13 * 13 * 32, COL2 = 100 * 288, A2 = 100 * 64,
    P2 = 5 * 5 * 64, COL3 = 9 * 576, A3 = 576, H1 = 64, LG = 10,
};

typedef struct {
    float *p1, *col2, *a2, *p2, *col3, *a3, *h1, *logits, *probs;
    uint8_t *idx1, *idx2;
    /* backward */
    float *dlog, *dh1, *da3, *dcol3, *dp2, *dp1;
    float *grads;     /* NET_NUM_PARAMS, this thread's accumulator (not thread 0) */
    double loss;
    int correct;
} workspace;

static int ws_alloc(workspace *w, int training, int own_grads)
{
    memset(w, 0, sizeof(*w));
    w->p1 = mem_aligned(sizeof(float) * MB * P1);
    w->col2 = mem_aligned(sizeof(float) * COL2);  /* one image (above) */
    w->a2 = mem_aligned(sizeof(float) * MB * A2);
    w->p2 = mem_aligned(sizeof(float) * MB * P2);
    w->col3 = mem_aligned(sizeof(float) * MB * COL3);
    w->a3 = mem_aligned(sizeof(float) * MB * A3);
    w->h1 = mem_aligned(sizeof(float) * MB * H1);
    w->logits = mem_aligned(sizeof(float) * MB * LG);
    w->probs = mem_aligned(sizeof(float) * MB * LG);
    if (!w->p1 || !w->col2 || !w->a2 || !w->p2 || !w->col3 || !w->a3 || !w->h1 ||
        !w->logits || !w->probs)
        return -1;
    if (!training)
        return 0;
    w->idx1 = mem_aligned(MB * P1);
    w->idx2 = mem_aligned(MB * P2);
    w->dlog = mem_aligned(sizeof(float) * MB * LG);
    w->dh1 = mem_aligned(sizeof(float) * MB * H1);
    w->da3 = mem_aligned(sizeof(float) * MB * A3);
    w->dcol3 = mem_aligned(sizeof(float) * MB * COL3);
    w->dp2 = mem_aligned(sizeof(float) * MB * P2);
    w->dp1 = mem_aligned(sizeof(float) * MB * P1);
    if (own_grads)
        w->grads = mem_aligned(sizeof(float) * NET_NUM_PARAMS);
    if (!w->idx1 || !w->idx2 || !w->dlog || !w->dh1 || !w->da3 || !w->dcol3 || !w->dp2 ||
        !w->dp1 || (own_grads && !w->grads))
        return -1;
    return 0;
}

static void ws_free(workspace *w)
{
    float *f[] = {w->p1, w->col2, w->a2, w->p2, w->col3, w->a3, w->h1, w->logits,
                  w->probs, w->dlog, w->dh1, w->da3, w->dcol3, w->dp2, w->dp1, w->grads};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        mem_free(f[i]);
    mem_free(w->idx1);
    mem_free(w->idx2);
    memset(w, 0, sizeof(*w));
}

/* Forward of m <= MB samples for training; leaves every activation in w.
 * conv2 computes only the 10x10 pixels that its 2x2 pooling reads (row and
 * column 10 are dropped by the floor), from its packed weights wt2, into a2
 * as (10, 10, 64); conv3x3_pool_backward needs no more. */
static void forward_mb(workspace *w, const net_params *p, const float *wt2, const float *x, int m)
{
    conv1_pool_forward(w->p1, w->idx1, x, p->conv1_w, p->conv1_b, m);
    for (int b = 0; b < m; b++)
        conv3x3_rows_forward(w->a2 + b * A2, 64, w->col2, w->p1 + b * P1, 13, 13, 32,
                             wt2, 64, p->conv2_b, 64, 0, 10, 10, 1);
    maxpool2_forward(w->p2, w->idx2, w->a2, m, 10, 10, 64);
    conv3x3_forward(w->a3, w->col3, w->p2, p->conv3_w, p->conv3_b, m, 5, 5, 64, 64, 1);
    dense_forward(w->h1, w->a3, p->fc1_w, p->fc1_b, m, 576, 64, 1);
    dense_forward(w->logits, w->h1, p->fc2_w, p->fc2_b, m, 64, 10, 0);
}

/* The packed conv2 and conv3 weights of inference (conv3x3_pack). */
enum { WT2 = 288 * 64, WT3 = 576 * 64 };

/* Forward of m <= MB samples for inference: conv2 computes only the 10x10
 * pixels that its 2x2 pooling reads (row and column 10 are dropped by the
 * floor), into a2 as (10, 10, 64). */
static void infer_mb(workspace *w, const net_params *p, const float *wt2, const float *wt3,
                     const float *x, int m)
{
    conv1_pool_forward(w->p1, NULL, x, p->conv1_w, p->conv1_b, m);
    for (int b = 0; b < m; b++)
        conv3x3_rows_forward(w->a2 + b * A2, 64, w->col2, w->p1 + b * P1, 13, 13, 32,
                             wt2, 64, p->conv2_b, 64, 0, 10, 10, 1);
    maxpool2_forward(w->p2, NULL, w->a2, m, 10, 10, 64);
    for (int b = 0; b < m; b++)
        conv3x3_rows_forward(w->a3 + b * A3, 64, w->col3, w->p2 + b * P2, 5, 5, 64, wt3, 64,
                             p->conv3_b, 64, 0, 3, 3, 1);
    dense_forward(w->h1, w->a3, p->fc1_w, p->fc1_b, m, 576, 64, 1);
    dense_forward(w->logits, w->h1, p->fc2_w, p->fc2_b, m, 64, 10, 0);
}

/* Backward of the m samples forward_mb left in w; dlog holds d(loss)/d(logits).
 * Accumulates into g. */
static void backward_mb(workspace *w, const net_params *p, net_params *g, const float *x, int m)
{
    dense_backward(w->dh1, g->fc2_w, g->fc2_b, w->dlog, w->h1, p->fc2_w, m, 64, 10);
    relu_backward_inplace(w->dh1, w->h1, m * H1);
    dense_backward(w->da3, g->fc1_w, g->fc1_b, w->dh1, w->a3, p->fc1_w, m, 576, 64);
    relu_backward_inplace(w->da3, w->a3, m * A3);
    conv3x3_backward(w->dp2, g->conv3_w, g->conv3_b, w->dcol3, w->da3, w->p2, w->col3,
                     p->conv3_w, m, 5, 5, 64, 64);
    conv3x3_pool_backward(w->dp1, g->conv2_w, g->conv2_b, w->dp2, w->idx2, w->p2, w->p1,
                          p->conv2_w, m, 13, 13, 32, 64);
    conv1_pool_backward(g->conv1_w, g->conv1_b, w->dp1, w->idx1, w->p1, x, m);
}

/* Backward of the m samples forward_mb left in w to the input alone (no
 * parameter gradient); dlog holds d(output)/d(logits). dx (m,784) is
 * overwritten. */
static void backward_input_mb(workspace *w, const net_params *p, float *dx, int m)
{
    dense_backward(w->dh1, NULL, NULL, w->dlog, w->h1, p->fc2_w, m, 64, 10);
    relu_backward_inplace(w->dh1, w->h1, m * H1);
    dense_backward(w->da3, NULL, NULL, w->dh1, w->a3, p->fc1_w, m, 576, 64);
    relu_backward_inplace(w->da3, w->a3, m * A3);
    conv3x3_backward(w->dp2, NULL, NULL, w->dcol3, w->da3, w->p2, w->col3, p->conv3_w, m, 5, 5,
                     64, 64);
    conv3x3_pool_backward(w->dp1, NULL, NULL, w->dp2, w->idx2, w->p2, w->p1, p->conv2_w, m, 13,
                          13, 32, 64);
    conv1_pool_backward_input(dx, w->dp1, w->idx1, w->p1, p->conv1_w, m);
}

/* ---- inference ----------------------------------------------------------- */

/* BLAS runs single-threaded inside our threads: see layers.c. */
static void blas_single_thread(void)
{
    openblas_set_num_threads(1);
}

/* What both contexts hold: the threads and one workspace per thread. */
typedef struct {
    int max_batch;
    pool *pool;
    workspace ws[64];
} ctx_base;

static void base_free(ctx_base *b)
{
    for (int t = 0; t < 64; t++)
        ws_free(&b->ws[t]);
    pool_free(b->pool);
}

/* Creates the threads and workspaces (with training buffers when training;
 * threads other than 0 get their own gradient buffer). 0 or -1. */
static int base_init(ctx_base *b, int max_batch, int threads, int training)
{
    blas_single_thread();
    if (threads <= 0)
        threads = pool_ncores();
    if (threads > 64)
        threads = 64;
    b->max_batch = max_batch;
    b->pool = pool_create(threads);
    if (!b->pool)
        return -1;
    for (int t = 0; t < pool_size(b->pool); t++)
        if (ws_alloc(&b->ws[t], training, training && t > 0) != 0)
            return -1;
    return 0;
}

struct net_ctx {
    ctx_base b;
    /* the current job */
    const float *params, *x;
    float *probs, *logits;
    int B;
    pool_barrier barrier; /* between the layers of one image split across threads */
    atomic_int late;      /* a thread of the current image waited long at the barrier */
    int solo;             /* images still to run on the caller alone after that */
    float *wt2, *wt3;      /* the packed conv2 and conv3 weights */
    const float *prepared; /* the parameters they hold across calls (net_ctx_prepare) */
    int pack;              /* whether the current job packs them */
};

net_ctx *net_ctx_create(int max_batch, int threads)
{
    if (max_batch < 1)
        return NULL;
    net_ctx *c = calloc(1, sizeof(*c));
    if (c && (base_init(&c->b, max_batch, threads, 0) != 0 ||
              !(c->wt2 = mem_aligned(sizeof(float) * WT2)) ||
              !(c->wt3 = mem_aligned(sizeof(float) * WT3)))) {
        net_ctx_free(c);
        c = NULL;
    }
    return c;
}

void net_ctx_free(net_ctx *c)
{
    if (!c)
        return;
    base_free(&c->b);
    mem_free(c->wt2);
    mem_free(c->wt3);
    free(c);
}

/* Packs the rows of the conv weights that thread tid of n packs. */
static void pack_part(net_ctx *c, const float *params, int tid, int n)
{
    net_params p;
    net_params_map(&p, (float *)params);
    /* in whole tiles of 16 rows */
    conv3x3_pack(c->wt2, p.conv2_w, 32, 64, 16 * (18 * tid / n), 16 * (18 * (tid + 1) / n));
    conv3x3_pack(c->wt3, p.conv3_w, 64, 64, 16 * (36 * tid / n), 16 * (36 * (tid + 1) / n));
}

void net_ctx_prepare(net_ctx *c, const float *params)
{
    if (!c)
        return;
    c->prepared = params;
    if (params)
        pack_part(c, params, 0, 1);
}

static void forward_task(void *arg, int tid, int n)
{
    net_ctx *c = arg;
    workspace *w = &c->b.ws[tid];
    net_params p;
    net_params_map(&p, (float *)c->params);
    int lo = (int)((long)c->B * tid / n), hi = (int)((long)c->B * (tid + 1) / n);
    for (int s = lo; s < hi; s += MB) {
        int m = hi - s < MB ? hi - s : MB;
        infer_mb(w, &p, c->wt2, c->wt3, c->x + (size_t)s * NET_IN_PIXELS, m);
        softmax_forward(c->probs + (size_t)s * 10, w->logits, m);
        if (c->logits)
            memcpy(c->logits + (size_t)s * 10, w->logits, sizeof(float) * 10 * m);
    }
}

/* Images run on the caller alone after a split one found the other cores
 * busy, before splitting is tried again. */
#define SOLO_IMAGES 256

/* One image split across the n threads, layer by layer: the pooled rows of
 * conv1, the rows of conv2 (only the ten that the 2x2 pooling reads), then
 * every thread pools conv2 on its own and computes its share of conv3's
 * output channels; thread 0 finishes with the dense layers. The shared
 * activations live in thread 0's workspace. */
static void forward1_task(void *arg, int tid, int n)
{
    net_ctx *c = arg;
    workspace *w0 = &c->b.ws[0], *w = &c->b.ws[tid];
    net_params p;
    net_params_map(&p, (float *)c->params);
    if (c->pack)
        pack_part(c, c->params, tid, n);
    int lo = 13 * tid / n, hi = 13 * (tid + 1) / n;
    int late = 0;
    conv1_pool_forward_rows(w0->p1, c->x, p.conv1_w, p.conv1_b, lo, hi);
    late |= pool_barrier_wait(&c->barrier, n);
    conv3x3_rows_forward(w0->a2 + 10 * tid / n * 10 * 64, 64, w->col2, w0->p1, 13, 13, 32,
                         c->wt2, 64, p.conv2_b, 64, 10 * tid / n, 10 * (tid + 1) / n, 10, 1);
    late |= pool_barrier_wait(&c->barrier, n);
    maxpool2_forward(w->p2, NULL, w0->a2, 1, 10, 10, 64);
    /* conv3's channels in slices of 16, the width of the direct kernel */
    lo = 16 * (4 * tid / n);
    hi = 16 * (4 * (tid + 1) / n);
    if (hi > lo)
        conv3x3_rows_forward(w0->a3 + lo, 64, w->col3, w->p2, 5, 5, 64, c->wt3 + lo, 64,
                             p.conv3_b + lo, hi - lo, 0, 3, 3, 1);
    late |= pool_barrier_wait(&c->barrier, n);
    if (late)
        atomic_store_explicit(&c->late, 1, memory_order_relaxed);
    if (tid != 0)
        return;
    dense_forward(w0->h1, w0->a3, p.fc1_w, p.fc1_b, 1, 576, 64, 1);
    dense_forward(w0->logits, w0->h1, p.fc2_w, p.fc2_b, 1, 64, 10, 0);
    softmax_forward(c->probs, w0->logits, 1);
    if (c->logits)
        memcpy(c->logits, w0->logits, sizeof(float) * 10);
}

int net_forward(net_ctx *c, const float *params, const float *x, int B, float *probs,
                float *logits)
{
    if (!c || B < 1 || B > c->b.max_batch)
        return -1;
    c->params = params;
    c->x = x;
    c->probs = probs;
    c->logits = logits;
    c->B = B;
    c->pack = !params || params != c->prepared;
    if (c->pack)
        c->prepared = NULL; /* the packed copy is about to be of other weights */
    if (B == 1) {
        /* Split only while the other cores answer: when they are busy with
         * other work, a barrier waits for a descheduled thread (a time
         * slice, not microseconds), so the next images run on the caller
         * alone. With the direct kernels the split changes no bit. */
        if (c->solo > 0 || pool_size(c->b.pool) == 1) {
            c->solo -= c->solo > 0;
            forward1_task(c, 0, 1);
            return 0;
        }
        atomic_store_explicit(&c->late, 0, memory_order_relaxed);
        pool_run(c->b.pool, forward1_task, c);
        if (atomic_load_explicit(&c->late, memory_order_relaxed) && kernels()->conv3x3_direct)
            c->solo = SOLO_IMAGES;
        return 0;
    }
    if (c->pack)
        pack_part(c, params, 0, 1);
    pool_run(c->b.pool, forward_task, c);
    return 0;
}

/* ---- training ------------------------------------------------------------ */

struct net_train_ctx {
    ctx_base b;
    float *wt2;             /* the packed conv2 weights of the current job */
    const float *params, *x;
    const uint8_t *labels;  /* the targets, for net_input_grads */
    float *grads, *logits;
    float *dx;              /* net_input_grads' output */
    int B;
};

net_train_ctx *net_train_ctx_create(int max_batch, int threads)
{
    if (max_batch < 1)
        return NULL;
    net_train_ctx *c = calloc(1, sizeof(*c));
    if (c && (base_init(&c->b, max_batch, threads, 1) != 0 ||
              !(c->wt2 = mem_aligned(sizeof(float) * WT2)))) {
        net_train_ctx_free(c);
        c = NULL;
    }
    return c;
}

void net_train_ctx_free(net_train_ctx *c)
{
    if (!c)
        return;
    base_free(&c->b);
    mem_free(c->wt2);
    free(c);
}

/* Sets the job's parameters and packs their conv2 weights. */
static void train_job(net_train_ctx *c, const float *params, const float *x,
                      const uint8_t *labels, int B, float *logits)
{
    c->params = params;
    c->x = x;
    c->labels = labels;
    c->logits = logits;
    c->B = B;
    conv3x3_pack(c->wt2, params + net_tensors[2].offset, 32, 64, 0, 288);
}

/* One thread's share of a job, a mini-batch at a time: the forward pass,
 * then either (net_input_grads: c->dx) the gradient of the target logits
 * with respect to the input, or (net_train_grads) the loss and its
 * gradient into this thread's accumulator. */
static void train_task(void *arg, int tid, int n)
{
    net_train_ctx *c = arg;
    workspace *w = &c->b.ws[tid];
    net_params p, g = {0};
    net_params_map(&p, (float *)c->params);
    float *gflat = c->dx ? NULL : tid == 0 ? c->grads : w->grads;
    if (gflat) {
        memset(gflat, 0, sizeof(float) * NET_NUM_PARAMS);
        net_params_map(&g, gflat);
    }
    const float scale = 1.0f / (float)c->B;
    int lo = (int)((long)c->B * tid / n), hi = (int)((long)c->B * (tid + 1) / n);
    w->loss = 0.0;
    w->correct = 0;
    for (int s = lo; s < hi; s += MB_TRAIN) {
        int m = hi - s < MB_TRAIN ? hi - s : MB_TRAIN, ok = 0;
        const float *x = c->x + (size_t)s * NET_IN_PIXELS;
        forward_mb(w, &p, c->wt2, x, m);
        if (c->logits)
            memcpy(c->logits + (size_t)s * 10, w->logits, sizeof(float) * 10 * m);
        if (c->dx) {
            memset(w->dlog, 0, sizeof(float) * 10 * m);
            for (int i = 0; i < m; i++)
                w->dlog[i * 10 + c->labels[s + i]] = 1.0f;
            backward_input_mb(w, &p, c->dx + (size_t)s * NET_IN_PIXELS, m);
            continue;
        }
        w->loss += softmax_xent_forward(w->probs, w->logits, c->labels + s, m, &ok);
        w->correct += ok;
        softmax_xent_backward(w->dlog, w->probs, c->labels + s, m, scale);
        backward_mb(w, &p, &g, x, m);
    }
}

/* Sums the other threads' gradients into thread 0's, in thread order, each
 * thread taking a slice of the parameters. */
static void reduce_task(void *arg, int tid, int n)
{
    net_train_ctx *c = arg;
    int T = pool_size(c->b.pool);
    size_t lo = (size_t)NET_NUM_PARAMS * tid / n, hi = (size_t)NET_NUM_PARAMS * (tid + 1) / n;
    for (int t = 1; t < T; t++) {
        const float *src = c->b.ws[t].grads;
        for (size_t i = lo; i < hi; i++)
            c->grads[i] += src[i];
    }
}

float net_train_grads(net_train_ctx *c, const float *params, const float *x,
                      const uint8_t *labels, int B, float *grads, float *logits, int *correct)
{
    if (!c || B < 1 || B > c->b.max_batch)
        return NAN;
    train_job(c, params, x, labels, B, logits);
    c->grads = grads;
    c->dx = NULL;
    pool_run(c->b.pool, train_task, c);
    if (pool_size(c->b.pool) > 1)
        pool_run(c->b.pool, reduce_task, c);
    double loss = 0.0;
    int ok = 0;
    for (int t = 0; t < pool_size(c->b.pool); t++) {
        loss += c->b.ws[t].loss;
        ok += c->b.ws[t].correct;
    }
    if (correct)
        *correct = ok;
    return (float)(loss / B);
}

int net_input_grads(net_train_ctx *c, const float *params, const float *x, const uint8_t *target,
                    int B, float *dx, float *logits)
{
    if (!c || B < 1 || B > c->b.max_batch)
        return -1;
    for (int i = 0; i < B; i++)
        if (target[i] >= NET_CLASSES)
            return -1;
    train_job(c, params, x, target, B, logits);
    c->dx = dx;
    pool_run(c->b.pool, train_task, c);
    return 0;
}

void net_adam_step(float *params, const float *grads, float *m, float *v, size_t n, float lr,
                   float b1, float b2, float eps, long t)
{
    const double lr_t = (double)lr * sqrt(1.0 - pow(b2, (double)t)) / (1.0 - pow(b1, (double)t));
    kernels()->adam_update(params, grads, m, v, n, (float)lr_t, b1, b2, eps);
}
