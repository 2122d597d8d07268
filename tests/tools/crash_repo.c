/* crash_repo -- changes a model repository in a loop so that a test can
 * kill it with SIGKILL at any moment and check what is left on disk.
 *
 *   crash_repo init DIR    adds parameter set 0 and activates it
 *   crash_repo loop DIR    forever: adds the next of 6 parameter sets as a
 *                          version (repo_add: the daemon's save), activates
 *                          it (repo_activate), deletes the oldest version
 *                          that is neither active nor previous
 *                          (repo_delete); prints "looping" once
 *   crash_repo check DIR   the repository is consistent: the active record
 *                          reads, names a version whose file loads
 *                          completely and holds that version, and so does
 *                          the previous one; every file in versions/ other
 *                          than temporary files is a complete version.
 *                          Prints "ok ACTIVE PREVIOUS VERSIONS TEMPS"
 * Exit status 0 on success, 1 with a message on stderr otherwise. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: crash_repo init|loop|check DIR\n");
        return 2;
    }
    const char *cmd = argv[1], *dir = argv[2];
    char err[1200], v[32];
    float *p = malloc((size_t)NET_NUM_PARAMS * sizeof *p);
    int check = strcmp(cmd, "check") == 0;
    repo *r = p ? repo_open(dir, !check, err, sizeof err) : NULL;
    if (!r) {
        fprintf(stderr, "crash_repo: %s\n", p ? err : "out of memory");
        return 1;
    }
    int rc = 1;
    if (strcmp(cmd, "init") == 0) {
        paramset_fill(p, 0);
        if (repo_add(r, p, NULL, v, err, sizeof err) != REPO_OK ||
            repo_activate(r, v, "cli", err, sizeof err) != REPO_OK) {
            fprintf(stderr, "crash_repo: %s\n", err);
            goto out;
        }
        rc = 0;
    } else if (strcmp(cmd, "loop") == 0) {
        repo_version list[16];
        for (uint64_t n = 1;; n++) {
            paramset_fill(p, n % 6);
            if (repo_add(r, p, NULL, v, err, sizeof err) != REPO_OK ||
                repo_activate(r, v, "cli", err, sizeof err) != REPO_OK) {
                fprintf(stderr, "crash_repo: %s\n", err);
                goto out;
            }
            int k = repo_list(r, list, 16, NULL, NULL);
            repo_active a;
            if (repo_read_active(r, &a, err, sizeof err) != REPO_OK) {
                fprintf(stderr, "crash_repo: %s\n", err);
                goto out;
            }
            for (int i = k - 1; i >= 0 && k > 3; i--) {
                if (strcmp(list[i].version, a.active) != 0 && strcmp(list[i].version, a.previous) != 0) {
                    if (repo_delete(r, list[i].version, err, sizeof err) != REPO_OK) {
                        fprintf(stderr, "crash_repo: %s\n", err);
                        goto out;
                    }
                    break;
                }
            }
            if (n == 1) {
                printf("looping\n");
                fflush(stdout);
            }
        }
    } else if (check) {
        repo_active a;
        if (repo_read_active(r, &a, err, sizeof err) != REPO_OK) {
            fprintf(stderr, "crash_repo: no readable active record: %s\n", err);
            goto out;
        }
        if (check_version(r, a.active, p, err, sizeof err) != 0 ||
            (a.previous[0] && check_version(r, a.previous, p, err, sizeof err) != 0)) {
            fprintf(stderr, "crash_repo: %s\n", err);
            goto out;
        }
        char vdir[4200];
        snprintf(vdir, sizeof vdir, "%s/versions", dir);
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
            if (check_version(r, name, p, err, sizeof err) != 0) {
                fprintf(stderr, "crash_repo: a file under a version's name is not complete: %s\n", err);
                closedir(d);
                goto out;
            }
            versions++;
        }
        if (d)
            closedir(d);
        printf("ok %s %s %d %d\n", a.active, a.previous[0] ? a.previous : "-", versions, temps);
        rc = 0;
    } else {
        fprintf(stderr, "crash_repo: unknown command %s\n", cmd);
        rc = 2;
    }
out:
    repo_close(r);
    free(p);
    return rc;
}
