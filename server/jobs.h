/* server/jobs.h -- training jobs: one at a time, on their own thread, never
 * in the way of predictions.
 *
 * A job trains with model/train.h on the data directory's training set,
 * evaluates the result on its test set, and hands the model to the
 * lifecycle (server/lifecycle.h): saved as a new version, promoted to serve
 * as the job's policy says (saved before served: what is served is always on
 * disk too). The training thread runs at a lower CPU priority
 * (nice +JOBS_NICE) so that inference, which shares the cores, keeps its
 * latency. Jobs are cancellable between batches. A bounded history of
 * finished jobs is kept (oldest dropped first). All functions are
 * thread-safe. */
#ifndef MNISTD_JOBS_H
#define MNISTD_JOBS_H

#include <stddef.h>

#include "model/train.h"
#include "server/lifecycle.h"
#include "server/metrics.h"
#include "server/modelstore.h"

#define JOBS_NICE 10

typedef enum {
    JOB_QUEUED = 0,
    JOB_RUNNING,
    JOB_SUCCEEDED,
    JOB_FAILED,
    JOB_CANCELLED,
} job_status;

/* Name of a status as the API spells it ("queued", "running", ...). */
const char *job_status_name(job_status s);

/* Where a job's time goes, in order: waiting for its thread, loading the
 * data sets (the first job of a process), training, the test-set
 * evaluation, the int8 calibration and int8 test accuracy, saving and
 * promotion. */
typedef enum {
    JOB_PHASE_QUEUED = 0,
    JOB_PHASE_LOAD,
    JOB_PHASE_TRAIN,
    JOB_PHASE_EVALUATE,
    JOB_PHASE_QUANTIZE,
    JOB_PHASE_SAVE,
    JOB_NPHASES
} job_phase;

/* Name of a phase as the API spells it ("queued", "load", ...). */
const char *job_phase_name(job_phase p);

/* A snapshot of one job. */
typedef struct {
    int id;
    job_status status;
    train_config cfg;
    char reason[16];            /* "startup" or "api" */
    double created_at, started_at, finished_at; /* unix seconds, 0 = not yet */
    int epoch, epochs;          /* current epoch (1-based), total */
    int batch, batches;         /* batches done in this epoch, per epoch */
    int train_samples, val_samples;
    double loss, accuracy;      /* running means over the current epoch */
    double samples_per_sec;
    double elapsed, eta;        /* seconds; eta < 0 when unknown */
    int n_history;
    train_epoch history[TRAIN_MAX_EPOCHS];
    int has_test;               /* test figures below are set */
    double test_loss, test_accuracy;
    char model_version[32];     /* of the model it produced, "" if none */
    char error[640];            /* why it failed or was cancelled */
    promote_policy promote;     /* what happens to its model */
    int promoted;               /* 1 / 0, -1 until known */
    char promotion[512];        /* why (or not), with both accuracies */
    double phase_seconds[JOB_NPHASES]; /* < 0: the phase has not ended */
} job_info;

typedef struct jobs jobs;

/* model_path: where a finished job's model is saved; data_dir: the MNIST
 * directory ("" or NULL: none configured, jobs then fail with a clear
 * error); threads: training threads (0 = all cores); max_history: finished
 * jobs kept. store must outlive the manager. NULL on allocation failure. */
jobs *jobs_create(modelstore *store, const char *model_path, const char *data_dir,
                  int threads, int max_history);

/* From here on, a finished job's model goes through lc (a model repository,
 * promotion per the job's policy) instead of the plain model file, and
 * when state_dir is set ("" or NULL: no persistence) every job's record is
 * kept there (server/jobstore.h): the records found there now are loaded
 * (the newest max_history finished ones; a job that was running when its
 * process died becomes failed, "interrupted") and new ids continue after
 * them. Call before the first submit. lc must outlive the manager. */
void jobs_use_lifecycle(jobs *j, lifecycle *lc, const char *state_dir);

/* Cancels a running job, waits for its thread, frees everything. */
void jobs_destroy(jobs *j);

enum {
    JOBS_OK = 0,
    JOBS_ERROR = -1,        /* out of memory, or no thread could be started */
    JOBS_BUSY = -2,
    JOBS_NOT_FOUND = -3,
    JOBS_FINISHED = -4,
    JOBS_INVALID = -5,      /* a setting is out of range (train_config_check) */
};

/* Starts a job with cfg (checked with train_config_check). Returns JOBS_OK
 * with *id set; JOBS_BUSY with *id set to the job that is queued or running;
 * JOBS_INVALID with err naming the setting out of range; JOBS_ERROR with err
 * set when resources ran out (memory, threads: worth retrying later). */
int jobs_submit(jobs *j, const train_config *cfg, const char *reason, int *id,
                char *err, size_t errlen);
/* The same, with the job's promotion policy (jobs_submit: if_better). */
int jobs_submit_promote(jobs *j, const train_config *cfg, const char *reason, promote_policy promote,
                        int *id, char *err, size_t errlen);

/* Snapshot of job id into *out: JOBS_OK or JOBS_NOT_FOUND. */
int jobs_get(jobs *j, int id, job_info *out);

/* Snapshots of up to max jobs, newest first, into out; returns the count. */
int jobs_list(jobs *j, job_info *out, int max);

/* Asks job id to stop (it stops before its next batch). JOBS_OK,
 * JOBS_NOT_FOUND, or JOBS_FINISHED when it had already ended. */
int jobs_cancel(jobs *j, int id);

/* Waits until job id has ended (for tests and shutdown). JOBS_OK or
 * JOBS_NOT_FOUND. */
int jobs_wait(jobs *j, int id);

/* The counters and the running job, for /metrics (server/metrics.h). */
void jobs_get_stats(jobs *j, jobs_stats *out);

/* Data for /evaluate and /samples.png: the test set, loaded once and kept.
 * Returns NULL with err set when no data directory is configured or it does
 * not load. The set lives as long as the manager. */
const mnist_set *jobs_test_set(jobs *j, char *err, size_t errlen);

#endif
