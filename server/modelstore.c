/* server/modelstore.c -- reference-counted served models. */
#include "server/modelstore.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/mem.h"
#include "model/net.h"
#include "model/quant.h"
#include "server/clock.h"

/* The version is a hash of the parameter bytes (FNV-1a 64): the same weights
 * always give the same version, different weights (almost surely) not. */
void model_version_of(const float *params, char out[32])
{
    uint64_t h = 1469598103934665603ULL;
    const unsigned char *p = (const unsigned char *)params;
    for (size_t i = 0; i < (size_t)NET_NUM_PARAMS * sizeof(float); i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    snprintf(out, 32, "%016llx", (unsigned long long)h);
}

static void make_version(served_model *m)
{
    model_version_of(m->params, m->version);
}

static double meta_fraction(const served_model *m, const char *key)
{
    const char *a = ckpt_meta_get(&m->meta, key);
    char *end = NULL;
    double v = a ? strtod(a, &end) : -1;
    return (a && end != a && v >= 0 && v <= 1) ? v : -1;
}

/* The accuracies and int8 scales of the metadata (ckpt_load refused a file
 * with bad scales; metadata from memory without valid ones has none). */
static void read_accuracy(served_model *m)
{
    m->accuracy = meta_fraction(m, "test_accuracy");
    m->int8_accuracy = meta_fraction(m, QUANT_ACCURACY_KEY);
    m->has_int8 = quant_scales_parse(ckpt_meta_get(&m->meta, QUANT_SCALES_KEY), m->int8_scales, NULL, 0) == 0;
}

static served_model *model_alloc(void)
{
    served_model *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->params = mem_aligned((size_t)NET_NUM_PARAMS * sizeof(float));
    if (!m->params) {
        free(m);
        return NULL;
    }
    atomic_init(&m->refs, 1);
    m->loaded_at = clock_wall();
    return m;
}

static void model_free(served_model *m)
{
    mem_free(m->params);
    free(m);
}

served_model *model_load_file(const char *path, char *err, size_t errlen)
{
    served_model *m = model_alloc();
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (ckpt_load(path, m->params, &m->meta, err, errlen) != 0)
        goto fail;
    snprintf(m->source, sizeof(m->source), "%s", path);
    make_version(m);
    read_accuracy(m);
    return m;
fail:
    model_free(m);
    return NULL;
}

served_model *model_from_params(const float *params, const ckpt_meta *meta, const char *source)
{
    served_model *m = model_alloc();
    if (!m)
        return NULL;
    memcpy(m->params, params, (size_t)NET_NUM_PARAMS * sizeof(float));
    if (meta)
        m->meta = *meta;
    snprintf(m->source, sizeof(m->source), "%s", source ? source : "");
    make_version(m);
    read_accuracy(m);
    return m;
}

void model_release(served_model *m)
{
    if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        model_free(m);
}

int modelstore_init(modelstore *s)
{
    s->current = NULL;
    return pthread_mutex_init(&s->mu, NULL) == 0 ? 0 : -1;
}

void modelstore_destroy(modelstore *s)
{
    model_release(s->current);
    s->current = NULL;
    pthread_mutex_destroy(&s->mu);
}

/* The lock only covers reading the pointer and taking the reference, so a
 * publish cannot free the model between the two. */
served_model *modelstore_acquire(modelstore *s)
{
    pthread_mutex_lock(&s->mu);
    served_model *m = s->current;
    if (m)
        atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&s->mu);
    return m;
}

void modelstore_publish(modelstore *s, served_model *m)
{
    pthread_mutex_lock(&s->mu);
    served_model *old = s->current;
    s->current = m;
    pthread_mutex_unlock(&s->mu);
    model_release(old);
}

int modelstore_ready(modelstore *s)
{
    pthread_mutex_lock(&s->mu);
    int r = s->current != NULL;
    pthread_mutex_unlock(&s->mu);
    return r;
}
