/* model/isa/kernels.c -- the kernels of model/kernels.h, compiled once per
 * level by the Makefile: KERNELS_ISA names the level (portable, avx2,
 * avx512) and -march gives the compiler its instruction set (the build's
 * baseline, x86-64-v3 and x86-64-v4). The plain C loops are vectorised by
 * the compiler for each; the fused first layer has intrinsics for AVX-512
 * and AVX2+FMA. Everything is static but the one table at the end. */
#include <math.h>
#include <string.h>

#include "model/kernels.h"

#ifndef KERNELS_ISA
#error "KERNELS_ISA must name the level (the Makefile sets it)"
#endif
#define KT_CAT2(a, b) a##b
#define KT_CAT(a, b) KT_CAT2(a, b)
#define KT_STR2(a) #a
#define KT_STR(a) KT_STR2(a)

#define MAX_OC 64

/* im2col for a valid 3x3 convolution in NHWC: one row per output pixel, the
 * row being (kh, kw, c). Since (kw, c) is contiguous in NHWC, each row is
 * three contiguous copies of 3*C floats. */
static void im2col3x3(float *col, const float *inp, int B, int H, int W, int C)
{
    const int OH = H - 2, OW = W - 2, seg = 3 * C;
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float *row = col + ((size_t)(b * OH + oh) * OW + ow) * 9 * C;
                for (int kh = 0; kh < 3; kh++)
                    memcpy(row + kh * seg, inp + ((size_t)(b * H + oh + kh) * W + ow) * C,
                           (size_t)seg * sizeof(float));
            }
}

/* The adjoint of im2col3x3: dinp is overwritten with the sum of the rows'
 * contributions. */
static void col2im3x3(float *dinp, const float *dcol, int B, int H, int W, int C)
{
    const int OH = H - 2, OW = W - 2, seg = 3 * C;
    memset(dinp, 0, (size_t)B * H * W * C * sizeof(float));
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                const float *row = dcol + ((size_t)(b * OH + oh) * OW + ow) * 9 * C;
                for (int kh = 0; kh < 3; kh++) {
                    float *d = dinp + ((size_t)(b * H + oh + kh) * W + ow) * C;
                    const float *s = row + kh * seg;
                    for (int i = 0; i < seg; i++)
                        d[i] += s[i];
                }
            }
}

static void bias_act(float *out, const float *bias, int M, int N, int relu)
{
    for (int i = 0; i < M; i++) {
        float *o = out + (size_t)i * N;
        if (relu)
            for (int j = 0; j < N; j++) {
                float v = o[j] + bias[j];
                o[j] = v > 0.0f ? v : 0.0f;
            }
        else
            for (int j = 0; j < N; j++)
                o[j] += bias[j];
    }
}

static void colsum_acc(float *dbias, const float *d, int M, int N)
{
    for (int i = 0; i < M; i++) {
        const float *r = d + (size_t)i * N;
        for (int j = 0; j < N; j++)
            dbias[j] += r[j];
    }
}

/* conv1: C == 1, direct, vectorised over OC. */
static void conv3x3_c1_forward(float *out, const float *inp, const float *weight,
                               const float *bias, int B, int H, int W, int OC, int relu)
{
    const int OH = H - 2, OW = W - 2;
    float wt[9 * MAX_OC];
    for (int oc = 0; oc < OC; oc++)
        for (int k = 0; k < 9; k++)
            wt[k * OC + oc] = weight[oc * 9 + k];
    for (int b = 0; b < B; b++) {
        const float *x = inp + (size_t)b * H * W;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float acc[MAX_OC];
                float *o = out + ((size_t)(b * OH + oh) * OW + ow) * OC;
                for (int oc = 0; oc < OC; oc++)
                    acc[oc] = bias[oc];
                for (int kh = 0; kh < 3; kh++)
                    for (int kw = 0; kw < 3; kw++) {
                        const float v = x[(oh + kh) * W + ow + kw];
                        const float *w = wt + (kh * 3 + kw) * OC;
                        for (int oc = 0; oc < OC; oc++)
                            acc[oc] += v * w[oc];
                    }
                if (relu)
                    for (int oc = 0; oc < OC; oc++)
                        o[oc] = acc[oc] > 0.0f ? acc[oc] : 0.0f;
                else
                    memcpy(o, acc, (size_t)OC * sizeof(float));
            }
    }
}

static void conv3x3_c1_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                const float *inp, const float *weight, int B, int H, int W,
                                int OC)
{
    const int OH = H - 2, OW = W - 2;
    float dwt[9 * MAX_OC];
    memset(dwt, 0, sizeof(dwt));
    if (dinp)
        memset(dinp, 0, (size_t)B * H * W * sizeof(float));
    for (int b = 0; b < B; b++) {
        const float *x = inp + (size_t)b * H * W;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                const float *d = dout + ((size_t)(b * OH + oh) * OW + ow) * OC;
                for (int oc = 0; oc < OC; oc++)
                    dbias[oc] += d[oc];
                for (int kh = 0; kh < 3; kh++)
                    for (int kw = 0; kw < 3; kw++) {
                        const float v = x[(oh + kh) * W + ow + kw];
                        float *dw = dwt + (kh * 3 + kw) * OC;
                        for (int oc = 0; oc < OC; oc++)
                            dw[oc] += v * d[oc];
                        if (dinp) {
                            float s = 0.0f;
                            for (int oc = 0; oc < OC; oc++)
                                s += d[oc] * weight[oc * 9 + kh * 3 + kw];
                            dinp[(size_t)b * H * W + (oh + kh) * W + ow + kw] += s;
                        }
                    }
            }
    }
    for (int oc = 0; oc < OC; oc++)
        for (int k = 0; k < 9; k++)
            dweight[oc * 9 + k] += dwt[k * OC + oc];
}

static void maxpool2_forward(float *out, uint8_t *idx, const float *inp, int B, int H, int W,
                             int C)
{
    const int OH = H / 2, OW = W / 2;
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                const float *r0 = inp + ((size_t)(b * H + 2 * oh) * W + 2 * ow) * C;
                const float *r1 = r0 + (size_t)W * C;
                float *o = out + ((size_t)(b * OH + oh) * OW + ow) * C;
                uint8_t *ix = idx ? idx + ((size_t)(b * OH + oh) * OW + ow) * C : NULL;
                for (int c = 0; c < C; c++) {
                    float m = r0[c];
                    int k = 0;
                    if (r0[C + c] > m) { m = r0[C + c]; k = 1; }
                    if (r1[c] > m) { m = r1[c]; k = 2; }
                    if (r1[C + c] > m) { m = r1[C + c]; k = 3; }
                    o[c] = m;
                    if (ix)
                        ix[c] = (uint8_t)k;
                }
            }
}

static void maxpool2_backward(float *dinp, const float *dout, const uint8_t *idx, const float *mask,
                              int B, int H, int W, int C)
{
    const int OH = H / 2, OW = W / 2;
    memset(dinp, 0, (size_t)B * H * W * C * sizeof(float));
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                size_t o = ((size_t)(b * OH + oh) * OW + ow) * C;
                size_t base = ((size_t)(b * H + 2 * oh) * W + 2 * ow) * C;
                for (int c = 0; c < C; c++) {
                    int k = idx[o + c];
                    size_t pos = base + (size_t)((k >> 1) * W + (k & 1)) * C + c;
                    float g = dout[o + c];
                    if (mask && !(mask[pos] > 0.0f))
                        g = 0.0f;
                    dinp[pos] = g;
                }
            }
}

static void relu_backward_inplace(float *d, const float *y, int n)
{
    for (int i = 0; i < n; i++)
        d[i] = y[i] > 0.0f ? d[i] : 0.0f;
}

static void adam_update(float *params, const float *grads, float *m, float *v, size_t n,
                        float lrt, float b1, float b2, float eps)
{
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    for (size_t i = 0; i < n; i++) {
        float g = grads[i];
        float mi = b1 * m[i] + c1 * g;
        float vi = b2 * v[i] + c2 * g * g;
        m[i] = mi;
        v[i] = vi;
        params[i] -= lrt * mi / (sqrtf(vi) + eps);
    }
}

/* conv3x3_pack (model/layers.h): wt[k][oc] = weight[oc][k] for the rows
 * k0..k1-1, in tiles of 16 rows so that each weight row is read in runs. */
static void pack_rows_scalar(float *wt, const float *weight, int K, int OC, int k0, int k1)
{
    for (int kb = k0; kb < k1; kb += 16) {
        const int ke = kb + 16 < k1 ? kb + 16 : k1;
        for (int oc = 0; oc < OC; oc++) {
            const float *w = weight + (size_t)oc * K;
            for (int k = kb; k < ke; k++)
                wt[(size_t)k * OC + oc] = w[k];
        }
    }
}

/* ---- fused first layer ---------------------------------------------------- */

#if defined(__AVX512F__)
#include <immintrin.h>

/* Per output pixel: 9 broadcasts and 18 FMAs into two 16-lane accumulators;
 * the 9x32 weights stay in 18 registers for the whole call. The four pixels
 * of a pooling window are computed together and reduced at once. */
static void conv1_pool_forward(float *out, uint8_t *idx, const float *inp, const float *weight,
                               const float *bias, int B, int r0, int r1)
{
    __m512 w0[9], w1[9];
    float wt[9][32];
    for (int oc = 0; oc < 32; oc++)
        for (int k = 0; k < 9; k++)
            wt[k][oc] = weight[oc * 9 + k];
    for (int k = 0; k < 9; k++) {
        w0[k] = _mm512_loadu_ps(wt[k]);
        w1[k] = _mm512_loadu_ps(wt[k] + 16);
    }
    const __m512 b0 = _mm512_loadu_ps(bias), b1 = _mm512_loadu_ps(bias + 16);
    const __m512 zero = _mm512_setzero_ps();
    for (int b = 0; b < B; b++) {
        const float *x = inp + (size_t)b * 784;
        for (int ph = r0; ph < r1; ph++)
            for (int pw = 0; pw < 13; pw++) {
                __m512 m0 = zero, m1 = zero;
                __m512i i0 = _mm512_setzero_si512(), i1 = _mm512_setzero_si512();
                for (int q = 0; q < 4; q++) {
                    const int oh = 2 * ph + (q >> 1), ow = 2 * pw + (q & 1);
                    const float *xp = x + oh * 28 + ow;
                    __m512 a0 = b0, a1 = b1;
                    for (int kh = 0; kh < 3; kh++)
                        for (int kw = 0; kw < 3; kw++) {
                            __m512 v = _mm512_set1_ps(xp[kh * 28 + kw]);
                            a0 = _mm512_fmadd_ps(v, w0[kh * 3 + kw], a0);
                            a1 = _mm512_fmadd_ps(v, w1[kh * 3 + kw], a1);
                        }
                    a0 = _mm512_max_ps(a0, zero);
                    a1 = _mm512_max_ps(a1, zero);
                    if (q == 0) {
                        m0 = a0;
                        m1 = a1;
                    } else {
                        /* strictly greater: the first maximum wins */
                        __mmask16 g0 = _mm512_cmp_ps_mask(a0, m0, _CMP_GT_OQ);
                        __mmask16 g1 = _mm512_cmp_ps_mask(a1, m1, _CMP_GT_OQ);
                        m0 = _mm512_mask_mov_ps(m0, g0, a0);
                        m1 = _mm512_mask_mov_ps(m1, g1, a1);
                        i0 = _mm512_mask_mov_epi32(i0, g0, _mm512_set1_epi32(q));
                        i1 = _mm512_mask_mov_epi32(i1, g1, _mm512_set1_epi32(q));
                    }
                }
                size_t o = ((size_t)(b * 13 + ph) * 13 + pw) * 32;
                _mm512_storeu_ps(out + o, m0);
                _mm512_storeu_ps(out + o + 16, m1);
                if (idx) {
                    _mm_storeu_si128((__m128i *)(idx + o), _mm512_cvtepi32_epi8(i0));
                    _mm_storeu_si128((__m128i *)(idx + o + 16), _mm512_cvtepi32_epi8(i1));
                }
            }
    }
}

/* For each pooling window, the gradient goes to the argmax pixel of each
 * channel (where the pooled value is > 0, the relu's derivative); the
 * weight gradient of that pixel is its 3x3 input patch times the gradient.
 * Done as four masked passes (one per window position), accumulating in
 * registers across the whole call. */
static void conv1_pool_backward(float *dweight, float *dbias, const float *dout, const uint8_t *idx,
                                const float *out, const float *inp, int B)
{
    __m512 d0[9], d1[9];
    for (int k = 0; k < 9; k++)
        d0[k] = d1[k] = _mm512_setzero_ps();
    __m512 db0 = _mm512_setzero_ps(), db1 = _mm512_setzero_ps();
    const __m512 zero = _mm512_setzero_ps();
    for (int b = 0; b < B; b++) {
        const float *x = inp + (size_t)b * 784;
        for (int ph = 0; ph < 13; ph++)
            for (int pw = 0; pw < 13; pw++) {
                size_t o = ((size_t)(b * 13 + ph) * 13 + pw) * 32;
                __m512 g0 = _mm512_loadu_ps(dout + o), g1 = _mm512_loadu_ps(dout + o + 16);
                __mmask16 p0 = _mm512_cmp_ps_mask(_mm512_loadu_ps(out + o), zero, _CMP_GT_OQ);
                __mmask16 p1 = _mm512_cmp_ps_mask(_mm512_loadu_ps(out + o + 16), zero, _CMP_GT_OQ);
                g0 = _mm512_maskz_mov_ps(p0, g0);
                g1 = _mm512_maskz_mov_ps(p1, g1);
                db0 = _mm512_add_ps(db0, g0);
                db1 = _mm512_add_ps(db1, g1);
                __m512i ix0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(idx + o)));
                __m512i ix1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(idx + o + 16)));
                for (int q = 0; q < 4; q++) {
                    __m512i qq = _mm512_set1_epi32(q);
                    __mmask16 s0 = _mm512_cmpeq_epi32_mask(ix0, qq) & p0;
                    __mmask16 s1 = _mm512_cmpeq_epi32_mask(ix1, qq) & p1;
                    if (!(s0 | s1))
                        continue;
                    __m512 h0 = _mm512_maskz_mov_ps(s0, g0), h1 = _mm512_maskz_mov_ps(s1, g1);
                    const float *xp = x + (2 * ph + (q >> 1)) * 28 + 2 * pw + (q & 1);
                    for (int kh = 0; kh < 3; kh++)
                        for (int kw = 0; kw < 3; kw++) {
                            __m512 v = _mm512_set1_ps(xp[kh * 28 + kw]);
                            d0[kh * 3 + kw] = _mm512_fmadd_ps(v, h0, d0[kh * 3 + kw]);
                            d1[kh * 3 + kw] = _mm512_fmadd_ps(v, h1, d1[kh * 3 + kw]);
                        }
                }
            }
    }
    float t[32];
    for (int k = 0; k < 9; k++) {
        _mm512_storeu_ps(t, d0[k]);
        _mm512_storeu_ps(t + 16, d1[k]);
        for (int oc = 0; oc < 32; oc++)
            dweight[oc * 9 + k] += t[oc];
    }
    _mm512_storeu_ps(t, db0);
    _mm512_storeu_ps(t + 16, db1);
    for (int oc = 0; oc < 32; oc++)
        dbias[oc] += t[oc];
}

/* ---- direct 3x3 convolution (C > 1) --------------------------------------- */

/* A block of P output pixels times NV*16 output channels, in P*NV
 * registers: for each of the 9*C weights rows (kh, then the 3*C contiguous
 * (kw, c) of an NHWC input row) NV weight vectors are loaded and each
 * pixel's input broadcast into P*NV FMAs. src[p] is pixel p's top-left
 * input, dst[p] its output channels. */
#define DIRECT_BLOCK(NV, P)                                                                       \
    static void direct_block_##NV##_##P(float *const *dst, const float *const *src, int rowstride, \
                                        int seg, const float *wt, int ldw, const float *bias,    \
                                        int relu)                                                \
    {                                                                                             \
        __m512 acc[P][NV];                                                                        \
        for (int v = 0; v < NV; v++) {                                                            \
            const __m512 b = _mm512_loadu_ps(bias + 16 * v);                                      \
            for (int p = 0; p < P; p++)                                                           \
                acc[p][v] = b;                                                                    \
        }                                                                                         \
        for (int kh = 0; kh < 3; kh++) {                                                          \
            const float *w = wt + (size_t)kh * seg * ldw;                                         \
            const int off = kh * rowstride;                                                       \
            for (int j = 0; j < seg; j++, w += ldw) {                                             \
                __m512 wv[NV];                                                                    \
                for (int v = 0; v < NV; v++)                                                      \
                    wv[v] = _mm512_loadu_ps(w + 16 * v);                                          \
                for (int p = 0; p < P; p++) {                                                     \
                    const __m512 x = _mm512_set1_ps(src[p][off + j]);                             \
                    for (int v = 0; v < NV; v++)                                                  \
                        acc[p][v] = _mm512_fmadd_ps(x, wv[v], acc[p][v]);                         \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        const __m512 zero = _mm512_setzero_ps();                                                  \
        for (int p = 0; p < P; p++)                                                               \
            for (int v = 0; v < NV; v++)                                                          \
                _mm512_storeu_ps(dst[p] + 16 * v, relu ? _mm512_max_ps(acc[p][v], zero)           \
                                                       : acc[p][v]);                              \
    }
DIRECT_BLOCK(4, 5)
DIRECT_BLOCK(2, 9)
DIRECT_BLOCK(1, 9)
DIRECT_BLOCK(4, 1)
DIRECT_BLOCK(2, 1)
DIRECT_BLOCK(1, 1)

/* The output rows r0..r1-1, columns 0..OW-1, of the valid 3x3 convolution
 * of one NHWC image (H, W, C), for OC output channels (16, 32 or 64) whose
 * weights are packed as rows of a (9*C, ldw) matrix (conv3x3_pack in
 * model/layers.c). Pixel (oh, ow) goes to out + ((oh-r0)*OW + ow)*ldo. The
 * pixels are taken in blocks of P in row-major order (a block may span
 * rows: each pixel has its own input address); the last block is shifted
 * back to end at the last pixel, so a few pixels are computed twice, with
 * the same result. Fewer pixels than a block: one at a time. */
static int conv3x3_direct(float *out, int ldo, const float *inp, int H, int W, int C,
                          const float *wt, int ldw, const float *bias, int OC, int r0, int r1,
                          int OW, int relu)
{
    (void)H;
    const int NV = OC / 16, P = NV == 4 ? 5 : 9, n = (r1 - r0) * OW;
    if (OC % 16 || NV == 3 || NV > 4 || NV < 1)
        return -1;
    const int rowstride = W * C, seg = 3 * C;
    float *dst[9];
    const float *src[9];
    for (int i0 = 0; i0 < n; i0 += P) {
        int blk = n >= P ? P : 1, start = i0;
        if (n >= P && start + P > n)
            start = n - P;
        for (int p = 0; p < blk; p++) {
            int i = start + p, oh = r0 + i / OW, ow = i % OW;
            dst[p] = out + (size_t)i * ldo;
            src[p] = inp + ((size_t)oh * W + ow) * C;
        }
        if (blk == 1) {
            if (NV == 4) direct_block_4_1(dst, src, rowstride, seg, wt, ldw, bias, relu);
            else if (NV == 2) direct_block_2_1(dst, src, rowstride, seg, wt, ldw, bias, relu);
            else direct_block_1_1(dst, src, rowstride, seg, wt, ldw, bias, relu);
            i0 = i0 - P + 1;
            continue;
        }
        if (NV == 4) direct_block_4_5(dst, src, rowstride, seg, wt, ldw, bias, relu);
        else if (NV == 2) direct_block_2_9(dst, src, rowstride, seg, wt, ldw, bias, relu);
        else direct_block_1_9(dst, src, rowstride, seg, wt, ldw, bias, relu);
    }
    return 0;
}
#define HAVE_CONV3X3_DIRECT 1

/* conv3x3_pack: 16x16 tiles transposed in registers (unpacks of 32 and 64
 * bits, then two rounds of 128-bit lane shuffles); the rows outside whole
 * tiles, or channel counts not a multiple of 16, element by element. */
static void conv3x3_pack(float *wt, const float *weight, int C, int OC, int k0, int k1)
{
    const int K = 9 * C;
    int kb = k0;
    if (OC % 16 == 0)
        for (; kb + 16 <= k1; kb += 16)
            for (int ob = 0; ob < OC; ob += 16) {
                __m512 r[16], t[16], u[16];
                for (int i = 0; i < 16; i++)
                    r[i] = _mm512_loadu_ps(weight + (size_t)(ob + i) * K + kb);
                for (int i = 0; i < 16; i += 2) {
                    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
                    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
                }
                for (int g = 0; g < 16; g += 4) {
                    const __m512d a = _mm512_castps_pd(t[g]), b = _mm512_castps_pd(t[g + 1]);
                    const __m512d c = _mm512_castps_pd(t[g + 2]), d = _mm512_castps_pd(t[g + 3]);
                    u[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
                    u[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
                    u[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
                    u[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
                }
                /* u[4q + c], lane j: column 4j + c of rows 4q..4q+3 */
                for (int c = 0; c < 4; c++) {
                    const __m512 a = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
                    const __m512 b = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
                    const __m512 a2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
                    const __m512 b2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
                    float *o = wt + (size_t)(kb + c) * OC + ob;
                    _mm512_storeu_ps(o, _mm512_shuffle_f32x4(a, a2, 0x88));
                    _mm512_storeu_ps(o + (size_t)4 * OC, _mm512_shuffle_f32x4(b, b2, 0x88));
                    _mm512_storeu_ps(o + (size_t)8 * OC, _mm512_shuffle_f32x4(a, a2, 0xdd));
                    _mm512_storeu_ps(o + (size_t)12 * OC, _mm512_shuffle_f32x4(b, b2, 0xdd));
                }
            }
    pack_rows_scalar(wt, weight, K, OC, kb, k1);
}
#define HAVE_CONV3X3_PACK 1

/* The inner loops of conv3x3_pool_backward (below) for C == 32, whose
 * 3x3x32 patch (3 rows of 96 contiguous floats) fits 18 registers. */
#define POOL96 18
/* dw[k] += sum of g[e] * patch[k] over the n patches at inp + off[e]. */
static void pool_dw_row96(float *dw, const float *inp, const size_t *off, const float *g, int n,
                          int rowstride)
{
    __m512 acc[POOL96];
    for (int v = 0; v < POOL96; v++)
        acc[v] = _mm512_setzero_ps();
    for (int e = 0; e < n; e++) {
        const __m512 ge = _mm512_set1_ps(g[e]);
        const float *x = inp + off[e];
#pragma GCC unroll 3
        for (int kh = 0; kh < 3; kh++)
#pragma GCC unroll 6
            for (int v = 0; v < 6; v++)
                acc[kh * 6 + v] = _mm512_fmadd_ps(ge, _mm512_loadu_ps(x + kh * rowstride + 16 * v),
                                                  acc[kh * 6 + v]);
    }
    for (int v = 0; v < POOL96; v++)
        _mm512_storeu_ps(dw + 16 * v, _mm512_add_ps(_mm512_loadu_ps(dw + 16 * v), acc[v]));
}

/* The patch at d gets the sum of g[e] * weight row oc[e] (288 floats). */
static void pool_dx_patch96(float *d, int rowstride, const float *weight, const int *oc,
                            const float *g, int n)
{
    __m512 acc[POOL96];
    for (int v = 0; v < POOL96; v++)
        acc[v] = _mm512_setzero_ps();
    for (int e = 0; e < n; e++) {
        const __m512 ge = _mm512_set1_ps(g[e]);
        const float *w = weight + (size_t)oc[e] * 16 * POOL96;
#pragma GCC unroll 18
        for (int v = 0; v < POOL96; v++)
            acc[v] = _mm512_fmadd_ps(ge, _mm512_loadu_ps(w + 16 * v), acc[v]);
    }
    for (int kh = 0; kh < 3; kh++)
        for (int v = 0; v < 6; v++) {
            float *o = d + kh * rowstride + 16 * v;
            _mm512_storeu_ps(o, _mm512_add_ps(_mm512_loadu_ps(o), acc[kh * 6 + v]));
        }
}
#define HAVE_POOL96 1

#else /* below AVX-512 */

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

/* As the AVX-512 kernel with four 8-lane accumulators per pixel; the 9x32
 * weights (36 vectors) do not fit the 16 registers and are read from L1 by
 * the FMAs. The argmax travels as a float lane (0..3) and is packed to
 * bytes at the end. */
static void conv1_pool_forward(float *out, uint8_t *idx, const float *inp, const float *weight,
                               const float *bias, int B, int r0, int r1)
{
    float wt[9][32] __attribute__((aligned(32)));
    for (int oc = 0; oc < 32; oc++)
        for (int k = 0; k < 9; k++)
            wt[k][oc] = weight[oc * 9 + k];
    __m256 bs[4];
    for (int j = 0; j < 4; j++)
        bs[j] = _mm256_loadu_ps(bias + 8 * j);
    const __m256 zero = _mm256_setzero_ps();
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int b = 0; b < B; b++) {
        const float *x = inp + (size_t)b * 784;
        for (int ph = r0; ph < r1; ph++)
            for (int pw = 0; pw < 13; pw++) {
                __m256 m[4], ix[4];
                for (int q = 0; q < 4; q++) {
                    const int oh = 2 * ph + (q >> 1), ow = 2 * pw + (q & 1);
                    const float *xp = x + oh * 28 + ow;
                    __m256 a[4] = {bs[0], bs[1], bs[2], bs[3]};
                    for (int kh = 0; kh < 3; kh++)
                        for (int kw = 0; kw < 3; kw++) {
                            const __m256 v = _mm256_set1_ps(xp[kh * 28 + kw]);
                            const float *w = wt[kh * 3 + kw];
                            for (int j = 0; j < 4; j++)
                                a[j] = _mm256_fmadd_ps(v, _mm256_load_ps(w + 8 * j), a[j]);
                        }
                    for (int j = 0; j < 4; j++) {
                        a[j] = _mm256_max_ps(a[j], zero);
                        if (q == 0) {
                            m[j] = a[j];
                            ix[j] = zero;
                        } else {
                            /* strictly greater: the first maximum wins */
                            const __m256 g = _mm256_cmp_ps(a[j], m[j], _CMP_GT_OQ);
                            m[j] = _mm256_blendv_ps(m[j], a[j], g);
                            ix[j] = _mm256_blendv_ps(ix[j], _mm256_set1_ps((float)q), g);
                        }
                    }
                }
                size_t o = ((size_t)(b * 13 + ph) * 13 + pw) * 32;
                for (int j = 0; j < 4; j++)
                    _mm256_storeu_ps(out + o + 8 * j, m[j]);
                if (idx) {
                    __m256i p01 = _mm256_packs_epi32(_mm256_cvtps_epi32(ix[0]), _mm256_cvtps_epi32(ix[1]));
                    __m256i p23 = _mm256_packs_epi32(_mm256_cvtps_epi32(ix[2]), _mm256_cvtps_epi32(ix[3]));
                    __m256i bytes = _mm256_packs_epi16(p01, p23);
                    _mm256_storeu_si256((__m256i *)(idx + o), _mm256_permutevar8x32_epi32(bytes, order));
                }
            }
    }
}

#else /* the unfused kernels through a scratch activation */

static void conv1_pool_forward(float *out, uint8_t *idx, const float *inp, const float *weight,
                               const float *bias, int B, int r0, int r1)
{
    float a[26 * 26 * 32];
    /* pooled rows r0..r1-1 come from the conv rows 2*r0.., which read the
     * input rows 2*r0..2*r1+1: the valid convolution of that band */
    const int H = 2 * (r1 - r0) + 2;
    for (int b = 0; b < B; b++) {
        size_t o = ((size_t)b * 13 + r0) * 13 * 32;
        conv3x3_c1_forward(a, inp + (size_t)b * 784 + 2 * r0 * 28, weight, bias, 1, H, 28, 32, 1);
        maxpool2_forward(out + o, idx ? idx + o : NULL, a, 1, H - 2, 26, 32);
    }
}

#endif

/* The unfused backward: the pooled gradient routed to the argmax pixels,
 * then the direct convolution's backward. */
static void conv1_pool_backward(float *dweight, float *dbias, const float *dout, const uint8_t *idx,
                                const float *out, const float *inp, int B)
{
    float da[26 * 26 * 32], a[26 * 26 * 32];
    for (int b = 0; b < B; b++) {
        size_t o = (size_t)b * 13 * 13 * 32;
        /* the pooled value stands for its argmax pixel: a mask of out > 0 */
        memset(a, 0, sizeof(a));
        for (int i = 0; i < 13 * 13 * 32; i++) {
            int ph = i / (13 * 32), pw = (i / 32) % 13, c = i % 32, k = idx[o + i];
            a[((2 * ph + (k >> 1)) * 26 + 2 * pw + (k & 1)) * 32 + c] = out[o + i];
        }
        maxpool2_backward(da, dout + o, idx + o, a, 1, 26, 26, 32);
        conv3x3_c1_backward(NULL, dweight, dbias, da, inp + (size_t)b * 784, NULL, 1, 28,
                            28, 32);
    }
}
#endif

/* The input gradient of the fused first layer (model/layers.h). The
 * gradient of each pooled value (kept where it is > 0, the relu's
 * derivative) goes to its window's argmax pixel of a 26x26 map per channel,
 * channel-major so that each map row is contiguous; then every channel's
 * map, weighted by each of its 9 weights, is added into the input shifted
 * by the weight's offset: rows of 26 multiply-adds, which the compiler
 * vectorises for each level. */
static void conv1_pool_backward_input(float *dinp, const float *dout, const uint8_t *idx,
                                      const float *out, const float *weight, int B)
{
    // dinp (B,28,28,1), dout/idx/out (B,13,13,32), weight (32,3,3,1)
    float da[32][26][26];
    for (int b = 0; b < B; b++) {
        float *dx = dinp + (size_t)b * 784;
        memset(da, 0, sizeof(da));
        memset(dx, 0, 784 * sizeof(float));
        for (int ph = 0; ph < 13; ph++)
            for (int pw = 0; pw < 13; pw++) {
                const size_t o = ((size_t)(b * 13 + ph) * 13 + pw) * 32;
                for (int c = 0; c < 32; c++) {
                    const int q = idx[o + c];
                    da[c][2 * ph + (q >> 1)][2 * pw + (q & 1)] = out[o + c] > 0.0f ? dout[o + c] : 0.0f;
                }
            }
        for (int c = 0; c < 32; c++)
            for (int k = 0; k < 9; k++) {
                const float w = weight[c * 9 + k];
                const int kh = k / 3, kw = k % 3;
                for (int y = 0; y < 26; y++) {
                    float *d = dx + (y + kh) * 28 + kw;
                    const float *a = da[c][y];
                    for (int x = 0; x < 26; x++)
                        d[x] += w * a[x];
                }
            }
    }
}

/* ---- the backward of conv3x3 + relu + 2x2 max pool ------------------------ */

/* The plain loops of pool_dw_row96 and pool_dx_patch96 for any C <= 64
 * (seg = 3*C floats per patch row). */
static void pool_dw_row(float *dw, const float *inp, const size_t *off, const float *g, int n,
                        int rowstride, int seg)
{
    float acc[9 * 64];
    memset(acc, 0, sizeof(float) * 3 * seg);
    for (int e = 0; e < n; e++)
        for (int kh = 0; kh < 3; kh++) {
            const float *x = inp + off[e] + kh * rowstride;
            float *a = acc + kh * seg;
            for (int j = 0; j < seg; j++)
                a[j] += g[e] * x[j];
        }
    for (int k = 0; k < 3 * seg; k++)
        dw[k] += acc[k];
}

static void pool_dx_patch(float *d, int rowstride, int seg, const float *weight, const int *oc,
                          const float *g, int n)
{
    float acc[9 * 64];
    const int K = 3 * seg;
    memset(acc, 0, sizeof(float) * K);
    for (int e = 0; e < n; e++) {
        const float *w = weight + (size_t)oc[e] * K;
        for (int k = 0; k < K; k++)
            acc[k] += g[e] * w[k];
    }
    for (int kh = 0; kh < 3; kh++)
        for (int j = 0; j < seg; j++)
            d[kh * rowstride + j] += acc[kh * seg + j];
}

/* Pooling windows whose entries one weight-gradient pass gathers. */
#define POOL_SPAN 256

/* conv3x3_pool_backward (model/layers.h). The convolution's output
 * gradient has at most one nonzero entry per pooled value: its gradient,
 * at the pixel of the window its argmax names, where the pooled value is
 * > 0. The weight gradient of output channel oc is the sum of its entries'
 * input patches times their gradient (the entries listed per channel, up
 * to POOL_SPAN windows at a time); the input gradient of each pixel's patch
 * is the sum of the weight rows of the channels with an entry there, times
 * their gradient (listed per pixel of each window), added into dinp. The
 * lists are built without branches. */
static void conv3x3_pool_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                  const uint8_t *idx, const float *pooled, const float *inp,
                                  const float *weight, int B, int H, int W, int C, int OC)
{
    const int PW = (W - 2) / 2, NP = (H - 2) / 2 * PW, seg = 3 * C, rs = W * C;
    /* the offset of each window position from the window's first pixel */
    const size_t pos[4] = {0, (size_t)C, (size_t)rs, (size_t)rs + C};
    if (dinp) {
        memset(dinp, 0, sizeof(float) * (size_t)B * H * W * C);
        for (int b = 0; b < B; b++)
            for (int q = 0; q < NP; q++) {
                const size_t o = ((size_t)b * NP + q) * OC;
                int oc[4][64], n[4] = {0, 0, 0, 0};
                float g[4][64];
                for (int c = 0; c < OC; c++) {
                    const int j = idx[o + c];
                    oc[j][n[j]] = c;
                    g[j][n[j]] = dout[o + c];
                    n[j] += pooled[o + c] > 0.0f;
                }
                float *d = dinp + ((size_t)(b * H + 2 * (q / PW)) * W + 2 * (q % PW)) * C;
                for (int j = 0; j < 4; j++) {
                    if (!n[j])
                        continue;
#if defined(HAVE_POOL96)
                    if (seg == 96) {
                        pool_dx_patch96(d + pos[j], rs, weight, oc[j], g[j], n[j]);
                        continue;
                    }
#endif
                    pool_dx_patch(d + pos[j], rs, seg, weight, oc[j], g[j], n[j]);
                }
            }
    }
    if (!dweight)
        return;
    const size_t total = (size_t)B * NP;
    for (size_t t0 = 0; t0 < total; t0 += POOL_SPAN) {
        const int nt = total - t0 < POOL_SPAN ? (int)(total - t0) : POOL_SPAN;
        size_t base[POOL_SPAN], off[POOL_SPAN];
        float g[POOL_SPAN];
        for (int t = 0; t < nt; t++) {
            const size_t b = (t0 + t) / NP, q = (t0 + t) % NP;
            base[t] = ((b * H + 2 * (q / PW)) * W + 2 * (q % PW)) * C;
        }
        for (int c = 0; c < OC; c++) {
            int n = 0;
            for (int t = 0; t < nt; t++) {
                const size_t i = (t0 + t) * OC + c;
                off[n] = base[t] + pos[idx[i]];
                g[n] = dout[i];
                n += pooled[i] > 0.0f;
            }
            float db = 0.0f;
            for (int e = 0; e < n; e++)
                db += g[e];
            dbias[c] += db;
#if defined(HAVE_POOL96)
            if (seg == 96) {
                pool_dw_row96(dweight + (size_t)c * 9 * C, inp, off, g, n, rs);
                continue;
            }
#endif
            pool_dw_row(dweight + (size_t)c * 9 * C, inp, off, g, n, rs, seg);
        }
    }
}

#if !defined(HAVE_CONV3X3_PACK)
static void conv3x3_pack(float *wt, const float *weight, int C, int OC, int k0, int k1)
{
    pack_rows_scalar(wt, weight, 9 * C, OC, k0, k1);
}
#endif

const kernel_ops KT_CAT(kernels_, KERNELS_ISA) = {
    .name = KT_STR(KERNELS_ISA),
#if defined(HAVE_CONV3X3_DIRECT)
    .conv3x3_direct = conv3x3_direct,
#endif
    .conv1_pool_forward = conv1_pool_forward,
    .conv1_pool_backward = conv1_pool_backward,
    .conv1_pool_backward_input = conv1_pool_backward_input,
    .conv3x3_pack = conv3x3_pack,
    .conv3x3_pool_backward = conv3x3_pool_backward,
    .conv3x3_c1_forward = conv3x3_c1_forward,
    .conv3x3_c1_backward = conv3x3_c1_backward,
    .im2col3x3 = im2col3x3,
    .col2im3x3 = col2im3x3,
    .bias_act = bias_act,
    .colsum_acc = colsum_acc,
    .maxpool2_forward = maxpool2_forward,
    .maxpool2_backward = maxpool2_backward,
    .relu_backward_inplace = relu_backward_inplace,
    .adam_update = adam_update,
};
