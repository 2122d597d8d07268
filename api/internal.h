/* api/internal.h -- what the files of api/ share: the server, the
 * per-request state and the response helpers. Not for use outside api/. */
#ifndef MNISTD_API_INTERNAL_H
#define MNISTD_API_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "api/api.h"
#include "server/jobs.h"
#include "server/metrics.h"

struct api_server {
    const mnistd_config *cfg;
    modelstore *ms;
    batcher *b;
    jobs *jobs;          /* training jobs and the data sets */
    struct MHD_Daemon *mhd;
    int port;
    _Atomic int quiescing;
    /* The listening socket is ours: an acceptor thread hands each
     * connection to libmicrohttpd, which spreads them over its threads (see
     * http.c). It holds connections back while max_connections are open. */
    int listen_fd;
    pthread_t acceptor;
    int acceptor_started;
    pthread_mutex_t conn_mu;
    pthread_cond_t conn_cv;
    int conns_open;      /* started and not yet closed, per libmicrohttpd */
    int conns_pending;   /* handed over, not yet started */
    /* background operations (evaluate, samples) on their own threads */
    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cv;
    int bg_running;      /* evaluations/renders in flight */
};

/* Per-request state: allocated on the first callback of a request, freed in
 * the request-completed callback (which runs on every path, aborts too). */
typedef struct api_request {
    api_server *srv;
    struct MHD_Connection *conn;
    uint64_t start_ns;
    metrics_route route;
    int is_head;
    int dispatched;      /* the route's handler was called */
    char method[16];
    char path[256];      /* truncated for the log only; routing uses the full url */
    /* body (POST /predict) */
    uint8_t *body;
    size_t len, cap;
    int too_large;       /* a chunked body went over the limit; the rest is discarded */
    int started;         /* the body's processing began (predict dispatched) */
    /* predict */
    int multipart;
    int nimages;
    batch_job *jobs;     /* nimages, allocated for this request */
    _Atomic int pending; /* jobs not yet answered */
    int suspended;
    int submit_error;    /* BATCHER_FULL / BATCHER_STOPPED when the submit failed */
    uint64_t decode_ns;
    /* a background operation (POST /evaluate, GET /samples.png): the
     * connection is suspended while it runs; its result waits here */
    int bg_state;        /* 0 none, 1 running, 2 done (result below) */
    int bg_status;
    char *bg_body;       /* malloc'd, handed to libmicrohttpd */
    size_t bg_len;
    const char *bg_ctype;
    char bg_query[32];   /* ?offset= of /samples.png */
    /* the v2 protocol: the parsed infer request and the version in the path */
    struct oip_request *v2;
    char v2_version[40];
    /* response */
    int status;          /* 0 until a response was queued */
    size_t resp_bytes;
} api_request;

/* Queues a response with body (copied) and content type; extra headers are
 * NULL-terminated name/value pairs. Records status and size in r. */
enum MHD_Result api_respond(api_request *r, int status, const char *ctype,
                            const void *body, size_t len, const char *const *headers);
/* The same, taking over a malloc'd body (freed by libmicrohttpd). */
enum MHD_Result api_respond_owned(api_request *r, int status, const char *ctype,
                                  char *body, size_t len, const char *const *headers);
/* The same, for a body that outlives the response (the files built into
 * the binary): sent from where it is, not copied. */
enum MHD_Result api_respond_static(api_request *r, int status, const char *ctype,
                                   const void *body, size_t len, const char *const *headers);
/* Queues obj (a cJSON object, which this deletes) as a JSON response. */
struct cJSON;
enum MHD_Result api_respond_json(api_request *r, int status, struct cJSON *obj,
                                 const char *const *headers);
/* Formats unix seconds as RFC 3339 UTC ("2026-01-02T03:04:05Z"). */
void api_rfc3339(double unix_seconds, char *buf, size_t len);

/* {"error": error, "status": status[, "detail": detail]} with the status. */
enum MHD_Result api_error(api_request *r, int status, const char *error, const char *detail,
                          const char *const *headers);

/* Inference shared by POST /predict and the v2 infer route (api/predict.c).
 * api_infer_refused: when the daemon is stopping or has no model, answers
 * 503 and returns 1; else 0. api_body_begin: checks Content-Length against
 * --max-body-bytes (413), 411 without a length, and allocates the body.
 * api_decode_png: one PNG into job->input as /predict preprocesses it;
 * returns 0, or answers the error (naming part when > 0) in *ret and
 * returns -1. api_submit_jobs: frees the body and hands r->jobs (nimages) to
 * the batcher; the connection stays suspended until the last job is
 * answered. api_jobs_failed: after the batcher, answers the first failure
 * (queue full, deadline, no model) in *ret and returns 1; 0 when every job
 * succeeded. api_reject: an error answer counted as a refused prediction. */
int api_infer_refused(api_request *r);
enum MHD_Result api_body_begin(api_request *r);
int api_decode_png(api_request *r, const uint8_t *png, size_t len, batch_job *job, int part,
                   enum MHD_Result *ret);
enum MHD_Result api_submit_jobs(api_request *r);
int api_jobs_failed(api_request *r, enum MHD_Result *ret);
enum MHD_Result api_reject(api_request *r, metrics_reject why, int status, const char *error,
                           const char *detail, const char *const *headers);

/* The Open Inference Protocol routes (api/v2.c): the first call of any
 * /v2 request; the infer route keeps its body and finishes in
 * api_v2_infer_finish (body complete, or back from the batcher). */
enum MHD_Result api_v2_begin(api_request *r, const char *url, const char *method);
enum MHD_Result api_v2_infer_finish(api_request *r);

/* POST /predict: the first call (headers only). Returns MHD_YES after
 * either queueing an early error or preparing to read the body. */
enum MHD_Result api_predict_begin(api_request *r);
/* POST /predict: the body is complete (or came back from the batcher). */
enum MHD_Result api_predict_finish(api_request *r);

/* Training and evaluation (api/train.c, api/evaluate.c). id is the job id
 * of /train/{id}. */
enum MHD_Result api_post_train(api_request *r);
enum MHD_Result api_get_train_list(api_request *r);
enum MHD_Result api_get_train_job(api_request *r, int id);
enum MHD_Result api_delete_train_job(api_request *r, int id);
enum MHD_Result api_post_evaluate(api_request *r);
enum MHD_Result api_get_samples(api_request *r);
/* Answers a finished background operation (bg_state 2). */
enum MHD_Result api_bg_finish(api_request *r);
/* The largest POST /train body. */
#define API_TRAIN_MAX_BODY 65536

/* The GET handlers. */
enum MHD_Result api_get_model(api_request *r);
enum MHD_Result api_get_healthz(api_request *r);
enum MHD_Result api_get_readyz(api_request *r);
enum MHD_Result api_get_metrics(api_request *r);
enum MHD_Result api_get_openapi(api_request *r);

#endif
