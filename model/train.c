/* model/train.c -- the training loop and evaluation: see train.h. */
#include "model/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/err.h"
#include "model/layers.h"
#include "model/mem.h"
#include "model/net.h"
#include "model/rng.h"
#include "model/version.h"

#define EVAL_BATCH 256

void train_config_default(train_config *c)
{
    c->epochs = 5;
    c->batch_size = 64;
    c->learning_rate = 1e-3f;
    c->validation_split = 0.2f;
    c->seed = 1;
    c->limit = 0;
    c->threads = 0;
    c->init = 1;
    augment_config_off(&c->augment);
}

/* The range of each setting; see the TRAIN_MAX_* limits in train.h. */
static const struct {
    const char *name;
    double lo, hi;
    unsigned char lo_open, hi_open, integer; /* else a float */
} ranges[] = {
    [TRAIN_FIELD_NONE] = {"", 0, 0, 0, 0, 0},
    [TRAIN_FIELD_EPOCHS] = {"epochs", 1, TRAIN_MAX_EPOCHS, 0, 0, 1},
    [TRAIN_FIELD_BATCH_SIZE] = {"batch_size", 1, TRAIN_MAX_BATCH, 0, 0, 1},
    [TRAIN_FIELD_LEARNING_RATE] = {"learning_rate", 0, TRAIN_MAX_LR, 1, 0, 0},
    [TRAIN_FIELD_VALIDATION_SPLIT] = {"validation_split", 0, TRAIN_MAX_SPLIT, 0, 1, 0},
    [TRAIN_FIELD_SEED] = {"seed", 0, TRAIN_MAX_SEED, 0, 0, 1},
    [TRAIN_FIELD_LIMIT] = {"limit", 0, TRAIN_MAX_LIMIT, 0, 0, 1},
    [TRAIN_FIELD_THREADS] = {"threads", 0, TRAIN_MAX_THREADS, 0, 0, 1},
    [TRAIN_FIELD_AUG_SHIFT] = {"augment.shift", 0, AUGMENT_MAX_SHIFT, 0, 0, 0},
    [TRAIN_FIELD_AUG_ROTATE] = {"augment.rotate", 0, AUGMENT_MAX_ROTATE, 0, 0, 0},
    [TRAIN_FIELD_AUG_SCALE] = {"augment.scale", 0, AUGMENT_MAX_SCALE, 0, 0, 0},
    [TRAIN_FIELD_AUG_THICKEN] = {"augment.thicken", 0, AUGMENT_MAX_THICKEN, 0, 0, 0},
    [TRAIN_FIELD_AUG_THIN] = {"augment.thin", 0, AUGMENT_MAX_THIN, 0, 0, 0},
};
#define NFIELDS ((int)(sizeof ranges / sizeof ranges[0]))

const char *train_field_name(train_field f)
{
    return f > TRAIN_FIELD_NONE && (int)f < NFIELDS ? ranges[f].name : "";
}

int train_field_check(train_field f, double v, char *err, size_t errlen)
{
    if (f <= TRAIN_FIELD_NONE || (int)f >= NFIELDS) {
        err_set(err, errlen, "unknown training setting %d", (int)f);
        return -1;
    }
    const double lo = ranges[f].lo, hi = ranges[f].hi;
    /* Written so that NaN fails every comparison and is refused. The float
     * settings are checked as written and as the float they are stored as. */
    const double fv = ranges[f].integer ? v : (double)(float)v;
    int ok = (ranges[f].lo_open ? v > lo && fv > lo : v >= lo && fv >= lo) &&
             (ranges[f].hi_open ? v < hi && fv < hi : v <= hi && fv <= hi);
    if (ok && ranges[f].integer)
        ok = v == floor(v);
    if (ok)
        return 0;
    if (ranges[f].integer)
        err_set(err, errlen, "%s must be an integer in %.0f..%.0f", ranges[f].name, lo, hi);
    else
        err_set(err, errlen, "%s must be a number in %s%g, %g%s", ranges[f].name,
                ranges[f].lo_open ? "(" : "[", lo, hi, ranges[f].hi_open ? ")" : "]");
    return -1;
}

int train_config_check(const train_config *c, train_field *bad, char *err, size_t errlen)
{
    const double v[] = {
        [TRAIN_FIELD_NONE] = 0,
        [TRAIN_FIELD_EPOCHS] = c->epochs,
        [TRAIN_FIELD_BATCH_SIZE] = c->batch_size,
        [TRAIN_FIELD_LEARNING_RATE] = c->learning_rate,
        [TRAIN_FIELD_VALIDATION_SPLIT] = c->validation_split,
        [TRAIN_FIELD_SEED] = (double)c->seed,
        [TRAIN_FIELD_LIMIT] = c->limit,
        [TRAIN_FIELD_THREADS] = c->threads,
        [TRAIN_FIELD_AUG_SHIFT] = c->augment.shift,
        [TRAIN_FIELD_AUG_ROTATE] = c->augment.rotate,
        [TRAIN_FIELD_AUG_SCALE] = c->augment.scale,
        [TRAIN_FIELD_AUG_THICKEN] = c->augment.thicken,
        [TRAIN_FIELD_AUG_THIN] = c->augment.thin,
    };
    _Static_assert(sizeof v / sizeof v[0] == sizeof ranges / sizeof ranges[0],
                   "one value per training setting");
    for (int f = TRAIN_FIELD_NONE + 1; f < NFIELDS; f++) {
        if (train_field_check((train_field)f, v[f], err, errlen) != 0) {
            if (bad)
                *bad = (train_field)f;
            return -1;
        }
    }
    if (bad)
        *bad = TRAIN_FIELD_NONE;
    return 0;
}

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Gathers samples idx[0..n) as floats into x and their labels into y,
 * each image transformed by aug drawing from ar when aug is not NULL. */
static void gather(float *x, uint8_t *y, const mnist_set *s, const uint32_t *idx, int n,
                   const augment_config *aug, rng *ar)
{
    const int px = s->rows * s->cols;
    for (int i = 0; i < n; i++) {
        const uint8_t *src = s->images + (size_t)idx[i] * px;
        float *dst = x + (size_t)i * px;
        for (int k = 0; k < px; k++)
            dst[k] = (float)src[k] * (1.0f / 255.0f);
        if (aug)
            augment_random(dst, aug, ar);
        y[i] = s->labels[idx[i]];
    }
}

/* Loss and accuracy of params on samples [first, first+n) of s, using ctx
 * and the caller's buffers x (EVAL_BATCH*784), probs/logits (EVAL_BATCH*10).
 * If conf is not NULL it accumulates the confusion matrix. */
static void eval_range(net_ctx *ctx, const float *params, const mnist_set *s, int first, int n,
                       float *x, float *probs, float *logits, double *loss, int *correct,
                       int conf[10][10])
{
    double tl = 0.0;
    int ok = 0;
    for (int b = first; b < first + n; b += EVAL_BATCH) {
        int m = first + n - b < EVAL_BATCH ? first + n - b : EVAL_BATCH;
        mnist_to_float(s, b, m, x);
        net_forward(ctx, params, x, m, probs, logits);
        int c = 0;
        tl += softmax_xent_forward(probs, logits, s->labels + b, m, &c);
        ok += c;
        if (conf)
            for (int i = 0; i < m; i++)
                conf[s->labels[b + i]][net_argmax(probs + i * 10)]++;
    }
    *loss = tl;
    *correct = ok;
}

int train_run(float *params, const mnist_set *set, const train_config *cfg, train_callback cb,
              void *user, train_epoch *history, int max_history, char *err, size_t errlen)
{
    int rc = TRAIN_ERROR;
    net_train_ctx *tctx = NULL;
    net_ctx *ectx = NULL;
    float *grads = NULL, *m = NULL, *v = NULL, *x = NULL, *probs = NULL, *logits = NULL;
    uint8_t *y = NULL;
    uint32_t *order = NULL;

    if (!set || !set->images || set->rows * set->cols != NET_IN_PIXELS) {
        err_set(err, errlen, "training set is empty or not 28x28");
        return TRAIN_ERROR;
    }
    if (train_config_check(cfg, NULL, err, errlen) != 0)
        return TRAIN_ERROR;
    int total = set->n;
    if (cfg->limit > 0 && cfg->limit < total)
        total = cfg->limit;
    /* Keras: the validation set is the LAST fraction, taken before shuffling. */
    int nval = (int)((double)total * cfg->validation_split);
    int ntrain = total - nval;
    if (ntrain < 1) {
        err_set(err, errlen, "no training samples left (%d samples, validation_split %.3f)",
                 total, (double)cfg->validation_split);
        return TRAIN_ERROR;
    }
    const int bs = cfg->batch_size;
    const int batches = (ntrain + bs - 1) / bs;

    tctx = net_train_ctx_create(bs, cfg->threads);
    ectx = net_ctx_create(EVAL_BATCH, cfg->threads);
    grads = mem_aligned(sizeof(float) * NET_NUM_PARAMS);
    m = mem_aligned(sizeof(float) * NET_NUM_PARAMS);
    v = mem_aligned(sizeof(float) * NET_NUM_PARAMS);
    x = mem_aligned(sizeof(float) * NET_IN_PIXELS * (bs > EVAL_BATCH ? bs : EVAL_BATCH));
    probs = mem_aligned(sizeof(float) * 10 * EVAL_BATCH);
    logits = mem_aligned(sizeof(float) * 10 * EVAL_BATCH);
    y = mem_aligned((size_t)bs);
    order = mem_aligned(sizeof(uint32_t) * (size_t)ntrain);
    if (!tctx || !ectx || !grads || !m || !v || !x || !probs || !logits || !y || !order) {
        err_set(err, errlen, "out of memory allocating training buffers");
        goto done;
    }

    if (cfg->init)
        net_init(params, cfg->seed);
    rng r, ar;
    rng_seed(&r, cfg->seed ^ 0x5eed5eed5eedULL);
    /* Augmentation draws from its own stream: the shuffle is the recipe's. */
    rng_seed(&ar, cfg->seed ^ 0xa06e47a06e47ULL);
    const augment_config *aug = augment_enabled(&cfg->augment) ? &cfg->augment : NULL;
    for (int i = 0; i < ntrain; i++)
        order[i] = (uint32_t)i;

    const double t0 = now_sec();
    long step = 0;
    long seen = 0;
    for (int ep = 1; ep <= cfg->epochs; ep++) {
        const double te = now_sec();
        /* Keras reshuffles the training part every epoch. */
        for (int i = ntrain - 1; i > 0; i--) {
            uint32_t j = rng_below(&r, (uint32_t)i + 1);
            uint32_t tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
        double loss_sum = 0.0;
        long correct = 0, count = 0;
        for (int b = 0; b < batches; b++) {
            int n = ntrain - b * bs < bs ? ntrain - b * bs : bs;
            int ok = 0;
            gather(x, y, set, order + (size_t)b * bs, n, aug, &ar);
            float loss = net_train_grads(tctx, params, x, y, n, grads, NULL, &ok);
            step++;
            net_adam_step(params, grads, m, v, NET_NUM_PARAMS, cfg->learning_rate, 0.9f, 0.999f,
                          1e-7f, step);
            loss_sum += (double)loss * n;
            correct += ok;
            count += n;
            seen += n;
            if (!isfinite(loss)) {
                err_set(err, errlen, "training diverged: loss is %f at epoch %d batch %d",
                         (double)loss, ep, b + 1);
                goto done;
            }
            if (cb) {
                double el = now_sec() - t0;
                train_progress pr = {TRAIN_EV_BATCH, ep, cfg->epochs, b + 1, batches,
                                     loss_sum / count, (double)correct / count,
                                     el > 0 ? seen / el : 0.0, el, NULL};
                if (cb(&pr, user)) {
                    rc = TRAIN_CANCELLED;
                    err_set(err, errlen, "cancelled at epoch %d batch %d", ep, b + 1);
                    goto done;
                }
            }
        }
        train_epoch e;
        e.epoch = ep;
        e.loss = loss_sum / count;
        e.accuracy = (double)correct / count;
        e.val_loss = NAN;
        e.val_accuracy = NAN;
        if (nval > 0) {
            double vl;
            int vc;
            eval_range(ectx, params, set, ntrain, nval, x, probs, logits, &vl, &vc, NULL);
            e.val_loss = vl / nval;
            e.val_accuracy = (double)vc / nval;
        }
        e.seconds = now_sec() - te;
        if (history && ep <= max_history)
            history[ep - 1] = e;
        if (cb) {
            double el = now_sec() - t0;
            train_progress pr = {TRAIN_EV_EPOCH, ep, cfg->epochs, batches, batches, e.loss,
                                 e.accuracy, el > 0 ? seen / el : 0.0, el, &e};
            if (cb(&pr, user) && ep < cfg->epochs) {
                rc = TRAIN_CANCELLED;
                err_set(err, errlen, "cancelled after epoch %d", ep);
                goto done;
            }
        }
    }
    rc = TRAIN_OK;
done:
    net_train_ctx_free(tctx);
    net_ctx_free(ectx);
    mem_free(grads);
    mem_free(m);
    mem_free(v);
    mem_free(x);
    mem_free(probs);
    mem_free(logits);
    mem_free(y);
    mem_free(order);
    return rc;
}

int eval_run(const float *params, const mnist_set *set, int first, int n, int threads,
             eval_result *out, char *err, size_t errlen)
{
    int rc = -1;
    net_ctx *ctx = NULL;
    float *x = NULL, *probs = NULL, *logits = NULL;
    memset(out, 0, sizeof(*out));
    if (!set || !set->images || set->rows * set->cols != NET_IN_PIXELS) {
        err_set(err, errlen, "evaluation set is empty or not 28x28");
        return -1;
    }
    if (n <= 0)
        n = set->n - first;
    if (first < 0 || n <= 0 || first + n > set->n) {
        err_set(err, errlen, "evaluation range %d+%d outside the set of %d", first, n, set->n);
        return -1;
    }
    ctx = net_ctx_create(EVAL_BATCH, threads);
    /* the weights are fixed for the whole run: rearranged once, not per batch */
    net_ctx_prepare(ctx, params);
    x = mem_aligned(sizeof(float) * NET_IN_PIXELS * EVAL_BATCH);
    probs = mem_aligned(sizeof(float) * 10 * EVAL_BATCH);
    logits = mem_aligned(sizeof(float) * 10 * EVAL_BATCH);
    if (!ctx || !x || !probs || !logits) {
        err_set(err, errlen, "out of memory allocating evaluation buffers");
        goto done;
    }
    double t0 = now_sec(), loss;
    int correct;
    eval_range(ctx, params, set, first, n, x, probs, logits, &loss, &correct, out->confusion);
    out->seconds = now_sec() - t0;
    out->n = n;
    out->loss = loss / n;
    out->accuracy = (double)correct / n;
    out->images_per_sec = out->seconds > 0 ? n / out->seconds : 0.0;
    for (int k = 0; k < 10; k++) {
        long tp = out->confusion[k][k], pred = 0, actual = 0;
        for (int j = 0; j < 10; j++) {
            pred += out->confusion[j][k];
            actual += out->confusion[k][j];
        }
        out->precision[k] = pred ? (double)tp / pred : 0.0;
        out->recall[k] = actual ? (double)tp / actual : 0.0;
    }
    rc = 0;
done:
    net_ctx_free(ctx);
    mem_free(x);
    mem_free(probs);
    mem_free(logits);
    return rc;
}

void train_fill_meta(ckpt_meta *meta, const train_config *cfg, const char *source,
                     double seconds, const train_epoch *last, const eval_result *ev)
{
    char buf[512];
    memset(meta, 0, sizeof(*meta));
    ckpt_meta_set(meta, "architecture", NET_ARCH_NAME);
    ckpt_meta_set(meta, "mnistd_version", MNISTD_VERSION);
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    ckpt_meta_set(meta, "created", buf);
    ckpt_meta_set(meta, "source", source);
    int n = snprintf(buf, sizeof buf,
                     "{\"epochs\":%d,\"batch_size\":%d,\"learning_rate\":%g,\"validation_split\":%g,"
                     "\"seed\":%llu,\"limit\":%d",
                     cfg->epochs, cfg->batch_size, (double)cfg->learning_rate,
                     (double)cfg->validation_split, (unsigned long long)cfg->seed, cfg->limit);
    /* The reference recipe's record stays as it was: augment only when on. */
    const augment_config *a = &cfg->augment;
    if (augment_enabled(a))
        n += snprintf(buf + n, sizeof buf - (size_t)n,
                      ",\"augment\":{\"shift\":%g,\"rotate\":%g,\"scale\":%g,\"thicken\":%g,\"thin\":%g}",
                      (double)a->shift, (double)a->rotate, (double)a->scale, (double)a->thicken,
                      (double)a->thin);
    snprintf(buf + n, sizeof buf - (size_t)n, "}");
    ckpt_meta_set(meta, "recipe", buf);
    snprintf(buf, sizeof buf, "%.3f", seconds);
    ckpt_meta_set(meta, "train_seconds", buf);
    if (last) {
        snprintf(buf, sizeof buf, "%.6f", last->accuracy);
        ckpt_meta_set(meta, "train_accuracy", buf);
        if (!isnan(last->val_accuracy)) {
            snprintf(buf, sizeof buf, "%.6f", last->val_accuracy);
            ckpt_meta_set(meta, "val_accuracy", buf);
        }
    }
    if (ev) {
        snprintf(buf, sizeof buf, "%.6f", ev->accuracy);
        ckpt_meta_set(meta, "test_accuracy", buf);
        snprintf(buf, sizeof buf, "%.6f", ev->loss);
        ckpt_meta_set(meta, "test_loss", buf);
    }
}
