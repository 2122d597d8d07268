/* api/predict.c -- POST /predict.
 *
 * Body forms (decided by Content-Type):
 *   image/png, application/octet-stream     the body is one PNG
 *   application/x-www-form-urlencoded, none the body is one PNG too: that is
 *                                           what `curl --data-binary @d.png`
 *                                           sends without -H
 *   multipart/form-data                     every part is one PNG, in order
 *                                           (a part's Content-Type, if given,
 *                                           must be image/png or
 *                                           application/octet-stream)
 *   anything else                           415
 * Response: one image (raw body, or a multipart body with one part) answers a
 * prediction object; two or more parts answer {"predictions": [...]} with
 * one prediction object per part, in the order of the parts. If any image is
 * refused the whole request is refused, the error naming the part.
 *
 * Lengths: a Content-Length over --max-body-bytes is refused with 413 before
 * the body is read; a chunked body is accumulated up to the limit and
 * refused with 413 when it goes over; a POST with neither a Content-Length
 * nor chunked encoding has no body by HTTP/1.1 rules and is answered 411. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/infer.h"
#include "api/multipart.h"
#include "model/net.h"
#include "model/png.h"
#include "model/preprocess.h"
#include "server/clock.h"
#include "server/metrics.h"
#include "server/strbuf.h"

const char *const api_predict_reasons[MREJ_COUNT] = {
    "queue_full", "deadline", "not_ready", "shutting_down", "body_too_large",
    "too_many_images", "length_required", "unsupported_media_type", "bad_request",
    "unprocessable",
};
const int api_predict_nreasons = MREJ_COUNT;

enum MHD_Result api_reject(api_request *r, reject_reason why, int status, const char *error,
                           const char *detail, const char *const *headers)
{
    metrics_rejected(r->explain, why);
    return api_error(r, status, error, detail, headers);
}

static const char *header(api_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* The first call (headers only). Returns MHD_YES after either queueing an
 * early error or preparing to read the body. */
static enum MHD_Result predict_begin(api_request *r)
{
    if (api_infer_refused(r))
        return MHD_YES;
    return api_image_body_begin(r);
}

enum MHD_Result api_image_body_begin(api_request *r)
{
    const char *ct = header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct && mp_media_type_is(ct, "multipart/form-data"))
        r->multipart = 1;
    else if (ct && !mp_media_type_is(ct, "image/png") && !mp_media_type_is(ct, "application/octet-stream") &&
             !mp_media_type_is(ct, "application/x-www-form-urlencoded")) {
        char detail[256];
        snprintf(detail, sizeof(detail), "Content-Type '%.100s' is not accepted: send image/png, "
                 "application/octet-stream or multipart/form-data", ct);
        return api_reject(r, MREJ_MEDIA_TYPE, 415, "unsupported media type", detail, NULL);
    }
    return api_body_begin(r);
}

int api_infer_refused(api_request *r)
{
    static const char *const retry[] = {"Retry-After", "5", NULL};
    if (atomic_load(&r->srv->quiescing)) {
        api_reject(r, MREJ_SHUTTING_DOWN, 503, "shutting down", "the daemon is stopping", retry);
        return 1;
    }
    if (!modelstore_ready(r->srv->ms)) {
        api_reject(r, MREJ_NOT_READY, 503, "no model loaded",
                   "the daemon has no model to serve yet; see GET /readyz", retry);
        return 1;
    }
    return 0;
}

enum MHD_Result api_body_begin(api_request *r)
{
    const mnistd_config *cfg = r->srv->cfg;
    const char *cl = header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (cl) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || end == cl || *end != '\0' || cl[0] == '-') {
            return api_reject(r, MREJ_BAD_REQUEST, 400, "bad request", "invalid Content-Length", NULL);
        }
        if (n > cfg->max_body_bytes) {
            char detail[160];
            snprintf(detail, sizeof(detail), "the body is %llu bytes; the limit (--max-body-bytes) is %llu",
                     n, (unsigned long long)cfg->max_body_bytes);
            return api_reject(r, MREJ_BODY_TOO_LARGE, 413, "body too large", detail, NULL);
        }
        if (n > 0) {
            r->body = malloc((size_t)n);
            if (!r->body)
                return api_error(r, 500, "out of memory", NULL, NULL);
            r->cap = (size_t)n;
        }
    } else if (!te || !strstr(te, "chunked")) {
        return api_reject(r, MREJ_LENGTH_REQUIRED, 411, "length required",
                      "send the image with a Content-Length or chunked transfer encoding", NULL);
    }
    return MHD_YES;
}

int api_decode_png(api_request *r, const uint8_t *png, size_t len, float *input, img_field *field,
                   int part, enum MHD_Result *ret)
{
    const mnistd_config *cfg = r->srv->cfg;
    img_limits lim;
    img_limits_default(&lim);
    lim.max_width = (uint32_t)cfg->max_image_side;
    lim.max_height = (uint32_t)cfg->max_image_side;
    lim.max_pixels = cfg->max_image_pixels;
    char err[256], detail[320];
    uint8_t *gray = NULL;
    uint32_t w = 0, h = 0;
    int st = img_decode_png(png, len, &lim, &gray, &w, &h, err, sizeof(err));
    if (st == IMG_OK) {
        st = img_to_mnist_field(gray, w, h, input, field, err, sizeof(err));
        free(gray);
    }
    if (st == IMG_OK)
        return 0;
    if (part > 0)
        snprintf(detail, sizeof(detail), "part %d: %s", part, err);
    else
        snprintf(detail, sizeof(detail), "%s", err);
    switch (st) {
    case IMG_ERR_NOT_PNG:
        *ret = api_reject(r, MREJ_BAD_REQUEST, 400, "not a PNG", detail, NULL);
        break;
    case IMG_ERR_CORRUPT:
        *ret = api_reject(r, MREJ_BAD_REQUEST, 400, "corrupt PNG", detail, NULL);
        break;
    case IMG_ERR_TOO_LARGE:
        *ret = api_reject(r, MREJ_UNPROCESSABLE, 422, "image too large", detail, NULL);
        break;
    case IMG_ERR_EMPTY:
        *ret = api_reject(r, MREJ_UNPROCESSABLE, 422, "no ink in the image", detail, NULL);
        break;
    default:
        *ret = api_error(r, 500, "out of memory", detail, NULL);
        break;
    }
    return -1;
}

/* One prediction object. */
static void render_prediction(strbuf *sb, const batch_job *j, uint64_t decode_us, uint64_t total_us)
{
    int best = net_argmax(j->probs);
    /* sb_g6 prints what "%.6g" prints, without printf's cost per number */
    sb_printf(sb, "{\"digit\":%d,\"confidence\":", best);
    sb_g6(sb, (double)j->probs[best]);
    sb_append(sb, ",\"probabilities\":[", 18);
    for (int k = 0; k < NET_CLASSES; k++) {
        if (k)
            sb_append(sb, ",", 1);
        sb_g6(sb, (double)j->probs[k]);
    }
    sb_printf(sb, "],\"model_version\":\"%s\",\"batch_size\":%d,\"timing\":{\"decode_us\":%llu,"
              "\"queue_us\":%u,\"compute_us\":%u,\"total_us\":%llu}}",
              j->model_version, j->batch_size, (unsigned long long)decode_us, j->queue_us, j->compute_us,
              (unsigned long long)total_us);
}

int api_queue_failed(api_request *r, const workq_job *first, size_t stride, const api_queue_words *w,
                     enum MHD_Result *ret)
{
    static const char *const retry1[] = {"Retry-After", "1", NULL};
    if (r->submit_error == WORKQ_FULL) {
        *ret = api_reject(r, MREJ_QUEUE_FULL, 503, "overloaded", w->full, retry1);
        return 1;
    }
    if (r->submit_error == WORKQ_STOPPED) {
        *ret = api_reject(r, MREJ_SHUTTING_DOWN, 503, "shutting down", "the daemon is stopping", retry1);
        return 1;
    }
    for (int i = 0; i < r->nimages; i++) {
        const workq_job *j = (const workq_job *)(const void *)((const char *)first + (size_t)i * stride);
        char detail[128];
        switch (j->status) {
        case WQ_OK:
            break;
        case WQ_DEADLINE:
            snprintf(detail, sizeof(detail), "%s within %d ms (%s)", w->late, w->timeout_ms,
                     w->timeout_flag);
            *ret = api_reject(r, MREJ_DEADLINE, 504, "deadline exceeded", detail, retry1);
            return 1;
        case WQ_NO_MODEL:
            *ret = api_reject(r, MREJ_NOT_READY, 503, "no model loaded", NULL, retry1);
            return 1;
        default:
            *ret = api_error(r, 500, "internal error", w->failed, NULL);
            return 1;
        }
    }
    return 0;
}

int api_jobs_failed(api_request *r, enum MHD_Result *ret)
{
    const api_queue_words w = {"the inference queue is full (--max-queue); retry later", "not served",
                               r->srv->cfg->request_timeout_ms, "--request-timeout-ms",
                               "the forward pass failed"};
    return api_queue_failed(r, &r->jobs->q, sizeof(*r->jobs), &w, ret);
}

/* Back from the batcher: answer with the predictions or the first failure. */
static enum MHD_Result respond_results(api_request *r)
{
    enum MHD_Result ret;
    if (api_jobs_failed(r, &ret))
        return ret;
    uint64_t decode_us = r->decode_ns / 1000;
    uint64_t total_us = (clock_mono_ns() - r->start_ns) / 1000;
    strbuf sb = {0};
    if (r->nimages == 1) {
        render_prediction(&sb, &r->jobs[0], decode_us, total_us);
    } else {
        sb_printf(&sb, "{\"predictions\":[");
        for (int i = 0; i < r->nimages; i++) {
            if (i)
                sb_append(&sb, ",", 1);
            render_prediction(&sb, &r->jobs[i], decode_us, total_us);
        }
        sb_printf(&sb, "]}");
    }
    sb_append(&sb, "\n", 1);
    size_t len = 0;
    char *body = sb_take(&sb, &len);
    if (!body)
        return api_error(r, 500, "out of memory", NULL, NULL);
    return api_respond_owned(r, 200, "application/json", body, len, NULL);
}

int api_infer_finish_once(api_request *r, enum MHD_Result (*answer)(api_request *), const char *too_large,
                          enum MHD_Result *ret)
{
    if (r->suspended) {
        r->suspended = 0;
        *ret = answer(r);
        return 1;
    }
    *ret = MHD_YES;
    if (r->started)
        return 1;
    r->started = 1;
    if (!r->too_large)
        return 0;
    char limit[128];
    snprintf(limit, sizeof(limit), "the body is over the limit (--max-body-bytes) of %llu bytes",
             (unsigned long long)r->srv->cfg->max_body_bytes);
    *ret = api_reject(r, MREJ_BODY_TOO_LARGE, 413, too_large ? too_large : limit, too_large ? limit : NULL, NULL);
    return 1;
}

void api_body_images_free(mp_part *parts, mp_part *one)
{
    if (parts != one)
        free(parts);
}

int api_body_images(api_request *r, mp_part *one, mp_part **partsp, int max_images,
                    const char *limit_flag, enum MHD_Result *ret)
{
    char err[256];
    *partsp = one;
    if (!r->multipart) {
        *one = (mp_part){0};
        one->data = r->body;
        one->len = r->len;
        return 1;
    }
    /* mp_parse fills each part it returns: no need to zero the array */
    mp_part *parts = malloc((size_t)max_images * sizeof(*parts));
    if (!parts) {
        *ret = api_error(r, 500, "out of memory", NULL, NULL);
        return -1;
    }
    *partsp = parts;
    char boundary[MP_MAX_BOUNDARY + 1];
    const char *ct = header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (mp_boundary(ct, boundary, err, sizeof(err)) != MP_OK) {
        *ret = api_reject(r, MREJ_BAD_REQUEST, 400, "bad multipart body", err, NULL);
        return -1;
    }
    int n = 0;
    int st = mp_parse(r->body, r->len, boundary, parts, max_images, &n, err, sizeof(err));
    if (st == MP_ERR_TOO_MANY) {
        char detail[128];
        snprintf(detail, sizeof(detail), "more than %d images in one request (%s)", max_images,
                 limit_flag);
        *ret = api_reject(r, MREJ_TOO_MANY_IMAGES, 413, "too many images", detail, NULL);
        return -1;
    }
    if (st != MP_OK) {
        *ret = api_reject(r, MREJ_BAD_REQUEST, 400, "bad multipart body", err, NULL);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const char *pct = parts[i].content_type;
        if (pct[0] && !mp_media_type_is(pct, "image/png") &&
            !mp_media_type_is(pct, "application/octet-stream")) {
            char detail[256];
            snprintf(detail, sizeof(detail), "part %d: Content-Type '%.100s' is not image/png", i + 1, pct);
            *ret = api_reject(r, MREJ_MEDIA_TYPE, 415, "unsupported media type", detail, NULL);
            return -1;
        }
    }
    return n;
}

/* The body is complete (or the request came back from the batcher). */
static enum MHD_Result predict_finish(api_request *r)
{
    const mnistd_config *cfg = r->srv->cfg;
    enum MHD_Result ret;
    if (api_infer_finish_once(r, respond_results, "body too large", &ret))
        return ret;
    if (r->len == 0)
        return api_reject(r, MREJ_BAD_REQUEST, 400, "empty body", "send a PNG image as the body", NULL);

    uint64_t t0 = clock_mono_ns();
    ret = MHD_YES;
    mp_part one, *parts;
    int n = api_body_images(r, &one, &parts, cfg->max_images, "--max-images", &ret);
    if (n > 0 && !(r->jobs = calloc((size_t)n, sizeof(*r->jobs)))) {
        ret = api_error(r, 500, "out of memory", NULL, NULL);
        n = -1;
    }
    for (int i = 0; i < n; i++) {
        if (api_decode_png(r, parts[i].data, parts[i].len, r->jobs[i].input, NULL,
                           r->multipart ? i + 1 : 0, &ret) < 0) {
            n = -1;
            break;
        }
    }
    api_body_images_free(parts, &one);
    if (n < 0)
        return ret;
    r->nimages = n;
    r->decode_ns = clock_mono_ns() - t0;
    return api_submit_jobs(r);
}

/* Worker callback: the last answered job of a request resumes it. */
static void job_done(workq_job *job, void *user)
{
    (void)job;
    api_request *r = user;
    if (atomic_fetch_sub_explicit(&r->pending, 1, memory_order_acq_rel) == 1)
        MHD_resume_connection(r->conn);
}

enum MHD_Result api_queue_jobs(api_request *r, workq *q, workq_job *first, size_t stride,
                               int timeout_ms)
{
    free(r->body);  /* decoded: the bytes are no longer needed */
    r->body = NULL;
    r->len = r->cap = 0;
    for (int i = 0; i < r->nimages; i++) {
        workq_job *j = (workq_job *)(void *)((char *)first + (size_t)i * stride);
        j->done = job_done;
        j->user = r;
    }
    atomic_store(&r->pending, r->nimages);
    uint64_t deadline = r->start_ns + (uint64_t)timeout_ms * 1000000ull;
    /* Suspend before submitting: a worker may finish and resume the
     * connection before this handler returns. */
    MHD_suspend_connection(r->conn);
    r->suspended = 1;
    int st = workq_submit(q, first, stride, r->nimages, deadline);
    if (st != WORKQ_OK) {
        r->submit_error = st;
        MHD_resume_connection(r->conn);
    }
    return MHD_YES;
}

enum MHD_Result api_submit_jobs(api_request *r)
{
    return api_queue_jobs(r, batcher_queue(r->srv->b), &r->jobs->q, sizeof(*r->jobs),
                          r->srv->cfg->request_timeout_ms);
}

enum MHD_Result api_predict(api_request *r)
{
    return r->body_done ? predict_finish(r) : predict_begin(r);
}
