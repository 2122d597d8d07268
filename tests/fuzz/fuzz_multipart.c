/* tests/fuzz/fuzz_multipart.c -- libFuzzer harness: the multipart/form-data
 * parser, as POST /predict runs it.
 *
 * Input layout: the first line (up to the first '\n', at most 1024 bytes) is
 * the request's Content-Type value, the rest is the request body. When
 * mp_boundary accepts the Content-Type, mp_parse runs over the body with the
 * daemon's default part limit (64, --max-images). The body is copied into a
 * buffer of exactly its size so that ASan sees a read one byte past its end.
 *
 * Checked beyond the sanitizers: the boundary is 1..70 bytes; every part's
 * data lies inside the body; names, filenames and content types are
 * NUL-terminated within their arrays; the count of parts is within 1..max_parts on success; every error has a message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/multipart.h"

#define FUZZ_MAX_PARTS 64
#define FUZZ_MAX_CTYPE 1024

#define FUZZ_ASSERT(cond) do { if (!(cond)) { \
    fprintf(stderr, "fuzz_multipart: contract broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
    abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mp_part parts[FUZZ_MAX_PARTS + 1];
    char ctype[FUZZ_MAX_CTYPE + 1];
    char boundary[MP_MAX_BOUNDARY + 1];
    char err[256];
    uint8_t *body = NULL;
    size_t clen = 0;

    while (clen < size && clen < FUZZ_MAX_CTYPE && data[clen] != '\n')
        clen++;
    memcpy(ctype, data, clen);
    ctype[clen] = '\0';  /* an embedded NUL ends it early, as in a C header value */
    size_t off = clen < size ? clen + 1 : clen;
    size_t blen = size - off;

    /* The media-type helper takes any header value. */
    (void)mp_media_type_is(ctype, "image/png");
    (void)mp_media_type_is(ctype, "multipart/form-data");

    err[0] = '\0';
    memset(boundary, 0x5a, sizeof boundary);
    if (mp_boundary(ctype, boundary, err, sizeof err) != MP_OK) {
        FUZZ_ASSERT(err[0] != '\0');
        return 0;
    }
    size_t bl = strnlen(boundary, sizeof boundary);
    FUZZ_ASSERT(bl >= 1 && bl <= MP_MAX_BOUNDARY);

    /* Exactly blen bytes (malloc(0) may return NULL: keep one byte then). */
    body = malloc(blen ? blen : 1);
    if (body == NULL)
        return 0;
    memcpy(body, data + off, blen);

    int n = -1;
    err[0] = '\0';
    int st = mp_parse(body, blen, boundary, parts, FUZZ_MAX_PARTS, &n, err, sizeof err);
    if (st == MP_OK) {
        FUZZ_ASSERT(n >= 1 && n <= FUZZ_MAX_PARTS);
        for (int i = 0; i < n; i++) {
            const mp_part *p = &parts[i];
            FUZZ_ASSERT(memchr(p->name, '\0', sizeof p->name) != NULL);
            FUZZ_ASSERT(memchr(p->filename, '\0', sizeof p->filename) != NULL);
            FUZZ_ASSERT(memchr(p->content_type, '\0', sizeof p->content_type) != NULL);
            FUZZ_ASSERT(p->data >= body && p->len <= blen &&
                        (size_t)(p->data - body) <= blen - p->len);
            (void)mp_media_type_is(p->content_type, "image/png");
        }
    } else {
        FUZZ_ASSERT(st == MP_ERR_BAD || st == MP_ERR_TOO_MANY);
        FUZZ_ASSERT(err[0] != '\0');
        FUZZ_ASSERT(n >= 0 && n <= FUZZ_MAX_PARTS);
    }
    free(body);
    return 0;
}
