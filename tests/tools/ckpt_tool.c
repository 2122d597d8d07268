/* ckpt_tool -- writes and inspects mnistd checkpoints, for tests that check
 * the files against other safetensors readers and writers.
 *
 *   ckpt_tool write PATH [SEED]   random finite params + metadata -> PATH
 *   ckpt_tool show PATH           strict load; prints "meta KEY=VALUE" lines
 *                                 and "tensor NAME [SHAPE] fnv1a=HEX" lines
 *                                 (FNV-1a 64 of the tensor's little-endian
 *                                 bytes, comparable across languages)
 * Exit status 0 on success, 1 with a message on stderr otherwise. */
#include "model/checkpoint.h"
#include "model/net.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static int cmd_write(const char *path, uint64_t seed)
{
    float *p = malloc((size_t)NET_NUM_PARAMS * sizeof *p);
    ckpt_meta m;
    char err[512];
    uint64_t x = seed * 2654435761ULL + 1;
    if (!p)
        return 1;
    for (int i = 0; i < NET_NUM_PARAMS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (float)((double)(x >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
    memset(&m, 0, sizeof m);
    ckpt_meta_set(&m, "recipe", "conv32-pool-conv64-pool-conv64-dense64-dense10; adam 1e-3");
    ckpt_meta_set(&m, "test_accuracy", "0.9901");
    ckpt_meta_set(&m, "note", "quotes \" backslash \\ tab \t unicode \xc3\xa9\xe2\x82\xac");
    int r = ckpt_save(path, p, &m, err, sizeof err);
    free(p);
    if (r != 0) {
        fprintf(stderr, "ckpt_tool: %s\n", err);
        return 1;
    }
    return 0;
}

static int cmd_show(const char *path)
{
    float *p = malloc((size_t)NET_NUM_PARAMS * sizeof *p);
    ckpt_meta m;
    char err[512];
    if (!p)
        return 1;
    if (ckpt_load(path, p, &m, err, sizeof err) != 0) {
        fprintf(stderr, "ckpt_tool: %s\n", err);
        free(p);
        return 1;
    }
    for (int i = 0; i < m.n; i++)
        printf("meta %s=%s\n", m.key[i], m.val[i]);
    for (int t = 0; t < NET_NUM_TENSORS; t++) {
        const net_tensor *nt = &net_tensors[t];
        printf("tensor %s [", nt->name);
        for (int d = 0; d < nt->ndim; d++)
            printf("%s%d", d ? "," : "", nt->shape[d]);
        /* The checkpoint format is little-endian, as is this host (checked
         * at compile time in checkpoint.c): the bytes in memory are the
         * file's bytes. */
        printf("] fnv1a=%016llx\n",
               (unsigned long long)fnv1a((const unsigned char *)(p + nt->offset),
                                         nt->count * sizeof(float)));
    }
    free(p);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "write") == 0)
        return cmd_write(argv[2], argc >= 4 ? strtoull(argv[3], NULL, 10) : 1);
    if (argc == 3 && strcmp(argv[1], "show") == 0)
        return cmd_show(argv[2]);
    fprintf(stderr, "usage: ckpt_tool write PATH [SEED] | ckpt_tool show PATH\n");
    return 2;
}
