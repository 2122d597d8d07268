/* The image transforms of augmentation (model/augment.c), the transformed
 * test sets (model/robust.c) and augmented training (model/train.c):
 *   - the identity settings change nothing, bit for bit;
 *   - a shift moves the centre of mass by the shift and keeps the ink; a
 *     quarter turn sends a pixel where the rotation says; scaling by 2
 *     quadruples the ink; four quarter turns give the image back;
 *   - thickening adds ink, thinning removes it, monotonically in t;
 *   - the random draws are reproducible from the seed and differ across
 *     seeds; the transformed sets are reproducible and keep the labels;
 *   - the settings' ranges are refused outside, by the one validator;
 *   - augmented training: the same seed and threads give the same weights,
 *     another seed other ones, and they differ from unaugmented training
 *     (synthetic data);
 *   - with MNIST (MNISTD_DATA): a short augmented run is clearly more
 *     accurate on the shifted and thickened test sets than the same run
 *     without augmentation. */
#include "tests/unit/test.h"

#include <stdint.h>

#include "model/augment.h"
#include "model/mem.h"
#include "model/net.h"
#include "model/robust.h"
#include "model/train.h"

#define PX NET_IN_PIXELS

static double ink(const float *img)
{
    double s = 0;
    for (int k = 0; k < PX; k++)
        s += img[k];
    return s;
}

/* Centre of mass (x, y) of img. */
static void centre(const float *img, double *cx, double *cy)
{
    double s = 0, x = 0, y = 0;
    for (int k = 0; k < PX; k++) {
        s += img[k];
        x += img[k] * (k % 28);
        y += img[k] * (k / 28);
    }
    *cx = x / s;
    *cy = y / s;
}

/* A digit-like image: a ring of radius 6 two pixels wide, plus a bar, all
 * inside the 20x20 middle of the image as in MNIST. */
static void digit(float *img)
{
    for (int k = 0; k < PX; k++) {
        const double x = k % 28 - 13.5, y = k / 28 - 13.5, r = sqrt(x * x + y * y);
        img[k] = (r > 5.0 && r < 7.0) || (x > -1 && x < 1 && y > -8 && y < 0) ? 1.0f : 0.0f;
        if (r >= 7.0 && r < 7.5)
            img[k] = 0.5f;  /* a grey edge, as MNIST's anti-aliased strokes */
    }
}

static double max_abs_diff(const float *a, const float *b, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - (double)b[i]));
    return m;
}

static void test_identity(void)
{
    float in[PX], out[PX];
    digit(in);
    TEST_BEGIN("augment_affine_identity_exact");
    augment_affine(out, in, 0.0f, 1.0f, 0.0f, 0.0f);
    CHECK(memcmp(in, out, sizeof in) == 0, "max diff %g", max_abs_diff(in, out, PX));
    TEST_END();
    TEST_BEGIN("augment_thickness_zero_exact");
    augment_thickness(out, in, 0.0f);
    CHECK(memcmp(in, out, sizeof in) == 0, "max diff %g", max_abs_diff(in, out, PX));
    TEST_END();
    TEST_BEGIN("augment_random_off_is_identity");
    augment_config a;
    augment_config_off(&a);
    rng r1, r2;
    rng_seed(&r1, 5);
    rng_seed(&r2, 5);
    memcpy(out, in, sizeof in);
    augment_random(out, &a, &r1);
    CHECK(memcmp(in, out, sizeof in) == 0, "an all-0 setting changed the image");
    for (int i = 0; i < 5; i++)
        rng_next(&r2);
    CHECK(memcmp(&r1, &r2, sizeof r1) == 0, "an all-0 setting did not draw its five numbers");
    TEST_END();
}

static void test_geometry(void)
{
    float in[PX], out[PX], back[PX];
    digit(in);
    double cx0, cy0, cx, cy;
    centre(in, &cx0, &cy0);
    TEST_BEGIN("augment_shift_moves_mass");
    augment_affine(out, in, 0.0f, 1.0f, 3.0f, -2.0f);
    centre(out, &cx, &cy);
    printf("  centre (%.3f, %.3f) -> (%.3f, %.3f), ink %.3f -> %.3f\n", cx0, cy0, cx, cy, ink(in), ink(out));
    CHECK(fabs(cx - cx0 - 3.0) < 1e-4 && fabs(cy - cy0 + 2.0) < 1e-4, "moved by (%g, %g), not (3, -2)",
          cx - cx0, cy - cy0);
    CHECK(fabs(ink(out) - ink(in)) < 1e-3, "ink %g -> %g", ink(in), ink(out));
    TEST_END();
    TEST_BEGIN("augment_subpixel_shift_moves_mass");
    augment_affine(out, in, 0.0f, 1.0f, 0.25f, 1.5f);
    centre(out, &cx, &cy);
    CHECK(fabs(cx - cx0 - 0.25) < 1e-4 && fabs(cy - cy0 - 1.5) < 1e-4, "moved by (%g, %g), not (0.25, 1.5)",
          cx - cx0, cy - cy0);
    TEST_END();
    TEST_BEGIN("augment_rotate_quarter_turn");
    float dot[PX] = {0};
    dot[13 * 28 + 20] = 1.0f;   /* right of the centre */
    augment_affine(out, dot, 90.0f, 1.0f, 0.0f, 0.0f);
    /* counter-clockwise as displayed (y down): right of the centre goes above it */
    CHECK(fabs(out[7 * 28 + 13] - 1.0f) < 1e-5 && fabs(ink(out) - 1.0) < 1e-5,
          "the pixel at (20, 13) went elsewhere than (13, 7): %g there, ink %g", out[7 * 28 + 13], ink(out));
    TEST_END();
    TEST_BEGIN("augment_rotate_four_quarters_identity");
    memcpy(back, in, sizeof in);
    for (int i = 0; i < 4; i++) {
        augment_affine(out, back, 90.0f, 1.0f, 0.0f, 0.0f);
        memcpy(back, out, sizeof out);
    }
    CHECK(max_abs_diff(in, back, PX) < 1e-4, "max diff %g", max_abs_diff(in, back, PX));
    TEST_END();
    TEST_BEGIN("augment_rotate_keeps_centre_and_ink");
    augment_affine(out, in, 15.0f, 1.0f, 0.0f, 0.0f);
    centre(out, &cx, &cy);
    /* the centre of mass turns about the image centre by the same angle */
    const double a = 15.0 * M_PI / 180.0, ux = cx0 - 13.5, uy = cy0 - 13.5;
    const double ex = 13.5 + cos(a) * ux + sin(a) * uy, ey = 13.5 - sin(a) * ux + cos(a) * uy;
    CHECK(fabs(cx - ex) < 0.05 && fabs(cy - ey) < 0.05, "centre (%g, %g), expected (%g, %g)", cx, cy, ex, ey);
    CHECK(fabs(ink(out) - ink(in)) / ink(in) < 0.02, "ink %g -> %g", ink(in), ink(out));
    CHECK(max_abs_diff(in, out, PX) > 0.3, "a 15-degree turn changed nothing");
    TEST_END();
    TEST_BEGIN("augment_scale_2_quadruples_ink");
    float blob[PX] = {0};
    for (int y = 11; y < 17; y++)
        for (int x = 11; x < 17; x++)
            blob[y * 28 + x] = 1.0f;
    augment_affine(out, blob, 0.0f, 2.0f, 0.0f, 0.0f);
    printf("  ink of a 6x6 square %.2f, scaled by 2: %.2f\n", ink(blob), ink(out));
    CHECK(fabs(ink(out) / ink(blob) - 4.0) < 0.3, "ratio %g", ink(out) / ink(blob));
    centre(out, &cx, &cy);
    CHECK(fabs(cx - 13.5) < 1e-3 && fabs(cy - 13.5) < 1e-3, "the centre moved to (%g, %g)", cx, cy);
    TEST_END();
}

static void test_thickness(void)
{
    float in[PX], out[PX];
    digit(in);
    TEST_BEGIN("augment_thickening_adds_ink");
    double prev = ink(in);
    const double base = prev;
    int monotone = 1;
    for (int i = 1; i <= 8; i++) {
        augment_thickness(out, in, 0.25f * (float)i);
        monotone &= ink(out) > prev;
        prev = ink(out);
    }
    augment_thickness(out, in, 1.0f);
    printf("  ink %.1f, thickened by 1 step %.1f, by 2 steps %.1f\n", base, ink(out), prev);
    CHECK(monotone, "ink does not grow with every quarter step");
    CHECK(ink(out) > 1.3 * base, "one step adds only %g of %g", ink(out) - base, base);
    int covers = 1;
    for (int k = 0; k < PX; k++)
        covers &= out[k] >= in[k];
    CHECK(covers, "thickening removed ink somewhere");
    TEST_END();
    TEST_BEGIN("augment_thinning_removes_ink");
    augment_thickness(out, in, -0.5f);
    const double half = ink(out);
    augment_thickness(out, in, -1.0f);
    CHECK(ink(out) < half && half < base, "ink %g, -0.5 step %g, -1 step %g", base, half, ink(out));
    TEST_END();
}

static void test_random(void)
{
    float in[PX], a[PX], b[PX], c[PX];
    digit(in);
    augment_config cfg = {2.0f, 15.0f, 0.1f, 1.0f, 0.5f};
    TEST_BEGIN("augment_random_reproducible_from_seed");
    rng r1, r2, r3;
    rng_seed(&r1, 42);
    rng_seed(&r2, 42);
    rng_seed(&r3, 43);
    int same = 1, differ = 0;
    for (int i = 0; i < 20; i++) {
        memcpy(a, in, sizeof in);
        memcpy(b, in, sizeof in);
        memcpy(c, in, sizeof in);
        augment_random(a, &cfg, &r1);
        augment_random(b, &cfg, &r2);
        augment_random(c, &cfg, &r3);
        same &= memcmp(a, b, sizeof a) == 0;
        differ += memcmp(a, c, sizeof a) != 0;
    }
    CHECK(same, "the same seed gave other images");
    CHECK(differ == 20, "another seed gave the same image %d times of 20", 20 - differ);
    TEST_END();
    TEST_BEGIN("augment_random_bounded");
    /* Only a shift: the centre of mass moves at most shift along each axis. */
    augment_config only = {2.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    double cx0, cy0, cx, cy, mx = 0, my = 0;
    centre(in, &cx0, &cy0);
    for (int i = 0; i < 200; i++) {
        memcpy(a, in, sizeof in);
        augment_random(a, &only, &r1);
        centre(a, &cx, &cy);
        mx = fmax(mx, fabs(cx - cx0));
        my = fmax(my, fabs(cy - cy0));
    }
    printf("  largest shift seen in 200 draws of shift 2: (%.3f, %.3f)\n", mx, my);
    CHECK(mx <= 2.0 + 1e-4 && my <= 2.0 + 1e-4 && mx > 1.5 && my > 1.5, "shifts up to (%g, %g)", mx, my);
    TEST_END();
}

static void test_ranges(void)
{
    TEST_BEGIN("augment_ranges_checked");
    train_config c;
    train_config_default(&c);
    train_field bad = TRAIN_FIELD_NONE;
    char err[160];
    CHECK(!augment_enabled(&c.augment), "the default trains with augmentation");
    CHECK(train_config_check(&c, &bad, err, sizeof err) == 0, "default refused: %s", err);
    c.augment = (augment_config){AUGMENT_MAX_SHIFT, AUGMENT_MAX_ROTATE, AUGMENT_MAX_SCALE, AUGMENT_MAX_THICKEN,
                                 AUGMENT_MAX_THIN};
    CHECK(train_config_check(&c, &bad, err, sizeof err) == 0, "the maxima refused: %s", err);
    const struct {
        train_field f;
        float *v;
        float value;
    } cases[] = {
        {TRAIN_FIELD_AUG_SHIFT, &c.augment.shift, 4.01f},
        {TRAIN_FIELD_AUG_SHIFT, &c.augment.shift, -0.5f},
        {TRAIN_FIELD_AUG_ROTATE, &c.augment.rotate, 46.0f},
        {TRAIN_FIELD_AUG_SCALE, &c.augment.scale, 0.51f},
        {TRAIN_FIELD_AUG_THICKEN, &c.augment.thicken, NAN},
        {TRAIN_FIELD_AUG_THICKEN, &c.augment.thicken, 2.5f},
        {TRAIN_FIELD_AUG_THIN, &c.augment.thin, 1.01f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        train_config_default(&c);
        *cases[i].v = cases[i].value;
        bad = TRAIN_FIELD_NONE;
        int rc = train_config_check(&c, &bad, err, sizeof err);
        CHECK(rc != 0 && bad == cases[i].f && strstr(err, train_field_name(cases[i].f)),
              "%s = %g: rc %d field '%s' err '%s'", train_field_name(cases[i].f), (double)cases[i].value, rc,
              train_field_name(bad), err);
    }
    CHECK(strcmp(train_field_name(TRAIN_FIELD_AUG_ROTATE), "augment.rotate") == 0, "name '%s'",
          train_field_name(TRAIN_FIELD_AUG_ROTATE));
    TEST_END();
}

/* A synthetic set of n digit-like images: ring, bar and a label-dependent
 * dot, shifted a little per image. */
static void synthetic(mnist_set *s, int n)
{
    s->n = n;
    s->rows = s->cols = 28;
    s->images = calloc((size_t)n, PX);
    s->labels = calloc((size_t)n, 1);
    float img[PX], moved[PX];
    digit(img);
    for (int i = 0; i < n; i++) {
        s->labels[i] = (uint8_t)(i % 10);
        augment_affine(moved, img, (float)(i % 7) * 5.0f, 1.0f, (float)(i % 3), (float)(i % 10) - 4.5f);
        for (int k = 0; k < PX; k++)
            s->images[(size_t)i * PX + k] = (uint8_t)lrintf(fminf(moved[k], 1.0f) * 255.0f);
        s->images[(size_t)i * PX + 28 * 2 + 2 + 2 * (i % 10)] = 255;
    }
}

static void test_training_reproducible(void)
{
    mnist_set s;
    synthetic(&s, 400);
    train_config c;
    train_config_default(&c);
    c.epochs = 1;
    c.batch_size = 32;
    c.threads = 2;
    c.validation_split = 0.1f;
    c.augment = (augment_config){2.0f, 10.0f, 0.1f, 0.5f, 0.5f};
    float *p1 = mem_aligned(4 * NET_NUM_PARAMS), *p2 = mem_aligned(4 * NET_NUM_PARAMS);
    float *p3 = mem_aligned(4 * NET_NUM_PARAMS), *p4 = mem_aligned(4 * NET_NUM_PARAMS);
    char err[256] = "";
    TEST_BEGIN("augment_training_same_seed_same_bits");
    int rc = train_run(p1, &s, &c, NULL, NULL, NULL, 0, err, sizeof err);
    rc |= train_run(p2, &s, &c, NULL, NULL, NULL, 0, err, sizeof err);
    CHECK(rc == TRAIN_OK, "train_run: %s", err);
    CHECK(memcmp(p1, p2, 4 * NET_NUM_PARAMS) == 0, "two augmented runs with seed 1 differ: max %g",
          max_abs_diff(p1, p2, NET_NUM_PARAMS));
    TEST_END();
    TEST_BEGIN("augment_training_changes_with_seed_and_setting");
    c.seed = 2;
    rc = train_run(p3, &s, &c, NULL, NULL, NULL, 0, err, sizeof err);
    c.seed = 1;
    augment_config_off(&c.augment);
    rc |= train_run(p4, &s, &c, NULL, NULL, NULL, 0, err, sizeof err);
    CHECK(rc == TRAIN_OK, "train_run: %s", err);
    CHECK(memcmp(p1, p3, 4 * NET_NUM_PARAMS) != 0, "seed 2 gave seed 1's weights");
    CHECK(memcmp(p1, p4, 4 * NET_NUM_PARAMS) != 0, "augmentation changed nothing");
    TEST_END();
    mem_free(p1);
    mem_free(p2);
    mem_free(p3);
    mem_free(p4);
    mnist_free(&s);
}

static void test_robust_sets(void)
{
    mnist_set s, a, b;
    synthetic(&s, 50);
    char err[256] = "";
    TEST_BEGIN("robust_sets_reproducible");
    for (int k = 0; k < ROBUST_KINDS; k++) {
        int rc = robust_make(&a, &s, (robust_kind)k, err, sizeof err);
        rc |= robust_make(&b, &s, (robust_kind)k, err, sizeof err);
        CHECK(rc == 0, "%s: %s", robust_name((robust_kind)k), err);
        if (rc != 0)
            continue;
        CHECK(a.n == s.n && memcmp(a.labels, s.labels, (size_t)s.n) == 0, "%s: labels changed",
              robust_name((robust_kind)k));
        CHECK(memcmp(a.images, b.images, (size_t)s.n * PX) == 0, "%s: two copies differ",
              robust_name((robust_kind)k));
        CHECK(memcmp(a.images, s.images, (size_t)s.n * PX) != 0, "%s: nothing transformed",
              robust_name((robust_kind)k));
        mnist_free(&a);
        mnist_free(&b);
    }
    TEST_END();
    TEST_BEGIN("robust_set_names");
    unsigned m = 99;
    CHECK(robust_set_parse("test", &m) == 0 && m == 0, "test: %u", m);
    CHECK(robust_set_parse("transformed", &m) == 0 && m == 7, "transformed: %u", m);
    CHECK(robust_set_parse("rotated", &m) == 0 && m == 1u << ROBUST_ROTATED, "rotated: %u", m);
    CHECK(robust_set_parse("Rotated", &m) != 0 && robust_set_parse("", &m) != 0, "bad names accepted");
    TEST_END();
    mnist_free(&s);
}

/* Shifted and thickened test accuracy of a short run on MNIST, with and
 * without augmentation. */
static void test_robustness_direction(void)
{
    const char *dir = test_data_dir();
    if (!dir) {
        TEST_SKIP("augment_improves_robustness", "MNISTD_DATA is not set");
        return;
    }
    mnist_set train = {0}, test = {0};
    char err[512];
    if (mnist_load_dir(&train, dir, "train", err, sizeof err) != 0 ||
        mnist_load_dir(&test, dir, "t10k", err, sizeof err) != 0) {
        TEST_BEGIN("augment_improves_robustness");
        CHECK(0, "loading MNIST: %s", err);
        TEST_END();
        mnist_free(&train);
        return;
    }
#ifdef MNISTD_SANITIZER
    /* Instrumented code is 3-10 times slower: a run cut short enough to
     * keep the sanitizer pass quick is too short to judge the direction, so
     * it is run for the sanitizer's sake and the direction judged in the
     * normal build. */
    enum { LIMIT = 3000, EVAL = 1000, JUDGE = 0 };
    const char *name = "augment_robustness_run_sanitized";
#else
    enum { LIMIT = 8000, EVAL = 2000, JUDGE = 1 };
    const char *name = "augment_improves_robustness";
#endif
    /* the first EVAL test images, without copying them */
    mnist_set sub = test;
    sub.n = EVAL;
    train_config c;
    train_config_default(&c);
    c.epochs = 1;
    c.limit = LIMIT;
    c.validation_split = 0;
    c.threads = 2;
    float *plain = mem_aligned(4 * NET_NUM_PARAMS), *aug = mem_aligned(4 * NET_NUM_PARAMS);
    TEST_BEGIN(name);
    int rc = train_run(plain, &train, &c, NULL, NULL, NULL, 0, err, sizeof err);
    c.augment = (augment_config){2.5f, 12.0f, 0.1f, 1.5f, 0.5f};
    rc |= train_run(aug, &train, &c, NULL, NULL, NULL, 0, err, sizeof err);
    CHECK(rc == TRAIN_OK, "train_run: %s", err);
    eval_result e[2][3];
    const robust_kind kinds[2] = {ROBUST_SHIFTED, ROBUST_THICKENED};
    for (int m = 0; m < 2 && rc == TRAIN_OK; m++) {
        const float *p = m ? aug : plain;
        rc |= eval_run(p, &sub, 0, 0, 2, &e[m][0], err, sizeof err);
        for (int k = 0; k < 2; k++)
            rc |= robust_eval(p, &sub, kinds[k], 2, &e[m][k + 1], err, sizeof err);
    }
    CHECK(rc == 0, "evaluation: %s", err);
    if (rc == 0) {
        printf("  %d training images, 1 epoch; %d test images: plain / shifted / thickened\n", LIMIT, EVAL);
        printf("  without augmentation %.4f / %.4f / %.4f\n", e[0][0].accuracy, e[0][1].accuracy,
               e[0][2].accuracy);
        printf("  with augmentation    %.4f / %.4f / %.4f\n", e[1][0].accuracy, e[1][1].accuracy,
               e[1][2].accuracy);
        CHECK(!JUDGE || e[1][1].accuracy > e[0][1].accuracy + 0.05, "shifted: %.4f with, %.4f without",
              e[1][1].accuracy, e[0][1].accuracy);
        CHECK(!JUDGE || e[1][2].accuracy > e[0][2].accuracy + 0.02, "thickened: %.4f with, %.4f without",
              e[1][2].accuracy, e[0][2].accuracy);
        CHECK(e[1][0].accuracy > (JUDGE ? 0.8 : 0.5), "plain accuracy with augmentation %.4f", e[1][0].accuracy);
    }
    TEST_END();
    if (!JUDGE)
        TEST_SKIP("augment_improves_robustness", "judged in the normal build (a sanitized run is cut short)");
    mem_free(plain);
    mem_free(aug);
    mnist_free(&train);
    mnist_free(&test);
}

int main(void)
{
    test_identity();
    test_geometry();
    test_thickness();
    test_random();
    test_ranges();
    test_robust_sets();
    test_training_reproducible();
    test_robustness_direction();
    TEST_EXIT();
}
