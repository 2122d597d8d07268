/* api/multipart.c -- strict multipart/form-data parsing over a body in memory.
 *
 * The grammar (RFC 2046 5.1.1), as applied here:
 *   body      := [preamble CRLF] "--" b pad CRLF part ( CRLF "--" b pad CRLF part )*
 *                CRLF "--" b "--" [epilogue]
 *   part      := header-line* CRLF data
 * where pad is optional spaces or tabs (transport padding) and data is
 * everything up to the next CRLF "--" b. */
#include "api/multipart.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* RFC 2046 bchars (the space is allowed, but not as the last character). */
static int is_bchar(int c)
{
    return isalnum(c) || strchr("'()+_,-./:=? ", c) != NULL;
}

static int is_tchar(int c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int mp_media_type_is(const char *ct, const char *type)
{
    if (!ct)
        return 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strlen(type);
    if (strncasecmp(ct, type, n) != 0)
        return 0;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* Reads one `; key=value` parameter from *p (a NUL-terminated header
 * value). value is a token or a quoted-string (quoted-pairs unescaped).
 * Returns 1 when a parameter was read, 0 at the end, -1 on a syntax error
 * or a value longer than vcap-1. */
static int next_param(const char **p, char *key, size_t kcap, char *val, size_t vcap)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0')
        return 0;
    if (*s != ';')
        return -1;
    s++;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t k = 0;
    while (is_tchar((unsigned char)*s)) {
        if (k + 1 >= kcap)
            return -1;
        key[k++] = *s++;
    }
    key[k] = '\0';
    if (k == 0)
        return -1;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s != '=')
        return -1;
    s++;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t v = 0;
    if (*s == '"') {
        s++;
        while (*s && *s != '"') {
            if (*s == '\\') {
                s++;
                if (*s == '\0')
                    return -1;
            }
            if (v + 1 >= vcap)
                return -1;
            val[v++] = *s++;
        }
        if (*s != '"')
            return -1;
        s++;
    } else {
        while (is_tchar((unsigned char)*s)) {
            if (v + 1 >= vcap)
                return -1;
            val[v++] = *s++;
        }
        if (v == 0)
            return -1;
    }
    val[v] = '\0';
    *p = s;
    return 1;
}

int mp_boundary(const char *ct, char *boundary, char *err, size_t errlen)
{
    if (!mp_media_type_is(ct, "multipart/form-data")) {
        snprintf(err, errlen, "Content-Type is not multipart/form-data");
        return MP_ERR_BAD;
    }
    const char *p = strchr(ct, ';');
    if (!p) {
        snprintf(err, errlen, "multipart/form-data without a boundary parameter");
        return MP_ERR_BAD;
    }
    char key[64], val[MP_MAX_BOUNDARY + 2];
    int found = 0, r;
    while ((r = next_param(&p, key, sizeof(key), val, sizeof(val))) == 1) {
        if (strcasecmp(key, "boundary") != 0)
            continue;
        if (found) {
            snprintf(err, errlen, "multipart/form-data with two boundary parameters");
            return MP_ERR_BAD;
        }
        size_t n = strlen(val);
        if (n < 1 || n > MP_MAX_BOUNDARY || val[n - 1] == ' ') {
            snprintf(err, errlen, "multipart boundary must be 1..%d characters, not ending in a space",
                     MP_MAX_BOUNDARY);
            return MP_ERR_BAD;
        }
        for (size_t i = 0; i < n; i++)
            if (!is_bchar((unsigned char)val[i])) {
                snprintf(err, errlen, "multipart boundary has an invalid character");
                return MP_ERR_BAD;
            }
        memcpy(boundary, val, n + 1);
        found = 1;
    }
    if (r < 0) {
        snprintf(err, errlen, "malformed Content-Type parameters");
        return MP_ERR_BAD;
    }
    if (!found) {
        snprintf(err, errlen, "multipart/form-data without a boundary parameter");
        return MP_ERR_BAD;
    }
    return MP_OK;
}

/* After a delimiter: skips transport padding and expects CRLF (another part
 * follows, returns 1) or "--" (the close delimiter, returns 0). -1 else. */
static int after_delimiter(const uint8_t *b, size_t len, size_t *pos)
{
    size_t p = *pos;
    if (p + 2 <= len && b[p] == '-' && b[p + 1] == '-') {
        *pos = p + 2;
        return 0;
    }
    while (p < len && (b[p] == ' ' || b[p] == '\t'))
        p++;
    if (p + 2 <= len && b[p] == '\r' && b[p + 1] == '\n') {
        *pos = p + 2;
        return 1;
    }
    return -1;
}

/* Parses one header block at *pos into part; leaves *pos at the data. */
static int parse_headers(const uint8_t *b, size_t len, size_t *pos, mp_part *part, int idx,
                         char *err, size_t errlen)
{
    size_t p = *pos;
    int nheaders = 0, have_cd = 0;
    char line[MP_MAX_HEADER_LINE + 1];
    for (;;) {
        const uint8_t *eol = memmem(b + p, len - p, "\r\n", 2);
        if (!eol) {
            snprintf(err, errlen, "part %d: headers not terminated", idx);
            return MP_ERR_BAD;
        }
        size_t n = (size_t)(eol - (b + p));
        if (n == 0) {
            p += 2;
            break;
        }
        if (n > MP_MAX_HEADER_LINE) {
            snprintf(err, errlen, "part %d: header line longer than %d bytes", idx, MP_MAX_HEADER_LINE);
            return MP_ERR_BAD;
        }
        if (++nheaders > MP_MAX_HEADERS) {
            snprintf(err, errlen, "part %d: more than %d headers", idx, MP_MAX_HEADERS);
            return MP_ERR_BAD;
        }
        memcpy(line, b + p, n);
        line[n] = '\0';
        if (memchr(line, '\0', n)) {
            snprintf(err, errlen, "part %d: NUL byte in a header", idx);
            return MP_ERR_BAD;
        }
        p += n + 2;
        char *colon = strchr(line, ':');
        if (!colon || colon == line) {
            snprintf(err, errlen, "part %d: malformed header line", idx);
            return MP_ERR_BAD;
        }
        for (char *c = line; c < colon; c++)
            if (!is_tchar((unsigned char)*c)) {
                snprintf(err, errlen, "part %d: malformed header name", idx);
                return MP_ERR_BAD;
            }
        *colon = '\0';
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (strcasecmp(line, "Content-Disposition") == 0) {
            if (have_cd) {
                snprintf(err, errlen, "part %d: two Content-Disposition headers", idx);
                return MP_ERR_BAD;
            }
            have_cd = 1;
            if (strncasecmp(v, "form-data", 9) != 0 ||
                (v[9] != '\0' && v[9] != ';' && v[9] != ' ' && v[9] != '\t')) {
                snprintf(err, errlen, "part %d: Content-Disposition is not form-data", idx);
                return MP_ERR_BAD;
            }
            const char *q = v + 9;
            char key[32], val[MP_FILENAME_MAX];
            int r, have_name = 0;
            while ((r = next_param(&q, key, sizeof(key), val, sizeof(val))) == 1) {
                if (strcasecmp(key, "name") == 0) {
                    if (strlen(val) >= MP_NAME_MAX) {
                        snprintf(err, errlen, "part %d: field name too long", idx);
                        return MP_ERR_BAD;
                    }
                    snprintf(part->name, sizeof(part->name), "%s", val);
                    have_name = 1;
                } else if (strcasecmp(key, "filename") == 0) {
                    snprintf(part->filename, sizeof(part->filename), "%s", val);
                }
            }
            if (r < 0) {
                snprintf(err, errlen, "part %d: malformed Content-Disposition parameters", idx);
                return MP_ERR_BAD;
            }
            if (!have_name) {
                snprintf(err, errlen, "part %d: Content-Disposition without a name", idx);
                return MP_ERR_BAD;
            }
        } else if (strcasecmp(line, "Content-Type") == 0) {
            if (strlen(v) >= MP_CTYPE_MAX) {
                snprintf(err, errlen, "part %d: Content-Type too long", idx);
                return MP_ERR_BAD;
            }
            snprintf(part->content_type, sizeof(part->content_type), "%s", v);
        }
        /* Other headers (e.g. Content-Transfer-Encoding: binary) are ignored. */
    }
    if (!have_cd) {
        snprintf(err, errlen, "part %d: no Content-Disposition header", idx);
        return MP_ERR_BAD;
    }
    *pos = p;
    return MP_OK;
}

int mp_parse(const uint8_t *b, size_t len, const char *boundary,
             mp_part *parts, int max_parts, int *nparts, char *err, size_t errlen)
{
    char delim[MP_MAX_BOUNDARY + 5];
    size_t blen = strlen(boundary);
    *nparts = 0;
    if (blen < 1 || blen > MP_MAX_BOUNDARY) {
        snprintf(err, errlen, "invalid multipart boundary");
        return MP_ERR_BAD;
    }
    /* delim = CRLF "--" boundary; the first delimiter may lack the CRLF. */
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary, blen);
    size_t dlen = blen + 4;
    size_t pos;
    if (len >= dlen - 2 && memcmp(b, delim + 2, dlen - 2) == 0) {
        pos = dlen - 2;
    } else {
        const uint8_t *f = len ? memmem(b, len, delim, dlen) : NULL;
        if (!f) {
            snprintf(err, errlen, "multipart body has no opening boundary");
            return MP_ERR_BAD;
        }
        pos = (size_t)(f - b) + dlen;
    }
    int r = after_delimiter(b, len, &pos);
    if (r == 0) {
        snprintf(err, errlen, "multipart body has no parts");
        return MP_ERR_BAD;
    }
    if (r < 0) {
        snprintf(err, errlen, "malformed multipart boundary line");
        return MP_ERR_BAD;
    }
    for (int idx = 1;; idx++) {
        if (*nparts >= max_parts) {
            snprintf(err, errlen, "more than %d parts", max_parts);
            return MP_ERR_TOO_MANY;
        }
        mp_part *part = &parts[*nparts];
        memset(part, 0, sizeof(*part));
        if (parse_headers(b, len, &pos, part, idx, err, errlen) < 0)
            return MP_ERR_BAD;
        const uint8_t *f = memmem(b + pos, len - pos, delim, dlen);
        if (!f) {
            snprintf(err, errlen, "part %d: no closing boundary (truncated body?)", idx);
            return MP_ERR_BAD;
        }
        part->data = b + pos;
        part->len = (size_t)(f - (b + pos));
        (*nparts)++;
        pos = (size_t)(f - b) + dlen;
        r = after_delimiter(b, len, &pos);
        if (r == 0)
            return MP_OK;  /* close delimiter: the epilogue is ignored */
        if (r < 0) {
            snprintf(err, errlen, "part %d: malformed boundary line after it", idx);
            return MP_ERR_BAD;
        }
    }
}
