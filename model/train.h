/* model/train.h -- training and evaluation with the reference recipe.
 *
 * Keras semantics: validation_split takes the LAST fraction of the training
 * set (not shuffled) for validation; the rest is reshuffled every epoch from
 * the seed; Adam(lr, 0.9, 0.999, eps 1e-7); sparse categorical cross-entropy;
 * the last batch of an epoch may be smaller. With the same seed, data and
 * thread count the resulting weights are identical bit for bit.
 *
 * With augmentation (train_config.augment, model/augment.h) each training
 * image is transformed as it is gathered into its batch, from a random
 * stream of its own seeded from the seed: the shuffle stays the recipe's and
 * the run stays reproducible. Without it the images are used as they are:
 * the reference recipe is unchanged. Validation and test images are never
 * transformed.
 *
 * Nothing here allocates inside the training loop: buffers are allocated once
 * by train_run before the first batch. */
#ifndef MNISTD_TRAIN_H
#define MNISTD_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "model/augment.h"
#include "model/checkpoint.h"
#include "model/mnist.h"

/* The ranges of the training settings, the same for the command line, the
 * API (openapi.yaml, TrainRequest) and the training loop. train_config_check
 * is the one place that applies them. */
#define TRAIN_MAX_EPOCHS  100        /* epochs: 1..TRAIN_MAX_EPOCHS */
#define TRAIN_MAX_BATCH   1024       /* batch_size: 1..TRAIN_MAX_BATCH */
#define TRAIN_MAX_LR      1.0        /* learning_rate: (0, TRAIN_MAX_LR] */
#define TRAIN_MAX_SPLIT   1.0        /* validation_split: [0, TRAIN_MAX_SPLIT) */
#define TRAIN_MAX_SEED    2147483647 /* seed: 0..TRAIN_MAX_SEED (2^31-1) */
#define TRAIN_MAX_LIMIT   100000000  /* limit: 0..TRAIN_MAX_LIMIT (0 = all samples) */
#define TRAIN_MAX_THREADS 64         /* threads: 0..TRAIN_MAX_THREADS (0 = all cores) */
/* augment.shift, .rotate, .scale, .thicken, .thin: [0, AUGMENT_MAX_*] (augment.h) */

typedef struct {
    int epochs;             /* default 5 */
    int batch_size;         /* default 64 */
    float learning_rate;    /* default 1e-3 */
    float validation_split; /* default 0.2 */
    uint64_t seed;          /* init and shuffle seed, default 1 */
    int limit;              /* use only the first `limit` training samples (0 = all) */
    int threads;            /* 0 = all cores */
    int init;               /* 1 = initialise params from seed first (default), 0 = fine-tune given params */
    augment_config augment; /* default: all 0, no augmentation */
} train_config;

void train_config_default(train_config *c);

/* The settings train_config_check checks, in the order it checks them. */
typedef enum {
    TRAIN_FIELD_NONE = 0,
    TRAIN_FIELD_EPOCHS,
    TRAIN_FIELD_BATCH_SIZE,
    TRAIN_FIELD_LEARNING_RATE,
    TRAIN_FIELD_VALIDATION_SPLIT,
    TRAIN_FIELD_SEED,
    TRAIN_FIELD_LIMIT,
    TRAIN_FIELD_THREADS,
    TRAIN_FIELD_AUG_SHIFT,
    TRAIN_FIELD_AUG_ROTATE,
    TRAIN_FIELD_AUG_SCALE,
    TRAIN_FIELD_AUG_THICKEN,
    TRAIN_FIELD_AUG_THIN,
} train_field;

/* The setting's name as the API spells it ("batch_size"; the augmentation
 * settings with their object, "augment.shift"); "" for TRAIN_FIELD_NONE. */
const char *train_field_name(train_field f);

/* Checks one value of setting f against its range: for the integer settings
 * also that it is whole, for the float settings (learning_rate,
 * validation_split) also the float it becomes (1e-50 is 0 as a float).
 * Returns 0, or -1 with err (may be NULL) set to the range, e.g. "epochs
 * must be an integer in 1..100". For callers that hold the value before it
 * is stored in a train_config (a JSON number, a parsed flag). */
int train_field_check(train_field f, double v, char *err, size_t errlen);

/* Checks every setting of c in the order of train_field. Returns 0, or -1
 * with *bad (may be NULL) naming the first setting out of range and err set
 * as train_field_check sets it. */
int train_config_check(const train_config *c, train_field *bad, char *err, size_t errlen);

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
 * training: architecture, mnistd version, creation time (UTC),
 * source (free text), the recipe as JSON, training seconds, the last epoch's
 * training and validation accuracy (last may be NULL) and the test loss and
 * accuracy (ev may be NULL). */
void train_fill_meta(ckpt_meta *meta, const train_config *cfg, const char *source,
                     double seconds, const train_epoch *last, const eval_result *ev);

#endif
