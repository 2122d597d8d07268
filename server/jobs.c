/* server/jobs.c -- training jobs: see jobs.h. */
#include "server/jobs.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "model/checkpoint.h"
#include "model/mnist.h"
#include "model/net.h"
#include "model/quant.h"
#include "server/clock.h"
#include "server/log.h"
#include "server/jobstore.h"

typedef struct job {
    job_info info;
    atomic_int cancel;
} job;

struct jobs {
    pthread_mutex_t mu;
    pthread_cond_t done_cv;
    modelstore *store;
    lifecycle *lc;          /* where a finished job's model goes */
    lifecycle *own_lc;      /* the single-file lifecycle made by jobs_create */
    char state_dir[1024];   /* job records, "" = none */
    pthread_mutex_t persist_mu;
    char model_path[1024];
    char data_dir[1024];
    int threads, max_history;
    job **list;             /* oldest first */
    int n;
    int next_id;
    job *active;            /* queued or running, NULL if none */
    pthread_t thread;
    int thread_live;        /* a thread to join */
    long succeeded, failed, cancelled;
    /* data, loaded on first use and kept */
    pthread_mutex_t data_mu;
    mnist_set train, test;
    int have_train, have_test;
};

/* Records that phase p of a job ended now, having begun at *t0 (monotonic
 * seconds); moves *t0 to now. */
static void phase_end(jobs *j, job *jb, job_phase p, double *t0)
{
    double now = clock_mono_s();
    pthread_mutex_lock(&j->mu);
    jb->info.phase_seconds[p] = now - *t0;
    pthread_mutex_unlock(&j->mu);
    *t0 = now;
}

jobs *jobs_create(modelstore *store, const char *model_path, const char *data_dir, int threads,
                  int max_history)
{
    jobs *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    if (max_history < 1)
        max_history = 1;
    j->list = calloc((size_t)max_history + 1, sizeof(job *));
    if (!j->list) {
        free(j);
        return NULL;
    }
    pthread_mutex_init(&j->mu, NULL);
    pthread_mutex_init(&j->data_mu, NULL);
    pthread_mutex_init(&j->persist_mu, NULL);
    pthread_cond_init(&j->done_cv, NULL);
    j->store = store;
    snprintf(j->model_path, sizeof j->model_path, "%s", model_path ? model_path : "");
    snprintf(j->data_dir, sizeof j->data_dir, "%s", data_dir ? data_dir : "");
    j->threads = threads;
    j->max_history = max_history;
    j->next_id = 1;
    j->own_lc = lifecycle_create(store, NULL, j->model_path, 0);
    j->lc = j->own_lc;
    if (!j->own_lc) {
        jobs_destroy(j);
        return NULL;
    }
    return j;
}

static job *find(jobs *j, int id);

/* Writes a snapshot of job id's record to the state directory (best
 * effort: the job itself does not depend on it). Snapshots are written in
 * the order they are taken (persist_mu), so an older one never replaces a
 * newer one. Called without j->mu. */
static void persist(jobs *j, int id)
{
    if (!j->state_dir[0])
        return;
    job_info *snap = malloc(sizeof *snap);
    if (!snap)
        return;
    pthread_mutex_lock(&j->persist_mu);
    pthread_mutex_lock(&j->mu);
    job *jb = find(j, id);
    if (jb)
        *snap = jb->info;
    pthread_mutex_unlock(&j->mu);
    char err[256];
    if (jb)
        jobstore_save(j->state_dir, snap, err, sizeof err);
    pthread_mutex_unlock(&j->persist_mu);
    free(snap);
}

void jobs_use_lifecycle(jobs *j, lifecycle *lc, const char *state_dir)
{
    j->lc = lc ? lc : j->own_lc;
    snprintf(j->state_dir, sizeof j->state_dir, "%s", state_dir ? state_dir : "");
    if (!j->state_dir[0])
        return;
    job_info *all = NULL;
    int n = 0;
    if (jobstore_load(j->state_dir, &all, &n) != 0)
        return;
    /* The newest max_history records (sorted by id) are kept, the older
     * records removed; ids continue after the highest. */
    int first = n > j->max_history ? n - j->max_history : 0;
    for (int i = 0; i < n; i++) {
        if (all[i].id >= j->next_id)
            j->next_id = all[i].id + 1;
        if (i < first) {
            jobstore_remove(j->state_dir, all[i].id);
            continue;
        }
        job *jb = calloc(1, sizeof *jb);
        if (!jb)
            break;
        jb->info = all[i];
        if (jb->info.status <= JOB_RUNNING) {
            jb->info.status = JOB_FAILED;
            jb->info.finished_at = clock_wall();
            jb->info.eta = -1;
            snprintf(jb->info.error, sizeof jb->info.error,
                     "interrupted: the daemon stopped while this job was %s; it did not finish and its "
                     "model was not saved", all[i].status == JOB_RUNNING ? "running" : "queued");
            char err[256];
            jobstore_save(j->state_dir, &jb->info, err, sizeof err);
        }
        j->list[j->n++] = jb;
    }
    free(all);
}

void jobs_destroy(jobs *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    if (j->active)
        atomic_store(&j->active->cancel, 1);
    int live = j->thread_live;
    j->thread_live = 0;
    pthread_mutex_unlock(&j->mu);
    if (live)
        pthread_join(j->thread, NULL);
    for (int i = 0; i < j->n; i++)
        free(j->list[i]);
    free(j->list);
    lifecycle_destroy(j->own_lc);
    mnist_free(&j->train);
    mnist_free(&j->test);
    pthread_mutex_destroy(&j->mu);
    pthread_mutex_destroy(&j->data_mu);
    pthread_mutex_destroy(&j->persist_mu);
    pthread_cond_destroy(&j->done_cv);
    free(j);
}

/* Loads (once) the training or test set. Returns it or NULL with err set.
 * Both stay loaded once read (the training set is 47 MB): reading and
 * decompressing it again took 0.14 s of every job, 5% of a one-epoch job. */
static const mnist_set *get_set(jobs *j, int test, char *err, size_t errlen)
{
    const mnist_set *r = NULL;
    pthread_mutex_lock(&j->data_mu);
    if (!j->data_dir[0]) {
        snprintf(err, errlen, "no data directory configured (set --data or MNISTD_DATA to a "
                              "folder with the MNIST files; scripts/get-mnist.sh fetches them)");
    } else if (test) {
        if (!j->have_test && mnist_load_dir(&j->test, j->data_dir, "t10k", err, errlen) == 0)
            j->have_test = 1;
        r = j->have_test ? &j->test : NULL;
    } else {
        if (!j->have_train && mnist_load_dir(&j->train, j->data_dir, "train", err, errlen) == 0)
            j->have_train = 1;
        r = j->have_train ? &j->train : NULL;
    }
    pthread_mutex_unlock(&j->data_mu);
    return r;
}

const mnist_set *jobs_test_set(jobs *j, char *err, size_t errlen)
{
    return get_set(j, 1, err, errlen);
}

typedef struct {
    jobs *j;
    job *jb;
} run_args;

static int job_cb(const train_progress *p, void *user)
{
    run_args *a = user;
    jobs *j = a->j;
    job_info *in = &a->jb->info;
    pthread_mutex_lock(&j->mu);
    in->epoch = p->epoch;
    in->epochs = p->epochs;
    in->batch = p->batch;
    in->batches = p->batches;
    in->loss = p->loss;
    in->accuracy = p->accuracy;
    in->samples_per_sec = p->samples_per_sec;
    in->elapsed = p->elapsed;
    long done = (long)(p->epoch - 1) * p->batches + p->batch;
    long total = (long)p->epochs * p->batches;
    in->eta = done > 0 ? p->elapsed * (double)(total - done) / (double)done : -1.0;
    int epoch_end = p->event == TRAIN_EV_EPOCH && p->last && in->n_history < TRAIN_MAX_EPOCHS;
    if (epoch_end)
        in->history[in->n_history++] = *p->last;
    pthread_mutex_unlock(&j->mu);
    if (epoch_end)
        persist(j, a->jb->info.id);
    return atomic_load(&a->jb->cancel);
}

static void finish(jobs *j, job *jb, job_status st, const char *error)
{
    /* persist_mu first (its order before mu): the record written below is
     * the last of this job, and a later removal of it waits for it. */
    pthread_mutex_lock(&j->persist_mu);
    pthread_mutex_lock(&j->mu);
    jb->info.status = st;
    jb->info.finished_at = clock_wall();
    if (error)
        snprintf(jb->info.error, sizeof jb->info.error, "%s", error);
    if (st == JOB_SUCCEEDED) {
        j->succeeded++;
        jb->info.eta = 0;
    } else if (st == JOB_FAILED) {
        j->failed++;
    } else {
        j->cancelled++;
    }
    j->active = NULL;
    /* copied under the lock: once it is released the job may leave the history */
    job_info in = jb->info;
    pthread_cond_broadcast(&j->done_cv);
    pthread_mutex_unlock(&j->mu);
    char err[256];
    if (j->state_dir[0])
        jobstore_save(j->state_dir, &in, err, sizeof err);
    pthread_mutex_unlock(&j->persist_mu);
    if (st == JOB_SUCCEEDED)
        log_event(LOG_INFO, "training job succeeded", LOG_INT("job_id", in.id), LOG_STR("reason", in.reason),
                  LOG_STR("model_version", in.model_version), LOG_DBL("test_accuracy", in.test_accuracy),
                  LOG_DBL("seconds", in.finished_at - in.started_at),
                  LOG_DBL("load_s", in.phase_seconds[JOB_PHASE_LOAD]),
                  LOG_DBL("train_s", in.phase_seconds[JOB_PHASE_TRAIN]),
                  LOG_DBL("evaluate_s", in.phase_seconds[JOB_PHASE_EVALUATE]),
                  LOG_DBL("quantize_s", in.phase_seconds[JOB_PHASE_QUANTIZE]),
                  LOG_DBL("save_s", in.phase_seconds[JOB_PHASE_SAVE]));
    else
        log_event(st == JOB_FAILED ? LOG_ERROR : LOG_INFO,
                  st == JOB_FAILED ? "training job failed" : "training job cancelled", LOG_INT("job_id", in.id),
                  LOG_STR("reason", in.reason), LOG_STR("error", in.error));
}

/* Load data, train, evaluate, save, publish. */
static void *job_run(void *arg)
{
    run_args a = *(run_args *)arg;
    free(arg);
    jobs *j = a.j;
    job *jb = a.jb;
    char err[512];
    float *params = NULL;

    /* Lower priority for this thread and the pool threads it creates (Linux
     * nice values are per thread and inherited). */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), JOBS_NICE);
    pthread_setname_np(pthread_self(), "mnistd-train");

    pthread_mutex_lock(&j->mu);
    jb->info.status = JOB_RUNNING;
    jb->info.started_at = clock_wall();
    jb->info.phase_seconds[JOB_PHASE_QUEUED] = jb->info.started_at - jb->info.created_at;
    double t_phase = clock_mono_s();
    train_config cfg = jb->info.cfg;
    pthread_mutex_unlock(&j->mu);
    log_event(LOG_INFO, "training job started", LOG_INT("job_id", jb->info.id), LOG_STR("reason", jb->info.reason),
              LOG_INT("epochs", cfg.epochs), LOG_INT("batch_size", cfg.batch_size), LOG_INT("limit", cfg.limit));
    persist(j, jb->info.id);

    const mnist_set *train = get_set(j, 0, err, sizeof err);
    if (!train) {
        finish(j, jb, JOB_FAILED, err);
        return NULL;
    }
    const mnist_set *test = get_set(j, 1, err, sizeof err);
    if (!test) {
        finish(j, jb, JOB_FAILED, err);
        return NULL;
    }
    phase_end(j, jb, JOB_PHASE_LOAD, &t_phase);
    int total = cfg.limit > 0 && cfg.limit < train->n ? cfg.limit : train->n;
    pthread_mutex_lock(&j->mu);
    jb->info.val_samples = (int)((double)total * cfg.validation_split);
    jb->info.train_samples = total - jb->info.val_samples;
    pthread_mutex_unlock(&j->mu);

    params = calloc(NET_NUM_PARAMS, sizeof(float));
    if (!params) {
        finish(j, jb, JOB_FAILED, "out of memory");
        return NULL;
    }
    double t0 = clock_wall();
    int rc = train_run(params, train, &cfg, job_cb, &a, NULL, 0, err, sizeof err);
    if (rc == TRAIN_CANCELLED) {
        free(params);
        finish(j, jb, JOB_CANCELLED, "cancelled");
        return NULL;
    }
    if (rc != TRAIN_OK) {
        free(params);
        finish(j, jb, JOB_FAILED, err);
        return NULL;
    }
    double train_secs = clock_wall() - t0;
    phase_end(j, jb, JOB_PHASE_TRAIN, &t_phase);
    eval_result ev;
    if (eval_run(params, test, 0, 0, cfg.threads, &ev, err, sizeof err) != 0) {
        free(params);
        finish(j, jb, JOB_FAILED, err);
        return NULL;
    }
    if (atomic_load(&jb->cancel)) {
        free(params);
        finish(j, jb, JOB_CANCELLED, "cancelled");
        return NULL;
    }
    phase_end(j, jb, JOB_PHASE_EVALUATE, &t_phase);

    ckpt_meta meta;
    char buf[128];
    snprintf(buf, sizeof buf, "mnistd serve, training job %d (%s)", jb->info.id, jb->info.reason);
    pthread_mutex_lock(&j->mu);
    train_epoch last = jb->info.n_history > 0 ? jb->info.history[jb->info.n_history - 1] : (train_epoch){0};
    int have_last = jb->info.n_history > 0;
    promote_policy policy = jb->info.promote;
    jb->info.has_test = 1;
    jb->info.test_loss = ev.loss;
    jb->info.test_accuracy = ev.accuracy;
    pthread_mutex_unlock(&j->mu);
    train_fill_meta(&meta, &cfg, buf, train_secs, have_last ? &last : NULL, &ev);
    if (quant_fill_meta(&meta, params, train, test, cfg.threads, err, sizeof err) != 0)
        log_event(LOG_WARN, "the trained model has no int8 scales", LOG_STR("error", err));
    phase_end(j, jb, JOB_PHASE_QUANTIZE, &t_phase);
    snprintf(buf, sizeof buf, "%d", jb->info.id);
    ckpt_meta_set(&meta, "job_id", buf);
    snprintf(buf, sizeof buf, "training job %d", jb->info.id);

    /* Saved, then promoted or not as the job's policy says (lifecycle.h). */
    lifecycle_outcome out;
    rc = lifecycle_job_model(j->lc, params, &meta, buf, policy, ev.accuracy, test, cfg.threads, &out, err,
                             sizeof err);
    free(params);
    phase_end(j, jb, JOB_PHASE_SAVE, &t_phase);
    pthread_mutex_lock(&j->mu);
    snprintf(jb->info.model_version, sizeof jb->info.model_version, "%s", out.version);
    if (rc == 0) {
        jb->info.promoted = out.promoted;
        snprintf(jb->info.promotion, sizeof jb->info.promotion, "%s", out.promotion);
    }
    pthread_mutex_unlock(&j->mu);
    finish(j, jb, rc == 0 ? JOB_SUCCEEDED : JOB_FAILED, rc == 0 ? NULL : err);
    return NULL;
}

int jobs_submit(jobs *j, const train_config *cfg, const char *reason, int *id, char *err,
                size_t errlen)
{
    return jobs_submit_promote(j, cfg, reason, PROMOTE_IF_BETTER, id, err, errlen);
}

int jobs_submit_promote(jobs *j, const train_config *cfg, const char *reason, promote_policy promote,
                        int *id, char *err, size_t errlen)
{
    if (train_config_check(cfg, NULL, err, errlen) != 0)
        return JOBS_INVALID;
    int dropped = 0;  /* a finished job dropped from the history: its record goes too */
    pthread_mutex_lock(&j->mu);
    if (j->active) {
        /* Copied under the lock: once it is released the job may end and
         * j->active become NULL. */
        *id = j->active->info.id;
        job_status st = j->active->info.status;
        pthread_mutex_unlock(&j->mu);
        snprintf(err, errlen, "training job %d is still %s", *id, job_status_name(st));
        return JOBS_BUSY;
    }
    /* the previous job's thread has finished (active is NULL): reap it */
    if (j->thread_live) {
        pthread_join(j->thread, NULL);
        j->thread_live = 0;
    }
    job *jb = calloc(1, sizeof(*jb));
    run_args *a = malloc(sizeof(*a));
    if (!jb || !a) {
        free(jb);
        free(a);
        pthread_mutex_unlock(&j->mu);
        snprintf(err, errlen, "out of memory");
        return JOBS_ERROR;
    }
    jb->info.id = j->next_id;
    jb->info.status = JOB_QUEUED;
    jb->info.cfg = *cfg;
    jb->info.cfg.init = 1;
    jb->info.cfg.threads = j->threads;
    snprintf(jb->info.reason, sizeof jb->info.reason, "%s", reason ? reason : "api");
    jb->info.created_at = clock_wall();
    jb->info.epochs = cfg->epochs;
    jb->info.eta = -1;
    jb->info.promote = promote;
    jb->info.promoted = -1;
    for (int p = 0; p < JOB_NPHASES; p++)
        jb->info.phase_seconds[p] = -1;
    a->j = j;
    a->jb = jb;
    int e = pthread_create(&j->thread, NULL, job_run, a);
    if (e != 0) {
        free(jb);
        free(a);
        pthread_mutex_unlock(&j->mu);
        snprintf(err, errlen, "cannot start a training thread: %s", strerror(e));
        return JOBS_ERROR;
    }
    j->thread_live = 1;
    j->next_id++;
    j->active = jb;
    /* bounded history: drop the oldest finished job */
    if (j->n == j->max_history) {
        int drop = -1;
        for (int i = 0; i < j->n && drop < 0; i++)
            if (j->list[i] != jb && j->list[i]->info.status >= JOB_SUCCEEDED)
                drop = i;
        if (drop >= 0) {
            dropped = j->list[drop]->info.id;
            free(j->list[drop]);
            memmove(j->list + drop, j->list + drop + 1, sizeof(job *) * (size_t)(j->n - drop - 1));
            j->n--;
        }
    }
    j->list[j->n++] = jb;
    *id = jb->info.id;
    pthread_mutex_unlock(&j->mu);
    if (dropped > 0 && j->state_dir[0]) {
        pthread_mutex_lock(&j->persist_mu);
        jobstore_remove(j->state_dir, dropped);
        pthread_mutex_unlock(&j->persist_mu);
    }
    persist(j, *id);
    return JOBS_OK;
}

static job *find(jobs *j, int id)
{
    for (int i = 0; i < j->n; i++)
        if (j->list[i]->info.id == id)
            return j->list[i];
    return NULL;
}

int jobs_get(jobs *j, int id, job_info *out)
{
    pthread_mutex_lock(&j->mu);
    job *jb = find(j, id);
    if (jb)
        *out = jb->info;
    pthread_mutex_unlock(&j->mu);
    return jb ? JOBS_OK : JOBS_NOT_FOUND;
}

int jobs_list(jobs *j, job_info *out, int max)
{
    int k = 0;
    pthread_mutex_lock(&j->mu);
    for (int i = j->n - 1; i >= 0 && k < max; i--)
        out[k++] = j->list[i]->info;
    pthread_mutex_unlock(&j->mu);
    return k;
}

int jobs_cancel(jobs *j, int id)
{
    int rc;
    pthread_mutex_lock(&j->mu);
    job *jb = find(j, id);
    if (!jb)
        rc = JOBS_NOT_FOUND;
    else if (jb->info.status >= JOB_SUCCEEDED)
        rc = JOBS_FINISHED;
    else {
        atomic_store(&jb->cancel, 1);
        rc = JOBS_OK;
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

int jobs_wait(jobs *j, int id)
{
    pthread_mutex_lock(&j->mu);
    job *jb = find(j, id);
    if (!jb) {
        pthread_mutex_unlock(&j->mu);
        return JOBS_NOT_FOUND;
    }
    while (jb->info.status < JOB_SUCCEEDED)
        pthread_cond_wait(&j->done_cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
    return JOBS_OK;
}

void jobs_get_stats(jobs *j, jobs_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&j->mu);
    out->succeeded = j->succeeded;
    out->failed = j->failed;
    out->cancelled = j->cancelled;
    if (j->active) {
        const job_info *in = &j->active->info;
        out->running_id = in->id;
        out->epoch = in->epoch;
        out->epochs = in->epochs;
        out->batch = in->batch;
        out->batches = in->batches;
        out->loss = in->loss;
        out->accuracy = in->accuracy;
        out->samples_per_sec = in->samples_per_sec;
        if (in->epochs > 0 && in->batches > 0)
            out->progress = ((double)(in->epoch - 1) * in->batches + in->batch) /
                            ((double)in->epochs * in->batches);
    }
    pthread_mutex_unlock(&j->mu);
}
