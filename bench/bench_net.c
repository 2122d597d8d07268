/* bench/bench_net.c -- speed figures of the network on the real MNIST data.
 *
 * Three figures, printed as machine-readable lines "ours.<key>=<value>" (one
 * set per repetition; bench/run.sh takes medians across processes):
 *   (a) the full recipe: train_run (epochs, batch 64, validation 0.2, seed)
 *       then eval_run on the 10,000 test images: seconds end to end, training
 *       samples/s (epochs * training samples / train_run seconds, validation
 *       passes included, as PyTorch's figure is measured), test accuracy;
 *   (b) inference images/s at batch 64 (net_forward over the test images,
 *       median of several timed rounds);
 *   (c) single-image latency: median and p99 of many net_forward calls at
 *       batch 1;
 * and, before them, the machine's FMA peak of the moment (GFLOP/s on all the
 * threads used and on one), of which each figure is also given as a
 * fraction ("*_peak_fraction", the network's nominal FLOPs).
 *
 * Usage: bench_net [--epochs N] [--reps N] [--seed S] [--threads T]
 *                  [--no-train] [--no-infer] [--rounds N] [--latency-calls N]
 *        bench_net --probs MODEL OUT
 * Data from MNISTD_DATA (a directory with the canonical IDX files).
 * --probs writes MODEL's 10 probabilities for each test image to OUT
 * (little-endian float32, 10,000 x 10), for comparing other runtimes. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/benchutil.h"
#include "model/checkpoint.h"
#include "model/mnist.h"
#include "model/net.h"
#include "model/pool.h"
#include "model/train.h"

typedef struct {
    int epochs, reps, threads, rounds, latency_calls, train, infer;
    uint64_t seed;
} bench_opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_net [options]   (data: MNISTD_DATA=dir with the MNIST IDX files)\n"
            "  --epochs N         epochs of the training recipe (default 5)\n"
            "  --reps N           repetitions of every figure (default 1)\n"
            "  --seed S           initialisation and shuffle seed (default 1)\n"
            "  --threads T        threads for training and inference, 0 = all cores (default 0)\n"
            "  --no-train         skip the training recipe (inference uses seeded weights)\n"
            "  --no-infer         skip the inference and latency figures\n"
            "  --rounds N         timed rounds for inference images/s (default 7)\n"
            "  --latency-calls N  batch-1 calls per latency measurement (default 3000)\n"
            "  --probs MODEL OUT  write MODEL's probabilities for the test images to OUT\n");
}

/* Parses a non-negative integer flag value; -1 when invalid. */
static long parse_num(const char *flag, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "bench_net: %s needs an integer in %ld..%ld\n", flag, lo, hi);
        return -1;
    }
    return v;
}

static int parse_opts(int argc, char **argv, bench_opts *o)
{
    o->epochs = 5;
    o->reps = 1;
    o->threads = 0;
    o->rounds = 7;
    o->latency_calls = 3000;
    o->train = 1;
    o->infer = 1;
    o->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        long v = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(a, "--no-train")) {
            o->train = 0;
            continue;
        } else if (!strcmp(a, "--no-infer")) {
            o->infer = 0;
            continue;
        } else if (!strcmp(a, "--epochs")) {
            v = o->epochs = (int)parse_num(a, val, 1, TRAIN_MAX_EPOCHS);
        } else if (!strcmp(a, "--reps")) {
            v = o->reps = (int)parse_num(a, val, 1, 1000);
        } else if (!strcmp(a, "--seed")) {
            v = parse_num(a, val, 0, TRAIN_MAX_SEED);
            o->seed = (uint64_t)v;
        } else if (!strcmp(a, "--threads")) {
            v = o->threads = (int)parse_num(a, val, 0, TRAIN_MAX_THREADS);
        } else if (!strcmp(a, "--rounds")) {
            v = o->rounds = (int)parse_num(a, val, 1, 1000);
        } else if (!strcmp(a, "--latency-calls")) {
            v = o->latency_calls = (int)parse_num(a, val, 10, 10000000);
        } else {
            fprintf(stderr, "bench_net: unknown option %s\n", a);
            usage(stderr);
            return -1;
        }
        if (v < 0)
            return -1;
        i++;
    }
    return 0;
}

/* ---- the machine's limit ---------------------------------------------- */

/* Floating-point operations (a multiply-add counts 2) of the network as
 * specified, per image: the forward pass, and forward plus backward in
 * training (weight gradients of every layer, input gradients of all but
 * conv1). The kernels skip work (conv2's unpooled row and column, and in
 * training the entries of conv2's output gradient that the max pooling
 * zeroes); the limit is stated for the network's nominal work. */
#define MACS_CONV1 (26.0 * 26 * 32 * 9)
#define MACS_FWD (MACS_CONV1 + 11.0 * 11 * 64 * 288 + 3.0 * 3 * 64 * 576 + 576.0 * 64 + 64.0 * 10)
#define FLOPS_FWD (2 * MACS_FWD)
#define FLOPS_TRAIN (FLOPS_FWD + 2 * (2 * MACS_FWD - MACS_CONV1))

/* The FMA peak: 24 independent chains of vector FMAs (more than latency
 * times throughput on any x86 core), in the widest vectors the CPU has, on
 * n threads at once. GFLOP/s, best of five rounds of about 0.03 s. */
#if defined(__x86_64__)
#include <immintrin.h>
#define FMA_CHAINS(T, SET1, FMA, ADD, STORE, LANES)                                              \
    T a[24];                                                                                     \
    const T m = SET1(0.999999f), c = SET1(1e-7f);                                                \
    for (int i = 0; i < 24; i++)                                                                 \
        a[i] = SET1(1.0f + i * 1e-3f);                                                           \
    for (long it = 0; it < iters; it++) {                                                        \
        _Pragma("GCC unroll 24") for (int i = 0; i < 24; i++) a[i] = FMA(a[i], m, c);            \
    }                                                                                            \
    for (int i = 1; i < 24; i++)                                                                 \
        a[0] = ADD(a[0], a[i]);                                                                  \
    float out[LANES];                                                                            \
    STORE(out, a[0]);                                                                            \
    return 24.0 * 2 * LANES * iters + (out[0] == 0.5f);
__attribute__((target("avx512f"))) static double fma_avx512(long iters)
{
    FMA_CHAINS(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps, 16)
}
__attribute__((target("avx2,fma"))) static double fma_avx2(long iters)
{
    FMA_CHAINS(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps, 8)
}
#endif
static double fma_scalar(long iters)
{
    float a[24];
    for (int i = 0; i < 24; i++)
        a[i] = 1.0f + i * 1e-3f;
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < 24; i++)
            a[i] = fmaf(a[i], 0.999999f, 1e-7f);
    for (int i = 1; i < 24; i++)
        a[0] += a[i];
    return 24.0 * 2 * iters + (a[0] == 0.5f);
}

static double fma_run(long iters)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return fma_avx512(iters);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return fma_avx2(iters);
#endif
    return fma_scalar(iters);
}

static void *fma_thread(void *arg)
{
    *(double *)arg = fma_run(4000000);
    return NULL;
}

static double fma_peak_gflops(int threads)
{
    double best = 0;
    for (int round = 0; round < 5; round++) {
        pthread_t th[64];
        double flops[64] = {0}, total = 0;
        int n = 0;
        double t0 = clock_mono_s();
        for (; n < threads && n < 64; n++)
            if (pthread_create(&th[n], NULL, fma_thread, &flops[n]) != 0)
                break;
        for (int i = 0; i < n; i++) {
            pthread_join(th[i], NULL);
            total += flops[i];
        }
        double g = total / (clock_mono_s() - t0) / 1e9;
        best = g > best ? g : best;
    }
    return best;
}

/* Prints the peaks of this moment, on all the threads the benchmark uses
 * and on one; the fractions of the figures below are of these. */
static void bench_peak(const bench_opts *o, double *peak, double *peak1)
{
    *peak = fma_peak_gflops(o->threads > 0 ? o->threads : pool_ncores());
    *peak1 = fma_peak_gflops(1);
    printf("ours.fma_peak_gflops=%.1f\n", *peak);
    printf("ours.fma_peak_gflops_1t=%.1f\n", *peak1);
}

/* (a) The recipe: train then evaluate on the test set. Prints ours.* lines
 * and leaves the trained weights in params. Returns 0 or -1. */
static int bench_recipe(const bench_opts *o, const mnist_set *train, const mnist_set *test,
                        double load_s, float *params, double peak)
{
    char err[256];
    train_config cfg;
    enum { MAX_HIST = 64 };
    train_epoch hist[MAX_HIST];
    eval_result ev;

    train_config_default(&cfg);
    cfg.epochs = o->epochs;
    cfg.seed = o->seed;
    cfg.threads = o->threads;
    int nval = (int)((double)train->n * cfg.validation_split);
    int ntrain = train->n - nval;

    double t0 = clock_mono_s();
    int rc = train_run(params, train, &cfg, NULL, NULL, hist, MAX_HIST, err, sizeof err);
    double t1 = clock_mono_s();
    if (rc != TRAIN_OK) {
        fprintf(stderr, "bench_net: training failed: %s\n", err);
        return -1;
    }
    if (eval_run(params, test, 0, 0, o->threads, &ev, err, sizeof err) != 0) {
        fprintf(stderr, "bench_net: evaluation failed: %s\n", err);
        return -1;
    }
    double t2 = clock_mono_s();
    printf("ours.epochs=%d\n", o->epochs);
    printf("ours.train_samples=%d\n", ntrain);
    printf("ours.train_seconds=%.3f\n", t1 - t0);
    printf("ours.train_samples_per_s=%.0f\n", (double)o->epochs * ntrain / (t1 - t0));
    printf("ours.eval_seconds=%.3f\n", t2 - t1);
    printf("ours.recipe_seconds=%.3f\n", load_s + (t2 - t0));
    const double flops = (double)o->epochs * (ntrain * FLOPS_TRAIN + nval * FLOPS_FWD) +
                         (double)test->n * FLOPS_FWD;
    printf("ours.recipe_gflop=%.0f\n", flops / 1e9);
    printf("ours.recipe_peak_fraction=%.3f\n", flops / (load_s + (t2 - t0)) / (peak * 1e9));
    if (o->epochs <= MAX_HIST)
        printf("ours.val_accuracy=%.4f\n", hist[o->epochs - 1].val_accuracy);
    printf("ours.test_loss=%.4f\n", ev.loss);
    printf("ours.test_accuracy=%.4f\n", ev.accuracy);
    fflush(stdout);
    return 0;
}

/* (b) images/s at batch 64 and (c) batch-1 latency. Returns 0 or -1. */
static int bench_infer(const bench_opts *o, const mnist_set *test, const float *params,
                       double peak, double peak1)
{
    enum { BATCH = 64 };
    const int nbatches = test->n / BATCH;
    int rc = -1;
    float *x = NULL, *probs = NULL;
    double *round_ips = NULL, *lat = NULL;
    net_ctx *ctx = NULL, *ctx1 = NULL;

    x = malloc(sizeof(float) * (size_t)test->n * NET_IN_PIXELS);
    probs = malloc(sizeof(float) * BATCH * NET_CLASSES);
    round_ips = malloc(sizeof(double) * (size_t)o->rounds);
    lat = malloc(sizeof(double) * (size_t)o->latency_calls);
    ctx = net_ctx_create(BATCH, o->threads);
    ctx1 = net_ctx_create(1, o->threads);
    if (!x || !probs || !round_ips || !lat || !ctx || !ctx1 || nbatches < 1) {
        fprintf(stderr, "bench_net: allocation failed or test set too small\n");
        goto out;
    }
    mnist_to_float(test, 0, test->n, x);
    /* the weights are fixed from here on, as in a served model */
    net_ctx_prepare(ctx, params);
    net_ctx_prepare(ctx1, params);

    /* Warm-up: first touches of buffers, thread start, CPU clock ramp. */
    for (int i = 0; i < 20; i++)
        net_forward(ctx, params, x + (size_t)(i % nbatches) * BATCH * NET_IN_PIXELS, BATCH,
                    probs, NULL);
    /* Each round is about 0.3 s at the target speed: 120 batches. */
    const int per_round = 120;
    for (int r = 0; r < o->rounds; r++) {
        double t0 = clock_mono_s();
        for (int i = 0; i < per_round; i++) {
            int b = (r * per_round + i) % nbatches;
            net_forward(ctx, params, x + (size_t)b * BATCH * NET_IN_PIXELS, BATCH, probs, NULL);
        }
        round_ips[r] = (double)per_round * BATCH / (clock_mono_s() - t0);
    }
    const double ips = bench_median(round_ips, o->rounds);
    printf("ours.infer_images_per_s=%.0f\n", ips);
    printf("ours.infer_peak_fraction=%.3f\n", ips * FLOPS_FWD / (peak * 1e9));

    for (int i = 0; i < 200; i++)
        net_forward(ctx1, params, x + (size_t)(i % test->n) * NET_IN_PIXELS, 1, probs, NULL);
    for (int i = 0; i < o->latency_calls; i++) {
        const float *xi = x + (size_t)(i % test->n) * NET_IN_PIXELS;
        double t0 = clock_mono_s();
        net_forward(ctx1, params, xi, 1, probs, NULL);
        lat[i] = clock_mono_s() - t0;
    }
    double med = bench_median(lat, o->latency_calls);
    int p99 = (int)ceil(0.99 * o->latency_calls) - 1;
    printf("ours.latency_us_median=%.1f\n", med * 1e6);
    printf("ours.latency_us_p99=%.1f\n", lat[p99] * 1e6);
    printf("ours.latency_peak_fraction=%.3f\n", FLOPS_FWD / med / (peak * 1e9));
    printf("ours.latency_peak_fraction_1t=%.3f\n", FLOPS_FWD / med / (peak1 * 1e9));
    fflush(stdout);
    rc = 0;
out:
    free(x);
    free(probs);
    free(round_ips);
    free(lat);
    net_ctx_free(ctx);
    net_ctx_free(ctx1);
    return rc;
}

/* --probs: the test images' probabilities under a model file. */
static int dump_probs(const char *dir, const char *model, const char *out)
{
    mnist_set test = {0};
    char err[512];
    int rc = 1;
    float *params = malloc(sizeof(float) * NET_NUM_PARAMS), *x = NULL, *probs = NULL;
    net_ctx *ctx = net_ctx_create(64, 0);
    FILE *f = NULL;
    if (!params || !ctx || ckpt_load(model, params, NULL, err, sizeof err) != 0 ||
        mnist_load_dir(&test, dir, "t10k", err, sizeof err) != 0) {
        fprintf(stderr, "bench_net: %s\n", params && ctx ? err : "out of memory");
        goto out;
    }
    x = malloc(sizeof(float) * (size_t)test.n * NET_IN_PIXELS);
    probs = malloc(sizeof(float) * (size_t)test.n * NET_CLASSES);
    if (!x || !probs)
        goto out;
    mnist_to_float(&test, 0, test.n, x);
    for (int i = 0; i < test.n; i += 64) {
        int b = test.n - i < 64 ? test.n - i : 64;
        net_forward(ctx, params, x + (size_t)i * NET_IN_PIXELS, b, probs + (size_t)i * NET_CLASSES,
                    NULL);
    }
    f = fopen(out, "wb");
    if (!f || fwrite(probs, sizeof(float) * NET_CLASSES, (size_t)test.n, f) != (size_t)test.n) {
        fprintf(stderr, "bench_net: cannot write %s\n", out);
        goto out;
    }
    rc = 0;
out:
    if (f && fclose(f) != 0)
        rc = 1;
    free(params);
    free(x);
    free(probs);
    net_ctx_free(ctx);
    mnist_free(&test);
    return rc;
}

int main(int argc, char **argv)
{
    bench_opts o = {0};
    mnist_set train = {0}, test = {0};
    char err[512];
    int rc = 1;
    float *params = NULL;

    int probs = argc == 4 && !strcmp(argv[1], "--probs");
    int p = probs ? 0 : parse_opts(argc, argv, &o);
    if (p != 0)
        return p > 0 ? 0 : 2;
    const char *dir = getenv("MNISTD_DATA");
    if (!dir || !*dir) {
        fprintf(stderr, "bench_net: set MNISTD_DATA to the directory holding the MNIST IDX files "
                        "(train-images-idx3-ubyte.gz, ...)\n");
        return 2;
    }
    if (probs)
        return dump_probs(dir, argv[2], argv[3]);
    double t0 = clock_mono_s();
    if (mnist_load_dir(&train, dir, "train", err, sizeof err) != 0 ||
        mnist_load_dir(&test, dir, "t10k", err, sizeof err) != 0) {
        fprintf(stderr, "bench_net: %s\n", err);
        goto out;
    }
    double load_s = clock_mono_s() - t0;
    params = malloc(sizeof(float) * NET_NUM_PARAMS);
    if (!params) {
        fprintf(stderr, "bench_net: out of memory\n");
        goto out;
    }
    printf("ours.load_seconds=%.3f\n", load_s);
    for (int r = 0; r < o.reps; r++) {
        printf("ours.rep=%d\n", r + 1);
        net_init(params, o.seed);
        double peak, peak1;
        bench_peak(&o, &peak, &peak1);
        if (o.train && bench_recipe(&o, &train, &test, load_s, params, peak) != 0)
            goto out;
        if (o.infer && bench_infer(&o, &test, params, peak, peak1) != 0)
            goto out;
    }
    rc = 0;
out:
    free(params);
    mnist_free(&train);
    mnist_free(&test);
    return rc;
}
