/* api/api.h -- the HTTP API of mnistd on libmicrohttpd.
 *
 * Routes (see openapi.yaml, which is served at GET /openapi.yaml):
 *   POST /predict        classify PNGs (raw body or multipart/form-data)
 *   POST /explain        attributions of a prediction (Integrated Gradients)
 *   GET  /model          the served model
 *   GET  /healthz        liveness (always 200 while the process runs)
 *   GET  /readyz         readiness (200 while a model is loaded, else 503)
 *   GET  /metrics        Prometheus text exposition
 *   GET  /openapi.yaml   the API description
 *   POST /train, GET /train, GET|DELETE /train/{id}   training jobs
 *   POST /evaluate       the served model on the test set
 *   GET  /samples.png    5x5 grid of test images with predictions
 *   GET /models, GET|DELETE /models/{version}, POST /models/{version}/activate
 *                        the model repository
 * Every error is JSON: {"error": "...", "status": N[, "detail": "..."]}.
 * Every request is logged as one line on stderr when it completes. */
#ifndef MNISTD_API_H
#define MNISTD_API_H

#include <stddef.h>

#include "server/batcher.h"
#include "server/config.h"
#include "server/explainer.h"
#include "server/jobs.h"
#include "server/metrics.h"
#include "server/lifecycle.h"
#include "server/modelstore.h"

typedef struct api_server api_server;

/* Starts the HTTP daemon on cfg->bind:cfg->port with its own threads.
 * cfg, ms, b, ex (the explanation queue), jb and lc (the model lifecycle)
 * must outlive the server. Returns NULL with err set (e.g. the
 * port is taken). */
api_server *api_start(const mnistd_config *cfg, modelstore *ms, batcher *b, explainer *ex,
                      jobs *jb, lifecycle *lc, char *err, size_t errlen);

/* The port actually bound (differs from cfg->port when that was 0). */
int api_port(const api_server *s);

/* "https" when it serves HTTPS (cfg->tls_cert), else "http". */
const char *api_scheme(const api_server *s);

/* Loads the TLS certificate, key and client CA files again (SIGHUP): new
 * connections get the new certificate, open ones keep theirs. Returns 0
 * with the new certificate described in info; -1 with err set when a file
 * is missing, unreadable, mismatched or expired (the old ones stay in use);
 * 1 when the server does not serve HTTPS. */
int api_reload_tls(api_server *s, char *info, size_t infolen, char *err, size_t errlen);

/* The served certificate, described for the log ("" without HTTPS). */
void api_tls_info(const api_server *s, char *buf, size_t len);

/* Marks the server not ready (/readyz 503) and stops accepting new
 * connections; requests on open connections still complete. */
void api_quiesce(api_server *s);

/* Stops the HTTP threads, closes every connection, frees. NULL ignored.
 * The batcher and the explainer must be stopped first so no connection
 * stays suspended; this waits for running evaluations (their connections
 * are suspended too). */
void api_stop(api_server *s);

/* The label values of the HTTP metrics, for metrics_init: one route label
 * per path of the route table, in its order, then "web" and "other"; the
 * reasons a prediction is refused. Static storage. */
void api_metric_labels(metrics_labels *out);

/* The embedded openapi.yaml (api/embed.c). */
extern const char api_openapi_yaml[];
extern const char api_openapi_yaml_end[];

#endif
