/* tests/fuzz/fuzz_png.c -- libFuzzer harness: PNG decoding and MNIST
 * preprocessing, as POST /predict runs them on an uploaded body.
 *
 * The input is the PNG file. img_decode_png runs with the default limits;
 * when it succeeds, img_to_mnist turns the gray image into the network's
 * input. Beyond what the sanitizers catch, the harness checks the contracts
 * of png.h and preprocess.h: a known status code, a non-empty message on
 * every error, a decoded image within the limits, and 784 finite values in
 * [0,1].
 *
 * Almost every mutation of a PNG breaks a chunk's CRC, and libpng stops at
 * the first bad CRC of a critical chunk: left alone, the fuzzer would spend
 * its time on the CRC check. So each input is decoded twice: as it is (the
 * CRC paths stay covered), then, when that differs, with every complete
 * chunk's CRC recomputed, which lets mutations of chunk contents reach the
 * code behind the CRC check. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "model/png.h"
#include "model/preprocess.h"

/* A broken contract is a crash, so libFuzzer saves the input. */
#define FUZZ_ASSERT(cond) do { if (!(cond)) { \
    fprintf(stderr, "fuzz_png: contract broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
    abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decodes and preprocesses one PNG, checking the contracts. */
static void decode_one(const uint8_t *data, size_t size)
{
    img_limits lim;
    uint8_t *gray = NULL;
    uint32_t w = 0, h = 0;
    char err[256] = "";
    float out[784];

    img_limits_default(&lim);
    int st = img_decode_png(data, size, &lim, &gray, &w, &h, err, sizeof err);
    if (st != IMG_OK) {
        FUZZ_ASSERT(st == IMG_ERR_NOT_PNG || st == IMG_ERR_CORRUPT ||
                    st == IMG_ERR_TOO_LARGE || st == IMG_ERR_NOMEM);
        FUZZ_ASSERT(gray == NULL);
        FUZZ_ASSERT(err[0] != '\0');
        FUZZ_ASSERT(memchr(err, '\0', sizeof err) != NULL);
        return;
    }
    FUZZ_ASSERT(gray != NULL);
    FUZZ_ASSERT(w >= 1 && h >= 1);
    FUZZ_ASSERT(w <= lim.max_width && h <= lim.max_height);
    FUZZ_ASSERT((uint64_t)w * h <= lim.max_pixels);

    err[0] = '\0';
    st = img_to_mnist(gray, w, h, out, err, sizeof err);
    if (st == IMG_OK) {
        for (int i = 0; i < 784; i++)
            FUZZ_ASSERT(isfinite(out[i]) && out[i] >= 0.0f && out[i] <= 1.0f);
    } else {
        FUZZ_ASSERT(st == IMG_ERR_EMPTY);
        FUZZ_ASSERT(err[0] != '\0');
    }
    free(gray);
}

/* Rewrites the CRC of every complete chunk after the signature in buf.
 * Returns 1 if a CRC changed. */
static int fix_crcs(uint8_t *buf, size_t len)
{
    size_t pos = 8;
    int changed = 0;

    while (len - pos >= 12) {
        uint32_t n = (uint32_t)buf[pos] << 24 | (uint32_t)buf[pos + 1] << 16 |
                     (uint32_t)buf[pos + 2] << 8 | buf[pos + 3];
        if (n > len - pos - 12)
            break;
        uint8_t *crcp = buf + pos + 8 + n;
        uint32_t crc = (uint32_t)crc32(0L, buf + pos + 4, n + 4);
        uint8_t want[4] = { (uint8_t)(crc >> 24), (uint8_t)(crc >> 16),
                            (uint8_t)(crc >> 8), (uint8_t)crc };
        if (memcmp(crcp, want, 4) != 0) {
            memcpy(crcp, want, 4);
            changed = 1;
        }
        pos += 12 + (size_t)n;
    }
    return changed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode_one(data, size);
    if (size < 8 + 12)
        return 0;
    uint8_t *copy = malloc(size);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    if (fix_crcs(copy, size))
        decode_one(copy, size);
    free(copy);
    return 0;
}
