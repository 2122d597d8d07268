/* tests/fuzz/fuzz_ckpt.c -- libFuzzer harness: the checkpoint (safetensors)
 * loader, ckpt_load_buffer, on a whole model file.
 *
 * The input is the file. Checked beyond the sanitizers (checkpoint.h):
 * on failure a message and params untouched (they are filled with a byte
 * pattern first and compared after); on success every parameter finite and
 * the metadata within its bounds (1..CKPT_MAX_META entries at most, keys
 * and values NUL-terminated in their arrays, no duplicate keys). The input
 * buffer is libFuzzer's own allocation of exactly the input's size, so a
 * read past the end is an ASan report. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/checkpoint.h"
#include "model/net.h"
#include "tests/fuzz/fuzz_ckpt_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_ckpt_check(data, size, "fuzz_ckpt");
    return 0;
}
