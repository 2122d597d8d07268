/* api/router.c -- the route table and dispatch: see router.h. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "api/auth.h"
#include "api/respond.h"
#include "api/router.h"
#include "api/web.h"

/* The handlers (api/predict.c, explain.c, info.c, embed.c, train.c, evaluate.c,
 * models.c, v2.c). */
enum MHD_Result api_predict(api_request *r);
enum MHD_Result api_explain(api_request *r);
enum MHD_Result api_get_model(api_request *r);
enum MHD_Result api_get_healthz(api_request *r);
enum MHD_Result api_get_readyz(api_request *r);
enum MHD_Result api_get_metrics(api_request *r);
enum MHD_Result api_get_openapi(api_request *r);
enum MHD_Result api_post_train(api_request *r);
enum MHD_Result api_get_train_list(api_request *r);
enum MHD_Result api_get_train_job(api_request *r);
enum MHD_Result api_delete_train_job(api_request *r);
enum MHD_Result api_post_evaluate(api_request *r);
enum MHD_Result api_get_samples(api_request *r);
enum MHD_Result api_get_models(api_request *r);
enum MHD_Result api_get_model_version(api_request *r);
enum MHD_Result api_delete_model_version(api_request *r);
enum MHD_Result api_activate_model_version(api_request *r);
enum MHD_Result api_v2_server(api_request *r);
enum MHD_Result api_v2_live(api_request *r);
enum MHD_Result api_v2_ready(api_request *r);
enum MHD_Result api_v2_model(api_request *r);
enum MHD_Result api_v2_model_ready(api_request *r);
enum MHD_Result api_v2_infer(api_request *r);
enum MHD_Result api_v2_explain(api_request *r);
/* The reasons a prediction is refused (api/predict.c), for the metrics. */
extern const char *const api_predict_reasons[];
extern const int api_predict_nreasons;

/* Rows of the same path are adjacent; the order of the paths is the order
 * of the metric series. In a path, {name} is one segment of the URL, and
 * {id} the rest of it, a positive integer. The inference routes are
 * dispatched on the headers so that their limits (413, 411, 415, 503)
 * refuse a body before it is read. Every
 * other route answers on the call after the (empty or discarded) body: a
 * response queued on the first call makes libmicrohttpd close the
 * connection, and health checks and scrapes should keep theirs alive. */
static const api_route routes[] = {
    /* path            method    label            body_max          access     on_headers handler */
    {"/predict",      "POST",   "/predict",      API_BODY_SETTING, API_OPEN,  1, api_predict},
    {"/explain",      "POST",   "/explain",      API_BODY_SETTING, API_OPEN,  1, api_explain},
    {"/model",        "GET",    "/model",        0,                API_OPEN,  0, api_get_model},
    {"/healthz",      "GET",    "/healthz",      0,                API_OPEN,  0, api_get_healthz},
    {"/readyz",       "GET",    "/readyz",       0,                API_OPEN,  0, api_get_readyz},
    {"/metrics",      "GET",    "/metrics",      0,                API_OPEN,  0, api_get_metrics},
    {"/openapi.yaml", "GET",    "/openapi.yaml", 0,                API_OPEN,  0, api_get_openapi},
    {"/train",        "GET",    "/train",        0,                API_OPEN,  0, api_get_train_list},
    {"/train",        "POST",   "/train",        65536,            API_TOKEN, 0, api_post_train},
    {"/train/{id}",   "GET",    "/train/{id}",   0,                API_OPEN,  0, api_get_train_job},
    {"/train/{id}",   "DELETE", "/train/{id}",   0,                API_TOKEN, 0, api_delete_train_job},
    {"/evaluate",     "POST",   "/evaluate",     1024,             API_OPEN,  0, api_post_evaluate},
    {"/samples.png",  "GET",    "/samples.png",  0,                API_OPEN,  0, api_get_samples},
    /* the model repository: {version} is a version's 16 hex digits */
    {"/models", "GET", "/models",
     0, API_OPEN, 0, api_get_models},
    {"/models/{version}", "GET", "/models/{version}",
     0, API_OPEN, 0, api_get_model_version},
    {"/models/{version}", "DELETE", "/models/{version}",
     0, API_TOKEN, 0, api_delete_model_version},
    {"/models/{version}/activate", "POST", "/models/{version}/activate",
     0, API_TOKEN, 0, api_activate_model_version},
    /* the Open Inference Protocol (v2): {model} is --model-name, {version} the served model's */
    {"/v2", "GET", "/v2",
     0, API_OPEN, 0, api_v2_server},
    {"/v2/health/live", "GET", "/v2/health/live",
     0, API_OPEN, 0, api_v2_live},
    {"/v2/health/ready", "GET", "/v2/health/ready",
     0, API_OPEN, 0, api_v2_ready},
    {"/v2/models/{model}", "GET", "/v2/models/{model}",
     0, API_OPEN, 0, api_v2_model},
    {"/v2/models/{model}/ready", "GET", "/v2/models/{model}/ready",
     0, API_OPEN, 0, api_v2_model_ready},
    {"/v2/models/{model}/infer", "POST", "/v2/models/{model}/infer",
     API_BODY_SETTING, API_OPEN, 1, api_v2_infer},
    {"/v2/models/{model}/explain", "POST", "/v2/models/{model}/explain",
     API_BODY_SETTING, API_OPEN, 1, api_v2_explain},
    {"/v2/models/{model}/versions/{version}", "GET", "/v2/models/{model}/versions/{version}",
     0, API_OPEN, 0, api_v2_model},
    {"/v2/models/{model}/versions/{version}/ready", "GET", "/v2/models/{model}/versions/{version}/ready",
     0, API_OPEN, 0, api_v2_model_ready},
    {"/v2/models/{model}/versions/{version}/infer", "POST", "/v2/models/{model}/versions/{version}/infer",
     API_BODY_SETTING, API_OPEN, 1, api_v2_infer},
    {"/v2/models/{model}/versions/{version}/explain", "POST", "/v2/models/{model}/versions/{version}/explain",
     API_BODY_SETTING, API_OPEN, 1, api_v2_explain},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* The metric labels: each distinct label of the table, then these two. */
static const char *labels[NROUTES + 2];
static int nlabels, label_web, label_other;
static int row_label[NROUTES];
static pthread_once_t labels_once = PTHREAD_ONCE_INIT;

static void make_labels(void)
{
    for (size_t i = 0; i < NROUTES; i++) {
        int k = 0;
        while (k < nlabels && strcmp(labels[k], routes[i].label) != 0)
            k++;
        if (k == nlabels)
            labels[nlabels++] = routes[i].label;
        row_label[i] = k;
    }
    label_web = nlabels;
    labels[nlabels++] = "web";
    label_other = nlabels;
    labels[nlabels++] = "other";
}

void api_metric_labels(metrics_labels *out)
{
    pthread_once(&labels_once, make_labels);
    out->routes = labels;
    out->nroutes = nlabels;
    out->reasons = api_predict_reasons;
    out->nreasons = api_predict_nreasons;
}

/* The rest of a URL as an {id}: a positive decimal integer, else -1. */
static int id_of(const char *s)
{
    long v = 0;
    if (strlen(s) > 9)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v > 0 ? (int)v : -1;
}

/* 1 when url has the row's path: {id} matches the non-empty rest of the
 * URL (*id is then its value, or -1), another {name} one non-empty
 * segment. */
static int path_matches(const char *path, const char *url, int *id)
{
    const char *p = path, *u = url;
    while (*p) {
        if (*p != '{') {
            if (*p++ != *u++)
                return 0;
            continue;
        }
        size_t n = strncmp(p, "{id}", 4) == 0 ? strlen(u) : strcspn(u, "/");
        if (n == 0)
            return 0;
        if (strncmp(p, "{id}", 4) == 0)
            *id = id_of(u);
        u += n;
        p = strchr(p, '}') + 1;
    }
    return *u == '\0';
}

static int method_matches(const api_route *rt, const char *method)
{
    return strcmp(rt->method, method) == 0 || (strcmp(rt->method, "GET") == 0 && strcmp(method, "HEAD") == 0);
}

/* The row for url and method (NULL if none); *first is the first row with
 * the path (NULL if no row has it). */
static const api_route *lookup(const char *url, const char *method, const api_route **first, int *id)
{
    *first = NULL;
    for (size_t i = 0; i < NROUTES; i++) {
        if (!path_matches(routes[i].path, url, id))
            continue;
        if (!*first)
            *first = &routes[i];
        if (method_matches(&routes[i], method))
            return &routes[i];
    }
    return NULL;
}

void api_route_find(api_request *r, const char *url, const char *method)
{
    pthread_once(&labels_once, make_labels);
    const api_route *first;
    int id = 0;
    r->row = lookup(url, method, &first, &id);
    r->route = first ? row_label[first - routes] : label_other;
}

/* 405 with the methods of the path's rows (from first on) in Allow. */
static enum MHD_Result method_not_allowed(api_request *r, const api_route *first)
{
    char allow[64] = "";
    size_t n = 0;
    for (const api_route *rt = first; rt < routes + NROUTES && strcmp(rt->path, first->path) == 0; rt++)
        n += (size_t)snprintf(allow + n, sizeof(allow) - n, "%s%s", n ? ", " : "",
                              strcmp(rt->method, "GET") == 0 ? "GET, HEAD" : rt->method);
    const char *hdr[] = {"Allow", allow, NULL};
    char detail[128];
    snprintf(detail, sizeof(detail), "%s allows %s", first->path, allow);
    return api_error(r, 405, "method not allowed", detail, hdr);
}

/* Mutual TLS (--tls-client-ca): a protected route needs a client
 * certificate from the CA on the connection, checked before the token.
 * Returns 1 with a 403 queued when it is missing or not trusted. */
static int client_cert_refused(api_request *r, enum MHD_Result *ret)
{
    if (!r->srv->tls || !api_tls_client_ca_pem(r->srv->tls))
        return 0;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    char why[300], detail[400];
    if (!api_tls_client_refused(r->srv->tls, ci ? (gnutls_session_t)ci->tls_session : NULL, why, sizeof(why)))
        return 0;
    snprintf(detail, sizeof(detail), "this endpoint needs a TLS client certificate from the configured CA: %s",
             why);
    *ret = api_error(r, 403, "client certificate required", detail, NULL);
    return 1;
}

enum MHD_Result api_route_dispatch(api_request *r, const char *url, const char *method)
{
    const api_route *first;
    int id = 0;
    const api_route *rt = lookup(url, method, &first, &id);
    if (!first && api_web_find(url, NULL, NULL, NULL) == 0) {
        r->route = label_web;
        return api_web_respond(r, url);
    }
    if (!first) {
        r->route = label_other;
        return api_error(r, 404, "not found", "no such path; see /openapi.yaml", NULL);
    }
    r->route = row_label[first - routes];
    if (!rt)
        return method_not_allowed(r, first);
    r->row = rt;
    r->url = url;
    r->is_head = strcmp(method, "HEAD") == 0;
    if (id < 0)
        return api_error(r, 404, "not found", "no such training job: ids are positive integers", NULL);
    r->id = id;
    enum MHD_Result ret;
    if (rt->access == API_TOKEN && (client_cert_refused(r, &ret) || api_auth_refused(r, &ret)))
        return ret;
    return rt->handler(r);
}
