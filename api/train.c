/* api/train.c -- POST /train, GET /train, GET /train/{id}, DELETE /train/{id}.
 *
 * The handlers only validate, submit and report: training runs on the jobs
 * manager's own thread (server/jobs.h), so none of them blocks. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/jsonbody.h"

static void add_time(cJSON *o, const char *key, double t)
{
    if (t <= 0) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    char buf[40];
    api_rfc3339(t, buf, sizeof(buf));
    cJSON_AddStringToObject(o, key, buf);
}

static void add_num_or_null(cJSON *o, const char *key, double v)
{
    if (isnan(v) || isinf(v))
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddNumberToObject(o, key, v);
}

/* A float setting as the user wrote it: 0.001, not 0.0010000000474974513. */
static double short_float(float f)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%.7g", (double)f);
    return strtod(buf, NULL);
}

/* The job object of the API (see openapi.yaml, TrainingJob). */
static cJSON *job_json(const job_info *in)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "id", in->id);
    cJSON_AddStringToObject(o, "status", job_status_name(in->status));
    cJSON_AddStringToObject(o, "reason", in->reason);
    cJSON *c = cJSON_AddObjectToObject(o, "config");
    if (c) {
        cJSON_AddNumberToObject(c, "epochs", in->cfg.epochs);
        cJSON_AddNumberToObject(c, "batch_size", in->cfg.batch_size);
        cJSON_AddNumberToObject(c, "learning_rate", short_float(in->cfg.learning_rate));
        cJSON_AddNumberToObject(c, "validation_split", short_float(in->cfg.validation_split));
        cJSON_AddNumberToObject(c, "seed", (double)in->cfg.seed);
        cJSON_AddNumberToObject(c, "limit", in->cfg.limit);
        const augment_config *a = &in->cfg.augment;
        cJSON *ao = augment_enabled(a) ? cJSON_AddObjectToObject(c, "augment") : NULL;
        if (ao) {
            cJSON_AddNumberToObject(ao, "shift", short_float(a->shift));
            cJSON_AddNumberToObject(ao, "rotate", short_float(a->rotate));
            cJSON_AddNumberToObject(ao, "scale", short_float(a->scale));
            cJSON_AddNumberToObject(ao, "thicken", short_float(a->thicken));
            cJSON_AddNumberToObject(ao, "thin", short_float(a->thin));
        }
    }
    add_time(o, "created_at", in->created_at);
    add_time(o, "started_at", in->started_at);
    add_time(o, "finished_at", in->finished_at);
    cJSON_AddNumberToObject(o, "train_samples", in->train_samples);
    cJSON_AddNumberToObject(o, "val_samples", in->val_samples);
    cJSON *p = cJSON_AddObjectToObject(o, "progress");
    if (p) {
        cJSON_AddNumberToObject(p, "epoch", in->epoch);
        cJSON_AddNumberToObject(p, "epochs", in->epochs);
        cJSON_AddNumberToObject(p, "batch", in->batch);
        cJSON_AddNumberToObject(p, "batches", in->batches);
        double frac = 0;
        if (in->status == JOB_SUCCEEDED)
            frac = 1;
        else if (in->epochs > 0 && in->batches > 0 && in->epoch > 0)
            frac = ((double)(in->epoch - 1) * in->batches + in->batch) / ((double)in->epochs * in->batches);
        cJSON_AddNumberToObject(p, "fraction", frac);
    }
    cJSON_AddNumberToObject(o, "loss", in->loss);
    cJSON_AddNumberToObject(o, "accuracy", in->accuracy);
    cJSON_AddNumberToObject(o, "samples_per_sec", in->samples_per_sec);
    cJSON_AddNumberToObject(o, "elapsed_seconds", in->elapsed);
    if (in->eta >= 0 && in->status <= JOB_RUNNING)
        cJSON_AddNumberToObject(o, "eta_seconds", in->eta);
    else
        cJSON_AddNullToObject(o, "eta_seconds");
    cJSON *h = cJSON_AddArrayToObject(o, "history");
    for (int i = 0; h && i < in->n_history; i++) {
        const train_epoch *e = &in->history[i];
        cJSON *eo = cJSON_CreateObject();
        if (!eo)
            break;
        cJSON_AddNumberToObject(eo, "epoch", e->epoch);
        cJSON_AddNumberToObject(eo, "loss", e->loss);
        cJSON_AddNumberToObject(eo, "accuracy", e->accuracy);
        add_num_or_null(eo, "val_loss", e->val_loss);
        add_num_or_null(eo, "val_accuracy", e->val_accuracy);
        cJSON_AddNumberToObject(eo, "seconds", e->seconds);
        cJSON_AddItemToArray(h, eo);
    }
    if (in->has_test) {
        cJSON *t = cJSON_AddObjectToObject(o, "test");
        if (t) {
            cJSON_AddNumberToObject(t, "loss", in->test_loss);
            cJSON_AddNumberToObject(t, "accuracy", in->test_accuracy);
        }
    } else {
        cJSON_AddNullToObject(o, "test");
    }
    if (in->model_version[0])
        cJSON_AddStringToObject(o, "model_version", in->model_version);
    else
        cJSON_AddNullToObject(o, "model_version");
    if (in->error[0] && in->status != JOB_SUCCEEDED)
        cJSON_AddStringToObject(o, "error", in->error);
    else
        cJSON_AddNullToObject(o, "error");
    cJSON_AddStringToObject(o, "promote", promote_policy_name(in->promote));
    if (in->promoted >= 0)
        cJSON_AddBoolToObject(o, "promoted", in->promoted);
    else
        cJSON_AddNullToObject(o, "promoted");
    if (in->promotion[0])
        cJSON_AddStringToObject(o, "promotion", in->promotion);
    else
        cJSON_AddNullToObject(o, "promotion");
    /* Where the job's time went: each phase once it has ended, and the
     * whole from the POST to the end. */
    cJSON *tm = cJSON_AddObjectToObject(o, "timings");
    for (int ph = 0; tm && ph < JOB_NPHASES; ph++) {
        char key[32];
        snprintf(key, sizeof key, "%s_seconds", job_phase_name((job_phase)ph));
        add_num_or_null(tm, key, in->phase_seconds[ph] >= 0 ? in->phase_seconds[ph] : NAN);
    }
    if (tm)
        add_num_or_null(tm, "total_seconds",
                        in->finished_at > 0 ? in->finished_at - in->created_at : NAN);
    return o;
}

/* Refuses a key of obj that appears twice or is not in known (NULL-ended;
 * prefix names obj in the field of the error, "" at the top level). 0 when
 * every key is fine, else -1 with the response queued in *ret. */
static int check_keys(api_request *r, const cJSON *obj, const char *const *known, const char *prefix,
                      enum MHD_Result *ret)
{
    for (const cJSON *it = obj->child; it; it = it->next) {
        char field[128], d[240];
        snprintf(field, sizeof(field), "%s%.60s", prefix, it->string ? it->string : "");
        for (const cJSON *prev = obj->child; prev != it; prev = prev->next)
            if (it->string && prev->string && strcmp(it->string, prev->string) == 0) {
                snprintf(d, sizeof(d), "field '%s' appears more than once", field);
                *ret = api_field_error(r, field, d);
                return -1;
            }
        int ok = 0;
        for (int k = 0; known[k]; k++)
            ok |= it->string && strcmp(it->string, known[k]) == 0;
        if (!ok) {
            int n = snprintf(d, sizeof(d), "unknown field '%s'; known:", field);
            for (int k = 0; known[k] && n > 0 && (size_t)n < sizeof(d); k++)
                n += snprintf(d + n, sizeof(d) - (size_t)n, "%s %s", k ? "," : "", known[k]);
            *ret = api_field_error(r, field, d);
            return -1;
        }
    }
    return 0;
}

/* Reads setting f from body if present (an augmentation setting from the
 * object "augment", which the caller passes as body). The JSON type (a
 * number) is checked here, the range by train_field_check (for the float
 * settings also as the float the trainer will use: 1e-50 is not > 0 there).
 * 0 ok (*out set), -1 refused (the response is queued in *ret). */
static int read_field(api_request *r, const cJSON *body, train_field f, double *out,
                      enum MHD_Result *ret)
{
    const char *name = train_field_name(f);
    const char *dot = strchr(name, '.');
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, dot ? dot + 1 : name);
    if (!v)
        return 0;
    char detail[160];
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (train_field_check(f, d, detail, sizeof(detail)) != 0) {
        *ret = api_field_error(r, name, detail);
        return -1;
    }
    *out = d;
    return 0;
}

enum MHD_Result api_post_train(api_request *r)
{
    enum MHD_Result refused;
    if (api_json_body_refused(r, "a training request", "POST /train", &refused))
        return refused;
    train_config cfg;
    train_config_default(&cfg);
    promote_policy promote = PROMOTE_IF_BETTER;
    if (r->len > 0) {
        cJSON *body = cJSON_ParseWithLength((const char *)r->body, r->len);
        if (!body)
            return api_error(r, 400, "body is not valid JSON", "send a JSON object, e.g. {\"epochs\":1}", NULL);
        enum MHD_Result ret = MHD_YES;
        if (!cJSON_IsObject(body)) {
            cJSON_Delete(body);
            return api_error(r, 400, "body is not a JSON object", "send a JSON object, e.g. {\"epochs\":1}",
                             NULL);
        }
        static const char *const known[] = {"epochs", "batch_size", "learning_rate", "validation_split",
                                            "seed", "limit", "promote", "augment", NULL};
        static const char *const known_augment[] = {"shift", "rotate", "scale", "thicken", "thin", NULL};
        if (check_keys(r, body, known, "", &ret) < 0)
            goto bad;
        double d = cfg.epochs;
        if (read_field(r, body, TRAIN_FIELD_EPOCHS, &d, &ret) < 0)
            goto bad;
        cfg.epochs = (int)d;
        d = cfg.batch_size;
        if (read_field(r, body, TRAIN_FIELD_BATCH_SIZE, &d, &ret) < 0)
            goto bad;
        cfg.batch_size = (int)d;
        d = cfg.learning_rate;
        if (read_field(r, body, TRAIN_FIELD_LEARNING_RATE, &d, &ret) < 0)
            goto bad;
        cfg.learning_rate = (float)d;
        d = cfg.validation_split;
        if (read_field(r, body, TRAIN_FIELD_VALIDATION_SPLIT, &d, &ret) < 0)
            goto bad;
        cfg.validation_split = (float)d;
        d = (double)cfg.seed;
        if (read_field(r, body, TRAIN_FIELD_SEED, &d, &ret) < 0)
            goto bad;
        cfg.seed = (uint64_t)d;
        d = cfg.limit;
        if (read_field(r, body, TRAIN_FIELD_LIMIT, &d, &ret) < 0)
            goto bad;
        cfg.limit = (int)d;
        const cJSON *av = cJSON_GetObjectItemCaseSensitive(body, "augment");
        if (av && !cJSON_IsObject(av)) {
            ret = api_field_error(r, "augment",
                              "augment must be an object of shift, rotate, scale, thicken, thin (each optional)");
            goto bad;
        }
        if (av && check_keys(r, av, known_augment, "augment.", &ret) < 0)
            goto bad;
        float *const aug[] = {&cfg.augment.shift, &cfg.augment.rotate, &cfg.augment.scale,
                              &cfg.augment.thicken, &cfg.augment.thin};
        for (int k = 0; av && k < 5; k++) {
            d = 0;
            if (read_field(r, av, (train_field)(TRAIN_FIELD_AUG_SHIFT + k), &d, &ret) < 0)
                goto bad;
            *aug[k] = (float)d;
        }
        const cJSON *pv = cJSON_GetObjectItemCaseSensitive(body, "promote");
        if (pv && (!cJSON_IsString(pv) || promote_policy_parse(pv->valuestring, &promote) != 0)) {
            ret = api_field_error(r, "promote", "promote must be one of \"if_better\", \"always\", \"never\"");
            goto bad;
        }
        cJSON_Delete(body);
        goto submit;
    bad:
        cJSON_Delete(body);
        return ret;
    }
submit:;
    char err[512];
    int id = 0;
    if (!lifecycle_writable(r->srv->lc)) {
        /* Another process owns the repository: only it trains into it. */
        return api_error(r, 409, "model repository is read-only here", lifecycle_readonly_reason(r->srv->lc),
                         NULL);
    }
    int rc = jobs_submit_promote(r->srv->jobs, &cfg, "api", promote, &id, err, sizeof(err));
    char loc[48];
    snprintf(loc, sizeof(loc), "/train/%d", id);
    if (rc == JOBS_BUSY) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
            return api_error(r, 500, "out of memory", NULL, NULL);
        cJSON_AddStringToObject(o, "error", "a training job is already running");
        cJSON_AddNumberToObject(o, "status", 409);
        cJSON_AddStringToObject(o, "detail", err);
        cJSON_AddNumberToObject(o, "job_id", id);
        cJSON_AddStringToObject(o, "location", loc);
        const char *hdr[] = {"Location", loc, NULL};
        return api_respond_json(r, 409, o, hdr);
    }
    if (rc == JOBS_INVALID) {
        /* jobs_submit refused a setting: the same check names it. */
        train_field bad = TRAIN_FIELD_NONE;
        train_config_check(&cfg, &bad, err, sizeof(err));
        return api_field_error(r, train_field_name(bad), err);
    }
    if (rc != JOBS_OK) {
        /* Out of memory or of threads: the server's trouble, not the request's. */
        static const char *const retry[] = {"Retry-After", "5", NULL};
        return api_error(r, 503, "cannot start a training job", err, retry);
    }
    job_info *in = malloc(sizeof(*in));
    if (!in || jobs_get(r->srv->jobs, id, in) != JOBS_OK) {
        free(in);
        return api_error(r, 500, "job vanished", NULL, NULL);
    }
    cJSON *o = job_json(in);
    free(in);
    const char *hdr[] = {"Location", loc, NULL};
    return api_respond_json(r, 202, o, hdr);
}

enum MHD_Result api_get_train_list(api_request *r)
{
    enum { MAX = 64 };
    job_info *list = malloc(sizeof(job_info) * MAX);
    if (!list)
        return api_error(r, 500, "out of memory", NULL, NULL);
    int n = jobs_list(r->srv->jobs, list, MAX);
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = o ? cJSON_AddArrayToObject(o, "jobs") : NULL;
    for (int i = 0; arr && i < n; i++) {
        cJSON *j = job_json(&list[i]);
        if (j)
            cJSON_AddItemToArray(arr, j);
    }
    free(list);
    return api_respond_json(r, 200, o, NULL);
}

enum MHD_Result api_get_train_job(api_request *r)
{
    int id = r->id;
    job_info *in = malloc(sizeof(*in));
    if (!in)
        return api_error(r, 500, "out of memory", NULL, NULL);
    if (jobs_get(r->srv->jobs, id, in) != JOBS_OK) {
        free(in);
        return api_error(r, 404, "not found", "no such training job (the history keeps the latest jobs)", NULL);
    }
    cJSON *o = job_json(in);
    free(in);
    return api_respond_json(r, 200, o, NULL);
}

enum MHD_Result api_delete_train_job(api_request *r)
{
    int id = r->id;
    int rc = jobs_cancel(r->srv->jobs, id);
    if (rc == JOBS_NOT_FOUND)
        return api_error(r, 404, "not found", "no such training job", NULL);
    job_info *in = malloc(sizeof(*in));
    if (!in)
        return api_error(r, 500, "out of memory", NULL, NULL);
    if (jobs_get(r->srv->jobs, id, in) != JOBS_OK) {
        /* It left the history between the two calls (a full history and a
         * new job submitted meanwhile). */
        free(in);
        return api_error(r, 404, "not found", "no such training job", NULL);
    }
    if (rc == JOBS_FINISHED) {
        char d[96];
        snprintf(d, sizeof(d), "job %d has already ended (%s)", id, job_status_name(in->status));
        free(in);
        return api_error(r, 409, "job already finished", d, NULL);
    }
    cJSON *o = job_json(in);
    free(in);
    return api_respond_json(r, 202, o, NULL);
}
