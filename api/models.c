/* api/models.c -- the model repository over HTTP: GET /models,
 * GET /models/{version}, POST /models/{version}/activate,
 * DELETE /models/{version}.
 *
 * The handlers only check and translate: the repository and the served
 * model change in server/lifecycle.c, one change at a time. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/respond.h"

#define MODELS_MAX 1000  /* versions listed by GET /models */

/* The Model object of the API (openapi.yaml, ModelVersion). */
static cJSON *version_json(const repo_version *v, const repo_active *a)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    char when[40];
    cJSON_AddStringToObject(o, "version", v->version);
    cJSON_AddBoolToObject(o, "active", strcmp(a->active, v->version) == 0);
    cJSON_AddBoolToObject(o, "previous", strcmp(a->previous, v->version) == 0);
    api_rfc3339(v->created_at, when, sizeof when);
    cJSON_AddStringToObject(o, "created_at", when);
    api_rfc3339(v->added_at, when, sizeof when);
    cJSON_AddStringToObject(o, "added_at", when);
    if (v->job_id > 0)
        cJSON_AddNumberToObject(o, "job_id", v->job_id);
    else
        cJSON_AddNullToObject(o, "job_id");
    cJSON_AddStringToObject(o, "source", v->source);
    cJSON *recipe = v->recipe[0] ? cJSON_Parse(v->recipe) : NULL;
    if (cJSON_IsObject(recipe))
        cJSON_AddItemToObject(o, "recipe", recipe);
    else {
        cJSON_Delete(recipe);
        cJSON_AddNullToObject(o, "recipe");
    }
    if (v->test_accuracy >= 0)
        cJSON_AddNumberToObject(o, "test_accuracy", v->test_accuracy);
    else
        cJSON_AddNullToObject(o, "test_accuracy");
    cJSON_AddNumberToObject(o, "bytes", (double)v->bytes);
    return o;
}

static void add_version_or_null(cJSON *o, const char *key, const char *v)
{
    if (v[0])
        cJSON_AddStringToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

/* The repository, or NULL with a 404 queued in *ret. */
static repo *need_repo(api_request *r, enum MHD_Result *ret)
{
    repo *rp = lifecycle_repo(r->srv->lc);
    if (!rp)
        *ret = api_error(r, 404, "no model repository",
                         "this daemon serves a single model file; start it with --model-dir DIR to keep "
                         "versions", NULL);
    return rp;
}

/* The active record as the API shows it (an unreadable record shows no
 * active version; GET /model says what is served). */
static void read_active(repo *rp, repo_active *a)
{
    char err[300];
    if (repo_read_active(rp, a, err, sizeof err) != REPO_OK)
        memset(a, 0, sizeof *a);
}

enum MHD_Result api_get_models(api_request *r)
{
    enum MHD_Result ret;
    repo *rp = need_repo(r, &ret);
    if (!rp)
        return ret;
    repo_version *list = malloc(sizeof(*list) * MODELS_MAX);
    if (!list)
        return api_error(r, 500, "out of memory", NULL, NULL);
    int n = repo_list(rp, list, MODELS_MAX, NULL, NULL);
    repo_active a;
    read_active(rp, &a);
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = o ? cJSON_AddArrayToObject(o, "models") : NULL;
    for (int i = 0; arr && i < n && i < MODELS_MAX; i++) {
        cJSON *v = version_json(&list[i], &a);
        if (v)
            cJSON_AddItemToArray(arr, v);
    }
    free(list);
    if (o) {
        add_version_or_null(o, "active", a.active);
        add_version_or_null(o, "previous", a.previous);
        cJSON_AddBoolToObject(o, "writable", lifecycle_writable(r->srv->lc));
    }
    return api_respond_json(r, 200, o, NULL);
}

/* 404 / 422 / 409 / 500 for a REPO_ code. */
static enum MHD_Result repo_error(api_request *r, int rc, const char *err)
{
    switch (rc) {
    case REPO_NOT_FOUND: return api_error(r, 404, "no such model version", err, NULL);
    case REPO_INVALID: return api_error(r, 422, "model version cannot be loaded", err, NULL);
    case REPO_IS_ACTIVE: return api_error(r, 409, "model version is active", err, NULL);
    case REPO_IS_PREVIOUS: return api_error(r, 409, "model version is the rollback target", err, NULL);
    case REPO_NOT_OWNER: return api_error(r, 409, "model repository is read-only here", err, NULL);
    default: return api_error(r, 500, "model repository error", err, NULL);
    }
}

static enum MHD_Result get_version(api_request *r, repo *rp, const char *version)
{
    repo_version v;
    char err[600];
    int rc = repo_get(rp, version, &v, err, sizeof err);
    if (rc != REPO_OK)
        return repo_error(r, rc, err);
    repo_active a;
    read_active(rp, &a);
    return api_respond_json(r, 200, version_json(&v, &a), NULL);
}

/* The {version} of /models/{version}[/activate] (the router matched the
 * path): 0, or -1 when it is not a version (too long, not 16 hex digits). */
static int version_of(const api_request *r, char *version, size_t len)
{
    const char *v = r->url + strlen("/models/");
    size_t n = strcspn(v, "/");
    if (n >= len)
        return -1;
    memcpy(version, v, n);
    version[n] = '\0';
    return repo_valid_version(version) ? 0 : -1;
}

/* The version of the URL and the repository, or a 404 queued in *ret. */
static repo *need_version(api_request *r, char *version, size_t len, enum MHD_Result *ret)
{
    repo *rp = need_repo(r, ret);
    if (rp && version_of(r, version, len) != 0) {
        *ret = api_error(r, 404, "no such model version", "a version is 16 lowercase hex digits", NULL);
        return NULL;
    }
    return rp;
}

enum MHD_Result api_get_model_version(api_request *r)
{
    enum MHD_Result ret;
    char version[40];
    repo *rp = need_version(r, version, sizeof version, &ret);
    return rp ? get_version(r, rp, version) : ret;
}

/* POST /models/{version}/activate (the router checked the token). */
enum MHD_Result api_activate_model_version(api_request *r)
{
    enum MHD_Result ret;
    char version[40], err[800];
    repo *rp = need_version(r, version, sizeof version, &ret);
    if (!rp)
        return ret;
    int rc = lifecycle_activate(r->srv->lc, version, "api", NULL, err, sizeof err);
    if (rc != REPO_OK)
        return repo_error(r, rc, err);
    return get_version(r, rp, version);
}

/* DELETE /models/{version} (the router checked the token). */
enum MHD_Result api_delete_model_version(api_request *r)
{
    enum MHD_Result ret;
    char version[40], err[800];
    if (!need_version(r, version, sizeof version, &ret))
        return ret;
    int rc = lifecycle_delete(r->srv->lc, version, err, sizeof err);
    if (rc != REPO_OK)
        return repo_error(r, rc, err);
    return api_respond(r, 204, "application/json", "", 0, NULL);
}
