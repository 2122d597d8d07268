/* model/robust.h -- the transformed test sets that measure robustness.
 *
 * Each is a deterministic copy of a test set with every image transformed
 * the same way (model/augment.h), its direction drawn per image from a fixed
 * seed and the image's index, so that the same set gives the same images on
 * every run and every machine:
 *   shifted    moved by ROBUST_SHIFT_PX pixels in a direction drawn uniformly
 *   rotated    turned by ROBUST_ROTATE_DEG degrees, clockwise or
 *              counter-clockwise
 *   thickened  strokes thickened by ROBUST_THICKEN steps of the 3x3 cross
 * The transformed images are rounded back to bytes, as an image file has
 * them. */
#ifndef MNISTD_ROBUST_H
#define MNISTD_ROBUST_H

#include <stddef.h>

#include "model/mnist.h"
#include "model/train.h"

#define ROBUST_SHIFT_PX   3.0f
#define ROBUST_ROTATE_DEG 20.0f
#define ROBUST_THICKEN    1.5f

typedef enum { ROBUST_SHIFTED = 0, ROBUST_ROTATED, ROBUST_THICKENED, ROBUST_KINDS } robust_kind;

/* "shifted", "rotated", "thickened"; "" out of range. */
const char *robust_name(robust_kind k);

/* One line saying what the transformation does, with its size. */
const char *robust_describe(robust_kind k);

/* The kind named name: 0 and *k set, or -1. */
int robust_parse(const char *name, robust_kind *k);

/* The evaluation sets by name, as a mask of (1 << robust_kind): "test"
 * (the plain test set alone) 0, "transformed" every kind, a kind's name that
 * kind. 0 and *mask set, or -1 for another name. */
#define ROBUST_SET_NAMES "test, shifted, rotated, thickened, transformed"
int robust_set_parse(const char *name, unsigned *mask);

/* Fills *out (released with mnist_free) with a copy of src whose images are
 * transformed by kind k. Returns 0, or -1 with err set (out of memory, or
 * src not 28x28). */
int robust_make(mnist_set *out, const mnist_set *src, robust_kind k, char *err, size_t errlen);

/* Evaluates params on the copy of test transformed by kind k (see
 * eval_run). Returns 0 or -1 with err set. */
int robust_eval(const float *params, const mnist_set *test, robust_kind k, int threads, eval_result *out,
                char *err, size_t errlen);

#endif
