/* server/lifecycle.h -- which model is served, and how that changes: the
 * model repository (server/repo.h) or a single model file, and the served
 * model store (server/modelstore.h) kept in step with it.
 *
 * Every change of the served model goes through here, one at a time: at
 * startup, when a training job finishes (its promotion policy decides), on
 * POST /models/{version}/activate, and when a watched repository names a
 * new active version. The version is loaded and checked completely first,
 * then the active record is replaced (atomically), then the store swaps it
 * in: a failure at any step leaves the served model and the record as they
 * were, and no in-flight request notices a swap. */
#ifndef MNISTD_LIFECYCLE_H
#define MNISTD_LIFECYCLE_H

#include <stddef.h>

#include "model/checkpoint.h"
#include "model/mnist.h"
#include "server/modelstore.h"
#include "server/promote.h"
#include "server/repo.h"


typedef struct lifecycle lifecycle;

/* rp: the repository (taken over, closed by lifecycle_destroy), or NULL for
 * a single model file at model_path. keep: --keep-models (0 = all). Logs
 * through server/log.h. */
lifecycle *lifecycle_create(modelstore *ms, repo *rp, const char *model_path, int keep);
/* Stops the watcher, closes the repository. NULL ignored. */
void lifecycle_destroy(lifecycle *lc);

repo *lifecycle_repo(lifecycle *lc);   /* NULL in single-file mode */
/* 1 when this process may train and change the models (single file: 1;
 * repository: holds its lock). */
int lifecycle_writable(lifecycle *lc);
/* Why not ("" when writable). */
const char *lifecycle_readonly_reason(lifecycle *lc);

/* Startup: serves the active version (or the model file). seed: a model
 * file to import as the first version of an empty repository (NULL: none).
 * Returns 0 (serving), 1 (nothing to serve yet: the caller may train),
 * 2 (the repository has versions but none is active: do not train), or -1
 * (refuse to start; the reason, naming the file and the command that
 * fixes it, is logged). */
int lifecycle_startup(lifecycle *lc, const char *seed);

/* What became of a trained model. */
typedef struct {
    char version[32];
    int promoted;
    double active_accuracy;   /* of the active model on the same test set, -1 none */
    char promotion[512];      /* why, with both accuracies */
} lifecycle_outcome;

/* A training job's model: saved as a new version (or, for a single file,
 * saved over it only when promoted), promoted per policy (if_better:
 * accuracy >= the active model's on test, evaluated with threads), then
 * retention. 0, or -1 with err set when the model could not be saved or
 * activated (the repository and the served model are then as before). */
int lifecycle_job_model(lifecycle *lc, const float *params, const ckpt_meta *meta, const char *source,
                        promote_policy policy, double accuracy, const mnist_set *test, int threads,
                        lifecycle_outcome *out, char *err, size_t errlen);

/* Activates a version of the repository (reason: "api", ...). REPO_OK and
 * *out (a new reference, may be NULL) the model now served, or a REPO_
 * code with err set: REPO_NOT_FOUND, REPO_INVALID (the loader's reason),
 * REPO_NOT_OWNER, REPO_ERROR. */
int lifecycle_activate(lifecycle *lc, const char *version, const char *reason, served_model **out,
                       char *err, size_t errlen);

/* Deletes a version (repo_delete's codes). */
int lifecycle_delete(lifecycle *lc, const char *version, char *err, size_t errlen);

/* Follows the repository: every seconds, a new active version in the record
 * is loaded and served (reason "watch"). 0, or -1 when the thread cannot
 * start. No-op in single-file mode or with seconds 0. */
int lifecycle_watch_start(lifecycle *lc, int seconds);

/* One look at the record (what the watcher does each period). 1 when it
 * swapped in a new version, 0 when nothing changed, -1 when the new version
 * cannot be served (the current one stays; tried again at the next look,
 * the error logged once per version). */
int lifecycle_watch_once(lifecycle *lc);

/* The number of valid versions (0 in single-file mode). */
int lifecycle_version_count(lifecycle *lc);

#endif
