/* model/image.h -- the status codes of the image functions: PNG decoding and
 * encoding (model/png.h) and MNIST-style preprocessing (model/preprocess.h).
 *
 * The caller hands over bytes and gets 784 floats or one of these codes with
 * a message; how a code is reported to a user is the caller's business. */
#ifndef MNISTD_IMAGE_H
#define MNISTD_IMAGE_H

typedef enum {
    IMG_OK = 0,
    IMG_ERR_NOT_PNG = -1,    /* no PNG signature */
    IMG_ERR_CORRUPT = -2,    /* libpng error, truncated, bad CRC ... (malformed input) */
    IMG_ERR_TOO_LARGE = -3,  /* over the pixel/dimension/chunk limits (well-formed) */
    IMG_ERR_EMPTY = -4,      /* no ink: nothing to classify */
    IMG_ERR_NOMEM = -5,      /* out of memory (not the input's fault) */
} img_status;

#endif
