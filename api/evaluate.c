/* api/evaluate.c -- POST /evaluate and GET /samples.png.
 *
 * Both run the network over test images, which takes from milliseconds
 * (25 images) to about a second (10,000): too long for an HTTP thread. The
 * handler suspends the connection and hands the work to a short-lived thread
 * at lower CPU priority; the thread stores the answer in the request and
 * resumes the connection, whose next callback sends it (bg_finish). At
 * most API_BG_MAX such operations run at once; more answer 503. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "api/evalreq.h"
#include "api/jsonbody.h"
#include "model/grid.h"
#include "model/png.h"
#include "model/net.h"
#include "model/robust.h"
#include "model/train.h"

#define API_BG_MAX 2
enum { BG_EVALUATE = 1, BG_SAMPLES = 2 };

typedef struct {
    api_request *r;
    int kind;
    int arg;    /* BG_SAMPLES: the offset; BG_EVALUATE: the transformed sets (robust.h) */
} bg_arg;

static const char *const retry1[] = {"Retry-After", "1", NULL};

/* Prints o (not freed here) with a final newline, as every JSON answer of
 * the daemon ends; NULL on allocation failure. */
static char *print_line(const cJSON *o)
{
    char *t = o ? cJSON_PrintUnformatted(o) : NULL;
    if (!t)
        return NULL;
    size_t n = strlen(t);
    char *b = realloc(t, n + 2);
    if (!b) {
        free(t);
        return NULL;
    }
    b[n] = '\n';
    b[n + 1] = '\0';
    return b;
}

/* Stores an error answer in r (the thread side of api_error). */
static void bg_error(api_request *r, int status, const char *error, const char *detail)
{
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "error", error);
        cJSON_AddNumberToObject(o, "status", status);
        if (detail)
            cJSON_AddStringToObject(o, "detail", detail);
    }
    r->bg_status = status;
    r->bg_body = print_line(o);
    r->bg_len = r->bg_body ? strlen(r->bg_body) : 0;
    r->bg_ctype = "application/json";
    cJSON_Delete(o);
}

/* The name of the evaluation sets of mask (robust_set_parse). */
static const char *sets_name(unsigned sets)
{
    if (sets == 0)
        return "test";
    if (sets == (1u << ROBUST_KINDS) - 1)
        return "transformed";
    for (int k = 0; k < ROBUST_KINDS; k++)
        if (sets == 1u << k)
            return robust_name((robust_kind)k);
    return "";
}

/* The plain test set's figures, then, for each set of the mask, the same
 * model on the transformed copy (openapi.yaml, Evaluation). */
static void do_evaluate(api_request *r, served_model *m, const mnist_set *test, unsigned sets)
{
    char err[256];
    eval_result *ev = malloc(sizeof(*ev));
    if (!ev || eval_run(m->params, test, 0, 0, 0, ev, err, sizeof(err)) != 0) {
        bg_error(r, 500, "evaluation failed", ev ? err : "out of memory");
        free(ev);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "set", sets_name(sets));
        cJSON_AddNumberToObject(o, "images", ev->n);
        cJSON_AddNumberToObject(o, "loss", ev->loss);
        cJSON_AddNumberToObject(o, "accuracy", ev->accuracy);
        cJSON *pc = cJSON_AddArrayToObject(o, "per_class");
        for (int k = 0; pc && k < 10; k++) {
            cJSON *c = cJSON_CreateObject();
            if (!c)
                break;
            cJSON_AddNumberToObject(c, "class", k);
            cJSON_AddNumberToObject(c, "precision", ev->precision[k]);
            cJSON_AddNumberToObject(c, "recall", ev->recall[k]);
            cJSON_AddItemToArray(pc, c);
        }
        cJSON *cm = cJSON_AddArrayToObject(o, "confusion");
        for (int k = 0; cm && k < 10; k++)
            cJSON_AddItemToArray(cm, cJSON_CreateIntArray(ev->confusion[k], 10));
        cJSON_AddNumberToObject(o, "seconds", ev->seconds);
        cJSON_AddNumberToObject(o, "images_per_sec", ev->images_per_sec);
        cJSON_AddStringToObject(o, "model_version", m->version);
    }
    cJSON *tr = o && sets ? cJSON_AddObjectToObject(o, "transformed") : NULL;
    for (int k = 0; tr && k < ROBUST_KINDS; k++) {
        if (!(sets & (1u << k)))
            continue;
        if (robust_eval(m->params, test, (robust_kind)k, 0, ev, err, sizeof(err)) != 0) {
            cJSON_Delete(o);
            free(ev);
            bg_error(r, 500, "evaluation failed", err);
            return;
        }
        cJSON *t = cJSON_AddObjectToObject(tr, robust_name((robust_kind)k));
        if (!t)
            break;
        cJSON_AddStringToObject(t, "transformation", robust_describe((robust_kind)k));
        cJSON_AddNumberToObject(t, "images", ev->n);
        cJSON_AddNumberToObject(t, "loss", ev->loss);
        cJSON_AddNumberToObject(t, "accuracy", ev->accuracy);
        cJSON_AddNumberToObject(t, "seconds", ev->seconds);
    }
    free(ev);
    r->bg_body = print_line(o);
    cJSON_Delete(o);
    if (!r->bg_body) {
        bg_error(r, 500, "out of memory", NULL);
        return;
    }
    r->bg_status = 200;
    r->bg_len = strlen(r->bg_body);
    r->bg_ctype = "application/json";
}

static void do_samples(api_request *r, served_model *m, const mnist_set *test, int offset)
{
    enum { N = 25 };
    float *x = malloc(sizeof(float) * N * NET_IN_PIXELS), probs[N * 10];
    uint8_t pred[N];
    uint8_t *rgb = NULL, *png = NULL;
    uint32_t w = 0, h = 0;
    size_t len = 0;
    net_ctx *ctx = net_ctx_create(N, 1);
    if (!x || !ctx) {
        bg_error(r, 500, "out of memory", NULL);
        goto done;
    }
    mnist_to_float(test, offset, N, x);
    net_forward(ctx, m->params, x, N, probs, NULL);
    for (int i = 0; i < N; i++)
        pred[i] = (uint8_t)net_argmax(probs + i * 10);
    if (grid_render(test->images + (size_t)offset * NET_IN_PIXELS, test->labels + offset, pred, N, &rgb, &w,
                    &h) != 0 ||
        img_encode_png(rgb, w, h, 1, &png, &len) != 0) {
        bg_error(r, 500, "cannot draw the sample grid", NULL);
        goto done;
    }
    r->bg_status = 200;
    r->bg_body = (char *)png;
    r->bg_len = len;
    r->bg_ctype = "image/png";
    png = NULL;
done:
    free(x);
    free(rgb);
    free(png);
    net_ctx_free(ctx);
}

/* The operation's answer is in r: hand it back to libmicrohttpd, then count
 * the operation as ended (api_stop waits for that count to reach 0). */
static void bg_done(api_request *r)
{
    api_server *srv = r->srv;
    atomic_store_explicit(&r->bg_state, 2, memory_order_release);
    MHD_resume_connection(r->conn);
    pthread_mutex_lock(&srv->bg_mu);
    srv->bg_running--;
    pthread_cond_broadcast(&srv->bg_cv);
    pthread_mutex_unlock(&srv->bg_mu);
}

static void *bg_main(void *arg)
{
    bg_arg a = *(bg_arg *)arg;
    free(arg);
    api_request *r = a.r;
    api_server *srv = r->srv;
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), JOBS_NICE);
    char err[512];
    served_model *m = modelstore_acquire(srv->ms);
    const mnist_set *test = m ? jobs_test_set(srv->jobs, err, sizeof(err)) : NULL;
    if (!m)
        bg_error(r, 503, "no model loaded", "the daemon is not ready; see /readyz");
    else if (!test)
        bg_error(r, 409, "no test data", err);
    else if (a.kind == BG_SAMPLES && a.arg > test->n - 25) {
        char d[96];
        snprintf(d, sizeof(d), "offset must be an integer in 0..%d", test->n - 25);
        bg_error(r, 400, "invalid offset", d);
    } else if (a.kind == BG_EVALUATE)
        do_evaluate(r, m, test, (unsigned)a.arg);
    else
        do_samples(r, m, test, a.arg);
    model_release(m);
    bg_done(r);
    return NULL;
}

static enum MHD_Result bg_start(api_request *r, int kind, int arg)
{
    api_server *srv = r->srv;
    if (atomic_load(&srv->quiescing))
        return api_error(r, 503, "shutting down", NULL, retry1);
    bg_arg *a = malloc(sizeof(*a));
    if (!a)
        return api_error(r, 500, "out of memory", NULL, NULL);
    a->r = r;
    a->kind = kind;
    a->arg = arg;
    pthread_mutex_lock(&srv->bg_mu);
    if (srv->bg_running >= API_BG_MAX) {
        pthread_mutex_unlock(&srv->bg_mu);
        free(a);
        return api_error(r, 503, "busy", "too many evaluations at once; retry", retry1);
    }
    srv->bg_running++;
    pthread_mutex_unlock(&srv->bg_mu);
    atomic_store_explicit(&r->bg_state, 1, memory_order_relaxed);
    MHD_suspend_connection(r->conn);
    pthread_attr_t attr;
    pthread_t th;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&th, &attr, bg_main, a);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        free(a);
        bg_error(r, 503, "busy", "cannot start a worker thread; retry");
        bg_done(r);
    }
    return MHD_YES;
}

/* Answers a finished background operation (bg_state 2); before, nothing. */
static enum MHD_Result bg_finish(api_request *r)
{
    if (atomic_load_explicit(&r->bg_state, memory_order_acquire) != 2 || r->status)
        return MHD_YES;
    char *body = r->bg_body;
    r->bg_body = NULL;
    if (!body)
        return api_error(r, 500, "out of memory", NULL, NULL);
    if (r->is_head) {
        /* HEAD: the headers of the GET, no body */
        free(body);
        return api_respond(r, r->bg_status, r->bg_ctype, "", 0, NULL);
    }
    return api_respond_owned(r, r->bg_status, r->bg_ctype, body, r->bg_len,
                             r->bg_status == 503 ? retry1 : NULL);
}

/* Both handlers are called again when the operation resumes the connection. */
enum MHD_Result api_post_evaluate(api_request *r)
{
    if (atomic_load_explicit(&r->bg_state, memory_order_relaxed))
        return bg_finish(r);
    enum MHD_Result refused;
    if (api_json_body_refused(r, "an evaluation request", "POST /evaluate", &refused))
        return refused;
    unsigned sets;
    char field[64], detail[160];
    int rc = evalreq_parse(r->body, r->len, &sets, field, sizeof(field), detail, sizeof(detail));
    if (rc == 400)
        return api_error(r, 400, "body is not a JSON object", detail, NULL);
    if (rc != 0)
        return api_field_error(r, field, detail);
    return bg_start(r, BG_EVALUATE, (int)sets);
}

enum MHD_Result api_get_samples(api_request *r)
{
    if (atomic_load_explicit(&r->bg_state, memory_order_relaxed))
        return bg_finish(r);
    const char *q = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "offset");
    long off = 0;
    if (q && *q) {  /* "?offset=" alone is offset 0 */
        char *end;
        off = strtol(q, &end, 10);
        if (strlen(q) > 30 || *end || end == q || off < 0 || off > 100000000L)
            return api_error(r, 400, "invalid offset", "offset must be a non-negative integer", NULL);
    }
    return bg_start(r, BG_SAMPLES, (int)off);
}
