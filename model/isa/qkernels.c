/* model/isa/qkernels.c -- the integer kernel of model/qkernels.h, compiled
 * once per table by the Makefile: QKERNELS_ISA names it (portable, avx2,
 * avxvnni, avx512) and -march its instruction set (the baseline, x86-64-v3,
 * x86-64-v3 plus AVX-VNNI, and x86-64-v4 plus AVX512-VNNI). A fifth copy,
 * avxvnni_evex, is the avxvnni table's code with the EVEX form of the same
 * instruction (AVX512-VNNI on 256-bit vectors), so that machines without
 * AVX-VNNI but with AVX512-VNNI can test it. Everything is static but the
 * one table. */
#include <stdint.h>
#include <string.h>

#include "model/qkernels.h"

#if defined(__AVX512VNNI__) || defined(__AVX2__) || defined(QK_VNNI256)
#include <immintrin.h>
#endif

#ifndef QKERNELS_ISA
#error "QKERNELS_ISA must name the level (the Makefile sets it)"
#endif
#define QK_CAT2(a, b) a##b
#define QK_CAT(a, b) QK_CAT2(a, b)

static inline int32_t load_u32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

#if defined(QK_VNNI256)
/* AVX-VNNI: vpdpbusd on 256-bit vectors, with 16 of them. Layout as the
 * avx512-vnni table's: wp[g][oc][4], so the 32 channels of a half are 128
 * bytes of each group's row of 256, four vectors of 8 channels. */
#define QK_PACK_GROUP4
#if defined(QK_VNNI256_EVEX)
#define QK_NAME "avx-vnni (EVEX twin)"
#define QK_DPBUSD(acc, a, w) _mm256_dpbusd_epi32(acc, a, w)
#else
#define QK_NAME "avx-vnni"
#define QK_DPBUSD(acc, a, w) _mm256_dpbusd_avx_epi32(acc, a, w)
#endif

/* N <= 2 pixels x the 32 channels of one half (8 accumulators, 4 weight
 * vectors and the broadcast input: 13 of 16 registers); wp starts at the
 * half's first channel in the first group's row. */
static inline __attribute__((always_inline)) void vnni256_block(int32_t *out, const uint8_t *const *base,
                                                                const int N, const int *tapoff, int ntaps,
                                                                int G, const int8_t *wp)
{
    __m256i acc[2][4];
    for (int n = 0; n < N; n++)
        for (int j = 0; j < 4; j++)
            acc[n][j] = _mm256_setzero_si256();
    const int8_t *w = wp;
    for (int t = 0; t < ntaps; t++) {
        const uint8_t *p[2];
        for (int n = 0; n < N; n++)
            p[n] = base[n] + tapoff[t];
        for (int g = 0; g < G; g++, w += 4 * QK_OC) {
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)w);
            const __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + 32));
            const __m256i w2 = _mm256_loadu_si256((const __m256i *)(w + 64));
            const __m256i w3 = _mm256_loadu_si256((const __m256i *)(w + 96));
            for (int n = 0; n < N; n++) {
                const __m256i a = _mm256_set1_epi32(load_u32(p[n] + 4 * g));
                acc[n][0] = QK_DPBUSD(acc[n][0], a, w0);
                acc[n][1] = QK_DPBUSD(acc[n][1], a, w1);
                acc[n][2] = QK_DPBUSD(acc[n][2], a, w2);
                acc[n][3] = QK_DPBUSD(acc[n][3], a, w3);
            }
        }
    }
    for (int n = 0; n < N; n++)
        for (int j = 0; j < 4; j++)
            _mm256_storeu_si256((__m256i *)(out + n * QK_OC + 8 * j), acc[n][j]);
}

static void qdot(int32_t *out, const uint8_t *const *base, int np, const int *tapoff, int ntaps,
                 int C, const void *wp)
{
    const int G = C / 4;
    for (int h = 0; h < 2; h++) {
        const int8_t *w = (const int8_t *)wp + h * 4 * 32;
        int p = 0;
        for (; p + 2 <= np; p += 2)
            vnni256_block(out + p * QK_OC + h * 32, base + p, 2, tapoff, ntaps, G, w);
        if (p < np)
            vnni256_block(out + p * QK_OC + h * 32, base + p, 1, tapoff, ntaps, G, w);
    }
}

#elif defined(__AVX512VNNI__) && defined(__AVX512F__)
/* Layout: for each group g of 4 consecutive k, the 64 output channels' 4
 * bytes in a row: wp[g][oc][4], so one 64-byte load holds 16 channels and
 * vpdpbusd multiplies them with 4 input channels broadcast to every lane. */
#define QK_NAME "avx512-vnni"
#define QK_PACK_GROUP4

/* N pixels x 64 channels in 4N accumulators; N is a constant where this is
 * inlined, so the accumulators stay in registers (N <= 6: 24 of 32). */
static inline __attribute__((always_inline)) void vnni_block(int32_t *out, const uint8_t *const *base,
                                                             const int N, const int *tapoff, int ntaps,
                                                             int G, const int8_t *wp)
{
    __m512i acc[6][4];
    for (int n = 0; n < N; n++)
        for (int j = 0; j < 4; j++)
            acc[n][j] = _mm512_setzero_si512();
    const int8_t *w = wp;
    for (int t = 0; t < ntaps; t++) {
        const uint8_t *p[6];
        for (int n = 0; n < N; n++)
            p[n] = base[n] + tapoff[t];
        for (int g = 0; g < G; g++, w += 256) {
            const __m512i w0 = _mm512_load_si512((const void *)w);
            const __m512i w1 = _mm512_load_si512((const void *)(w + 64));
            const __m512i w2 = _mm512_load_si512((const void *)(w + 128));
            const __m512i w3 = _mm512_load_si512((const void *)(w + 192));
            for (int n = 0; n < N; n++) {
                const __m512i a = _mm512_set1_epi32(load_u32(p[n] + 4 * g));
                acc[n][0] = _mm512_dpbusd_epi32(acc[n][0], a, w0);
                acc[n][1] = _mm512_dpbusd_epi32(acc[n][1], a, w1);
                acc[n][2] = _mm512_dpbusd_epi32(acc[n][2], a, w2);
                acc[n][3] = _mm512_dpbusd_epi32(acc[n][3], a, w3);
            }
        }
    }
    for (int n = 0; n < N; n++)
        for (int j = 0; j < 4; j++)
            _mm512_storeu_si512((void *)(out + n * QK_OC + 16 * j), acc[n][j]);
}

static void qdot(int32_t *out, const uint8_t *const *base, int np, const int *tapoff, int ntaps,
                 int C, const void *wp)
{
    const int G = C / 4;
    int p = 0;
    for (; p + 5 <= np; p += 5)
        vnni_block(out + p * QK_OC, base + p, 5, tapoff, ntaps, G, wp);
    switch (np - p) {
    case 4: vnni_block(out + p * QK_OC, base + p, 4, tapoff, ntaps, G, wp); break;
    case 3: vnni_block(out + p * QK_OC, base + p, 3, tapoff, ntaps, G, wp); break;
    case 2: vnni_block(out + p * QK_OC, base + p, 2, tapoff, ntaps, G, wp); break;
    case 1: vnni_block(out + p * QK_OC, base + p, 1, tapoff, ntaps, G, wp); break;
    default: break;
    }
}

/* conv1 on VNNI: one 4-byte load per kernel row covers its 3 pixels and
 * the next (weight 0); 32 channels are two vectors, so a pooled pixel's 4
 * conv pixels are 8 accumulators, and the 6 weight vectors stay in
 * registers for the whole image. */
#define HAVE_CONV1_POOL
static void conv1_pool(uint8_t *q, const uint8_t *img, const int8_t *w1, const float *m, const float *c)
{
    __m512i w[3][2];
    for (int kh = 0; kh < 3; kh++)
        for (int j = 0; j < 2; j++)
            w[kh][j] = _mm512_loadu_si512((const void *)(w1 + (kh * 32 + 16 * j) * 4));
    const __m512 m0 = _mm512_loadu_ps(m), m1 = _mm512_loadu_ps(m + 16);
    const __m512 c0 = _mm512_loadu_ps(c), c1 = _mm512_loadu_ps(c + 16);
    const __m512 zero = _mm512_setzero_ps(), top = _mm512_set1_ps(255.0f), half = _mm512_set1_ps(0.5f);
    for (int py = 0; py < 13; py++)
        for (int px = 0; px < 13; px++) {
            __m512i best[2];
            for (int d = 0; d < 4; d++) {
                const uint8_t *p = img + (2 * py + d / 2) * 28 + 2 * px + d % 2;
                __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
                for (int kh = 0; kh < 3; kh++) {
                    const __m512i a = _mm512_set1_epi32(load_u32(p + kh * 28));
                    s0 = _mm512_dpbusd_epi32(s0, a, w[kh][0]);
                    s1 = _mm512_dpbusd_epi32(s1, a, w[kh][1]);
                }
                best[0] = d ? _mm512_max_epi32(best[0], s0) : s0;
                best[1] = d ? _mm512_max_epi32(best[1], s1) : s1;
            }
            for (int j = 0; j < 2; j++) {
                __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(best[j]), j ? m1 : m0), j ? c1 : c0);
                v = _mm512_min_ps(_mm512_max_ps(v, zero), top);
                const __m512i r = _mm512_cvttps_epi32(_mm512_add_ps(v, half));
                _mm_storeu_si128((__m128i *)(q + (py * 13 + px) * 32 + 16 * j), _mm512_cvtepi32_epi8(r));
            }
        }
}

#elif defined(__AVX2__)
/* No VNNI: vpmaddubsw would saturate u8 x s8 pairs, so both sides are
 * widened to 16 bits and vpmaddwd sums pairs of products into 32 bits,
 * exactly. Layout: for each pair of consecutive k, the 64 channels' two
 * int16 in a row: wp[k/2][oc][2]. The input pair is widened on the fly. */
#define QK_NAME "avx2"
#define QK_PACK_PAIR16

/* N <= 2 pixels x 32 channels (8 accumulators) per pass over the weights,
 * which start at the half's first channel in each row of 128 int16. */
static inline __attribute__((always_inline)) void madd_block(int32_t *out, const uint8_t *const *base,
                                                             const int N, const int *tapoff, int ntaps,
                                                             int C, const int16_t *wp)
{
    __m256i acc[2][4];
    for (int n = 0; n < N; n++)
        for (int j = 0; j < 4; j++)
            acc[n][j] = _mm256_setzero_si256();
    for (int t = 0; t < ntaps; t++) {
        const uint8_t *p[2];
        for (int n = 0; n < N; n++)
            p[n] = base[n] + tapoff[t];
        const int16_t *w = wp + (size_t)t * C * QK_OC;
        for (int c = 0; c < C; c += 2, w += 2 * QK_OC) {
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)w);
            const __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + 16));
            const __m256i w2 = _mm256_loadu_si256((const __m256i *)(w + 32));
            const __m256i w3 = _mm256_loadu_si256((const __m256i *)(w + 48));
            for (int n = 0; n < N; n++) {
                const int32_t pair = (int32_t)p[n][c] | (int32_t)p[n][c + 1] << 16;
                const __m256i a = _mm256_set1_epi32(pair);
                acc[n][0] = _mm256_add_epi32(acc[n][0], _mm256_madd_epi16(a, w0));
                acc[n][1] = _mm256_add_epi32(acc[n][1], _mm256_madd_epi16(a, w1));
                acc[n][2] = _mm256_add_epi32(acc[n][2], _mm256_madd_epi16(a, w2));
                acc[n][3] = _mm256_add_epi32(acc[n][3], _mm256_madd_epi16(a, w3));
            }
        }
    }
    for (int n = 0; n < N; n++)
        for (int j = 0; j < 4; j++)
            _mm256_storeu_si256((__m256i *)(out + n * QK_OC + 8 * j), acc[n][j]);
}

static void qdot(int32_t *out, const uint8_t *const *base, int np, const int *tapoff, int ntaps,
                 int C, const void *wp)
{
    /* the two halves of the channels, 32 apart: 64 int16 into each pair's
     * row of 128 */
    for (int h = 0; h < 2; h++) {
        const int16_t *w = (const int16_t *)wp + h * QK_OC;
        int p = 0;
        for (; p + 2 <= np; p += 2)
            madd_block(out + p * QK_OC + h * 32, base + p, 2, tapoff, ntaps, C, w);
        if (p < np)
            madd_block(out + p * QK_OC + h * 32, base + p, 1, tapoff, ntaps, C, w);
    }
}

#else
/* Plain C: wp[k][oc], the inner loop over the 64 channels for the
 * compiler to vectorise; zero inputs (most, after a relu) are skipped. */
#define QK_NAME "portable"
#define QK_PACK_PLAIN

static void qdot(int32_t *out, const uint8_t *const *base, int np, const int *tapoff, int ntaps,
                 int C, const void *wpv)
{
    const int8_t *wp = wpv;
    for (int p = 0; p < np; p++) {
        int32_t acc[QK_OC] = {0};
        for (int t = 0; t < ntaps; t++) {
            const uint8_t *a = base[p] + tapoff[t];
            const int8_t *w = wp + (size_t)t * C * QK_OC;
            for (int c = 0; c < C; c++) {
                const int32_t v = a[c];
                if (!v)
                    continue;
                for (int oc = 0; oc < QK_OC; oc++)
                    acc[oc] += v * w[c * QK_OC + oc];
            }
        }
        memcpy(out + p * QK_OC, acc, sizeof acc);
    }
}
#endif

/* ---- the requantizations, plain C the compiler vectorises per level ---- */

static void requant(uint8_t *q, const int32_t *acc, const float *m, const float *c, int n)
{
    for (int i = 0; i < n; i++)
        for (int oc = 0; oc < QK_OC; oc++)
            q[i * QK_OC + oc] = (uint8_t)qk_u8((float)acc[i * QK_OC + oc] * m[oc] + c[oc]);
}

static void pool_requant(uint8_t *q, const int32_t *acc, const float *m, const float *c)
{
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 5; x++) {
            const int32_t *a = acc + (2 * y * 10 + 2 * x) * QK_OC;
            uint8_t *o = q + (y * 5 + x) * QK_OC;
            for (int oc = 0; oc < QK_OC; oc++) {
                int32_t v = a[oc];
                v = a[QK_OC + oc] > v ? a[QK_OC + oc] : v;
                v = a[10 * QK_OC + oc] > v ? a[10 * QK_OC + oc] : v;
                v = a[11 * QK_OC + oc] > v ? a[11 * QK_OC + oc] : v;
                o[oc] = (uint8_t)qk_u8((float)v * m[oc] + c[oc]);
            }
        }
}

#if !defined(HAVE_CONV1_POOL)
static void conv1_pool(uint8_t *q, const uint8_t *img, const int8_t *w1, const float *m, const float *c)
{
    for (int py = 0; py < 13; py++)
        for (int px = 0; px < 13; px++) {
            int32_t best[32];
            for (int d = 0; d < 4; d++) {
                const uint8_t *p = img + (2 * py + d / 2) * 28 + 2 * px + d % 2;
                int32_t s[32] = {0};
                for (int kh = 0; kh < 3; kh++)
                    for (int oc = 0; oc < 32; oc++)
                        for (int kw = 0; kw < 4; kw++)
                            s[oc] += p[kh * 28 + kw] * w1[(kh * 32 + oc) * 4 + kw];
                for (int oc = 0; oc < 32; oc++)
                    best[oc] = d == 0 || s[oc] > best[oc] ? s[oc] : best[oc];
            }
            for (int oc = 0; oc < 32; oc++)
                q[(py * 13 + px) * 32 + oc] = (uint8_t)qk_u8((float)best[oc] * m[oc] + c[oc]);
        }
}
#endif

static size_t packed_size(int K)
{
#if defined(QK_PACK_PAIR16)
    return (size_t)K * QK_OC * sizeof(int16_t);
#else
    return (size_t)K * QK_OC;
#endif
}

static void pack(void *wpv, const int8_t *w, int K)
{
    for (int k = 0; k < K; k++)
        for (int oc = 0; oc < QK_OC; oc++) {
            const int8_t v = w[(size_t)oc * K + k];
#if defined(QK_PACK_GROUP4)
            ((int8_t *)wpv)[((size_t)(k / 4) * QK_OC + oc) * 4 + k % 4] = v;
#elif defined(QK_PACK_PAIR16)
            ((int16_t *)wpv)[((size_t)(k / 2) * QK_OC + oc) * 2 + k % 2] = v;
#else
            ((int8_t *)wpv)[(size_t)k * QK_OC + oc] = v;
#endif
        }
}

const qkernel_ops QK_CAT(qkernels_, QKERNELS_ISA) = {
    .name = QK_NAME,
    .packed_size = packed_size,
    .pack = pack,
    .qdot = qdot,
    .conv1_pool = conv1_pool,
    .requant = requant,
    .pool_requant = pool_requant,
};
