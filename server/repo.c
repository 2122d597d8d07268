/* server/repo.c -- the model repository; see repo.h. */
#include "server/repo.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "model/atomicfile.h"
#include "model/err.h"
#include "model/net.h"
#include "server/modelstore.h"

#define SUFFIX ".safetensors"

/* What a scan learned about one file of versions/, kept while the file's
 * identity (inode, size, mtime) stays the same, so a rescan reads only new
 * or changed files. */
typedef struct {
    char name[128];
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int valid;
    int reported;           /* an invalid file is reported once */
    int seen;               /* in the last scan */
    repo_version info;
    char why[400];          /* why it is invalid */
} entry;

struct repo {
    char dir[PATH_MAX];
    char versions[PATH_MAX];
    char jobs[PATH_MAX];
    char active_path[PATH_MAX];
    int lock_fd;            /* -1 when not the owner */
    char lock_error[PATH_MAX + 160];
    pthread_mutex_t mu;     /* the cache, and writes of the record */
    entry *cache;
    int ncache, capcache;
};

static int mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static void take_lock(repo *r)
{
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/lock", r->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(r->lock_error, sizeof r->lock_error,
                 "the model repository %.900s is not writable here (%s): this process only reads it",
                 r->dir, strerror(errno));
        return;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t k = pread(fd, pid, sizeof pid - 1, 0);
        pid[k > 0 ? k : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        snprintf(r->lock_error, sizeof r->lock_error,
                 "the model repository %.900s is locked by process %s (another mnistd owns it: "
                 "only that process trains into it and changes it)", r->dir, pid[0] ? pid : "?");
        close(fd);
        return;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* The lock holds regardless; the pid is only for others' messages. */
    }
    r->lock_fd = fd;
    r->lock_error[0] = '\0';
}

repo *repo_open(const char *dir, int want_lock, char *err, size_t errlen)
{
    if (!dir || !*dir || strlen(dir) > PATH_MAX - 64) {
        err_set(err, errlen, "model-dir: no directory or a path too long");
        return NULL;
    }
    repo *r = calloc(1, sizeof *r);
    if (!r) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    size_t n = strlen(r->dir);
    while (n > 1 && r->dir[n - 1] == '/')
        r->dir[--n] = '\0';
    snprintf(r->versions, sizeof r->versions, "%s/versions", r->dir);
    snprintf(r->jobs, sizeof r->jobs, "%s/jobs", r->dir);
    snprintf(r->active_path, sizeof r->active_path, "%s/active", r->dir);
    r->lock_fd = -1;
    pthread_mutex_init(&r->mu, NULL);
    struct stat st;
    if (want_lock) {
        /* A read-only mount cannot get these; reading still works. */
        mkdir_p(r->versions);
        mkdir_p(r->jobs);
    }
    if (stat(r->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        err_set(err, errlen, "model-dir: %s is not a directory%s%s", r->dir, errno ? ": " : "",
                errno ? strerror(errno) : "");
        repo_close(r);
        return NULL;
    }
    if (want_lock)
        take_lock(r);
    else
        snprintf(r->lock_error, sizeof r->lock_error, "the model repository %.900s is opened read-only",
                 r->dir);
    return r;
}

void repo_close(repo *r)
{
    if (!r)
        return;
    if (r->lock_fd >= 0)
        close(r->lock_fd);  /* releases the flock */
    free(r->cache);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int repo_owner(const repo *r) { return r->lock_fd >= 0; }
const char *repo_lock_error(const repo *r) { return r->lock_error; }
const char *repo_dir(const repo *r) { return r->dir; }
const char *repo_jobs_dir(const repo *r) { return r->jobs; }

int repo_valid_version(const char *s)
{
    if (!s || strlen(s) != 16)
        return 0;
    for (int i = 0; i < 16; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

void repo_version_path(const repo *r, const char *version, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s" SUFFIX, r->versions, version);
}

/* RFC 3339 UTC ("2026-01-02T03:04:05Z") to unix seconds; 0 if not one. */
static double parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
    if (!end || *end)
        return 0;
    return (double)timegm(&tm);
}

static void format_time(double t, char *buf, size_t len)
{
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int repo_read_active(repo *r, repo_active *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char buf[4096];
    int fd = open(r->active_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return REPO_NONE;
        err_set(err, errlen, "%s: %s", r->active_path, strerror(errno));
        return REPO_ERROR;
    }
    ssize_t k = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (k < 0) {
        err_set(err, errlen, "%s: %s", r->active_path, strerror(errno));
        return REPO_ERROR;
    }
    buf[k] = '\0';
    cJSON *o = cJSON_Parse(buf);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "active");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "previous");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "activated_at");
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(o, "reason");
    int ok = cJSON_IsObject(o) && cJSON_IsString(a) && repo_valid_version(a->valuestring) &&
             (!p || cJSON_IsNull(p) || (cJSON_IsString(p) && repo_valid_version(p->valuestring)));
    if (ok) {
        snprintf(out->active, sizeof out->active, "%s", a->valuestring);
        if (cJSON_IsString(p))
            snprintf(out->previous, sizeof out->previous, "%s", p->valuestring);
        out->activated_at = cJSON_IsString(t) ? parse_time(t->valuestring) : 0;
        if (cJSON_IsString(why))
            snprintf(out->reason, sizeof out->reason, "%s", why->valuestring);
    }
    cJSON_Delete(o);
    if (!ok) {
        err_set(err, errlen, "%s: not an active record ({\"active\": VERSION, ...})", r->active_path);
        return REPO_ERROR;
    }
    return REPO_OK;
}

/* Reads one file of versions/ into e (called without the lock: it takes a
 * while; the caller stores e). */
static void examine(repo *r, const char *name, entry *e)
{
    char path[PATH_MAX + 160], err[400], version[32];
    snprintf(path, sizeof path, "%s/%s", r->versions, name);
    memset(&e->info, 0, sizeof e->info);
    e->valid = 0;
    size_t nlen = strlen(name), slen = strlen(SUFFIX);
    char base[32] = "";
    if (nlen == 16 + slen && strcmp(name + 16, SUFFIX) == 0)
        snprintf(base, sizeof base, "%.16s", name);
    if (!repo_valid_version(base)) {
        snprintf(e->why, sizeof e->why, "not a version file (versions/ holds VERSION%s files only)", SUFFIX);
        return;
    }
    float *params = malloc((size_t)NET_NUM_PARAMS * sizeof(float));
    ckpt_meta *meta = malloc(sizeof *meta);
    if (!params || !meta) {
        snprintf(e->why, sizeof e->why, "out of memory reading it");
        goto done;
    }
    if (ckpt_load(path, params, meta, err, sizeof err) != 0) {
        snprintf(e->why, sizeof e->why, "%s", err);
        goto done;
    }
    model_version_of(params, version);
    if (strcmp(version, base) != 0) {
        snprintf(e->why, sizeof e->why, "its content is version %s, not the version its name says", version);
        goto done;
    }
    repo_version *v = &e->info;
    snprintf(v->version, sizeof v->version, "%s", base);
    v->added_at = (double)e->mtime.tv_sec + e->mtime.tv_nsec * 1e-9;
    v->created_at = parse_time(ckpt_meta_get(meta, "created"));
    if (v->created_at <= 0)
        v->created_at = v->added_at;
    const char *s = ckpt_meta_get(meta, "job_id");
    v->job_id = s ? atoi(s) : 0;
    s = ckpt_meta_get(meta, "source");
    snprintf(v->source, sizeof v->source, "%s", s ? s : "");
    s = ckpt_meta_get(meta, "recipe");
    snprintf(v->recipe, sizeof v->recipe, "%s", s ? s : "");
    s = ckpt_meta_get(meta, "test_accuracy");
    char *end = NULL;
    double acc = s ? strtod(s, &end) : -1;
    v->test_accuracy = (s && end != s && acc >= 0 && acc <= 1) ? acc : -1;
    v->bytes = (long long)e->size;
    e->valid = 1;
done:
    free(params);
    free(meta);
}

static int newest_first(const void *a, const void *b)
{
    const repo_version *x = a, *y = b;
    if (x->created_at != y->created_at)
        return x->created_at < y->created_at ? 1 : -1;
    if (x->added_at != y->added_at)
        return x->added_at < y->added_at ? 1 : -1;
    return strcmp(x->version, y->version);
}

static entry *cache_find(repo *r, const char *name)
{
    for (int i = 0; i < r->ncache; i++)
        if (strcmp(r->cache[i].name, name) == 0)
            return &r->cache[i];
    return NULL;
}

/* Brings the cache up to date with versions/. Called with r->mu held. */
static void rescan(repo *r, repo_report_fn report, void *user)
{
    for (int i = 0; i < r->ncache; i++)
        r->cache[i].seen = 0;
    DIR *d = opendir(r->versions);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.' || atomic_is_temp_name(de->d_name) || strlen(de->d_name) >= sizeof r->cache[0].name)
                continue;
            char path[PATH_MAX + 160];
            snprintf(path, sizeof path, "%s/%s", r->versions, de->d_name);
            struct stat st;
            if (stat(path, &st) != 0)
                continue;
            entry *e = cache_find(r, de->d_name);
            if (e && e->dev == st.st_dev && e->ino == st.st_ino && e->size == st.st_size &&
                e->mtime.tv_sec == st.st_mtim.tv_sec && e->mtime.tv_nsec == st.st_mtim.tv_nsec) {
                e->seen = 1;
                continue;
            }
            if (!e) {
                if (r->ncache == r->capcache) {
                    int cap = r->capcache ? 2 * r->capcache : 16;
                    entry *c = realloc(r->cache, (size_t)cap * sizeof *c);
                    if (!c)
                        break;
                    r->cache = c;
                    r->capcache = cap;
                }
                e = &r->cache[r->ncache++];
                memset(e, 0, sizeof *e);
                snprintf(e->name, sizeof e->name, "%s", de->d_name);
            }
            e->dev = st.st_dev;
            e->ino = st.st_ino;
            e->size = st.st_size;
            e->mtime = st.st_mtim;
            e->reported = 0;
            e->seen = 1;
            if (!S_ISREG(st.st_mode)) {
                e->valid = 0;
                snprintf(e->why, sizeof e->why, "not a regular file");
            } else {
                examine(r, de->d_name, e);
            }
        }
        closedir(d);
    }
    int k = 0;
    for (int i = 0; i < r->ncache; i++) {
        if (!r->cache[i].seen)
            continue;
        r->cache[k++] = r->cache[i];
    }
    r->ncache = k;
    for (int i = 0; i < r->ncache; i++) {
        entry *e = &r->cache[i];
        if (!e->valid && !e->reported && report) {
            char msg[600], path[PATH_MAX + 160];
            snprintf(msg, sizeof msg, "model repository: skipped a file that is not a usable version "
                     "(left in place): %s", e->why);
            snprintf(path, sizeof path, "%s/%s", r->versions, e->name);
            report(user, "warn", msg, path);
            e->reported = 1;
        }
    }
}

static int list_locked(repo *r, repo_version *out, int max, repo_report_fn report, void *user)
{
    rescan(r, report, user);
    int n = 0;
    for (int i = 0; i < r->ncache; i++)
        n += r->cache[i].valid;
    repo_version *all = calloc((size_t)(n ? n : 1), sizeof *all);
    if (!all)
        return 0;
    int k = 0;
    for (int i = 0; i < r->ncache; i++)
        if (r->cache[i].valid)
            all[k++] = r->cache[i].info;
    qsort(all, (size_t)n, sizeof *all, newest_first);
    for (int i = 0; i < n && i < max; i++)
        out[i] = all[i];
    free(all);
    return n;
}

int repo_list(repo *r, repo_version *out, int max, repo_report_fn report, void *user)
{
    pthread_mutex_lock(&r->mu);
    int n = list_locked(r, out, max, report, user);
    pthread_mutex_unlock(&r->mu);
    return n;
}

static int get_locked(repo *r, const char *version, repo_version *out, char *err, size_t errlen)
{
    if (!repo_valid_version(version)) {
        err_set(err, errlen, "no model version '%.40s' (a version is 16 hex digits)", version);
        return REPO_NOT_FOUND;
    }
    rescan(r, NULL, NULL);
    char name[64];
    snprintf(name, sizeof name, "%s" SUFFIX, version);
    entry *e = cache_find(r, name);
    if (!e) {
        err_set(err, errlen, "no model version %s in %s", version, r->versions);
        return REPO_NOT_FOUND;
    }
    if (!e->valid) {
        err_set(err, errlen, "version %s cannot be used: %s", version, e->why);
        return REPO_INVALID;
    }
    if (out)
        *out = e->info;
    return REPO_OK;
}

int repo_get(repo *r, const char *version, repo_version *out, char *err, size_t errlen)
{
    pthread_mutex_lock(&r->mu);
    int rc = get_locked(r, version, out, err, errlen);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

static int not_owner(const repo *r, char *err, size_t errlen)
{
    err_set(err, errlen, "%s", r->lock_error);
    return REPO_NOT_OWNER;
}

int repo_add(repo *r, const float *params, const ckpt_meta *meta, char version[32], char *err,
             size_t errlen)
{
    if (!repo_owner(r))
        return not_owner(r, err, errlen);
    model_version_of(params, version);
    char path[PATH_MAX + 64];
    repo_version_path(r, version, path, sizeof path);
    pthread_mutex_lock(&r->mu);
    int rc = get_locked(r, version, NULL, NULL, 0);
    if (rc == REPO_OK) {
        pthread_mutex_unlock(&r->mu);
        return REPO_OK;  /* the same weights are already there */
    }
    /* An invalid file under that name (a damaged copy) is replaced: the name
     * says what it should hold, and the new file holds exactly that. */
    rc = ckpt_save(path, params, meta, err, errlen) == 0 ? REPO_OK : REPO_ERROR;
    pthread_mutex_unlock(&r->mu);
    return rc;
}

static int write_active(repo *r, const repo_active *a, char *err, size_t errlen)
{
    char when[40], prev[40], text[512];
    format_time(a->activated_at, when, sizeof when);
    if (a->previous[0])
        snprintf(prev, sizeof prev, "\"%s\"", a->previous);
    else
        snprintf(prev, sizeof prev, "null");
    int n = snprintf(text, sizeof text,
                     "{\"active\":\"%s\",\"previous\":%s,\"activated_at\":\"%s\",\"reason\":\"%s\"}\n",
                     a->active, prev, when, a->reason);
    atomic_part part = {text, (size_t)n};
    return atomic_write(r->active_path, &part, 1, err, errlen) == 0 ? REPO_OK : REPO_ERROR;
}

int repo_activate(repo *r, const char *version, const char *reason, char *err, size_t errlen)
{
    if (!repo_owner(r))
        return not_owner(r, err, errlen);
    pthread_mutex_lock(&r->mu);
    int rc = get_locked(r, version, NULL, err, errlen);
    if (rc != REPO_OK)
        goto out;
    repo_active cur, next;
    char rerr[300];
    if (repo_read_active(r, &cur, rerr, sizeof rerr) == REPO_ERROR)
        memset(&cur, 0, sizeof cur);  /* replaced by a good record below */
    memset(&next, 0, sizeof next);
    snprintf(next.active, sizeof next.active, "%s", version);
    snprintf(next.previous, sizeof next.previous, "%s",
             strcmp(cur.active, version) != 0 ? cur.active : cur.previous);
    next.activated_at = (double)time(NULL);
    snprintf(next.reason, sizeof next.reason, "%s", reason ? reason : "api");
    rc = write_active(r, &next, err, errlen);
out:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

static int delete_locked(repo *r, const char *version, char *err, size_t errlen)
{
    repo_active cur;
    char rerr[300];
    int arc = repo_read_active(r, &cur, rerr, sizeof rerr);
    if (arc == REPO_ERROR) {
        err_set(err, errlen, "not deleting anything while the active record is unreadable: %s", rerr);
        return REPO_ERROR;
    }
    if (!repo_valid_version(version)) {
        err_set(err, errlen, "no model version '%.40s' (a version is 16 hex digits)", version);
        return REPO_NOT_FOUND;
    }
    if (arc == REPO_OK && strcmp(cur.active, version) == 0) {
        err_set(err, errlen, "version %s is the active version; activate another one first", version);
        return REPO_IS_ACTIVE;
    }
    if (arc == REPO_OK && strcmp(cur.previous, version) == 0) {
        err_set(err, errlen, "version %s was active before the active one and is kept for a rollback; "
                "activate another version first", version);
        return REPO_IS_PREVIOUS;
    }
    char path[PATH_MAX + 64];
    repo_version_path(r, version, path, sizeof path);
    if (unlink(path) != 0) {
        if (errno == ENOENT) {
            err_set(err, errlen, "no model version %s in %s", version, r->versions);
            return REPO_NOT_FOUND;
        }
        err_set(err, errlen, "%s: %s", path, strerror(errno));
        return REPO_ERROR;
    }
    if (atomic_sync_parent(path) != 0) {
        err_set(err, errlen, "%s: deleted, but fsync of its directory failed: %s", path, strerror(errno));
        return REPO_ERROR;
    }
    return REPO_OK;
}

int repo_delete(repo *r, const char *version, char *err, size_t errlen)
{
    if (!repo_owner(r))
        return not_owner(r, err, errlen);
    pthread_mutex_lock(&r->mu);
    int rc = delete_locked(r, version, err, errlen);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int repo_retain(repo *r, int keep, repo_report_fn report, void *user)
{
    if (keep <= 0 || !repo_owner(r))
        return 0;
    pthread_mutex_lock(&r->mu);
    int deleted = 0;
    int n = list_locked(r, NULL, 0, report, user);
    repo_version *all = n > keep ? calloc((size_t)n, sizeof *all) : NULL;
    if (all) {
        n = list_locked(r, all, n, report, user);
        repo_active cur;
        char err[400];
        int arc = repo_read_active(r, &cur, err, sizeof err);
        /* From the oldest, while more than keep remain. */
        for (int i = n - 1; i >= 0 && n - deleted > keep && arc != REPO_ERROR; i--) {
            if (arc == REPO_OK &&
                (strcmp(all[i].version, cur.active) == 0 || strcmp(all[i].version, cur.previous) == 0))
                continue;
            if (delete_locked(r, all[i].version, err, sizeof err) == REPO_OK) {
                deleted++;
                if (report) {
                    char path[PATH_MAX + 64], msg[160];
                    repo_version_path(r, all[i].version, path, sizeof path);
                    snprintf(msg, sizeof msg, "model repository: deleted version %s (--keep-models %d)",
                             all[i].version, keep);
                    report(user, "info", msg, path);
                }
            } else if (report) {
                report(user, "warn", err, all[i].version);
            }
        }
        free(all);
    }
    pthread_mutex_unlock(&r->mu);
    return deleted;
}

int repo_remove_stale_temps(repo *r)
{
    if (!repo_owner(r))
        return 0;
    return atomic_remove_stale_temps(r->versions, "") + atomic_remove_stale_temps(r->jobs, "") +
           atomic_remove_stale_temps(r->dir, "active");
}
