/* cmd/daemon.c -- `mnistd serve`: wires the settings, the served model,
 * the inference batcher and the HTTP API together, then waits for SIGINT or
 * SIGTERM and shuts down in order.
 *
 * This file is the daemon's composition root, the one place that knows
 * every layer: model/, server/ (which stays HTTP-free) and api/. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd/daemon.h"

#include "api/api.h"
#include "model/checkpoint.h"
#include "model/kernels.h"
#include "server/batcher.h"
#include "server/clock.h"
#include "server/config.h"
#include "server/explainer.h"
#include "server/jobs.h"
#include "server/log.h"
#include "server/lifecycle.h"
#include "server/metrics.h"
#include "server/modelstore.h"

/* Serves the active version (or the model file). Returns lifecycle_startup's
 * code; 1 (nothing to serve) is explained in the log. */
static int load_model(const mnistd_config *cfg, lifecycle *lc)
{
    int loaded = lifecycle_startup(lc, cfg->model_given ? cfg->model : NULL);
    if (loaded != 1)
        return loaded;
    const char *msg;
    if (!lifecycle_writable(lc))
        msg = "no active model version yet: nothing to serve (/readyz 503) until the repository's owner "
              "activates one (with --watch-s this daemon then serves it)";
    else if (cfg->data[0])
        msg = lifecycle_repo(lc) ? "empty model repository: training a model with the recipe as the startup "
                                   "job (GET /train); /readyz answers 503 until it is ready"
                                 : "no model file: training one with the recipe as job 1 (GET /train/1); "
                                   "/readyz answers 503 until it is ready";
    else
        msg = "no model file and no training data: nothing to serve (/readyz 503). "
              "Give --model a trained model file, or --data a folder with the MNIST "
              "files (scripts/get-mnist.sh DIR fetches them) to train one at startup";
    if (lifecycle_repo(lc))
        log_event(LOG_WARN, msg, LOG_STR("model_dir", cfg->model_dir), LOG_STR("data", cfg->data));
    else
        log_event(LOG_WARN, msg, LOG_STR("model", cfg->model), LOG_STR("data", cfg->data));
    return 1;
}

/* Removes what saves of the model interrupted by a crash left behind (see
 * ckpt_remove_stale_temps; the daemon has saved nothing yet). */
static int remove_stale_temps(const mnistd_config *cfg)
{
    int removed = ckpt_remove_stale_temps(cfg->model);
    if (removed > 0)
        log_event(LOG_INFO, "removed stale temporary files of interrupted model saves",
                  LOG_STR("model", cfg->model), LOG_INT("files", removed));
    return removed;
}

/* Logs who may use the mutating endpoints; never the token itself. */
static void log_access(const mnistd_config *cfg)
{
    if (cfg->token_len == 0) {
        log_event(LOG_INFO, "no API token configured: every endpoint is open (set --token-file or "
                            "MNISTD_TOKEN to protect POST /train and DELETE /train/{id})");
        return;
    }
    log_event(LOG_INFO,
              "API token configured: POST /train and DELETE /train/{id} need "
              "'Authorization: Bearer <token>'",
              LOG_STR("token_source", cfg->token_source));
    if (cfg->token_warning[0])
        log_event(LOG_WARN, cfg->token_warning, LOG_STR("token_source", cfg->token_source));
}

/* The TLS files again (SIGHUP, or a change of one), for certificate
 * rotation. A failure keeps the certificate in use and says why (never a
 * byte of the key). */
static void reload_tls(const mnistd_config *cfg, api_server *srv)
{
    char info[600], err[1200];
    int r = api_reload_tls(srv, info, sizeof(info), err, sizeof(err));
    if (r == 0)
        log_event(LOG_INFO, "TLS certificate reloaded; new connections get it", LOG_STR("certificate", info),
                  LOG_STR("tls_cert", cfg->tls_cert));
    else if (r < 0)
        log_event(LOG_ERROR, "TLS reload failed; still serving the previous certificate",
                  LOG_STR("reason", err));
    else
        log_event(LOG_INFO, "SIGHUP ignored: not serving HTTPS (no --tls-cert)");
}

/* The identity of the TLS files (inode, size, modification time of what
 * each path leads to): a rotation that renames a new file over one, or
 * swaps a Secret volume's symlinks, changes it. */
static void tls_files_stamp(const mnistd_config *cfg, char *buf, size_t len)
{
    const char *files[] = {cfg->tls_cert, cfg->tls_key, cfg->tls_client_ca};
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) && n < len; i++) {
        struct stat st;
        if (!files[i][0] || stat(files[i], &st) != 0)
            memset(&st, 0, sizeof(st));
        int k = snprintf(buf + n, len - n, "%llu:%lld:%lld.%09ld;", (unsigned long long)st.st_ino,
                         (long long)st.st_size, (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
        n += k > 0 ? (size_t)k : 0;
    }
}

/* Waits for SIGINT or SIGTERM, which it returns. Meanwhile SIGHUP reloads
 * the TLS files, and with tls_reload_s so does a change of one of them,
 * checked every tls_reload_s seconds (one attempt per change: a failed one
 * is logged once and retried at the next change or SIGHUP). */
static int serve_until_stopped(const mnistd_config *cfg, api_server *srv, const sigset_t *sigs)
{
    char seen[256], now[256];
    int watch = cfg->tls_cert[0] && cfg->tls_reload_s > 0;
    tls_files_stamp(cfg, seen, sizeof(seen));
    for (;;) {
        int sig = 0;
        if (watch) {
            struct timespec every = {cfg->tls_reload_s, 0};
            sig = sigtimedwait(sigs, NULL, &every);
            if (sig < 0 && errno == EAGAIN) {
                tls_files_stamp(cfg, now, sizeof(now));
                if (strcmp(now, seen) != 0) {
                    memcpy(seen, now, sizeof(seen));
                    log_event(LOG_INFO, "the TLS files changed: reloading them", LOG_STR("tls_cert", cfg->tls_cert));
                    reload_tls(cfg, srv);
                }
                continue;
            }
            if (sig < 0)
                continue;
        } else if (sigwait(sigs, &sig) != 0) {
            continue;
        }
        if (sig != SIGHUP)
            return sig;
        tls_files_stamp(cfg, seen, sizeof(seen));
        reload_tls(cfg, srv);
    }
}

/* On shutdown: a running training job gets up to shutdown_timeout_s seconds
 * to finish (and save its model, atomically), then it is cancelled; it
 * stops before its next batch and saves nothing. Returns once no job runs. */
static void stop_training(const mnistd_config *cfg, jobs *jb)
{
    jobs_stats st;
    jobs_get_stats(jb, &st);
    if (st.running_id == 0)
        return;
    int id = st.running_id;
    uint64_t end = clock_mono_ns() + (uint64_t)cfg->shutdown_timeout_s * 1000000000ull;
    if (cfg->shutdown_timeout_s > 0) {
        log_event(LOG_INFO, "shutting down: waiting for the training job", LOG_INT("job_id", id),
                  LOG_INT("shutdown_timeout_s", cfg->shutdown_timeout_s));
        for (;;) {
            jobs_get_stats(jb, &st);
            if (st.running_id != id || clock_mono_ns() >= end)
                break;
            /* jobs.h has no timed wait: poll at 20 Hz (shutdown only). */
            struct timespec step = {0, 50 * 1000 * 1000};
            nanosleep(&step, NULL);
        }
    }
    jobs_get_stats(jb, &st);
    if (st.running_id == id) {
        log_event(LOG_INFO, "shutting down: cancelling the training job", LOG_INT("job_id", id),
                  LOG_INT("shutdown_timeout_s", cfg->shutdown_timeout_s));
        jobs_cancel(jb, id);
    }
    jobs_wait(jb, id);
}

int daemon_main(int argc, char **argv)
{
    mnistd_config cfg;
    char err[512];
    int r = config_parse(&cfg, argc, argv, stdout, err, sizeof(err));
    if (r == 1)
        return 0;
    if (r < 0) {
        fprintf(stderr, "mnistd: %s\n", err);
        return 2;
    }
    if (kernels_use(cfg.kernels, err, sizeof(err)) != 0) {
        fprintf(stderr, "mnistd: --kernels/MNISTD_KERNELS: %s\n", err);
        return 2;
    }

    /* Every thread created from here on inherits this mask; the main
     * thread takes the signals with sigwait. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    log_set_format(cfg.log_format);
    if (log_set_flush_ms(cfg.log_flush_ms) != 0)
        fprintf(stderr, "mnistd: cannot start the log thread; log lines are written at once\n");
    int rc = 1;
    modelstore ms;
    batcher *b = NULL;
    explainer *ex = NULL;
    api_server *srv = NULL;
    jobs *jb = NULL;
    lifecycle *lc = NULL;
    metrics_labels labels;
    api_metric_labels(&labels);
    metrics_init(&labels);
    if (modelstore_init(&ms) != 0) {
        fprintf(stderr, "mnistd: cannot initialise the model store\n");
        return 1;
    }
    log_access(&cfg);
    repo *rp = NULL;
    if (cfg.model_dir[0]) {
        rp = repo_open(cfg.model_dir, 1, err, sizeof(err));
        if (!rp) {
            log_event(LOG_ERROR, err);
            goto done;
        }
    } else {
        remove_stale_temps(&cfg);
    }
    lc = lifecycle_create(&ms, rp, cfg.model, cfg.keep_models);
    if (!lc) {
        repo_close(rp);
        log_event(LOG_ERROR, "out of memory creating the model lifecycle");
        goto done;
    }
    int loaded = load_model(&cfg, lc);
    if (loaded < 0)
        goto done;
    jb = jobs_create(&ms, cfg.model, cfg.data, 0, cfg.job_history);
    if (!jb) {
        log_event(LOG_ERROR, "out of memory creating the job manager");
        goto done;
    }
    /* Job records are kept by the repository's owner only. */
    jobs_use_lifecycle(jb, lc, rp && repo_owner(rp) ? repo_jobs_dir(rp) : NULL);
    if (lifecycle_watch_start(lc, cfg.watch_s) != 0) {
        log_event(LOG_ERROR, "cannot start the repository watcher thread");
        goto done;
    }
    b = batcher_create(&ms, cfg.threads, cfg.max_batch, cfg.batch_timeout_us, cfg.max_queue, err, sizeof(err));
    if (b)
        batcher_set_int8(b, strcmp(cfg.precision, "int8") == 0);
    if (!b) {
        log_event(LOG_ERROR, err);
        goto done;
    }
    ex = explainer_create(&ms, cfg.explain_threads, cfg.explain_queue, cfg.explain_max_steps, err,
                          sizeof(err));
    if (!ex) {
        log_event(LOG_ERROR, err);
        goto done;
    }
    srv = api_start(&cfg, &ms, b, ex, jb, lc, err, sizeof(err));
    if (!srv) {
        log_event(LOG_ERROR, err);
        goto done;
    }
    /* No model but data: the recipe trains one while the server already
     * answers (/healthz 200, /readyz 503, progress at GET /train/1). */
    if (loaded == 1 && cfg.data[0] && lifecycle_writable(lc)) {
        train_config tc;
        train_config_default(&tc);
        int id = 0;
        if (jobs_submit(jb, &tc, "startup", &id, err, sizeof(err)) != JOBS_OK)
            log_event(LOG_ERROR, err);
        else
            log_event(LOG_INFO, "startup training job started", LOG_INT("job_id", id));
    }

    char cfgjson[6000], msg[160];
    char hostbuf[80];
    if (strchr(cfg.bind, ':'))
        snprintf(hostbuf, sizeof(hostbuf), "[%s]", cfg.bind);  /* IPv6 in a URL */
    else
        snprintf(hostbuf, sizeof(hostbuf), "%s", cfg.bind);
    config_to_json(&cfg, cfgjson, sizeof(cfgjson));
    snprintf(msg, sizeof(msg), "listening on %s://%s:%d", api_scheme(srv), hostbuf, api_port(srv));
    char kdesc[96], tlsdesc[600];
    kernels_describe(kdesc, sizeof(kdesc));
    api_tls_info(srv, tlsdesc, sizeof(tlsdesc));
    log_event(LOG_INFO, msg, LOG_STR("address", cfg.bind), LOG_INT("port", api_port(srv)),
              LOG_BOOL("ready", modelstore_ready(&ms)), LOG_STR("kernels", kdesc),
              LOG_STR("certificate", tlsdesc), LOG_JSON("config", cfgjson));

    int sig = serve_until_stopped(&cfg, srv, &sigs);
    log_event(LOG_INFO, "shutting down: finishing queued predictions",
              LOG_STR("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    /* Order: stop taking connections (and answer /readyz 503 on open
     * ones), answer everything queued, predictions and explanations
     * (which resumes every suspended connection), end the training job
     * (finished within the grace, or cancelled), then close the HTTP side. */
    api_quiesce(srv);
    batcher_stop(b);
    explainer_stop(ex);
    stop_training(&cfg, jb);
    rc = 0;
done:
    api_stop(srv);
    /* cancels a running training job (it stops within one batch; nothing is
     * saved: a model file is only ever replaced by a finished job, atomically) */
    jobs_destroy(jb);
    lifecycle_destroy(lc);
    batcher_free(b);
    explainer_free(ex);
    modelstore_destroy(&ms);
    if (rc == 0)
        log_event(LOG_INFO, "stopped");
    log_flush();
    return rc;
}
