/* model/kernels.h -- the hot loops of the layers, one table per instruction
 * set, chosen once at startup from what the CPU has.
 *
 * The binary is built for a portable baseline (the Makefile's ARCH); each
 * table comes from model/isa/kernels.c compiled again with its own -march
 * (x86-64-v3 for avx2: AVX2+FMA; x86-64-v4 for avx512). model/layers.c calls
 * through the table in use. A new kernel is a new member here, filled in by
 * model/isa/kernels.c (intrinsics under #if for the instruction set, or the
 * plain C loop the compiler vectorises for it).
 *
 * The level is the best the CPU supports unless MNISTD_KERNELS (portable,
 * avx2, avx512; empty or "auto" = the best) or kernels_use() says otherwise. */
#ifndef MNISTD_KERNELS_H
#define MNISTD_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { KERNELS_PORTABLE, KERNELS_AVX2, KERNELS_AVX512, KERNELS_NLEVELS } kernels_level;

typedef struct {
    const char *name; /* "portable", "avx2", "avx512" */
    /* conv1 + bias + relu + 2x2 max-pool, fused (model/layers.h), for the
     * pooled rows r0..r1-1 of each image */
    void (*conv1_pool_forward)(float *out, uint8_t *idx, const float *inp, const float *weight,
                               const float *bias, int B, int r0, int r1);
    void (*conv1_pool_backward)(float *dweight, float *dbias, const float *dout,
                                const uint8_t *idx, const float *out, const float *inp, int B);
    /* its input gradient (explanations; training never needs it) */
    void (*conv1_pool_backward_input)(float *dinp, const float *dout, const uint8_t *idx,
                                      const float *out, const float *weight, int B);
    /* the direct 3x3 convolution of a one-channel input */
    void (*conv3x3_c1_forward)(float *out, const float *inp, const float *weight,
                               const float *bias, int B, int H, int W, int OC, int relu);
    void (*conv3x3_c1_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
                                const float *inp, const float *weight, int B, int H, int W,
                                int OC);
    /* conv3x3_pack of model/layers.h */
    void (*conv3x3_pack)(float *wt, const float *weight, int C, int OC, int k0, int k1);
    /* The direct 3x3 convolution (C > 1) of output rows r0..r1-1, columns
     * 0..OW-1, of one image, with weights packed (9*C, ldw) by
     * conv3x3_pack (model/layers.h); OC is 16, 32 or 64. NULL where the
     * level has none (model/layers.c then goes through sgemm); -1 for a
     * shape it does not take. */
    int (*conv3x3_direct)(float *out, int ldo, const float *inp, int H, int W, int C,
                          const float *wt, int ldw, const float *bias, int OC, int r0, int r1,
                          int OW, int relu);
    /* conv3x3_pool_backward of model/layers.h (C and OC at most 64) */
    void (*conv3x3_pool_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
                                  const uint8_t *idx, const float *pooled, const float *inp,
                                  const float *weight, int B, int H, int W, int C, int OC);
    /* the data movement around the sgemm calls (OpenBLAS picks its own
     * kernels for the CPU) */
    void (*im2col3x3)(float *col, const float *inp, int B, int H, int W, int C);
    void (*col2im3x3)(float *dinp, const float *dcol, int B, int H, int W, int C);
    void (*bias_act)(float *out, const float *bias, int M, int N, int relu);
    void (*colsum_acc)(float *dbias, const float *d, int M, int N);
    void (*maxpool2_forward)(float *out, uint8_t *idx, const float *inp, int B, int H, int W,
                             int C);
    void (*maxpool2_backward)(float *dinp, const float *dout, const uint8_t *idx,
                              const float *mask, int B, int H, int W, int C);
    void (*relu_backward_inplace)(float *d, const float *y, int n);
    /* Adam's update of n parameters with the bias-corrected rate lrt
     * (model/net.h, net_adam_step) */
    void (*adam_update)(float *params, const float *grads, float *m, float *v, size_t n,
                        float lrt, float b1, float b2, float eps);
} kernel_ops;

/* The table in use (selected on first call when kernels_use was not called). */
const kernel_ops *kernels(void);

/* Selects a level by name: "portable", "avx2", "avx512", or NULL, "" or
 * "auto" for the best this CPU runs. 0, or -1 with a message in err when the
 * name is unknown or the CPU lacks the instructions (a build for another
 * CPU family has the portable level only). */
int kernels_use(const char *name, char *err, size_t errlen);

/* The level kernels_use would select for name on a CPU whose best level is
 * best; -1 with a message in err when it cannot. */
int kernels_pick(const char *name, kernels_level best, char *err, size_t errlen);

/* Whether this CPU (and build) can run a level. */
int kernels_supported(kernels_level level);

/* The name of a level; NULL when out of range. */
const char *kernels_level_name(kernels_level level);

/* "avx512 (supported: portable avx2 avx512)": the level in use and every
 * level this CPU runs, for logs, --version and GET /model. */
void kernels_describe(char *buf, size_t len);

#endif
