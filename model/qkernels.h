/* model/qkernels.h -- the integer kernel of int8 inference (model/quant.h),
 * one table per instruction set, like model/kernels.h.
 *
 * Each table comes from model/isa/qkernels.c compiled once: the build's
 * baseline (plain C), x86-64-v3 (AVX2: u8 and s8 widened to 16 bits,
 * vpmaddwd), x86-64-v3 with AVX-VNNI (vpdpbusd on 256-bit vectors, VEX) and
 * x86-64-v4 with AVX512-VNNI (vpdpbusd, four u8 x s8 products per 32-bit
 * lane). qkernels() follows the FP32 level in use (kernels()): avx512 takes
 * the AVX512-VNNI table when the CPU has AVX512-VNNI; avx512 without it, and
 * avx2, take the AVX-VNNI table when the CPU has AVX-VNNI, the avx2 table
 * otherwise. Every table computes the same integers: the sums are exact in
 * 32 bits (|sum| <= K * 255 * 127 < 2^31 for K <= 66,000). */
#ifndef MNISTD_QKERNELS_H
#define MNISTD_QKERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Output channels of every integer layer (conv2, conv3, fc1). */
#define QK_OC 64

typedef struct {
    const char *name; /* "portable", "avx2", "avx512-vnni" */
    /* Bytes of the packed form of a (QK_OC, K) s8 matrix (K a multiple of 4). */
    size_t (*packed_size)(int K);
    /* Packs w (QK_OC, K) row-major, s8 in -127..127, into wp (packed_size(K)
     * bytes, 64-byte aligned) in the layout qdot reads. */
    void (*pack)(void *wp, const int8_t *w, int K);
    /* out (np, QK_OC) int32: out[p][oc] = sum over taps t and channels c of
     * base[p][tapoff[t] + c] * w[oc][t*C + c], with K = ntaps*C (C a multiple
     * of 4) and wp packed from w. A 3x3 convolution has one base per output
     * pixel and 9 taps; a dense layer one base per image and 1 tap. */
    void (*qdot)(int32_t *out, const uint8_t *const *base, int np, const int *tapoff, int ntaps,
                 int C, const void *wp);
    /* conv1 + 2x2 max pool + requantization (model/quant.h): q (13, 13, 32)
     * u8 from the image img (28x28 u8, then at least 4 more readable bytes)
     * and w1 (3, 32, 4) s8: for kernel row kh and channel oc, the weights of
     * kw = 0, 1, 2 and a 0. q = qk_u8(max of the window's sums * m[oc] +
     * c[oc]). */
    void (*conv1_pool)(uint8_t *q, const uint8_t *img, const int8_t *w1, const float *m,
                       const float *c);
    /* q (n, 64) = qk_u8(acc * m[oc] + c[oc]) for n rows of sums acc (n, 64) */
    void (*requant)(uint8_t *q, const int32_t *acc, const float *m, const float *c, int n);
    /* q (5, 5, 64) from sums acc (10, 10, 64): the 2x2 max pool of the sums,
     * then as requant */
    void (*pool_requant)(uint8_t *q, const int32_t *acc, const float *m, const float *c);
} qkernel_ops;

/* The requantization of one value (v = sum * m + c, computed as a product
 * then a sum, never fused): round half up, clamped to 0..255 (NaN gives 0).
 * Every level computes exactly this. */
static inline int32_t qk_u8(float v)
{
    v = v > 0.0f ? v : 0.0f;
    v = v < 255.0f ? v : 255.0f;
    return (int32_t)(v + 0.5f);
}

/* The table for the FP32 level in use (see above). */
const qkernel_ops *qkernels(void);

/* For tests: makes qkernels() answer k from now on (NULL: the CPU's choice
 * again). Contexts take their table when they are created and prepared. */
void qkernels_force(const qkernel_ops *k);

#endif
