/* api/v2.c -- the Open Inference Protocol (KServe v2) routes:
 *   GET  /v2                                   server metadata
 *   GET  /v2/health/live, /v2/health/ready      {"live":true}, {"ready":true}
 *   GET  /v2/models/{model}[/versions/{v}]      model metadata
 *   GET  /v2/models/{model}[/versions/{v}]/ready
 *   POST /v2/models/{model}[/versions/{v}]/infer
 *   POST /v2/models/{model}[/versions/{v}]/explain   the explain extension:
 *        the infer request (parameters "target", "steps"), answered with
 *        Integrated Gradients attributions from the explanation queue
 * {model} is --model-name; {v} must be the served model's version. The
 * request format lives in api/oip.c; inference goes through the same
 * batcher, limits and refusals as POST /predict. Not ready answers 503,
 * an unknown model or version 404, every error {"error": ...}. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/infer.h"
#include "api/oip.h"
#include "model/explain.h"
#include "model/net.h"
#include "server/clock.h"

static const char *const retry5[] = {"Retry-After", "5", NULL};

typedef enum { V2_SERVER, V2_LIVE, V2_READY, V2_MODEL, V2_MODEL_READY, V2_INFER, V2_EXPLAIN } v2_op;

_Static_assert(OIP_EXPLAIN_STEPS_MAX == EXPLAIN_STEPS_LIMIT, "the v2 steps bound is the engine's");

#define SEG_MAX 6

/* Splits the path after "/v2" into segments; 0, or -1 when it has too many
 * or an empty one. */
static int split(const char *p, const char *seg[SEG_MAX], size_t len[SEG_MAX], int *n)
{
    *n = 0;
    if (*p == '\0' || strcmp(p, "/") == 0)
        return 0;
    while (*p == '/') {
        p++;
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == 0 || *n == SEG_MAX)
            return -1;
        seg[*n] = p;
        len[(*n)++] = l;
        p += l;
    }
    return *p ? -1 : 0;
}

static int seg_is(const char *s, size_t l, const char *want)
{
    return l == strlen(want) && memcmp(s, want, l) == 0;
}

/* The operation of a /v2 path, with the model name and version segments
 * (copied, truncated to the buffers: longer ones cannot match anyway). */
static int route_of(const char *url, v2_op *op, char name[80], char ver[40])
{
    const char *seg[SEG_MAX];
    size_t len[SEG_MAX];
    int n;
    name[0] = ver[0] = '\0';
    if (split(url + 3, seg, len, &n) != 0)
        return -1;
    if (n == 0) {
        *op = V2_SERVER;
        return 0;
    }
    if (n == 2 && seg_is(seg[0], len[0], "health")) {
        if (seg_is(seg[1], len[1], "live"))
            *op = V2_LIVE;
        else if (seg_is(seg[1], len[1], "ready"))
            *op = V2_READY;
        else
            return -1;
        return 0;
    }
    if (n < 2 || !seg_is(seg[0], len[0], "models"))
        return -1;
    snprintf(name, 80, "%.*s", (int)(len[1] < 79 ? len[1] : 79), seg[1]);
    int i = 2;
    if (n >= 4 && seg_is(seg[2], len[2], "versions")) {
        snprintf(ver, 40, "%.*s", (int)(len[3] < 39 ? len[3] : 39), seg[3]);
        i = 4;
    }
    if (i == n)
        *op = V2_MODEL;
    else if (i + 1 == n && seg_is(seg[i], len[i], "ready"))
        *op = V2_MODEL_READY;
    else if (i + 1 == n && seg_is(seg[i], len[i], "infer"))
        *op = V2_INFER;
    else if (i + 1 == n && seg_is(seg[i], len[i], "explain"))
        *op = V2_EXPLAIN;
    else
        return -1;
    return 0;
}

/* An error in the v2 form: the whole message in "error", which is what
 * v2 clients show. */
static enum MHD_Result v2_error(api_request *r, int status, const char *msg, const char *const *headers)
{
    return api_error(r, status, msg, NULL, headers);
}

static cJSON *tensor_meta(const char *name, const char *dtype, const int *shape, int n)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "name", name);
    cJSON_AddStringToObject(t, "datatype", dtype);
    cJSON_AddItemToObject(t, "shape", cJSON_CreateIntArray(shape, n));
    return t;
}

static enum MHD_Result model_metadata(api_request *r, const served_model *m)
{
    static const int in_shape[] = {-1, NET_IN_H, NET_IN_W, 1}, out_shape[] = {-1, NET_CLASSES};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r->srv->cfg->model_name);
    cJSON *vs = cJSON_AddArrayToObject(o, "versions");
    if (m)
        cJSON_AddItemToArray(vs, cJSON_CreateString(m->version));
    cJSON_AddStringToObject(o, "platform", "mnistd_native");
    cJSON *in = cJSON_AddArrayToObject(o, "inputs");
    cJSON_AddItemToArray(in, tensor_meta(OIP_INPUT_NAME, "FP32", in_shape, 4));
    cJSON *out = cJSON_AddArrayToObject(o, "outputs");
    cJSON_AddItemToArray(out, tensor_meta(OIP_OUTPUT_NAME, "FP32", out_shape, 2));
    return api_respond_json(r, 200, o, NULL);
}

static enum MHD_Result server_metadata(api_request *r)
{
    static const char body[] = "{\"name\":\"mnistd\",\"version\":\"" MNISTD_VERSION "\","
                               "\"extensions\":[\"binary_tensor_data\",\"classification\",\"explain\"]}\n";
    return api_respond_static(r, 200, "application/json", body, sizeof(body) - 1, NULL);
}

/* 503 with why the server is not ready, or 0 when it is (*m then holds a
 * reference to the served model, released by the caller). */
static int not_ready(api_request *r, served_model **m, enum MHD_Result *ret)
{
    *m = NULL;
    if (atomic_load(&r->srv->quiescing)) {
        *ret = v2_error(r, 503, "not ready: the daemon is stopping", retry5);
        return 1;
    }
    *m = modelstore_acquire(r->srv->ms);
    if (!*m) {
        *ret = v2_error(r, 503, "not ready: no model loaded yet", retry5);
        return 1;
    }
    return 0;
}

/* The answer to a v2 request whose row in the route table is op. */
static enum MHD_Result v2_answer(api_request *r, v2_op op)
{
    const mnistd_config *cfg = r->srv->cfg;
    v2_op path_op;
    char name[80], ver[40];
    if (route_of(r->url, &path_op, name, ver) != 0 || path_op != op)
        return v2_error(r, 404, "no such path in the v2 protocol; see /openapi.yaml", NULL);
    if (op == V2_SERVER)
        return server_metadata(r);
    if (op == V2_LIVE) {
        static const char body[] = "{\"live\":true}\n";
        return api_respond_static(r, 200, "application/json", body, sizeof(body) - 1, NULL);
    }
    served_model *m = NULL;
    enum MHD_Result ret;
    char msg[256];
    if (op == V2_READY) {
        if (not_ready(r, &m, &ret))
            return ret;
        model_release(m);
        static const char body[] = "{\"ready\":true}\n";
        return api_respond_static(r, 200, "application/json", body, sizeof(body) - 1, NULL);
    }
    if (strcmp(name, cfg->model_name) != 0) {
        snprintf(msg, sizeof(msg), "unknown model \"%.64s\": this server serves \"%s\"", name, cfg->model_name);
        return v2_error(r, 404, msg, NULL);
    }
    if (ver[0] || op != V2_MODEL) {
        if (not_ready(r, &m, &ret))
            return ret;
        if (ver[0] && strcmp(ver, m->version) != 0) {
            snprintf(msg, sizeof(msg), "unknown version \"%.39s\" of model \"%s\": the served version is \"%s\"",
                     ver, cfg->model_name, m->version);
            model_release(m);
            return v2_error(r, 404, msg, NULL);
        }
    } else {
        m = modelstore_acquire(r->srv->ms);
    }
    switch (op) {
    case V2_MODEL:
        ret = model_metadata(r, m);
        break;
    case V2_MODEL_READY: {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", cfg->model_name);
        cJSON_AddBoolToObject(o, "ready", 1);
        ret = api_respond_json(r, 200, o, NULL);
        break;
    }
    default: {
        model_release(m);
        m = NULL;
        snprintf(r->v2_version, sizeof(r->v2_version), "%s", ver);
        const char *ce = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Encoding");
        if (ce && strcasecmp(ce, "identity") != 0) {
            snprintf(msg, sizeof(msg), "Content-Encoding \"%.32s\" is not accepted: send the request "
                     "uncompressed", ce);
            return api_reject(r, MREJ_MEDIA_TYPE, 415, msg, NULL, NULL);
        }
        if (api_infer_refused(r))
            return MHD_YES;
        return api_body_begin(r);
    }
    }
    model_release(m);
    return ret;
}

/* Back from the batcher: the response, binary or JSON. */
static enum MHD_Result respond(api_request *r)
{
    enum MHD_Result ret;
    if (api_jobs_failed(r, &ret))
        return ret;
    for (int i = 0; r->v2_version[0] && i < r->nimages; i++)
        if (strcmp(r->jobs[i].model_version, r->v2_version) != 0)
            return v2_error(r, 503, "the served model changed while the request ran; retry", retry5);
    float *probs = malloc(sizeof(float) * NET_CLASSES * (size_t)r->nimages);
    if (!probs)
        return api_error(r, 500, "out of memory", NULL, NULL);
    for (int i = 0; i < r->nimages; i++)
        memcpy(probs + (size_t)i * NET_CLASSES, r->jobs[i].probs, sizeof(r->jobs[i].probs));
    char *body = NULL;
    size_t len = 0, json_len = 0;
    int st = oip_write_response(r->v2, probs, r->srv->cfg->model_name, r->jobs[0].model_version, &body, &len,
                                &json_len);
    free(probs);
    if (st != 0)
        return api_error(r, 500, "out of memory", NULL, NULL);
    if (json_len == len)
        return api_respond_owned(r, 200, "application/json", body, len, NULL);
    char hl[24];
    snprintf(hl, sizeof(hl), "%zu", json_len);
    const char *hdr[] = {"Inference-Header-Content-Length", hl, NULL};
    return api_respond_owned(r, 200, "application/octet-stream", body, len, hdr);
}

/* Back from the explainer: the explain extension's answer. */
static enum MHD_Result respond_explain(api_request *r)
{
    enum MHD_Result ret;
    if (api_explain_failed(r, &ret))
        return ret;
    for (int i = 0; r->v2_version[0] && i < r->nimages; i++)
        if (strcmp(r->xjobs[i].model_version, r->v2_version) != 0)
            return v2_error(r, 503, "the served model changed while the request ran; retry", retry5);
    const size_t n = (size_t)r->nimages;
    float *attr = malloc(sizeof(float) * NET_IN_PIXELS * n), *probs = malloc(sizeof(float) * NET_CLASSES * n);
    float *delta = malloc(sizeof(float) * n);
    int *target = malloc(sizeof(int) * n);
    char *body = NULL;
    size_t len = 0;
    int st = -1;
    if (attr && probs && delta && target) {
        for (size_t i = 0; i < n; i++) {
            const explain_result *x = &r->xjobs[i].result;
            memcpy(attr + i * NET_IN_PIXELS, x->attr, sizeof(x->attr));
            memcpy(probs + i * NET_CLASSES, x->probs, sizeof(x->probs));
            delta[i] = (float)x->delta;
            target[i] = x->target;
        }
        oip_explanation ex = {attr, target, probs, delta};
        st = oip_write_explain_response(r->v2, &ex, r->xjobs[0].steps, r->srv->cfg->model_name,
                                        r->xjobs[0].model_version, &body, &len);
    }
    free(attr);
    free(probs);
    free(delta);
    free(target);
    if (st != 0)
        return api_error(r, 500, "out of memory", NULL, NULL);
    return api_respond_owned(r, 200, "application/json", body, len, NULL);
}

/* The request's images into n inputs, the first at base, each stride bytes
 * after the previous (the jobs' input fields). 0, or -1 with the error
 * answered in *ret. */
static int v2_inputs(api_request *r, float *base, size_t stride, enum MHD_Result *ret)
{
    oip_request *req = r->v2;
    for (int i = 0; i < req->n; i++) {
        float *in = (float *)(void *)((char *)base + (size_t)i * stride);
        if (req->dtype != OIP_BYTES)
            oip_request_pixels(req, i, in);
        else if (api_decode_png(r, req->elem[i], req->elem_len[i], in, NULL, req->n > 1 ? i + 1 : 0, ret) != 0)
            return -1;
    }
    oip_request_drop_data(req);  /* the inputs are in the jobs now */
    return 0;
}

/* The body is complete, or the request came back from the batcher (or, for
 * the explain extension, the explainer). */
static enum MHD_Result v2_finish(api_request *r, v2_op op)
{
    const mnistd_config *cfg = r->srv->cfg;
    enum MHD_Result ret;
    if (api_infer_finish_once(r, op == V2_EXPLAIN ? respond_explain : respond, NULL, &ret))
        return ret;
    char err[512];
    uint64_t t0 = clock_mono_ns();
    r->v2 = calloc(1, sizeof(*r->v2));
    if (!r->v2)
        return api_error(r, 500, "out of memory", NULL, NULL);
    const char *ihcl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Inference-Header-Content-Length");
    oip_limits lim = {.max_images = op == V2_EXPLAIN ? cfg->explain_max_images : cfg->max_images};
    int st = oip_parse_request(r->body, r->len, ihcl, &lim, r->v2, err, sizeof(err));
    if (st != OIP_OK) {
        reject_reason why = st == OIP_TOO_LARGE ? MREJ_TOO_MANY_IMAGES
                             : st == OIP_UNPROCESSABLE ? MREJ_UNPROCESSABLE : MREJ_BAD_REQUEST;
        if (st == OIP_NOMEM)
            return api_error(r, 500, err, NULL, NULL);
        return api_reject(r, why, st, err, NULL, NULL);
    }
    oip_request *req = r->v2;
    r->nimages = req->n;
    if (op == V2_EXPLAIN) {
        const int max_steps = cfg->explain_max_steps;
        const int steps = req->explain_steps ? req->explain_steps
                          : max_steps < EXPLAIN_STEPS_DEFAULT ? max_steps : EXPLAIN_STEPS_DEFAULT;
        if (steps > max_steps) {
            snprintf(err, sizeof(err), "\"steps\" must be an integer 1..%d (--explain-max-steps)", max_steps);
            return v2_error(r, 400, err, NULL);
        }
        r->xjobs = calloc((size_t)req->n, sizeof(*r->xjobs));
        if (!r->xjobs)
            return api_error(r, 500, "out of memory", NULL, NULL);
        for (int i = 0; i < req->n; i++) {
            r->xjobs[i].target = req->explain_target;
            r->xjobs[i].steps = steps;
        }
        if (v2_inputs(r, r->xjobs[0].input, sizeof(*r->xjobs), &ret) != 0)
            return ret;
        r->decode_ns = clock_mono_ns() - t0;
        return api_explain_submit(r);
    }
    r->jobs = calloc((size_t)req->n, sizeof(*r->jobs));
    if (!r->jobs)
        return api_error(r, 500, "out of memory", NULL, NULL);
    if (v2_inputs(r, r->jobs[0].input, sizeof(*r->jobs), &ret) != 0)
        return ret;
    r->decode_ns = clock_mono_ns() - t0;
    return api_submit_jobs(r);
}

/* The handlers of the route table's /v2 rows. */
enum MHD_Result api_v2_server(api_request *r)
{
    return v2_answer(r, V2_SERVER);
}

enum MHD_Result api_v2_live(api_request *r)
{
    return v2_answer(r, V2_LIVE);
}

enum MHD_Result api_v2_ready(api_request *r)
{
    return v2_answer(r, V2_READY);
}

enum MHD_Result api_v2_model(api_request *r)
{
    return v2_answer(r, V2_MODEL);
}

enum MHD_Result api_v2_model_ready(api_request *r)
{
    return v2_answer(r, V2_MODEL_READY);
}

/* Dispatched on the headers (limits before the body), then again once the
 * body is complete and after the batcher (the explainer). */
enum MHD_Result api_v2_infer(api_request *r)
{
    return r->body_done ? v2_finish(r, V2_INFER) : v2_answer(r, V2_INFER);
}

enum MHD_Result api_v2_explain(api_request *r)
{
    r->explain = 1;
    return r->body_done ? v2_finish(r, V2_EXPLAIN) : v2_answer(r, V2_EXPLAIN);
}
