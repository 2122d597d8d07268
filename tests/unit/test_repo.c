/* The model repository without HTTP (server/repo.h, server/jobstore.h): a
 * version is saved once under its content hash; activation keeps the
 * previous version; deleting the active or the previous version is
 * refused; a damaged or foreign file is reported, skipped and left in
 * place; retention keeps the active and previous versions; the lock lets
 * one owner write; an unreadable active record is an error, not "none";
 * job records survive a round trip. */
#include "tests/unit/test.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/checkpoint.h"
#include "model/net.h"
#include "server/jobstore.h"
#include "server/modelstore.h"
#include "server/repo.h"

static float *params_of(int k)
{
    float *p = malloc((size_t)NET_NUM_PARAMS * sizeof *p);
    for (int i = 0; p && i < NET_NUM_PARAMS; i++)
        p[i] = (float)((i * 7 + k * 13) % 101) / 101.0f - 0.5f;
    return p;
}

static int reports;
static void count_report(void *user, const char *level, const char *msg, const char *path)
{
    (void)user, (void)level, (void)msg, (void)path;
    reports++;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

int main(void)
{
    char err[1200];
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mnistd-repo-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    const char *dir = tpath("repo");
    repo *r = repo_open(dir, 1, err, sizeof err);
    float *p[5];
    for (int k = 0; k < 5; k++)
        p[k] = params_of(k);
    char v[5][32];
    ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    ckpt_meta_set(&meta, "job_id", "7");
    ckpt_meta_set(&meta, "test_accuracy", "0.5");

    TEST_BEGIN("repo_open_owner");
    CHECK(r && repo_owner(r), "open: %s", r ? repo_lock_error(r) : err);
    TEST_END();

    TEST_BEGIN("repo_add_named_by_content");
    for (int k = 0; k < 3; k++)
        CHECK(repo_add(r, p[k], &meta, v[k], err, sizeof err) == REPO_OK, "add %d: %s", k, err);
    char expect[32], path[1200];
    model_version_of(p[0], expect);
    CHECK(strcmp(v[0], expect) == 0, "version %s, hash %s", v[0], expect);
    repo_version_path(r, v[0], path, sizeof path);
    struct stat st1, st2;
    stat(path, &st1);
    char again[32];
    CHECK(repo_add(r, p[0], &meta, again, err, sizeof err) == REPO_OK && strcmp(again, v[0]) == 0, "re-add");
    stat(path, &st2);
    CHECK(st1.st_ino == st2.st_ino, "the same weights were written again");
    CHECK(repo_list(r, NULL, 0, NULL, NULL) == 3, "list %d", repo_list(r, NULL, 0, NULL, NULL));
    repo_version one;
    CHECK(repo_get(r, v[1], &one, err, sizeof err) == REPO_OK && one.job_id == 7 && one.test_accuracy == 0.5 &&
          one.bytes == (long long)st1.st_size, "get: job %d acc %g bytes %lld", one.job_id, one.test_accuracy,
          one.bytes);
    TEST_END();

    TEST_BEGIN("repo_activate_keeps_previous");
    repo_active a;
    CHECK(repo_read_active(r, &a, err, sizeof err) == REPO_NONE, "a new repository has an active record");
    CHECK(repo_activate(r, v[0], "api", err, sizeof err) == REPO_OK, "%s", err);
    CHECK(repo_activate(r, v[1], "job", err, sizeof err) == REPO_OK, "%s", err);
    CHECK(repo_read_active(r, &a, err, sizeof err) == REPO_OK && strcmp(a.active, v[1]) == 0 &&
          strcmp(a.previous, v[0]) == 0 && strcmp(a.reason, "job") == 0, "active %s previous %s", a.active,
          a.previous);
    /* activating the active one again keeps the rollback target */
    CHECK(repo_activate(r, v[1], "api", err, sizeof err) == REPO_OK, "%s", err);
    repo_read_active(r, &a, err, sizeof err);
    CHECK(strcmp(a.previous, v[0]) == 0, "previous became %s", a.previous);
    CHECK(repo_activate(r, "0123456789abcdef", "api", err, sizeof err) == REPO_NOT_FOUND, "unknown version");
    CHECK(repo_activate(r, "../../etc/passwd", "api", err, sizeof err) == REPO_NOT_FOUND, "a path as version");
    TEST_END();

    TEST_BEGIN("repo_delete_refusals");
    CHECK(repo_delete(r, v[1], err, sizeof err) == REPO_IS_ACTIVE, "active deleted");
    CHECK(repo_delete(r, v[0], err, sizeof err) == REPO_IS_PREVIOUS, "previous deleted");
    CHECK(repo_delete(r, "0123456789abcdef", err, sizeof err) == REPO_NOT_FOUND, "unknown");
    CHECK(repo_delete(r, v[2], err, sizeof err) == REPO_OK, "%s", err);
    repo_version_path(r, v[2], path, sizeof path);
    CHECK(access(path, F_OK) != 0, "file still there");
    TEST_END();

    TEST_BEGIN("repo_bad_files_skipped_and_kept");
    char bad[1200], foreign[1200], misnamed[1200];
    repo_version_path(r, "00000000000000aa", bad, sizeof bad);
    write_file(bad, "not a model");
    snprintf(foreign, sizeof foreign, "%s/versions/notes.txt", dir);
    write_file(foreign, "hello");
    /* a valid checkpoint under a name that is not its content */
    repo_version_path(r, "00000000000000bb", misnamed, sizeof misnamed);
    CHECK(ckpt_save(misnamed, p[3], NULL, err, sizeof err) == 0, "%s", err);
    reports = 0;
    int n = repo_list(r, NULL, 0, count_report, NULL);
    CHECK(n == 2 && reports == 3, "listed %d, reported %d", n, reports);
    n = repo_list(r, NULL, 0, count_report, NULL);
    CHECK(reports == 3, "reported again: %d", reports);
    CHECK(access(bad, F_OK) == 0 && access(foreign, F_OK) == 0 && access(misnamed, F_OK) == 0, "a bad file was removed");
    CHECK(repo_activate(r, "00000000000000aa", "api", err, sizeof err) == REPO_INVALID, "activated a corrupt file");
    CHECK(repo_activate(r, "00000000000000bb", "api", err, sizeof err) == REPO_INVALID && strstr(err, "content"),
          "activated a misnamed file: %s", err);
    repo_read_active(r, &a, err, sizeof err);
    CHECK(strcmp(a.active, v[1]) == 0, "the active version changed to %s", a.active);
    TEST_END();

    TEST_BEGIN("repo_retention");
    CHECK(repo_add(r, p[3], &meta, v[3], err, sizeof err) == REPO_OK, "%s", err);
    CHECK(repo_add(r, p[4], &meta, v[4], err, sizeof err) == REPO_OK, "%s", err);
    /* versions now: v0 (previous), v1 (active), v3, v4 */
    int del = repo_retain(r, 1, NULL, NULL);
    CHECK(del == 2, "deleted %d", del);
    CHECK(repo_get(r, v[0], NULL, err, sizeof err) == REPO_OK && repo_get(r, v[1], NULL, err, sizeof err) == REPO_OK,
          "the active or previous version was deleted");
    CHECK(repo_list(r, NULL, 0, NULL, NULL) == 2, "left %d", repo_list(r, NULL, 0, NULL, NULL));
    CHECK(access(bad, F_OK) == 0 && access(misnamed, F_OK) == 0, "retention deleted a file it cannot read");
    TEST_END();

    TEST_BEGIN("repo_lock_one_owner");
    repo *r2 = repo_open(dir, 1, err, sizeof err);
    CHECK(r2 && !repo_owner(r2) && strstr(repo_lock_error(r2), "locked by process"), "second owner: %s",
          r2 ? repo_lock_error(r2) : err);
    char tmp[32];
    CHECK(r2 && repo_add(r2, p[2], &meta, tmp, err, sizeof err) == REPO_NOT_OWNER, "a reader wrote");
    CHECK(r2 && repo_activate(r2, v[0], "api", err, sizeof err) == REPO_NOT_OWNER, "a reader activated");
    CHECK(r2 && repo_list(r2, NULL, 0, NULL, NULL) == 2, "a reader cannot list");
    repo_close(r2);
    repo_close(r);
    r = repo_open(dir, 1, err, sizeof err);
    CHECK(r && repo_owner(r), "the lock was not released on close");
    TEST_END();

    TEST_BEGIN("repo_active_record_corrupt_is_an_error");
    char ap[1200];
    snprintf(ap, sizeof ap, "%s/active", dir);
    write_file(ap, "{\"active\": 12}");
    CHECK(repo_read_active(r, &a, err, sizeof err) == REPO_ERROR && strstr(err, "active"), "%s", err);
    CHECK(repo_delete(r, v[3], err, sizeof err) == REPO_ERROR, "deleted with an unreadable record");
    CHECK(repo_activate(r, v[0], "cli", err, sizeof err) == REPO_OK, "activation over an unreadable record: %s", err);
    CHECK(repo_read_active(r, &a, err, sizeof err) == REPO_OK && strcmp(a.active, v[0]) == 0, "%s", err);
    TEST_END();

    TEST_BEGIN("jobstore_round_trip");
    job_info in, *all = NULL;
    memset(&in, 0, sizeof in);
    in.id = 12;
    in.status = JOB_SUCCEEDED;
    train_config_default(&in.cfg);
    in.cfg.learning_rate = 0.5f;
    in.cfg.augment = (augment_config){2.5f, 12.0f, 0.1f, 1.5f, 0.5f};
    in.created_at = 1700000000.25;
    in.n_history = 2;
    in.history[1].epoch = 2;
    in.history[1].val_loss = NAN;
    in.has_test = 1;
    in.test_accuracy = 0.9876;
    in.promote = PROMOTE_NEVER;
    in.promoted = 0;
    snprintf(in.promotion, sizeof in.promotion, "why \"quoted\"");
    snprintf(in.model_version, sizeof in.model_version, "%s", v[0]);
    const double phases[JOB_NPHASES] = {0.001, 0.5, 2.75, 0.25, -1, -1};
    memcpy(in.phase_seconds, phases, sizeof phases);
    const char *jd = repo_jobs_dir(r);
    CHECK(jobstore_save(jd, &in, err, sizeof err) == 0, "%s", err);
    in.id = 3;
    in.status = JOB_RUNNING;
    CHECK(jobstore_save(jd, &in, err, sizeof err) == 0, "%s", err);
    char junk[1200];
    snprintf(junk, sizeof junk, "%s/5.json", jd);
    write_file(junk, "{broken");
    n = 0;
    CHECK(jobstore_load(jd, &all, &n) == 0 && n == 2, "loaded %d", n);
    if (n == 2) {
        CHECK(all[0].id == 3 && all[1].id == 12, "order %d %d", all[0].id, all[1].id);
        job_info *o = &all[1];
        CHECK(o->status == JOB_SUCCEEDED && o->cfg.learning_rate == 0.5f && o->created_at == 1700000000.25 &&
              o->n_history == 2 && o->history[1].epoch == 2 && isnan(o->history[1].val_loss) &&
              o->test_accuracy == 0.9876 && o->promote == PROMOTE_NEVER && o->promoted == 0 &&
              strcmp(o->promotion, in.promotion) == 0 && strcmp(o->model_version, v[0]) == 0 &&
              memcmp(&o->cfg.augment, &in.cfg.augment, sizeof in.cfg.augment) == 0 &&
              memcmp(o->phase_seconds, phases, sizeof phases) == 0,
              "fields differ after a round trip");
    }
    free(all);
    /* a record written before phases were timed: every phase unknown */
    snprintf(junk, sizeof junk, "%s/5.json", jd);
    write_file(junk, "{\"id\": 5, \"status\": 2, \"created_at\": 1700000000}");
    n = 0;
    CHECK(jobstore_load(jd, &all, &n) == 0 && n == 3, "loaded %d", n);
    for (int k = 0; k < n; k++)
        if (all[k].id == 5)
            for (int ph = 0; ph < JOB_NPHASES; ph++)
                CHECK(all[k].phase_seconds[ph] == -1, "an old record's phase %d: %g", ph, all[k].phase_seconds[ph]);
    free(all);
    jobstore_remove(jd, 5);
    jobstore_remove(jd, 12);
    jobstore_load(jd, &all, &n);
    CHECK(n == 1, "removed record still loads (%d)", n);
    free(all);
    TEST_END();

    repo_close(r);
    for (int k = 0; k < 5; k++)
        free(p[k]);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        return 1;
    TEST_EXIT();
}
