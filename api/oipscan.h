/* api/oipscan.h -- the fast path of a v2 request's JSON, for api/oip.c.
 *
 * cJSON makes one heap node and one strtod call per number, and a 64-image
 * FP32 request holds 50,176 of them in "data", so cJSON alone would cost more
 * than the forward pass. oip_scan walks the text once and finds each numeric
 * array at inputs[i].data; cJSON then parses oip_skeleton's copy with those
 * arrays emptied, and oip_fast_numbers parses the numbers straight into
 * floats from the original text. oip_tree_numbers is the cJSON path for the
 * same array. Both accept exactly what cJSON accepts and give the same
 * floats. The scanner is only an optimisation: when it does not understand
 * the text it gives up and cJSON decides alone. It knows nothing of the
 * protocol beyond where "data" sits. */
#ifndef MNISTD_API_OIPSCAN_H
#define MNISTD_API_OIPSCAN_H

#include <cjson/cJSON.h>
#include <stddef.h>

#define OIP_SCAN_INPUTS 4        /* inputs whose "data" the scanner finds */
#define OIP_DATA_MAX_DEPTH 8     /* nested arrays in "data" */

typedef struct {
    size_t start, end;       /* '[' .. one past its ']' */
    int found;
} oip_span;

typedef struct {
    const char *s;
    size_t len, pos;
    int depth;
    oip_span spans[OIP_SCAN_INPUTS];
} oip_scanner;

/* Finds the numeric data arrays of text s[0..len); 0 when the text was
 * understood, -1 when cJSON alone must decide. */
int oip_scan(oip_scanner *sc, const char *s, size_t len);

/* The text cJSON parses: json with sc's arrays emptied, NUL-terminated, in
 * *out_len bytes (malloc'ed; NULL when out of memory). sc may be NULL. A span
 * out of text order is dropped from sc (its found is cleared). */
char *oip_skeleton(const char *json, size_t len, oip_scanner *sc, size_t *out_len);

/* The numbers of a data array in text s[0..n) (from '[' to its ']') into
 * out[want] as network input: UINT8 values (uint8 set) divided by 255, FP32
 * values as they are; *bad is set when one is out of range (an integer
 * 0..255; [0,1]). Returns 0, or -1 with err (a malformed request). */
int oip_fast_numbers(const char *s, size_t n, int uint8, float *out, size_t want, size_t *bad,
                     char *err, size_t errlen);

/* The same from cJSON's array a (at nesting depth), counting into *count. */
int oip_tree_numbers(const cJSON *a, int depth, int uint8, float *out, size_t want, size_t *count,
                     size_t *bad, char *err, size_t errlen);

/* Formats err and returns status (for the v2 request code alike). */
int oip_fail(char *err, size_t errlen, int status, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
