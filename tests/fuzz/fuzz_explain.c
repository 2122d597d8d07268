/* tests/fuzz/fuzz_explain.c -- libFuzzer harness: the options of POST
 * /explain (api/explainopt.c), the query parameters steps, target and
 * format and the Accept header, as the daemon reads them.
 *
 * Input layout: byte 0 says which of the four values are present (bit 0
 * steps, 1 target, 2 format, 3 Accept), bytes 1-2 the --explain-max-steps
 * setting (1 + a little-endian 16-bit number mod 1024), then the four values
 * separated by '\n' (an embedded NUL ends a value early, as in C strings).
 *
 * Checked beyond the sanitizers: on success steps is within 1..max_steps
 * and is the decimal value sent (or the default when absent), target is -1
 * exactly when absent and else 0..9 as sent, the format is json or png and
 * json without format and Accept; on failure a message, and some value
 * present. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/explainopt.h"
#include "model/explain.h"

#define FUZZ_ASSERT(cond) do { if (!(cond)) { \
    fprintf(stderr, "fuzz_explain: contract broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
    abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The value of a decimal string of digits alone, -1 for anything else. */
static long plain_decimal(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 9 || strspn(s, "0123456789") != n)
        return -1;
    return strtol(s, NULL, 10);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    const unsigned present = data[0];
    const int max_steps = 1 + (int)((data[1] | (unsigned)data[2] << 8) % EXPLAIN_STEPS_LIMIT);
    char *text = malloc(size - 3 + 1);
    if (!text)
        return 0;
    memcpy(text, data + 3, size - 3);
    text[size - 3] = '\0';
    const char *val[4] = {NULL, NULL, NULL, NULL};
    char *p = text;
    for (int i = 0; i < 4; i++) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        if (present & (1u << i))
            val[i] = p;
        p = nl ? nl + 1 : p + strlen(p);
    }
    explain_opts o;
    char err[160];
    err[0] = '\0';
    int rc = explain_opts_parse(val[0], val[1], val[2], val[3], max_steps, &o, err, sizeof err);
    if (rc == 0) {
        FUZZ_ASSERT(o.steps >= 1 && o.steps <= max_steps);
        if (val[0])
            FUZZ_ASSERT(o.steps == plain_decimal(val[0]));
        else
            FUZZ_ASSERT(o.steps == (max_steps < EXPLAIN_STEPS_DEFAULT ? max_steps : EXPLAIN_STEPS_DEFAULT));
        if (val[1])
            FUZZ_ASSERT(o.target >= 0 && o.target <= 9 && o.target == plain_decimal(val[1]));
        else
            FUZZ_ASSERT(o.target == -1);
        FUZZ_ASSERT(o.format == EXPLAIN_JSON || o.format == EXPLAIN_PNG);
        if (val[2])
            FUZZ_ASSERT(strcmp(val[2], o.format == EXPLAIN_PNG ? "png" : "json") == 0);
        else if (!val[3])
            FUZZ_ASSERT(o.format == EXPLAIN_JSON);
    } else {
        FUZZ_ASSERT(rc == -1 && err[0] != '\0' && strlen(err) < sizeof err);
        FUZZ_ASSERT(val[0] || val[1] || val[2]);
    }
    free(text);
    return 0;
}
