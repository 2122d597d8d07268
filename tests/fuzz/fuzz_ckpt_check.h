/* tests/fuzz/fuzz_ckpt_check.h -- what the two checkpoint harnesses
 * (fuzz_ckpt: whole files, fuzz_ckpt_header: the JSON header alone) check
 * on one ckpt_load_buffer call. Header-only, included by one harness each. */
#ifndef MNISTD_FUZZ_CKPT_CHECK_H
#define MNISTD_FUZZ_CKPT_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/checkpoint.h"
#include "model/net.h"

#define FUZZ_CKPT_ASSERT(who, cond) do { if (!(cond)) { \
    fprintf(stderr, "%s: contract broken: %s (%s:%d)\n", (who), #cond, __FILE__, __LINE__); \
    abort(); } } while (0)

/* The byte params are filled with before a load: a NaN pattern a valid file
 * can never leave behind (the loader refuses non-finite values). */
#define FUZZ_CKPT_FILL 0xff

/* The checks over all 93,322 parameters are excluded from coverage
 * instrumentation: traced compares in them would cost more than the loader
 * itself and tell the fuzzer nothing about the loader. */
#define FUZZ_NO_COVERAGE __attribute__((noinline, no_sanitize("coverage")))

/* 1 if every byte of params still holds FUZZ_CKPT_FILL. */
static int fuzz_ckpt_untouched(const float *params)
{
    static uint8_t fill[NET_NUM_PARAMS * sizeof(float)];
    static int ready;
    if (!ready) {
        memset(fill, FUZZ_CKPT_FILL, sizeof fill);
        ready = 1;
    }
    return memcmp(params, fill, sizeof fill) == 0;
}

/* 1 if every parameter is finite. */
FUZZ_NO_COVERAGE static int fuzz_ckpt_all_finite(const float *params)
{
    int ok = 1;
    for (size_t i = 0; i < NET_NUM_PARAMS; i++)
        ok &= isfinite(params[i]) != 0;
    return ok;
}

/* Runs ckpt_load_buffer on buf[0..len) and checks the contract of
 * checkpoint.h on the result; aborts (a libFuzzer crash) when it is broken.
 * Returns the loader's result. */
static int fuzz_ckpt_check(const uint8_t *buf, size_t len, const char *who)
{
    static float params[NET_NUM_PARAMS];
    static ckpt_meta meta;
    char err[512];

    memset(params, FUZZ_CKPT_FILL, sizeof params);
    memset(&meta, 0, sizeof meta);
    err[0] = '\0';
    int rc = ckpt_load_buffer(buf, len, params, &meta, err, sizeof err);
    if (rc != 0) {
        FUZZ_CKPT_ASSERT(who, rc == -1);
        FUZZ_CKPT_ASSERT(who, err[0] != '\0');
        FUZZ_CKPT_ASSERT(who, memchr(err, '\0', sizeof err) != NULL);
        FUZZ_CKPT_ASSERT(who, fuzz_ckpt_untouched(params));
        return rc;
    }
    FUZZ_CKPT_ASSERT(who, fuzz_ckpt_all_finite(params));
    FUZZ_CKPT_ASSERT(who, meta.n >= 0 && meta.n <= CKPT_MAX_META);
    for (int i = 0; i < meta.n; i++) {
        FUZZ_CKPT_ASSERT(who, memchr(meta.key[i], '\0', CKPT_KEY_MAX) != NULL);
        FUZZ_CKPT_ASSERT(who, memchr(meta.val[i], '\0', CKPT_VAL_MAX) != NULL);
        FUZZ_CKPT_ASSERT(who, ckpt_meta_get(&meta, meta.key[i]) == meta.val[i]);
    }
    return rc;
}

#endif
