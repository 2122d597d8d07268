/* api/internal.h -- what the files of api/ share: the server and the
 * per-request state. Not for use outside api/. Handlers include
 * api/respond.h (which includes this), the request lifecycle (http.c) the
 * router too; no handler knows the router or the lifecycle. */
#ifndef MNISTD_API_INTERNAL_H
#define MNISTD_API_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "api/api.h"
#include "api/explainopt.h"
#include "api/tls.h"
#include "model/preprocess.h"
#include "server/jobs.h"

struct api_server {
    const mnistd_config *cfg;
    modelstore *ms;
    batcher *b;
    explainer *ex;       /* the explanation queue (POST /explain) */
    jobs *jobs;          /* training jobs and the data sets */
    lifecycle *lc;       /* the model repository (or the single model file) */
    struct MHD_Daemon *mhd;
    api_tls *tls;        /* HTTPS: the certificates (NULL: plain HTTP) */
    _Atomic uint64_t tls_fail_unlogged;  /* failed handshakes not yet in a log line */
    _Atomic uint64_t tls_fail_logged_ns; /* when the last line about them was written */
    int port;
    _Atomic int quiescing;
    /* The last step of the drain: a request that starts now is not taken
     * (its connection is closed unanswered, as if it had come after the
     * listener closed), so that no answer is cut off by the close. */
    _Atomic int closing;
    _Atomic uint64_t requests_not_taken;
    /* The listening socket is ours: an acceptor thread hands each
     * connection to libmicrohttpd, which spreads them over its threads (see
     * listen.c). It holds connections back while max_connections are open. */
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
struct api_route;

typedef struct api_request {
    api_server *srv;
    struct MHD_Connection *conn;
    uint64_t start_ns;
    const struct api_route *row; /* its row of the route table, NULL if none */
    int route;           /* its metric label (an index, see api_metric_labels) */
    int id;              /* the {id} of the path, 0 if none */
    int is_head;
    int dispatched;      /* the route's handler was called */
    int body_done;       /* the body is complete (handlers called on the
                            headers are called again once it is) */
    char method[16];
    char path[256];      /* truncated for the log only; routing uses the full url */
    const char *url;     /* the full path, for the handler (libmicrohttpd's) */
    /* the body, for routes that keep one */
    uint64_t body_max;   /* its limit (from the route), 0: the body is discarded */
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
    int submit_error;    /* WORKQ_FULL / WORKQ_STOPPED when the submit failed */
    uint64_t decode_ns;
    /* explain: its options, one job and one field per image (nimages) */
    int explain;         /* an explanation: refusals count under explain */
    explain_opts xopts;
    struct explain_job *xjobs;
    img_field *xfields;
    /* a background operation (POST /evaluate, GET /samples.png): the
     * connection is suspended while it runs; its result waits here */
    _Atomic int bg_state; /* 0 none, 1 running, 2 done (result below; released by
                             the operation's thread, acquired by the handler) */
    int bg_status;
    char *bg_body;       /* malloc'd, handed to libmicrohttpd */
    size_t bg_len;
    const char *bg_ctype;
    /* the v2 protocol: the parsed infer request and the version in the path */
    struct oip_request *v2;
    char v2_version[40];
    /* response */
    int status;          /* 0 until a response was queued */
    size_t resp_bytes;
} api_request;

#endif
