/* server/metrics.h -- the daemon's Prometheus metrics.
 *
 * One process-wide set of counters and histograms, updated with relaxed
 * atomic adds (no lock on any request path) and rendered in the Prometheus
 * text exposition format (version 0.0.4) by metrics_render. Every name starts
 * with mnistd_, is in base units (seconds, bytes), counters end in _total,
 * every family has HELP and TYPE lines; histograms have cumulative
 * _bucket{le=...} series ending with le="+Inf", then _sum and _count.
 *
 * Live values that belong to other modules (queue depth, the served model)
 * are passed to metrics_render by the caller, so this module depends on
 * nothing else of the daemon. */
#ifndef MNISTD_METRICS_H
#define MNISTD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "server/strbuf.h"

/* The routes, as they appear in the route label. Issue-4 routes are listed
 * already so their series need no new plumbing. */
typedef enum {
    MR_PREDICT = 0,
    MR_MODEL,
    MR_HEALTHZ,
    MR_READYZ,
    MR_METRICS,
    MR_OPENAPI,
    MR_TRAIN,
    MR_TRAIN_JOB,
    MR_EVALUATE,
    MR_SAMPLES,
    MR_WEB,         /* the web page and its assets (/, /app.js, ...) */
    MR_V2,          /* the Open Inference Protocol: server metadata */
    MR_V2_LIVE,
    MR_V2_READY,
    MR_V2_MODEL,    /* model metadata */
    MR_V2_MODEL_READY,
    MR_V2_INFER,
    MR_V2_VMODEL,   /* the same three with /versions/{version} */
    MR_V2_VMODEL_READY,
    MR_V2_VINFER,
    MR_OTHER,       /* anything not routed (404s) */
    MR_COUNT
} metrics_route;

/* Why a prediction (or its request) was refused. */
typedef enum {
    MREJ_QUEUE_FULL = 0, /* 503: the inference queue is full */
    MREJ_DEADLINE,       /* 504: waited past --request-timeout-ms */
    MREJ_NOT_READY,      /* 503: no model loaded */
    MREJ_SHUTTING_DOWN,  /* 503: the daemon is stopping */
    MREJ_BODY_TOO_LARGE, /* 413: over --max-body-bytes */
    MREJ_TOO_MANY_IMAGES,/* 413: over --max-images parts */
    MREJ_LENGTH_REQUIRED,/* 411 */
    MREJ_MEDIA_TYPE,     /* 415 */
    MREJ_BAD_REQUEST,    /* 400: not a PNG, corrupt PNG, bad multipart */
    MREJ_UNPROCESSABLE,  /* 422: too many pixels, no ink */
    MREJ_COUNT
} metrics_reject;

/* Live values the caller gathers at render time. */
typedef struct {
    int queue_depth;          /* images waiting now */
    int queue_capacity;       /* --max-queue */
    int max_batch;
    int workers;
    int ready;                /* 1 if a model is loaded and serving */
    const char *model_version;/* NULL if no model */
    const char *model_arch;
    const char *model_source; /* file the model came from */
    long model_params;
    double model_accuracy;    /* test accuracy, < 0 if unknown */
    double model_loaded_time; /* unix seconds, 0 if no model */
    /* training (set have_training to render them) */
    int have_training;
    long jobs_succeeded, jobs_failed, jobs_cancelled;
    int train_job_id;         /* the running job, 0 if none */
    int train_epoch, train_epochs, train_batch, train_batches;
    double train_loss, train_accuracy, train_samples_per_sec, train_progress;
} metrics_live;

/* Resets every value and records the process start time. Call once at
 * startup (tests may call it again to start from zero). */
void metrics_init(void);

/* One answered HTTP request: route, status code (100..599), duration. */
void metrics_request(metrics_route route, int status, double seconds);
/* One image's time in the queue before its batch started. */
void metrics_queue_wait(double seconds);
/* One forward pass over size images that took seconds. */
void metrics_batch(int size, double seconds);
/* One refused prediction request. */
void metrics_rejected(metrics_reject reason);

/* Renders every metric into sb. live may be NULL (no live values). */
void metrics_render(strbuf *sb, const metrics_live *live);

/* The label text of a route ("/predict", ...). */
const char *metrics_route_name(metrics_route r);

/* Test hooks: the count of requests for (route, status), the number of
 * batches and images seen. */
uint64_t metrics_request_count(metrics_route route, int status);
uint64_t metrics_batch_count(void);
uint64_t metrics_image_count(void);

#endif
