/* cmd/daemon.h -- `mnistd serve` (cmd/daemon.c): argc/argv start at the
 * command name; returns the process exit status (0 after a clean shutdown,
 * 1 failure, 2 usage error). */
#ifndef MNISTD_DAEMON_H
#define MNISTD_DAEMON_H

int daemon_main(int argc, char **argv);

#endif
