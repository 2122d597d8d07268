/* cmd/cli.h -- the command-line faces of the one mnistd binary that run
 * without the server (cmd/cli.c). Each takes argc/argv starting at the
 * command name and returns the process exit status (0 ok, 1 failure, 2
 * usage error). */
#ifndef MNISTD_CLI_H
#define MNISTD_CLI_H

int cli_train(int argc, char **argv);
int cli_evaluate(int argc, char **argv);
int cli_predict(int argc, char **argv);
int cli_quantize(int argc, char **argv);
int cli_models(int argc, char **argv);    /* cmd/models.c: the model repository */
int cli_healthcheck(int argc, char **argv); /* cmd/healthcheck.c: the container's probe */

#endif
