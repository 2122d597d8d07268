/* cmd/main.c -- the mnistd entry point: one binary for the daemon and the
 * command line.
 *
 *   mnistd [serve] [flags]     run the HTTP daemon (default)
 *   mnistd train [flags]       train a model with the recipe, no server
 *   mnistd evaluate [flags]    evaluate a model file on the test set
 *   mnistd predict [flags]     classify PNG files with a model file
 *   mnistd quantize [flags]    add int8 activation scales to a model file
 *   mnistd models ...          list, activate, delete versions of a model repository
 *   mnistd --help | --version */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/daemon.h"
#include "model/kernels.h"
#include "model/version.h"

/* jemalloc's settings, read at its start (the MALLOC_CONF variable still
 * wins; a libc malloc, under sanitizers, ignores this). A request decodes
 * its PNG through zlib (a 32 KiB window) and allocates a table of multipart
 * parts (24 KiB at the default --max-images). Blocks that size went back
 * from the threads to the shared arena, whose decay returned their pages
 * with madvise, and each madvise interrupts every core with a TLB flush
 * (10% of the daemon's CPU under load in perf). With the thread caches
 * keeping blocks up to 64 KiB a /predict cost about 15-25% less CPU. */
const char *malloc_conf = "tcache_max:65536";

static void usage(FILE *f)
{
    fprintf(f,
        "mnistd %s: trains and serves a convolutional network for handwritten digits.\n"
        "\n"
        "usage: mnistd [serve] [flags]     run the HTTP daemon (the default)\n"
        "       mnistd train [flags]       train a model with the recipe, without the server\n"
        "       mnistd evaluate [flags]    evaluate a model file on the test set\n"
        "       mnistd predict [flags] FILE.png...  classify PNG files with a model file\n"
        "       mnistd quantize [flags]    add int8 activation scales to a model file\n"
        "       mnistd models list|activate|delete [VERSION] --model-dir DIR\n"
        "                                  the versions of a model repository\n"
        "       mnistd healthcheck [PATH]  exit 0 when the local daemon answers 200 (HTTP or HTTPS)\n"
        "       mnistd COMMAND --help      the flags of a command\n"
        "       mnistd --version\n", MNISTD_VERSION);
}

/* The commands other than serve (whose --kernels flag wins over the
 * variable) take the kernels from MNISTD_KERNELS. */
static int kernels_from_env(void)
{
    char err[160];
    if (kernels_use(getenv("MNISTD_KERNELS"), err, sizeof err) == 0)
        return 0;
    fprintf(stderr, "mnistd: MNISTD_KERNELS: %s\n", err);
    return -1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && argv[1][0] != '-') {
        const char *cmd = argv[1];
        if (strcmp(cmd, "serve") == 0)
            return daemon_main(argc - 1, argv + 1);
        if ((strcmp(cmd, "train") == 0 || strcmp(cmd, "evaluate") == 0 ||
             strcmp(cmd, "predict") == 0 || strcmp(cmd, "quantize") == 0) && kernels_from_env() != 0)
            return 2;
        if (strcmp(cmd, "train") == 0)
            return cli_train(argc - 1, argv + 1);
        if (strcmp(cmd, "evaluate") == 0)
            return cli_evaluate(argc - 1, argv + 1);
        if (strcmp(cmd, "predict") == 0)
            return cli_predict(argc - 1, argv + 1);
        if (strcmp(cmd, "quantize") == 0)
            return cli_quantize(argc - 1, argv + 1);
        if (strcmp(cmd, "models") == 0)
            return cli_models(argc - 1, argv + 1);
        if (strcmp(cmd, "healthcheck") == 0)
            return cli_healthcheck(argc - 1, argv + 1);
        if (strcmp(cmd, "help") == 0) {
            usage(stdout);
            return 0;
        }
        fprintf(stderr, "mnistd: unknown command '%s'\n\n", cmd);
        usage(stderr);
        return 2;
    }
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        printf("\nserve flags (mnistd serve --help for details):\n");
        return daemon_main(2, (char *[]){"serve", "--help", NULL});
    }
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        if (kernels_from_env() != 0)
            return 2;
        char k[96];
        kernels_describe(k, sizeof k);
        printf("mnistd %s (%s)\nkernels: %s\n", MNISTD_VERSION, MNISTD_GITREV, k);
        return 0;
    }
    return daemon_main(argc, argv);
}
