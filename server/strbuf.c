/* server/strbuf.c -- a growable text buffer. */
#include "server/strbuf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Makes room for n more bytes plus the NUL; doubles the capacity. */
static int sb_reserve(strbuf *sb, size_t n)
{
    if (sb->failed)
        return -1;
    if (sb->len + n + 1 <= sb->cap)
        return 0;
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < sb->len + n + 1) {
        if (cap > ((size_t)-1) / 2) {
            sb->failed = 1;
            return -1;
        }
        cap *= 2;
    }
    char *p = realloc(sb->buf, cap);
    if (!p) {
        sb->failed = 1;
        return -1;
    }
    sb->buf = p;
    sb->cap = cap;
    return 0;
}

void sb_append(strbuf *sb, const char *s, size_t n)
{
    if (sb_reserve(sb, n) < 0)
        return;
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

/* Formats straight into the free space; only text that does not fit is
 * formatted a second time, after growing the buffer. */
void sb_printf(strbuf *sb, const char *fmt, ...)
{
    if (sb->failed)
        return;
    size_t room = sb->cap - sb->len;  /* cap > len once allocated; 0 before */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(room ? sb->buf + sb->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= room) {
        if (sb_reserve(sb, (size_t)n) < 0)
            return;
        va_start(ap, fmt);
        vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    sb->len += (size_t)n;
}

/* 10^k, k = 0..27: each exact in a long double (5^27 < 2^64). */
static const long double pow10_exact[28] = {
    1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
    1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L,
    1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};

size_t fmt_g6(char *buf, double v)
{
    /* Outside the fast path's range (zero, negative, NaN, tiny or large
     * numbers): printf itself. */
    if (!(v > 0.0) || v >= 999999.5 || v < 1e-22)
        return (size_t)snprintf(buf, 32, "%.6g", v);
    /* m = v * 10^(5 - e) rounded to six digits, e the decimal exponent. A
     * float's 24-bit mantissa times 5^k (k <= 17) fits the 64 bits of a long
     * double, so the product is exact and rintl's ties-to-even matches
     * printf's rounding of the exact value. */
    int e = (int)floor(log10(v));
    long double m = 0.0L;
    for (int tries = 0; tries < 3; tries++) {
        int k = 5 - e;
        if (k < 0 || k > 27)
            return (size_t)snprintf(buf, 32, "%.6g", v);
        m = rintl((long double)v * pow10_exact[k]);
        if (m >= 1000000.0L)
            e++;
        else if (m < 100000.0L)
            e--;
        else
            break;
    }
    if (m < 100000.0L || m >= 1000000.0L)
        return (size_t)snprintf(buf, 32, "%.6g", v);
    char d[7];
    long long mi = (long long)m;
    for (int i = 5; i >= 0; i--) {
        d[i] = (char)('0' + mi % 10);
        mi /= 10;
    }
    int nd = 6;  /* significant digits left after dropping trailing zeros */
    while (nd > 1 && d[nd - 1] == '0')
        nd--;
    size_t n = 0;
    if (e < -4) {  /* printf's %g switches to an exponent below 1e-4 */
        buf[n++] = d[0];
        if (nd > 1) {
            buf[n++] = '.';
            for (int i = 1; i < nd; i++)
                buf[n++] = d[i];
        }
        n += (size_t)snprintf(buf + n, 32 - n, "e-%02d", -e);
        return n;
    }
    if (e < 0) {
        buf[n++] = '0';
        buf[n++] = '.';
        for (int i = 0; i < -e - 1; i++)
            buf[n++] = '0';
        for (int i = 0; i < nd; i++)
            buf[n++] = d[i];
    } else {
        for (int i = 0; i <= e; i++)
            buf[n++] = d[i];
        if (nd > e + 1) {
            buf[n++] = '.';
            for (int i = e + 1; i < nd; i++)
                buf[n++] = d[i];
        }
    }
    buf[n] = '\0';
    return n;
}

void sb_g6(strbuf *sb, double v)
{
    char tmp[32];
    size_t n = fmt_g6(tmp, v);
    sb_append(sb, tmp, n);
}

void sb_label_value(strbuf *sb, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            sb_append(sb, "\\\\", 2);
        else if (*s == '"')
            sb_append(sb, "\\\"", 2);
        else if (*s == '\n')
            sb_append(sb, "\\n", 2);
        else
            sb_append(sb, s, 1);
    }
}

char *sb_take(strbuf *sb, size_t *len)
{
    if (sb->failed) {
        sb_free(sb);
        return NULL;
    }
    if (!sb->buf)
        sb_append(sb, "", 0);
    if (sb->failed) {
        sb_free(sb);
        return NULL;
    }
    char *p = sb->buf;
    if (len)
        *len = sb->len;
    sb->buf = NULL;
    sb->len = sb->cap = 0;
    return p;
}

void sb_free(strbuf *sb)
{
    free(sb->buf);
    sb->buf = NULL;
    sb->len = sb->cap = 0;
    sb->failed = 0;
}
