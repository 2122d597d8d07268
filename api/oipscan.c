/* api/oipscan.c -- the fast path of a v2 request's JSON: the scanner that
 * finds the numeric "data" arrays, the skeleton cJSON parses, and the
 * numbers parsed into floats (see oipscan.h). */
#include "api/oipscan.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_MAX_DEPTH 64

int oip_fail(char *err, size_t errlen, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return status;
}

/* ---- the scanner: where the numeric data arrays are ------------------------ */

enum { R_OTHER, R_ROOT, R_INPUTS, R_INPUT };

/* cJSON skips every byte up to 32 as whitespace; so does everything here. */
static int is_ws(char c)
{
    return (unsigned char)c <= 32;
}

static int is_num_char(char c)
{
    return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E';
}

static void sc_ws(oip_scanner *sc)
{
    while (sc->pos < sc->len && is_ws(sc->s[sc->pos]))
        sc->pos++;
}

static int sc_string(oip_scanner *sc, const char **str, size_t *slen)
{
    size_t start = ++sc->pos;
    while (sc->pos < sc->len) {
        char c = sc->s[sc->pos];
        if (c == '"') {
            *str = sc->s + start;
            *slen = sc->pos - start;
            sc->pos++;
            return 0;
        }
        sc->pos += c == '\\' ? 2 : 1;
    }
    return -1;
}

static int key_is(const char *k, size_t kl, const char *want)
{
    return kl == strlen(want) && memcmp(k, want, kl) == 0;
}

/* A "data" value the fast path takes: '[' then, after any '[' and
 * whitespace, the start of a number. */
static int looks_numeric(const oip_scanner *sc)
{
    size_t p = sc->pos;
    if (p >= sc->len || sc->s[p] != '[')
        return 0;
    while (p < sc->len && (sc->s[p] == '[' || is_ws(sc->s[p])))
        p++;
    return p < sc->len && (sc->s[p] == '-' || (sc->s[p] >= '0' && sc->s[p] <= '9'));
}

static int sc_value(oip_scanner *sc, int role, int index);

/* After a member or element: 1 at ',' (another follows), 0 at the closing
 * character (consumed), -1 otherwise. */
static int sc_next(oip_scanner *sc, char close)
{
    sc_ws(sc);
    if (sc->pos >= sc->len)
        return -1;
    char c = sc->s[sc->pos++];
    return c == ',' ? 1 : c == close ? 0 : -1;
}

static int sc_object(oip_scanner *sc, int role, int index)
{
    sc->pos++;
    sc_ws(sc);
    if (sc->pos < sc->len && sc->s[sc->pos] == '}') {
        sc->pos++;
        return 0;
    }
    for (;;) {
        sc_ws(sc);
        if (sc->pos >= sc->len || sc->s[sc->pos] != '"')
            return -1;
        const char *k;
        size_t kl;
        if (sc_string(sc, &k, &kl) != 0)
            return -1;
        sc_ws(sc);
        if (sc->pos >= sc->len || sc->s[sc->pos] != ':')
            return -1;
        sc->pos++;
        sc_ws(sc);
        if (role == R_INPUT && index < OIP_SCAN_INPUTS && key_is(k, kl, "data") && looks_numeric(sc)) {
            size_t start = sc->pos;
            if (sc_value(sc, R_OTHER, 0) != 0)
                return -1;
            if (!sc->spans[index].found)
                sc->spans[index] = (oip_span){start, sc->pos, 1};
        } else if (sc_value(sc, role == R_ROOT && key_is(k, kl, "inputs") ? R_INPUTS : R_OTHER, 0) != 0) {
            return -1;
        }
        int more = sc_next(sc, '}');
        if (more <= 0)
            return more;
    }
}

static int sc_array(oip_scanner *sc, int role)
{
    sc->pos++;
    sc_ws(sc);
    if (sc->pos < sc->len && sc->s[sc->pos] == ']') {
        sc->pos++;
        return 0;
    }
    for (int i = 0;; i++) {
        if (sc_value(sc, role == R_INPUTS ? R_INPUT : R_OTHER, i) != 0)
            return -1;
        int more = sc_next(sc, ']');
        if (more <= 0)
            return more;
    }
}

static int sc_value(oip_scanner *sc, int role, int index)
{
    if (++sc->depth > SCAN_MAX_DEPTH)
        return -1;
    sc_ws(sc);
    if (sc->pos >= sc->len)
        return -1;
    int rc = 0;
    char c = sc->s[sc->pos];
    if (c == '{') {
        rc = sc_object(sc, role, index);
    } else if (c == '[') {
        rc = sc_array(sc, role);
    } else if (c == '"') {
        const char *str;
        size_t sl;
        rc = sc_string(sc, &str, &sl);
    } else {
        size_t start = sc->pos;
        /* numbers and literals: validated by cJSON or the fast path */
        while (sc->pos < sc->len && (is_num_char(sc->s[sc->pos]) ||
               (sc->s[sc->pos] >= 'a' && sc->s[sc->pos] <= 'z')))
            sc->pos++;
        rc = sc->pos > start ? 0 : -1;
    }
    sc->depth--;
    return rc;
}

/* Finds the numeric data arrays; 0 when the text was understood. */
int oip_scan(oip_scanner *sc, const char *s, size_t len)
{
    memset(sc, 0, sizeof(*sc));
    sc->s = s;
    sc->len = len;
    sc_ws(sc);
    if (sc->pos >= sc->len || sc->s[sc->pos] != '{' || sc_value(sc, R_ROOT, 0) != 0)
        return -1;
    sc_ws(sc);
    return sc->pos == sc->len ? 0 : -1;
}

/* ---- numbers --------------------------------------------------------------- */

/* Exact powers of ten as doubles (10^22 is the last one a double holds). */
static const double pow10_exact[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* A number as cJSON reads it: the longest run of [0-9+-.eE], which strtod
 * must consume whole. t/n is that run. Returns 0 and *out, or -1. The
 * common forms (-?digits[.digits][e[+-]digits] with at most 15 significant
 * digits and a small exponent) are converted exactly without strtod
 * (Clinger's fast path: both operands exact, one rounding). */
static int parse_number(const char *t, size_t n, double *out)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && t[i] == '-') {
        neg = 1;
        i++;
    }
    uint64_t m = 0;
    int digits = 0, frac = 0, simple = i < n && t[i] >= '0' && t[i] <= '9';
    while (i < n && t[i] >= '0' && t[i] <= '9') {
        m = m * 10 + (uint64_t)(t[i++] - '0');
        if (m)
            digits++;
    }
    if (i < n && t[i] == '.') {
        i++;
        simple &= i < n && t[i] >= '0' && t[i] <= '9';
        while (i < n && t[i] >= '0' && t[i] <= '9') {
            m = m * 10 + (uint64_t)(t[i++] - '0');
            frac++;
            if (m)
                digits++;
        }
    }
    int e = 0;
    if (simple && i < n && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        int eneg = 0;
        if (i < n && (t[i] == '+' || t[i] == '-'))
            eneg = t[i++] == '-';
        simple = i < n && t[i] >= '0' && t[i] <= '9';
        while (i < n && t[i] >= '0' && t[i] <= '9' && e < 10000)
            e = e * 10 + (t[i++] - '0');
        if (eneg)
            e = -e;
    }
    e -= frac;
    if (simple && i == n && digits <= 15 && e >= -22 && e <= 22) {
        double v = (double)m;
        v = e < 0 ? v / pow10_exact[-e] : v * pow10_exact[e];
        *out = neg ? -v : v;
        return 0;
    }
    /* anything else: strtod on a NUL-terminated copy, as cJSON does. cJSON
     * (Debian's 1.7.15 with its security fixes) copies a number of any
     * length, so a long one is copied to the heap here too (it is within the
     * body, whose size is bounded). */
    char small[64], *buf = small;
    if (n >= sizeof(small) && !(buf = malloc(n + 1)))
        return -1;
    memcpy(buf, t, n);
    buf[n] = '\0';
    char *end = NULL;
    double v = strtod(buf, &end);
    int ok = end == buf + n;
    if (buf != small)
        free(buf);
    if (!ok)
        return -1;
    *out = v;
    return 0;
}

/* Stores one value as network input; *bad gets set (once) when it is out
 * of range for the datatype: FP32 [0,1], UINT8 an integer 0..255. */
static void store_value(double v, int uint8, float *dst, size_t *bad)
{
    if (uint8) {
        if (!(v >= 0 && v <= 255) || v != floor(v)) {
            *bad = 1;
            v = 0;
        }
        *dst = (float)(unsigned)v / 255.0f;
        return;
    }
    float f = (float)v;
    if (!(f >= 0.0f && f <= 1.0f))
        *bad = 1;
    *dst = f;
}

/* The fast path: the numbers of a data array in text s[0..n) (from '[' to
 * its ']') into out[want]. Returns 0, or a status with err. */
int oip_fast_numbers(const char *s, size_t n, int uint8, float *out, size_t want, size_t *bad,
                        char *err, size_t errlen)
{
    size_t i = 0, count = 0;
    int depth = 0;
    int need_value = 1;   /* after '[' or ',' */
    while (i < n) {
        char c = s[i];
        if (is_ws(c)) {
            i++;
        } else if (c == '[') {
            if (!need_value)
                break;
            if (++depth > OIP_DATA_MAX_DEPTH)
                return oip_fail(err, errlen, -1, "\"data\" nests arrays deeper than %d", OIP_DATA_MAX_DEPTH);
            i++;
            /* an empty array: '[' ws ']' */
            size_t j = i;
            while (j < n && is_ws(s[j]))
                j++;
            if (j < n && s[j] == ']') {
                i = j + 1;
                depth--;
                need_value = 0;
                if (depth == 0)
                    break;
            }
        } else if (c == ']') {
            if (need_value)
                break;
            i++;
            if (--depth == 0)
                break;
        } else if (c == ',') {
            if (need_value)
                break;
            need_value = 1;
            i++;
        } else if (need_value && (c == '-' || (c >= '0' && c <= '9'))) {
            size_t j = i;
            while (j < n && is_num_char(s[j]))
                j++;
            double v;
            if (parse_number(s + i, j - i, &v) != 0)
                return oip_fail(err, errlen, -1, "malformed JSON: a number in \"data\" is not valid");
            if (count >= want)
                return oip_fail(err, errlen, -1, "\"data\" has more than the %zu values the shape needs",
                                want);
            store_value(v, uint8, &out[count++], bad);
            need_value = 0;
            i = j;
        } else {
            return oip_fail(err, errlen, -1, "the \"data\" of a %s input must be numbers",
                            uint8 ? "UINT8" : "FP32");
        }
    }
    if (depth != 0 || i != n)
        return oip_fail(err, errlen, -1, "malformed JSON in \"data\"");
    if (count != want)
        return oip_fail(err, errlen, -1, "\"data\" has %zu values; the shape needs %zu", count, want);
    return 0;
}

/* The cJSON path for the same array. */
int oip_tree_numbers(const cJSON *a, int depth, int uint8, float *out, size_t want, size_t *count,
                        size_t *bad, char *err, size_t errlen)
{
    if (depth > OIP_DATA_MAX_DEPTH)
        return oip_fail(err, errlen, -1, "\"data\" nests arrays deeper than %d", OIP_DATA_MAX_DEPTH);
    for (const cJSON *e = a->child; e; e = e->next) {
        if (cJSON_IsArray(e)) {
            int st = oip_tree_numbers(e, depth + 1, uint8, out, want, count, bad, err, errlen);
            if (st)
                return st;
        } else if (cJSON_IsNumber(e)) {
            if (*count >= want)
                return oip_fail(err, errlen, -1, "\"data\" has more than the %zu values the shape needs",
                                want);
            store_value(e->valuedouble, uint8, &out[(*count)++], bad);
        } else {
            return oip_fail(err, errlen, -1, "the \"data\" of a %s input must be numbers",
                            uint8 ? "UINT8" : "FP32");
        }
    }
    return 0;
}


/* ---- the skeleton ----------------------------------------------------------- */

/* Builds the text cJSON parses: the JSON with the fast path's arrays
 * emptied, NUL-terminated. A oip_span out of text order (only possible with a
 * repeated "inputs", which is refused later) is dropped from the fast path. */
char *oip_skeleton(const char *json, size_t len, oip_scanner *sc, size_t *out_len)
{
    char *s = malloc(len + 1);
    if (!s)
        return NULL;
    size_t o = 0, from = 0;
    for (int i = 0; sc && i < OIP_SCAN_INPUTS; i++) {
        /* spans are in text order: inputs are scanned in order */
        if (!sc->spans[i].found)
            continue;
        if (sc->spans[i].start < from) {
            sc->spans[i].found = 0;
            continue;
        }
        memcpy(s + o, json + from, sc->spans[i].start - from);
        o += sc->spans[i].start - from;
        s[o++] = '[';
        s[o++] = ']';
        from = sc->spans[i].end;
    }
    memcpy(s + o, json + from, len - from);
    o += len - from;
    s[o] = '\0';
    *out_len = o;
    return s;
}
