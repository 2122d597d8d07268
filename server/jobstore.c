/* server/jobstore.c -- job records as JSON files; see jobstore.h. The
 * format is this module's own (times as unix seconds, every field of
 * job_info), read back exactly; the API's job object is built from the
 * job_info, not from the file. */
#include "server/jobstore.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/atomicfile.h"
#include "model/err.h"

#define RECORD_MAX (256 * 1024)

static void num(cJSON *o, const char *k, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

int jobstore_save(const char *dir, const job_info *in, char *err, size_t errlen)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        err_set(err, errlen, "out of memory");
        return -1;
    }
    num(o, "id", in->id);
    num(o, "status", in->status);
    cJSON_AddStringToObject(o, "reason", in->reason);
    cJSON *c = cJSON_AddObjectToObject(o, "config");
    if (c) {
        num(c, "epochs", in->cfg.epochs);
        num(c, "batch_size", in->cfg.batch_size);
        num(c, "learning_rate", in->cfg.learning_rate);
        num(c, "validation_split", in->cfg.validation_split);
        num(c, "seed", (double)in->cfg.seed);
        num(c, "limit", in->cfg.limit);
        cJSON *a = cJSON_AddObjectToObject(c, "augment");
        if (a) {
            num(a, "shift", in->cfg.augment.shift);
            num(a, "rotate", in->cfg.augment.rotate);
            num(a, "scale", in->cfg.augment.scale);
            num(a, "thicken", in->cfg.augment.thicken);
            num(a, "thin", in->cfg.augment.thin);
        }
    }
    num(o, "created_at", in->created_at);
    num(o, "started_at", in->started_at);
    num(o, "finished_at", in->finished_at);
    num(o, "epoch", in->epoch);
    num(o, "epochs", in->epochs);
    num(o, "batch", in->batch);
    num(o, "batches", in->batches);
    num(o, "train_samples", in->train_samples);
    num(o, "val_samples", in->val_samples);
    num(o, "loss", in->loss);
    num(o, "accuracy", in->accuracy);
    num(o, "samples_per_sec", in->samples_per_sec);
    num(o, "elapsed", in->elapsed);
    cJSON *h = cJSON_AddArrayToObject(o, "history");
    for (int i = 0; h && i < in->n_history; i++) {
        cJSON *e = cJSON_CreateObject();
        if (!e)
            break;
        num(e, "epoch", in->history[i].epoch);
        num(e, "loss", in->history[i].loss);
        num(e, "accuracy", in->history[i].accuracy);
        num(e, "val_loss", in->history[i].val_loss);
        num(e, "val_accuracy", in->history[i].val_accuracy);
        num(e, "seconds", in->history[i].seconds);
        cJSON_AddItemToArray(h, e);
    }
    num(o, "has_test", in->has_test);
    num(o, "test_loss", in->test_loss);
    num(o, "test_accuracy", in->test_accuracy);
    cJSON_AddStringToObject(o, "model_version", in->model_version);
    cJSON_AddStringToObject(o, "error", in->error);
    cJSON_AddStringToObject(o, "promote", promote_policy_name(in->promote));
    num(o, "promoted", in->promoted);
    cJSON_AddStringToObject(o, "promotion", in->promotion);
    cJSON *ph = cJSON_AddObjectToObject(o, "phase_seconds");
    for (int p = 0; ph && p < JOB_NPHASES; p++)
        num(ph, job_phase_name((job_phase)p), in->phase_seconds[p]);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text) {
        err_set(err, errlen, "out of memory");
        return -1;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%d.json", dir, in->id);
    atomic_part parts[2] = {{text, strlen(text)}, {"\n", 1}};
    int rc = atomic_write(path, parts, 2, err, errlen);
    cJSON_free(text);
    return rc;
}

static double getnum(const cJSON *o, const char *k, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static void getstr(const cJSON *o, const char *k, char *buf, size_t len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    snprintf(buf, len, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

/* One record from its text; 0, or -1 when it is not one. */
static int parse_record(const char *text, job_info *in)
{
    cJSON *o = cJSON_Parse(text);
    int ok = cJSON_IsObject(o) && getnum(o, "id", 0) >= 1 && getnum(o, "status", -1) >= JOB_QUEUED &&
             getnum(o, "status", -1) <= JOB_CANCELLED;
    if (!ok) {
        cJSON_Delete(o);
        return -1;
    }
    memset(in, 0, sizeof *in);
    in->id = (int)getnum(o, "id", 0);
    in->status = (job_status)getnum(o, "status", JOB_FAILED);
    getstr(o, "reason", in->reason, sizeof in->reason);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "config");
    train_config_default(&in->cfg);
    in->cfg.epochs = (int)getnum(c, "epochs", in->cfg.epochs);
    in->cfg.batch_size = (int)getnum(c, "batch_size", in->cfg.batch_size);
    in->cfg.learning_rate = (float)getnum(c, "learning_rate", in->cfg.learning_rate);
    in->cfg.validation_split = (float)getnum(c, "validation_split", in->cfg.validation_split);
    in->cfg.seed = (uint64_t)getnum(c, "seed", (double)in->cfg.seed);
    in->cfg.limit = (int)getnum(c, "limit", 0);
    /* Records written before augmentation existed have none: 0, off. */
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(c, "augment");
    in->cfg.augment.shift = (float)getnum(a, "shift", 0);
    in->cfg.augment.rotate = (float)getnum(a, "rotate", 0);
    in->cfg.augment.scale = (float)getnum(a, "scale", 0);
    in->cfg.augment.thicken = (float)getnum(a, "thicken", 0);
    in->cfg.augment.thin = (float)getnum(a, "thin", 0);
    in->created_at = getnum(o, "created_at", 0);
    in->started_at = getnum(o, "started_at", 0);
    in->finished_at = getnum(o, "finished_at", 0);
    in->epoch = (int)getnum(o, "epoch", 0);
    in->epochs = (int)getnum(o, "epochs", 0);
    in->batch = (int)getnum(o, "batch", 0);
    in->batches = (int)getnum(o, "batches", 0);
    in->train_samples = (int)getnum(o, "train_samples", 0);
    in->val_samples = (int)getnum(o, "val_samples", 0);
    in->loss = getnum(o, "loss", 0);
    in->accuracy = getnum(o, "accuracy", 0);
    in->samples_per_sec = getnum(o, "samples_per_sec", 0);
    in->elapsed = getnum(o, "elapsed", 0);
    in->eta = -1;
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "history");
    const cJSON *e;
    cJSON_ArrayForEach(e, h)
    {
        if (in->n_history >= TRAIN_MAX_EPOCHS)
            break;
        train_epoch *t = &in->history[in->n_history++];
        t->epoch = (int)getnum(e, "epoch", 0);
        t->loss = getnum(e, "loss", 0);
        t->accuracy = getnum(e, "accuracy", 0);
        t->val_loss = getnum(e, "val_loss", NAN);
        t->val_accuracy = getnum(e, "val_accuracy", NAN);
        t->seconds = getnum(e, "seconds", 0);
    }
    in->has_test = getnum(o, "has_test", 0) != 0;
    in->test_loss = getnum(o, "test_loss", 0);
    in->test_accuracy = getnum(o, "test_accuracy", 0);
    getstr(o, "model_version", in->model_version, sizeof in->model_version);
    getstr(o, "error", in->error, sizeof in->error);
    char pol[16];
    getstr(o, "promote", pol, sizeof pol);
    if (promote_policy_parse(pol, &in->promote) != 0)
        in->promote = PROMOTE_IF_BETTER;
    in->promoted = (int)getnum(o, "promoted", -1);
    /* Records written before phases were timed have none: not known. */
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive(o, "phase_seconds");
    for (int p = 0; p < JOB_NPHASES; p++)
        in->phase_seconds[p] = getnum(ph, job_phase_name((job_phase)p), -1);
    getstr(o, "promotion", in->promotion, sizeof in->promotion);
    cJSON_Delete(o);
    return 0;
}

static char *read_small(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < RECORD_MAX) {
        buf = malloc((size_t)st.st_size + 1);
        ssize_t k = buf ? read(fd, buf, (size_t)st.st_size) : -1;
        if (k != st.st_size) {
            free(buf);
            buf = NULL;
        } else {
            buf[k] = '\0';
        }
    }
    close(fd);
    return buf;
}

static int by_id(const void *a, const void *b)
{
    const job_info *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

int jobstore_load(const char *dir, job_info **out, int *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    int cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0 ||
            strspn(de->d_name, "0123456789") != len - 5)
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path)
            continue;
        char *text = read_small(path);
        if (!text)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            job_info *grown = realloc(*out, (size_t)cap * sizeof **out);
            if (!grown) {
                free(text);
                break;
            }
            *out = grown;
        }
        if (parse_record(text, &(*out)[*n]) == 0)
            (*n)++;
        free(text);
    }
    closedir(d);
    if (*n > 1)
        qsort(*out, (size_t)*n, sizeof **out, by_id);
    return 0;
}

void jobstore_remove(const char *dir, int id)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%d.json", dir, id);
    if (unlink(path) == 0)
        atomic_sync_parent(path);
}
