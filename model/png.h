/* model/png.h -- PNG decoding to 8-bit gray, and PNG encoding, with libpng.
 * Decoding enforces img_limits before the memory they protect is spent. */
#ifndef MNISTD_PNG_H
#define MNISTD_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "model/image.h"

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

/* Encodes 8-bit gray (w*h) or RGB (w*h*3 when rgb != 0) pixels as PNG into a
 * buffer the caller frees with free(). Returns 0 or -1. */
int img_encode_png(const uint8_t *pix, uint32_t w, uint32_t h, int rgb,
                   uint8_t **out, size_t *outlen);

#endif
