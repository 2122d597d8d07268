/* tests/unit/test_oip.c -- the Open Inference Protocol request parser and
 * response writer (api/oip.c): every accepted form, every refusal with its
 * status, the fast path for numeric data against cJSON's, and the response
 * bytes (JSON, binary, classification). */
#include <stdint.h>

#include "api/oip.h"
#include "tests/unit/test.h"

static const oip_limits lim = {.max_images = 64};

/* A growable request body. */
typedef struct {
    char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* Pixel k of test image i: a deterministic value in [0,1] with up to 9
 * digits, as a client printing floats would send. */
static double pix(int i, int k)
{
    return (double)((i * 7919 + k * 104729) % 256) / 255.0;
}

/* A JSON FP32 request for n images, data flat or nested per image. */
static void fp32_json(buf *b, int n, int nested, const char *extra)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, "{\"id\":\"r1\",\"inputs\":[{\"name\":\"input\",\"shape\":[%d,28,28,1],", n);
    puts_(b, tmp);
    puts_(b, "\"datatype\":\"FP32\",\"data\":[");
    for (int i = 0; i < n; i++) {
        if (nested)
            puts_(b, i ? ",[" : "[");
        for (int k = 0; k < NET_IN_PIXELS; k++) {
            snprintf(tmp, sizeof tmp, "%s%.9g", (k || (i && !nested)) ? "," : "", pix(i, k));
            puts_(b, tmp);
        }
        if (nested)
            puts_(b, "]");
    }
    puts_(b, "]}]");
    puts_(b, extra ? extra : "");
    puts_(b, "}");
}

static int parse_str(const char *body, const char *ihcl, oip_request *req, char *err)
{
    return oip_parse_request((const uint8_t *)body, strlen(body), ihcl, &lim, req, err, 256);
}

/* Expects status st for a JSON body; prints the message on a mismatch. */
static void expect(const char *name, const char *body, const char *ihcl, size_t len, int st)
{
    TEST_BEGIN(name);
    oip_request req;
    char err[256] = "";
    int got = oip_parse_request((const uint8_t *)body, len ? len : strlen(body), ihcl, &lim, &req, err, sizeof err);
    CHECK(got == st, "status %d, want %d (%s)", got, st, err);
    if (st)
        CHECK(err[0] != '\0', "no message");
    if (got == 0)
        oip_request_free(&req);
    int slow = oip_parse_request_slow((const uint8_t *)body, len ? len : strlen(body), ihcl, &lim, &req, err,
                                      sizeof err);
    CHECK((slow == 0) == (st == 0), "the cJSON path says %d", slow);
    if (slow == 0)
        oip_request_free(&req);
    TEST_END();
}

static void test_fp32_json(void)
{
    for (int nested = 0; nested < 2; nested++) {
        TEST_BEGIN(nested ? "oip_fp32_json_nested" : "oip_fp32_json_flat");
        buf b = {0};
        fp32_json(&b, 3, nested, NULL);
        oip_request req, slow;
        char err[256];
        int st = oip_parse_request((uint8_t *)b.p, b.n, NULL, &lim, &req, err, sizeof err);
        CHECK(st == 0, "status %d: %s", st, err);
        int st2 = oip_parse_request_slow((uint8_t *)b.p, b.n, NULL, &lim, &slow, err, sizeof err);
        CHECK(st2 == 0, "slow status %d: %s", st2, err);
        if (st == 0 && st2 == 0) {
            CHECK(req.n == 3 && req.dtype == OIP_FP32 && req.has_id && strcmp(req.id, "r1") == 0, "fields");
            CHECK(req.pixels && slow.pixels, "pixels");
            int diff = 0;
            for (int i = 0; i < 3; i++) {
                float x[NET_IN_PIXELS];
                oip_request_pixels(&req, i, x);
                for (int k = 0; k < NET_IN_PIXELS; k++) {
                    char t[32];
                    snprintf(t, sizeof t, "%.9g", pix(i, k));
                    float want = (float)strtod(t, NULL);
                    diff += x[k] != want || x[k] != slow.pixels[i * NET_IN_PIXELS + k];
                }
            }
            CHECK(diff == 0, "%d values differ from strtod's", diff);
            CHECK(!req.out_binary && req.class_k == 0, "defaults");
        }
        if (st == 0)
            oip_request_free(&req);
        if (st2 == 0)
            oip_request_free(&slow);
        free(b.p);
        TEST_END();
    }
}

/* Numbers in odd spellings give the same floats on both paths. */
static void test_number_forms(void)
{
    TEST_BEGIN("oip_number_forms_match_strtod");
    static const char *forms[] = {"0", "1", "0.5", "5e-1", "5E-1", "0.50000000000000000001", "1.0e0",
                                  "-0", "0.0039215688593685627", "1e-30", "2.5e-3", "00.5", "0.",
                                  "12e-2", "0.123456789012345678901234567890", "1E+0", "0.1e1",
                                  /* longer than 63 characters: cJSON reads it whole */
                                  "0.01960784777777777777777777777777777777777777777777777777777777777777777777777"
                                  "77777777777777777777731"};
    int n = (int)(sizeof forms / sizeof forms[0]);
    buf b = {0};
    puts_(&b, "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\",\"data\":[");
    for (int k = 0; k < NET_IN_PIXELS; k++) {
        if (k)
            puts_(&b, ",");
        puts_(&b, forms[k % n]);
    }
    puts_(&b, "]}]}");
    oip_request a, s;
    char err[256];
    int st = oip_parse_request((uint8_t *)b.p, b.n, NULL, &lim, &a, err, sizeof err);
    int st2 = oip_parse_request_slow((uint8_t *)b.p, b.n, NULL, &lim, &s, err, sizeof err);
    CHECK(st == st2, "fast %d, slow %d (%s)", st, st2, err);
    if (st == 0 && st2 == 0) {
        int diff = 0;
        for (int k = 0; k < NET_IN_PIXELS; k++) {
            float want = (float)strtod(forms[k % n], NULL);
            diff += memcmp(&a.pixels[k], &want, 4) != 0 || memcmp(&s.pixels[k], &want, 4) != 0;
        }
        CHECK(diff == 0, "%d values differ", diff);
    }
    if (st == 0)
        oip_request_free(&a);
    if (st2 == 0)
        oip_request_free(&s);
    free(b.p);
    TEST_END();
}

static void binary_request(buf *b, const char *dtype, const char *shape, const void *data, size_t len,
                           const char *outputs, char *ihcl)
{
    char json[512];
    int n = snprintf(json, sizeof json, "{\"inputs\":[{\"name\":\"input\",\"shape\":%s,\"datatype\":\"%s\","
                     "\"parameters\":{\"binary_data_size\":%zu}}]%s}", shape, dtype, len, outputs ? outputs : "");
    put(b, json, (size_t)n);
    put(b, data, len);
    sprintf(ihcl, "%d", n);
}

static void test_binary(void)
{
    TEST_BEGIN("oip_fp32_binary");
    float img[2 * NET_IN_PIXELS];
    for (int i = 0; i < 2 * NET_IN_PIXELS; i++)
        img[i] = (float)pix(i / NET_IN_PIXELS, i % NET_IN_PIXELS);
    buf b = {0};
    char ihcl[32];
    binary_request(&b, "FP32", "[2,28,28,1]", img, sizeof img,
                   ",\"outputs\":[{\"name\":\"probabilities\",\"parameters\":{\"binary_data\":true}}]", ihcl);
    oip_request req;
    char err[256];
    int st = oip_parse_request((uint8_t *)b.p, b.n, ihcl, &lim, &req, err, sizeof err);
    CHECK(st == 0, "status %d: %s", st, err);
    if (st == 0) {
        float x[NET_IN_PIXELS];
        oip_request_pixels(&req, 1, x);
        CHECK(memcmp(x, img + NET_IN_PIXELS, sizeof x) == 0, "image 1 differs");
        CHECK(req.out_binary && req.n == 2, "binary output asked");
        oip_request_free(&req);
    }
    free(b.p);
    TEST_END();

    TEST_BEGIN("oip_uint8_binary_and_json");
    uint8_t u[NET_IN_PIXELS];
    for (int k = 0; k < NET_IN_PIXELS; k++)
        u[k] = (uint8_t)(k * 13);
    buf c = {0};
    binary_request(&c, "UINT8", "[1,28,28]", u, sizeof u, NULL, ihcl);
    st = oip_parse_request((uint8_t *)c.p, c.n, ihcl, &lim, &req, err, sizeof err);
    CHECK(st == 0, "status %d: %s", st, err);
    float xb[NET_IN_PIXELS] = {0}, xj[NET_IN_PIXELS] = {0};
    if (st == 0) {
        oip_request_pixels(&req, 0, xb);
        oip_request_free(&req);
    }
    buf d = {0};
    puts_(&d, "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"UINT8\",\"data\":[");
    for (int k = 0; k < NET_IN_PIXELS; k++) {
        char t[8];
        snprintf(t, sizeof t, "%s%u", k ? "," : "", u[k]);
        puts_(&d, t);
    }
    puts_(&d, "]}]}");
    st = oip_parse_request((uint8_t *)d.p, d.n, NULL, &lim, &req, err, sizeof err);
    CHECK(st == 0, "json status %d: %s", st, err);
    if (st == 0) {
        oip_request_pixels(&req, 0, xj);
        oip_request_free(&req);
    }
    int diff = 0;
    for (int k = 0; k < NET_IN_PIXELS; k++)
        diff += xb[k] != (float)u[k] / 255.0f || xj[k] != xb[k];
    CHECK(diff == 0, "%d pixels differ from u/255", diff);
    free(c.p);
    free(d.p);
    TEST_END();

    TEST_BEGIN("oip_raw_binary_header_zero");
    st = oip_parse_request((uint8_t *)img, sizeof img, "0", &lim, &req, err, sizeof err);
    CHECK(st == 0 && req.n == 2 && req.out_binary, "status %d: %s", st, err);
    if (st == 0)
        oip_request_free(&req);
    TEST_END();

    TEST_BEGIN("oip_bytes_binary_and_base64");
    uint8_t elems[] = {3, 0, 0, 0, 'a', 'b', 'c', 1, 0, 0, 0, 'z'};
    buf e = {0};
    binary_request(&e, "BYTES", "[2]", elems, sizeof elems, NULL, ihcl);
    st = oip_parse_request((uint8_t *)e.p, e.n, ihcl, &lim, &req, err, sizeof err);
    CHECK(st == 0, "status %d: %s", st, err);
    if (st == 0) {
        CHECK(req.elem_len[0] == 3 && memcmp(req.elem[0], "abc", 3) == 0, "element 0");
        CHECK(req.elem_len[1] == 1 && req.elem[1][0] == 'z', "element 1");
        oip_request_free(&req);
    }
    st = parse_str("{\"inputs\":[{\"name\":\"input\",\"shape\":[2,1],\"datatype\":\"BYTES\","
                   "\"data\":[[\"YWJj\"],[\"eg==\"]]}]}", NULL, &req, err);
    CHECK(st == 0, "json status %d: %s", st, err);
    if (st == 0) {
        CHECK(req.elem_len[0] == 3 && memcmp(req.elem[0], "abc", 3) == 0, "element 0 (base64)");
        CHECK(req.elem_len[1] == 1 && req.elem[1][0] == 'z', "element 1 (base64)");
        oip_request_free(&req);
    }
    free(e.p);
    TEST_END();
}

static void test_refusals(void)
{
    char ihcl[32];
    const char *ok_head = "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",";
    char b[4096];
#define REQ(tail) (snprintf(b, sizeof b, "%s%s", ok_head, tail), b)
    expect("oip_refuse_malformed_json", "{\"inputs\":[{\"name\":\"input\",", NULL, 0, 400);
    expect("oip_refuse_not_object", "[1,2]", NULL, 0, 400);
    expect("oip_refuse_trailing_garbage", "{\"inputs\":[]} x", NULL, 0, 400);
    expect("oip_refuse_empty_body", "", NULL, 0, 400);
    expect("oip_refuse_no_inputs", "{}", NULL, 0, 400);
    expect("oip_refuse_two_inputs", "{\"inputs\":[{},{}]}", NULL, 0, 400);
    expect("oip_refuse_unknown_input",
           "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1,784],\"data\":[0]}]}", NULL, 0, 400);
    expect("oip_refuse_datatype", "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"INT64\",\"shape\":[1,784],"
           "\"data\":[0]}]}", NULL, 0, 400);
    expect("oip_refuse_shape", REQ("\"shape\":[1,28,28,3],\"data\":[0]}]}"), NULL, 0, 400);
    expect("oip_refuse_shape_negative", REQ("\"shape\":[-1,784],\"data\":[0]}]}"), NULL, 0, 400);
    expect("oip_refuse_shape_fraction", REQ("\"shape\":[1.5,784],\"data\":[0]}]}"), NULL, 0, 400);
    expect("oip_refuse_shape_zero_images", REQ("\"shape\":[0,784],\"data\":[]}]}"), NULL, 0, 400);
    expect("oip_refuse_huge_shape", REQ("\"shape\":[1e15,28,28,1],\"data\":[0]}]}"), NULL, 0, 413);
    expect("oip_refuse_over_max_images", REQ("\"shape\":[65,784],\"data\":[0]}]}"), NULL, 0, 413);
    expect("oip_refuse_huge_inner_dim", REQ("\"shape\":[1,9007199254740992],\"data\":[0]}]}"), NULL, 0, 400);
    expect("oip_refuse_data_short", REQ("\"shape\":[1,784],\"data\":[0,0,0]}]}"), NULL, 0, 400);
    expect("oip_refuse_data_not_numbers", REQ("\"shape\":[1,784],\"data\":[\"a\"]}]}"), NULL, 0, 400);
    expect("oip_refuse_data_missing", REQ("\"shape\":[1,784]}]}"), NULL, 0, 400);
    expect("oip_refuse_duplicate_key", REQ("\"shape\":[1,784],\"shape\":[1,784],\"data\":[0]}]}"), NULL, 0, 400);
    expect("oip_refuse_unknown_output", "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"BYTES\",\"shape\":[1],"
           "\"data\":[\"YQ==\"]}],\"outputs\":[{\"name\":\"logits\"}]}", NULL, 0, 400);
    expect("oip_refuse_classification_over_10", "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"BYTES\","
           "\"shape\":[1],\"data\":[\"YQ==\"]}],\"outputs\":[{\"name\":\"probabilities\",\"parameters\":"
           "{\"classification\":11}}]}", NULL, 0, 400);
    expect("oip_refuse_bytes_not_base64", "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"BYTES\",\"shape\":[1],"
           "\"data\":[\"a\"]}]}", NULL, 0, 400);
    expect("oip_refuse_header_length_beyond_body", "{}", "1000", 0, 400);
    expect("oip_refuse_header_length_not_number", "{}", "12abc", 0, 400);
    expect("oip_refuse_header_length_huge", "{}", "99999999999999999999999", 0, 400);
    expect("oip_refuse_raw_not_whole_images", "abc", "0", 0, 400);

    /* FP32 out of range: well formed, refused as unprocessable */
    buf v = {0};
    puts_(&v, "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\",\"data\":[2");
    for (int k = 1; k < NET_IN_PIXELS; k++)
        puts_(&v, ",0");
    puts_(&v, "]}]}");
    expect("oip_refuse_fp32_out_of_range", v.p, NULL, 0, 422);
    free(v.p);

    /* binary: size beyond the body, size not matching the shape, bytes left
     * over, data and binary_data_size both */
    float img[NET_IN_PIXELS] = {0};
    buf x = {0};
    binary_request(&x, "FP32", "[1,784]", img, sizeof img, NULL, ihcl);
    expect("oip_binary_control_accepted", x.p, ihcl, x.n, 0);
    expect("oip_refuse_binary_beyond_body", x.p, ihcl, x.n - 4, 400);
    put(&x, "zz", 2);
    expect("oip_refuse_binary_bytes_left_over", x.p, ihcl, x.n, 400);
    free(x.p);
    buf y = {0};
    binary_request(&y, "FP32", "[2,784]", img, sizeof img, NULL, ihcl);
    expect("oip_refuse_binary_size_not_shape", y.p, ihcl, y.n, 400);
    free(y.p);
    buf z = {0};
    binary_request(&z, "BYTES", "[2]", "\xff\xff\xff\x7f" "a", 5, NULL, ihcl);
    expect("oip_refuse_bytes_length_beyond", z.p, ihcl, z.n, 400);
    free(z.p);
    float nan_img[NET_IN_PIXELS] = {0};
    nan_img[5] = NAN;
    buf w = {0};
    binary_request(&w, "FP32", "[1,784]", nan_img, sizeof nan_img, NULL, ihcl);
    expect("oip_refuse_binary_nan", w.p, ihcl, w.n, 422);
    free(w.p);
#undef REQ
}

static void test_response(void)
{
    float probs[2 * NET_CLASSES];
    for (int i = 0; i < 2 * NET_CLASSES; i++)
        probs[i] = (float)((i * 37) % 10) / 45.0f;
    oip_request req = {.n = 2, .dtype = OIP_FP32, .has_id = 1};
    snprintf(req.id, sizeof req.id, "q\"1");
    char *body;
    size_t len, jl;

    TEST_BEGIN("oip_response_json");
    CHECK(oip_write_response(&req, probs, "mnist", "abc", &body, &len, &jl) == 0, "write");
    CHECK(jl == len, "all JSON");
    CHECK(strstr(body, "\"model_name\":\"mnist\",\"model_version\":\"abc\",\"id\":\"q\\\"1\"") != NULL,
          "header: %s", body);
    CHECK(strstr(body, "\"name\":\"probabilities\",\"datatype\":\"FP32\",\"shape\":[2,10],\"data\":[0,") != NULL,
          "output: %.200s", body);
    /* every value reads back as the same float */
    const char *p = strstr(body, "\"data\":[") + 8;
    int diff = 0;
    for (int i = 0; i < 2 * NET_CLASSES; i++) {
        char *end;
        float f = strtof(p, &end);
        diff += f != probs[i];
        p = end + 1;
    }
    CHECK(diff == 0, "%d values do not read back", diff);
    free(body);
    TEST_END();

    TEST_BEGIN("oip_response_binary");
    req.out_binary = 1;
    CHECK(oip_write_response(&req, probs, "mnist", "abc", &body, &len, &jl) == 0, "write");
    CHECK(len == jl + sizeof probs, "binary part %zu bytes", len - jl);
    CHECK(memcmp(body + jl, probs, sizeof probs) == 0, "the floats, little-endian");
    CHECK(strstr(body, "\"parameters\":{\"binary_data_size\":80}}]}") == body + jl - 39, "header end: %.*s",
          (int)jl, body);
    free(body);
    TEST_END();

    TEST_BEGIN("oip_response_classification");
    float one[NET_CLASSES] = {0.01f, 0.02f, 0.9f, 0.03f, 0.01f, 0.01f, 0.01f, 0.01f, 0.0f, 0.0f};
    oip_request c = {.n = 1, .dtype = OIP_FP32, .class_k = 3};
    CHECK(oip_write_response(&c, one, "mnist", "v", &body, &len, &jl) == 0, "write");
    CHECK(strstr(body, "\"datatype\":\"BYTES\",\"shape\":[1,3],\"data\":[\"0.900000:2\",\"0.030000:3\","
                 "\"0.020000:1\"]") != NULL, "json: %s", body);
    free(body);
    c.out_binary = 1;
    CHECK(oip_write_response(&c, one, "mnist", "v", &body, &len, &jl) == 0, "write");
    CHECK(len - jl == 3 * (4 + 10) && memcmp(body + jl, "\x0a\0\0\0" "0.900000:2", 14) == 0,
          "binary: %zu bytes", len - jl);
    free(body);
    TEST_END();
}

int main(void)
{
    test_fp32_json();
    test_number_forms();
    test_binary();
    test_refusals();
    test_response();
    TEST_EXIT();
}
