/* server/batcher.c -- the inference queue and its workers. */
#include "server/batcher.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "model/mem.h"
#include "model/quant.h"
#include "server/clock.h"
#include "server/metrics.h"

typedef struct {
    batcher *b;
    pthread_t thread;
    int started;
    net_ctx *ctx;
    qnet_ctx *qctx;     /* int8 (batcher_set_int8) */
    int qready;         /* qctx holds the prepared model in int8 */
    served_model *prepared; /* the model whose weights ctx holds packed, with a
                               reference, so that its address cannot be reused
                               by another model while it is remembered */
    float *x;           /* max_batch * 784 */
    float *probs;       /* max_batch * 10 */
    batch_job **taken;  /* max_batch */
    batch_job **run;    /* max_batch: the taken jobs still in time */
} worker;

struct batcher {
    modelstore *ms;
    int nworkers, max_batch, max_queue;
    uint64_t batch_timeout_ns;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    batch_job **ring;   /* max_queue slots */
    int head, count;
    int computing;      /* jobs taken by workers, not yet answered */
    int busy;           /* workers running a batch */
    int stopping;       /* batcher_stop ran: no new jobs, workers drain and exit */
    _Atomic int conns;
    _Atomic int int8;   /* batcher_set_int8 */
    worker *workers;
};

static struct timespec ts_of_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    return ts;
}

/* How many queued jobs a worker waits for (see batcher.h): the open
 * connections not already in a running batch, shared among the workers that
 * are not computing, at most max_batch. Waiting for all of them instead
 * would, with a fixed set of clients each waiting for its answer, gather
 * every client into one batch on one core while the other core idles. */
static int fill_target(const batcher *b)
{
    int free_workers = b->nworkers - b->busy;  /* >= 1: the caller */
    int more = atomic_load_explicit(&b->conns, memory_order_relaxed) - b->computing;
    if (free_workers < 1)
        free_workers = 1;
    int target = more <= 0 ? 0 : (more + free_workers - 1) / free_workers;
    return target < b->max_batch ? target : b->max_batch;
}

/* Takes up to max_batch jobs, waiting for a batch to fill as described in
 * the header. Called and returns with b->mu held; returns how many were
 * taken, 0 only when stopping with an empty queue. */
static int take_batch(batcher *b, batch_job **out)
{
    for (;;) {
        while (b->count == 0 && !b->stopping)
            pthread_cond_wait(&b->cond, &b->mu);
        if (b->count == 0)
            return 0;
        if (b->batch_timeout_ns > 0) {
            /* Never wait past the oldest job's deadline: it is answered
             * (504) as soon as it is due, not when the batch would fill. */
            const batch_job *oldest = b->ring[b->head];
            uint64_t until = oldest->enqueued_ns + b->batch_timeout_ns;
            if (oldest->deadline_ns && oldest->deadline_ns < until)
                until = oldest->deadline_ns;
            while (b->count > 0 && b->count < fill_target(b) && !b->stopping &&
                   clock_mono_ns() < until) {
                struct timespec ts = ts_of_ns(until);
                pthread_cond_timedwait(&b->cond, &b->mu, &ts);
            }
            if (b->count == 0)
                continue;  /* another worker took them */
        }
        /* Everything queued, up to max_batch: a request's images are
         * queued together, so they share one forward pass and one model. */
        int n = b->count < b->max_batch ? b->count : b->max_batch;
        for (int i = 0; i < n; i++) {
            out[i] = b->ring[b->head];
            b->head = (b->head + 1) % b->max_queue;
        }
        b->count -= n;
        b->computing += n;
        b->busy++;
        if (b->count > 0)
            pthread_cond_signal(&b->cond);  /* over max_batch: another worker's */
        return n;
    }
}

/* Runs one batch: drops jobs past their deadline, runs the forward pass on
 * the rest with the current model, fills the jobs, calls their callbacks. */
static void run_batch(worker *w, int n)
{
    batcher *b = w->b;
    uint64_t t0 = clock_mono_ns();
    int k = 0;
    for (int i = 0; i < n; i++) {
        batch_job *j = w->taken[i];
        j->queue_us = (uint32_t)((t0 - j->enqueued_ns) / 1000);
        metrics_queue_wait((double)(t0 - j->enqueued_ns) / 1e9);
        if (j->deadline_ns && t0 > j->deadline_ns) {
            j->status = BJ_DEADLINE;
            continue;
        }
        memcpy(w->x + (size_t)k * NET_IN_PIXELS, j->input, sizeof(j->input));
        w->run[k++] = j;
    }
    if (k > 0) {
        served_model *m = modelstore_acquire(b->ms);
        if (!m) {
            for (int i = 0; i < k; i++)
                w->run[i]->status = BJ_NO_MODEL;
        } else {
            int keep = m != w->prepared;
            if (keep) {
                /* a new model: its weights are packed once, and this
                 * reference is kept instead of released below */
                model_release(w->prepared);
                w->prepared = m;
                net_ctx_prepare(w->ctx, m->params);
                w->qready = m->has_int8 &&
                            qnet_prepare(w->qctx, m->params, m->int8_scales, NULL, 0) == 0;
            }
            const int int8 = w->qready && atomic_load_explicit(&b->int8, memory_order_relaxed);
            uint64_t c0 = clock_mono_ns();
            int r = int8 ? qnet_forward(w->qctx, w->x, k, w->probs, NULL)
                         : net_forward(w->ctx, m->params, w->x, k, w->probs, NULL);
            uint64_t c1 = clock_mono_ns();
            metrics_batch(k, (double)(c1 - c0) / 1e9);
            for (int i = 0; i < k; i++) {
                batch_job *j = w->run[i];
                if (r != 0) {
                    j->status = BJ_ERROR;
                    continue;
                }
                memcpy(j->probs, w->probs + (size_t)i * NET_CLASSES, sizeof(j->probs));
                j->compute_us = (uint32_t)((c1 - c0) / 1000);
                j->batch_size = k;
                memcpy(j->model_version, m->version, sizeof(j->model_version));
                j->status = BJ_OK;
            }
            if (!keep)
                model_release(m);
        }
    }
    /* A callback may free its job: read nothing from a job after it. */
    for (int i = 0; i < n; i++) {
        batch_job *j = w->taken[i];
        j->done(j, j->user);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    batcher *b = w->b;
    /* Linux nice values are per thread (see batcher.h for why). Lowering a
     * priority needs no privilege; a failure only costs batch size. */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), BATCHER_NICE);
    pthread_setname_np(pthread_self(), "mnistd-infer");  /* for top -H and ps */
    pthread_mutex_lock(&b->mu);
    for (;;) {
        int n = take_batch(b, w->taken);
        if (n == 0)
            break;
        pthread_mutex_unlock(&b->mu);
        run_batch(w, n);
        pthread_mutex_lock(&b->mu);
        b->computing -= n;
        b->busy--;
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static void worker_free_buffers(worker *w)
{
    model_release(w->prepared);
    net_ctx_free(w->ctx);
    qnet_ctx_free(w->qctx);
    mem_free(w->x);
    mem_free(w->probs);
    free(w->taken);
    free(w->run);
}

batcher *batcher_create(modelstore *ms, int workers, int max_batch, int batch_timeout_us,
                        int max_queue, char *err, size_t errlen)
{
    if (workers < 1 || max_batch < 1 || max_queue < 1 || batch_timeout_us < 0) {
        snprintf(err, errlen, "batcher: invalid sizes");
        return NULL;
    }
    batcher *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->ms = ms;
    b->nworkers = workers;
    b->max_batch = max_batch;
    b->max_queue = max_queue;
    b->batch_timeout_ns = (uint64_t)batch_timeout_us * 1000ull;
    atomic_init(&b->conns, 0);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int lock_ok = pthread_mutex_init(&b->mu, NULL) == 0;
    int cond_ok = pthread_cond_init(&b->cond, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!lock_ok || !cond_ok) {
        snprintf(err, errlen, "batcher: cannot create lock");
        if (lock_ok)
            pthread_mutex_destroy(&b->mu);
        if (cond_ok)
            pthread_cond_destroy(&b->cond);
        free(b);
        return NULL;
    }
    b->ring = calloc((size_t)max_queue, sizeof(*b->ring));
    b->workers = calloc((size_t)workers, sizeof(*b->workers));
    if (!b->ring || !b->workers) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < workers; i++) {
        worker *w = &b->workers[i];
        w->b = b;
        w->ctx = net_ctx_create(max_batch, 1);
        w->qctx = qnet_ctx_create(max_batch, 1);
        w->x = mem_aligned((size_t)max_batch * NET_IN_PIXELS * sizeof(float));
        w->probs = mem_aligned((size_t)max_batch * NET_CLASSES * sizeof(float));
        w->taken = calloc((size_t)max_batch, sizeof(*w->taken));
        w->run = calloc((size_t)max_batch, sizeof(*w->run));
        if (!w->ctx || !w->qctx || !w->x || !w->probs || !w->taken || !w->run) {
            snprintf(err, errlen, "out of memory for inference buffers (max-batch %d)", max_batch);
            goto fail;
        }
    }
    for (int i = 0; i < workers; i++) {
        if (pthread_create(&b->workers[i].thread, NULL, worker_main, &b->workers[i]) != 0) {
            snprintf(err, errlen, "cannot start inference worker %d", i);
            goto fail;
        }
        b->workers[i].started = 1;
    }
    return b;
fail:
    batcher_free(b);
    return NULL;
}

int batcher_submit(batcher *b, batch_job **jobs, int n, uint64_t deadline_ns)
{
    uint64_t now = clock_mono_ns();
    pthread_mutex_lock(&b->mu);
    if (b->stopping) {
        pthread_mutex_unlock(&b->mu);
        return BATCHER_STOPPED;
    }
    if (n > b->max_queue - b->count) {
        pthread_mutex_unlock(&b->mu);
        return BATCHER_FULL;
    }
    for (int i = 0; i < n; i++) {
        batch_job *j = jobs[i];
        j->status = BJ_PENDING;
        j->enqueued_ns = now;
        j->deadline_ns = deadline_ns;
        b->ring[(b->head + b->count) % b->max_queue] = j;
        b->count++;
    }
    /* One waiter per submit: waking every worker for one job costs each of
     * the others a context switch for nothing. A worker waiting for its
     * batch to fill and an idle one share the condition; whichever wakes
     * takes or waits for the jobs, and the timed wait bounds the rest. */
    if (n == 1)
        pthread_cond_signal(&b->cond);
    else
        pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->mu);
    return BATCHER_OK;
}

void batcher_connections(batcher *b, int delta)
{
    atomic_fetch_add_explicit(&b->conns, delta, memory_order_relaxed);
}

int batcher_queue_depth(batcher *b)
{
    pthread_mutex_lock(&b->mu);
    int n = b->count;
    pthread_mutex_unlock(&b->mu);
    return n;
}

void batcher_stop(batcher *b)
{
    pthread_mutex_lock(&b->mu);
    if (b->stopping) {
        pthread_mutex_unlock(&b->mu);
        return;
    }
    b->stopping = 1;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < b->nworkers; i++)
        if (b->workers && b->workers[i].started) {
            pthread_join(b->workers[i].thread, NULL);
            b->workers[i].started = 0;
        }
}

void batcher_free(batcher *b)
{
    if (!b)
        return;
    batcher_stop(b);
    if (b->workers)
        for (int i = 0; i < b->nworkers; i++)
            worker_free_buffers(&b->workers[i]);
    free(b->workers);
    free(b->ring);
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

void batcher_set_int8(batcher *b, int on)
{
    atomic_store_explicit(&b->int8, on ? 1 : 0, memory_order_relaxed);
}
