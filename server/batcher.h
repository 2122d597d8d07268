/* server/batcher.h -- batched inference on a pool of workers.
 *
 * HTTP handlers never run the network themselves: they fill a batch_job per
 * image (its 784 input floats), submit the jobs with a deadline and return at
 * once. Each worker takes up to max_batch queued jobs, runs one forward pass
 * with the model current at the batch's start (a reference held for the
 * whole batch), writes each job's probabilities and timing, and calls each
 * job's done callback (from the worker thread, outside every lock).
 *
 * Waiting for a batch to fill: once a worker has at least one job it waits
 * at most batch_timeout_us for more, but only for the company that can
 * come: the open client connections (batcher_connections) not in a running
 * batch, shared among the idle workers (server/workq.h). A lone client
 * therefore never waits for company that cannot arrive, and a fixed set of
 * clients is split into one batch per worker instead of one batch that
 * leaves the other cores idle.
 *
 * Priority: workers run at nice +BATCHER_NICE, below the HTTP threads (0)
 * and above training (JOBS_NICE). Under load the HTTP threads, which decode
 * and queue requests, then keep the queue fed while a batch computes, so
 * the next batch is larger instead of the pipeline stalling; compute still
 * gets every cycle the HTTP threads leave.
 *
 * Everything is allocated by batcher_create: the queue (a ring of max_queue
 * job pointers) and, per worker, a net_ctx for max_batch images and its
 * input/output buffers. Submitting and running allocate nothing; the jobs
 * belong to the caller and must stay valid until their callback ran. */
#ifndef MNISTD_BATCHER_H
#define MNISTD_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "model/net.h"
#include "server/modelstore.h"
#include "server/workq.h"

typedef struct batch_job {
    float input[NET_IN_PIXELS];   /* set by the submitter */
    float probs[NET_CLASSES];     /* set by the worker on WQ_OK (q.status) */
    uint32_t queue_us;            /* arrival in the queue -> batch start */
    uint32_t compute_us;          /* the batch's forward pass */
    int batch_size;               /* images in the forward pass it was part of */
    char model_version[32];
    workq_job q;                  /* q.done and q.user set by the submitter; q.status
                                     WQ_OK: probs, timing and model_version are set,
                                     WQ_ERROR: the forward pass failed */
} batch_job;

#define BATCHER_NICE 5

typedef struct batcher batcher;

enum { BATCHER_OK = WORKQ_OK, BATCHER_FULL = WORKQ_FULL, BATCHER_STOPPED = WORKQ_STOPPED };

/* Starts workers threads, each with a single-threaded net_ctx. Returns NULL
 * with err set on a bad argument or allocation failure. */
batcher *batcher_create(modelstore *ms, int workers, int max_batch, int batch_timeout_us,
                        int max_queue, char *err, size_t errlen);

/* The queue the jobs go to: workq_submit queues n jobs (all or none) with
 * a deadline; BATCHER_FULL if fewer than n places are free, BATCHER_STOPPED
 * after batcher_stop began. batcher_submit does it for n jobs stride bytes
 * apart from jobs (an array of batch_job, or of structs that hold one). */
workq *batcher_queue(batcher *b);
int batcher_submit(batcher *b, batch_job *jobs, size_t stride, int n, uint64_t deadline_ns);

/* Batches run in int8 (model/quant.h) when on and the model carries int8
 * scales (served_model.has_int8), in FP32 otherwise. Off at creation. */
void batcher_set_int8(batcher *b, int on);

/* Tells the batcher a client connection opened (+1) or closed (-1). */
void batcher_connections(batcher *b, int delta);

/* Jobs queued now (not yet taken by a worker). */
int batcher_queue_depth(batcher *b);

/* Refuses new jobs, lets the workers finish every queued job, joins them.
 * Idempotent. */
void batcher_stop(batcher *b);

/* Stops (if not yet) and frees. NULL is ignored. */
void batcher_free(batcher *b);

#endif
