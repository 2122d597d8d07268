/* api/listen.h -- the listening socket and the acceptor thread.
 *
 * libmicrohttpd's own accept runs in whichever of its threads wakes first,
 * which under a burst of new connections takes nearly all of them: one HTTP
 * thread then serves every client while the others idle. So the socket is
 * ours, and an acceptor thread hands each connection to libmicrohttpd
 * (MHD_add_connection), which spreads them over its threads. The acceptor
 * also enforces max_connections: a connection over the limit waits
 * unanswered, as in the kernel's queue, until a slot frees (on_connection in
 * http.c counts them). */
#ifndef MNISTD_API_LISTEN_H
#define MNISTD_API_LISTEN_H

#include <stddef.h>

#include "api/internal.h"

/* Opens the listening socket on cfg->bind:cfg->port; sets *port to the port
 * (the one the kernel chose for port 0). Returns the socket, or -1 with err. */
int api_listen_open(const mnistd_config *cfg, int *port, char *err, size_t errlen);

/* Starts the acceptor on s->listen_fd, handing connections to s->mhd.
 * Returns 0, or -1 when the thread cannot be created. */
int api_acceptor_start(api_server *s);

/* Wakes the acceptor out of accept() and its wait for a slot, and joins it;
 * sets s->quiescing. The socket stays open (api_stop closes it).
 * Idempotent. */
void api_acceptor_stop(api_server *s);

#endif
