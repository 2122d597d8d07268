/* crash_save -- saves model files in a loop so that a test can kill it with
 * SIGKILL in the middle of a save and check what is left on disk.
 *
 *   crash_save init PATH     saves parameter set 1 to PATH once
 *   crash_save loop PATH     saves sets 2, 1, 2, 1, ... to PATH with ckpt_save
 *                            (the daemon's atomic save) until killed; after
 *                            the first completed save it prints "saving" and
 *                            flushes, so a test can wait for that line
 *   crash_save check PATH    loads PATH strictly (ckpt_load) and prints 1 or
 *                            2: the set it holds, bit for bit
 * Exit status 0 on success, 1 with a message on stderr otherwise. */
#include "model/checkpoint.h"
#include "model/net.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/tools/paramsets.h"

static int save(const char *path, const float *p, int set)
{
    char err[512], v[8];
    ckpt_meta m;
    memset(&m, 0, sizeof m);
    snprintf(v, sizeof v, "%d", set);
    ckpt_meta_set(&m, "crash_save_set", v);
    if (ckpt_save(path, p, &m, err, sizeof err) != 0) {
        fprintf(stderr, "crash_save: %s\n", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: crash_save init|loop|check PATH\n");
        return 2;
    }
    const char *cmd = argv[1], *path = argv[2];
    int rc = 1;
    float *a = malloc((size_t)NET_NUM_PARAMS * sizeof *a);
    float *b = malloc((size_t)NET_NUM_PARAMS * sizeof *b);
    float *got = malloc((size_t)NET_NUM_PARAMS * sizeof *got);
    if (!a || !b || !got) {
        fprintf(stderr, "crash_save: out of memory\n");
        goto cleanup;
    }
    paramset_fill(a, 1);
    paramset_fill(b, 2);
    if (strcmp(cmd, "init") == 0) {
        rc = save(path, a, 1) == 0 ? 0 : 1;
    } else if (strcmp(cmd, "loop") == 0) {
        for (unsigned long n = 0;; n++) {
            int set = (n % 2 == 0) ? 2 : 1;
            if (save(path, set == 1 ? a : b, set) != 0)
                goto cleanup;
            if (n == 0) {
                printf("saving\n");
                fflush(stdout);
            }
        }
    } else if (strcmp(cmd, "check") == 0) {
        char err[512];
        ckpt_meta m;
        if (ckpt_load(path, got, &m, err, sizeof err) != 0) {
            fprintf(stderr, "crash_save: %s\n", err);
            goto cleanup;
        }
        const char *set = ckpt_meta_get(&m, "crash_save_set");
        const float *want = set && strcmp(set, "1") == 0 ? a : set && strcmp(set, "2") == 0 ? b : NULL;
        if (!want) {
            fprintf(stderr, "crash_save: %s: no crash_save_set in the metadata\n", path);
            goto cleanup;
        }
        if (memcmp(got, want, (size_t)NET_NUM_PARAMS * sizeof *got) != 0) {
            fprintf(stderr, "crash_save: %s: metadata says set %s but the tensors differ\n", path, set);
            goto cleanup;
        }
        printf("%s\n", set);
        rc = 0;
    } else {
        fprintf(stderr, "crash_save: unknown command '%s'\n", cmd);
        rc = 2;
    }
cleanup:
    free(a);
    free(b);
    free(got);
    return rc;
}
