/* server/daemon.c -- placeholder until the HTTP daemon lands. */
#include <stdio.h>
#include <string.h>

#include "server/cli.h"

int daemon_main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("  (the HTTP daemon is not built yet)\n");
        return 0;
    }
    fprintf(stderr, "mnistd: the HTTP daemon is not built yet\n");
    return 1;
}
