/* model/layers.h -- the layers of the network as plain functions on float
 * arrays, in the llm.c style: outputs first, then inputs, weights, sizes.
 * Layout as in model/net.h: activations NHWC, conv weights (OC,KH,KW,C),
 * dense weights (OUT,IN).
 *
 * Backward functions ACCUMULATE (+=) into weight and bias gradients; input
 * gradients (dinp) are OVERWRITTEN. Every fast function has a naive *_ref
 * twin used by the tests as the reference. None of them allocates. */
#ifndef MNISTD_LAYERS_H
#define MNISTD_LAYERS_H

#include <stdint.h>

/* Valid 3x3 convolution, stride 1: OH = H-2, OW = W-2.
 * out (B,OH,OW,OC); inp (B,H,W,C); weight (OC,3,3,C); bias (OC).
 * col: scratch of B*OH*OW*9*C floats receiving im2col(inp) (rows are output
 * pixels, columns (kh,kw,c)); for C == 1 a direct kernel is used and col may
 * be NULL. If relu is nonzero, out = max(0, conv). */
void conv3x3_forward(float *out, float *col, const float *inp, const float *weight,
                     const float *bias, int B, int H, int W, int C, int OC, int relu);

/* Packs conv weights (OC,3,3,C) for conv3x3_rows_forward: the rows
 * k0..k1-1 (0 <= k0 <= k1 <= 9*C) of the (9*C, OC) matrix wt[k][oc] =
 * weight[oc][k], so that threads can pack parts. */
void conv3x3_pack(float *wt, const float *weight, int C, int OC, int k0, int k1);

/* The output rows r0..r1-1 and columns 0..OW-1 (OW <= W-2) of the valid 3x3
 * convolution of ONE image inp (H,W,C), C > 1, for the OC output channels
 * whose packed weights start at wt (row stride ldw, from conv3x3_pack; a
 * column offset selects a slice of the channels) and whose biases start at
 * bias. Pixel (oh, ow) is written to out + ((oh-r0)*OW + ow)*ldo, relu
 * applied if nonzero. col: scratch of (r1-r0)*OW*9*C floats (used where the
 * level has no direct kernel). */
void conv3x3_rows_forward(float *out, int ldo, float *col, const float *inp, int H, int W,
                          int C, const float *wt, int ldw, const float *bias, int OC, int r0,
                          int r1, int OW, int relu);

/* Backward of conv3x3_forward. dout (B,OH,OW,OC) is the gradient w.r.t. the
 * convolution's output (relu already applied by the caller). col must hold
 * im2col(inp) as left by conv3x3_forward (unused when C == 1, where inp is
 * read directly). dweight (OC,3,3,C) and dbias (OC) are accumulated (for
 * C > 1 both may be NULL: the input gradient alone); dinp
 * (B,H,W,C) is overwritten unless NULL; dcol is scratch of the size of col
 * (may be NULL when dinp is NULL). */
void conv3x3_backward(float *dinp, float *dweight, float *dbias, float *dcol,
                      const float *dout, const float *inp, const float *col,
                      const float *weight, int B, int H, int W, int C, int OC);

/* The backward of a valid 3x3 convolution followed by relu and 2x2 max
 * pooling (maxpool2_forward), from the gradient of the pooled output: dout,
 * idx and pooled are (B,PH,PW,OC) with PH = (H-2)/2, PW = (W-2)/2 (the
 * gradient of the pooled values, the window argmaxes and the pooled values
 * as maxpool2_forward left them); inp (B,H,W,C); weight (OC,3,3,C); C and
 * OC at most 64. The gradient of each pooled value reaches the one
 * convolution output its argmax names, where the pooled value is > 0 (the
 * relu's derivative); the rest of the convolution's output gradient is
 * zero (so the pixels the pooling drops need not exist in the forward).
 * Only those nonzero entries are visited: a quarter or less of what
 * maxpool2_backward then conv3x3_backward compute. dweight and dbias are
 * accumulated (both may be NULL: the input gradient alone); dinp (B,H,W,C)
 * is overwritten unless NULL. */
void conv3x3_pool_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const uint8_t *idx, const float *pooled, const float *inp,
                           const float *weight, int B, int H, int W, int C, int OC);

/* 2x2 max pooling, stride 2, floor: OH = H/2, OW = W/2. out (B,OH,OW,C);
 * idx (B,OH,OW,C) receives the argmax within each window (0..3, row-major;
 * the first maximum wins), may be NULL for inference. */
void maxpool2_forward(float *out, uint8_t *idx, const float *inp, int B, int H, int W, int C);

/* dinp (B,H,W,C) is overwritten: dout routed to the argmax, zero elsewhere.
 * If mask is not NULL (the pooled layer's input, i.e. a relu output), the
 * gradient is kept only where mask > 0 (the relu's derivative). */
void maxpool2_backward(float *dinp, const float *dout, const uint8_t *idx, const float *mask,
                       int B, int H, int W, int C);

/* Dense: out (B,OUT) = inp (B,IN) . weight^T (OUT,IN) + bias; relu optional. */
void dense_forward(float *out, const float *inp, const float *weight, const float *bias,
                   int B, int IN, int OUT, int relu);
/* dout (B,OUT) with the relu (if any) already applied by the caller.
 * dinp (B,IN) overwritten unless NULL; dweight, dbias accumulated unless
 * both are NULL (the input gradient alone). */
void dense_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                    const float *inp, const float *weight, int B, int IN, int OUT);

/* Multiplies d (n) by the relu derivative of y (n): d = y > 0 ? d : 0. */
void relu_backward_inplace(float *d, const float *y, int n);

/* Softmax over 10 classes and cross-entropy. probs (B,10); returns the SUM of
 * the per-sample losses (-log p[label]) in double; *correct (may be NULL)
 * gets the count whose argmax equals the label. */
double softmax_xent_forward(float *probs, const float *logits, const uint8_t *labels,
                            int B, int *correct);
/* dlogits (B,10) = (probs - onehot(label)) * scale. */
void softmax_xent_backward(float *dlogits, const float *probs, const uint8_t *labels,
                           int B, float scale);
/* probs (B,10) = softmax(logits). */
void softmax_forward(float *probs, const float *logits, int B);

/* Naive references. */
void conv3x3_forward_ref(float *out, const float *inp, const float *weight, const float *bias,
                         int B, int H, int W, int C, int OC, int relu);
void conv3x3_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout,
                          const float *inp, const float *weight, int B, int H, int W, int C,
                          int OC);
void dense_forward_ref(float *out, const float *inp, const float *weight, const float *bias,
                       int B, int IN, int OUT, int relu);
void dense_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int B, int IN, int OUT);

/* ---- fused first layer ---------------------------------------------------- */

/* conv1 + bias + relu + 2x2 max-pool in one pass, for the fixed shapes of
 * the network: inp (B,28,28,1), weight (32,3,3,1), bias (32) -> out
 * (B,13,13,32); idx (B,13,13,32) receives the argmax within each window (as
 * maxpool2_forward; may be NULL). The 26x26x32 activation is never stored. */
void conv1_pool_forward(float *out, uint8_t *idx, const float *inp, const float *weight,
                        const float *bias, int B);

/* The pooled rows r0..r1-1 (0 <= r0 <= r1 <= 13) of conv1_pool_forward for
 * one image, without the argmaxes; the other rows of out are left alone. */
void conv1_pool_forward_rows(float *out, const float *inp, const float *weight,
                             const float *bias, int r0, int r1);

/* Backward of conv1_pool_forward: dout (B,13,13,32) is the gradient w.r.t.
 * the pooled output; out and idx are what the forward wrote. Accumulates
 * dweight (32,3,3,1) and dbias (32). (No input gradient: the input is data.) */
void conv1_pool_backward(float *dweight, float *dbias, const float *dout, const uint8_t *idx,
                         const float *out, const float *inp, int B);

/* The input gradient of conv1_pool_forward, which training never needs (the
 * input is data) but explanations do: dinp (B,28,28,1) is OVERWRITTEN with
 * the gradient w.r.t. the input, given dout (B,13,13,32), the gradient
 * w.r.t. the pooled output; out and idx are what the forward wrote, weight
 * is (32,3,3,1). The gradient reaches each window's argmax pixel where the
 * pooled value is > 0 (the relu's derivative), then goes back through the
 * convolution. */
void conv1_pool_backward_input(float *dinp, const float *dout, const uint8_t *idx,
                               const float *out, const float *weight, int B);

#endif
