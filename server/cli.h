/* server/cli.h -- the command-line faces of the one mnistd binary.
 * Each takes argc/argv starting at the command name and returns the process
 * exit status (0 ok, 1 failure, 2 usage error). */
#ifndef MNISTD_CLI_H
#define MNISTD_CLI_H

int daemon_main(int argc, char **argv);   /* server/daemon.c */
int cli_train(int argc, char **argv);     /* server/cli.c */
int cli_evaluate(int argc, char **argv);  /* server/cli.c */
int cli_predict(int argc, char **argv);   /* server/cli.c */

#endif
