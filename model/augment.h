/* model/augment.h -- image transforms for training-time augmentation.
 *
 * An image is NET_IN_PIXELS (28x28) floats in [0, 1], row-major, ink high.
 * Two transforms, both written into a separate output image:
 *   - augment_affine: rotation, scaling and shift about the image centre
 *     (pixel coordinate 13.5, 13.5), by inverse mapping with bilinear
 *     interpolation; what falls outside the image is 0 (background);
 *   - augment_thickness: grayscale morphology with the 3x3 cross (a pixel and
 *     its four neighbours): t > 0 dilates (each pixel becomes the maximum of
 *     the cross, a stroke grows by about one pixel on each side per step),
 *     t < 0 erodes (the minimum). |t| = n + f applies n whole steps, then
 *     blends the result with one more step by the fraction f, so the change
 *     is continuous in t.
 * augment_random draws one setting of each transform from an augment_config
 * and a caller-owned random stream and applies them in place. None of these
 * allocate: their scratch space is on the stack. */
#ifndef MNISTD_AUGMENT_H
#define MNISTD_AUGMENT_H

#include "model/rng.h"

/* The upper bounds of the settings (the lower bound of each is 0). They are
 * the ranges train_config_check applies (model/train.h). */
#define AUGMENT_MAX_SHIFT     4.0   /* pixels per axis */
#define AUGMENT_MAX_ROTATE    45.0  /* degrees */
#define AUGMENT_MAX_SCALE     0.5   /* relative size change */
#define AUGMENT_MAX_THICKEN   2.0   /* dilation steps */
#define AUGMENT_MAX_THIN      1.0   /* erosion steps (MNIST strokes are 2-3 pixels wide) */

/* Per image, each drawn uniformly and independently: a shift in
 * [-shift, shift] pixels along x and along y, a rotation in [-rotate, rotate]
 * degrees, a size factor in [1 - scale, 1 + scale] and a thickness change in
 * [-thin, thicken] steps (thinning and thickening have bounds of their own:
 * thin strokes vanish under erosion long before thick ones lose their shape
 * under dilation). All 0 (augment_config_off): no change. */
typedef struct {
    float shift;
    float rotate;
    float scale;
    float thicken;
    float thin;
} augment_config;

/* All settings 0: the images are used as they are. */
static inline void augment_config_off(augment_config *a)
{
    a->shift = a->rotate = a->scale = a->thicken = a->thin = 0.0f;
}

/* 1 when any setting is not 0. */
static inline int augment_enabled(const augment_config *a)
{
    return a->shift != 0.0f || a->rotate != 0.0f || a->scale != 0.0f || a->thicken != 0.0f || a->thin != 0.0f;
}

/* out = in rotated by angle_deg degrees (counter-clockwise as displayed),
 * scaled by factor scale (> 0) and moved by (dx, dy) pixels (+x right, +y
 * down). in and out must not overlap. */
void augment_affine(float *out, const float *in, float angle_deg, float scale, float dx, float dy);

/* out = in with its strokes thickened (t > 0) or thinned (t < 0) by |t|
 * steps of the 3x3 cross. in and out must not overlap. */
void augment_thickness(float *out, const float *in, float t);

/* Draws one setting from a (the draws are the same five numbers for every
 * image, whichever settings are 0, so a stream stays aligned) and applies
 * it to img in place: the thickness change first, then the affine map. */
void augment_random(float *img, const augment_config *a, rng *r);

#endif
