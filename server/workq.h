/* server/workq.h -- a bounded job queue and the worker threads that run it:
 * what the inference batcher (server/batcher.h) and the explainer
 * (server/explainer.h) have in common.
 *
 * A job is the caller's struct with a workq_job inside it. Submitting
 * queues n jobs at once, all or none, with one deadline; a submit that does
 * not fit is refused at once and leaves the jobs untouched. Each worker
 * takes up to max_take queued jobs, hands them to the owner's run function
 * (outside every lock), then calls each job's done callback. Nothing is
 * allocated after workq_create; the jobs belong to the caller and must stay
 * valid until their callback ran.
 *
 * Waiting for a batch to fill (fill_ns > 0): once a worker has at least one
 * job it waits at most fill_ns (counted from the oldest job's arrival, and
 * never past its deadline) for more, but only while more can come, and only
 * for its share: the open client connections (workq_connections) not in a
 * running batch, divided among the workers not running one. A connection
 * that closes wakes such a worker, since it may no longer have company to
 * wait for. With max_take 1 and fill_ns 0 it is a plain FIFO. */
#ifndef MNISTD_WORKQ_H
#define MNISTD_WORKQ_H

#include <stddef.h>
#include <stdint.h>

/* What became of a job (workq_job.status), set before its callback. */
typedef enum {
    WQ_PENDING = 0,
    WQ_OK,        /* the run function answered it: its results are set */
    WQ_DEADLINE,  /* the deadline passed before a worker reached it */
    WQ_NO_MODEL,  /* no model was loaded when its turn came */
    WQ_ERROR,     /* an internal error */
} workq_status;

typedef struct workq_job {
    workq_status status;   /* set by the run function */
    /* called once, by a worker, after the run function; it may free the job */
    void (*done)(struct workq_job *job, void *user);
    void *user;
    uint64_t enqueued_ns;  /* CLOCK_MONOTONIC, set by workq_submit */
    uint64_t deadline_ns;  /* CLOCK_MONOTONIC, set by workq_submit; 0 = none */
} workq_job;

/* The struct of type that holds the workq_job job as its member q. */
#define WORKQ_OWNER(type, job) ((type *)(void *)((char *)(job) - offsetof(type, q)))

/* Runs n taken jobs on worker number `worker` (0..workers-1) and sets their
 * results; the queue calls their callbacks after it. */
typedef void (*workq_run_fn)(void *owner, int worker, workq_job **jobs, int n);

typedef struct {
    int workers;              /* threads, >= 1 */
    int max_queue;            /* jobs queued at most, >= 1 */
    int max_take;             /* jobs a worker takes at once, >= 1 */
    uint64_t fill_ns;         /* wait for a batch to fill (see above); 0 = never */
    int nice;                 /* the workers' nice value (per thread) */
    const char *thread_name;  /* for top -H and ps */
    workq_run_fn run;
    void *owner;              /* run's first argument */
} workq_config;

typedef struct workq workq;

enum { WORKQ_OK = 0, WORKQ_FULL = -1, WORKQ_STOPPED = -2 };

/* Starts the workers. NULL with err set on a bad size, allocation or thread
 * failure. */
workq *workq_create(const workq_config *cfg, char *err, size_t errlen);

/* Queues the n jobs whose workq_job members lie stride bytes apart from
 * first (an array of the caller's structs), all or none, with the deadline
 * (0 = none). WORKQ_FULL if fewer than n places are free, WORKQ_STOPPED
 * after workq_stop began; the jobs are untouched then and no callback runs. */
int workq_submit(workq *q, workq_job *first, size_t stride, int n, uint64_t deadline_ns);

/* 1 when the job's deadline has passed at now_ns. */
static inline int workq_late(const workq_job *j, uint64_t now_ns)
{
    return j->deadline_ns && now_ns > j->deadline_ns;
}

/* A client connection opened (+1) or closed (-1): the company a filling
 * batch may wait for. */
void workq_connections(workq *q, int delta);

/* Jobs queued now (not yet taken by a worker). */
int workq_depth(workq *q);

/* Refuses new jobs, lets the workers finish every queued job, joins them.
 * Idempotent. NULL is ignored. */
void workq_stop(workq *q);

/* Stops (if not yet) and frees. NULL is ignored. */
void workq_free(workq *q);

#endif
