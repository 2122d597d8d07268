/* tests/fuzz/fuzz_ckpt_header.c -- libFuzzer harness: the checkpoint's JSON
 * header (cJSON parsing and every check ckpt_load_buffer makes on it).
 *
 * The input is the header text alone. The harness wraps it into a file the
 * way the format lays it out: the 8-byte little-endian header length, the
 * input, then exactly the data section a valid header describes (all
 * parameters 0.0f). So a mutation spends its time on the JSON (tensor
 * entries, shapes, offsets, metadata, UTF-8, padding) rather than on 373 KB
 * of floats, and a header the loader accepts reaches the end of the loader.
 * Checks: those of fuzz_ckpt_check.h.
 *
 * Speed: the file is built at the END of one buffer allocated once, so the
 * zero data section is written once and every run only writes the length
 * and the header. The bytes before the file are poisoned for ASan, and the
 * file ends where the allocation ends, so a read before or past the file is
 * still an ASan report (up to 7 bytes before it can escape: ASan poisons in
 * 8-byte granules). Headers too long for the buffer get a buffer of their
 * own. */
#include <sanitizer/asan_interface.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_ckpt_check.h"

#define DATA_BYTES ((size_t)NET_NUM_PARAMS * sizeof(float))
/* Room for any header the loader accepts (CKPT_MAX_HEADER) and a bit more. */
#define HDR_ROOM ((size_t)CKPT_MAX_HEADER + 64)
#define BUF_BYTES (8 + HDR_ROOM + DATA_BYTES)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes the length and the header at file[0..8+size). */
static void put_header(uint8_t *file, const uint8_t *data, size_t size)
{
    uint64_t n = size;
    for (int i = 0; i < 8; i++)
        file[i] = (uint8_t)(n >> (8 * i));
    memcpy(file + 8, data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *buf;
    size_t len = 8 + size + DATA_BYTES;

    if (size > HDR_ROOM) {
        uint8_t *file = malloc(len);
        if (file == NULL)
            return 0;
        put_header(file, data, size);
        memset(file + 8 + size, 0, DATA_BYTES);
        fuzz_ckpt_check(file, len, "fuzz_ckpt_header");
        free(file);
        return 0;
    }
    if (buf == NULL) {
        buf = calloc(1, BUF_BYTES);  /* the tail stays the zero data section */
        if (buf == NULL)
            return 0;
    }
    uint8_t *file = buf + BUF_BYTES - len;
    put_header(file, data, size);
    ASAN_POISON_MEMORY_REGION(buf, (size_t)(file - buf));
    fuzz_ckpt_check(file, len, "fuzz_ckpt_header");
    ASAN_UNPOISON_MEMORY_REGION(buf, (size_t)(file - buf));
    return 0;
}
