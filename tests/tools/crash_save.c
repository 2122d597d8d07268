/* crash_save -- saves model files in a loop so that a test can kill it with
 * SIGKILL in the middle of a save and check what is left on disk
 * (the command line of tests/tools/crashtool.h):
 *
 *   crash_save init PATH     saves parameter set 1 to PATH once
 *   crash_save loop PATH     saves sets 2, 1, 2, 1, ... to PATH with ckpt_save
 *                            (the daemon's atomic save) until killed
 *   crash_save check PATH    loads PATH strictly (ckpt_load) and prints 1 or
 *                            2: the set it holds, bit for bit */
#include "model/checkpoint.h"
#include "model/net.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/tools/crashtool.h"
#include "tests/tools/paramsets.h"

typedef struct {
    const char *path;
    float *set[3];   /* parameter sets 1 and 2; [0] receives what check loads */
} ctx;

static int save(ctx *c, int set)
{
    char err[512], v[8];
    ckpt_meta m;
    memset(&m, 0, sizeof m);
    snprintf(v, sizeof v, "%d", set);
    ckpt_meta_set(&m, "crash_save_set", v);
    if (ckpt_save(c->path, c->set[set], &m, err, sizeof err) != 0) {
        fprintf(stderr, "crash_save: %s\n", err);
        return -1;
    }
    return 0;
}

static int init(void *p)
{
    return save(p, 1);
}

static int round_(void *p, unsigned long n)
{
    return save(p, n % 2 == 0 ? 2 : 1);
}

static int check(void *p)
{
    ctx *c = p;
    char err[512];
    ckpt_meta m;
    if (ckpt_load(c->path, c->set[0], &m, err, sizeof err) != 0) {
        fprintf(stderr, "crash_save: %s\n", err);
        return -1;
    }
    const char *set = ckpt_meta_get(&m, "crash_save_set");
    int s = set && strcmp(set, "1") == 0 ? 1 : set && strcmp(set, "2") == 0 ? 2 : 0;
    if (!s) {
        fprintf(stderr, "crash_save: %s: no crash_save_set in the metadata\n", c->path);
        return -1;
    }
    if (memcmp(c->set[0], c->set[s], (size_t)NET_NUM_PARAMS * sizeof(float)) != 0) {
        fprintf(stderr, "crash_save: %s: metadata says set %s but the tensors differ\n", c->path, set);
        return -1;
    }
    printf("%d\n", s);
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = crash_tool_command(argc, argv, "crash_save", "PATH");
    if (!cmd)
        return 2;
    ctx c = {.path = argv[2]};
    int rc = 1;
    for (int i = 0; i < 3; i++)
        c.set[i] = malloc((size_t)NET_NUM_PARAMS * sizeof(float));
    if (!c.set[0] || !c.set[1] || !c.set[2]) {
        fprintf(stderr, "crash_save: out of memory\n");
    } else {
        paramset_fill(c.set[1], 1);
        paramset_fill(c.set[2], 2);
        static const crash_steps steps = {init, round_, check};
        rc = crash_tool_run(cmd, &steps, &c);
    }
    for (int i = 0; i < 3; i++)
        free(c.set[i]);
    return rc;
}
