/* server/explainer.c -- the explanation queue and its workers: see
 * explainer.h. */
#include "server/explainer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "server/clock.h"

typedef struct {
    explainer *e;
    pthread_t thread;
    int started;
    explain_ctx *ctx;
} worker;

struct explainer {
    modelstore *ms;
    int nworkers, max_queue, max_steps;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    explain_job **ring;  /* max_queue places */
    int head, count;
    int stopping;
    worker *workers;
};

/* Explains one job with the current model and calls its callback. */
static void run_job(worker *w, explain_job *j)
{
    uint64_t t0 = clock_mono_ns();
    j->queue_us = (uint32_t)((t0 - j->enqueued_ns) / 1000);
    if (j->deadline_ns && t0 > j->deadline_ns) {
        j->status = EJ_DEADLINE;
    } else {
        served_model *m = modelstore_acquire(w->e->ms);
        if (!m) {
            j->status = EJ_NO_MODEL;
        } else {
            int r = explain_ig(w->ctx, m->params, j->input, j->target, j->steps, &j->result);
            j->compute_us = (uint32_t)((clock_mono_ns() - t0) / 1000);
            memcpy(j->model_version, m->version, sizeof(j->model_version));
            j->status = r == 0 ? EJ_OK : EJ_ERROR;
            model_release(m);
        }
    }
    /* the callback may free the job: nothing is read from it after */
    j->done(j, j->user);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    explainer *e = w->e;
    /* below the inference workers: see explainer.h */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), EXPLAINER_NICE);
    pthread_setname_np(pthread_self(), "mnistd-explain");
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (e->count == 0 && !e->stopping)
            pthread_cond_wait(&e->cond, &e->mu);
        if (e->count == 0)
            break;
        explain_job *j = e->ring[e->head];
        e->head = (e->head + 1) % e->max_queue;
        e->count--;
        pthread_mutex_unlock(&e->mu);
        run_job(w, j);
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

explainer *explainer_create(modelstore *ms, int workers, int max_queue, int max_steps, char *err,
                            size_t errlen)
{
    if (workers < 1 || max_queue < 1 || max_steps < 1 || max_steps > EXPLAIN_STEPS_LIMIT) {
        snprintf(err, errlen, "explainer: invalid sizes");
        return NULL;
    }
    explainer *e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->ms = ms;
    e->nworkers = workers;
    e->max_queue = max_queue;
    e->max_steps = max_steps;
    if (pthread_mutex_init(&e->mu, NULL) != 0) {
        free(e);
        snprintf(err, errlen, "explainer: cannot create lock");
        return NULL;
    }
    if (pthread_cond_init(&e->cond, NULL) != 0) {
        pthread_mutex_destroy(&e->mu);
        free(e);
        snprintf(err, errlen, "explainer: cannot create lock");
        return NULL;
    }
    e->ring = calloc((size_t)max_queue, sizeof(*e->ring));
    e->workers = calloc((size_t)workers, sizeof(*e->workers));
    if (!e->ring || !e->workers) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < workers; i++) {
        e->workers[i].e = e;
        e->workers[i].ctx = explain_ctx_create(max_steps, 1);
        if (!e->workers[i].ctx) {
            snprintf(err, errlen, "out of memory for explanation buffers (explain-max-steps %d)",
                     max_steps);
            goto fail;
        }
    }
    for (int i = 0; i < workers; i++) {
        if (pthread_create(&e->workers[i].thread, NULL, worker_main, &e->workers[i]) != 0) {
            snprintf(err, errlen, "cannot start explanation worker %d", i);
            goto fail;
        }
        e->workers[i].started = 1;
    }
    return e;
fail:
    explainer_free(e);
    return NULL;
}

int explainer_submit(explainer *e, explain_job **jobs, int n, uint64_t deadline_ns)
{
    uint64_t now = clock_mono_ns();
    pthread_mutex_lock(&e->mu);
    if (e->stopping) {
        pthread_mutex_unlock(&e->mu);
        return EXPLAINER_STOPPED;
    }
    if (n > e->max_queue - e->count) {
        pthread_mutex_unlock(&e->mu);
        return EXPLAINER_FULL;
    }
    for (int i = 0; i < n; i++) {
        explain_job *j = jobs[i];
        j->status = EJ_PENDING;
        j->enqueued_ns = now;
        j->deadline_ns = deadline_ns;
        e->ring[(e->head + e->count) % e->max_queue] = j;
        e->count++;
    }
    if (n == 1)
        pthread_cond_signal(&e->cond);
    else
        pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->mu);
    return EXPLAINER_OK;
}

int explainer_queue_depth(explainer *e)
{
    pthread_mutex_lock(&e->mu);
    int n = e->count;
    pthread_mutex_unlock(&e->mu);
    return n;
}

void explainer_stop(explainer *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->stopping = 1;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; i < e->nworkers; i++)
        if (e->workers[i].started) {
            pthread_join(e->workers[i].thread, NULL);
            e->workers[i].started = 0;
        }
}

void explainer_free(explainer *e)
{
    if (!e)
        return;
    if (e->workers)
        explainer_stop(e);
    for (int i = 0; e->workers && i < e->nworkers; i++)
        explain_ctx_free(e->workers[i].ctx);
    free(e->workers);
    free(e->ring);
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->mu);
    free(e);
}
