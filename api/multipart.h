/* api/multipart.h -- a strict multipart/form-data parser (RFC 7578, RFC 2046).
 *
 * Works on a whole body already in memory (the daemon caps bodies at
 * --max-body-bytes) and copies nothing: each part's data points into the
 * body. Strict means: the boundary parameter must be present and valid
 * (1..70 characters of the RFC 2046 set), every part must start with a
 * delimiter line ending in CRLF, carry a Content-Disposition: form-data
 * header with a name, end its headers with an empty line, and the body must
 * end with the close delimiter "--boundary--". Header lines are CRLF
 * terminated, at most MP_MAX_HEADER_LINE bytes, at most MP_MAX_HEADERS per
 * part, no folded lines. A preamble before the first delimiter and an
 * epilogue after the close delimiter are allowed (RFC 2046) and ignored. */
#ifndef MNISTD_MULTIPART_H
#define MNISTD_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#define MP_MAX_BOUNDARY 70
#define MP_MAX_HEADER_LINE 1024
#define MP_MAX_HEADERS 16
#define MP_NAME_MAX 128
#define MP_FILENAME_MAX 256
#define MP_CTYPE_MAX 128

enum {
    MP_OK = 0,
    MP_ERR_BAD = -1,      /* malformed: the client's fault, 400 */
    MP_ERR_TOO_MANY = -2, /* more parts than allowed, 413 */
};

typedef struct {
    char name[MP_NAME_MAX];         /* the form field name (unescaped) */
    char filename[MP_FILENAME_MAX]; /* "" when the part has no filename */
    char content_type[MP_CTYPE_MAX];/* "" when the part has no Content-Type */
    const uint8_t *data;            /* points into the body */
    size_t len;
} mp_part;

/* Extracts the boundary from a Content-Type header value such as
 * `multipart/form-data; boundary=xyz` (token or quoted). boundary must hold
 * MP_MAX_BOUNDARY+1 bytes. Returns MP_OK, or MP_ERR_BAD with err set (not
 * multipart/form-data, no boundary, invalid boundary). */
int mp_boundary(const char *content_type, char *boundary, char *err, size_t errlen);

/* Parses body with boundary into parts[0..max_parts). On MP_OK *nparts is
 * the number of parts (at least 1). MP_ERR_TOO_MANY when the body has more
 * than max_parts parts; MP_ERR_BAD with err set on any malformation. */
int mp_parse(const uint8_t *body, size_t len, const char *boundary,
             mp_part *parts, int max_parts, int *nparts, char *err, size_t errlen);

/* 1 if the media type of a Content-Type value is `type` (case-insensitive,
 * parameters ignored), e.g. mp_media_type_is("Image/PNG; x=y", "image/png"). */
int mp_media_type_is(const char *content_type, const char *type);

#endif
