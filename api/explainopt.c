/* api/explainopt.c -- the options of POST /explain: see explainopt.h. */
#include "api/explainopt.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "model/explain.h"

/* A whole decimal integer lo..hi (digits only, at most 9 of them); 0 or -1. */
static int parse_int(const char *s, int lo, int hi, int *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 9 || strspn(s, "0123456789") != n)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    if (v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* 1 when the Accept value lists the media type (a range's parameters,
 * after ';', and the spaces around it are ignored). */
static int accept_names(const char *accept, const char *type)
{
    const size_t tl = strlen(type);
    for (const char *p = accept; *p;) {
        size_t n = strcspn(p, ",");
        size_t m = strcspn(p, ";,");
        const char *a = p, *b = p + m;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if ((size_t)(b - a) == tl && strncasecmp(a, type, tl) == 0)
            return 1;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

int explain_opts_parse(const char *steps, const char *target, const char *format,
                       const char *accept, int max_steps, explain_opts *o, char *err,
                       size_t errlen)
{
    o->steps = max_steps < EXPLAIN_STEPS_DEFAULT ? max_steps : EXPLAIN_STEPS_DEFAULT;
    o->target = -1;
    if (steps && parse_int(steps, 1, max_steps, &o->steps) != 0) {
        snprintf(err, errlen, "steps must be an integer 1..%d (--explain-max-steps)", max_steps);
        return -1;
    }
    if (target && parse_int(target, 0, 9, &o->target) != 0) {
        snprintf(err, errlen, "target must be a class, an integer 0..9");
        return -1;
    }
    if (format) {
        if (strcmp(format, "json") == 0) {
            o->format = EXPLAIN_JSON;
        } else if (strcmp(format, "png") == 0) {
            o->format = EXPLAIN_PNG;
        } else {
            snprintf(err, errlen, "format must be json or png");
            return -1;
        }
    } else {
        o->format = accept && accept_names(accept, "image/png") &&
                            !accept_names(accept, "application/json")
                        ? EXPLAIN_PNG
                        : EXPLAIN_JSON;
    }
    return 0;
}
