/* Explanations (model/explain.h): Integrated Gradients' completeness on real
 * test digits, where the attribution mass lies, the arguments refused, and
 * the heat map's colours. The digits come from MNISTD_DATA and the model is
 * the shipped one (models/mnist-cnn.safetensors). */
#include "tests/unit/test.h"

#include <stdint.h>

#include "model/checkpoint.h"
#include "model/explain.h"
#include "model/kernels.h"
#include "model/mnist.h"
#include "model/net.h"

/* The steps of the completeness test and its tolerance: |delta| <= COMPLETE_REL
 * * |logit_t(x) - logit_t(baseline)| + COMPLETE_ABS. */
#define COMPLETE_STEPS 128
#define COMPLETE_REL 0.01
#define COMPLETE_ABS 0.05
/* A stroke pixel: normalized intensity over this (pixel value > 127). */
#define STROKE 0.5f
/* Digits per test: fewer in sanitizer builds, which run the kernels 5-10
 * times slower (the figures of record come from the plain build). */
#if defined(MNISTD_SANITIZER)
#define SCALE_DOWN 4
#else
#define SCALE_DOWN 1
#endif

static float *params;

/* The attributions sum to logit_t(x) - logit_t(black) within the tolerance,
 * for the predicted class and for another one, on N test digits spread
 * over the set; and the same input gives the same answer bit for bit. */
static void completeness(explain_ctx *c, const mnist_set *test)
{
    enum { N = 16 / SCALE_DOWN };
    TEST_BEGIN("ig_completeness_test_digits");
    float x[784];
    double worst = 0, worst_rel = 0;
    int right = 0;
    for (int n = 0; n < N; n++) {
        const int idx = n * (test->n / N);
        mnist_to_float(test, idx, 1, x);
        for (int other = 0; other < 2; other++) {
            explain_result r;
            int t = other ? (test->labels[idx] + 5) % 10 : -1;
            CHECK(explain_ig(c, params, x, t, COMPLETE_STEPS, &r) == 0, "explain_ig failed");
            double diff = (double)r.logits[r.target] - r.baseline_logits[r.target];
            double tol = COMPLETE_REL * fabs(diff) + COMPLETE_ABS;
            worst = fmax(worst, fabs(r.delta));
            worst_rel = fmax(worst_rel, fabs(r.delta) / tol);
            CHECK(fabs(r.delta) <= tol, "digit %d class %d: sum %.4f, logit difference %.4f", idx,
                  r.target, r.sum, diff);
            CHECK(fabs(r.sum - diff - r.delta) < 1e-4, "delta is not sum - difference");
            if (!other) {
                right += r.predicted == test->labels[idx];
                CHECK(r.target == r.predicted, "no target: explains %d, predicted %d", r.target,
                      r.predicted);
            } else {
                CHECK(r.target == t, "explains %d, asked %d", r.target, t);
            }
        }
    }
    printf("  %d digits x 2 classes, %d steps: max |sum - (logit(x) - logit(black))| %.4f, "
           "at most %.2f of the tolerance (%.2f |difference| + %.2f); %d of %d predicted right\n",
           N, COMPLETE_STEPS, worst, worst_rel, COMPLETE_REL, COMPLETE_ABS, right, N);
    CHECK(right >= N - 1, "the shipped model got %d of %d right", right, N);
    explain_result a, b;
    mnist_to_float(test, 7, 1, x);
    explain_ig(c, params, x, -1, 16, &a);
    explain_ig(c, params, x, -1, 16, &b);
    CHECK(memcmp(a.attr, b.attr, sizeof a.attr) == 0, "the same input, different attributions");
    TEST_END();
}

/* Where the mass lies: the share of sum |attribution| on stroke pixels
 * (intensity > STROKE), averaged over N test digits at the default steps,
 * against the stroke pixels' share of the image and of the inked pixels
 * (intensity > 0). The black baseline makes every unlit pixel's attribution
 * exactly 0, so the mass is all on ink by construction; the test is that
 * it is on the strokes rather than on their faint edges. */
static void stroke_mass(explain_ctx *c, const mnist_set *test)
{
    enum { N = 48 / SCALE_DOWN };
    TEST_BEGIN("ig_mass_on_strokes");
    float x[784];
    double mass = 0, area = 0, ink_area = 0, zero_off_ink = 0;
    for (int n = 0; n < N; n++) {
        const int idx = 37 + n * (test->n / N);
        mnist_to_float(test, idx, 1, x);
        explain_result r;
        CHECK(explain_ig(c, params, x, -1, EXPLAIN_STEPS_DEFAULT, &r) == 0, "explain_ig failed");
        double on = 0, all = 0;
        int strokes = 0, ink = 0;
        for (int i = 0; i < 784; i++) {
            all += fabs(r.attr[i]);
            if (x[i] > STROKE) {
                on += fabs(r.attr[i]);
                strokes++;
            }
            ink += x[i] > 0;
            if (x[i] == 0)
                zero_off_ink += fabs(r.attr[i]);
        }
        mass += all > 0 ? on / all : 0;
        area += strokes / 784.0;
        ink_area += ink ? (double)strokes / ink : 0;
    }
    mass /= N;
    area /= N;
    ink_area /= N;
    printf("  %d digits, %d steps: %.1f%% of the attribution mass on stroke pixels (> %.2f), "
           "which are %.1f%% of the image and %.1f%% of the inked pixels\n", N,
           EXPLAIN_STEPS_DEFAULT, 100 * mass, STROKE, 100 * area, 100 * ink_area);
    CHECK(mass >= 0.75, "only %.1f%% of the mass on strokes", 100 * mass);
    CHECK(mass >= ink_area + 0.1, "mass share %.3f is not above the strokes' share of the ink %.3f",
          mass, ink_area);
    CHECK(zero_off_ink == 0, "unlit pixels got attributions (%g)", zero_off_ink);
    TEST_END();
}

static void arguments(explain_ctx *c)
{
    TEST_BEGIN("ig_refuses_bad_arguments");
    float x[784] = {0};
    explain_result r;
    CHECK(explain_ig(c, params, x, -1, 0, &r) == -1, "0 steps accepted");
    CHECK(explain_ig(c, params, x, -1, COMPLETE_STEPS + 1, &r) == -1, "steps over max accepted");
    CHECK(explain_ig(c, params, x, 10, 8, &r) == -1, "target 10 accepted");
    CHECK(explain_ctx_create(0, 1) == NULL, "0 steps context");
    CHECK(explain_ctx_create(EXPLAIN_STEPS_LIMIT + 1, 1) == NULL, "context over the limit");
    /* the baseline itself: nothing to attribute */
    CHECK(explain_ig(c, params, x, 3, 8, &r) == 0 && r.sum == 0 && fabs(r.delta) < 1e-6,
          "black input: sum %g delta %g", r.sum, r.delta);
    TEST_END();
}

/* The heat map's pixels: black where there is no ink and no attribution,
 * the input's gray dimmed where the attribution is 0, pure colour where it
 * is the largest (red for positive, blue for negative). */
static void heatmap(void)
{
    TEST_BEGIN("heatmap_colours");
    float x[784] = {0}, a[784] = {0};
    x[30] = 1.0f;             /* ink, no attribution */
    x[40] = 1.0f, a[40] = 2;  /* the largest, positive */
    x[50] = 0.5f, a[50] = -2; /* as large, negative */
    uint8_t *rgb = NULL;
    uint32_t w = 0, h = 0;
    CHECK(explain_heatmap(x, a, 4, &rgb, &w, &h) == 0 && w == 112 && h == 112, "%ux%u", w, h);
#define PX(i, ch) rgb[(((size_t)((i) / 28) * 4 + 1) * w + (size_t)((i) % 28) * 4 + 2) * 3 + (ch)]
    if (rgb) {
        CHECK(PX(0, 0) == 0 && PX(0, 1) == 0 && PX(0, 2) == 0, "background not black");
        CHECK(PX(30, 0) == 153 && PX(30, 1) == 153 && PX(30, 2) == 153, "ink %d", PX(30, 0));
        CHECK(PX(40, 0) == 230 && PX(40, 1) == 40 && PX(40, 2) == 40, "positive %d,%d,%d",
              PX(40, 0), PX(40, 1), PX(40, 2));
        CHECK(PX(50, 0) == 40 && PX(50, 2) == 235, "negative %d,%d,%d", PX(50, 0), PX(50, 1),
              PX(50, 2));
    }
#undef PX
    free(rgb);
    CHECK(explain_heatmap(x, a, 0, &rgb, &w, &h) == -1, "scale 0 accepted");
    TEST_END();
}

int main(void)
{
    printf("  kernels: %s\n", kernels()->name);
    heatmap();
    char err[512];
    params = malloc(sizeof(float) * NET_NUM_PARAMS);
    if (ckpt_load("models/mnist-cnn.safetensors", params, NULL, err, sizeof err) != 0) {
        TEST_BEGIN("shipped_model");
        CHECK(0, "%s", err);
        TEST_END();
        TEST_EXIT();
    }
    explain_ctx *c = explain_ctx_create(COMPLETE_STEPS, 2);
    arguments(c);
    const char *dir = test_data_dir();
    mnist_set test = {0};
    if (!dir) {
        TEST_SKIP("ig_completeness_test_digits", "MNISTD_DATA not set");
        TEST_SKIP("ig_mass_on_strokes", "MNISTD_DATA not set");
    } else if (mnist_load_dir(&test, dir, "t10k", err, sizeof err) != 0) {
        TEST_BEGIN("mnist_test_set");
        CHECK(0, "%s", err);
        TEST_END();
    } else {
        completeness(c, &test);
        stroke_mass(c, &test);
    }
    mnist_free(&test);
    explain_ctx_free(c);
    free(params);
    TEST_EXIT();
}
