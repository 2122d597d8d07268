/* The whole network: finite-difference gradient check through every layer,
 * batch independence, determinism, thread-count agreement, Adam, and (with
 * MNISTD_DATA) a short training run that must clearly learn. */
#include "tests/unit/test.h"

#include <stdint.h>

#include "model/checkpoint.h"
#include "model/kernels.h"
#include "model/mnist.h"
#include "model/net.h"
#include "model/rng.h"
#include "model/train.h"

static rng R;

/* Smooth-ish synthetic digits: random strokes, so relu/maxpool see real
 * structure rather than noise. */
static void make_batch(float *x, uint8_t *y, int B)
{
    for (int b = 0; b < B; b++) {
        float *im = x + b * 784;
        for (int i = 0; i < 784; i++)
            im[i] = 0.05f * rng_float(&R);
        for (int s = 0; s < 3; s++) {
            float cx = 6 + 16 * rng_float(&R), cy = 6 + 16 * rng_float(&R);
            float dx = 2 * rng_float(&R) - 1, dy = 2 * rng_float(&R) - 1;
            for (int t = 0; t < 12; t++) {
                int px = (int)(cx + dx * t), py = (int)(cy + dy * t);
                if (px >= 0 && px < 28 && py >= 0 && py < 28)
                    im[py * 28 + px] = 0.5f + 0.5f * rng_float(&R);
            }
        }
        y[b] = (uint8_t)rng_below(&R, 10);
    }
}


/* The whole network in double precision, written out naively: the
 * reference the finite differences are taken on, so that float rounding does
 * not drown them and steps can be tiny (few relu/max-pool kinks inside). */
static void conv_d(double *out, const double *in, const float *w, const float *b, int H, int W,
                   int C, int OC)
{
    int OH = H - 2, OW = W - 2;
    for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++)
            for (int oc = 0; oc < OC; oc++) {
                double s = b[oc];
                for (int kh = 0; kh < 3; kh++)
                    for (int kw = 0; kw < 3; kw++)
                        for (int c = 0; c < C; c++)
                            s += in[((oh + kh) * W + ow + kw) * C + c] *
                                 (double)w[((oc * 3 + kh) * 3 + kw) * C + c];
                out[(oh * OW + ow) * OC + oc] = s > 0 ? s : 0;
            }
}
static void pool_d(double *out, const double *in, int H, int W, int C)
{
    for (int oh = 0; oh < H / 2; oh++)
        for (int ow = 0; ow < W / 2; ow++)
            for (int c = 0; c < C; c++) {
                double m = -1e300;
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++) {
                        double v = in[((2 * oh + i) * W + 2 * ow + j) * C + c];
                        m = v > m ? v : m;
                    }
                out[(oh * (W / 2) + ow) * C + c] = m;
            }
}
/* The 10 logits of one sample x (784 floats). */
static void logits_d(float *pf, const float *x, double z[10])
{
    static double in[784], a1[26 * 26 * 32], p1[13 * 13 * 32], a2[121 * 64], p2[25 * 64];
    static double a3[576], h1[64];
    net_params p;
    net_params_map(&p, pf);
    for (int i = 0; i < 784; i++)
        in[i] = x[i];
    conv_d(a1, in, p.conv1_w, p.conv1_b, 28, 28, 1, 32);
    pool_d(p1, a1, 26, 26, 32);
    conv_d(a2, p1, p.conv2_w, p.conv2_b, 13, 13, 32, 64);
    pool_d(p2, a2, 11, 11, 64);
    conv_d(a3, p2, p.conv3_w, p.conv3_b, 5, 5, 64, 64);
    for (int o = 0; o < 64; o++) {
        double s = p.fc1_b[o];
        for (int i = 0; i < 576; i++)
            s += a3[i] * (double)p.fc1_w[o * 576 + i];
        h1[o] = s > 0 ? s : 0;
    }
    for (int o = 0; o < 10; o++) {
        double s = p.fc2_b[o];
        for (int i = 0; i < 64; i++)
            s += h1[i] * (double)p.fc2_w[o * 64 + i];
        z[o] = s;
    }
}

static double loss_d(float *pf, const float *x, const uint8_t *y, int B)
{
    double total = 0;
    for (int b = 0; b < B; b++) {
        double z[10], m = -1e300, se = 0;
        logits_d(pf, x + b * 784, z);
        for (int o = 0; o < 10; o++)
            m = z[o] > m ? z[o] : m;
        for (int o = 0; o < 10; o++)
            se += exp(z[o] - m);
        total += log(se) - (z[y[b]] - m);
    }
    return total / B;
}

/* The NS entries of g (n floats) with the largest magnitudes, largest
 * first, into pick; returns how many (min(n, NS)). Finite differences in
 * float32 carry ~1e-4 absolute noise, which would swamp tiny gradients. */
enum { NS = 8 };
static int pick_largest(const float *g, size_t n, size_t pick[NS])
{
    int np = 0;
    for (size_t i = 0; i < n; i++) {
        if (np == NS && fabsf(g[i]) <= fabsf(g[pick[NS - 1]]))
            continue;
        int pos = np < NS ? np++ : NS - 1;
        while (pos > 0 && fabsf(g[pick[pos - 1]]) < fabsf(g[i])) {
            pick[pos] = pick[pos - 1];
            pos--;
        }
        pick[pos] = i;
    }
    return np;
}

/* What a finite difference is taken of: the mean loss of a batch, or one
 * logit of one sample (target >= 0), as a function of p and x. */
typedef struct {
    float *p, *x;
    const uint8_t *y;
    int B, target;
} fd_fn;

static double fd_eval(const fd_fn *f)
{
    if (f->target < 0)
        return loss_d(f->p, f->x, f->y, f->B);
    double z[10];
    logits_d(f->p, f->x, z);
    return z[f->target];
}

/* Compares the analytic gradients g[pick[s]] of the np variables v[pick[s]]
 * (parameters or pixels) with central differences of f in double. A relu or
 * max-pool kink inside the step makes a difference quotient meaningless:
 * such entries are detected by comparing two step sizes, and skipped (at
 * most half of them may be). Returns the relative error over the others. */
static double fd_compare(const fd_fn *f, float *v, const float *g, const size_t *pick, int np,
                         const char *name)
{
    double num = 0, den = 0;
    int kinks = 0;
    for (int s = 0; s < np; s++) {
        size_t i = pick[s];
        float keep = v[i];
        double fdh[2];
        const float hs[2] = {4e-6f, 1e-6f};
        for (int k = 0; k < 2; k++) {
            /* the step actually taken in float32, not the one asked */
            v[i] = keep + hs[k];
            double up = (double)v[i] - keep, lp = fd_eval(f);
            v[i] = keep - hs[k];
            double dn = keep - (double)v[i], lm = fd_eval(f);
            v[i] = keep;
            fdh[k] = (lp - lm) / (up + dn);
        }
        if (getenv("GC_DEBUG"))
            printf("    %s[%zu] fd %.6g %.6g analytic %.6g\n", name, i, fdh[0], fdh[1], g[i]);
        if (fabs(fdh[0] - fdh[1]) > 1e-3 * fmax(fabs(fdh[0]), fabs(fdh[1])) + 1e-6) {
            kinks++;
            continue;
        }
        num += (fdh[0] - g[i]) * (fdh[0] - g[i]);
        den += (double)g[i] * g[i];
    }
    CHECK(kinks <= np / 2, "%s: %d of %d entries sit on a kink", name, kinks, np);
    double rel = sqrt(num / (den + 1e-20));
    printf("  %-13s relative error %.3g (|g| %.3g, %d of %d entries skipped at kinks)\n", name,
           rel, sqrt(den), kinks, np);
    return rel;
}

/* Random weights with nonzero biases, so that their paths matter. */
static void init_biased(float *p)
{
    net_init(p, 7);
    for (int t = 0; t < NET_NUM_TENSORS; t++)
        if (net_tensors[t].fan_in == 0)
            for (size_t i = 0; i < net_tensors[t].count; i++)
                p[net_tensors[t].offset + i] = 0.05f * (2 * rng_float(&R) - 1);
}

static void test_gradcheck(void)
{
    enum { B = 2 };
    float *p = malloc(4 * NET_NUM_PARAMS), *g = malloc(4 * NET_NUM_PARAMS);
    float x[B * 784];
    uint8_t y[B];
    init_biased(p);
    make_batch(x, y, B);
    net_train_ctx *c = net_train_ctx_create(B, 1);
    net_train_grads(c, p, x, y, B, g, NULL, NULL);
    TEST_BEGIN("net_finite_difference_every_tensor");
    fd_fn f = {p, x, y, B, -1};
    for (int t = 0; t < NET_NUM_TENSORS; t++) {
        const net_tensor *ti = &net_tensors[t];
        size_t pick[NS];
        int np = pick_largest(g + ti->offset, ti->count, pick);
        for (int s = 0; s < np; s++)
            pick[s] += ti->offset;
        double rel = fd_compare(&f, p, g, pick, np, ti->name);
        CHECK(rel < 1e-4, "%s: finite differences disagree, relative error %g", ti->name, rel);
    }
    TEST_END();
    net_train_ctx_free(c);
    free(p); free(g);
}

/* The gradient of a logit with respect to the input (explanations), at
 * every pixel where it is largest and at a few of the others, against
 * finite differences: for random weights, and for the shipped model on a
 * synthetic digit, each for the sample's label and another class. Also: the
 * logits that come with it are the forward pass's, and the threads agree. */
static void test_input_gradcheck(void)
{
    enum { B = 3 };
    float *p = malloc(4 * NET_NUM_PARAMS), *dx = malloc(4 * B * 784), *dx2 = malloc(4 * B * 784);
    float x[B * 784], lg[B * 10], lg2[B * 10], pr[B * 10];
    uint8_t y[B];
    make_batch(x, y, B);
    net_train_ctx *c = net_train_ctx_create(B, 1), *c2 = net_train_ctx_create(B, 2);
    net_ctx *fc = net_ctx_create(B, 1);
    TEST_BEGIN("net_input_gradient_finite_difference");
    for (int model = 0; model < 2; model++) {
        char err[256];
        if (model == 0) {
            init_biased(p);
        } else if (ckpt_load("models/mnist-cnn.safetensors", p, NULL, err, sizeof err) != 0) {
            CHECK(0, "the shipped model: %s", err);
            break;
        }
        for (int other = 0; other < 2; other++) {
            uint8_t t[B];
            for (int b = 0; b < B; b++)
                t[b] = (uint8_t)((y[b] + 3 * other) % 10);
            CHECK(net_input_grads(c, p, x, t, B, dx, lg) == 0, "net_input_grads failed");
            for (int b = 0; b < B; b++) {
                fd_fn f = {p, x + b * 784, NULL, 1, t[b]};
                size_t pick[NS + 4];
                int np = pick_largest(dx + b * 784, 784, pick);
                for (int k = 0; k < 4; k++)  /* and some pixels anywhere */
                    pick[np++] = rng_below(&R, 784);
                char name[32];
                snprintf(name, sizeof name, "%s x%d[%d]", model ? "shipped" : "random", b, t[b]);
                double rel = fd_compare(&f, x + b * 784, dx + b * 784, pick, np, name);
                CHECK(rel < 1e-4, "%s: finite differences disagree, relative error %g", name, rel);
            }
            net_forward(fc, p, x, B, pr, lg2);
            float md = 0;
            for (int i = 0; i < B * 10; i++)
                md = fmaxf(md, fabsf(lg[i] - lg2[i]));
            CHECK(md < 1e-5f, "its logits differ from the forward pass by %g", md);
            CHECK(net_input_grads(c2, p, x, t, B, dx2, NULL) == 0, "2 threads failed");
            CHECK(memcmp(dx, dx2, 4 * B * 784) == 0, "1 and 2 threads give different gradients");
        }
    }
    uint8_t bad[B] = {0, 10, 0};
    CHECK(net_input_grads(c, p, x, bad, B, dx, NULL) == -1, "target 10 accepted");
    CHECK(net_input_grads(c, p, x, y, B + 1, dx, NULL) == -1, "batch over max accepted");
    TEST_END();
    net_train_ctx_free(c);
    net_train_ctx_free(c2);
    net_ctx_free(fc);
    free(p); free(dx); free(dx2);
}

static float maxdiff_f(const float *a, const float *b, int n)
{
    float m = 0;
    for (int i = 0; i < n; i++)
        m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

static void test_batch_and_threads(void)
{
    enum { B = 37 };
    float *p = malloc(4 * NET_NUM_PARAMS), *x = malloc(4 * B * 784);
    float pr[B * 10], lg[B * 10], pr1[10], lg1[10], lg2[B * 10];
    uint8_t y[B];
    net_init(p, 3);
    make_batch(x, y, B);
    net_ctx *c1 = net_ctx_create(B, 1), *c2 = net_ctx_create(B, 2);
    TEST_BEGIN("forward_sample_independent_of_batch");
    net_forward(c1, p, x, B, pr, lg);
    float md = 0;
    for (int b = 0; b < B; b++) {
        net_forward(c1, p, x + b * 784, 1, pr1, lg1);
        for (int k = 0; k < 10; k++)
            md = fmaxf(md, fabsf(lg1[k] - lg[b * 10 + k]));
    }
    printf("  max |logit(alone) - logit(in batch)| = %.3g\n", md);
    CHECK(md < 1e-5f, "a sample's logits depend on its batch: %g", md);
    float s = 0;
    for (int k = 0; k < 10; k++)
        s += pr[k];
    CHECK(fabsf(s - 1) < 1e-5f, "probabilities sum to %g", s);
    TEST_END();
    TEST_BEGIN("forward_threads_agree");
    net_forward(c2, p, x, B, pr, lg2);
    md = 0;
    for (int i = 0; i < B * 10; i++)
        md = fmaxf(md, fabsf(lg2[i] - lg[i]));
    CHECK(md < 1e-5f, "1 and 2 threads differ by %g", md);
    TEST_END();
    /* one image is split across the threads of its context, layer by layer */
    TEST_BEGIN("forward_one_image_split_across_threads");
    md = 0;
    for (int t = 2; t <= 3; t++) {
        net_ctx *ct = net_ctx_create(1, t);
        for (int b = 0; b < B; b++) {
            net_forward(ct, p, x + b * 784, 1, pr1, lg1);
            for (int k = 0; k < 10; k++)
                md = fmaxf(md, fabsf(lg1[k] - lg[b * 10 + k]));
        }
        net_ctx_free(ct);
    }
    printf("  max |logit(alone, 2 or 3 threads) - logit(in batch)| = %.3g\n", md);
    CHECK(md < 1e-5f, "a split image's logits differ by %g", md);
    /* with the direct kernels a split changes no bit (one image may run
     * split or not, depending on how busy the cores are) */
    if (kernels()->conv3x3_direct) {
        net_ctx *ct = net_ctx_create(1, 2);
        int same = 1;
        for (int b = 0; b < B; b++) {
            float l2[10];
            net_forward(c1, p, x + b * 784, 1, pr1, lg1);
            net_forward(ct, p, x + b * 784, 1, pr1, l2);
            same &= memcmp(lg1, l2, sizeof l2) == 0;
        }
        CHECK(same, "one image on 1 and 2 threads: different bits");
        net_ctx_free(ct);
    }
    TEST_END();
    /* prepared weights give the same answers; another pointer in between
     * replaces the packed copy, and the prepared one is packed again */
    TEST_BEGIN("forward_prepared_weights");
    {
        float *q = malloc(4 * NET_NUM_PARAMS), lq[B * 10], lp[B * 10];
        net_init(q, 4);
        net_ctx *cp = net_ctx_create(B, 2);
        net_forward(c1, q, x, B, pr, lq);
        net_ctx_prepare(cp, p);
        for (int round = 0; round < 2; round++) {
            net_forward(cp, p, x, B, pr, lp);
            CHECK(maxdiff_f(lp, lg, B * 10) < 1e-5f, "prepared batch differs");
            net_forward(cp, p, x + 784, 1, pr1, lg1);
            CHECK(maxdiff_f(lg1, lg + 10, 10) < 1e-5f, "prepared image differs");
            net_forward(cp, q, x, B, pr, lp);
            CHECK(maxdiff_f(lp, lq, B * 10) < 1e-5f, "other weights after prepared differ");
            net_ctx_prepare(cp, p);
        }
        net_ctx_free(cp);
        free(q);
    }
    TEST_END();
    TEST_BEGIN("forward_rejects_bad_batch");
    CHECK(net_forward(c1, p, x, 0, pr, NULL) == -1, "B=0 accepted");
    CHECK(net_forward(c1, p, x, B + 1, pr, NULL) == -1, "B>max accepted");
    TEST_END();

    TEST_BEGIN("train_grads_deterministic");
    float *g1 = malloc(4 * NET_NUM_PARAMS), *g2 = malloc(4 * NET_NUM_PARAMS);
    net_train_ctx *t2 = net_train_ctx_create(B, 2), *t1 = net_train_ctx_create(B, 1);
    float l1 = net_train_grads(t2, p, x, y, B, g1, NULL, NULL);
    float l2 = net_train_grads(t2, p, x, y, B, g2, NULL, NULL);
    CHECK(l1 == l2 && memcmp(g1, g2, 4 * NET_NUM_PARAMS) == 0, "two identical steps differ");
    float l3 = net_train_grads(t1, p, x, y, B, g2, NULL, NULL);
    double gd = 0;
    for (int i = 0; i < NET_NUM_PARAMS; i++)
        gd = fmax(gd, fabs(g1[i] - g2[i]));
    printf("  1 vs 2 threads: loss %.7g vs %.7g, max grad diff %.3g\n", l3, l1, gd);
    CHECK(fabsf(l1 - l3) < 1e-5f && gd < 1e-5, "thread counts disagree beyond rounding");
    TEST_END();
    net_train_ctx_free(t1); net_train_ctx_free(t2);
    free(g1); free(g2);
    net_ctx_free(c1); net_ctx_free(c2);
    free(p); free(x);
}

static void test_adam(void)
{
    TEST_BEGIN("adam_keras_formula");
    float p[3] = {1, -2, 0.5f}, g[3] = {0.1f, -0.3f, 0}, m[3] = {0}, v[3] = {0};
    float p0[3] = {1, -2, 0.5f};
    net_adam_step(p, g, m, v, 3, 1e-3f, 0.9f, 0.999f, 1e-7f, 1);
    for (int i = 0; i < 3; i++) {
        double mm = 0.1 * g[i], vv = 0.001 * (double)g[i] * g[i];
        double lrt = 1e-3 * sqrt(1 - 0.999) / (1 - 0.9);
        double want = p0[i] - lrt * mm / (sqrt(vv) + 1e-7);
        CHECK(fabs(p[i] - want) < 1e-7, "p[%d] = %.9g, want %.9g", i, p[i], want);
    }
    TEST_END();
}

static void test_init(void)
{
    TEST_BEGIN("init_glorot_uniform");
    float *a = malloc(4 * NET_NUM_PARAMS), *b = malloc(4 * NET_NUM_PARAMS);
    net_init(a, 11);
    net_init(b, 11);
    CHECK(memcmp(a, b, 4 * NET_NUM_PARAMS) == 0, "same seed, different weights");
    for (int t = 0; t < NET_NUM_TENSORS; t++) {
        const net_tensor *ti = &net_tensors[t];
        double lim = ti->fan_in ? sqrt(6.0 / (ti->fan_in + ti->fan_out)) : 0, mx = 0, s2 = 0;
        for (size_t i = 0; i < ti->count; i++) {
            double v = a[ti->offset + i];
            mx = fmax(mx, fabs(v));
            s2 += v * v;
        }
        if (!ti->fan_in) {
            CHECK(mx == 0, "%s: bias not zero", ti->name);
            continue;
        }
        double sd = sqrt(s2 / ti->count), want = lim / sqrt(3.0);
        CHECK(mx <= lim && mx > 0.9 * lim, "%s: max %g, limit %g", ti->name, mx, lim);
        CHECK(fabs(sd - want) < 0.1 * want, "%s: std %g, want %g", ti->name, sd, want);
    }
    size_t total = 0;
    for (int t = 0; t < NET_NUM_TENSORS; t++) {
        CHECK(net_tensors[t].offset == total, "%s offset", net_tensors[t].name);
        total += net_tensors[t].count;
    }
    CHECK(total == NET_NUM_PARAMS, "tensors cover %zu params, want %d", total, NET_NUM_PARAMS);
    TEST_END();
    free(a); free(b);
}

typedef struct { int batches, epochs, cancel_at; } cb_state;
static int count_cb(const train_progress *p, void *u)
{
    cb_state *s = u;
    if (p->event == TRAIN_EV_BATCH)
        s->batches++;
    else
        s->epochs++;
    return s->cancel_at && s->batches >= s->cancel_at;
}

static void test_training(void)
{
    const char *dir = test_data_dir();
    if (!dir) {
        TEST_SKIP("short_training_learns", "MNISTD_DATA not set");
        TEST_SKIP("eval_run_prepared_matches_forward", "MNISTD_DATA not set");
        TEST_SKIP("training_bit_reproducible", "MNISTD_DATA not set");
        TEST_SKIP("training_cancel", "MNISTD_DATA not set");
        return;
    }
    char err[256];
    mnist_set tr = {0}, te = {0};
    if (mnist_load_dir(&tr, dir, "train", err, sizeof err) || mnist_load_dir(&te, dir, "t10k", err, sizeof err)) {
        TEST_BEGIN("short_training_learns");
        CHECK(0, "%s", err);
        TEST_END();
        return;
    }
    float *p = malloc(4 * NET_NUM_PARAMS), *q = malloc(4 * NET_NUM_PARAMS);
    train_config cfg;
    train_config_default(&cfg);
    cfg.epochs = 1;
    cfg.limit = 4000;
    cfg.validation_split = 0.25f;
    cfg.threads = 2;
    train_epoch h[1];
    cb_state cs = {0, 0, 0};
    TEST_BEGIN("short_training_learns");
    int rc = train_run(p, &tr, &cfg, count_cb, &cs, h, 1, err, sizeof err);
    CHECK(rc == TRAIN_OK, "train_run: %s", err);
    CHECK(cs.batches == 47 && cs.epochs == 1, "callbacks: %d batches %d epochs", cs.batches, cs.epochs);
    eval_result ev;
    CHECK(eval_run(p, &te, 0, 0, 2, &ev, err, sizeof err) == 0, "eval: %s", err);
    printf("  4000 samples x 1 epoch: loss %.4f val_acc %.4f test_acc %.4f\n", h[0].loss,
           h[0].val_accuracy, ev.accuracy);
    CHECK(ev.accuracy > 0.80, "test accuracy %.4f after a short run", ev.accuracy);
    CHECK(h[0].val_accuracy > 0.75, "val accuracy %.4f", h[0].val_accuracy);
    int csum = 0;
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 10; j++)
            csum += ev.confusion[i][j];
    CHECK(csum == 10000 && ev.n == 10000, "confusion matrix sums to %d", csum);
    TEST_END();
    /* eval_run packs the fixed weights once (net_ctx_prepare) for all its
     * batches: its confusion matrix is what the same batches of 256 on 2
     * threads answer on a context that packs them on every call */
    TEST_BEGIN("eval_run_prepared_matches_forward");
    {
        enum { EB = 256 };
        net_ctx *c = net_ctx_create(EB, 2);
        float *x = malloc(sizeof(float) * NET_IN_PIXELS * EB), *pr = malloc(sizeof(float) * 10 * EB);
        int conf[10][10] = {{0}}, ok = c && x && pr;
        for (int b = 0; ok && b < te.n; b += EB) {
            int m = te.n - b < EB ? te.n - b : EB;
            mnist_to_float(&te, b, m, x);
            ok = net_forward(c, p, x, m, pr, NULL) == 0;
            for (int i = 0; ok && i < m; i++)
                conf[te.labels[b + i]][net_argmax(pr + 10 * i)]++;
        }
        CHECK(ok && memcmp(conf, ev.confusion, sizeof conf) == 0,
              "eval_run's confusion matrix differs from forward passes that pack the weights each time");
        net_ctx_free(c);
        free(x);
        free(pr);
    }
    TEST_END();
    TEST_BEGIN("training_bit_reproducible");
    cfg.limit = 1000;
    train_run(p, &tr, &cfg, NULL, NULL, NULL, 0, err, sizeof err);
    train_run(q, &tr, &cfg, NULL, NULL, NULL, 0, err, sizeof err);
    CHECK(memcmp(p, q, 4 * NET_NUM_PARAMS) == 0, "same seed and threads, different weights");
    cfg.seed = 2;
    train_run(q, &tr, &cfg, NULL, NULL, NULL, 0, err, sizeof err);
    CHECK(memcmp(p, q, 4 * NET_NUM_PARAMS) != 0, "different seeds, same weights");
    TEST_END();
    TEST_BEGIN("training_cancel");
    cs = (cb_state){0, 0, 5};
    rc = train_run(p, &tr, &cfg, count_cb, &cs, NULL, 0, err, sizeof err);
    CHECK(rc == TRAIN_CANCELLED && cs.batches == 5, "rc %d after %d batches", rc, cs.batches);
    TEST_END();
    TEST_BEGIN("training_rejects_bad_config");
    train_config bad = cfg;
    bad.batch_size = 0;
    CHECK(train_run(p, &tr, &bad, NULL, NULL, NULL, 0, err, sizeof err) == TRAIN_ERROR, "batch 0");
    bad = cfg;
    bad.validation_split = 1.0f;
    CHECK(train_run(p, &tr, &bad, NULL, NULL, NULL, 0, err, sizeof err) == TRAIN_ERROR, "split 1");
    bad = cfg;
    bad.learning_rate = NAN;
    CHECK(train_run(p, &tr, &bad, NULL, NULL, NULL, 0, err, sizeof err) == TRAIN_ERROR, "lr nan");
    TEST_END();
    free(p); free(q);
    mnist_free(&tr);
    mnist_free(&te);
}

int main(void)
{
    /* MNISTD_KERNELS picks the level (tests/run.sh runs each one). */
    printf("  kernels: %s\n", kernels()->name);
    rng_seed(&R, 5);
    test_init();
    test_adam();
    test_gradcheck();
    test_input_gradcheck();
    test_batch_and_threads();
    test_training();
    TEST_EXIT();
}
