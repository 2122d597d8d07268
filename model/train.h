/* model/train.h -- training and evaluation with the reference recipe.
 *
 * Keras semantics: validation_split takes the LAST fraction of the training
 * set (not shuffled) for validation; the rest is reshuffled every epoch from
 * the seed; Adam(lr, 0.9, 0.999, eps 1e-7); sparse categorical cross-entropy;
 * the last batch of an epoch may be smaller. With the same seed, data and
 * thread count the resulting weights are identical bit for bit.
 *
 * Nothing here allocates inside the training loop: buffers are allocated once
 * by train_run before the first batch. */
#ifndef MNISTD_TRAIN_H
#define MNISTD_TRAIN_H

#include <stdint.h>

#include "model/checkpoint.h"
#include "model/mnist.h"

#define TRAIN_MAX_EPOCHS 1000

typedef struct {
    int epochs;             /* default 5 */
    int batch_size;         /* default 64, 1..1024 */
    float learning_rate;    /* default 1e-3 */
    float validation_split; /* default 0.2, in [0, 1) */
    uint64_t seed;          /* init and shuffle seed, default 1 */
    int limit;              /* use only the first `limit` training samples (0 = all) */
    int threads;            /* 0 = all cores */
    int init;               /* 1 = initialise params from seed first (default), 0 = fine-tune given params */
} train_config;

void train_config_default(train_config *c);

/* Metrics of one finished epoch. */
typedef struct {
    int epoch;              /* 1-based */
    double loss, accuracy;  /* mean over the epoch's training batches */
    double val_loss, val_accuracy; /* NAN when validation_split == 0 */
    double seconds;
} train_epoch;

typedef enum { TRAIN_EV_BATCH = 1, TRAIN_EV_EPOCH = 2 } train_event;

/* What the progress callback sees. */
typedef struct {
    train_event event;
    int epoch, epochs;      /* current epoch, 1-based */
    int batch, batches;     /* batches done in this epoch / per epoch */
    double loss, accuracy;  /* running means over this epoch so far */
    double samples_per_sec; /* training throughput so far */
    double elapsed;         /* seconds since start */
    const train_epoch *last;/* on TRAIN_EV_EPOCH: the epoch just finished */
} train_progress;

/* Called after each batch and each epoch. Return nonzero to cancel: training
 * stops before the next batch and train_run returns TRAIN_CANCELLED. */
typedef int (*train_callback)(const train_progress *p, void *user);

enum { TRAIN_OK = 0, TRAIN_ERROR = -1, TRAIN_CANCELLED = -2 };

/* Trains params (NET_NUM_PARAMS floats) on set per cfg. history (may be NULL)
 * receives up to max_history epochs. Returns TRAIN_OK, TRAIN_CANCELLED or
 * TRAIN_ERROR with err set. cb may be NULL. */
int train_run(float *params, const mnist_set *set, const train_config *cfg,
              train_callback cb, void *user, train_epoch *history,
              int max_history, char *err, size_t errlen);

/* Evaluation of params over a whole set. */
typedef struct {
    int n;
    double loss, accuracy;
    int confusion[10][10];  /* [true][predicted] */
    double precision[10], recall[10];
    double seconds, images_per_sec;
} eval_result;

/* Evaluates params on set[first, first+n) (n = 0: to the end). threads 0 =
 * all cores. Returns 0 or -1 with err set. */
int eval_run(const float *params, const mnist_set *set, int first, int n,
             int threads, eval_result *out, char *err, size_t errlen);

/* Fills meta (cleared first) with what a model file records about its
 * training: architecture, format, mnistd version, creation time (UTC),
 * source (free text), the recipe as JSON, training seconds, the last epoch's
 * training and validation accuracy (last may be NULL) and the test loss and
 * accuracy (ev may be NULL). */
void train_fill_meta(ckpt_meta *meta, const train_config *cfg, const char *source,
                     double seconds, const train_epoch *last, const eval_result *ev);

#endif
