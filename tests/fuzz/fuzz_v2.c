/* tests/fuzz/fuzz_v2.c -- libFuzzer harness: the Open Inference Protocol
 * infer request parser (api/oip.c), JSON and binary, and the response
 * writer.
 *
 * Input layout:
 *   line   up to the first '\n': the Inference-Header-Content-Length value;
 *          a line "-" means no such header
 *   rest   the request body, in a buffer of exactly its size
 *
 * Checked beyond ASan/UBSan:
 *   - a refusal has a documented status (400, 413, 422) and a message;
 *   - the fast path for numeric data and the cJSON path agree: both accept
 *     or both refuse, and what they accept is the same, value for value;
 *   - an accepted request has 1..max_images images of a known datatype,
 *     FP32/UINT8 pixels in [0,1] as network input, BYTES elements inside
 *     the body or the decoded buffer, classification 0..10;
 *   - the response for it is JSON that cJSON reads back, with the shape
 *     [n,10] or [n,k], and a binary part of exactly binary_data_size bytes. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/oip.h"

#define FUZZ_ASSERT(cond) do { if (!(cond)) { \
    fprintf(stderr, "fuzz_v2: contract broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
    abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const oip_limits lim = {.max_images = 8};

static void check_accepted(const oip_request *r, const uint8_t *body, size_t len)
{
    FUZZ_ASSERT(r->n >= 1 && r->n <= lim.max_images);
    FUZZ_ASSERT(r->dtype == OIP_FP32 || r->dtype == OIP_UINT8 || r->dtype == OIP_BYTES);
    FUZZ_ASSERT(r->class_k >= 0 && r->class_k <= NET_CLASSES);
    FUZZ_ASSERT(strlen(r->id) <= OIP_ID_MAX);
    if (r->dtype == OIP_BYTES) {
        FUZZ_ASSERT(r->elem && r->elem_len && !r->pixels && !r->bin);
        for (int i = 0; i < r->n; i++) {
            int in_body = r->elem[i] >= body && r->elem[i] + r->elem_len[i] <= body + len;
            FUZZ_ASSERT(in_body || r->decoded);
            if (r->elem_len[i])
                FUZZ_ASSERT(r->elem[i][r->elem_len[i] - 1] == r->elem[i][r->elem_len[i] - 1]);
        }
        return;
    }
    FUZZ_ASSERT((r->pixels != NULL) != (r->bin != NULL));
    if (r->bin)
        FUZZ_ASSERT(r->bin >= body && r->bin + (size_t)r->n * NET_IN_PIXELS * (r->dtype == OIP_FP32 ? 4 : 1)
                    <= body + len);
    float x[NET_IN_PIXELS];
    for (int i = 0; i < r->n; i++) {
        oip_request_pixels(r, i, x);
        for (int k = 0; k < NET_IN_PIXELS; k++)
            FUZZ_ASSERT(x[k] >= 0.0f && x[k] <= 1.0f);
    }
}

static void check_same(const oip_request *a, const oip_request *b)
{
    FUZZ_ASSERT(a->dtype == b->dtype && a->n == b->n && a->class_k == b->class_k);
    FUZZ_ASSERT(a->out_binary == b->out_binary && a->has_id == b->has_id && strcmp(a->id, b->id) == 0);
    if (a->dtype == OIP_BYTES) {
        for (int i = 0; i < a->n; i++)
            FUZZ_ASSERT(a->elem_len[i] == b->elem_len[i] && memcmp(a->elem[i], b->elem[i], a->elem_len[i]) == 0);
        return;
    }
    float x[NET_IN_PIXELS], y[NET_IN_PIXELS];
    for (int i = 0; i < a->n; i++) {
        oip_request_pixels(a, i, x);
        oip_request_pixels(b, i, y);
        FUZZ_ASSERT(memcmp(x, y, sizeof x) == 0);
    }
}

static void check_response(const oip_request *r)
{
    float probs[8 * NET_CLASSES];
    for (int i = 0; i < r->n * NET_CLASSES; i++)
        probs[i] = (float)((i * 7) % 11) / 10.0f;
    char *body = NULL;
    size_t len = 0, jl = 0;
    FUZZ_ASSERT(oip_write_response(r, probs, "mnist", "v1", &body, &len, &jl) == 0);
    FUZZ_ASSERT(jl <= len);
    cJSON *root = cJSON_ParseWithLength(body, jl);
    FUZZ_ASSERT(root);
    const cJSON *out = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "outputs"), 0);
    FUZZ_ASSERT(out);
    const cJSON *shape = cJSON_GetObjectItem(out, "shape");
    FUZZ_ASSERT(cJSON_GetArrayItem(shape, 0)->valueint == r->n);
    FUZZ_ASSERT(cJSON_GetArrayItem(shape, 1)->valueint == (r->class_k ? r->class_k : NET_CLASSES));
    if (r->has_id)
        FUZZ_ASSERT(strcmp(cJSON_GetObjectItem(root, "id")->valuestring, r->id) == 0);
    const cJSON *bds = cJSON_GetObjectItem(cJSON_GetObjectItem(out, "parameters"), "binary_data_size");
    if (r->out_binary)
        FUZZ_ASSERT(bds && (size_t)bds->valuedouble == len - jl);
    else
        FUZZ_ASSERT(!bds && len == jl && cJSON_GetArraySize(cJSON_GetObjectItem(out, "data")) ==
                    r->n * (r->class_k ? r->class_k : NET_CLASSES));
    cJSON_Delete(root);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    if (!nl || nl - data > 40)
        return 0;
    char header[48];
    size_t hl = (size_t)(nl - data);
    memcpy(header, data, hl);
    header[hl] = '\0';
    const char *ihcl = strcmp(header, "-") == 0 ? NULL : header;
    size_t len = size - hl - 1;
    uint8_t *body = malloc(len ? len : 1);
    if (!body)
        return 0;
    memcpy(body, nl + 1, len);

    oip_request fast, slow;
    char err[512] = "", err2[512] = "";
    int st = oip_parse_request(body, len, ihcl, &lim, &fast, err, sizeof err);
    int st2 = oip_parse_request_slow(body, len, ihcl, &lim, &slow, err2, sizeof err2);
    FUZZ_ASSERT(st == 0 || st == 400 || st == 413 || st == 422);
    FUZZ_ASSERT(st2 == 0 || st2 == 400 || st2 == 413 || st2 == 422);
    FUZZ_ASSERT(st == 0 || (err[0] && strlen(err) < sizeof err));
    FUZZ_ASSERT((st == 0) == (st2 == 0));
    if (st == 0 && st2 == 0) {
        check_accepted(&fast, body, len);
        check_same(&fast, &slow);
        check_response(&fast);
    }
    if (st == 0)
        oip_request_free(&fast);
    if (st2 == 0)
        oip_request_free(&slow);
    free(body);
    return 0;
}
