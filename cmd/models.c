/* cmd/models.c -- `mnistd models list|activate|delete --model-dir DIR`:
 * the model repository for operators, without the server. Changes need the
 * repository's lock: while a daemon owns the repository, they go through
 * its API instead (the command says so). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/cli.h"
#include "server/repo.h"

static void models_usage(FILE *f)
{
    fprintf(f,
            "usage: mnistd models list --model-dir DIR\n"
            "       mnistd models activate VERSION --model-dir DIR\n"
            "       mnistd models delete VERSION --model-dir DIR\n"
            "\n"
            "The model repository of a daemon started with --model-dir DIR (also read from\n"
            "MNISTD_MODEL_DIR). list prints every version, newest first, with its state\n"
            "(active, previous: the rollback target), creation time, training job, test\n"
            "accuracy, size and source. activate makes VERSION the served one (a daemon\n"
            "serving DIR with --watch-s picks it up); delete removes a version's file (not\n"
            "the active or the previous one). Changes need the repository's lock: while a\n"
            "daemon owns DIR, use its API (POST /models/VERSION/activate, DELETE\n"
            "/models/VERSION). Files that are not valid versions are reported and left alone.\n");
}

static void report(void *user, const char *level, const char *msg, const char *path)
{
    (void)user;
    fprintf(stderr, "mnistd models: %s: %s: %s\n", level, path, msg);
}

static int list(repo *rp)
{
    char err[600];
    repo_active a;
    int arc = repo_read_active(rp, &a, err, sizeof err);
    if (arc == REPO_ERROR)
        fprintf(stderr, "mnistd models: %s\n", err);
    int n = repo_list(rp, NULL, 0, report, NULL);
    repo_version *v = calloc((size_t)(n ? n : 1), sizeof *v);
    if (!v) {
        fprintf(stderr, "mnistd models: out of memory\n");
        return 1;
    }
    n = repo_list(rp, v, n, NULL, NULL);
    printf("%-16s  %-8s  %-20s  %5s  %8s  %7s  %s\n", "VERSION", "STATE", "CREATED", "JOB", "ACCURACY", "BYTES",
           "SOURCE");
    for (int i = 0; i < n; i++) {
        char when[32], job[16], acc[16];
        time_t t = (time_t)v[i].created_at;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(job, sizeof job, v[i].job_id > 0 ? "%d" : "-", v[i].job_id);
        if (v[i].test_accuracy >= 0)
            snprintf(acc, sizeof acc, "%.4f", v[i].test_accuracy);
        else
            snprintf(acc, sizeof acc, "-");
        const char *state = strcmp(v[i].version, a.active) == 0     ? "active"
                            : strcmp(v[i].version, a.previous) == 0 ? "previous"
                                                                    : "-";
        printf("%-16s  %-8s  %-20s  %5s  %8s  %7lld  %s\n", v[i].version, state, when, job, acc, v[i].bytes,
               v[i].source);
    }
    free(v);
    if (arc == REPO_NONE)
        printf("(no active version: activate one with `mnistd models activate VERSION --model-dir %s`)\n",
               repo_dir(rp));
    return 0;
}

int cli_models(int argc, char **argv)
{
    const char *dir = getenv("MNISTD_MODEL_DIR");
    const char *sub = NULL, *version = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            models_usage(stdout);
            return 0;
        }
        if (strcmp(a, "--model-dir") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "mnistd models: --model-dir needs a value\n");
                return 2;
            }
            dir = argv[++i];
        } else if (strncmp(a, "--model-dir=", 12) == 0) {
            dir = a + 12;
        } else if (a[0] == '-') {
            fprintf(stderr, "mnistd models: unknown flag '%s'\n\n", a);
            models_usage(stderr);
            return 2;
        } else if (!sub) {
            sub = a;
        } else if (!version) {
            version = a;
        } else {
            fprintf(stderr, "mnistd models: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    int is_list = sub && strcmp(sub, "list") == 0;
    int is_act = sub && strcmp(sub, "activate") == 0;
    int is_del = sub && strcmp(sub, "delete") == 0;
    if (!is_list && !is_act && !is_del) {
        if (sub)
            fprintf(stderr, "mnistd models: unknown subcommand '%s'\n\n", sub);
        else
            fprintf(stderr, "mnistd models: no subcommand\n\n");
        models_usage(stderr);
        return 2;
    }
    if (!dir || !*dir) {
        fprintf(stderr, "mnistd models: --model-dir DIR (or MNISTD_MODEL_DIR) is required\n");
        return 2;
    }
    if (is_list != !version) {
        if (is_list)
            fprintf(stderr, "mnistd models list takes no VERSION\n");
        else
            fprintf(stderr, "mnistd models %s needs a VERSION\n", sub);
        return 2;
    }
    char err[1200];
    repo *rp = repo_open(dir, !is_list, err, sizeof err);
    if (!rp) {
        fprintf(stderr, "mnistd models: %s\n", err);
        return 1;
    }
    int rc = 0;
    if (is_list) {
        rc = list(rp);
    } else if (!repo_owner(rp)) {
        fprintf(stderr, "mnistd models: %s. Use that daemon's API instead: %s /models/%s%s\n",
                repo_lock_error(rp), is_act ? "POST" : "DELETE", version, is_act ? "/activate" : "");
        rc = 1;
    } else {
        int r = is_act ? repo_activate(rp, version, "cli", err, sizeof err)
                       : repo_delete(rp, version, err, sizeof err);
        if (r != REPO_OK) {
            fprintf(stderr, "mnistd models: %s\n", err);
            rc = 1;
        } else if (is_act) {
            repo_active a;
            repo_read_active(rp, &a, err, sizeof err);
            printf("activated %s (previous: %s)\n", a.active, a.previous[0] ? a.previous : "none");
        } else {
            printf("deleted %s\n", version);
        }
    }
    repo_close(rp);
    return rc;
}
