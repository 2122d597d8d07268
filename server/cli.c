/* server/cli.c -- `mnistd train`, `mnistd evaluate`, `mnistd predict`: the
 * engine without the server, for people who want to train or check a model
 * from a shell. Every flag is validated; errors exit 2 (usage) or 1. */
#include "server/cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model/checkpoint.h"
#include "model/image.h"
#include "model/mnist.h"
#include "model/net.h"
#include "model/train.h"

#define DEFAULT_MODEL "models/mnist-cnn.safetensors"

/* Strict integer parse: the whole string, within [lo, hi]. */
static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Takes the value of flag argv[*i] ("--x v" or "--x=v"); NULL if missing. */
static const char *flag_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (strcmp(argv[*i], name) == 0) {
        if (*i + 1 >= argc)
            return NULL;
        return argv[++*i];
    }
    return NULL;
}

static int is_flag(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == 0 || arg[n] == '=');
}

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
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
        double t = now_sec();
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
        "  --batch-size N          1..1024, default 64\n"
        "  --learning-rate X       Adam learning rate, (0, 10], default 0.001 (also --lr X)\n"
        "  --validation-split X    last fraction of the training set held out, [0, 1), default 0.2\n"
        "  --seed N                initialisation and shuffle seed, default 1\n"
        "  --limit N               use only the first N training samples (0 = all), default 0\n"
        "  --threads N             threads, 0 = all cores, default 0\n"
        "  --no-test               skip the evaluation on the test set after training\n"
        "  --quiet                 no progress output\n"
        "  --help                  this text\n"
        "Same seed, data and --threads give the same weights bit for bit.\n",
        TRAIN_MAX_EPOCHS);
}

int cli_train(int argc, char **argv)
{
    train_config cfg;
    train_config_default(&cfg);
    const char *data = getenv("MNISTD_DATA"), *out = DEFAULT_MODEL;
    int quiet = 0, no_test = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long l;
        double d;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            train_usage(stdout);
            return 0;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if (strcmp(a, "--no-test") == 0) {
            no_test = 1;
        } else if (is_flag(a, "--data")) {
            if (!(data = flag_value(argc, argv, &i, "--data")))
                goto missing;
        } else if (is_flag(a, "--out")) {
            if (!(out = flag_value(argc, argv, &i, "--out")) || !*out)
                goto missing;
        } else if (is_flag(a, "--epochs")) {
            if (!(v = flag_value(argc, argv, &i, "--epochs")) || parse_long(v, 1, TRAIN_MAX_EPOCHS, &l))
                goto bad;
            cfg.epochs = (int)l;
        } else if (is_flag(a, "--batch-size")) {
            if (!(v = flag_value(argc, argv, &i, "--batch-size")) || parse_long(v, 1, 1024, &l))
                goto bad;
            cfg.batch_size = (int)l;
        } else if (is_flag(a, "--learning-rate") || is_flag(a, "--lr")) {
            const char *nm = is_flag(a, "--lr") ? "--lr" : "--learning-rate";
            if (!(v = flag_value(argc, argv, &i, nm)) || parse_double(v, 1e-12, 10, &d))
                goto bad;
            cfg.learning_rate = (float)d;
        } else if (is_flag(a, "--validation-split")) {
            if (!(v = flag_value(argc, argv, &i, "--validation-split")) || parse_double(v, 0, 0.99, &d))
                goto bad;
            cfg.validation_split = (float)d;
        } else if (is_flag(a, "--seed")) {
            if (!(v = flag_value(argc, argv, &i, "--seed")) || parse_long(v, 0, 0x7fffffffL, &l))
                goto bad;
            cfg.seed = (uint64_t)l;
        } else if (is_flag(a, "--limit")) {
            if (!(v = flag_value(argc, argv, &i, "--limit")) || parse_long(v, 0, 100000000L, &l))
                goto bad;
            cfg.limit = (int)l;
        } else if (is_flag(a, "--threads")) {
            if (!(v = flag_value(argc, argv, &i, "--threads")) || parse_long(v, 0, 64, &l))
                goto bad;
            cfg.threads = (int)l;
        } else {
            fprintf(stderr, "mnistd train: unknown flag '%s' (see --help)\n", a);
            return 2;
        }
        continue;
    missing:
        fprintf(stderr, "mnistd train: %s needs a value\n", a);
        return 2;
    bad:
        fprintf(stderr, "mnistd train: bad value for %s (see --help for the range)\n", a);
        return 2;
    }
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
        fprintf(stderr, "Training on %d samples (%s), %d epochs, batch %d\n",
                cfg.limit > 0 && cfg.limit < train.n ? cfg.limit : train.n, data, cfg.epochs,
                cfg.batch_size);
    double t0 = now_sec();
    int r = train_run(params, &train, &cfg, train_progress_cb, &st, hist, TRAIN_MAX_EPOCHS, err,
                      sizeof err);
    double secs = now_sec() - t0;
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
        "  --help         this text\n");
}

int cli_evaluate(int argc, char **argv)
{
    const char *data = getenv("MNISTD_DATA"), *model = DEFAULT_MODEL;
    long threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            eval_usage(stdout);
            return 0;
        } else if (is_flag(a, "--data")) {
            if (!(data = flag_value(argc, argv, &i, "--data")))
                goto bad;
        } else if (is_flag(a, "--model")) {
            if (!(model = flag_value(argc, argv, &i, "--model")))
                goto bad;
        } else if (is_flag(a, "--threads")) {
            if (!(v = flag_value(argc, argv, &i, "--threads")) || parse_long(v, 0, 64, &threads))
                goto bad;
        } else {
            fprintf(stderr, "mnistd evaluate: unknown flag '%s' (see --help)\n", a);
            return 2;
        }
        continue;
    bad:
        fprintf(stderr, "mnistd evaluate: bad or missing value for %s\n", a);
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

static int read_file(const char *path, uint8_t **buf, size_t *len, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 65536, n = 0;
    uint8_t *b = malloc(cap);
    while (b) {
        if (n == cap) {
            if (cap >= max) {
                free(b);
                b = NULL;
                break;
            }
            uint8_t *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (!b || bad) {
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
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            predict_usage(stdout);
            return 0;
        } else if (strcmp(a, "--probs") == 0) {
            probs_out = 1;
        } else if (is_flag(a, "--model")) {
            if (!(model = flag_value(argc, argv, &i, "--model"))) {
                fprintf(stderr, "mnistd predict: --model needs a value\n");
                return 2;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "mnistd predict: unknown flag '%s' (see --help)\n", a);
            return 2;
        } else {
            first = i;
            break;
        }
    }
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
    img_limits lim;
    img_limits_default(&lim);
    for (int i = first; i < argc; i++) {
        uint8_t *buf = NULL, *gray = NULL;
        size_t len;
        uint32_t w, h;
        float x[NET_IN_PIXELS], p[10];
        if (read_file(argv[i], &buf, &len, 64u << 20) != 0) {
            fprintf(stderr, "mnistd predict: %s: cannot read: %s\n", argv[i], strerror(errno));
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
        int am = 0;
        for (int k = 1; k < 10; k++)
            if (p[k] > p[am])
                am = k;
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
