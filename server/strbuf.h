/* server/strbuf.h -- a growable text buffer for responses and exposition.
 *
 * On an allocation failure the buffer remembers it (sb->failed) and further
 * appends are ignored, so a caller appends freely and checks once at the
 * end. The text is always NUL-terminated once anything was appended. */
#ifndef MNISTD_STRBUF_H
#define MNISTD_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
    char *buf;      /* owned; NULL until the first append */
    size_t len;     /* bytes of text, without the NUL */
    size_t cap;
    int failed;     /* an append ran out of memory */
} strbuf;

/* printf-style append. */
void sb_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes v as printf's "%.6g" writes it (buf: at least 32 bytes) and
 * returns the length. Fast for 1e-22 <= v < 999999.5, where it gives
 * printf's digits exactly for float values; otherwise it calls printf. */
size_t fmt_g6(char *buf, double v);
/* Appends v as "%.6g" would (fmt_g6). */
void sb_g6(strbuf *sb, double v);
/* Appends n bytes. */
void sb_append(strbuf *sb, const char *s, size_t n);
/* Appends s with the escapes of a Prometheus label value (\\, \", \n). */
void sb_label_value(strbuf *sb, const char *s);
/* Hands the text over (caller frees with free()) and empties sb; *len gets
 * its length. NULL if an append failed (the buffer is freed then). */
char *sb_take(strbuf *sb, size_t *len);
/* Frees the buffer and empties sb. */
void sb_free(strbuf *sb);

#endif
