/* server/lifecycle.c -- the served model and its repository; see
 * lifecycle.h. */
#include "server/lifecycle.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "model/atomicfile.h"
#include "model/err.h"
#include "model/train.h"
#include "server/log.h"
#include "server/metrics.h"

struct lifecycle {
    modelstore *ms;
    repo *rp;
    char model_path[PATH_MAX];
    int keep;
    /* One change of the served model at a time: the record and the store
     * stay in step. */
    pthread_mutex_t change_mu;
    /* the accuracy of one version on the test set, measured here */
    char measured_version[32];
    double measured_accuracy;
    /* the watcher */
    pthread_mutex_t watch_mu;
    pthread_cond_t watch_cv;
    pthread_t watch_thread;
    int watch_live, watch_stop, watch_seconds;
    char watch_failed[32];  /* the version that last failed to load (its error is logged once) */
};

static void report_cb(void *user, const char *level, const char *msg, const char *path)
{
    (void)user;
    log_event(strcmp(level, "info") == 0 ? LOG_INFO : LOG_WARN, msg, LOG_STR("file", path));
}

lifecycle *lifecycle_create(modelstore *ms, repo *rp, const char *model_path, int keep)
{
    lifecycle *lc = calloc(1, sizeof *lc);
    if (!lc)
        return NULL;
    lc->ms = ms;
    lc->rp = rp;
    snprintf(lc->model_path, sizeof lc->model_path, "%s", model_path ? model_path : "");
    lc->keep = keep;
    pthread_mutex_init(&lc->change_mu, NULL);
    pthread_mutex_init(&lc->watch_mu, NULL);
    pthread_cond_init(&lc->watch_cv, NULL);
    return lc;
}

void lifecycle_destroy(lifecycle *lc)
{
    if (!lc)
        return;
    pthread_mutex_lock(&lc->watch_mu);
    lc->watch_stop = 1;
    pthread_cond_broadcast(&lc->watch_cv);
    int live = lc->watch_live;
    pthread_mutex_unlock(&lc->watch_mu);
    if (live)
        pthread_join(lc->watch_thread, NULL);
    repo_close(lc->rp);
    pthread_mutex_destroy(&lc->change_mu);
    pthread_mutex_destroy(&lc->watch_mu);
    pthread_cond_destroy(&lc->watch_cv);
    free(lc);
}

repo *lifecycle_repo(lifecycle *lc) { return lc->rp; }

int lifecycle_writable(lifecycle *lc) { return !lc->rp || repo_owner(lc->rp); }

const char *lifecycle_readonly_reason(lifecycle *lc)
{
    return lc->rp ? repo_lock_error(lc->rp) : "";
}

int lifecycle_version_count(lifecycle *lc)
{
    return lc->rp ? repo_list(lc->rp, NULL, 0, report_cb, lc) : 0;
}

/* ---- startup -------------------------------------------------------------- */

static int startup_file(lifecycle *lc)
{
    char err[512];
    struct stat st;
    if (stat(lc->model_path, &st) != 0 && errno == ENOENT)
        return 1;
    served_model *m = model_load_file(lc->model_path, err, sizeof err);
    if (!m) {
        char msg[700];
        snprintf(msg, sizeof msg, "cannot load the model file: %s", err);
        log_event(LOG_ERROR, msg, LOG_STR("model", lc->model_path));
        return -1;
    }
    log_event(LOG_INFO, "model loaded", LOG_STR("model", lc->model_path), LOG_STR("version", m->version));
    modelstore_publish(lc->ms, m);
    metrics_activation(MACT_STARTUP);
    return 0;
}

/* The active version could not be served: the message names the file and
 * the command that picks another version. */
static void refuse_active(lifecycle *lc, const char *what, const char *err)
{
    char msg[2400];
    snprintf(msg, sizeof msg,
             "%.900s: %.600s. Nothing was changed or deleted. List the versions with `mnistd models "
             "list --model-dir %.300s` and activate a good one with `mnistd models activate VERSION "
             "--model-dir %.300s`",
             what, err, repo_dir(lc->rp), repo_dir(lc->rp));
    log_event(LOG_ERROR, msg, LOG_STR("model_dir", repo_dir(lc->rp)));
}

/* An empty repository takes the seed file as its first version. */
static int seed_repo(lifecycle *lc, const char *seed)
{
    char err[512], version[32];
    served_model *m = model_load_file(seed, err, sizeof err);
    if (!m) {
        char msg[700];
        snprintf(msg, sizeof msg, "cannot load the model file to seed the repository with: %s", err);
        log_event(LOG_ERROR, msg, LOG_STR("model", seed));
        return -1;
    }
    if (repo_add(lc->rp, m->params, &m->meta, version, err, sizeof err) != REPO_OK ||
        repo_activate(lc->rp, version, "startup", err, sizeof err) != REPO_OK) {
        log_event(LOG_ERROR, err, LOG_STR("model", seed));
        model_release(m);
        return -1;
    }
    repo_version_path(lc->rp, version, m->source, sizeof m->source);
    log_event(LOG_INFO, "model repository seeded with the model file as its first version",
              LOG_STR("model", seed), LOG_STR("version", version), LOG_STR("model_dir", repo_dir(lc->rp)));
    modelstore_publish(lc->ms, m);
    metrics_activation(MACT_STARTUP);
    return 0;
}

int lifecycle_startup(lifecycle *lc, const char *seed)
{
    if (!lc->rp)
        return startup_file(lc);
    char err[600], path[PATH_MAX + 64];
    int removed = repo_remove_stale_temps(lc->rp);
    if (removed > 0)
        log_event(LOG_INFO, "removed stale temporary files of interrupted writes",
                  LOG_STR("model_dir", repo_dir(lc->rp)), LOG_INT("files", removed));
    if (!repo_owner(lc->rp))
        log_event(LOG_WARN, repo_lock_error(lc->rp), LOG_STR("model_dir", repo_dir(lc->rp)));
    int nversions = repo_list(lc->rp, NULL, 0, report_cb, lc);
    repo_active a;
    int rc = repo_read_active(lc->rp, &a, err, sizeof err);
    if (rc == REPO_ERROR) {
        refuse_active(lc, "the active record cannot be read", err);
        return -1;
    }
    if (rc == REPO_NONE) {
        if (seed && *seed && nversions == 0 && repo_owner(lc->rp)) {
            struct stat st;
            if (stat(seed, &st) == 0)
                return seed_repo(lc, seed);
        }
        if (nversions > 0) {
            log_event(LOG_WARN,
                      "the model repository has versions but none is active: nothing to serve until one is "
                      "activated (POST /models/VERSION/activate, or mnistd models activate)",
                      LOG_STR("model_dir", repo_dir(lc->rp)));
            return 2;
        }
        return 1;
    }
    repo_version_path(lc->rp, a.active, path, sizeof path);
    served_model *m = model_load_file(path, err, sizeof err);
    if (!m) {
        char what[PATH_MAX + 120];
        snprintf(what, sizeof what, "cannot load the active version %s (%.900s)", a.active, path);
        refuse_active(lc, what, err);
        return -1;
    }
    if (strcmp(m->version, a.active) != 0) {
        char what[PATH_MAX + 120], why[200];
        snprintf(what, sizeof what, "cannot serve the active version %s (%.900s)", a.active, path);
        snprintf(why, sizeof why, "the file holds version %s", m->version);
        model_release(m);
        refuse_active(lc, what, why);
        return -1;
    }
    log_event(LOG_INFO, "model loaded: the active version of the model repository",
              LOG_STR("model_dir", repo_dir(lc->rp)), LOG_STR("version", m->version),
              LOG_STR("previous", a.previous));
    modelstore_publish(lc->ms, m);
    metrics_activation(MACT_STARTUP);
    return 0;
}

/* ---- activation ----------------------------------------------------------- */

/* Loads version, replaces the record (when record), publishes. Called with
 * change_mu held. */
static int activate_locked(lifecycle *lc, const char *version, const char *reason, int record,
                           served_model **out, char *err, size_t errlen)
{
    char path[PATH_MAX + 64];
    int rc = repo_get(lc->rp, version, NULL, err, errlen);
    if (rc != REPO_OK)
        return rc;
    repo_version_path(lc->rp, version, path, sizeof path);
    served_model *m = model_load_file(path, err, errlen);
    if (!m)
        return errno == ENOENT ? REPO_NOT_FOUND : REPO_INVALID;
    if (strcmp(m->version, version) != 0) {
        err_set(err, errlen, "%s holds version %s, not %s", path, m->version, version);
        model_release(m);
        return REPO_INVALID;
    }
    if (record) {
        rc = repo_activate(lc->rp, version, reason, err, errlen);
        if (rc != REPO_OK) {
            model_release(m);
            return rc;
        }
    }
    if (out) {
        atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
        *out = m;
    }
    modelstore_publish(lc->ms, m);
    metrics_activation(strcmp(reason, "job") == 0 ? MACT_JOB
                       : strcmp(reason, "watch") == 0 ? MACT_WATCH
                       : strcmp(reason, "startup") == 0 ? MACT_STARTUP : MACT_API);
    log_event(LOG_INFO, "model activated", LOG_STR("version", version), LOG_STR("reason", reason));
    return REPO_OK;
}

int lifecycle_activate(lifecycle *lc, const char *version, const char *reason, served_model **out,
                       char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (!lc->rp) {
        err_set(err, errlen, "no model repository configured (--model-dir)");
        return REPO_NOT_FOUND;
    }
    if (!repo_owner(lc->rp)) {
        err_set(err, errlen, "%s", repo_lock_error(lc->rp));
        return REPO_NOT_OWNER;
    }
    pthread_mutex_lock(&lc->change_mu);
    int rc = activate_locked(lc, version, reason, 1, out, err, errlen);
    pthread_mutex_unlock(&lc->change_mu);
    return rc;
}

int lifecycle_delete(lifecycle *lc, const char *version, char *err, size_t errlen)
{
    if (!lc->rp) {
        err_set(err, errlen, "no model repository configured (--model-dir)");
        return REPO_NOT_FOUND;
    }
    pthread_mutex_lock(&lc->change_mu);
    int rc = repo_delete(lc->rp, version, err, errlen);
    pthread_mutex_unlock(&lc->change_mu);
    if (rc == REPO_OK)
        log_event(LOG_INFO, "model version deleted", LOG_STR("version", version));
    return rc;
}

/* ---- a training job's model --------------------------------------------- */

/* The active model's accuracy on test (measured once per version). -1 with
 * no active model. Called with change_mu held. */
static double active_accuracy(lifecycle *lc, const mnist_set *test, int threads, char *version,
                              char *err, size_t errlen, int *failed)
{
    *failed = 0;
    version[0] = '\0';
    served_model *m = modelstore_acquire(lc->ms);
    if (!m)
        return -1;
    snprintf(version, 32, "%s", m->version);
    if (strcmp(lc->measured_version, m->version) == 0) {
        model_release(m);
        return lc->measured_accuracy;
    }
    eval_result ev;
    int rc = eval_run(m->params, test, 0, 0, threads, &ev, err, errlen);
    model_release(m);
    if (rc != 0) {
        *failed = 1;
        return -1;
    }
    snprintf(lc->measured_version, sizeof lc->measured_version, "%s", version);
    lc->measured_accuracy = ev.accuracy;
    return ev.accuracy;
}

int lifecycle_job_model(lifecycle *lc, const float *params, const ckpt_meta *meta, const char *source,
                        promote_policy policy, double accuracy, const mnist_set *test, int threads,
                        lifecycle_outcome *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->active_accuracy = -1;
    model_version_of(params, out->version);
    if (lc->rp && !repo_owner(lc->rp)) {
        err_set(err, errlen, "%s", repo_lock_error(lc->rp));
        return -1;
    }
    int ret = -1;
    pthread_mutex_lock(&lc->change_mu);
    /* Saved first: every trained model is kept as a version. */
    if (lc->rp && repo_add(lc->rp, params, meta, out->version, err, errlen) != REPO_OK) {
        char e2[600];
        snprintf(e2, sizeof e2, "trained, but the model could not be saved (nothing was changed): %s", err);
        err_set(err, errlen, "%s", e2);
        goto done;
    }
    char active[32];
    int failed = 0;
    double act = active_accuracy(lc, test, threads, active, err, errlen, &failed);
    if (failed)
        goto done;
    out->active_accuracy = act;
    const char *kept = lc->rp ? "" : "; no model repository (--model-dir), so the model was not kept";
    switch (policy) {
    case PROMOTE_ALWAYS:
        out->promoted = 1;
        snprintf(out->promotion, sizeof out->promotion, "promote \"always\": test accuracy %.4f "
                 "(the active model %s had %.4f on the same test set)", accuracy, active[0] ? active : "none",
                 act);
        break;
    case PROMOTE_NEVER:
        out->promoted = 0;
        snprintf(out->promotion, sizeof out->promotion, "promote \"never\": test accuracy %.4f, the "
                 "active model %s %.4f on the same test set%s", accuracy, active, act, kept);
        break;
    case PROMOTE_IF_BETTER:
        if (!active[0]) {
            out->promoted = 1;
            snprintf(out->promotion, sizeof out->promotion,
                     "promote \"if_better\": no active model; test accuracy %.4f", accuracy);
        } else if (accuracy >= act) {
            out->promoted = 1;
            snprintf(out->promotion, sizeof out->promotion, "promote \"if_better\": test accuracy %.4f >= "
                     "%.4f of the active model %s on the same test set", accuracy, act, active);
        } else {
            out->promoted = 0;
            snprintf(out->promotion, sizeof out->promotion, "promote \"if_better\": test accuracy %.4f < "
                     "%.4f of the active model %s on the same test set: not promoted%s", accuracy, act,
                     active, kept);
        }
        break;
    }
    if (out->promoted) {
        if (lc->rp) {
            int rc = activate_locked(lc, out->version, "job", 1, NULL, err, errlen);
            if (rc != REPO_OK) {
                char e2[700];
                snprintf(e2, sizeof e2, "saved as version %s, but it could not be activated (the served "
                         "model is unchanged): %s", out->version, err);
                err_set(err, errlen, "%s", e2);
                goto done;
            }
        } else {
            if (lc->model_path[0] && ckpt_save(lc->model_path, params, meta, err, errlen) != 0) {
                char e2[600];
                snprintf(e2, sizeof e2, "trained, but the model could not be saved: %s", err);
                err_set(err, errlen, "%s", e2);
                goto done;
            }
            served_model *m = model_from_params(params, meta, lc->model_path[0] ? lc->model_path : source);
            if (!m) {
                err_set(err, errlen, "out of memory publishing the model");
                goto done;
            }
            modelstore_publish(lc->ms, m);
            metrics_activation(MACT_JOB);
        }
        snprintf(lc->measured_version, sizeof lc->measured_version, "%s", out->version);
        lc->measured_accuracy = accuracy;
    }
    metrics_promotion(out->promoted);
    ret = 0;
done:
    pthread_mutex_unlock(&lc->change_mu);
    if (ret == 0 && lc->rp)
        repo_retain(lc->rp, lc->keep, report_cb, lc);
    return ret;
}

/* ---- the watcher ---------------------------------------------------------- */

int lifecycle_watch_once(lifecycle *lc)
{
    if (!lc->rp)
        return 0;
    char err[600];
    repo_active a;
    if (repo_read_active(lc->rp, &a, err, sizeof err) != REPO_OK)
        return 0;
    served_model *m = modelstore_acquire(lc->ms);
    int same = m && strcmp(m->version, a.active) == 0;
    model_release(m);
    if (same)
        return 0;
    pthread_mutex_lock(&lc->change_mu);
    int rc = activate_locked(lc, a.active, "watch", 0, NULL, err, sizeof err);
    pthread_mutex_unlock(&lc->change_mu);
    if (rc != REPO_OK) {
        /* Tried again at every look (the trouble may pass), logged once. */
        if (strcmp(lc->watch_failed, a.active) != 0) {
            snprintf(lc->watch_failed, sizeof lc->watch_failed, "%s", a.active);
            char msg[800];
            snprintf(msg, sizeof msg, "the repository's new active version cannot be served; still "
                     "serving the previous one: %s", err);
            log_event(LOG_ERROR, msg, LOG_STR("version", a.active));
        }
        return -1;
    }
    lc->watch_failed[0] = '\0';
    return 1;
}

static void *watch_main(void *arg)
{
    lifecycle *lc = arg;
    pthread_setname_np(pthread_self(), "mnistd-watch");
    pthread_mutex_lock(&lc->watch_mu);
    while (!lc->watch_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += lc->watch_seconds;
        while (!lc->watch_stop && pthread_cond_timedwait(&lc->watch_cv, &lc->watch_mu, &until) != ETIMEDOUT)
            ;
        if (lc->watch_stop)
            break;
        pthread_mutex_unlock(&lc->watch_mu);
        lifecycle_watch_once(lc);
        pthread_mutex_lock(&lc->watch_mu);
    }
    pthread_mutex_unlock(&lc->watch_mu);
    return NULL;
}

int lifecycle_watch_start(lifecycle *lc, int seconds)
{
    if (!lc->rp || seconds <= 0)
        return 0;
    lc->watch_seconds = seconds;
    if (pthread_create(&lc->watch_thread, NULL, watch_main, lc) != 0)
        return -1;
    lc->watch_live = 1;
    return 0;
}
