/* model/kernels.c -- picks the kernel table for this CPU: see kernels.h. */
#include "model/kernels.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/err.h"

/* One table per level, from model/isa/kernels.c compiled once per level.
 * Builds for other CPU families (MNISTD_KERNELS_X86 unset) link only the
 * portable one. */
extern const kernel_ops kernels_portable;
#if defined(MNISTD_KERNELS_X86)
extern const kernel_ops kernels_avx2;
extern const kernel_ops kernels_avx512;
#endif

static const char *const level_names[KERNELS_NLEVELS] = {"portable", "avx2", "avx512"};

static const kernel_ops *table_of(kernels_level level)
{
    switch (level) {
    case KERNELS_PORTABLE: return &kernels_portable;
#if defined(MNISTD_KERNELS_X86)
    case KERNELS_AVX2: return &kernels_avx2;
    case KERNELS_AVX512: return &kernels_avx512;
#endif
    default: return NULL;
    }
}

const char *kernels_level_name(kernels_level level)
{
    return (unsigned)level < KERNELS_NLEVELS ? level_names[level] : NULL;
}

/* The instruction sets each table was compiled for (the x86-64 levels of
 * the psABI): x86-64-v3 and x86-64-v4. The checks include the operating
 * system's support for the wider registers (libgcc reads XCR0). */
int kernels_supported(kernels_level level)
{
    if (!table_of(level))
        return 0;
#if defined(MNISTD_KERNELS_X86)
    __builtin_cpu_init();
    switch (level) {
    case KERNELS_PORTABLE: return 1;
    case KERNELS_AVX2: return __builtin_cpu_supports("x86-64-v3") > 0;
    case KERNELS_AVX512: return __builtin_cpu_supports("x86-64-v4") > 0;
    default: return 0;
    }
#else
    return level == KERNELS_PORTABLE;
#endif
}

static _Atomic(const kernel_ops *) current;

static kernels_level best_level(void)
{
    for (int l = KERNELS_NLEVELS - 1; l > KERNELS_PORTABLE; l--)
        if (kernels_supported((kernels_level)l))
            return (kernels_level)l;
    return KERNELS_PORTABLE;
}

int kernels_pick(const char *name, kernels_level best, char *err, size_t errlen)
{
    if (!name || !*name || strcmp(name, "auto") == 0)
        return (int)best;
    int l = 0;
    while (l < KERNELS_NLEVELS && strcmp(name, level_names[l]) != 0)
        l++;
    if (l == KERNELS_NLEVELS) {
        err_set(err, errlen, "unknown kernels '%s' (portable, avx2, avx512 or auto)", name);
        return -1;
    }
    /* Each level includes the one below (x86-64-v4 contains v3). */
    if (l > (int)best) {
        err_set(err, errlen, "kernels '%s' need %s, which this CPU lacks (it runs %s at best)",
                name, l == KERNELS_AVX512 ? "AVX-512 F, CD, BW, DQ and VL (x86-64-v4)"
                                          : "AVX2, FMA and BMI2 (x86-64-v3)",
                level_names[best]);
        return -1;
    }
    return l;
}

int kernels_use(const char *name, char *err, size_t errlen)
{
    int l = kernels_pick(name, best_level(), err, errlen);
    if (l < 0)
        return -1;
    atomic_store_explicit(&current, table_of((kernels_level)l), memory_order_release);
    return 0;
}

const kernel_ops *kernels(void)
{
    const kernel_ops *k = atomic_load_explicit(&current, memory_order_acquire);
    if (k)
        return k;
    /* A program that did not choose: MNISTD_KERNELS, else the best. The
     * daemon and the command line check the setting at startup, so a bad
     * value only gets here from a program that skipped that check. */
    char err[160];
    if (kernels_use(getenv("MNISTD_KERNELS"), err, sizeof err) != 0) {
        fprintf(stderr, "MNISTD_KERNELS: %s\n", err);
        abort();
    }
    return atomic_load_explicit(&current, memory_order_acquire);
}

void kernels_describe(char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "%s (supported:", kernels()->name);
    for (int l = 0; l < KERNELS_NLEVELS && n < len; l++)
        if (kernels_supported((kernels_level)l))
            n += (size_t)snprintf(buf + n, len - n, " %s", level_names[l]);
    if (n < len)
        snprintf(buf + n, len - n, ")");
}
