/* model/image.h -- PNG decoding and MNIST-style preprocessing.
 *
 * No HTTP here: the server hands over bytes, gets 784 floats or an error. */
#ifndef MNISTD_IMAGE_H
#define MNISTD_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    IMG_OK = 0,
    IMG_ERR_NOT_PNG = -1,    /* no PNG signature                     -> 400 */
    IMG_ERR_CORRUPT = -2,    /* libpng error, truncated, bad CRC ... -> 400 */
    IMG_ERR_TOO_LARGE = -3,  /* over the pixel/dimension limits      -> 422 */
    IMG_ERR_EMPTY = -4,      /* no ink: nothing to classify          -> 422 */
    IMG_ERR_NOMEM = -5,      /*                                      -> 500 */
} img_status;

typedef struct {
    uint32_t max_width;      /* default 4096 */
    uint32_t max_height;     /* default 4096 */
    uint64_t max_pixels;     /* default 4,194,304 (e.g. 2048x2048) */
    uint32_t max_chunk_bytes;/* ancillary chunk cache limit, default 1 MiB */
} img_limits;

/* Fills *lim with the defaults above. */
void img_limits_default(img_limits *lim);

/* Decodes a PNG of any colour type and bit depth libpng reads (gray,
 * gray+alpha, RGB, RGBA, palette, tRNS, 16-bit, interlaced) to 8-bit gray,
 * compositing alpha on white. Limits are enforced by libpng before pixel
 * memory is spent. On IMG_OK, *gray (w*h bytes, caller frees with free())
 * and *w, *h are set. Otherwise an img_status < 0 and a message in err. */
int img_decode_png(const uint8_t *buf, size_t len, const img_limits *lim,
                   uint8_t **gray, uint32_t *w, uint32_t *h,
                   char *err, size_t errlen);

/* Turns a gray image into the network's input (784 floats in [0,1], white
 * digit on black), the way MNIST was made:
 *   - polarity: if the image's border is mostly light, it is inverted (a dark
 *     digit on paper becomes a white digit on black);
 *   - 28x28 input is taken as is (after polarity);
 *   - any other size: crop to the ink's bounding box, scale (area-averaging)
 *     to fit 20x20 keeping the aspect ratio, place so the centre of mass is
 *     at the centre of the 28x28 field.
 * Returns IMG_OK or IMG_ERR_EMPTY (no ink at all) with err set. */
int img_to_mnist(const uint8_t *gray, uint32_t w, uint32_t h, float out[784],
                 char *err, size_t errlen);

/* Encodes 8-bit gray (w*h) or RGB (w*h*3 when rgb != 0) pixels as PNG into a
 * buffer the caller frees with free(). Returns 0 or -1. */
int img_encode_png(const uint8_t *pix, uint32_t w, uint32_t h, int rgb,
                   uint8_t **out, size_t *outlen);

#endif
