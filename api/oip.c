/* api/oip.c -- Open Inference Protocol (KServe v2) requests for the MNIST
 * model; see oip.h for what is accepted. JSON goes through cJSON, except the
 * numbers of an input's "data", which take the fast path of oipscan.h
 * (oip_parse_request_slow is the cJSON path alone, for tests that compare
 * them). The response is written by oipreply.c. */
#include "api/oip.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/oipscan.h"

#define MAX_MEMBERS 64       /* members of one object we read */

/* ---- base64 (BYTES elements in JSON) -------------------------------------- */

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decodes standard or URL-safe base64 (padding optional) into out (room
 * for len*3/4 bytes). Returns the length, or -1 when not base64. */
static long b64_decode(const char *s, size_t len, uint8_t *out)
{
    while (len > 0 && s[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return (long)o;
}

/* ---- the request ------------------------------------------------------------ */

typedef struct {
    const uint8_t *body;
    size_t len;
    const char *json;        /* the JSON text (the body's first json_len bytes) */
    size_t json_len;
    size_t bin_pos;          /* next unread binary byte (offset in body) */
    const oip_scanner *sc;   /* NULL: no fast path */
    const oip_limits *lim;
    int raw;                 /* Inference-Header-Content-Length: 0 */
} parse_ctx;

static int has_duplicate_keys(const cJSON *obj, const char **dup)
{
    int n = 0;
    for (const cJSON *a = obj->child; a; a = a->next)
        if (++n > MAX_MEMBERS)
            return -1;
    for (const cJSON *a = obj->child; a; a = a->next) {
        for (const cJSON *b = a->next; b; b = b->next)
            if (a->string && b->string && strcmp(a->string, b->string) == 0) {
                *dup = a->string;
                return 1;
            }
    }
    return 0;
}

/* An object's members checked: unique keys, not too many. */
static int check_object(const cJSON *o, const char *what, char *err, size_t errlen)
{
    if (!cJSON_IsObject(o))
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "%s must be an object", what);
    const char *dup = NULL;
    int d = has_duplicate_keys(o, &dup);
    if (d < 0)
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "%s has more than %d members", what, MAX_MEMBERS);
    if (d > 0)
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "%s has the member \"%.64s\" twice", what, dup);
    return OIP_OK;
}

/* A JSON integer in [0, max]. */
static int get_uint(const cJSON *v, double max, uint64_t *out)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > max ||
        v->valuedouble != floor(v->valuedouble))
        return -1;
    *out = (uint64_t)v->valuedouble;
    return 0;
}

static void format_shape(const oip_request *req, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < req->nshape && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%lld", i ? "," : "", (long long)req->shape[i]);
    if (n < len)
        snprintf(buf + n, len - n, "]");
}

/* The shape: 1..4 dimensions, the first the number of images. */
static int parse_shape(const cJSON *shape, oip_request *req, const oip_limits *lim, char *err, size_t errlen)
{
    if (!cJSON_IsArray(shape))
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "input \"shape\" must be an array of integers");
    int n = cJSON_GetArraySize(shape);
    if (n < 1 || n > 4)
        return oip_fail(err, errlen, OIP_BAD_REQUEST,
                        "input \"shape\" has %d dimensions; the accepted shapes have 1 to 4", n);
    int i = 0;
    for (const cJSON *d = shape->child; d; d = d->next, i++) {
        uint64_t v;
        if (get_uint(d, 9007199254740992.0, &v) != 0)
            return oip_fail(err, errlen, OIP_BAD_REQUEST,
                            "input \"shape\" must hold non-negative integers (dimension %d is not one)", i);
        req->shape[i] = (int64_t)v;
    }
    req->nshape = n;
    if (req->shape[0] == 0)
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "the shape's first dimension (the images) is 0");
    if (req->shape[0] > lim->max_images)
        return oip_fail(err, errlen, OIP_TOO_LARGE, "the shape declares %lld images; the limit is %d (--max-images)",
                        (long long)req->shape[0], lim->max_images);
    req->n = (int)req->shape[0];
    char sh[128];
    format_shape(req, sh, sizeof(sh));
    const int64_t *s = req->shape;
    if (req->dtype == OIP_BYTES) {
        if (n == 1 || (n == 2 && s[1] == 1))
            return OIP_OK;
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "shape %s is not accepted for BYTES: send [N] or [N,1], "
                        "one PNG per element", sh);
    }
    int ok = (n == 4 && s[1] == 28 && s[2] == 28 && s[3] == 1) || (n == 3 && s[1] == 28 && s[2] == 28) ||
             (n == 4 && s[1] == 1 && s[2] == 28 && s[3] == 28) || (n == 2 && s[1] == NET_IN_PIXELS);
    if (!ok)
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "shape %s is not accepted for %s: send [N,28,28,1], "
                        "[N,28,28], [N,1,28,28] or [N,784]", sh, req->dtype == OIP_FP32 ? "FP32" : "UINT8");
    return OIP_OK;
}

/* Takes the next size bytes of binary data. */
static int take_binary(parse_ctx *pc, uint64_t size, const uint8_t **p, char *err, size_t errlen)
{
    if (size > pc->len - pc->bin_pos)
        return oip_fail(err, errlen, OIP_BAD_REQUEST,
                        "binary_data_size %llu is beyond the body: %zu bytes of binary data are left",
                        (unsigned long long)size, pc->len - pc->bin_pos);
    *p = pc->body + pc->bin_pos;
    pc->bin_pos += (size_t)size;
    return OIP_OK;
}

static int check_binary_pixels(oip_request *req, char *err, size_t errlen)
{
    size_t total = (size_t)req->n * NET_IN_PIXELS;
    if (req->dtype == OIP_UINT8)
        return OIP_OK;
    for (size_t i = 0; i < total; i++) {
        float f;
        memcpy(&f, req->bin + 4 * i, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        uint32_t u;
        memcpy(&u, &f, 4);
        u = __builtin_bswap32(u);
        memcpy(&f, &u, 4);
#endif
        if (!(f >= 0.0f && f <= 1.0f))
            return oip_fail(err, errlen, OIP_UNPROCESSABLE,
                            "FP32 pixel %zu of image %zu is %g; pixels must be in [0,1]", i % NET_IN_PIXELS,
                            i / NET_IN_PIXELS, (double)f);
    }
    return OIP_OK;
}

/* BYTES elements from binary data: n times a 4-byte little-endian length
 * and the bytes, filling exactly size bytes. */
static int bytes_from_binary(oip_request *req, const uint8_t *p, uint64_t size, char *err, size_t errlen)
{
    size_t off = 0;
    for (int i = 0; i < req->n; i++) {
        if (size - off < 4)
            return oip_fail(err, errlen, OIP_BAD_REQUEST, "BYTES element %d: its 4-byte length is beyond "
                            "binary_data_size", i);
        uint32_t l = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 | (uint32_t)p[off + 2] << 16 |
                     (uint32_t)p[off + 3] << 24;
        off += 4;
        if (l > size - off)
            return oip_fail(err, errlen, OIP_BAD_REQUEST, "BYTES element %d declares %u bytes; only %llu are left",
                            i, l, (unsigned long long)(size - off));
        req->elem[i] = p + off;
        req->elem_len[i] = l;
        off += l;
    }
    if (off != size)
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "binary_data_size %llu holds %llu bytes more than the %d "
                        "BYTES elements", (unsigned long long)size, (unsigned long long)(size - off), req->n);
    return OIP_OK;
}

/* BYTES elements from JSON: base64 strings (nested arrays allowed), or one
 * string for a single image. */
static int collect_strings(const cJSON *a, int depth, const cJSON **out, int want, int *count, char *err,
                           size_t errlen)
{
    if (cJSON_IsString(a)) {
        if (*count >= want)
            return oip_fail(err, errlen, OIP_BAD_REQUEST, "\"data\" has more than the %d elements the shape needs",
                            want);
        out[(*count)++] = a;
        return OIP_OK;
    }
    if (!cJSON_IsArray(a) || depth > OIP_DATA_MAX_DEPTH)
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "the \"data\" of a BYTES input must be base64 strings");
    for (const cJSON *e = a->child; e; e = e->next) {
        int st = collect_strings(e, depth + 1, out, want, count, err, errlen);
        if (st)
            return st;
    }
    return OIP_OK;
}

static int bytes_from_json(oip_request *req, const cJSON *data, char *err, size_t errlen)
{
    const cJSON **strs = calloc((size_t)req->n, sizeof(*strs));
    if (!strs)
        return oip_fail(err, errlen, OIP_NOMEM, "out of memory");
    int count = 0;
    int st = collect_strings(data, 0, strs, req->n, &count, err, errlen);
    if (!st && count != req->n)
        st = oip_fail(err, errlen, OIP_BAD_REQUEST, "\"data\" has %d elements; the shape needs %d", count, req->n);
    size_t total = 0;
    for (int i = 0; !st && i < count; i++)
        total += strlen(strs[i]->valuestring) / 4 * 3 + 3;
    if (!st && !(req->decoded = malloc(total ? total : 1)))
        st = oip_fail(err, errlen, OIP_NOMEM, "out of memory");
    size_t off = 0;
    for (int i = 0; !st && i < count; i++) {
        const char *s = strs[i]->valuestring;
        long n = b64_decode(s, strlen(s), req->decoded + off);
        if (n < 0)
            st = oip_fail(err, errlen, OIP_BAD_REQUEST, "BYTES element %d is not base64 text", i);
        else {
            req->elem[i] = req->decoded + off;
            req->elem_len[i] = (uint32_t)n;
            off += (size_t)n;
        }
    }
    free(strs);
    return st;
}

static int parse_dtype(const cJSON *dt, oip_request *req, char *err, size_t errlen)
{
    if (!cJSON_IsString(dt))
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "input \"datatype\" must be a string");
    const char *s = dt->valuestring;
    if (strcmp(s, "FP32") == 0)
        req->dtype = OIP_FP32;
    else if (strcmp(s, "UINT8") == 0)
        req->dtype = OIP_UINT8;
    else if (strcmp(s, "BYTES") == 0)
        req->dtype = OIP_BYTES;
    else
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "datatype \"%.32s\" is not accepted for input \"input\": "
                        "send FP32, UINT8 or BYTES (PNG files)", s);
    return OIP_OK;
}

/* One input (the model has exactly one). */
static int parse_input(parse_ctx *pc, const cJSON *in, oip_request *req, char *err, size_t errlen)
{
    int st = check_object(in, "an input", err, errlen);
    if (st)
        return st;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(in, "name");
    if (!cJSON_IsString(name))
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "an input needs a \"name\" string");
    if (strcmp(name->valuestring, OIP_INPUT_NAME) != 0)
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "unknown input \"%.64s\": the model has one input, \"input\"",
                        name->valuestring);
    if ((st = parse_dtype(cJSON_GetObjectItemCaseSensitive(in, "datatype"), req, err, errlen)))
        return st;
    if ((st = parse_shape(cJSON_GetObjectItemCaseSensitive(in, "shape"), req, pc->lim, err, errlen)))
        return st;

    const cJSON *params = cJSON_GetObjectItemCaseSensitive(in, "parameters");
    const cJSON *bds = NULL;
    if (params) {
        if ((st = check_object(params, "input \"parameters\"", err, errlen)))
            return st;
        bds = cJSON_GetObjectItemCaseSensitive(params, "binary_data_size");
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(in, "data");
    const oip_span *sp = pc->sc && pc->sc->spans[0].found ? &pc->sc->spans[0] : NULL;
    size_t n = (size_t)req->n;
    size_t esize = req->dtype == OIP_FP32 ? 4 : 1;
    if (req->dtype == OIP_BYTES) {
        req->elem = calloc(n, sizeof(*req->elem));
        req->elem_len = calloc(n, sizeof(*req->elem_len));
        if (!req->elem || !req->elem_len)
            return oip_fail(err, errlen, OIP_NOMEM, "out of memory");
    }
    if (bds) {
        uint64_t size;
        if (get_uint(bds, 9007199254740992.0, &size) != 0)
            return oip_fail(err, errlen, OIP_BAD_REQUEST, "\"binary_data_size\" must be a non-negative integer");
        if (data)
            return oip_fail(err, errlen, OIP_BAD_REQUEST, "input \"input\" has both \"data\" and \"binary_data_size\"");
        if (pc->json_len == pc->len && !pc->raw && size > 0)
            return oip_fail(err, errlen, OIP_BAD_REQUEST,
                            "\"binary_data_size\" needs the Inference-Header-Content-Length "
                            "header (the length of the JSON before the binary data)");
        if (req->dtype != OIP_BYTES && size != (uint64_t)n * NET_IN_PIXELS * esize)
            return oip_fail(err, errlen, OIP_BAD_REQUEST, "binary_data_size is %llu; the shape needs %zu bytes",
                            (unsigned long long)size, n * NET_IN_PIXELS * esize);
        const uint8_t *p = NULL;
        if ((st = take_binary(pc, size, &p, err, errlen)))
            return st;
        if (req->dtype == OIP_BYTES)
            return bytes_from_binary(req, p, size, err, errlen);
        req->bin = p;
        return check_binary_pixels(req, err, errlen);
    }
    if (!data)
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "input \"input\" has neither \"data\" nor "
                        "\"binary_data_size\"");
    if (req->dtype == OIP_BYTES) {
        if (sp)
            return oip_fail(err, errlen, OIP_BAD_REQUEST, "the \"data\" of a BYTES input must be base64 strings");
        return bytes_from_json(req, data, err, errlen);
    }
    size_t want = n * NET_IN_PIXELS, bad = 0;
    req->pixels = malloc(want * sizeof(float));
    if (!req->pixels)
        return oip_fail(err, errlen, OIP_NOMEM, "out of memory");
    if (sp) {
        st = oip_fast_numbers(pc->json + sp->start, sp->end - sp->start, req->dtype == OIP_UINT8, req->pixels,
                              want, &bad, err, errlen) ? OIP_BAD_REQUEST : OIP_OK;
    } else if (!cJSON_IsArray(data)) {
        st = oip_fail(err, errlen, OIP_BAD_REQUEST, "the \"data\" of a %s input must be an array of numbers",
                      req->dtype == OIP_FP32 ? "FP32" : "UINT8");
    } else {
        size_t count = 0;
        st = oip_tree_numbers(data, 1, req->dtype == OIP_UINT8, req->pixels, want, &count, &bad, err, errlen)
                 ? OIP_BAD_REQUEST : OIP_OK;
        if (!st && count != want)
            st = oip_fail(err, errlen, OIP_BAD_REQUEST, "\"data\" has %zu values; the shape needs %zu", count, want);
    }
    if (!st && bad)
        st = oip_fail(err, errlen, OIP_UNPROCESSABLE, req->dtype == OIP_FP32
                      ? "FP32 pixels must be in [0,1] (white digit on black; divide 0..255 values by 255)"
                      : "UINT8 pixels must be integers 0..255");
    return st;
}

/* The requested outputs and the request parameters. */
static int parse_outputs(const cJSON *root, oip_request *req, char *err, size_t errlen)
{
    int st;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "parameters");
    if (params) {
        if ((st = check_object(params, "\"parameters\"", err, errlen)))
            return st;
        const cJSON *bdo = cJSON_GetObjectItemCaseSensitive(params, "binary_data_output");
        if (bdo && !cJSON_IsBool(bdo))
            return oip_fail(err, errlen, OIP_BAD_REQUEST, "\"binary_data_output\" must be true or false");
        if (bdo && cJSON_IsTrue(bdo))
            req->out_binary = 1;
        /* the explain extension's (ignored by infer) */
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(params, "target");
        uint64_t v = 0;
        if (t && get_uint(t, NET_CLASSES - 1, &v) != 0)
            return oip_fail(err, errlen, OIP_BAD_REQUEST, "\"target\" must be a class, an integer 0..%d",
                            NET_CLASSES - 1);
        if (t)
            req->explain_target = (int)v;
        const cJSON *steps = cJSON_GetObjectItemCaseSensitive(params, "steps");
        if (steps && (get_uint(steps, OIP_EXPLAIN_STEPS_MAX, &v) != 0 || v == 0))
            return oip_fail(err, errlen, OIP_BAD_REQUEST, "\"steps\" must be an integer 1..%d",
                            OIP_EXPLAIN_STEPS_MAX);
        if (steps)
            req->explain_steps = (int)v;
    }
    const cJSON *outs = cJSON_GetObjectItemCaseSensitive(root, "outputs");
    if (!outs)
        return OIP_OK;
    if (!cJSON_IsArray(outs))
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "\"outputs\" must be an array");
    if (cJSON_GetArraySize(outs) > 1)
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "\"outputs\" names %d outputs; the model has one, "
                        "\"probabilities\"", cJSON_GetArraySize(outs));
    for (const cJSON *o = outs->child; o; o = o->next) {
        if ((st = check_object(o, "a requested output", err, errlen)))
            return st;
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
        if (!cJSON_IsString(name))
            return oip_fail(err, errlen, OIP_BAD_REQUEST, "a requested output needs a \"name\" string");
        if (strcmp(name->valuestring, OIP_OUTPUT_NAME) != 0)
            return oip_fail(err, errlen, OIP_BAD_REQUEST, "unknown output \"%.64s\": the model has one output, "
                            "\"probabilities\"", name->valuestring);
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(o, "parameters");
        if (!op)
            continue;
        if ((st = check_object(op, "output \"parameters\"", err, errlen)))
            return st;
        const cJSON *bd = cJSON_GetObjectItemCaseSensitive(op, "binary_data");
        if (bd && !cJSON_IsBool(bd))
            return oip_fail(err, errlen, OIP_BAD_REQUEST, "\"binary_data\" must be true or false");
        if (bd)
            req->out_binary = cJSON_IsTrue(bd);
        const cJSON *cls = cJSON_GetObjectItemCaseSensitive(op, "classification");
        uint64_t k = 0;
        if (cls && (get_uint(cls, 1e9, &k) != 0 || k > NET_CLASSES))
            return oip_fail(err, errlen, OIP_BAD_REQUEST, "\"classification\" must be an integer 0..%d", NET_CLASSES);
        req->class_k = (int)k;
    }
    return OIP_OK;
}

/* The raw binary form: no JSON, the body is FP32 [N,28,28,1]. */
static int parse_raw(const parse_ctx *pc, oip_request *req, char *err, size_t errlen)
{
    if (pc->len == 0 || pc->len % OIP_IMAGE_BYTES != 0)
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "Inference-Header-Content-Length 0: the body must be FP32 "
                        "images of %d bytes each; it has %zu bytes", OIP_IMAGE_BYTES, pc->len);
    size_t n = pc->len / OIP_IMAGE_BYTES;
    if (n > (size_t)pc->lim->max_images)
        return oip_fail(err, errlen, OIP_TOO_LARGE, "the body holds %zu images; the limit is %d (--max-images)", n,
                        pc->lim->max_images);
    req->dtype = OIP_FP32;
    req->n = (int)n;
    req->nshape = 4;
    req->shape[0] = (int64_t)n;
    req->shape[1] = req->shape[2] = 28;
    req->shape[3] = 1;
    req->bin = pc->body;
    req->out_binary = 1;
    return check_binary_pixels(req, err, errlen);
}

/* The Inference-Header-Content-Length value: a decimal length within the
 * body. */
static int parse_header_len(const char *h, size_t len, size_t *out, char *err, size_t errlen)
{
    uint64_t v = 0;
    const char *p = h;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!(*p >= '0' && *p <= '9'))
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "Inference-Header-Content-Length must be a decimal number");
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return oip_fail(err, errlen, OIP_BAD_REQUEST, "Inference-Header-Content-Length is beyond the body");
        v = v * 10 + (uint64_t)(*p - '0');
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p)
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "Inference-Header-Content-Length must be a decimal number");
    if (v > len)
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "Inference-Header-Content-Length is %llu; the body has only %zu "
                        "bytes", (unsigned long long)v, len);
    *out = (size_t)v;
    return OIP_OK;
}

static int parse(const uint8_t *body, size_t len, const char *header_len, const oip_limits *lim,
                 oip_request *req, int fast, char *err, size_t errlen)
{
    memset(req, 0, sizeof(*req));
    req->explain_target = -1;
    parse_ctx pc = {.body = body, .len = len, .lim = lim, .json = (const char *)body, .json_len = len};
    int st;
    if (header_len) {
        if ((st = parse_header_len(header_len, len, &pc.json_len, err, errlen)))
            return st;
        if (pc.json_len == 0) {
            pc.raw = 1;
            st = parse_raw(&pc, req, err, errlen);
            if (st)
                oip_request_free(req);
            return st;
        }
    }
    pc.bin_pos = pc.json_len;
    if (pc.json_len == 0)
        return oip_fail(err, errlen, OIP_BAD_REQUEST, "empty body: send an inference request (JSON)");

    oip_scanner *sc = NULL;
    if (fast) {
        sc = malloc(sizeof(*sc));
        if (sc && oip_scan(sc, pc.json, pc.json_len) != 0) {
            free(sc);
            sc = NULL;
        }
    }
    pc.sc = sc;
    size_t skel_len = 0;
    char *skel = oip_skeleton(pc.json, pc.json_len, sc, &skel_len);
    if (!skel) {
        free(sc);
        return oip_fail(err, errlen, OIP_NOMEM, "out of memory");
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(skel, skel_len + 1, &end, 1);
    if (!root) {
        size_t at = end ? (size_t)(end - skel) : 0;
        for (int i = 0; sc && i < OIP_SCAN_INPUTS; i++)
            if (sc->spans[i].found && sc->spans[i].start < at + 1)
                at += sc->spans[i].end - sc->spans[i].start - 2;
        st = oip_fail(err, errlen, OIP_BAD_REQUEST, "malformed JSON near byte %zu of the inference request", at);
        goto out;
    }
    if ((st = check_object(root, "the inference request", err, errlen)))
        goto out;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (id) {
        if (!cJSON_IsString(id) || strlen(id->valuestring) > OIP_ID_MAX) {
            st = oip_fail(err, errlen, OIP_BAD_REQUEST, "\"id\" must be a string of at most %d bytes", OIP_ID_MAX);
            goto out;
        }
        snprintf(req->id, sizeof(req->id), "%s", id->valuestring);
        req->has_id = 1;
    }
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (!cJSON_IsArray(inputs)) {
        st = oip_fail(err, errlen, OIP_BAD_REQUEST, "the inference request needs an \"inputs\" array");
        goto out;
    }
    if (cJSON_GetArraySize(inputs) != 1) {
        st = oip_fail(err, errlen, OIP_BAD_REQUEST, "the model has one input, \"input\"; the request has %d",
                      cJSON_GetArraySize(inputs));
        goto out;
    }
    if ((st = parse_input(&pc, inputs->child, req, err, errlen)))
        goto out;
    if ((st = parse_outputs(root, req, err, errlen)))
        goto out;
    if (pc.bin_pos != pc.len)
        st = oip_fail(err, errlen, OIP_BAD_REQUEST, "%zu bytes of the body follow the last binary tensor",
                      pc.len - pc.bin_pos);
out:
    cJSON_Delete(root);
    free(skel);
    free(sc);
    if (st)
        oip_request_free(req);
    return st;
}

int oip_parse_request(const uint8_t *body, size_t len, const char *header_len, const oip_limits *lim,
                      oip_request *req, char *err, size_t errlen)
{
    return parse(body, len, header_len, lim, req, 1, err, errlen);
}

int oip_parse_request_slow(const uint8_t *body, size_t len, const char *header_len, const oip_limits *lim,
                           oip_request *req, char *err, size_t errlen)
{
    return parse(body, len, header_len, lim, req, 0, err, errlen);
}

void oip_request_free(oip_request *req)
{
    oip_request_drop_data(req);
    memset(req, 0, sizeof(*req));
}

void oip_request_drop_data(oip_request *req)
{
    free(req->pixels);
    free(req->elem);
    free(req->elem_len);
    free(req->decoded);
    req->pixels = NULL;
    req->elem = NULL;
    req->elem_len = NULL;
    req->decoded = NULL;
    req->bin = NULL;
}

void oip_request_pixels(const oip_request *req, int i, float out[NET_IN_PIXELS])
{
    if (req->pixels) {
        memcpy(out, req->pixels + (size_t)i * NET_IN_PIXELS, NET_IN_PIXELS * sizeof(float));
        return;
    }
    if (req->dtype == OIP_UINT8) {
        const uint8_t *p = req->bin + (size_t)i * NET_IN_PIXELS;
        for (int k = 0; k < NET_IN_PIXELS; k++)
            out[k] = (float)p[k] / 255.0f;
        return;
    }
    memcpy(out, req->bin + (size_t)i * OIP_IMAGE_BYTES, OIP_IMAGE_BYTES);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (int k = 0; k < NET_IN_PIXELS; k++) {
        uint32_t u;
        memcpy(&u, &out[k], 4);
        u = __builtin_bswap32(u);
        memcpy(&out[k], &u, 4);
    }
#endif
}
