/* api/explainopt.h -- the options of an explanation request (POST /explain):
 * its query parameters and Accept header, parsed and checked. No HTTP
 * library here, so the parser can be fuzzed on its own
 * (tests/fuzz/fuzz_explain.c). */
#ifndef MNISTD_API_EXPLAINOPT_H
#define MNISTD_API_EXPLAINOPT_H

#include <stddef.h>

typedef enum { EXPLAIN_JSON = 0, EXPLAIN_PNG } explain_format;

typedef struct {
    int steps;              /* 1..max_steps */
    int target;             /* 0..9, or -1: the predicted class */
    explain_format format;
} explain_opts;

/* Parses the values of the query parameters steps, target and format (each
 * NULL when absent) and the Accept header (NULL when absent):
 *   steps   a decimal integer 1..max_steps; absent: EXPLAIN_STEPS_DEFAULT,
 *           or max_steps when that is lower;
 *   target  a decimal integer 0..9; absent: -1 (the predicted class);
 *   format  "json" or "png"; absent: png when Accept names image/png and
 *           does not name application/json, else json (media ranges are
 *           compared without their parameters, case-insensitively).
 * Returns 0, or -1 with err saying which parameter is wrong and what it
 * may be; *o is then unspecified. */
int explain_opts_parse(const char *steps, const char *target, const char *format,
                       const char *accept, int max_steps, explain_opts *o, char *err,
                       size_t errlen);

#endif
