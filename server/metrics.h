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

/* The label values of the request series, given by the layer that serves
 * the requests at startup: route="..." of the HTTP request families (routes[0]
 * is rendered even before its first request, so that dashboards always find
 * the family), reason="..." of mnistd_predict_rejected_total and
 * mnistd_explain_rejected_total (each always rendered). The strings must outlive the metrics. At most
 * METRICS_MAX_ROUTES routes and METRICS_MAX_REASONS reasons are kept. */
#define METRICS_MAX_ROUTES 32
#define METRICS_MAX_REASONS 16
typedef struct {
    const char *const *routes;
    int nroutes;
    const char *const *reasons;
    int nreasons;
} metrics_labels;

/* Why the served model changed (mnistd_model_activations_total{reason}). */
typedef enum {
    MACT_STARTUP = 0,    /* loaded when the daemon started */
    MACT_JOB,            /* a training job's model was promoted */
    MACT_API,            /* POST /models/{version}/activate */
    MACT_WATCH,          /* the watched repository named a new active version */
    MACT_COUNT
} metrics_activation_reason;

/* The training jobs' counters and the running job (server/jobs.h fills it). */
typedef struct {
    long succeeded, failed, cancelled;
    int running_id;             /* 0 if none */
    int epoch, epochs, batch, batches;
    double loss, accuracy, samples_per_sec;
    double progress;            /* 0..1 of the running job */
} jobs_stats;

/* Live values the caller gathers at render time. */
typedef struct {
    int queue_depth;          /* images waiting now */
    int queue_capacity;       /* --max-queue */
    int explain_queue_depth;  /* images waiting for an explanation worker now */
    int explain_queue_capacity; /* --explain-queue */
    int max_batch;
    int workers;
    int ready;                /* 1 if a model is loaded and serving */
    const char *model_version;/* NULL if no model */
    const char *model_arch;
    const char *model_source; /* file the model came from */
    long model_params;
    double model_accuracy;    /* test accuracy, < 0 if unknown */
    double model_loaded_time; /* unix seconds, 0 if no model */
    int model_versions;       /* versions in the model repository, -1 without one */
    int have_training;        /* 1: training below is set and rendered */
    jobs_stats training;
} metrics_live;

/* Resets every value, takes the label values (labels may be NULL: no
 * request series) and records the process start time. Call once at startup,
 * before any other call (tests may call it again to start from zero). */
void metrics_init(const metrics_labels *labels);

/* One answered request: route (an index into labels->routes; another value
 * counts as the last route), status code (100..599), duration. */
void metrics_request(int route, int status, double seconds);
/* One image's time in the queue before its batch started. */
void metrics_queue_wait(double seconds);
/* One forward pass over size images that took seconds. */
void metrics_batch(int size, double seconds);
/* One refused prediction request, or explanation request (explain 1):
 * reason is an index into labels->reasons (others are ignored). */
void metrics_rejected(int explain, int reason);
/* A TLS handshake failed (a client that does not trust the certificate, a
 * port scanner, plain HTTP on the HTTPS port); returns the total so far. */
uint64_t metrics_tls_handshake_failed(void);
/* The served model changed. */
void metrics_activation(metrics_activation_reason reason);
/* A successful training job's model was promoted (1) or not (0). */
void metrics_promotion(int promoted);

/* Renders every metric into sb. live may be NULL (no live values). */
void metrics_render(strbuf *sb, const metrics_live *live);

/* Test hooks: the count of requests for (route, status), the number of
 * batches and images seen. */
uint64_t metrics_request_count(int route, int status);
uint64_t metrics_batch_count(void);
uint64_t metrics_image_count(void);

#endif
