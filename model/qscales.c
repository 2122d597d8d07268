/* model/qscales.c -- the int8 activation scales as model metadata text
 * (model/quant.h). Apart from the rest of int8 inference so that the model
 * file's loader (model/checkpoint.c) needs nothing else. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/err.h"
#include "model/quant.h"

int quant_scales_parse(const char *s, float scales[QUANT_NSCALES], char *err, size_t errlen)
{
    float v[QUANT_NSCALES];
    const char *p = s;
    if (!s) {
        err_set(err, errlen, "%s is missing", QUANT_SCALES_KEY);
        return -1;
    }
    for (int i = 0; i < QUANT_NSCALES; i++) {
        if (i > 0 && *p++ != ' ') {
            err_set(err, errlen, "%s \"%.64s\": expected %d numbers separated by single spaces",
                    QUANT_SCALES_KEY, s, QUANT_NSCALES);
            return -1;
        }
        char *end;
        errno = 0;
        double d = strtod(p, &end);
        if (end == p || *p == ' ' || errno != 0 || !isfinite(d) || !(d > 0.0) || d > 1e6) {
            err_set(err, errlen, "%s \"%.64s\": scale %d is not a number in (0, 1e6]",
                    QUANT_SCALES_KEY, s, i + 1);
            return -1;
        }
        v[i] = (float)d;
        if (!(v[i] > 0.0f)) {
            err_set(err, errlen, "%s \"%.64s\": scale %d is too small", QUANT_SCALES_KEY, s, i + 1);
            return -1;
        }
        p = end;
    }
    if (*p) {
        err_set(err, errlen, "%s \"%.64s\": expected exactly %d numbers", QUANT_SCALES_KEY, s,
                QUANT_NSCALES);
        return -1;
    }
    memcpy(scales, v, sizeof v);
    return 0;
}

void quant_scales_format(const float scales[QUANT_NSCALES], char *buf, size_t len)
{
    snprintf(buf, len, "%.9g %.9g %.9g", (double)scales[0], (double)scales[1], (double)scales[2]);
}

