/* server/explainer.h -- explanations (Integrated Gradients, model/explain.h)
 * on their own bounded queue and workers, apart from the inference batcher.
 *
 * An explanation costs a batch of steps + 2 forward and backward passes:
 * about as much as a hundred predictions. So explanations never share the
 * inference queue or its workers: they wait in a queue of their own
 * (max_queue images; a submit that does not fit is refused at once), and
 * their workers run at nice +EXPLAINER_NICE, below the inference workers
 * (BATCHER_NICE) and above training (JOBS_NICE). However many explanations
 * are queued, a prediction waits only for the inference queue.
 *
 * Each worker explains one image at a time with the model current when it
 * starts (a reference held for that image) on one thread: the shared job
 * queue (server/workq.h) taking one job at a time, never waiting for a
 * batch to fill. Everything is
 * allocated by explainer_create; submitting and running allocate nothing.
 * The jobs belong to the caller and must stay valid until their callback
 * ran. */
#ifndef MNISTD_EXPLAINER_H
#define MNISTD_EXPLAINER_H

#include <stddef.h>
#include <stdint.h>

#include "model/explain.h"
#include "server/modelstore.h"
#include "server/workq.h"

#define EXPLAINER_NICE 8

typedef struct explain_job {
    float input[NET_IN_PIXELS];  /* set by the submitter */
    int target;                  /* 0..9, or -1: the predicted class */
    int steps;                   /* 1..max_steps */
    explain_result result;       /* set by the worker on WQ_OK (q.status) */
    uint32_t queue_us;           /* arrival in the queue -> its worker starts it */
    uint32_t compute_us;         /* the explanation itself */
    char model_version[32];
    workq_job q;                 /* q.done and q.user set by the submitter; q.status
                                    WQ_OK: result, timing and model_version are set,
                                    WQ_ERROR: a bad argument */
} explain_job;

typedef struct explainer explainer;

enum { EXPLAINER_OK = WORKQ_OK, EXPLAINER_FULL = WORKQ_FULL, EXPLAINER_STOPPED = WORKQ_STOPPED };

/* Starts workers threads, each able to explain with up to max_steps steps.
 * NULL with err set on a bad argument or allocation failure. */
explainer *explainer_create(modelstore *ms, int workers, int max_queue, int max_steps, char *err,
                            size_t errlen);

/* The queue the jobs go to (server/workq.h): workq_submit queues n jobs
 * (all or none) with a deadline; EXPLAINER_FULL if fewer than n places are
 * free, EXPLAINER_STOPPED after explainer_stop began. explainer_submit does
 * it for n jobs stride bytes apart from jobs (an array of explain_job, or
 * of structs that hold one). */
workq *explainer_queue(explainer *e);
int explainer_submit(explainer *e, explain_job *jobs, size_t stride, int n, uint64_t deadline_ns);

/* Images queued now (not yet started by a worker). */
int explainer_queue_depth(explainer *e);

/* Refuses new jobs, lets the workers finish every queued job, joins them.
 * Idempotent. NULL is ignored. */
void explainer_stop(explainer *e);

/* Stops (if not yet) and frees. NULL is ignored. */
void explainer_free(explainer *e);

#endif
