/* api/listen.c -- the listening socket and the acceptor thread: see
 * listen.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/listen.h"
#include "server/log.h"

/* Accepts, waits while max_connections are open, hands each connection
 * over. Ends when the socket is shut down (api_quiesce, api_stop). */
static void *acceptor_main(void *arg)
{
    api_server *s = arg;
    pthread_setname_np(pthread_self(), "mnistd-accept");
    int logged_exhaustion = 0;
    for (;;) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof(sa);
        int fd = accept4(s->listen_fd, (struct sockaddr *)&sa, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            int e = errno;
            if (atomic_load(&s->quiescing) || e == EINVAL || e == EBADF || e == ENOTSOCK)
                break;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                /* out of descriptors or memory: the client stays in the
                 * kernel's queue; try again shortly instead of spinning */
                if (!logged_exhaustion++)
                    log_event(LOG_ERROR, "cannot accept a connection",
                              LOG_STR("reason", e == EMFILE || e == ENFILE ? "out of file descriptors"
                                                                           : "out of memory"));
                struct timespec pause = {0, 10 * 1000 * 1000};
                nanosleep(&pause, NULL);
            }
            continue;  /* EINTR, ECONNABORTED, EPROTO, ...: the next one */
        }
        logged_exhaustion = 0;
        pthread_mutex_lock(&s->conn_mu);
        while (s->conns_open + s->conns_pending >= s->cfg->max_connections && !atomic_load(&s->quiescing))
            pthread_cond_wait(&s->conn_cv, &s->conn_mu);
        int stop = atomic_load(&s->quiescing);
        if (!stop)
            s->conns_pending++;
        pthread_mutex_unlock(&s->conn_mu);
        if (stop) {
            close(fd);
            break;
        }
        /* libmicrohttpd closes the socket itself when it refuses it (the
         * per-address limit, or no memory) */
        if (MHD_add_connection(s->mhd, fd, (struct sockaddr *)&sa, len) != MHD_YES) {
            pthread_mutex_lock(&s->conn_mu);
            s->conns_pending--;
            pthread_mutex_unlock(&s->conn_mu);
        }
    }
    return NULL;
}

/* Opens the listening socket on cfg->bind:cfg->port; sets *port to the port
 * (the one the kernel chose for port 0). Returns the socket, or -1 with err. */
int api_listen_open(const mnistd_config *cfg, int *port, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, cfg->bind, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)cfg->port);
        sl = sizeof(*a4);
    } else if (inet_pton(AF_INET6, cfg->bind, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)cfg->port);
        sl = sizeof(*a6);
    } else {
        snprintf(err, errlen, "bind: '%s' is not a numeric address", cfg->bind);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a socket: %s", strerror(errno));
        return -1;
    }
    int on = 1;
    /* a restart may bind while the old connections are in TIME_WAIT */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, SOMAXCONN) != 0) {
        snprintf(err, errlen, "cannot listen on %s port %d: %s", cfg->bind, cfg->port, strerror(errno));
        close(fd);
        return -1;
    }
    sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        snprintf(err, errlen, "getsockname: %s", strerror(errno));
        close(fd);
        return -1;
    }
    *port = ntohs(ss.ss_family == AF_INET ? a4->sin_port : a6->sin6_port);
    return fd;
}

int api_acceptor_start(api_server *s)
{
    if (pthread_create(&s->acceptor, NULL, acceptor_main, s) != 0)
        return -1;
    s->acceptor_started = 1;
    return 0;
}

void api_acceptor_stop(api_server *s)
{
    atomic_store(&s->quiescing, 1);
    if (s->listen_fd >= 0)
        shutdown(s->listen_fd, SHUT_RDWR);
    pthread_mutex_lock(&s->conn_mu);
    pthread_cond_broadcast(&s->conn_cv);
    pthread_mutex_unlock(&s->conn_mu);
    if (s->acceptor_started) {
        pthread_join(s->acceptor, NULL);
        s->acceptor_started = 0;
    }
}
