/* tests/tools/crashtool.h -- the command line the crash tools share
 * (crash_save, crash_repo), which a test kills with SIGKILL at random
 * moments and then checks what is left on disk:
 *
 *   TOOL init ARG    the first state of ARG
 *   TOOL loop ARG    changes ARG round after round until killed; after the
 *                    first complete round it prints "looping" and flushes,
 *                    so that a test can wait for that line (crash_kill in
 *                    tests/contract/lib.sh)
 *   TOOL check ARG   checks ARG after a kill, printing what it found
 *
 * A tool gives crash_tool_run its three steps, each returning 0 or -1 with
 * a message on stderr. Exit status 0 on success, 1 on a failure, 2 on a
 * usage error. */
#ifndef MNISTD_TESTS_CRASHTOOL_H
#define MNISTD_TESTS_CRASHTOOL_H

#include <stdio.h>
#include <string.h>

typedef struct {
    int (*init)(void *ctx);
    int (*round)(void *ctx, unsigned long n);  /* n = 0, 1, 2, ... */
    int (*check)(void *ctx);
} crash_steps;

/* The command of argv ("init", "loop" or "check"), or NULL after printing
 * the usage of tool (its argument named argname). */
static inline const char *crash_tool_command(int argc, char **argv, const char *tool, const char *argname)
{
    if (argc == 3 && (!strcmp(argv[1], "init") || !strcmp(argv[1], "loop") || !strcmp(argv[1], "check")))
        return argv[1];
    fprintf(stderr, "usage: %s init|loop|check %s\n", tool, argname);
    return NULL;
}

/* Runs command cmd with ctx; returns the exit status. */
static inline int crash_tool_run(const char *cmd, const crash_steps *s, void *ctx)
{
    if (!strcmp(cmd, "init"))
        return s->init(ctx) ? 1 : 0;
    if (!strcmp(cmd, "check"))
        return s->check(ctx) ? 1 : 0;
    for (unsigned long n = 0;; n++) {
        if (s->round(ctx, n) != 0)
            return 1;
        if (n == 0) {
            printf("looping\n");
            fflush(stdout);
        }
    }
}

#endif
