/* Tests of int8 inference (model/quant.h, model/qkernels.h): the integer
 * kernel of the level in use (MNISTD_KERNELS; tests/run.sh runs this once
 * per level) against naive integer loops, exactly; the whole int8 network
 * against its naive reference, bit for bit, for every batch size and thread
 * count; the scales' parser; and, with MNISTD_DATA, the calibration on
 * several threads against one (the same scales, to the bit) and the shipped model in
 * int8 against FP32 on the test set. */
#include <stdint.h>

#include "model/checkpoint.h"
#include "model/kernels.h"
#include "model/mnist.h"
#include "model/net.h"
#include "model/quant.h"
#include "model/qkernels.h"
#include "model/rng.h"
#include "tests/unit/test.h"

static rng R;

static void fill_u8(uint8_t *a, int n, int extreme)
{
    for (int i = 0; i < n; i++)
        a[i] = extreme ? 255 : (rng_float(&R) < 0.4f ? 0 : (uint8_t)(rng_float(&R) * 256.0f));
}

static void fill_s8(int8_t *a, int n, int extreme)
{
    for (int i = 0; i < n; i++)
        a[i] = extreme ? (int8_t)(i % 2 ? 127 : -127) : (int8_t)((int)(rng_float(&R) * 255.0f) - 127);
}

/* conv of in (H, W, C) with w (64, 3, 3, C): rows 0..OH-1, columns 0..OW-1 */
static void naive_conv(int32_t *out, const uint8_t *in, int W, int C, const int8_t *w, int OH, int OW)
{
    for (int y = 0; y < OH; y++)
        for (int x = 0; x < OW; x++)
            for (int oc = 0; oc < 64; oc++) {
                int64_t s = 0;
                for (int kh = 0; kh < 3; kh++)
                    for (int kw = 0; kw < 3; kw++)
                        for (int c = 0; c < C; c++)
                            s += in[((y + kh) * W + x + kw) * C + c] * w[((oc * 3 + kh) * 3 + kw) * C + c];
                out[(y * OW + x) * 64 + oc] = (int32_t)s;
            }
}

static void conv_exact(const char *name, int H, int W, int C, int OH, int OW)
{
    TEST_BEGIN(name);
    uint8_t *in = malloc((size_t)H * W * C);
    int8_t *w = malloc((size_t)64 * 9 * C);
    int32_t *got = malloc(sizeof(int32_t) * OH * OW * 64), *want = malloc(sizeof(int32_t) * OH * OW * 64);
    for (int extreme = 0; extreme < 2; extreme++) {
        fill_u8(in, H * W * C, extreme);
        fill_s8(w, 64 * 9 * C, extreme);
        naive_conv(want, in, W, C, w, OH, OW);
        memset(got, 0x55, sizeof(int32_t) * OH * OW * 64);
        CHECK(qconv3x3_int(got, in, H, W, C, w, OH, OW) == 0, "qconv3x3_int refused the shape");
        int bad = 0;
        for (int i = 0; i < OH * OW * 64; i++)
            bad += got[i] != want[i];
        CHECK(bad == 0, "%s: %d of %d sums differ from the naive loops (%s inputs)", qkernels()->name, bad,
              OH * OW * 64, extreme ? "extreme" : "random");
    }
    free(in); free(w); free(got); free(want);
    TEST_END();
}

static void dense_exact(const char *name)
{
    TEST_BEGIN(name);
    enum { IN = 576, BMAX = 13 };
    uint8_t *in = malloc(BMAX * IN);
    int8_t *w = malloc(64 * IN);
    int32_t got[BMAX * 64], want[BMAX * 64];
    for (int B = 1; B <= BMAX; B++) {
        fill_u8(in, B * IN, B == BMAX);
        fill_s8(w, 64 * IN, B == BMAX);
        for (int b = 0; b < B; b++)
            for (int oc = 0; oc < 64; oc++) {
                int64_t s = 0;
                for (int i = 0; i < IN; i++)
                    s += in[b * IN + i] * w[oc * IN + i];
                want[b * 64 + oc] = (int32_t)s;
            }
        CHECK(qdense_int(got, in, B, IN, w) == 0, "qdense_int refused B=%d", B);
        CHECK(memcmp(got, want, sizeof(int32_t) * B * 64) == 0, "%s: batch %d differs from the naive loops",
              qkernels()->name, B);
    }
    free(in); free(w);
    TEST_END();
}

/* Random images: strokes of ones over zeros, like digits in range. */
static void fake_images(float *x, int n)
{
    for (int i = 0; i < n * NET_IN_PIXELS; i++)
        x[i] = rng_float(&R) < 0.2f ? rng_float(&R) : 0.0f;
}

static void network_exact(const char *calibrate_name, const char *name)
{
    enum { N = 19 };
    float *params = malloc(sizeof(float) * NET_NUM_PARAMS);
    float *x = malloc(sizeof(float) * N * NET_IN_PIXELS);
    float want[N * 10], got[N * 10], probs[N * 10];
    float scales[QUANT_NSCALES];
    char err[256];
    net_init(params, 7);
    fake_images(x, N);
    TEST_BEGIN(calibrate_name);
    CHECK(quant_calibrate(params, x, N, scales, err, sizeof err) == 0, "%s", err);
    for (int i = 0; i < QUANT_NSCALES; i++)
        CHECK(scales[i] > 0.0f && isfinite(scales[i]), "scale %d = %g", i, (double)scales[i]);
    TEST_END();
    TEST_BEGIN(name);
    CHECK(qnet_forward_ref(params, scales, x, N, want) == 0, "reference failed");
    int classes = 0;
    for (int b = 0; b < N; b++)
        classes |= 1 << net_argmax(want + b * 10);
    /* the reference is not degenerate: the logits differ between images */
    CHECK(memcmp(want, want + 10, sizeof(float) * 10) != 0, "two images, same logits");
    for (int threads = 1; threads <= 3; threads++) {
        qnet_ctx *c = qnet_ctx_create(N, threads);
        CHECK(c != NULL, "qnet_ctx_create");
        if (!c)
            break;
        CHECK(qnet_forward(c, x, N, probs, got) == -1, "forward before prepare must fail");
        CHECK(qnet_prepare(c, params, scales, err, sizeof err) == 0, "%s", err);
        const int sizes[] = {N, 1, 8, 9, 5};
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            memset(got, 0, sizeof got);
            for (int b0 = 0; b0 < N; b0 += sizes[s]) {
                int m = N - b0 < sizes[s] ? N - b0 : sizes[s];
                CHECK(qnet_forward(c, x + (size_t)b0 * NET_IN_PIXELS, m, probs + b0 * 10, got + b0 * 10) == 0,
                      "forward");
            }
            CHECK(memcmp(got, want, sizeof got) == 0,
                  "%s: logits differ from the naive reference (%d threads, batches of %d)", qkernels()->name,
                  threads, sizes[s]);
            float sum = 0;
            for (int k = 0; k < 10; k++)
                sum += probs[k];
            CHECK(fabsf(sum - 1.0f) < 1e-5f, "probabilities sum to %g", (double)sum);
        }
        CHECK(qnet_forward(c, x, N + 1, probs, got) == -1, "B > max_batch accepted");
        float bad[QUANT_NSCALES] = {scales[0], NAN, scales[2]};
        CHECK(qnet_prepare(c, params, bad, err, sizeof err) == -1 && strstr(err, "scale 2"),
              "a NaN scale accepted (%s)", err);
        CHECK(qnet_forward(c, x, 1, probs, got) == -1, "forward after a failed prepare must fail");
        qnet_ctx_free(c);
    }
    TEST_END();
    free(params); free(x);
}

static void scales_parse(void)
{
    TEST_BEGIN("quant_scales_parse");
    float s[QUANT_NSCALES], t[QUANT_NSCALES] = {0.0123456789f, 3.5f, 1e-3f};
    char buf[128], err[256];
    quant_scales_format(t, buf, sizeof buf);
    CHECK(quant_scales_parse(buf, s, err, sizeof err) == 0, "%s: %s", buf, err);
    CHECK(memcmp(s, t, sizeof s) == 0, "round trip of %s", buf);
    const char *bad[] = {"", "1 2", "1 2 3 4", "1  2 3", " 1 2 3", "1 2 3 ", "0 1 1", "-1 1 1",
                         "nan 1 1", "inf 1 1", "1e7 1 1", "1e-60 1 1", "a b c", "1,2,3", "1 2 x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        CHECK(quant_scales_parse(bad[i], s, err, sizeof err) == -1, "\"%s\" accepted", bad[i]);
        CHECK(strstr(err, QUANT_SCALES_KEY) != NULL, "\"%s\": message \"%s\" names no key", bad[i], err);
    }
    CHECK(quant_scales_parse(NULL, s, err, sizeof err) == -1, "NULL accepted");
    TEST_END();
}

/* The shipped model on the test set: int8 against FP32. */
static void test_set(void)
{
    const char *names[] = {"int8_agrees_with_fp32", "int8_accuracy_within_0.2_points"};
    const char *dir = test_data_dir();
    if (!dir) {
        for (int i = 0; i < 2; i++)
            TEST_SKIP(names[i], "MNISTD_DATA not set");
        return;
    }
    char err[256];
    mnist_set tr = {0}, te = {0};
    float *params = malloc(sizeof(float) * NET_NUM_PARAMS);
    TEST_BEGIN(names[0]);
    if (mnist_load_dir(&tr, dir, "train", err, sizeof err) || mnist_load_dir(&te, dir, "t10k", err, sizeof err) ||
        ckpt_load("models/mnist-cnn.safetensors", params, NULL, err, sizeof err)) {
        CHECK(0, "%s", err);
        TEST_END();
        free(params);
        return;
    }
#if defined(MNISTD_SANITIZER)
    const int n = 2000; /* instrumented code is slow: a fifth of the set */
#else
    const int n = te.n;
#endif
    float scales[QUANT_NSCALES], one[QUANT_NSCALES], three[QUANT_NSCALES];
    CHECK(quant_calibrate_set(params, &tr, 2, scales, err, sizeof err) == 0, "%s", err);
    /* the threads' maxima combine to the one thread's scales, to the bit */
    CHECK(quant_calibrate_set(params, &tr, 1, one, err, sizeof err) == 0, "%s", err);
    CHECK(quant_calibrate_set(params, &tr, 3, three, err, sizeof err) == 0, "%s", err);
    CHECK(memcmp(scales, one, sizeof one) == 0 && memcmp(three, one, sizeof one) == 0,
          "scales on 2 / 3 threads (%g %g %g / %g %g %g) differ from 1 thread's (%g %g %g)",
          (double)scales[0], (double)scales[1], (double)scales[2], (double)three[0], (double)three[1],
          (double)three[2], (double)one[0], (double)one[1], (double)one[2]);
    enum { BS = 100 };
    float *x = malloc(sizeof(float) * BS * NET_IN_PIXELS), p32[BS * 10], p8[BS * 10];
    net_ctx *c32 = net_ctx_create(BS, 2);
    qnet_ctx *c8 = qnet_ctx_create(BS, 2);
    CHECK(c32 && c8 && qnet_prepare(c8, params, scales, err, sizeof err) == 0, "contexts: %s", err);
    int agree = 0, ok32 = 0, ok8 = 0;
    for (int s = 0; c32 && c8 && s < n; s += BS) {
        const int m = n - s < BS ? n - s : BS;
        mnist_to_float(&te, s, m, x);
        net_forward(c32, params, x, m, p32, NULL);
        qnet_forward(c8, x, m, p8, NULL);
        for (int b = 0; b < m; b++) {
            const int a = net_argmax(p32 + b * 10), q = net_argmax(p8 + b * 10);
            agree += a == q;
            ok32 += a == te.labels[s + b];
            ok8 += q == te.labels[s + b];
        }
    }
    printf("  %d test images: int8 and FP32 agree on %d; accuracy FP32 %.4f int8 %.4f (scales %g %g %g)\n", n,
           agree, (double)ok32 / n, (double)ok8 / n, (double)scales[0], (double)scales[1], (double)scales[2]);
    CHECK(agree >= 0.995 * n, "agree on %d of %d (< 99.5%%)", agree, n);
    TEST_END();
    TEST_BEGIN(names[1]);
    CHECK(fabs((double)(ok8 - ok32) / n) <= 0.002, "FP32 %.4f, int8 %.4f", (double)ok32 / n, (double)ok8 / n);
    TEST_END();
    net_ctx_free(c32);
    qnet_ctx_free(c8);
    free(x); free(params);
    mnist_free(&tr);
    mnist_free(&te);
}

#if defined(MNISTD_KERNELS_X86)
extern const qkernel_ops qkernels_avxvnni, qkernels_avxvnni_evex;
#endif

/* The AVX-VNNI table, and its EVEX twin (the same code, AVX512-VNNI's
 * encoding of the same instruction on 256-bit vectors) where the CPU has
 * no AVX-VNNI: the same exactness checks with qkernels() forced to each.
 * In the avx2 level's run, where the AVX-VNNI table serves. */
static void avx_vnni_tables(void)
{
    if (strcmp(kernels()->name, "avx2") != 0)
        return;
#if defined(MNISTD_KERNELS_X86)
    __builtin_cpu_init();
    const struct {
        const qkernel_ops *k;
        const char *tag, *why_not;
        int runs;
    } t[] = {
        {&qkernels_avxvnni, "avxvnni", "this CPU has no AVX-VNNI (the EVEX twin checks its code)",
         __builtin_cpu_supports("avxvnni")},
        {&qkernels_avxvnni_evex, "avxvnni_evex", "this CPU has no AVX512-VNNI with AVX512VL",
         __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl")},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char n[6][80];
        snprintf(n[0], sizeof n[0], "qdot_conv2_exact_%s", t[i].tag);
        snprintf(n[1], sizeof n[1], "qdot_conv3_exact_%s", t[i].tag);
        snprintf(n[2], sizeof n[2], "qdot_dense_exact_%s", t[i].tag);
        snprintf(n[3], sizeof n[3], "qnet_calibrate_%s", t[i].tag);
        snprintf(n[4], sizeof n[4], "qnet_forward_equals_reference_%s", t[i].tag);
        snprintf(n[5], sizeof n[5], "qkernels_%s", t[i].tag);
        if (!t[i].runs) {
            TEST_SKIP(n[5], "%s", t[i].why_not);
            continue;
        }
        qkernels_force(t[i].k);
        TEST_BEGIN(n[5]);
        CHECK(qkernels() == t[i].k, "qkernels_force did not take");
        TEST_END();
        conv_exact(n[0], 13, 13, 32, 10, 10);
        conv_exact(n[1], 5, 5, 64, 3, 3);
        dense_exact(n[2]);
        network_exact(n[3], n[4]);
        qkernels_force(NULL);
    }
#endif
}

int main(void)
{
    rng_seed(&R, 11);
    printf("  integer kernels: %s (FP32 level %s)\n", qkernels()->name, kernels()->name);
    conv_exact("qdot_conv2_exact", 13, 13, 32, 10, 10);
    conv_exact("qdot_conv2_full_exact", 13, 13, 32, 11, 9);
    conv_exact("qdot_conv3_exact", 5, 5, 64, 3, 3);
    dense_exact("qdot_dense_exact");
    network_exact("qnet_calibrate", "qnet_forward_equals_reference");
    avx_vnni_tables();
    scales_parse();
    test_set();
    TEST_EXIT();
}
