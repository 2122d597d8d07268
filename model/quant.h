/* model/quant.h -- int8 inference of the network of model/net.h.
 *
 * What runs in int8 and what stays FP32:
 *   conv1 + relu + pool      FP32 (model/layers.h), its output quantized to u8
 *   conv2, conv3, fc1        u8 activations x s8 weights, int32 sums
 *                            (model/qkernels.h), conv2's 2x2 pool on the sums
 *   fc2, softmax             FP32 on fc1's dequantized output
 *
 * Weights are quantized symmetrically per output channel: w_q = round(w /
 * s_w[oc]) in -127..127, s_w[oc] = max |w[oc][.]| / 127. Activations after a
 * relu are >= 0, so they are u8 with one scale per tensor and no zero point:
 * a_q = min(255, round(a / s)). The three activation scales (conv2's, conv3's
 * and fc1's inputs) are calibrated on training images (quant_calibrate) and
 * stored with the model in its metadata (QUANT_SCALES_KEY). A layer's int32
 * sums become the next layer's u8 input through one multiply and add in
 * FP32 per value: q = min(255, round(max(0, sum * s_in * s_w[oc] / s_out +
 * bias[oc] / s_out))).
 *
 * The integer sums are exact; every FP32 step runs in code compiled once for
 * all levels, so the result depends only on the FP32 level's conv1, never on
 * the thread count or how a batch is split. */
#ifndef MNISTD_QUANT_H
#define MNISTD_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "model/checkpoint.h"
#include "model/mnist.h"

/* The model metadata key of the activation scales: three numbers separated
 * by single spaces (conv2's, conv3's and fc1's input scale). */
#define QUANT_SCALES_KEY "int8_scales"
/* The model metadata key of the int8 model's test accuracy (0..1). */
#define QUANT_ACCURACY_KEY "int8_test_accuracy"
#define QUANT_NSCALES 3
/* Training images quant_calibrate reads: the first of the set. */
#define QUANT_CALIB_IMAGES 2000

/* Parses a QUANT_SCALES_KEY value: exactly three finite numbers in
 * (0, 1e6]. 0, or -1 with err set. */
int quant_scales_parse(const char *s, float scales[QUANT_NSCALES], char *err, size_t errlen);

/* Writes scales as a QUANT_SCALES_KEY value (round trips exactly). */
void quant_scales_format(const float scales[QUANT_NSCALES], char *buf, size_t len);

/* Calibrates the activation scales of params on images x (n * 784 floats as
 * for net_forward): each scale is the largest value of its FP32 activation
 * over the n images, / 255. 0, or -1 with err set (allocation failure, n <
 * 1, or a network whose activations are all zero). */
int quant_calibrate(const float *params, const float *x, int n, float scales[QUANT_NSCALES],
                    char *err, size_t errlen);

/* The same on the first QUANT_CALIB_IMAGES images of a training set, on up
 * to threads threads (0 = all cores); the scales do not depend on threads. */
int quant_calibrate_set(const float *params, const mnist_set *train, int threads,
                        float scales[QUANT_NSCALES], char *err, size_t errlen);

/* Accuracy of params in int8 with scales on the whole set (threads as for
 * qnet_ctx_create). 0 with *accuracy set, or -1 with err set. */
int quant_accuracy(const float *params, const float scales[QUANT_NSCALES], const mnist_set *set,
                   int threads, double *accuracy, char *err, size_t errlen);

/* Calibrates params on train (quant_calibrate_set) and sets
 * QUANT_SCALES_KEY in meta; with test (may be NULL) also QUANT_ACCURACY_KEY,
 * the int8 accuracy on it. 0, or -1 with err set and meta unchanged. */
int quant_fill_meta(ckpt_meta *meta, const float *params, const mnist_set *train,
                    const mnist_set *test, int threads, char *err, size_t errlen);

/* An int8 inference context, like net_ctx (model/net.h): buffers for up to
 * max_batch images and threads threads (0 = all cores), allocated once;
 * used by one caller at a time. NULL on allocation failure. */
typedef struct qnet_ctx qnet_ctx;
qnet_ctx *qnet_ctx_create(int max_batch, int threads);
void qnet_ctx_free(qnet_ctx *ctx);

/* Quantizes params (NET_NUM_PARAMS floats) with scales into the context
 * and packs them for the kernel level in use now (qkernels()); params may
 * change or go away afterwards. Allocates nothing. 0, or -1 with err set
 * when a scale is not a finite positive number. */
int qnet_prepare(qnet_ctx *ctx, const float *params, const float scales[QUANT_NSCALES], char *err,
                 size_t errlen);

/* Forward pass of B images (B*784 floats in [0,1], NHWC) with the prepared
 * model: B*10 probabilities to probs and, when logits is not NULL, B*10
 * logits. Never allocates. 0, or -1 if B is out of 1..max_batch or nothing
 * is prepared. */
int qnet_forward(qnet_ctx *ctx, const float *x, int B, float *probs, float *logits);

/* The same network computed naively, for the tests: weights quantized and
 * every integer sum done in plain loops, one image at a time (FP32 conv1 as
 * above). logits (B*10). Allocates; 0 or -1. */
int qnet_forward_ref(const float *params, const float scales[QUANT_NSCALES], const float *x, int B,
                     float *logits);

/* The int8 kernel's three layers on raw integers, for the tests: out (OH,
 * OW, 64) of the valid 3x3 convolution of in (H, W, C) u8, columns 0..OW-1
 * of rows 0..OH-1, with w (64, 3, 3, C) s8; and the dense out (B, 64) of in
 * (B, IN) with w (64, IN). Uses qkernels() and scratch it allocates. 0 or
 * -1. */
int qconv3x3_int(int32_t *out, const uint8_t *in, int H, int W, int C, const int8_t *w, int OH, int OW);
int qdense_int(int32_t *out, const uint8_t *in, int B, int IN, const int8_t *w);

#endif
