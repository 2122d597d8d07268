/* Unit tests of the strict multipart/form-data parser (api/multipart.c). */
#include <stdint.h>
#include <string.h>

#include "api/multipart.h"
#include "tests/unit/test.h"

static int parse(const char *body, const char *boundary, mp_part *parts, int max, int *n,
                 char *err, size_t errlen)
{
    return mp_parse((const uint8_t *)body, strlen(body), boundary, parts, max, n, err, errlen);
}

int main(void)
{
    char err[256], b[MP_MAX_BOUNDARY + 1];
    mp_part parts[4];
    int n;

    TEST_BEGIN("multipart_boundary_token_and_quoted");
    CHECK(mp_boundary("multipart/form-data; boundary=abc123", b, err, sizeof(err)) == MP_OK, "%s", err);
    CHECK(strcmp(b, "abc123") == 0, "got '%s'", b);
    CHECK(mp_boundary("Multipart/Form-Data;boundary=\"a b:c\"", b, err, sizeof(err)) == MP_OK, "%s", err);
    CHECK(strcmp(b, "a b:c") == 0, "got '%s'", b);
    CHECK(mp_boundary("multipart/form-data; charset=utf-8; boundary=----X", b, err, sizeof(err)) == MP_OK,
          "%s", err);
    CHECK(strcmp(b, "----X") == 0, "got '%s'", b);
    TEST_END();

    TEST_BEGIN("multipart_boundary_rejects");
    CHECK(mp_boundary("multipart/form-data", b, err, sizeof(err)) == MP_ERR_BAD, "no boundary accepted");
    CHECK(mp_boundary("multipart/mixed; boundary=x", b, err, sizeof(err)) == MP_ERR_BAD, "mixed accepted");
    CHECK(mp_boundary("multipart/form-data; boundary=", b, err, sizeof(err)) == MP_ERR_BAD, "empty accepted");
    CHECK(mp_boundary("multipart/form-data; boundary=\"ab \"", b, err, sizeof(err)) == MP_ERR_BAD,
          "trailing space accepted");
    CHECK(mp_boundary("multipart/form-data; boundary=\"a<b\"", b, err, sizeof(err)) == MP_ERR_BAD,
          "bad char accepted");
    char longb[128] = "multipart/form-data; boundary=";
    memset(longb + strlen(longb), 'x', 71);
    CHECK(mp_boundary(longb, b, err, sizeof(err)) == MP_ERR_BAD, "71-char boundary accepted");
    CHECK(mp_boundary("multipart/form-data; boundary=a; boundary=b", b, err, sizeof(err)) == MP_ERR_BAD,
          "two boundaries accepted");
    CHECK(mp_boundary("multipart/form-data; boundary=\"abc", b, err, sizeof(err)) == MP_ERR_BAD,
          "unterminated quote accepted");
    TEST_END();

    TEST_BEGIN("multipart_media_type");
    CHECK(mp_media_type_is("image/png", "image/png"), "plain");
    CHECK(mp_media_type_is(" Image/PNG ; q=1", "image/png"), "case and params");
    CHECK(!mp_media_type_is("image/pngx", "image/png"), "prefix matched");
    CHECK(!mp_media_type_is(NULL, "image/png"), "NULL matched");
    TEST_END();

    TEST_BEGIN("multipart_two_parts_in_order_binary_data");
    {
        /* Data with CR, LF, NUL and a near-boundary must come back intact. */
        static const char body[] =
            "--XyZ\r\n"
            "Content-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
            "Content-Type: image/png\r\n"
            "\r\n"
            "AB\r\n--XyCD\0E\r\n"
            "--XyZ\r\n"
            "Content-Disposition: form-data; name=\"image\"; filename=\"b\\\"q.png\"\r\n"
            "\r\n"
            "second\r\n"
            "--XyZ--\r\n";
        size_t blen = sizeof(body) - 1;
        int r = mp_parse((const uint8_t *)body, blen, "XyZ", parts, 4, &n, err, sizeof(err));
        CHECK(r == MP_OK, "r=%d %s", r, err);
        CHECK(n == 2, "n=%d", n);
        if (r == MP_OK && n == 2) {
            CHECK(parts[0].len == 12 && memcmp(parts[0].data, "AB\r\n--XyCD\0E", 12) == 0,
                  "part 1 data len %zu", parts[0].len);
            CHECK(strcmp(parts[0].name, "image") == 0, "name '%s'", parts[0].name);
            CHECK(strcmp(parts[0].filename, "a.png") == 0, "filename '%s'", parts[0].filename);
            CHECK(strcmp(parts[0].content_type, "image/png") == 0, "ctype '%s'", parts[0].content_type);
            CHECK(parts[1].len == 6 && memcmp(parts[1].data, "second", 6) == 0, "part 2 data");
            CHECK(strcmp(parts[1].filename, "b\"q.png") == 0, "escaped filename '%s'", parts[1].filename);
            CHECK(parts[1].content_type[0] == '\0', "no content type expected");
        }
    }
    TEST_END();

    TEST_BEGIN("multipart_preamble_padding_epilogue");
    {
        const char *body = "preamble text\r\n--B  \t\r\n"
                           "content-disposition: form-data; name=x\r\n\r\n"
                           "data\r\n--B--epilogue";
        int r = parse(body, "B", parts, 4, &n, err, sizeof(err));
        CHECK(r == MP_OK && n == 1 && parts[0].len == 4, "r=%d n=%d %s", r, n, err);
    }
    TEST_END();

    TEST_BEGIN("multipart_empty_part_data");
    {
        const char *body = "--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\r\n--B--";
        int r = parse(body, "B", parts, 4, &n, err, sizeof(err));
        CHECK(r == MP_OK && n == 1 && parts[0].len == 0, "r=%d n=%d len=%zu", r, n, parts[0].len);
    }
    TEST_END();

    TEST_BEGIN("multipart_too_many_parts");
    {
        const char *body = "--B\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"
                           "--B\r\nContent-Disposition: form-data; name=a\r\n\r\n2\r\n"
                           "--B\r\nContent-Disposition: form-data; name=a\r\n\r\n3\r\n--B--";
        CHECK(parse(body, "B", parts, 2, &n, err, sizeof(err)) == MP_ERR_TOO_MANY, "3 parts in 2");
        CHECK(parse(body, "B", parts, 3, &n, err, sizeof(err)) == MP_OK && n == 3, "3 parts in 3: %s", err);
    }
    TEST_END();

    TEST_BEGIN("multipart_malformed_rejected");
    {
        static const char *bad[] = {
            "",                                                                   /* empty */
            "no boundary at all",                                                 /* no opening */
            "--B--",                                                              /* no parts */
            "--Bx\r\nContent-Disposition: form-data; name=a\r\n\r\nd\r\n--B--",   /* junk after delimiter */
            "--B\r\nContent-Disposition: form-data; name=a\r\n\r\nd",             /* truncated, no close */
            "--B\r\nContent-Disposition: form-data; name=a\r\n\r\nd\r\n--B",      /* no -- or CRLF */
            "--B\r\nContent-Disposition: form-data; name=a\r\nd\r\n--B--",        /* headers unterminated */
            "--B\r\nContent-Type: image/png\r\n\r\nd\r\n--B--",                   /* no disposition */
            "--B\r\nContent-Disposition: attachment; name=a\r\n\r\nd\r\n--B--",   /* not form-data */
            "--B\r\nContent-Disposition: form-data\r\n\r\nd\r\n--B--",            /* no name */
            "--B\r\nContent-Disposition: form-data; name=\"a\r\n\r\nd\r\n--B--",  /* open quote */
            "--B\r\nno colon here\r\n\r\nd\r\n--B--",                             /* bad header line */
            "--B\r\n folded: x\r\nContent-Disposition: form-data; name=a\r\n\r\nd\r\n--B--",
            "--B\r\nContent-Disposition: form-data; name=a\r\n"
            "Content-Disposition: form-data; name=b\r\n\r\nd\r\n--B--",           /* two dispositions */
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            int r = parse(bad[i], "B", parts, 4, &n, err, sizeof(err));
            CHECK(r == MP_ERR_BAD, "case %zu accepted (r=%d)", i, r);
            CHECK(err[0] != '\0', "case %zu: no message", i);
        }
    }
    TEST_END();

    TEST_BEGIN("multipart_header_limits");
    {
        char body[4096];
        size_t p = 0;
        p += (size_t)snprintf(body + p, sizeof(body) - p, "--B\r\nContent-Disposition: form-data; name=a\r\n");
        p += (size_t)snprintf(body + p, sizeof(body) - p, "X-Long: ");
        memset(body + p, 'y', MP_MAX_HEADER_LINE);
        p += MP_MAX_HEADER_LINE;
        p += (size_t)snprintf(body + p, sizeof(body) - p, "\r\n\r\nd\r\n--B--");
        CHECK(parse(body, "B", parts, 4, &n, err, sizeof(err)) == MP_ERR_BAD, "long header accepted");
        p = (size_t)snprintf(body, sizeof(body), "--B\r\nContent-Disposition: form-data; name=a\r\n");
        for (int i = 0; i < MP_MAX_HEADERS; i++)
            p += (size_t)snprintf(body + p, sizeof(body) - p, "X-H%d: v\r\n", i);
        p += (size_t)snprintf(body + p, sizeof(body) - p, "\r\nd\r\n--B--");
        CHECK(parse(body, "B", parts, 4, &n, err, sizeof(err)) == MP_ERR_BAD, "17 headers accepted");
    }
    TEST_END();

    TEST_EXIT();
}
