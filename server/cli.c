/* server/cli.c -- placeholder until the trainer lands. */
#include <stdio.h>

#include "server/cli.h"

int cli_train(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "not yet\n"); return 1; }
int cli_evaluate(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "not yet\n"); return 1; }
int cli_predict(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "not yet\n"); return 1; }
