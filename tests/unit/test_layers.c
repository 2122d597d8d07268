/* Layer kernels: every fast kernel agrees with its naive reference, and every
 * layer's backward agrees with finite differences of its forward.
 *
 * Finite differences: for a layer y = f(x, w), take L = sum(y * R) with a
 * fixed random R, so dL/dy = R; compare the analytic dL/dx, dL/dw, dL/db
 * with (L(p+h) - L(p-h)) / 2h on sampled entries, in double where the
 * reference kernels allow it. Reported: relative error
 * ||g_fd - g||/||g|| over the sampled entries (must be < 1e-2).
 *
 * The kernels are those of MNISTD_KERNELS (tests/run.sh runs this program
 * once per level the CPU supports), else the fastest. */
#include "tests/unit/test.h"

#include <stdint.h>

#include "model/kernels.h"
#include "model/layers.h"
#include "model/rng.h"

static rng R;
static void fill(float *a, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        a[i] = lo + (hi - lo) * rng_float(&R);
}
static float maxdiff(const float *a, const float *b, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        m = d > m ? d : m;
    }
    return m;
}
static double dotd(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* conv3x3 fast vs ref, forward and backward, for a given shape. */
static void conv_agree(const char *name, int B, int H, int W, int C, int OC)
{
    int OH = H - 2, OW = W - 2;
    size_t nx = (size_t)B * H * W * C, nw = (size_t)OC * 9 * C, ny = (size_t)B * OH * OW * OC;
    size_t ncol = (size_t)B * OH * OW * 9 * C;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(OC * 4);
    float *y1 = malloc(ny * 4), *y2 = malloc(ny * 4), *col = malloc(ncol * 4), *dcol = malloc(ncol * 4);
    float *dy = malloc(ny * 4), *dx1 = malloc(nx * 4), *dx2 = malloc(nx * 4);
    float *dw1 = calloc(nw, 4), *dw2 = calloc(nw, 4), *db1 = calloc(OC, 4), *db2 = calloc(OC, 4);
    fill(x, nx, -1, 1); fill(w, nw, -0.3f, 0.3f); fill(b, OC, -0.1f, 0.1f); fill(dy, ny, -1, 1);
    TEST_BEGIN(name);
    for (int relu = 0; relu < 2; relu++) {
        conv3x3_forward(y1, col, x, w, b, B, H, W, C, OC, relu);
        conv3x3_forward_ref(y2, x, w, b, B, H, W, C, OC, relu);
        float d = maxdiff(y1, y2, ny);
        printf("  %s forward relu=%d max|diff| %.3g\n", name, relu, d);
        CHECK(d < 1e-4f, "forward differs by %g", d);
    }
    conv3x3_backward(C == 1 ? NULL : dx1, dw1, db1, dcol, dy, x, col, w, B, H, W, C, OC);
    conv3x3_backward_ref(C == 1 ? NULL : dx2, dw2, db2, dy, x, w, B, H, W, C, OC);
    float ddw = maxdiff(dw1, dw2, nw), ddb = maxdiff(db1, db2, OC);
    float ddx = C == 1 ? 0 : maxdiff(dx1, dx2, nx);
    printf("  %s backward max|diff| dx %.3g dw %.3g db %.3g\n", name, ddx, ddw, ddb);
    CHECK(ddx < 1e-3f && ddw < 1e-3f * B * OH && ddb < 1e-3f * B * OH,
          "backward differs: dx %g dw %g db %g", ddx, ddw, ddb);
    TEST_END();
    free(x); free(w); free(b); free(y1); free(y2); free(col); free(dcol); free(dy);
    free(dx1); free(dx2); free(dw1); free(dw2); free(db1); free(db2);
}

/* Finite-difference check of conv3x3 (no relu), in the reference forward. */
static void conv_fd(const char *name, int B, int H, int W, int C, int OC)
{
    int OH = H - 2, OW = W - 2;
    size_t nx = (size_t)B * H * W * C, nw = (size_t)OC * 9 * C, ny = (size_t)B * OH * OW * OC;
    size_t ncol = (size_t)B * OH * OW * 9 * C;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(OC * 4), *y = malloc(ny * 4);
    float *r = malloc(ny * 4), *col = malloc(ncol * 4), *dcol = malloc(ncol * 4);
    float *dx = malloc(nx * 4), *dw = calloc(nw, 4), *db = calloc(OC, 4);
    fill(x, nx, -1, 1); fill(w, nw, -0.3f, 0.3f); fill(b, OC, -0.1f, 0.1f); fill(r, ny, -1, 1);
    conv3x3_forward(y, col, x, w, b, B, H, W, C, OC, 0);
    conv3x3_backward(dx, dw, db, dcol, r, x, col, w, B, H, W, C, OC);
    const float h = 1e-2f;
    double num = 0, den = 0;
    struct { float *p; float *g; size_t n; } ps[3] = {{x, dx, nx}, {w, dw, nw}, {b, db, (size_t)OC}};
    for (int k = 0; k < 3; k++)
        for (int s = 0; s < 40; s++) {
            size_t i = rng_below(&R, (uint32_t)ps[k].n);
            float keep = ps[k].p[i];
            ps[k].p[i] = keep + h;
            conv3x3_forward_ref(y, x, w, b, B, H, W, C, OC, 0);
            double lp = dotd(y, r, ny);
            ps[k].p[i] = keep - h;
            conv3x3_forward_ref(y, x, w, b, B, H, W, C, OC, 0);
            double lm = dotd(y, r, ny);
            ps[k].p[i] = keep;
            double fd = (lp - lm) / (2 * h), an = ps[k].g[i];
            num += (fd - an) * (fd - an);
            den += an * an;
        }
    double rel = sqrt(num / (den + 1e-30));
    TEST_BEGIN(name);
    printf("  %s finite-difference relative error %.3g\n", name, rel);
    CHECK(rel < 1e-2, "relative error %g", rel);
    TEST_END();
    free(x); free(w); free(b); free(y); free(r); free(col); free(dcol); free(dx); free(dw); free(db);
}

static void dense_checks(void)
{
    int B = 5, IN = 37, OUT = 11;
    float x[5 * 37], w[11 * 37], b[11], y1[55], y2[55], r[55], dx1[5 * 37], dx2[5 * 37];
    float dw1[11 * 37] = {0}, dw2[11 * 37] = {0}, db1[11] = {0}, db2[11] = {0};
    fill(x, sizeof x / 4, -1, 1); fill(w, sizeof w / 4, -.5f, .5f); fill(b, 11, -.1f, .1f);
    fill(r, 55, -1, 1);
    TEST_BEGIN("dense_fast_vs_ref");
    dense_forward(y1, x, w, b, B, IN, OUT, 1);
    dense_forward_ref(y2, x, w, b, B, IN, OUT, 1);
    CHECK(maxdiff(y1, y2, 55) < 1e-5f, "forward %g", maxdiff(y1, y2, 55));
    dense_backward(dx1, dw1, db1, r, x, w, B, IN, OUT);
    dense_backward_ref(dx2, dw2, db2, r, x, w, B, IN, OUT);
    CHECK(maxdiff(dx1, dx2, sizeof dx1 / 4) < 1e-5f, "dx");
    CHECK(maxdiff(dw1, dw2, sizeof dw1 / 4) < 1e-5f, "dw");
    CHECK(maxdiff(db1, db2, 11) < 1e-5f, "db");
    TEST_END();

    TEST_BEGIN("dense_finite_difference");
    double num = 0, den = 0;
    const float h = 1e-2f;
    float *ps[3] = {x, w, b}, *gs[3] = {dx1, dw1, db1};
    size_t ns[3] = {sizeof x / 4, sizeof w / 4, 11};
    for (int k = 0; k < 3; k++)
        for (int s = 0; s < 30; s++) {
            size_t i = rng_below(&R, (uint32_t)ns[k]);
            float keep = ps[k][i];
            ps[k][i] = keep + h;
            dense_forward_ref(y2, x, w, b, B, IN, OUT, 0);
            double lp = dotd(y2, r, 55);
            ps[k][i] = keep - h;
            dense_forward_ref(y2, x, w, b, B, IN, OUT, 0);
            double lm = dotd(y2, r, 55);
            ps[k][i] = keep;
            double fd = (lp - lm) / (2 * h);
            num += (fd - gs[k][i]) * (fd - gs[k][i]);
            den += (double)gs[k][i] * gs[k][i];
        }
    double rel = sqrt(num / den);
    printf("  dense finite-difference relative error %.3g\n", rel);
    CHECK(rel < 1e-3, "relative error %g", rel);
    TEST_END();
}

static void pool_checks(void)
{
    int B = 2, H = 11, W = 11, C = 5, OH = 5, OW = 5;
    size_t nx = (size_t)B * H * W * C, ny = (size_t)B * OH * OW * C;
    float *x = malloc(nx * 4), *y = malloc(ny * 4), *r = malloc(ny * 4), *dx = malloc(nx * 4);
    uint8_t *idx = malloc(ny);
    fill(x, nx, -1, 1); fill(r, ny, -1, 1);
    TEST_BEGIN("maxpool_forward_is_max");
    maxpool2_forward(y, idx, x, B, H, W, C);
    int bad = 0;
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                for (int c = 0; c < C; c++) {
                    float m = -INFINITY;
                    for (int i = 0; i < 2; i++)
                        for (int j = 0; j < 2; j++) {
                            float v = x[((b * H + 2 * oh + i) * W + 2 * ow + j) * C + c];
                            m = v > m ? v : m;
                        }
                    bad += y[((b * OH + oh) * OW + ow) * C + c] != m;
                }
    CHECK(bad == 0, "%d pooled values are not the window max", bad);
    TEST_END();
    TEST_BEGIN("maxpool_finite_difference");
    maxpool2_backward(dx, r, idx, NULL, B, H, W, C);
    double num = 0, den = 0;
    const float h = 1e-3f;
    for (size_t i = 0; i < nx; i++) {
        float keep = x[i];
        x[i] = keep + h;
        maxpool2_forward(y, NULL, x, B, H, W, C);
        double lp = dotd(y, r, ny);
        x[i] = keep - h;
        maxpool2_forward(y, NULL, x, B, H, W, C);
        double lm = dotd(y, r, ny);
        x[i] = keep;
        double fd = (lp - lm) / (2 * h);
        num += (fd - dx[i]) * (fd - dx[i]);
        den += (double)dx[i] * dx[i];
    }
    double rel = sqrt(num / den);
    printf("  maxpool finite-difference relative error %.3g (every input)\n", rel);
    CHECK(rel < 1e-3, "relative error %g", rel);
    TEST_END();
    free(x); free(y); free(r); free(dx); free(idx);
}

static void softmax_checks(void)
{
    int B = 4;
    float z[40], p[40], d[40];
    uint8_t lab[4] = {3, 0, 9, 5};
    fill(z, 40, -3, 3);
    TEST_BEGIN("softmax_xent_finite_difference");
    int ok;
    softmax_xent_forward(p, z, lab, B, &ok);
    softmax_xent_backward(d, p, lab, B, 1.0f);
    double num = 0, den = 0;
    const float h = 1e-3f;
    for (int i = 0; i < 40; i++) {
        float keep = z[i];
        z[i] = keep + h;
        double lp = softmax_xent_forward(p, z, lab, B, NULL);
        z[i] = keep - h;
        double lm = softmax_xent_forward(p, z, lab, B, NULL);
        z[i] = keep;
        double fd = (lp - lm) / (2 * h);
        num += (fd - d[i]) * (fd - d[i]);
        den += (double)d[i] * d[i];
    }
    double rel = sqrt(num / den);
    printf("  softmax+xent finite-difference relative error %.3g\n", rel);
    CHECK(rel < 1e-3, "relative error %g", rel);
    for (int b = 0; b < B; b++) {
        double s = 0;
        for (int k = 0; k < 10; k++)
            s += p[b * 10 + k];
        CHECK(fabs(s - 1) < 1e-5, "probabilities sum to %g", s);
    }
    TEST_END();
}

/* The fused conv1+relu+pool kernels agree with the unfused references. */
static void conv1_fused_checks(void)
{
    enum { B = 3 };
    float *x = malloc(4 * B * 784), w[288], bias[32], *a = malloc(4 * B * 26 * 26 * 32);
    float *p1 = malloc(4 * B * 13 * 13 * 32), *p2 = malloc(4 * B * 13 * 13 * 32);
    float *dp = malloc(4 * B * 13 * 13 * 32), *da = malloc(4 * B * 26 * 26 * 32);
    uint8_t *i1 = malloc(B * 13 * 13 * 32), *i2 = malloc(B * 13 * 13 * 32);
    float dw1[288] = {0}, dw2[288] = {0}, db1[32] = {0}, db2[32] = {0};
    rng_seed(&R, 7); /* random inputs: an unseeded generator gives zeros (all ties) */
    fill(x, B * 784, 0, 1); fill(w, 288, -0.5f, 0.5f); fill(bias, 32, -0.2f, 0.2f);
    fill(dp, B * 13 * 13 * 32, -1, 1);
    /* exact ties inside windows: a flat patch */
    for (int i = 0; i < 100; i++)
        x[300 + i] = 0.25f;
    TEST_BEGIN("conv1_fused_vs_unfused");
    conv1_pool_forward(p1, i1, x, w, bias, B);
    conv3x3_forward_ref(a, x, w, bias, B, 28, 28, 1, 32, 1);
    maxpool2_forward(p2, i2, a, B, 26, 26, 32);
    float d = maxdiff(p1, p2, B * 13 * 13 * 32);
    int idiff = 0;
    for (int i = 0; i < B * 13 * 13 * 32; i++)
        idiff += p2[i] > 0 && i1[i] != i2[i];
    printf("  fused forward max|diff| %.3g, argmax differences %d\n", d, idiff);
    CHECK(d < 1e-5f && idiff == 0, "forward differs: %g, %d argmax", d, idiff);
    conv1_pool_backward(dw1, db1, dp, i1, p1, x, B);
    maxpool2_backward(da, dp, i2, a, B, 26, 26, 32);
    conv3x3_backward_ref(NULL, dw2, db2, da, x, w, B, 28, 28, 1, 32);
    float dd = fmaxf(maxdiff(dw1, dw2, 288), maxdiff(db1, db2, 32));
    printf("  fused backward max|diff| %.3g\n", dd);
    CHECK(dd < 1e-3f, "backward differs: %g", dd);
    TEST_END();

    /* The input gradient (explanations) against the same references. */
    TEST_BEGIN("conv1_fused_input_gradient_vs_unfused");
    float *dx1 = malloc(4 * B * 784), *dx2 = malloc(4 * B * 784);
    conv1_pool_backward_input(dx1, dp, i1, p1, w, B);
    conv3x3_backward_ref(dx2, dw2, db2, da, x, w, B, 28, 28, 1, 32);
    float dxd = maxdiff(dx1, dx2, B * 784), dxm = 0;
    for (int i = 0; i < B * 784; i++)
        dxm = fmaxf(dxm, fabsf(dx2[i]));
    printf("  input gradient max|diff| %.3g (max |dx| %.3g)\n", dxd, dxm);
    CHECK(dxm > 0.1f && dxd < 1e-5f * dxm + 1e-6f, "input gradient differs: %g of %g", dxd, dxm);
    TEST_END();
    free(dx1); free(dx2);
    free(x); free(a); free(p1); free(p2); free(dp); free(da); free(i1); free(i2);
}

/* conv3x3_pack transposes, and the direct convolution of row bands, column
 * prefixes and channel slices (as inference uses them) agrees with the
 * naive reference. */
static void conv_rows_checks(void)
{
    /* shapes: conv2 and conv3 of the network, and an odd one */
    const int shapes[][4] = {{13, 13, 32, 64}, {5, 5, 64, 64}, {7, 9, 16, 32}};
    TEST_BEGIN("conv_rows_direct_vs_ref");
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int H = shapes[si][0], W = shapes[si][1], C = shapes[si][2], OC = shapes[si][3];
        const int K = 9 * C, OH = H - 2, OWF = W - 2;
        float *x = malloc(4 * H * W * C), *w = malloc(4 * OC * K), *b = malloc(4 * OC);
        float *wt = malloc(4 * K * OC), *ref = malloc(4 * OH * OWF * OC);
        float *out = malloc(4 * OH * OWF * OC), *col = malloc(4 * OH * OWF * K);
        fill(x, (size_t)H * W * C, -1, 1); fill(w, (size_t)OC * K, -0.3f, 0.3f);
        fill(b, OC, -0.2f, 0.2f);
        /* packed in two parts (one of them not a whole number of tiles) */
        conv3x3_pack(wt, w, C, OC, 0, 37);
        conv3x3_pack(wt, w, C, OC, 37, K);
        int bad = 0;
        for (int k = 0; k < K; k++)
            for (int oc = 0; oc < OC; oc++)
                bad += wt[k * OC + oc] != w[oc * K + k];
        CHECK(bad == 0, "%dx%dx%d->%d: %d packed weights misplaced", H, W, C, OC, bad);
        for (int relu = 0; relu < 2; relu++) {
            conv3x3_forward_ref(ref, x, w, b, 1, H, W, C, OC, relu);
            /* bands of rows, a prefix of the columns, slices of 16 channels and all */
            for (int r0 = 0; r0 < OH; r0 += 2)
                for (int OW = OWF; OW >= OWF - 1 && OW >= 1; OW--)
                    for (int o0 = 0; o0 < OC; o0 += 16) {
                        const int noc = o0 == 0 ? OC : 16, r1 = r0 + 3 < OH ? r0 + 3 : OH;
                        for (size_t i = 0; i < (size_t)OH * OWF * OC; i++)
                            out[i] = NAN;
                        conv3x3_rows_forward(out + o0, OC, col, x, H, W, C, wt + o0, OC, b + o0,
                                             noc, r0, r1, OW, relu);
                        float d = 0;
                        for (int oh = r0; oh < r1; oh++)
                            for (int ow = 0; ow < OW; ow++)
                                for (int oc = o0; oc < o0 + noc; oc++) {
                                    float got = out[((oh - r0) * OW + ow) * OC + oc];
                                    float e = fabsf(got - ref[(oh * OWF + ow) * OC + oc]);
                                    d = e > d || e != e ? e : d;
                                }
                        if (!(d < 1e-4f)) {
                            CHECK(0, "%dx%dx%d->%d rows %d..%d cols %d ch %d+%d relu %d: %g", H,
                                  W, C, OC, r0, r1, OW, o0, noc, relu, d);
                            bad++;
                        }
                    }
        }
        printf("  %dx%dx%d->%d: packing and every band, prefix and slice agree\n", H, W, C, OC);
        free(x); free(w); free(b); free(wt); free(ref); free(out); free(col);
    }
    TEST_END();
}

/* L = sum(pool(relu(conv(x))) * r) in double, for finite differences;
 * pattern (B*PH*PW*OC) receives each window's argmax, or 4 where the pooled
 * value is not > 0: where it changes, L is not differentiable. */
static double conv_pool_loss(const float *x, const float *w, const float *b, const float *r,
                             int B, int H, int W, int C, int OC, uint8_t *pattern)
{
    const int PH = (H - 2) / 2, PW = (W - 2) / 2;
    double L = 0;
    for (int n = 0; n < B; n++)
        for (int ph = 0; ph < PH; ph++)
            for (int pw = 0; pw < PW; pw++)
                for (int oc = 0; oc < OC; oc++) {
                    double m = 0;
                    int am = 4;
                    for (int j = 0; j < 4; j++) {
                        const int oh = 2 * ph + j / 2, ow = 2 * pw + j % 2;
                        double v = b[oc];
                        for (int kh = 0; kh < 3; kh++)
                            for (int kw = 0; kw < 3; kw++)
                                for (int c = 0; c < C; c++)
                                    v += (double)x[((n * H + oh + kh) * W + ow + kw) * C + c] *
                                         w[((oc * 3 + kh) * 3 + kw) * C + c];
                        if (v > m) {
                            m = v;
                            am = j;
                        }
                    }
                    const size_t i = (((size_t)n * PH + ph) * PW + pw) * OC + oc;
                    pattern[i] = (uint8_t)am;
                    L += m * r[i];
                }
    return L;
}

/* The backward of conv3x3 + relu + 2x2 max pooling from the pooled
 * gradient (conv3x3_pool_backward) against maxpool2_backward then the naive
 * conv3x3_backward_ref, and against finite differences of the composite
 * forward. Shapes: conv2 of the network (the level's fastest path), an odd
 * one with an unpooled row and column, and one with few channels. */
static void conv_pool_checks(void)
{
    const int shapes[][5] = {{3, 13, 13, 32, 64}, {2, 9, 8, 16, 32}, {2, 6, 7, 5, 16}};
    TEST_BEGIN("conv_pool_backward_vs_ref");
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int B = shapes[si][0], H = shapes[si][1], W = shapes[si][2], C = shapes[si][3];
        const int OC = shapes[si][4], OH = H - 2, OW = W - 2, PH = OH / 2, PW = OW / 2;
        const size_t nx = (size_t)B * H * W * C, nw = (size_t)OC * 9 * C;
        const size_t na = (size_t)B * OH * OW * OC, np = (size_t)B * PH * PW * OC;
        float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(OC * 4), *a = malloc(na * 4);
        float *pl = malloc(np * 4), *dp = malloc(np * 4), *da = malloc(na * 4);
        float *dx1 = malloc(nx * 4), *dx2 = malloc(nx * 4), *dx3 = malloc(nx * 4);
        float *dw1 = calloc(nw, 4), *dw2 = calloc(nw, 4), *db1 = calloc(OC, 4), *db2 = calloc(OC, 4);
        uint8_t *idx = malloc(np);
        fill(x, nx, -1, 1); fill(w, nw, -0.3f, 0.3f); fill(b, OC, -0.1f, 0.1f);
        fill(dp, np, -1, 1);
        conv3x3_forward_ref(a, x, w, b, B, H, W, C, OC, 1);
        maxpool2_forward(pl, idx, a, B, OH, OW, OC);
        int pos = 0, zero = 0;
        for (size_t i = 0; i < np; i++) {
            pos += pl[i] > 0;
            zero += pl[i] == 0;
        }
        conv3x3_pool_backward(dx1, dw1, db1, dp, idx, pl, x, w, B, H, W, C, OC);
        conv3x3_pool_backward(dx3, NULL, NULL, dp, idx, pl, x, w, B, H, W, C, OC);
        maxpool2_backward(da, dp, idx, a, B, OH, OW, OC);
        conv3x3_backward_ref(dx2, dw2, db2, da, x, w, B, H, W, C, OC);
        const float ddx = maxdiff(dx1, dx2, nx), ddw = maxdiff(dw1, dw2, nw);
        const float ddb = maxdiff(db1, db2, OC), dxo = maxdiff(dx1, dx3, nx);
        printf("  %dx%dx%dx%d->%d (%d pooled > 0, %d zero): max|diff| dx %.3g dw %.3g db %.3g, "
               "dx alone %.3g\n", B, H, W, C, OC, pos, zero, ddx, ddw, ddb, dxo);
        CHECK(pos > 0 && zero > 0, "the relu should cut some pooled values: %d > 0, %d zero", pos,
              zero);
        CHECK(ddx < 1e-4f && ddw < 1e-4f * B * PH * PW && ddb < 1e-4f * B * PH * PW && dxo == 0,
              "%dx%dx%d->%d differs: dx %g dw %g db %g, dx alone %g", H, W, C, OC, ddx, ddw, ddb,
              dxo);

        /* finite differences of L = sum(pool(relu(conv(x))) * dp), in double, where
         * no argmax and no relu changes within +-h */
        double num = 0, den = 0;
        const float h = 1e-3f;
        uint8_t *pat0 = malloc(np), *pat = malloc(np);
        conv_pool_loss(x, w, b, dp, B, H, W, C, OC, pat0);
        int used = 0, kinks = 0;
        struct { float *p; float *g; size_t n; } ps[3] = {{x, dx1, nx}, {w, dw1, nw}, {b, db1, (size_t)OC}};
        for (int k = 0; k < 3; k++)
            for (int s = 0; s < 20; s++) {
                const size_t i = rng_below(&R, (uint32_t)ps[k].n);
                const float keep = ps[k].p[i];
                double l[2];
                int same = 1;
                for (int sgn = 0; sgn < 2; sgn++) {
                    ps[k].p[i] = keep + (sgn ? -h : h);
                    l[sgn] = conv_pool_loss(x, w, b, dp, B, H, W, C, OC, pat);
                    same &= memcmp(pat, pat0, np) == 0;
                }
                ps[k].p[i] = keep;
                if (!same) {
                    kinks++;
                    continue;
                }
                const double fd = (l[0] - l[1]) / (2 * (double)h), an = ps[k].g[i];
                num += (fd - an) * (fd - an);
                den += an * an;
                used++;
            }
        const double rel = sqrt(num / (den + 1e-30));
        printf("  %dx%dx%dx%d->%d finite-difference relative error %.3g (%d entries, %d skipped "
               "across a kink)\n", B, H, W, C, OC, rel, used, kinks);
        CHECK(den > 0 && used >= 40 && rel < 1e-3, "%dx%dx%d->%d finite-difference relative error %g over %d",
              H, W, C, OC, rel, used);
        free(pat0); free(pat);
        free(x); free(w); free(b); free(a); free(pl); free(dp); free(da); free(dx1); free(dx2);
        free(dx3); free(dw1); free(dw2); free(db1); free(db2); free(idx);
    }
    TEST_END();
}

/* The level asked for is the one running, and the choice of a level refuses
 * what a CPU lacks (checked against every possible best level, so a CPU
 * with AVX-512 checks the refusals too). */
static void kernels_checks(void)
{
    TEST_BEGIN("kernels_setting_honoured");
    const char *want = getenv("MNISTD_KERNELS");
    printf("  kernels: %s (MNISTD_KERNELS=%s)\n", kernels()->name, want ? want : "");
    if (want && *want && strcmp(want, "auto") != 0)
        CHECK(strcmp(kernels()->name, want) == 0, "running %s, asked for %s", kernels()->name, want);
    else
        for (int l = KERNELS_NLEVELS - 1; l >= 0; l--)
            if (kernels_supported((kernels_level)l)) {
                CHECK(strcmp(kernels()->name, kernels_level_name((kernels_level)l)) == 0,
                      "auto runs %s, the best supported is %s", kernels()->name,
                      kernels_level_name((kernels_level)l));
                break;
            }
    TEST_END();

    TEST_BEGIN("kernels_refuse_what_the_cpu_lacks");
    char err[200];
    for (int best = 0; best < KERNELS_NLEVELS; best++)
        for (int l = 0; l < KERNELS_NLEVELS; l++) {
            err[0] = '\0';
            int got = kernels_pick(kernels_level_name((kernels_level)l), (kernels_level)best, err,
                                   sizeof err);
            if (l <= best)
                CHECK(got == l, "%s on a CPU running %s: %d", kernels_level_name((kernels_level)l),
                      kernels_level_name((kernels_level)best), got);
            else
                CHECK(got == -1 && strstr(err, "lacks"), "%s on a CPU running %s: %d '%s'",
                      kernels_level_name((kernels_level)l), kernels_level_name((kernels_level)best),
                      got, err);
        }
    CHECK(kernels_pick("auto", KERNELS_AVX2, err, sizeof err) == KERNELS_AVX2, "auto");
    CHECK(kernels_pick(NULL, KERNELS_PORTABLE, err, sizeof err) == KERNELS_PORTABLE, "unset");
    CHECK(kernels_pick("avx", KERNELS_AVX512, err, sizeof err) == -1 && strstr(err, "unknown"),
          "an unknown name: '%s'", err);
    TEST_END();
}

int main(void)
{
    kernels_checks();
    conv1_fused_checks();
    conv_rows_checks();
    conv_pool_checks();
    rng_seed(&R, 42);
    conv_agree("conv1_fast_vs_ref", 3, 28, 28, 1, 32);
    conv_agree("conv2_fast_vs_ref", 3, 13, 13, 32, 64);
    conv_agree("conv3_fast_vs_ref", 3, 5, 5, 64, 64);
    conv_fd("conv1_finite_difference", 2, 8, 7, 1, 32);
    conv_fd("conv2_finite_difference", 2, 7, 6, 32, 64);
    conv_fd("conv3_finite_difference", 2, 5, 5, 64, 64);
    dense_checks();
    pool_checks();
    softmax_checks();
    TEST_EXIT();
}
