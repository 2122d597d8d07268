/* server/daemon.c -- `mnistd serve`: wires the settings, the served model,
 * the inference batcher and the HTTP API together, then waits for SIGINT or
 * SIGTERM and shuts down in order.
 *
 * This file is the daemon's composition root: it is the one place in
 * server/ that knows api/ (everything else in server/ stays HTTP-free). */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "server/batcher.h"
#include "server/cli.h"
#include "server/config.h"
#include "server/jobs.h"
#include "server/metrics.h"
#include "server/modelstore.h"

/* Loads the model file if there is one. Returns 0 (loaded), 1 (no file: the
 * daemon starts not ready, and trains one if it has data), -1 when the file
 * exists but cannot be used (never overwritten: the daemon refuses to start). */
static int load_model(const mnistd_config *cfg, modelstore *ms)
{
    char err[512], fields[1536];
    struct stat st;
    if (stat(cfg->model, &st) != 0 && errno == ENOENT) {
        snprintf(fields, sizeof(fields), "\"model\":\"%.1000s\",\"data\":\"%.200s\"", cfg->model, cfg->data);
        api_log_event(cfg->log_format, "warn",
                      cfg->data[0]
                          ? "no model file: training one with the recipe as job 1 (GET /train/1); "
                            "/readyz answers 503 until it is ready"
                          : "no model file and no training data: nothing to serve (/readyz 503). "
                            "Give --model a trained model file, or --data a folder with the MNIST "
                            "files (scripts/get-mnist.sh DIR fetches them) to train one at startup",
                      fields);
        return 1;
    }
    served_model *m = model_load_file(cfg->model, err, sizeof(err));
    if (!m) {
        char msg[700];
        snprintf(msg, sizeof(msg), "cannot load the model file: %s", err);
        snprintf(fields, sizeof(fields), "\"model\":\"%.1000s\"", cfg->model);
        api_log_event(cfg->log_format, "error", msg, fields);
        return -1;
    }
    snprintf(fields, sizeof(fields), "\"model\":\"%.1000s\",\"version\":\"%s\"", cfg->model, m->version);
    api_log_event(cfg->log_format, "info", "model loaded", fields);
    modelstore_publish(ms, m);
    return 0;
}

/* Removes the temporary files that saves of the model interrupted by a
 * crash left behind. ckpt_save writes MODEL.tmp.PID.N and renames it over
 * MODEL; a process killed in between leaves the temporary file. Only files of
 * processes that are gone are removed (a PID that no longer exists, or our
 * own PID, which has saved nothing yet: in a container the daemon is PID 1
 * after every restart), so a save running in another live process is left
 * alone. Returns the number removed. */
static int remove_stale_temps(const mnistd_config *cfg)
{
    char dir[CONFIG_PATH_MAX], prefix[CONFIG_PATH_MAX + 8];
    const char *slash = strrchr(cfg->model, '/');
    if (slash) {
        snprintf(dir, sizeof(dir), "%.*s", slash == cfg->model ? 1 : (int)(slash - cfg->model), cfg->model);
        snprintf(prefix, sizeof(prefix), "%s.tmp.", slash + 1);
    } else {
        snprintf(dir, sizeof(dir), ".");
        snprintf(prefix, sizeof(prefix), "%s.tmp.", cfg->model);
    }
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int removed = 0;
    size_t plen = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, plen) != 0)
            continue;
        /* The rest must be PID.N, both decimal. */
        const char *p = e->d_name + plen;
        char *end = NULL;
        errno = 0;
        long pid = strtol(p, &end, 10);
        if (errno || end == p || *end != '.' || pid <= 0)
            continue;
        const char *q = end + 1;
        if (!*q || strspn(q, "0123456789") != strlen(q))
            continue;
        if (pid != (long)getpid() && !(kill((pid_t)pid, 0) != 0 && errno == ESRCH))
            continue;  /* its process may still be writing it */
        char path[2 * CONFIG_PATH_MAX + 2];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (unlink(path) == 0)
            removed++;
    }
    closedir(d);
    if (removed > 0) {
        char fields[1200];
        snprintf(fields, sizeof(fields), "\"model\":\"%.1000s\",\"files\":%d", cfg->model, removed);
        api_log_event(cfg->log_format, "info",
                      "removed stale temporary files of interrupted model saves", fields);
    }
    return removed;
}

/* Logs who may use the mutating endpoints; never the token itself. */
static void log_access(const mnistd_config *cfg)
{
    char fields[1200];
    if (cfg->token_len == 0) {
        api_log_event(cfg->log_format, "info",
                      "no API token configured: every endpoint is open (set --token-file or "
                      "MNISTD_TOKEN to protect POST /train and DELETE /train/{id})", NULL);
        return;
    }
    snprintf(fields, sizeof(fields), "\"token_source\":\"%.1000s\"", cfg->token_source);
    api_log_event(cfg->log_format, "info",
                  "API token configured: POST /train and DELETE /train/{id} need "
                  "'Authorization: Bearer <token>'", fields);
    if (cfg->token_warning[0])
        api_log_event(cfg->log_format, "warn", cfg->token_warning, fields);
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
    char fields[96];
    snprintf(fields, sizeof(fields), "\"job_id\":%d,\"shutdown_timeout_s\":%d", id, cfg->shutdown_timeout_s);
    struct timespec now, end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += cfg->shutdown_timeout_s;
    if (cfg->shutdown_timeout_s > 0) {
        api_log_event(cfg->log_format, "info", "shutting down: waiting for the training job", fields);
        for (;;) {
            jobs_get_stats(jb, &st);
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (st.running_id != id || now.tv_sec > end.tv_sec ||
                (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
                break;
            /* jobs.h has no timed wait: poll at 20 Hz (shutdown only). */
            struct timespec step = {0, 50 * 1000 * 1000};
            nanosleep(&step, NULL);
        }
    }
    jobs_get_stats(jb, &st);
    if (st.running_id == id) {
        api_log_event(cfg->log_format, "info", "shutting down: cancelling the training job", fields);
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

    /* Every thread created from here on inherits this mask; the main
     * thread takes the signals with sigwait. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    modelstore ms;
    batcher *b = NULL;
    api_server *srv = NULL;
    jobs *jb = NULL;
    metrics_init();
    if (modelstore_init(&ms) != 0) {
        fprintf(stderr, "mnistd: cannot initialise the model store\n");
        return 1;
    }
    log_access(&cfg);
    remove_stale_temps(&cfg);
    int loaded = load_model(&cfg, &ms);
    if (loaded < 0)
        goto done;
    jb = jobs_create(&ms, cfg.model, cfg.data, 0, cfg.job_history);
    if (!jb) {
        api_log_event(cfg.log_format, "error", "out of memory creating the job manager", NULL);
        goto done;
    }
    b = batcher_create(&ms, cfg.threads, cfg.max_batch, cfg.batch_timeout_us, cfg.max_queue, err, sizeof(err));
    if (!b) {
        api_log_event(cfg.log_format, "error", err, NULL);
        goto done;
    }
    srv = api_start(&cfg, &ms, b, jb, err, sizeof(err));
    if (!srv) {
        api_log_event(cfg.log_format, "error", err, NULL);
        goto done;
    }
    /* No model but data: the recipe trains one while the server already
     * answers (/healthz 200, /readyz 503, progress at GET /train/1). */
    if (loaded == 1 && cfg.data[0]) {
        train_config tc;
        train_config_default(&tc);
        int id = 0;
        if (jobs_submit(jb, &tc, "startup", &id, err, sizeof(err)) != JOBS_OK)
            api_log_event(cfg.log_format, "error", err, NULL);
        else {
            char f[64];
            snprintf(f, sizeof(f), "\"job_id\":%d", id);
            api_log_event(cfg.log_format, "info", "startup training job started", f);
        }
    }

    char fields[8192], cfgjson[6000], msg[160];
    char hostbuf[80];
    if (strchr(cfg.bind, ':'))
        snprintf(hostbuf, sizeof(hostbuf), "[%s]", cfg.bind);  /* IPv6 in a URL */
    else
        snprintf(hostbuf, sizeof(hostbuf), "%s", cfg.bind);
    config_to_json(&cfg, cfgjson, sizeof(cfgjson));
    snprintf(msg, sizeof(msg), "listening on http://%s:%d", hostbuf, api_port(srv));
    snprintf(fields, sizeof(fields), "\"address\":\"%s\",\"port\":%d,\"ready\":%s,\"config\":%s", cfg.bind,
             api_port(srv), modelstore_ready(&ms) ? "true" : "false", cfgjson);
    api_log_event(cfg.log_format, "info", msg, fields);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    snprintf(fields, sizeof(fields), "\"signal\":\"%s\"", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    api_log_event(cfg.log_format, "info", "shutting down: finishing queued predictions", fields);
    /* Order: stop taking connections (and answer /readyz 503 on open
     * ones), answer everything queued (which resumes every suspended
     * connection), end the training job (finished within the grace, or
     * cancelled), then close the HTTP side. */
    api_quiesce(srv);
    batcher_stop(b);
    stop_training(&cfg, jb);
    rc = 0;
done:
    api_stop(srv);
    /* cancels a running training job (it stops within one batch; nothing is
     * saved: a model file is only ever replaced by a finished job, atomically) */
    jobs_destroy(jb);
    batcher_free(b);
    modelstore_destroy(&ms);
    if (rc == 0)
        api_log_event(cfg.log_format, "info", "stopped", NULL);
    return rc;
}
