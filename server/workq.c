/* server/workq.c -- the bounded job queue and its workers: see workq.h. */
#include "server/workq.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "server/clock.h"

typedef struct {
    workq *q;
    int index;
    pthread_t thread;
    int started;
    workq_job **taken;  /* max_take */
} worker;

struct workq {
    workq_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    workq_job **ring;   /* max_queue places */
    int head, count;
    int computing;      /* jobs taken by workers, not yet answered */
    int busy;           /* workers running a batch */
    int filling;        /* workers waiting for their batch to fill */
    int stopping;       /* workq_stop ran: no new jobs, workers drain and exit */
    _Atomic int conns;
    worker *workers;
};

static struct timespec ts_of_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    return ts;
}

/* How many queued jobs a worker waits for (see workq.h): the open
 * connections not already in a running batch, shared among the workers that
 * are not computing, at most max_take. Waiting for all of them instead
 * would, with a fixed set of clients each waiting for its answer, gather
 * every client into one batch on one core while the other core idles. */
static int fill_target(const workq *q)
{
    int free_workers = q->cfg.workers - q->busy;  /* >= 1: the caller */
    int more = atomic_load_explicit(&q->conns, memory_order_relaxed) - q->computing;
    if (free_workers < 1)
        free_workers = 1;
    int target = more <= 0 ? 0 : (more + free_workers - 1) / free_workers;
    return target < q->cfg.max_take ? target : q->cfg.max_take;
}

/* Takes up to max_take jobs, waiting for a batch to fill as described in
 * the header. Called and returns with q->mu held; returns how many were
 * taken, 0 only when stopping with an empty queue. */
static int take(workq *q, workq_job **out)
{
    for (;;) {
        while (q->count == 0 && !q->stopping)
            pthread_cond_wait(&q->cond, &q->mu);
        if (q->count == 0)
            return 0;
        if (q->cfg.fill_ns > 0) {
            /* Never wait past the oldest job's deadline: it is answered
             * (504) as soon as it is due, not when the batch would fill. */
            const workq_job *oldest = q->ring[q->head];
            uint64_t until = oldest->enqueued_ns + q->cfg.fill_ns;
            if (oldest->deadline_ns && oldest->deadline_ns < until)
                until = oldest->deadline_ns;
            q->filling++;
            while (q->count > 0 && q->count < fill_target(q) && !q->stopping &&
                   clock_mono_ns() < until) {
                struct timespec ts = ts_of_ns(until);
                pthread_cond_timedwait(&q->cond, &q->mu, &ts);
            }
            q->filling--;
            if (q->count == 0)
                continue;  /* another worker took them */
        }
        /* Everything queued, up to max_take: a request's jobs are queued
         * together, so they share one run (one forward pass, one model). */
        int n = q->count < q->cfg.max_take ? q->count : q->cfg.max_take;
        for (int i = 0; i < n; i++) {
            out[i] = q->ring[q->head];
            q->head = (q->head + 1) % q->cfg.max_queue;
        }
        q->count -= n;
        q->computing += n;
        q->busy++;
        if (q->count > 0)
            pthread_cond_signal(&q->cond);  /* over max_take: another worker's */
        return n;
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    workq *q = w->q;
    /* Linux nice values are per thread. Lowering a priority needs no
     * privilege; a failure only costs the callers' ordering. */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), q->cfg.nice);
    pthread_setname_np(pthread_self(), q->cfg.thread_name);
    pthread_mutex_lock(&q->mu);
    for (;;) {
        int n = take(q, w->taken);
        if (n == 0)
            break;
        pthread_mutex_unlock(&q->mu);
        q->cfg.run(q->cfg.owner, w->index, w->taken, n);
        /* A callback may free its job: read nothing from a job after it. */
        for (int i = 0; i < n; i++) {
            workq_job *j = w->taken[i];
            j->done(j, j->user);
        }
        pthread_mutex_lock(&q->mu);
        q->computing -= n;
        q->busy--;
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

workq *workq_create(const workq_config *cfg, char *err, size_t errlen)
{
    if (cfg->workers < 1 || cfg->max_queue < 1 || cfg->max_take < 1 || !cfg->run) {
        snprintf(err, errlen, "%s: invalid sizes", cfg->thread_name);
        return NULL;
    }
    workq *q = calloc(1, sizeof(*q));
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    q->cfg = *cfg;
    atomic_init(&q->conns, 0);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int lock_ok = pthread_mutex_init(&q->mu, NULL) == 0;
    int cond_ok = pthread_cond_init(&q->cond, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!lock_ok || !cond_ok) {
        snprintf(err, errlen, "%s: cannot create lock", cfg->thread_name);
        if (lock_ok)
            pthread_mutex_destroy(&q->mu);
        if (cond_ok)
            pthread_cond_destroy(&q->cond);
        free(q);
        return NULL;
    }
    q->ring = calloc((size_t)cfg->max_queue, sizeof(*q->ring));
    q->workers = calloc((size_t)cfg->workers, sizeof(*q->workers));
    if (!q->ring || !q->workers) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < cfg->workers; i++) {
        q->workers[i].q = q;
        q->workers[i].index = i;
        if (!(q->workers[i].taken = calloc((size_t)cfg->max_take, sizeof(workq_job *)))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    for (int i = 0; i < cfg->workers; i++) {
        if (pthread_create(&q->workers[i].thread, NULL, worker_main, &q->workers[i]) != 0) {
            snprintf(err, errlen, "cannot start %s worker %d", cfg->thread_name, i);
            goto fail;
        }
        q->workers[i].started = 1;
    }
    return q;
fail:
    workq_free(q);
    return NULL;
}

int workq_submit(workq *q, workq_job *first, size_t stride, int n, uint64_t deadline_ns)
{
    uint64_t now = clock_mono_ns();
    pthread_mutex_lock(&q->mu);
    if (q->stopping) {
        pthread_mutex_unlock(&q->mu);
        return WORKQ_STOPPED;
    }
    if (n > q->cfg.max_queue - q->count) {
        pthread_mutex_unlock(&q->mu);
        return WORKQ_FULL;
    }
    for (int i = 0; i < n; i++) {
        workq_job *j = (workq_job *)(void *)((char *)first + (size_t)i * stride);
        j->enqueued_ns = now;
        j->deadline_ns = deadline_ns;
        q->ring[(q->head + q->count) % q->cfg.max_queue] = j;
        q->count++;
    }
    /* One waiter per submit: waking every worker for one job costs each of
     * the others a context switch for nothing. A worker waiting for its
     * batch to fill and an idle one share the condition; whichever wakes
     * takes or waits for the jobs, and the timed wait bounds the rest. */
    if (n == 1)
        pthread_cond_signal(&q->cond);
    else if (n > 1)
        pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
    return WORKQ_OK;
}

void workq_connections(workq *q, int delta)
{
    atomic_fetch_add_explicit(&q->conns, delta, memory_order_relaxed);
    if (delta >= 0 || q->cfg.fill_ns == 0)
        return;
    /* A worker waiting for company may now wait for less. */
    pthread_mutex_lock(&q->mu);
    if (q->filling > 0)
        pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
}

int workq_depth(workq *q)
{
    pthread_mutex_lock(&q->mu);
    int n = q->count;
    pthread_mutex_unlock(&q->mu);
    return n;
}

void workq_stop(workq *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    if (q->stopping) {
        pthread_mutex_unlock(&q->mu);
        return;
    }
    q->stopping = 1;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
    for (int i = 0; q->workers && i < q->cfg.workers; i++)
        if (q->workers[i].started) {
            pthread_join(q->workers[i].thread, NULL);
            q->workers[i].started = 0;
        }
}

void workq_free(workq *q)
{
    if (!q)
        return;
    workq_stop(q);
    for (int i = 0; q->workers && i < q->cfg.workers; i++)
        free(q->workers[i].taken);
    free(q->workers);
    free(q->ring);
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->mu);
    free(q);
}
