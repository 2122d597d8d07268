/* server/repo.h -- the model repository: a directory of immutable model
 * versions and one record naming the active version.
 *
 * Layout of DIR:
 *   versions/VERSION.safetensors  one checkpoint per version, named by its
 *                                 content hash (model_version_of); written
 *                                 once, atomically, never changed
 *   active                        {"active":V,"previous":V|null,
 *                                  "activated_at":"RFC 3339","reason":R},
 *                                 replaced atomically (write, fsync, rename,
 *                                 fsync of DIR)
 *   jobs/ID.json                  training job records (server/jobstore.h)
 *   lock                          flock'ed by the one process that may write
 *
 * Crash safety: a version file is complete (fsync'ed, renamed, directory
 * fsync'ed) before any active record names it; the active and the
 * previously active versions are never deleted. So after SIGKILL at any
 * moment the record names complete versions only.
 *
 * Writers: only the process holding the lock (repo_owner) adds, activates
 * or deletes; another process (a second daemon, a read-only mount) reads.
 * Files in versions/ that fail the loader's checks, or whose content is not
 * the version their name says, are reported once and skipped, never
 * deleted. All functions are thread-safe. */
#ifndef MNISTD_REPO_H
#define MNISTD_REPO_H

#include <stddef.h>

#include "model/checkpoint.h"

typedef struct repo repo;

/* One version, as listed. */
typedef struct {
    char version[32];
    double created_at;      /* unix seconds: metadata "created", else the file's mtime */
    double added_at;        /* the file's mtime (when it entered the repository) */
    int job_id;             /* the training job that made it, 0 if none */
    char source[256];       /* metadata "source" */
    char recipe[512];       /* the training settings as JSON text, "" if unknown */
    double test_accuracy;   /* metadata "test_accuracy", -1 if unknown */
    long long bytes;        /* file size */
} repo_version;

/* The active record. */
typedef struct {
    char active[32];        /* "" = none */
    char previous[32];      /* "" = none */
    double activated_at;    /* unix seconds, 0 unknown */
    char reason[16];        /* job, api, startup, cli */
} repo_active;

enum {
    REPO_OK = 0,
    REPO_NONE = 1,          /* no active record yet */
    REPO_ERROR = -1,        /* I/O error, err says which */
    REPO_NOT_FOUND = -2,    /* no such version */
    REPO_INVALID = -3,      /* the version's file fails the loader's checks */
    REPO_IS_ACTIVE = -4,    /* refused: the version is active */
    REPO_IS_PREVIOUS = -5,  /* refused: the version was active before (the rollback target) */
    REPO_NOT_OWNER = -6,    /* refused: another process holds the lock */
};

/* Reports a file skipped or removed (level "warn"/"info", msg, the path). */
typedef void (*repo_report_fn)(void *user, const char *level, const char *msg, const char *path);

/* Opens (creating DIR, versions/ and jobs/ where possible) the repository
 * and tries to take its lock without waiting. want_lock 0 opens it for
 * reading only. NULL with err set when DIR cannot be used at all. */
repo *repo_open(const char *dir, int want_lock, char *err, size_t errlen);
void repo_close(repo *r);

/* 1 when this process holds the lock (it may add, activate, delete). */
int repo_owner(const repo *r);
/* Why this process does not hold the lock ("" when it does), e.g. "the
 * model repository /x is locked by process 12 (another mnistd)". */
const char *repo_lock_error(const repo *r);
const char *repo_dir(const repo *r);
/* DIR/jobs, where job records go. */
const char *repo_jobs_dir(const repo *r);

/* 1 if s has the form of a version (16 lowercase hex digits). */
int repo_valid_version(const char *s);
/* The path of a version's file. */
void repo_version_path(const repo *r, const char *version, char *buf, size_t len);

/* Reads the active record: REPO_OK, REPO_NONE (no record), or REPO_ERROR
 * with err set (unreadable or malformed). */
int repo_read_active(repo *r, repo_active *out, char *err, size_t errlen);

/* The valid versions, newest first (created_at, then added_at), up to max
 * of them into out (may be NULL with max 0); returns how many there are.
 * Files found invalid are reported (once each) through report (may be
 * NULL). */
int repo_list(repo *r, repo_version *out, int max, repo_report_fn report, void *user);

/* One version: REPO_OK, REPO_NOT_FOUND, or REPO_INVALID with err saying
 * why the loader refuses its file. */
int repo_get(repo *r, const char *version, repo_version *out, char *err, size_t errlen);

/* Saves params and meta as a new version (nothing is written when that
 * version is already there and valid); its name goes to version. REPO_OK,
 * REPO_NOT_OWNER, or REPO_ERROR with err set (e.g. the disk is full: the
 * repository is then as before). */
int repo_add(repo *r, const float *params, const ckpt_meta *meta, char version[32],
             char *err, size_t errlen);

/* Makes version the active one (the old active one becomes the previous
 * one) by replacing the record atomically. The version must be there and
 * valid. REPO_OK, REPO_NOT_OWNER, REPO_NOT_FOUND, REPO_INVALID, REPO_ERROR. */
int repo_activate(repo *r, const char *version, const char *reason, char *err, size_t errlen);

/* Deletes a version's file. REPO_OK, REPO_NOT_OWNER, REPO_NOT_FOUND,
 * REPO_IS_ACTIVE, REPO_IS_PREVIOUS, REPO_ERROR. */
int repo_delete(repo *r, const char *version, char *err, size_t errlen);

/* Retention: deletes the oldest valid versions beyond keep, never the active
 * or the previously active one (keep 0: none). Each deletion is reported.
 * Returns the number deleted (0 when not the owner). */
int repo_retain(repo *r, int keep, repo_report_fn report, void *user);

/* Removes stale temporary files of interrupted writes (atomicfile.h) in
 * versions/, jobs/ and DIR. Returns the number removed. */
int repo_remove_stale_temps(repo *r);

#endif
