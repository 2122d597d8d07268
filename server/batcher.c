/* server/batcher.c -- inference on the shared job queue (server/workq.h):
 * each worker's batch is one forward pass. */
#include "server/batcher.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/mem.h"
#include "model/quant.h"
#include "server/clock.h"
#include "server/metrics.h"

typedef struct {
    net_ctx *ctx;
    qnet_ctx *qctx;     /* int8 (batcher_set_int8) */
    int qready;         /* qctx holds the prepared model in int8 */
    served_model *prepared; /* the model whose weights ctx holds packed, with a
                               reference, so that its address cannot be reused
                               by another model while it is remembered */
    float *x;           /* max_batch * 784 */
    float *probs;       /* max_batch * 10 */
    batch_job **run;    /* max_batch: the taken jobs still in time */
} worker;

struct batcher {
    modelstore *ms;
    int nworkers;
    workq *q;
    _Atomic int int8;   /* batcher_set_int8 */
    worker *workers;
};

/* Runs one batch: drops jobs past their deadline, runs the forward pass on
 * the rest with the current model and fills the jobs (the queue calls their
 * callbacks after). */
static void run_batch(void *owner, int wi, workq_job **taken, int n)
{
    batcher *b = owner;
    worker *w = &b->workers[wi];
    uint64_t t0 = clock_mono_ns();
    int k = 0;
    for (int i = 0; i < n; i++) {
        batch_job *j = WORKQ_OWNER(batch_job, taken[i]);
        j->queue_us = (uint32_t)((t0 - j->q.enqueued_ns) / 1000);
        metrics_queue_wait((double)(t0 - j->q.enqueued_ns) / 1e9);
        if (workq_late(&j->q, t0)) {
            j->q.status = WQ_DEADLINE;
            continue;
        }
        memcpy(w->x + (size_t)k * NET_IN_PIXELS, j->input, sizeof(j->input));
        w->run[k++] = j;
    }
    if (k == 0)
        return;
    served_model *m = modelstore_acquire(b->ms);
    if (!m) {
        for (int i = 0; i < k; i++)
            w->run[i]->q.status = WQ_NO_MODEL;
        return;
    }
    int keep = m != w->prepared;
    if (keep) {
        /* a new model: its weights are packed once, and this reference is
         * kept instead of released below */
        model_release(w->prepared);
        w->prepared = m;
        net_ctx_prepare(w->ctx, m->params);
        w->qready = m->has_int8 && qnet_prepare(w->qctx, m->params, m->int8_scales, NULL, 0) == 0;
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
            j->q.status = WQ_ERROR;
            continue;
        }
        memcpy(j->probs, w->probs + (size_t)i * NET_CLASSES, sizeof(j->probs));
        j->compute_us = (uint32_t)((c1 - c0) / 1000);
        j->batch_size = k;
        memcpy(j->model_version, m->version, sizeof(j->model_version));
        j->q.status = WQ_OK;
    }
    if (!keep)
        model_release(m);
}

batcher *batcher_create(modelstore *ms, int workers, int max_batch, int batch_timeout_us,
                        int max_queue, char *err, size_t errlen)
{
    if (workers < 1 || max_batch < 1 || max_queue < 1 || batch_timeout_us < 0) {
        snprintf(err, errlen, "batcher: invalid sizes");
        return NULL;
    }
    batcher *b = calloc(1, sizeof(*b));
    if (!b || !(b->workers = calloc((size_t)workers, sizeof(*b->workers)))) {
        free(b);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->ms = ms;
    b->nworkers = workers;
    for (int i = 0; i < workers; i++) {
        worker *w = &b->workers[i];
        w->ctx = net_ctx_create(max_batch, 1);
        w->qctx = qnet_ctx_create(max_batch, 1);
        w->x = mem_aligned((size_t)max_batch * NET_IN_PIXELS * sizeof(float));
        w->probs = mem_aligned((size_t)max_batch * NET_CLASSES * sizeof(float));
        w->run = calloc((size_t)max_batch, sizeof(*w->run));
        if (!w->ctx || !w->qctx || !w->x || !w->probs || !w->run) {
            snprintf(err, errlen, "out of memory for inference buffers (max-batch %d)", max_batch);
            batcher_free(b);
            return NULL;
        }
    }
    /* Workers run at nice +BATCHER_NICE: see batcher.h for why. */
    workq_config qc = {.workers = workers, .max_queue = max_queue, .max_take = max_batch,
                       .fill_ns = (uint64_t)batch_timeout_us * 1000ull, .nice = BATCHER_NICE,
                       .thread_name = "mnistd-infer", .run = run_batch, .owner = b};
    if (!(b->q = workq_create(&qc, err, errlen))) {
        batcher_free(b);
        return NULL;
    }
    return b;
}

workq *batcher_queue(batcher *b)
{
    return b->q;
}

int batcher_submit(batcher *b, batch_job *jobs, size_t stride, int n, uint64_t deadline_ns)
{
    return workq_submit(b->q, jobs ? &jobs->q : NULL, stride, n, deadline_ns);
}

void batcher_connections(batcher *b, int delta)
{
    workq_connections(b->q, delta);
}

int batcher_queue_depth(batcher *b)
{
    return workq_depth(b->q);
}

void batcher_stop(batcher *b)
{
    workq_stop(b->q);
}

void batcher_free(batcher *b)
{
    if (!b)
        return;
    workq_free(b->q);
    for (int i = 0; i < b->nworkers; i++) {
        worker *w = &b->workers[i];
        model_release(w->prepared);
        net_ctx_free(w->ctx);
        qnet_ctx_free(w->qctx);
        mem_free(w->x);
        mem_free(w->probs);
        free(w->run);
    }
    free(b->workers);
    free(b);
}

void batcher_set_int8(batcher *b, int on)
{
    atomic_store_explicit(&b->int8, on ? 1 : 0, memory_order_relaxed);
}
