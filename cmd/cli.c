/* cmd/cli.c -- `mnistd train`, `mnistd quantize`, `mnistd evaluate`,
 * `mnistd predict`: the engine without the server, for people who want to
 * train or check a model from a shell. Every flag is validated; errors exit
 * 2 (usage) or 1. */
#include "cmd/cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model/checkpoint.h"
#include "model/png.h"
#include "model/preprocess.h"
#include "model/mnist.h"
#include "model/robust.h"
#include "model/net.h"
#include "model/quant.h"
#include "model/train.h"
#include "server/clock.h"
#include "cmd/flags.h"

#define DEFAULT_MODEL "models/mnist-cnn.safetensors"

/* The range of a training setting, for the flag tables: see train.h. */
static int train_range(int field, double v)
{
    return train_field_check((train_field)field, v, NULL, 0);
}

/* flags_parse for the command `mnistd cmd`, saying what went wrong: returns
 * -1 to go on (*at as flags_parse leaves it), else the exit code: 0 after
 * --help (usage printed to stdout), 2 after a bad flag (the reason on
 * stderr). */
static int cli_flags(const char *cmd, int argc, char **argv, const flag_def *defs, int n, int positional,
                     int *at, void (*usage)(FILE *))
{
    int which = 0;
    flags_status fs = flags_parse(argc, argv, defs, n, positional, at, &which);
    switch (fs) {
    case FLAGS_OK:
        return -1;
    case FLAGS_HELP:
        usage(stdout);
        return 0;
    case FLAGS_UNKNOWN:
        fprintf(stderr, "mnistd %s: unknown flag '%s' (see --help)\n", cmd, argv[*at]);
        return 2;
    case FLAGS_MISSING:
    case FLAGS_BAD:
        /* A number that is missing is a bad number. */
        if (fs == FLAGS_MISSING && defs[which].type == FLAG_STRING)
            fprintf(stderr, "mnistd %s: %s needs a value\n", cmd, argv[*at]);
        else
            fprintf(stderr, "mnistd %s: bad value for %s (see --help for the range)\n", cmd, argv[*at]);
        return 2;
    }
    return 2;
}

/* ---- train --------------------------------------------------------------- */

typedef struct {
    int tty, quiet;
    double last_draw;
} progress_state;

static int train_progress_cb(const train_progress *p, void *user)
{
    progress_state *st = user;
    if (st->quiet)
        return 0;
    if (p->event == TRAIN_EV_BATCH) {
        if (!st->tty)
            return 0;
        double t = clock_mono_s();
        if (t - st->last_draw < 0.1 && p->batch != p->batches)
            return 0;
        st->last_draw = t;
        int width = 30, filled = (int)((double)width * p->batch / p->batches);
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < filled ? '=' : (i == filled ? '>' : '.');
        bar[width] = 0;
        fprintf(stderr, "\rEpoch %d/%d [%s] %d/%d loss %.4f acc %.4f %.0f samples/s ",
                p->epoch, p->epochs, bar, p->batch, p->batches, p->loss, p->accuracy,
                p->samples_per_sec);
        return 0;
    }
    const train_epoch *e = p->last;
    if (st->tty)
        fprintf(stderr, "\r\033[K");
    fprintf(stderr,
            "Epoch %d/%d: loss %.4f accuracy %.4f val_loss %.4f val_accuracy %.4f (%.1f s, %.0f samples/s)\n",
            p->epoch, p->epochs, e->loss, e->accuracy, e->val_loss, e->val_accuracy, e->seconds,
            p->samples_per_sec);
    return 0;
}

static void train_usage(FILE *f)
{
    fprintf(f,
        "usage: mnistd train [flags]\n"
        "Trains the network with the reference recipe and saves it as safetensors.\n"
        "\n"
        "  --data DIR              MNIST directory (train-*/t10k-* IDX files, .gz or plain);\n"
        "                          default: $MNISTD_DATA\n"
        "  --out PATH              model file to write (atomically); default " DEFAULT_MODEL "\n"
        "  --epochs N              1..%d, default 5\n"
        "  --batch-size N          1..%d, default 64\n"
        "  --learning-rate X       Adam learning rate, (0, %g], default 0.001 (also --lr X)\n"
        "  --validation-split X    last fraction of the training set held out, [0, %g), default 0.2\n"
        "  --seed N                initialisation and shuffle seed, 0..%d, default 1\n"
        "  --limit N               use only the first N training samples, 0..%d (0 = all), default 0\n"
        "  --threads N             threads, 0..%d (0 = all cores), default 0\n"
        "  --augment-shift X       augmentation: shift by up to X pixels per axis, [0, %g], default 0\n"
        "  --augment-rotate X      augmentation: rotate by up to X degrees, [0, %g], default 0\n"
        "  --augment-scale X       augmentation: scale by a factor in [1-X, 1+X], X in [0, %g], default 0\n"
        "  --augment-thicken X     augmentation: thicken strokes by up to X steps, [0, %g], default 0\n"
        "  --augment-thin X        augmentation: thin strokes by up to X steps, [0, %g], default 0\n"
        "                          (all five 0: the reference recipe, no augmentation)\n"
        "  --no-test               skip the evaluation on the test set after training\n"
        "  --quiet                 no progress output\n"
        "  --help                  this text\n"
        "Same seed, data and --threads give the same weights bit for bit.\n",
        TRAIN_MAX_EPOCHS, TRAIN_MAX_BATCH, TRAIN_MAX_LR, TRAIN_MAX_SPLIT, TRAIN_MAX_SEED,
        TRAIN_MAX_LIMIT, TRAIN_MAX_THREADS, AUGMENT_MAX_SHIFT, AUGMENT_MAX_ROTATE, AUGMENT_MAX_SCALE,
        AUGMENT_MAX_THICKEN, AUGMENT_MAX_THIN);
}

int cli_train(int argc, char **argv)
{
    train_config cfg;
    train_config_default(&cfg);
    const char *data = getenv("MNISTD_DATA"), *out = DEFAULT_MODEL;
    int quiet = 0, no_test = 0;
    long epochs = cfg.epochs, batch = cfg.batch_size, seed = (long)cfg.seed, limit = cfg.limit;
    long threads = cfg.threads;
    double lr = cfg.learning_rate, split = cfg.validation_split;
    double shift = 0, rotate = 0, scale = 0, thicken = 0, thin = 0;
    const flag_def defs[] = {
        {"--quiet", NULL, FLAG_SWITCH, &quiet, 0, NULL, 0},
        {"--no-test", NULL, FLAG_SWITCH, &no_test, 0, NULL, 0},
        {"--data", NULL, FLAG_STRING, &data, 0, NULL, 0},
        {"--out", NULL, FLAG_STRING, &out, 1, NULL, 0},
        {"--epochs", NULL, FLAG_LONG, &epochs, 0, train_range, TRAIN_FIELD_EPOCHS},
        {"--batch-size", NULL, FLAG_LONG, &batch, 0, train_range, TRAIN_FIELD_BATCH_SIZE},
        {"--learning-rate", "--lr", FLAG_DOUBLE, &lr, 0, train_range, TRAIN_FIELD_LEARNING_RATE},
        {"--validation-split", NULL, FLAG_DOUBLE, &split, 0, train_range,
         TRAIN_FIELD_VALIDATION_SPLIT},
        {"--seed", NULL, FLAG_LONG, &seed, 0, train_range, TRAIN_FIELD_SEED},
        {"--limit", NULL, FLAG_LONG, &limit, 0, train_range, TRAIN_FIELD_LIMIT},
        {"--threads", NULL, FLAG_LONG, &threads, 0, train_range, TRAIN_FIELD_THREADS},
        {"--augment-shift", NULL, FLAG_DOUBLE, &shift, 0, train_range, TRAIN_FIELD_AUG_SHIFT},
        {"--augment-rotate", NULL, FLAG_DOUBLE, &rotate, 0, train_range, TRAIN_FIELD_AUG_ROTATE},
        {"--augment-scale", NULL, FLAG_DOUBLE, &scale, 0, train_range, TRAIN_FIELD_AUG_SCALE},
        {"--augment-thicken", NULL, FLAG_DOUBLE, &thicken, 0, train_range, TRAIN_FIELD_AUG_THICKEN},
        {"--augment-thin", NULL, FLAG_DOUBLE, &thin, 0, train_range, TRAIN_FIELD_AUG_THIN},
    };
    int at, code = cli_flags("train", argc, argv, defs, (int)(sizeof defs / sizeof defs[0]), 0, &at,
                             train_usage);
    if (code >= 0)
        return code;
    cfg.epochs = (int)epochs;
    cfg.batch_size = (int)batch;
    cfg.learning_rate = (float)lr;
    cfg.validation_split = (float)split;
    cfg.seed = (uint64_t)seed;
    cfg.limit = (int)limit;
    cfg.threads = (int)threads;
    cfg.augment.shift = (float)shift;
    cfg.augment.rotate = (float)rotate;
    cfg.augment.scale = (float)scale;
    cfg.augment.thicken = (float)thicken;
    cfg.augment.thin = (float)thin;
    if (!data || !*data) {
        fprintf(stderr, "mnistd train: no data directory: give --data DIR or set MNISTD_DATA\n"
                        "  (scripts/get-mnist.sh DIR downloads MNIST)\n");
        return 2;
    }

    char err[512];
    mnist_set train = {0}, test = {0};
    float *params = calloc(NET_NUM_PARAMS, sizeof(float));
    train_epoch hist[TRAIN_MAX_EPOCHS];
    int rc = 1;
    if (!params) {
        fprintf(stderr, "mnistd train: out of memory\n");
        return 1;
    }
    if (mnist_load_dir(&train, data, "train", err, sizeof err) != 0) {
        fprintf(stderr, "mnistd train: %s\n", err);
        goto done;
    }
    if (!no_test && mnist_load_dir(&test, data, "t10k", err, sizeof err) != 0) {
        fprintf(stderr, "mnistd train: %s\n", err);
        goto done;
    }
    progress_state st = {isatty(2), quiet, 0};
    if (!quiet)
        fprintf(stderr, "Training on %d samples (%s), %d epochs, batch %d%s\n",
                cfg.limit > 0 && cfg.limit < train.n ? cfg.limit : train.n, data, cfg.epochs,
                cfg.batch_size, augment_enabled(&cfg.augment) ? ", augmented" : "");
    double t0 = clock_mono_s();
    int r = train_run(params, &train, &cfg, train_progress_cb, &st, hist, TRAIN_MAX_EPOCHS, err,
                      sizeof err);
    double secs = clock_mono_s() - t0;
    if (r != TRAIN_OK) {
        fprintf(stderr, "mnistd train: %s\n", err);
        goto done;
    }
    eval_result ev;
    int have_test = 0;
    if (!no_test) {
        if (eval_run(params, &test, 0, 0, cfg.threads, &ev, err, sizeof err) != 0) {
            fprintf(stderr, "mnistd train: %s\n", err);
            goto done;
        }
        have_test = 1;
    }
    ckpt_meta meta;
    train_fill_meta(&meta, &cfg, "mnistd train", secs, &hist[cfg.epochs - 1], have_test ? &ev : NULL);
    if (quant_fill_meta(&meta, params, &train, have_test ? &test : NULL, cfg.threads, err, sizeof err) != 0)
        fprintf(stderr, "mnistd train: warning: no int8 scales in the model: %s\n", err);
    if (ckpt_save(out, params, &meta, err, sizeof err) != 0) {
        fprintf(stderr, "mnistd train: %s\n", err);
        goto done;
    }
    if (have_test)
        printf("test_loss %.4f test_accuracy %.4f\n", ev.loss, ev.accuracy);
    printf("trained in %.2f s, saved %s\n", secs, out);
    rc = 0;
done:
    mnist_free(&train);
    mnist_free(&test);
    free(params);
    return rc;
}

/* ---- quantize ------------------------------------------------------------ */

static void quantize_usage(FILE *f)
{
    fprintf(f,
        "usage: mnistd quantize [flags]\n"
        "Calibrates a model file's int8 activation scales on the first %d training images\n"
        "and writes them into its metadata (" QUANT_SCALES_KEY "), with the int8 and fp32\n"
        "accuracies on the test set (" QUANT_ACCURACY_KEY ", test_accuracy). The weights\n"
        "and so the model's version do not change. mnistd serve --precision int8 needs them.\n"
        "\n"
        "  --model PATH   model file (safetensors), default " DEFAULT_MODEL "\n"
        "  --out PATH     file to write (atomically), default: the model file\n"
        "  --data DIR     MNIST directory, default $MNISTD_DATA\n"
        "  --threads N    threads, 0 = all cores, default 0\n"
        "  --help         this text\n", QUANT_CALIB_IMAGES);
}

int cli_quantize(int argc, char **argv)
{
    const char *data = getenv("MNISTD_DATA"), *model = DEFAULT_MODEL, *out = NULL;
    long threads = 0;
    const flag_def defs[] = {
        {"--data", NULL, FLAG_STRING, &data, 0, NULL, 0},
        {"--model", NULL, FLAG_STRING, &model, 0, NULL, 0},
        {"--out", NULL, FLAG_STRING, &out, 0, NULL, 0},
        {"--threads", NULL, FLAG_LONG, &threads, 0, train_range, TRAIN_FIELD_THREADS},
    };
    int at, code = cli_flags("quantize", argc, argv, defs, (int)(sizeof defs / sizeof defs[0]), 0, &at,
                             quantize_usage);
    if (code >= 0)
        return code;
    if (!data || !*data) {
        fprintf(stderr, "mnistd quantize: no data directory: give --data DIR or set MNISTD_DATA\n");
        return 2;
    }
    char err[512];
    float *params = calloc(NET_NUM_PARAMS, sizeof(float));
    ckpt_meta *meta = calloc(1, sizeof *meta);
    mnist_set train = {0}, test = {0};
    eval_result ev;
    int rc = 1;
    if (!params || !meta) {
        fprintf(stderr, "mnistd quantize: out of memory\n");
        goto done;
    }
    if (ckpt_load(model, params, meta, err, sizeof err) != 0 ||
        mnist_load_dir(&train, data, "train", err, sizeof err) != 0 ||
        mnist_load_dir(&test, data, "t10k", err, sizeof err) != 0 ||
        eval_run(params, &test, 0, 0, (int)threads, &ev, err, sizeof err) != 0 ||
        quant_fill_meta(meta, params, &train, &test, (int)threads, err, sizeof err) != 0) {
        fprintf(stderr, "mnistd quantize: %s\n", err);
        goto done;
    }
    char acc[32];
    snprintf(acc, sizeof acc, "%.6f", ev.accuracy);
    ckpt_meta_set(meta, "test_accuracy", acc);
    if (ckpt_save(out ? out : model, params, meta, err, sizeof err) != 0) {
        fprintf(stderr, "mnistd quantize: %s\n", err);
        goto done;
    }
    printf("%s %s\ntest_accuracy %s\n%s %s\nsaved %s\n", QUANT_SCALES_KEY, ckpt_meta_get(meta, QUANT_SCALES_KEY),
           acc, QUANT_ACCURACY_KEY, ckpt_meta_get(meta, QUANT_ACCURACY_KEY), out ? out : model);
    rc = 0;
done:
    mnist_free(&train);
    mnist_free(&test);
    free(params);
    free(meta);
    return rc;
}

/* ---- evaluate ------------------------------------------------------------ */

static void eval_usage(FILE *f)
{
    fprintf(f,
        "usage: mnistd evaluate [flags]\n"
        "Evaluates a model file on the 10,000 test images.\n"
        "\n"
        "  --model PATH   model file (safetensors), default " DEFAULT_MODEL "\n"
        "  --data DIR     MNIST directory, default $MNISTD_DATA\n"
        "  --threads N    threads, 0 = all cores, default 0\n"
        "  --set NAME     test (default), or also on a transformed copy of the test set:\n"
        "                 shifted, rotated, thickened, or transformed (all three); prints\n"
        "                 a line \"set NAME accuracy A loss L\" for each\n"
        "  --help         this text\n");
}

int cli_evaluate(int argc, char **argv)
{
    const char *data = getenv("MNISTD_DATA"), *model = DEFAULT_MODEL, *set = "test";
    long threads = 0;
    const flag_def defs[] = {
        {"--data", NULL, FLAG_STRING, &data, 0, NULL, 0},
        {"--model", NULL, FLAG_STRING, &model, 0, NULL, 0},
        {"--set", NULL, FLAG_STRING, &set, 1, NULL, 0},
        {"--threads", NULL, FLAG_LONG, &threads, 0, train_range, TRAIN_FIELD_THREADS},
    };
    int at, code = cli_flags("evaluate", argc, argv, defs, (int)(sizeof defs / sizeof defs[0]), 0, &at,
                             eval_usage);
    if (code >= 0)
        return code;
    unsigned sets;
    if (robust_set_parse(set, &sets) != 0) {
        fprintf(stderr, "mnistd evaluate: unknown set '%s' (one of " ROBUST_SET_NAMES ")\n", set);
        return 2;
    }
    if (!data || !*data) {
        fprintf(stderr, "mnistd evaluate: no data directory: give --data DIR or set MNISTD_DATA\n");
        return 2;
    }
    char err[512];
    float *params = calloc(NET_NUM_PARAMS, sizeof(float));
    mnist_set test = {0};
    int rc = 1;
    if (!params)
        return 1;
    if (ckpt_load(model, params, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "mnistd evaluate: %s\n", err);
        goto done;
    }
    if (mnist_load_dir(&test, data, "t10k", err, sizeof err) != 0) {
        fprintf(stderr, "mnistd evaluate: %s\n", err);
        goto done;
    }
    eval_result ev;
    if (eval_run(params, &test, 0, 0, (int)threads, &ev, err, sizeof err) != 0) {
        fprintf(stderr, "mnistd evaluate: %s\n", err);
        goto done;
    }
    printf("images %d\nloss %.4f\naccuracy %.4f\nimages_per_sec %.0f\n", ev.n, ev.loss,
           ev.accuracy, ev.images_per_sec);
    printf("class precision recall\n");
    for (int k = 0; k < 10; k++)
        printf("%d %.4f %.4f\n", k, ev.precision[k], ev.recall[k]);
    printf("confusion (rows: true, columns: predicted)\n");
    for (int k = 0; k < 10; k++) {
        for (int j = 0; j < 10; j++)
            printf("%s%5d", j ? " " : "", ev.confusion[k][j]);
        printf("\n");
    }
    printf("set test accuracy %.4f loss %.4f\n", ev.accuracy, ev.loss);
    for (int k = 0; k < ROBUST_KINDS; k++) {
        if (!(sets & (1u << k)))
            continue;
        if (robust_eval(params, &test, (robust_kind)k, (int)threads, &ev, err, sizeof err) != 0) {
            fprintf(stderr, "mnistd evaluate: %s\n", err);
            goto done;
        }
        printf("set %s accuracy %.4f loss %.4f\n", robust_name((robust_kind)k), ev.accuracy, ev.loss);
    }
    rc = 0;
done:
    mnist_free(&test);
    free(params);
    return rc;
}

/* ---- predict ------------------------------------------------------------- */

static void predict_usage(FILE *f)
{
    fprintf(f,
        "usage: mnistd predict [--model PATH] FILE.png...\n"
        "Classifies PNG files; prints one line per file: FILE DIGIT CONFIDENCE.\n"
        "\n"
        "  --model PATH   model file (safetensors), default " DEFAULT_MODEL "\n"
        "  --probs        also print the 10 probabilities\n"
        "  --help         this text\n");
}

/* Reads the file at path, at most max bytes, into *buf (the caller frees it).
 * Returns 0, or -1 with err saying why (never a stale errno). */
static int read_file(const char *path, uint8_t **buf, size_t *len, size_t max, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read: %s", strerror(errno));
        return -1;
    }
    size_t cap = 65536, n = 0;
    uint8_t *b = malloc(cap);
    const char *why = b ? NULL : "out of memory";
    while (b) {
        if (n == cap) {
            if (cap >= max) {
                snprintf(err, errlen, "cannot read: larger than %zu MiB", max >> 20);
                why = err;
                break;
            }
            uint8_t *nb = realloc(b, cap * 2);
            if (!nb) {
                why = "out of memory";
                break;
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                snprintf(err, errlen, "cannot read: %s", strerror(errno));
                why = err;
            }
            break;
        }
    }
    fclose(f);
    if (why) {
        if (why != err)
            snprintf(err, errlen, "cannot read: %s", why);
        free(b);
        return -1;
    }
    *buf = b;
    *len = n;
    return 0;
}

int cli_predict(int argc, char **argv)
{
    const char *model = DEFAULT_MODEL;
    int probs_out = 0, first = 0;
    const flag_def defs[] = {
        {"--probs", NULL, FLAG_SWITCH, &probs_out, 0, NULL, 0},
        {"--model", NULL, FLAG_STRING, &model, 0, NULL, 0},
    };
    int code = cli_flags("predict", argc, argv, defs, (int)(sizeof defs / sizeof defs[0]), 1, &first,
                         predict_usage);
    if (code >= 0)
        return code;
    if (first == argc)
        first = 0;
    if (!first) {
        fprintf(stderr, "mnistd predict: no PNG files given (see --help)\n");
        return 2;
    }
    char err[512];
    float *params = calloc(NET_NUM_PARAMS, sizeof(float));
    net_ctx *ctx = net_ctx_create(1, 1);
    int rc = 0;
    if (!params || !ctx) {
        free(params);
        net_ctx_free(ctx);
        return 1;
    }
    if (ckpt_load(model, params, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "mnistd predict: %s\n", err);
        rc = 1;
        goto done;
    }
    net_ctx_prepare(ctx, params);  /* the weights rearranged once, as the daemon's workers do */
    img_limits lim;
    img_limits_default(&lim);
    for (int i = first; i < argc; i++) {
        uint8_t *buf = NULL, *gray = NULL;
        size_t len;
        uint32_t w, h;
        float x[NET_IN_PIXELS], p[10];
        if (read_file(argv[i], &buf, &len, 64u << 20, err, sizeof err) != 0) {
            fprintf(stderr, "mnistd predict: %s: %s\n", argv[i], err);
            rc = 1;
            continue;
        }
        int s = img_decode_png(buf, len, &lim, &gray, &w, &h, err, sizeof err);
        if (s == IMG_OK)
            s = img_to_mnist(gray, w, h, x, err, sizeof err);
        free(buf);
        free(gray);
        if (s != IMG_OK) {
            fprintf(stderr, "mnistd predict: %s: %s\n", argv[i], err);
            rc = 1;
            continue;
        }
        net_forward(ctx, params, x, 1, p, NULL);
        int am = net_argmax(p);
        printf("%s %d %.6f", argv[i], am, (double)p[am]);
        if (probs_out)
            for (int k = 0; k < 10; k++)
                printf(" %.6f", (double)p[k]);
        printf("\n");
    }
done:
    net_ctx_free(ctx);
    free(params);
    return rc;
}
