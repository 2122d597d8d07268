/* api/info.c -- what the daemon says about itself: GET /model, /healthz,
 * /readyz, /metrics. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/respond.h"
#include "model/kernels.h"
#include "model/net.h"
#include "model/qkernels.h"
#include "model/quant.h"
#include "server/metrics.h"
#include "server/strbuf.h"

static const char *const retry5[] = {"Retry-After", "5", NULL};

static void add_accuracy(cJSON *o, const char *name, double a)
{
    if (a >= 0)
        cJSON_AddNumberToObject(o, name, a);
    else
        cJSON_AddNullToObject(o, name);
}

/* What arithmetic serves m's predictions (the batcher's rule: int8 when
 * configured and the model carries int8 scales), and both accuracies. */
static void add_precision(cJSON *o, const mnistd_config *cfg, const served_model *m)
{
    const int want8 = strcmp(cfg->precision, "int8") == 0, int8 = want8 && m->has_int8;
    cJSON *p = cJSON_AddObjectToObject(o, "precision");
    cJSON_AddStringToObject(p, "configured", cfg->precision);
    cJSON_AddStringToObject(p, "in_use", int8 ? "int8" : "fp32");
    cJSON_AddStringToObject(p, "int8_kernels", qkernels()->name);
    if (m->has_int8) {
        const double s[QUANT_NSCALES] = {m->int8_scales[0], m->int8_scales[1], m->int8_scales[2]};
        cJSON_AddItemToObject(p, "int8_scales", cJSON_CreateDoubleArray(s, QUANT_NSCALES));
    } else {
        cJSON_AddNullToObject(p, "int8_scales");
    }
    cJSON *acc = cJSON_AddObjectToObject(p, "test_accuracy");
    add_accuracy(acc, "fp32", m->accuracy);
    add_accuracy(acc, "int8", m->has_int8 ? m->int8_accuracy : -1);
    const char *note =
        int8 ? "predictions in int8: weights per output channel, activations with the model's "
               "calibrated scales; explanations stay fp32"
        : want8 ? "predictions in fp32: the model's metadata has no int8 scales (int8_scales; "
                  "mnistd quantize adds them)"
        : m->has_int8 ? "predictions in fp32 (--precision int8 would serve int8: the model carries "
                        "its scales)"
                      : "predictions in fp32";
    cJSON_AddStringToObject(p, "note", note);
}

enum MHD_Result api_get_model(api_request *r)
{
    served_model *m = modelstore_acquire(r->srv->ms);
    if (!m)
        return api_error(r, 503, "no model loaded", "the daemon has no model to serve yet", retry5);
    cJSON *o = cJSON_CreateObject();
    const char *arch = ckpt_meta_get(&m->meta, "architecture");
    char when[40];
    api_rfc3339(m->loaded_at, when, sizeof(when));
    cJSON_AddStringToObject(o, "version", m->version);
    cJSON_AddStringToObject(o, "architecture", arch ? arch : NET_ARCH_NAME);
    cJSON_AddNumberToObject(o, "parameters", NET_NUM_PARAMS);
    cJSON_AddStringToObject(o, "source", m->source);
    cJSON_AddStringToObject(o, "loaded_at", when);
    if (m->accuracy >= 0)
        cJSON_AddNumberToObject(o, "accuracy", m->accuracy);
    else
        cJSON_AddNullToObject(o, "accuracy");
    cJSON *in = cJSON_AddObjectToObject(o, "input");
    cJSON_AddNumberToObject(in, "height", NET_IN_H);
    cJSON_AddNumberToObject(in, "width", NET_IN_W);
    cJSON_AddNumberToObject(in, "channels", 1);
    cJSON_AddNumberToObject(o, "classes", NET_CLASSES);
    add_precision(o, r->srv->cfg, m);
    cJSON *md = cJSON_AddObjectToObject(o, "metadata");
    for (int i = 0; i < m->meta.n; i++)
        cJSON_AddStringToObject(md, m->meta.key[i], m->meta.val[i]);
    model_release(m);
    cJSON *k = cJSON_AddObjectToObject(o, "kernels");
    cJSON_AddStringToObject(k, "in_use", kernels()->name);
    cJSON *sup = cJSON_AddArrayToObject(k, "supported");
    for (int l = 0; l < KERNELS_NLEVELS; l++)
        if (kernels_supported((kernels_level)l))
            cJSON_AddItemToArray(sup, cJSON_CreateString(kernels_level_name((kernels_level)l)));
    return api_respond_json(r, 200, o, NULL);
}

enum MHD_Result api_get_healthz(api_request *r)
{
    static const char body[] = "{\"status\":\"ok\"}\n";
    return api_respond(r, 200, "application/json", body, sizeof(body) - 1, NULL);
}

enum MHD_Result api_get_readyz(api_request *r)
{
    if (atomic_load(&r->srv->quiescing))
        return api_error(r, 503, "not ready", "the daemon is stopping", retry5);
    served_model *m = modelstore_acquire(r->srv->ms);
    if (!m)
        return api_error(r, 503, "not ready", "no model loaded", retry5);
    char body[128];
    int n = snprintf(body, sizeof(body), "{\"status\":\"ready\",\"model_version\":\"%s\"}\n", m->version);
    model_release(m);
    return api_respond(r, 200, "application/json", body, (size_t)n, NULL);
}

enum MHD_Result api_get_metrics(api_request *r)
{
    const mnistd_config *cfg = r->srv->cfg;
    served_model *m = modelstore_acquire(r->srv->ms);
    metrics_live live = {
        .queue_depth = batcher_queue_depth(r->srv->b),
        .queue_capacity = cfg->max_queue,
        .explain_queue_depth = r->srv->ex ? explainer_queue_depth(r->srv->ex) : 0,
        .explain_queue_capacity = cfg->explain_queue,
        .max_batch = cfg->max_batch,
        .workers = cfg->threads,
        .ready = m != NULL && !atomic_load(&r->srv->quiescing),
        .model_version = m ? m->version : NULL,
        .model_arch = m ? (ckpt_meta_get(&m->meta, "architecture") ? ckpt_meta_get(&m->meta, "architecture")
                                                                    : NET_ARCH_NAME)
                        : NULL,
        .model_source = m ? m->source : NULL,
        .model_params = NET_NUM_PARAMS,
        .model_accuracy = m ? m->accuracy : -1,
        .model_loaded_time = m ? m->loaded_at : 0,
        .model_versions = lifecycle_repo(r->srv->lc) ? lifecycle_version_count(r->srv->lc) : -1,
    };
    if (r->srv->jobs) {
        jobs_get_stats(r->srv->jobs, &live.training);
        live.have_training = 1;
    }
    strbuf sb = {0};
    metrics_render(&sb, &live);
    model_release(m);
    size_t len = 0;
    char *text = sb_take(&sb, &len);
    if (!text)
        return api_error(r, 500, "out of memory", NULL, NULL);
    return api_respond_owned(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL);
}
