/* cmd/healthcheck.c -- `mnistd healthcheck [PATH]`: the container's probe.
 *
 * Exits 0 when GET PATH (default /healthz) on the local daemon answers 200,
 * 1 otherwise, with the reason on stderr. It reads the daemon's own
 * settings from the environment (MNISTD_PORT, MNISTD_BIND, MNISTD_TLS_CERT)
 * so that it probes where and how the daemon listens: over HTTPS when a
 * certificate is set. The probe does not verify the certificate: it talks
 * to its own process over loopback, and a certificate that expires must not
 * make the orchestrator restart a daemon that is alive (reading endpoints
 * need no client certificate under mutual TLS). The slim image has no curl;
 * docker/healthcheck.sh calls this for HTTPS. */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cmd/cli.h"

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

/* Connects to host:port with send and receive timeouts; -1 with why. */
static int connect_to(const char *host, const char *port, int timeout_s, char *why, size_t len)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(why, len, "address %s port %s: %s", host, port, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {timeout_s, 0};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        snprintf(why, len, "no connection to %s:%s: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Sends the request and reads the status line, over TLS when s is set.
 * Returns the status code, or -1 with why. */
static int exchange(int fd, gnutls_session_t s, const char *path, char *why, size_t len)
{
    char req[1200], buf[512];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n", path);
    if (n < 0 || (size_t)n >= sizeof(req)) {
        snprintf(why, len, "path too long");
        return -1;
    }
    ssize_t k = s ? gnutls_record_send(s, req, (size_t)n) : send(fd, req, (size_t)n, MSG_NOSIGNAL);
    if (k != n) {
        snprintf(why, len, "cannot send the request: %s", s ? gnutls_strerror((int)k) : strerror(errno));
        return -1;
    }
    size_t got = 0;
    while (got < sizeof(buf) - 1 && !memchr(buf, '\n', got)) {
        k = s ? gnutls_record_recv(s, buf + got, sizeof(buf) - 1 - got) : recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    buf[got] = '\0';
    int code = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1) {
        snprintf(why, len, "no answer");
        return -1;
    }
    return code;
}

int cli_healthcheck(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "/healthz";
    if (path[0] != '/' || strcmp(path, "--help") == 0) {
        fprintf(path[0] == '-' ? stdout : stderr,
                "usage: mnistd healthcheck [PATH]   exit 0 when GET PATH (default /healthz) on the local\n"
                "daemon answers 200; reads MNISTD_PORT, MNISTD_BIND and MNISTD_TLS_CERT (HTTPS when set),\n"
                "MNISTD_HEALTHCHECK_TIMEOUT (seconds, default 2)\n");
        return strcmp(path, "--help") == 0 ? 0 : 2;
    }
    const char *port = env_or("MNISTD_PORT", "8080");
    const char *bind = env_or("MNISTD_BIND", "127.0.0.1");
    /* a wildcard bind is reached on loopback */
    const char *host = strcmp(bind, "0.0.0.0") == 0 ? "127.0.0.1" : strcmp(bind, "::") == 0 ? "::1" : bind;
    int timeout = atoi(env_or("MNISTD_HEALTHCHECK_TIMEOUT", "2"));
    if (timeout < 1)
        timeout = 1;
    int tls = getenv("MNISTD_TLS_CERT") && *getenv("MNISTD_TLS_CERT");
    char why[300] = "";
    int code = -1;
    int fd = connect_to(host, port, timeout, why, sizeof(why));
    gnutls_session_t s = NULL;
    gnutls_certificate_credentials_t cred = NULL;
    if (fd >= 0 && tls) {
        int rc;
        if (gnutls_init(&s, GNUTLS_CLIENT) < 0 || gnutls_set_default_priority(s) < 0 ||
            gnutls_certificate_allocate_credentials(&cred) < 0 ||
            gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0) {
            snprintf(why, sizeof(why), "cannot set up TLS");
        } else {
            gnutls_transport_set_int(s, fd);
            gnutls_handshake_set_timeout(s, (unsigned int)timeout * 1000u);
            do
                rc = gnutls_handshake(s);
            while (rc < 0 && !gnutls_error_is_fatal(rc));
            if (rc < 0)
                snprintf(why, sizeof(why), "TLS handshake with %s:%s failed: %s", host, port, gnutls_strerror(rc));
            else
                code = exchange(fd, s, path, why, sizeof(why));
        }
    } else if (fd >= 0) {
        code = exchange(fd, NULL, path, why, sizeof(why));
    }
    if (s)
        gnutls_deinit(s);
    if (cred)
        gnutls_certificate_free_credentials(cred);
    if (fd >= 0)
        close(fd);
    if (code == 200)
        return 0;
    if (code > 0)
        fprintf(stderr, "%s answered %d\n", path, code);
    else
        fprintf(stderr, "GET %s: %s\n", path, why);
    return 1;
}
