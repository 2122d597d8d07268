/* bench/bench_int8.c -- int8 inference against FP32 on the same model, the
 * same test images and the same threads, interleaved round by round so that
 * a shared machine's load falls on both alike.
 *
 * Prints machine-readable lines (bench/int8.sh makes the table):
 *   int8.fp32_images_per_s / int8.int8_images_per_s   batch 64, median of rounds
 *   int8.fp32_latency_us / int8.int8_latency_us       one image, median
 *   int8.fp32_accuracy / int8.int8_accuracy / int8.agree   the 10,000 test images
 *   int8.scales_from   "model" (its metadata) or "calibrated" (training images)
 *
 * Usage: bench_int8 [--model FILE] [--threads T] [--rounds N] [--latency-calls N]
 * Data from MNISTD_DATA. The model defaults to models/mnist-cnn.safetensors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/benchutil.h"
#include "model/checkpoint.h"
#include "model/mnist.h"
#include "model/net.h"
#include "model/quant.h"

/* One forward pass of either precision. */
typedef struct {
    net_ctx *f32;
    qnet_ctx *q8;
    const float *params;
} engine;

static void forward(const engine *e, int int8, const float *x, int B, float *probs)
{
    if (int8)
        qnet_forward(e->q8, x, B, probs, NULL);
    else
        net_forward(e->f32, e->params, x, B, probs, NULL);
}

int main(int argc, char **argv)
{
    const char *model = "models/mnist-cnn.safetensors";
    int threads = 0, rounds = 9, calls = 3000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "usage: bench_int8 [--model FILE] [--threads T] [--rounds N] [--latency-calls N]\n");
            return 2;
        }
        if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else if (!strcmp(a, "--rounds"))
            rounds = atoi(v);
        else if (!strcmp(a, "--latency-calls"))
            calls = atoi(v);
        else {
            fprintf(stderr, "bench_int8: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (rounds < 1 || calls < 1 || threads < 0) {
        fprintf(stderr, "bench_int8: --rounds and --latency-calls must be >= 1, --threads >= 0\n");
        return 2;
    }
    const char *dir = getenv("MNISTD_DATA");
    if (!dir || !*dir) {
        fprintf(stderr, "bench_int8: set MNISTD_DATA to the directory holding the MNIST IDX files\n");
        return 2;
    }
    enum { BATCH = 64 };
    char err[512];
    mnist_set train = {0}, test = {0};
    ckpt_meta *meta = calloc(1, sizeof *meta);
    float *params = malloc(sizeof(float) * NET_NUM_PARAMS), scales[QUANT_NSCALES];
    if (!meta || !params || ckpt_load(model, params, meta, err, sizeof err) != 0 ||
        mnist_load_dir(&test, dir, "t10k", err, sizeof err) != 0) {
        fprintf(stderr, "bench_int8: %s\n", meta && params ? err : "out of memory");
        return 1;
    }
    const char *from = "model";
    if (quant_scales_parse(ckpt_meta_get(meta, QUANT_SCALES_KEY), scales, err, sizeof err) != 0) {
        from = "calibrated";
        if (mnist_load_dir(&train, dir, "train", err, sizeof err) != 0 ||
            quant_calibrate_set(params, &train, 0, scales, err, sizeof err) != 0) {
            fprintf(stderr, "bench_int8: %s\n", err);
            return 1;
        }
    }
    printf("int8.scales_from=%s\n", from);
    float *x = malloc(sizeof(float) * (size_t)test.n * NET_IN_PIXELS);
    float *p32 = malloc(sizeof(float) * (size_t)test.n * NET_CLASSES);
    float *p8 = malloc(sizeof(float) * (size_t)test.n * NET_CLASSES);
    double *r32 = malloc(sizeof(double) * (size_t)rounds), *r8 = malloc(sizeof(double) * (size_t)rounds);
    double *l32 = malloc(sizeof(double) * (size_t)calls), *l8 = malloc(sizeof(double) * (size_t)calls);
    engine e = {net_ctx_create(BATCH, threads), qnet_ctx_create(BATCH, threads), params};
    engine e1 = {net_ctx_create(1, threads), qnet_ctx_create(1, threads), params};
    if (!x || !p32 || !p8 || !r32 || !r8 || !l32 || !l8 || !e.f32 || !e.q8 || !e1.f32 || !e1.q8 ||
        qnet_prepare(e.q8, params, scales, err, sizeof err) != 0 ||
        qnet_prepare(e1.q8, params, scales, err, sizeof err) != 0) {
        fprintf(stderr, "bench_int8: setup failed: %s\n", err);
        return 1;
    }
    net_ctx_prepare(e.f32, params);
    net_ctx_prepare(e1.f32, params);
    mnist_to_float(&test, 0, test.n, x);

    /* accuracy, and the warm-up of both */
    for (int s = 0; s < test.n; s += BATCH) {
        const int m = test.n - s < BATCH ? test.n - s : BATCH;
        forward(&e, 0, x + (size_t)s * NET_IN_PIXELS, m, p32 + (size_t)s * NET_CLASSES);
        forward(&e, 1, x + (size_t)s * NET_IN_PIXELS, m, p8 + (size_t)s * NET_CLASSES);
    }
    int ok32 = 0, ok8 = 0, agree = 0;
    for (int i = 0; i < test.n; i++) {
        const int a = net_argmax(p32 + (size_t)i * NET_CLASSES), q = net_argmax(p8 + (size_t)i * NET_CLASSES);
        ok32 += a == test.labels[i];
        ok8 += q == test.labels[i];
        agree += a == q;
    }
    printf("int8.fp32_accuracy=%.4f\nint8.int8_accuracy=%.4f\nint8.agree=%.4f\n", (double)ok32 / test.n,
           (double)ok8 / test.n, (double)agree / test.n);

    /* batch 64: rounds of 100 batches, FP32 and int8 alternating */
    const int nb = test.n / BATCH, per = 100;
    for (int r = 0; r < rounds; r++)
        for (int int8 = 0; int8 < 2; int8++) {
            double t0 = clock_mono_s();
            for (int i = 0; i < per; i++)
                forward(&e, int8, x + (size_t)((r * per + i) % nb) * BATCH * NET_IN_PIXELS, BATCH, p32);
            (int8 ? r8 : r32)[r] = (double)per * BATCH / (clock_mono_s() - t0);
        }
    printf("int8.fp32_images_per_s=%.0f\nint8.int8_images_per_s=%.0f\n", bench_median(r32, rounds),
           bench_median(r8, rounds));

    /* one image: calls alternating between the precisions */
    for (int i = 0; i < 200; i++)
        for (int int8 = 0; int8 < 2; int8++)
            forward(&e1, int8, x + (size_t)(i % test.n) * NET_IN_PIXELS, 1, p32);
    for (int i = 0; i < calls; i++)
        for (int int8 = 0; int8 < 2; int8++) {
            double t0 = clock_mono_s();
            forward(&e1, int8, x + (size_t)(i % test.n) * NET_IN_PIXELS, 1, p32);
            (int8 ? l8 : l32)[i] = clock_mono_s() - t0;
        }
    printf("int8.fp32_latency_us=%.2f\nint8.int8_latency_us=%.2f\n", bench_median(l32, calls) * 1e6,
           bench_median(l8, calls) * 1e6);
    net_ctx_free(e.f32);
    net_ctx_free(e1.f32);
    qnet_ctx_free(e.q8);
    qnet_ctx_free(e1.q8);
    mnist_free(&train);
    mnist_free(&test);
    free(x); free(p32); free(p8); free(r32); free(r8); free(l32); free(l8);
    free(params); free(meta);
    return 0;
}
