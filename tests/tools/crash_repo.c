/* crash_repo -- changes a model repository in a loop so that a test can
 * kill it with SIGKILL at any moment and check what is left on disk (the
 * command line of tests/tools/crashtool.h):
 *
 *   crash_repo init DIR    adds parameter set 0 and activates it
 *   crash_repo loop DIR    forever: adds the next of 6 parameter sets as a
 *                          version (repo_add: the daemon's save), activates
 *                          it (repo_activate), deletes the oldest version
 *                          that is neither active nor previous
 *                          (repo_delete)
 *   crash_repo check DIR   the repository is consistent: the active record
 *                          reads, names a version whose file loads
 *                          completely and holds that version, and so does
 *                          the previous one; every file in versions/ other
 *                          than temporary files is a complete version.
 *                          Prints "ok ACTIVE PREVIOUS VERSIONS TEMPS" */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/tools/crashtool.h"
#include "tests/tools/paramsets.h"

#include "model/checkpoint.h"
#include "model/net.h"
#include "server/modelstore.h"
#include "server/repo.h"

/* The version's file loads and holds that version. */
static int check_version(repo *r, const char *v, float *buf, char *why, size_t len)
{
    char path[4200], err[600], got[32];
    repo_version_path(r, v, path, sizeof path);
    if (ckpt_load(path, buf, NULL, err, sizeof err) != 0) {
        snprintf(why, len, "version %s: %s", v, err);
        return -1;
    }
    model_version_of(buf, got);
    if (strcmp(got, v) != 0) {
        snprintf(why, len, "%.1000s holds version %s", path, got);
        return -1;
    }
    return 0;
}

typedef struct {
    const char *dir;
    repo *r;
    float *p;
} ctx;

static int fail(const char *err)
{
    fprintf(stderr, "crash_repo: %s\n", err);
    return -1;
}

static int init(void *x)
{
    ctx *c = x;
    char err[1200], v[32];
    paramset_fill(c->p, 0);
    if (repo_add(c->r, c->p, NULL, v, err, sizeof err) != REPO_OK ||
        repo_activate(c->r, v, "cli", err, sizeof err) != REPO_OK)
        return fail(err);
    return 0;
}

static int round_(void *x, unsigned long n)
{
    ctx *c = x;
    char err[1200], v[32];
    repo_version list[16];
    paramset_fill(c->p, (n + 1) % 6);
    if (repo_add(c->r, c->p, NULL, v, err, sizeof err) != REPO_OK ||
        repo_activate(c->r, v, "cli", err, sizeof err) != REPO_OK)
        return fail(err);
    int k = repo_list(c->r, list, 16, NULL, NULL);
    repo_active a;
    if (repo_read_active(c->r, &a, err, sizeof err) != REPO_OK)
        return fail(err);
    for (int i = k - 1; i >= 0 && k > 3; i--) {
        if (strcmp(list[i].version, a.active) != 0 && strcmp(list[i].version, a.previous) != 0) {
            if (repo_delete(c->r, list[i].version, err, sizeof err) != REPO_OK)
                return fail(err);
            break;
        }
    }
    return 0;
}

static int check(void *x)
{
    ctx *c = x;
    char err[1200];
    repo_active a;
    if (repo_read_active(c->r, &a, err, sizeof err) != REPO_OK) {
        fprintf(stderr, "crash_repo: no readable active record: %s\n", err);
        return -1;
    }
    if (check_version(c->r, a.active, c->p, err, sizeof err) != 0 ||
        (a.previous[0] && check_version(c->r, a.previous, c->p, err, sizeof err) != 0))
        return fail(err);
    char vdir[4200];
    snprintf(vdir, sizeof vdir, "%s/versions", c->dir);
    DIR *d = opendir(vdir);
    int versions = 0, temps = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (strstr(e->d_name, ".tmp.")) {
            temps++;
            continue;
        }
        char name[32];
        snprintf(name, sizeof name, "%.16s", e->d_name);
        if (check_version(c->r, name, c->p, err, sizeof err) != 0) {
            fprintf(stderr, "crash_repo: a file under a version's name is not complete: %s\n", err);
            closedir(d);
            return -1;
        }
        versions++;
    }
    if (d)
        closedir(d);
    printf("ok %s %s %d %d\n", a.active, a.previous[0] ? a.previous : "-", versions, temps);
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = crash_tool_command(argc, argv, "crash_repo", "DIR");
    if (!cmd)
        return 2;
    char err[1200];
    ctx c = {.dir = argv[2], .p = malloc((size_t)NET_NUM_PARAMS * sizeof(float))};
    c.r = c.p ? repo_open(c.dir, strcmp(cmd, "check") != 0, err, sizeof err) : NULL;
    int rc = 1;
    if (!c.r) {
        fprintf(stderr, "crash_repo: %s\n", c.p ? err : "out of memory");
    } else {
        static const crash_steps steps = {init, round_, check};
        rc = crash_tool_run(cmd, &steps, &c);
        repo_close(c.r);
    }
    free(c.p);
    return rc;
}
