/* api/explain.c -- POST /explain: why the model answered what it did.
 *
 * The body is what POST /predict takes (a raw PNG, or multipart parts of
 * one PNG each, at most --explain-max-images). The query parameters and
 * Accept (api/explainopt.h) choose the class explained (?target=, default
 * the predicted one), the Integrated Gradients steps (?steps=, default 64,
 * at most --explain-max-steps) and the form of the answer:
 *   JSON (default)  per image: the prediction, the 28x28 attributions of the
 *                   target class's logit against the black baseline, their
 *                   sum next to logit(input) - logit(baseline) (delta: the
 *                   difference, completeness's error), and where the 28x28
 *                   field lies over the image sent ("field"); two or more
 *                   images answer {"explanations": [...]} in order;
 *   PNG (?format=png, or Accept: image/png)  the heat map of one image
 *                   (model/explain.h), 280x280; a PNG answers one image
 *                   only (400 for more).
 * The images go to the explanation queue (server/explainer.h), never the
 * inference batcher: 503 + Retry-After when it is full, 504 for an image
 * not started within --explain-timeout-ms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/explainopt.h"
#include "api/infer.h"
#include "model/png.h"
#include "server/clock.h"
#include "server/explainer.h"
#include "server/strbuf.h"

/* The heat map's pixels per input pixel: 280x280, the web page's canvas. */
#define HEATMAP_SCALE 10

static const char *arg(api_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* The first call (headers only): the refusals that need no body. */
static enum MHD_Result explain_begin(api_request *r)
{
    if (api_infer_refused(r))
        return MHD_YES;
    char err[160];
    const char *accept = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Accept");
    if (explain_opts_parse(arg(r, "steps"), arg(r, "target"), arg(r, "format"), accept,
                           r->srv->cfg->explain_max_steps, &r->xopts, err, sizeof(err)) != 0)
        return api_reject(r, MREJ_BAD_REQUEST, 400, "invalid parameter", err, NULL);
    return api_image_body_begin(r);
}

/* One explanation object. */
static void render(strbuf *sb, const explain_job *j, const img_field *f, uint64_t decode_us,
                   uint64_t total_us)
{
    const explain_result *x = &j->result;
    sb_printf(sb, "{\"digit\":%d,\"confidence\":", x->predicted);
    sb_g6(sb, (double)x->probs[x->predicted]);
    sb_append(sb, ",\"probabilities\":[", 18);
    for (int k = 0; k < NET_CLASSES; k++) {
        if (k)
            sb_append(sb, ",", 1);
        sb_g6(sb, (double)x->probs[k]);
    }
    sb_printf(sb, "],\"target\":%d,\"method\":\"integrated_gradients\",\"baseline\":\"black\","
              "\"steps\":%d,\"attributions\":[", x->target, x->steps);
    for (int i = 0; i < NET_IN_H; i++) {
        sb_append(sb, i ? ",[" : "[", i ? 2 : 1);
        for (int k = 0; k < NET_IN_W; k++) {
            if (k)
                sb_append(sb, ",", 1);
            sb_g6(sb, (double)x->attr[i * NET_IN_W + k]);
        }
        sb_append(sb, "]", 1);
    }
    sb_append(sb, "],\"sum\":", 8);
    sb_g6(sb, x->sum);
    sb_append(sb, ",\"logit\":", 9);
    sb_g6(sb, (double)x->logits[x->target]);
    sb_append(sb, ",\"baseline_logit\":", 18);
    sb_g6(sb, (double)x->baseline_logits[x->target]);
    sb_append(sb, ",\"delta\":", 9);
    sb_g6(sb, x->delta);
    sb_append(sb, ",\"field\":{\"x\":", 14);
    sb_g6(sb, f->x);
    sb_append(sb, ",\"y\":", 5);
    sb_g6(sb, f->y);
    sb_append(sb, ",\"width\":", 9);
    sb_g6(sb, f->width);
    sb_append(sb, ",\"height\":", 10);
    sb_g6(sb, f->height);
    sb_printf(sb, "},\"model_version\":\"%s\",\"timing\":{\"decode_us\":%llu,\"queue_us\":%u,"
              "\"compute_us\":%u,\"total_us\":%llu}}", j->model_version,
              (unsigned long long)decode_us, j->queue_us, j->compute_us,
              (unsigned long long)total_us);
}

static enum MHD_Result respond_png(api_request *r)
{
    const explain_job *j = &r->xjobs[0];
    uint8_t *rgb = NULL, *png = NULL;
    uint32_t w = 0, h = 0;
    size_t len = 0;
    int ok = explain_heatmap(j->input, j->result.attr, HEATMAP_SCALE, &rgb, &w, &h) == 0 &&
             img_encode_png(rgb, w, h, 1, &png, &len) == 0;
    free(rgb);
    if (!ok) {
        free(png);
        return api_error(r, 500, "cannot draw the heat map", NULL, NULL);
    }
    return api_respond_owned(r, 200, "image/png", (char *)png, len, NULL);
}

int api_explain_failed(api_request *r, enum MHD_Result *ret)
{
    const api_queue_words w = {"the explanation queue is full (--explain-queue); retry later",
                               "not started", r->srv->cfg->explain_timeout_ms, "--explain-timeout-ms",
                               "the explanation failed"};
    return api_queue_failed(r, &r->xjobs->q, sizeof(*r->xjobs), &w, ret);
}

/* Back from the explainer: the answer, or the first failure. */
static enum MHD_Result respond(api_request *r)
{
    enum MHD_Result ret;
    if (api_explain_failed(r, &ret))
        return ret;
    if (r->xopts.format == EXPLAIN_PNG)
        return respond_png(r);
    uint64_t decode_us = r->decode_ns / 1000;
    uint64_t total_us = (clock_mono_ns() - r->start_ns) / 1000;
    strbuf sb = {0};
    if (r->nimages > 1)
        sb_printf(&sb, "{\"explanations\":[");
    for (int i = 0; i < r->nimages; i++) {
        if (i)
            sb_append(&sb, ",", 1);
        render(&sb, &r->xjobs[i], &r->xfields[i], decode_us, total_us);
    }
    if (r->nimages > 1)
        sb_printf(&sb, "]}");
    sb_append(&sb, "\n", 1);
    size_t len = 0;
    char *body = sb_take(&sb, &len);
    if (!body)
        return api_error(r, 500, "out of memory", NULL, NULL);
    return api_respond_owned(r, 200, "application/json", body, len, NULL);
}

/* Decodes the body's images into explanation jobs; 0, or -1 with the
 * error answered in *ret. */
static int decode_images(api_request *r, enum MHD_Result *ret)
{
    const mnistd_config *cfg = r->srv->cfg;
    mp_part one, *parts;
    int n = api_body_images(r, &one, &parts, cfg->explain_max_images, "--explain-max-images", ret);
    if (n > 1 && r->xopts.format == EXPLAIN_PNG) {
        *ret = api_reject(r, MREJ_BAD_REQUEST, 400, "one image per heat map",
                         "a PNG heat map explains one image; ask for JSON (format=json) to explain "
                         "several", NULL);
        n = -1;
    }
    if (n > 0) {
        r->xjobs = calloc((size_t)n, sizeof(*r->xjobs));
        r->xfields = calloc((size_t)n, sizeof(*r->xfields));
        if (!r->xjobs || !r->xfields) {
            *ret = api_error(r, 500, "out of memory", NULL, NULL);
            n = -1;
        }
    }
    for (int i = 0; i < n; i++) {
        if (api_decode_png(r, parts[i].data, parts[i].len, r->xjobs[i].input, &r->xfields[i],
                           r->multipart ? i + 1 : 0, ret) < 0) {
            n = -1;
            break;
        }
        r->xjobs[i].target = r->xopts.target;
        r->xjobs[i].steps = r->xopts.steps;
    }
    api_body_images_free(parts, &one);
    if (n < 0)
        return -1;
    r->nimages = n;
    return 0;
}

/* The body is complete (or the request came back from the explainer). */
static enum MHD_Result explain_finish(api_request *r)
{
    enum MHD_Result ret;
    if (api_infer_finish_once(r, respond, "body too large", &ret))
        return ret;
    if (r->len == 0)
        return api_reject(r, MREJ_BAD_REQUEST, 400, "empty body", "send a PNG image as the body", NULL);
    uint64_t t0 = clock_mono_ns();
    if (decode_images(r, &ret) != 0)
        return ret;
    r->decode_ns = clock_mono_ns() - t0;
    return api_explain_submit(r);
}

enum MHD_Result api_explain_submit(api_request *r)
{
    return api_queue_jobs(r, explainer_queue(r->srv->ex), &r->xjobs->q, sizeof(*r->xjobs),
                          r->srv->cfg->explain_timeout_ms);
}

enum MHD_Result api_explain(api_request *r)
{
    r->explain = 1;
    return r->body_done ? explain_finish(r) : explain_begin(r);
}
