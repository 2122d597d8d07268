/* tests/tools/paramsets.h -- parameter sets for the crash tools: distinct,
 * finite, reproducible values for set 0, 1, 2, ... (NET_NUM_PARAMS floats). */
#ifndef MNISTD_TESTS_PARAMSETS_H
#define MNISTD_TESTS_PARAMSETS_H

#include <stdint.h>

#include "model/net.h"

static inline void paramset_fill(float *p, uint64_t set)
{
    uint64_t x = set * 2654435761ULL + 1;
    for (int i = 0; i < NET_NUM_PARAMS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (float)((double)(x >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
}

#endif
