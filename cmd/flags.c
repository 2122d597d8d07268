/* cmd/flags.c -- the command line's flag parser: see flags.h. */
#include "cmd/flags.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 1 when arg is name, or name followed by "=value". */
static int names(const char *arg, const char *name)
{
    size_t n = name ? strlen(name) : 0;
    return n > 0 && strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

/* Strict number parses: the whole string, nothing around it. */
static int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* Stores val into d's destination; FLAGS_OK or FLAGS_BAD. */
static flags_status store(const flag_def *d, const char *val)
{
    long l;
    double v;
    switch (d->type) {
    case FLAG_SWITCH:
        *(int *)d->dst = 1;
        return FLAGS_OK;
    case FLAG_STRING:
        *(const char **)d->dst = val;
        return FLAGS_OK;
    case FLAG_LONG:
        if (parse_long(val, &l) != 0 || (d->check && d->check(d->id, (double)l) != 0))
            return FLAGS_BAD;
        *(long *)d->dst = l;
        return FLAGS_OK;
    case FLAG_DOUBLE:
        if (parse_double(val, &v) != 0 || (d->check && d->check(d->id, v) != 0))
            return FLAGS_BAD;
        *(double *)d->dst = v;
        return FLAGS_OK;
    }
    return FLAGS_BAD;
}

flags_status flags_parse(int argc, char **argv, const flag_def *defs, int n, int positional,
                         int *at, int *which)
{
    if (which)
        *which = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        *at = i;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return FLAGS_HELP;
        if (positional && (a[0] != '-' || a[1] == '\0'))
            return FLAGS_OK;
        const flag_def *d = NULL;
        const char *name = NULL;
        for (int k = 0; k < n && !d; k++) {
            if (defs[k].type == FLAG_SWITCH) {
                if (strcmp(a, defs[k].name) == 0)
                    d = &defs[k];
            } else if (names(a, defs[k].name) || names(a, defs[k].alias)) {
                d = &defs[k];
                name = names(a, defs[k].name) ? defs[k].name : defs[k].alias;
            }
        }
        if (!d)
            return FLAGS_UNKNOWN;
        if (which)
            *which = (int)(d - defs);
        const char *val = NULL;
        if (d->type != FLAG_SWITCH) {
            size_t len = strlen(name);
            if (a[len] == '=')
                val = a + len + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            if (!val || (d->nonempty && !*val))
                return FLAGS_MISSING;
        }
        flags_status s = store(d, val);
        if (s != FLAGS_OK)
            return s;
    }
    *at = argc;
    return FLAGS_OK;
}
