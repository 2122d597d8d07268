/* model/explain.h -- why the network answered what it did: Integrated
 * Gradients over the input, and a heat map of them.
 *
 * Integrated Gradients (Sundararajan et al., 2017) attributes the logit of
 * a target class to the input pixels:
 *   attr_i = (x_i - b_i) * mean over k of d logit_t / d x_i at b + a_k (x - b),
 *   a_k = (k + 1/2) / steps, k = 0 .. steps-1 (the midpoint rule),
 * where b is the baseline. mnistd's baseline is the black image: the
 * normalized all-zero input (every one of the 784 floats 0.0, i.e. pixel
 * value 0 of 255, no ink), so attr_i = x_i * (mean gradient)_i and the
 * background pixels, which are 0 in the input too, get exactly 0.
 * Completeness: the attributions sum to logit_t(x) - logit_t(b), exactly for
 * the integral and up to the midpoint rule's error for finite steps (the
 * network is piecewise linear, so the error comes from the relu and
 * max-pool kinks the path crosses; it shrinks as steps grows). The answer
 * reports both sides and their difference (delta). */
#ifndef MNISTD_EXPLAIN_H
#define MNISTD_EXPLAIN_H

#include <stddef.h>
#include <stdint.h>

#include "model/net.h"

#define EXPLAIN_STEPS_DEFAULT 64  /* steps when the caller names none */
#define EXPLAIN_STEPS_LIMIT 1024  /* the most any setting may allow */

/* Buffers for explanations of up to max_steps steps, allocated once;
 * explaining never allocates. threads as for net_ctx_create. NULL on a bad
 * argument or allocation failure. One caller at a time. */
typedef struct explain_ctx explain_ctx;
explain_ctx *explain_ctx_create(int max_steps, int threads);
void explain_ctx_free(explain_ctx *c);

typedef struct {
    float attr[NET_IN_PIXELS];       /* the attributions, (28, 28) row-major */
    float logits[NET_CLASSES];       /* at the input */
    float probs[NET_CLASSES];        /* softmax of logits */
    float baseline_logits[NET_CLASSES];
    int predicted;                   /* argmax of logits */
    int target;                      /* the class explained */
    int steps;
    double sum;                      /* sum of attr */
    double delta;                    /* sum - (logits[target] - baseline_logits[target]) */
} explain_result;

/* Explains the input x (784 floats as for net_forward) with params: the
 * class target (0..9), or the predicted class when target < 0, with steps
 * (1..max_steps) steps. 0, or -1 on a bad argument. */
int explain_ig(explain_ctx *c, const float *params, const float *x, int target, int steps,
               explain_result *out);

/* The heat map: x (784 floats in [0,1]) dimmed to gray, and over it each
 * pixel's attribution as a colour, red for positive and blue for negative,
 * its opacity sqrt(|a| / max |a|) over the image (the square root lifts the
 * many small attributions into view). Each of the 28x28 pixels is a
 * scale x scale square (1..64). *rgb (malloc'd, the caller's to free) gets
 * (28 scale)^2 RGB pixels; *w and *h its size. 0, or -1 (bad scale, out of
 * memory). */
int explain_heatmap(const float *x, const float *attr, int scale, uint8_t **rgb, uint32_t *w,
                    uint32_t *h);

#endif
