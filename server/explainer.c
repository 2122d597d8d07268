/* server/explainer.c -- explanations on the shared job queue
 * (server/workq.h), one image per worker at a time: see explainer.h. */
#include "server/explainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/clock.h"

struct explainer {
    modelstore *ms;
    int nworkers;
    workq *q;
    explain_ctx **ctx;  /* one per worker */
};

/* Explains one job with the current model (the queue calls its callback
 * after). */
static void run_job(void *owner, int wi, workq_job **taken, int n)
{
    explainer *e = owner;
    (void)n;  /* always 1: max_take */
    explain_job *j = WORKQ_OWNER(explain_job, taken[0]);
    uint64_t t0 = clock_mono_ns();
    j->queue_us = (uint32_t)((t0 - j->q.enqueued_ns) / 1000);
    if (workq_late(&j->q, t0)) {
        j->q.status = WQ_DEADLINE;
        return;
    }
    served_model *m = modelstore_acquire(e->ms);
    if (!m) {
        j->q.status = WQ_NO_MODEL;
        return;
    }
    int r = explain_ig(e->ctx[wi], m->params, j->input, j->target, j->steps, &j->result);
    j->compute_us = (uint32_t)((clock_mono_ns() - t0) / 1000);
    memcpy(j->model_version, m->version, sizeof(j->model_version));
    j->q.status = r == 0 ? WQ_OK : WQ_ERROR;
    model_release(m);
}

explainer *explainer_create(modelstore *ms, int workers, int max_queue, int max_steps, char *err,
                            size_t errlen)
{
    if (workers < 1 || max_queue < 1 || max_steps < 1 || max_steps > EXPLAIN_STEPS_LIMIT) {
        snprintf(err, errlen, "explainer: invalid sizes");
        return NULL;
    }
    explainer *e = calloc(1, sizeof(*e));
    if (!e || !(e->ctx = calloc((size_t)workers, sizeof(*e->ctx)))) {
        free(e);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->ms = ms;
    e->nworkers = workers;
    for (int i = 0; i < workers; i++)
        if (!(e->ctx[i] = explain_ctx_create(max_steps, 1))) {
            snprintf(err, errlen, "out of memory for explanation buffers (explain-max-steps %d)",
                     max_steps);
            explainer_free(e);
            return NULL;
        }
    /* below the inference workers: see explainer.h */
    workq_config qc = {.workers = workers, .max_queue = max_queue, .max_take = 1, .fill_ns = 0,
                       .nice = EXPLAINER_NICE, .thread_name = "mnistd-explain", .run = run_job,
                       .owner = e};
    if (!(e->q = workq_create(&qc, err, errlen))) {
        explainer_free(e);
        return NULL;
    }
    return e;
}

workq *explainer_queue(explainer *e)
{
    return e->q;
}

int explainer_submit(explainer *e, explain_job *jobs, size_t stride, int n, uint64_t deadline_ns)
{
    return workq_submit(e->q, jobs ? &jobs->q : NULL, stride, n, deadline_ns);
}

int explainer_queue_depth(explainer *e)
{
    return workq_depth(e->q);
}

void explainer_stop(explainer *e)
{
    if (e)
        workq_stop(e->q);
}

void explainer_free(explainer *e)
{
    if (!e)
        return;
    workq_free(e->q);
    for (int i = 0; i < e->nworkers; i++)
        explain_ctx_free(e->ctx[i]);
    free(e->ctx);
    free(e);
}
