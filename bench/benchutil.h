/* bench/benchutil.h -- what the C benchmarks share: the clock (the
 * process's monotonic one, server/clock.h) and the median of a sample. */
#ifndef MNISTD_BENCHUTIL_H
#define MNISTD_BENCHUTIL_H

#include <stdlib.h>

#include "server/clock.h"

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n > 0 values (sorts v in place). */
static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#endif
