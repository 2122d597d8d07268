/* model/preprocess.h -- turning any gray image into the network's input the
 * way MNIST was made. */
#ifndef MNISTD_PREPROCESS_H
#define MNISTD_PREPROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "model/image.h"

/* Turns a gray image into the network's input (784 floats in [0,1], white
 * digit on black), the way MNIST was made:
 *   - polarity: if the image's border is mostly light, it is inverted (a dark
 *     digit on paper becomes a white digit on black);
 *   - 28x28 input is taken as is (after polarity);
 *   - any other size: crop to the ink's bounding box, scale (area-averaging)
 *     to fit 20x20 keeping the aspect ratio, place so the centre of mass is
 *     at the centre of the 28x28 field.
 * Returns IMG_OK, or IMG_ERR_EMPTY (no ink at all) or IMG_ERR_NOMEM with err
 * set. */
int img_to_mnist(const uint8_t *gray, uint32_t w, uint32_t h, float out[784],
                 char *err, size_t errlen);

/* Where the network's 28x28 field lies over the source image: the field's
 * square [0,28) x [0,28) shows the rectangle at x, y of width by height in
 * the source's pixel coordinates (pixel i spans [i, i+1)); parts of it may
 * lie outside the image. A 28x28 image is its own field. */
typedef struct {
    double x, y, width, height;
} img_field;

/* img_to_mnist that also tells where the field lies (field may be NULL):
 * for drawing something computed on the 28x28 input (a heat map) over the
 * image the user sent. */
int img_to_mnist_field(const uint8_t *gray, uint32_t w, uint32_t h, float out[784],
                       img_field *field, char *err, size_t errlen);

#endif
