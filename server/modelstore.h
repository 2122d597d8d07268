/* server/modelstore.h -- the served model, reference counted and swappable.
 *
 * A served_model is immutable once published: its parameters, checkpoint
 * metadata and version never change. Whoever uses it (an inference batch,
 * the /model handler) takes a reference with modelstore_acquire and drops it
 * with model_release; the last release frees it. modelstore_publish swaps a
 * new model in atomically: batches already running keep the old one until
 * they release it, the next acquire gets the new one. So a model can be
 * replaced (by a training job that finishes) without disturbing a single
 * in-flight prediction. Readiness is simply "a model is published". */
#ifndef MNISTD_MODELSTORE_H
#define MNISTD_MODELSTORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "model/checkpoint.h"

typedef struct served_model {
    _Atomic int refs;
    float *params;          /* NET_NUM_PARAMS floats, 64-byte aligned, owned */
    ckpt_meta meta;         /* the checkpoint's metadata */
    char version[32];       /* content hash of the parameters, 16 hex digits */
    char source[1024];      /* where it came from (file path, or a job) */
    double accuracy;        /* test accuracy from the metadata, -1 if unknown */
    int has_int8;           /* the metadata carries int8 activation scales */
    float int8_scales[3];   /* those (QUANT_SCALES_KEY of model/quant.h) */
    double int8_accuracy;   /* the int8 model's test accuracy from the metadata, -1 if unknown */
    double loaded_at;       /* unix seconds */
} served_model;

/* Loads a checkpoint file into a new model holding one reference (the
 * caller's). NULL with err set on any failure (missing, corrupt, mismatched
 * file). */
served_model *model_load_file(const char *path, char *err, size_t errlen);

/* Makes a model from parameters in memory (copied) and metadata (copied, may
 * be NULL); source says where it came from. One reference, the caller's.
 * NULL on allocation failure. */
served_model *model_from_params(const float *params, const ckpt_meta *meta,
                                const char *source);

/* The version of a parameter set (NET_NUM_PARAMS floats): a 64-bit hash of
 * their bytes as 16 lowercase hex digits. The same weights always give the
 * same version. */
void model_version_of(const float *params, char out[32]);

/* Drops one reference; the last one frees the model. NULL is ignored. */
void model_release(served_model *m);

/* The store: one current model (or none). */
typedef struct {
    pthread_mutex_t mu;
    served_model *current;  /* holds one reference while published */
} modelstore;

int modelstore_init(modelstore *s);
/* Releases the current model and the lock. */
void modelstore_destroy(modelstore *s);

/* Returns the current model with a new reference for the caller (release it
 * with model_release), or NULL when no model is loaded. */
served_model *modelstore_acquire(modelstore *s);

/* Publishes m (taking over the caller's reference; NULL unpublishes) and
 * releases the previous model's store reference. */
void modelstore_publish(modelstore *s, served_model *m);

/* 1 if a model is published. */
int modelstore_ready(modelstore *s);

#endif
