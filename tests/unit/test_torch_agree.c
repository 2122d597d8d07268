/* Agreement with PyTorch: the network's numbers against a fixture written by
 * scripts/torch_fixture.py (PyTorch, float64, stored as float32).
 *
 * The fixture holds weights in our layout, a batch of 8 images with labels,
 * the expected logits, softmax probabilities, mean cross-entropy, every
 * parameter gradient, the parameters after one Keras Adam step (t = 1) and,
 * for the small tensors, a second point (gradient at the stepped weights and
 * a second Adam step, t = 2). See the script's docstring for the format.
 *
 * Tolerances (each tensor's largest difference is printed):
 *   forward (logits, probs) and loss: max|ours - ref| <= 1e-5 * max|ref|;
 *       float32 sums of at most 576 products of O(1) terms stay near 1e-6
 *       relative, while a real bug (a layout or index error) is O(1).
 *   gradients: max|ours - ref| <= 1e-4 * max|ref| of that tensor; the
 *       weight gradients of conv1 sum 8*26*26 products, the most of any.
 *   Adam on the reference gradients: max|ours - ref| <= 1e-6 (lr / 1000):
 *       only float32 rounding of the update and of the weights (~3e-8).
 *   Adam on our own gradients (the whole step end to end): <= 0.01 * lr;
 *       the first Keras step is lr * g / (|g| + 3.2e-6), so a gradient
 *       element within rounding of zero may move by a fraction of lr.
 *   batch 1 vs the whole batch (same sample): logits within 1e-5 * max|ref|.
 *
 * Usage: test_torch_agree [fixture]   (default tests/fixtures/torch_ref.bin,
 * relative to the repository root, where tests run). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/kernels.h"
#include "model/net.h"
#include "tests/unit/test.h"

#define FIXTURE_DEFAULT "tests/fixtures/torch_ref.bin"
#define FIX_MAGIC "MNTREF01"
#define FIX_MAX_TENSORS 256
#define FIX_MAX_NAME 128

#define TOL_FWD 1e-5
#define TOL_GRAD 1e-4
#define TOL_ADAM_REF 1e-6
#define TOL_ADAM_E2E_LR 0.01
#define TOL_BATCH1 1e-5

#define LR 1e-3f
#define B1 0.9f
#define B2 0.999f
#define EPS 1e-7f

enum { FIX_F32 = 0, FIX_I16 = 1, FIX_U8 = 2 };

typedef struct {
    char name[FIX_MAX_NAME + 1];
    uint32_t dtype, ndim, dims[4];
    float scale;
    size_t count;
    const unsigned char *data;   /* into fixture.buf */
} fix_tensor;

typedef struct {
    unsigned char *buf;
    size_t len;
    int n;
    fix_tensor t[FIX_MAX_TENSORS];
} fixture;

static uint32_t rd_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static float rd_f32(const unsigned char *p)
{
    uint32_t u = rd_u32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Reads and parses the whole fixture, checking every length against the
 * file size. Returns 0, or -1 with err set; f->buf is the caller's to free
 * (also on failure). */
static int fixture_load(fixture *f, const char *path, char *err, size_t errlen)
{
    FILE *fp = NULL;
    long sz;
    size_t pos = 0;
    int rc = -1;

    memset(f, 0, sizeof *f);
    fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot open (tests run from the repository root)", path);
        goto out;
    }
    if (fseek(fp, 0, SEEK_END) != 0 || (sz = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        snprintf(err, errlen, "%s: cannot size", path);
        goto out;
    }
    f->len = (size_t)sz;
    f->buf = malloc(f->len ? f->len : 1);
    if (!f->buf || fread(f->buf, 1, f->len, fp) != f->len) {
        snprintf(err, errlen, "%s: cannot read", path);
        goto out;
    }
#define NEED(n) do { if (f->len - pos < (size_t)(n)) { \
        snprintf(err, errlen, "%s: truncated at byte %zu", path, pos); goto out; } } while (0)
    NEED(12);
    if (memcmp(f->buf, FIX_MAGIC, 8) != 0) {
        snprintf(err, errlen, "%s: bad magic", path);
        goto out;
    }
    uint32_t count = rd_u32(f->buf + 8);
    pos = 12;
    if (count > FIX_MAX_TENSORS) {
        snprintf(err, errlen, "%s: %u tensors (max %d)", path, count, FIX_MAX_TENSORS);
        goto out;
    }
    for (uint32_t i = 0; i < count; i++) {
        fix_tensor *t = &f->t[i];
        NEED(4);
        uint32_t nl = rd_u32(f->buf + pos);
        pos += 4;
        if (nl == 0 || nl > FIX_MAX_NAME) {
            snprintf(err, errlen, "%s: tensor %u: bad name length %u", path, i, nl);
            goto out;
        }
        NEED(nl);
        memcpy(t->name, f->buf + pos, nl);
        t->name[nl] = '\0';
        pos += nl;
        NEED(8);
        t->dtype = rd_u32(f->buf + pos);
        t->ndim = rd_u32(f->buf + pos + 4);
        pos += 8;
        if (t->dtype > FIX_U8 || t->ndim < 1 || t->ndim > 4) {
            snprintf(err, errlen, "%s: %s: bad dtype %u or ndim %u", path, t->name,
                     t->dtype, t->ndim);
            goto out;
        }
        NEED(4 * t->ndim);
        t->count = 1;
        for (uint32_t d = 0; d < t->ndim; d++) {
            t->dims[d] = rd_u32(f->buf + pos + 4 * d);
            if (t->dims[d] == 0 || t->dims[d] > (1u << 24) || t->count > ((size_t)1 << 32)) {
                snprintf(err, errlen, "%s: %s: bad dimension", path, t->name);
                goto out;
            }
            t->count *= t->dims[d];
        }
        pos += 4 * t->ndim;
        t->scale = 1.0f;
        if (t->dtype == FIX_I16) {
            NEED(4);
            t->scale = rd_f32(f->buf + pos);
            pos += 4;
        }
        size_t esz = t->dtype == FIX_F32 ? 4 : t->dtype == FIX_I16 ? 2 : 1;
        NEED(t->count * esz);
        t->data = f->buf + pos;
        pos += t->count * esz;
        f->n++;
    }
#undef NEED
    if (pos != f->len) {
        snprintf(err, errlen, "%s: %zu trailing bytes", path, f->len - pos);
        goto out;
    }
    rc = 0;
out:
    if (fp)
        fclose(fp);
    return rc;
}

static const fix_tensor *fixture_find(const fixture *f, const char *prefix, const char *name)
{
    char full[2 * FIX_MAX_NAME];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, full) == 0)
            return &f->t[i];
    return NULL;
}

/* Converts a fixture tensor to floats (out has t->count floats). */
static void fixture_floats(const fix_tensor *t, float *out)
{
    for (size_t i = 0; i < t->count; i++) {
        if (t->dtype == FIX_F32) {
            out[i] = rd_f32(t->data + 4 * i);
        } else if (t->dtype == FIX_I16) {
            int16_t q = (int16_t)(uint16_t)(t->data[2 * i] | t->data[2 * i + 1] << 8);
            out[i] = (float)q * t->scale;
        } else {
            out[i] = (float)t->data[i];
        }
    }
}

/* Fetches prefix+name as floats into a new array and checks its element
 * count; NULL (and a FAIL line) when missing or the wrong size. */
static float *fixture_get(const fixture *f, const char *prefix, const char *name,
                          size_t expect)
{
    const fix_tensor *t = fixture_find(f, prefix, name);
    CHECK(t != NULL, "fixture has no tensor %s%s", prefix, name);
    if (!t)
        return NULL;
    CHECK(t->count == expect, "%s%s has %zu elements, expected %zu", prefix, name,
          t->count, expect);
    if (t->count != expect)
        return NULL;
    float *out = malloc(expect * sizeof *out);
    if (out)
        fixture_floats(t, out);
    return out;
}

/* Compares n floats, prints the largest difference, and fails the current
 * check when it exceeds rel * max|ref| (or abs_tol when rel is 0). Returns
 * the largest difference. */
static double compare(const char *what, const float *ours, const float *ref, size_t n,
                      double rel, double abs_tol)
{
    double maxd = 0, maxr = 0;
    size_t at = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)ours[i] - (double)ref[i]);
        if (!isfinite(ours[i]))
            bad = 1;
        if (d > maxd || d != d) {
            maxd = d;
            at = i;
        }
        if (fabs((double)ref[i]) > maxr)
            maxr = fabs((double)ref[i]);
    }
    double tol = rel > 0 ? rel * maxr : abs_tol;
    printf("  %-22s max|diff| %.3g at [%zu] (ours %.9g, ref %.9g), max|ref| %.3g, tol %.3g\n",
           what, maxd, at, (double)ours[at], (double)ref[at], maxr, tol);
    CHECK(!bad && maxd <= tol, "%s: max|diff| %.3g > tol %.3g, or a value not finite", what, maxd, tol);
    return maxd;
}

/* Forward, loss and gradients with `threads` threads against the reference;
 * logits_out receives the batch logits of the forward pass. */
static void check_numbers(const fixture *fx, const float *params, const float *x,
                          const uint8_t *labels, int B, int threads, float *logits_out)
{
    char tname[2][64], name[64];   /* tname outlives TEST_BEGIN..TEST_END */
    float *ref = NULL, *probs = NULL, *logits = NULL, *grads = NULL, *tlogits = NULL;
    net_ctx *ctx = NULL;
    net_train_ctx *tctx = NULL;

    /* threads 0 = all cores */
    snprintf(tname[0], sizeof tname[0], threads ? "torch_forward_t%d" : "torch_forward_tall",
             threads);
    TEST_BEGIN(tname[0]);
    probs = malloc((size_t)B * NET_CLASSES * sizeof *probs);
    logits = malloc((size_t)B * NET_CLASSES * sizeof *logits);
    tlogits = malloc((size_t)B * NET_CLASSES * sizeof *tlogits);
    grads = malloc(NET_NUM_PARAMS * sizeof *grads);
    ctx = net_ctx_create(B, threads);
    tctx = net_train_ctx_create(B, threads);
    CHECK(probs && logits && tlogits && grads && ctx && tctx, "allocation failed");
    if (!(probs && logits && tlogits && grads && ctx && tctx))
        goto out;
    CHECK(net_forward(ctx, params, x, B, probs, logits) == 0, "net_forward failed");
    ref = fixture_get(fx, "", "logits", (size_t)B * NET_CLASSES);
    if (ref)
        compare("logits", logits, ref, (size_t)B * NET_CLASSES, TOL_FWD, 0);
    free(ref);
    ref = fixture_get(fx, "", "probs", (size_t)B * NET_CLASSES);
    if (ref)
        compare("probs", probs, ref, (size_t)B * NET_CLASSES, TOL_FWD, 0);
    free(ref);
    memcpy(logits_out, logits, (size_t)B * NET_CLASSES * sizeof *logits);
    TEST_END();

    snprintf(tname[1], sizeof tname[1],
             threads ? "torch_loss_grads_t%d" : "torch_loss_grads_tall", threads);
    TEST_BEGIN(tname[1]);
    int correct = -1;
    float loss = net_train_grads(tctx, params, x, labels, B, grads, tlogits, &correct);
    ref = fixture_get(fx, "", "loss", 1);
    if (ref)
        compare("loss", &loss, ref, 1, TOL_FWD, 0);
    free(ref);
    ref = fixture_get(fx, "", "logits", (size_t)B * NET_CLASSES);
    if (ref) {
        compare("logits (training)", tlogits, ref, (size_t)B * NET_CLASSES, TOL_FWD, 0);
        /* Samples whose reference argmax is clear must count the same. */
        int expect = 0, clear = 1;
        for (int b = 0; b < B; b++) {
            const float *r = ref + b * NET_CLASSES;
            int best = 0;
            for (int k = 1; k < NET_CLASSES; k++)
                if (r[k] > r[best])
                    best = k;
            for (int k = 0; k < NET_CLASSES; k++)
                if (k != best && r[best] - r[k] < 1e-4f)
                    clear = 0;
            expect += best == labels[b];
        }
        if (clear)
            CHECK(correct == expect, "correct = %d, expected %d", correct, expect);
    }
    free(ref);
    for (int i = 0; i < NET_NUM_TENSORS; i++) {
        const net_tensor *nt = &net_tensors[i];
        ref = fixture_get(fx, "grad.", nt->name, nt->count);
        if (ref) {
            snprintf(name, sizeof name, "grad %s", nt->name);
            compare(name, grads + nt->offset, ref, nt->count, TOL_GRAD, 0);
        }
        free(ref);
    }
    TEST_END();
out:
    free(probs);
    free(logits);
    free(tlogits);
    free(grads);
    net_ctx_free(ctx);
    net_train_ctx_free(tctx);
}

/* Each sample alone (batch 1) must give the logits it gets inside the batch. */
static void check_batch1(const float *params, const float *x, int B,
                         const float *batch_logits)
{
    float probs[NET_CLASSES], logits[NET_CLASSES];
    double maxd = 0, maxr = 0;
    net_ctx *ctx = net_ctx_create(1, 0);

    TEST_BEGIN("torch_batch1_vs_batch");
    CHECK(ctx != NULL, "net_ctx_create(1) failed");
    if (!ctx)
        goto out;
    CHECK(net_forward(ctx, params, x, 2, probs, logits) == -1,
          "a batch above max_batch must be refused");
    for (int b = 0; b < B; b++) {
        CHECK(net_forward(ctx, params, x + (size_t)b * NET_IN_PIXELS, 1, probs, logits) == 0,
              "net_forward(B=1) failed");
        for (int k = 0; k < NET_CLASSES; k++) {
            double r = batch_logits[b * NET_CLASSES + k];
            double d = fabs(logits[k] - r);
            maxd = d > maxd || d != d ? d : maxd;
            maxr = fabs(r) > maxr ? fabs(r) : maxr;
        }
    }
    printf("  %-22s max|diff| %.3g, max|ref| %.3g, tol %.3g\n", "logits B=1 vs B=8",
           maxd, maxr, TOL_BATCH1 * maxr);
    CHECK(maxd <= TOL_BATCH1 * maxr, "batch-1 logits differ by %.3g", maxd);
    TEST_END();
out:
    net_ctx_free(ctx);
}

/* Adam: one step on the reference gradients (isolates the optimizer), a second
 * step (t = 2) on the reference second-point gradients, the gradient at the
 * stepped weights, and one step end to end on our own gradients. */
static void check_adam(const fixture *fx, const float *params0, const float *x,
                       const uint8_t *labels, int B)
{
    char name[64];
    float *p = calloc(NET_NUM_PARAMS, sizeof *p), *g = calloc(NET_NUM_PARAMS, sizeof *g);
    float *m = calloc(NET_NUM_PARAMS, sizeof *m), *v = calloc(NET_NUM_PARAMS, sizeof *v);
    float *pref1 = calloc(NET_NUM_PARAMS, sizeof *pref1);
    float *g2 = calloc(NET_NUM_PARAMS, sizeof *g2);
    float *ref = NULL;
    net_train_ctx *tctx = net_train_ctx_create(B, 0);
    int have_ref = 1;

    TEST_BEGIN("torch_adam_step1");
    CHECK(p && g && m && v && pref1 && g2 && tctx, "allocation failed");
    if (!(p && g && m && v && pref1 && g2 && tctx))
        goto out;
    memcpy(p, params0, NET_NUM_PARAMS * sizeof *p);
    for (int i = 0; i < NET_NUM_TENSORS; i++) {
        const net_tensor *nt = &net_tensors[i];
        ref = fixture_get(fx, "grad.", nt->name, nt->count);
        if (ref)
            memcpy(g + nt->offset, ref, nt->count * sizeof *ref);
        else
            have_ref = 0;
        free(ref);
        ref = fixture_get(fx, "adam1.", nt->name, nt->count);
        if (ref)
            memcpy(pref1 + nt->offset, ref, nt->count * sizeof *ref);
        else
            have_ref = 0;
        free(ref);
        ref = NULL;
    }
    if (!have_ref)
        goto out;
    net_adam_step(p, g, m, v, NET_NUM_PARAMS, LR, B1, B2, EPS, 1);
    for (int i = 0; i < NET_NUM_TENSORS; i++) {
        const net_tensor *nt = &net_tensors[i];
        snprintf(name, sizeof name, "adam1 %s", nt->name);
        compare(name, p + nt->offset, pref1 + nt->offset, nt->count, 0, TOL_ADAM_REF);
    }
    TEST_END();

    /* Second point: our gradient at the reference stepped weights, then step
     * t = 2 from our step-1 state with the reference gradient there. */
    TEST_BEGIN("torch_adam_step2");
    float loss2 = net_train_grads(tctx, pref1, x, labels, B, g2, NULL, NULL);
    ref = fixture_get(fx, "", "loss2", 1);
    if (ref)
        compare("loss2", &loss2, ref, 1, TOL_FWD, 0);
    free(ref);
    ref = NULL;
    int n2 = 0;
    for (int i = 0; i < NET_NUM_TENSORS; i++) {
        const net_tensor *nt = &net_tensors[i];
        if (!fixture_find(fx, "grad2.", nt->name))
            continue;
        ref = fixture_get(fx, "grad2.", nt->name, nt->count);
        if (ref) {
            snprintf(name, sizeof name, "grad2 %s", nt->name);
            compare(name, g2 + nt->offset, ref, nt->count, TOL_GRAD, 0);
            memcpy(g2 + nt->offset, ref, nt->count * sizeof *ref);
            n2++;
        }
        free(ref);
        ref = NULL;
    }
    CHECK(n2 >= 5, "fixture has second-point data for only %d tensors", n2);
    net_adam_step(p, g2, m, v, NET_NUM_PARAMS, LR, B1, B2, EPS, 2);
    for (int i = 0; i < NET_NUM_TENSORS; i++) {
        const net_tensor *nt = &net_tensors[i];
        if (!fixture_find(fx, "adam2.", nt->name))
            continue;
        ref = fixture_get(fx, "adam2.", nt->name, nt->count);
        if (ref) {
            snprintf(name, sizeof name, "adam2 %s", nt->name);
            compare(name, p + nt->offset, ref, nt->count, 0, TOL_ADAM_REF);
        }
        free(ref);
        ref = NULL;
    }
    TEST_END();

    TEST_BEGIN("torch_adam_end_to_end");
    memcpy(p, params0, NET_NUM_PARAMS * sizeof *p);
    memset(m, 0, NET_NUM_PARAMS * sizeof *m);
    memset(v, 0, NET_NUM_PARAMS * sizeof *v);
    float loss = net_train_grads(tctx, p, x, labels, B, g, NULL, NULL);
    CHECK(isfinite(loss), "loss %g", (double)loss);
    net_adam_step(p, g, m, v, NET_NUM_PARAMS, LR, B1, B2, EPS, 1);
    for (int i = 0; i < NET_NUM_TENSORS; i++) {
        const net_tensor *nt = &net_tensors[i];
        snprintf(name, sizeof name, "step %s", nt->name);
        compare(name, p + nt->offset, pref1 + nt->offset, nt->count, 0,
                TOL_ADAM_E2E_LR * LR);
    }
    TEST_END();
out:
    free(p);
    free(g);
    free(m);
    free(v);
    free(pref1);
    free(g2);
    net_train_ctx_free(tctx);
}

int main(int argc, char **argv)
{
    /* MNISTD_KERNELS picks the level (tests/run.sh runs each one). */
    printf("  kernels: %s\n", kernels()->name);
    const char *path = argc > 1 ? argv[1] : FIXTURE_DEFAULT;
    char err[256];
    fixture *fx = calloc(1, sizeof *fx);
    float *params = calloc(NET_NUM_PARAMS, sizeof *params);
    float *x = NULL, *lab = NULL, *batch_logits = NULL;
    uint8_t *labels = NULL;
    int B = 0;

    TEST_BEGIN("torch_fixture_layout");
    CHECK(fx && params, "allocation failed");
    if (!fx || !params)
        goto out;
    if (fixture_load(fx, path, err, sizeof err) != 0) {
        CHECK(0, "%s", err);
        goto out;
    }
    const fix_tensor *tin = fixture_find(fx, "", "input");
    CHECK(tin && tin->ndim == 4 && tin->dims[1] == NET_IN_H && tin->dims[2] == NET_IN_W &&
              tin->dims[3] == 1, "input tensor missing or not (B,28,28,1)");
    if (!tin || tin->ndim != 4 || tin->count != (size_t)tin->dims[0] * NET_IN_PIXELS)
        goto out;
    B = (int)tin->dims[0];
    x = fixture_get(fx, "", "input", (size_t)B * NET_IN_PIXELS);
    lab = fixture_get(fx, "", "labels", (size_t)B);
    labels = malloc((size_t)B);
    batch_logits = malloc((size_t)B * NET_CLASSES * sizeof *batch_logits);
    if (!x || !lab || !labels || !batch_logits)
        goto out;
    for (int b = 0; b < B; b++) {
        CHECK(lab[b] >= 0 && lab[b] <= 9, "label %g", (double)lab[b]);
        labels[b] = (uint8_t)lab[b];
    }
    /* Every parameter tensor of the network, by name, with our shape. */
    size_t total = 0;
    for (int i = 0; i < NET_NUM_TENSORS; i++) {
        const net_tensor *nt = &net_tensors[i];
        const fix_tensor *t = fixture_find(fx, "param.", nt->name);
        CHECK(t != NULL, "fixture has no param.%s", nt->name);
        if (!t)
            continue;
        int same = (int)t->ndim == nt->ndim;
        for (int d = 0; same && d < nt->ndim; d++)
            same = (int)t->dims[d] == nt->shape[d];
        CHECK(same, "param.%s: fixture shape differs from net_tensors[]", nt->name);
        CHECK(nt->offset + nt->count <= NET_NUM_PARAMS, "%s: offset out of range", nt->name);
        if (same && nt->offset + nt->count <= NET_NUM_PARAMS)
            fixture_floats(t, params + nt->offset);
        total += nt->count;
    }
    CHECK(total == NET_NUM_PARAMS, "net_tensors[] covers %zu of %d params", total,
          NET_NUM_PARAMS);
    printf("  %s: %d tensors, batch %d\n", path, fx->n, B);
    int layout_ok = !t_cur_failed_;
    TEST_END();
    if (!layout_ok)
        goto out;

    check_numbers(fx, params, x, labels, B, 1, batch_logits);
    check_numbers(fx, params, x, labels, B, 0, batch_logits);
    check_batch1(params, x, B, batch_logits);
    check_adam(fx, params, x, labels, B);
out:
    if (fx)
        free(fx->buf);
    free(fx);
    free(params);
    free(x);
    free(lab);
    free(labels);
    free(batch_logits);
    TEST_EXIT();
}
