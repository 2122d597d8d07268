/* api/http.c -- the request lifecycle on libmicrohttpd: starting and
 * stopping the daemon, its callbacks, body accumulation, completion (the
 * metrics and the access log line). Routing is api/router.c, answers
 * api/respond.c, the listening socket api/listen.c.
 *
 * libmicrohttpd calls the access handler several times per request: first
 * with the headers only, then once per piece of body, then once with no
 * data when the body is complete, and again after a suspended connection is
 * resumed. The per-request state (api_request) is created on the first call
 * and freed by on_completed, which libmicrohttpd calls on every path,
 * aborted connections included. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/listen.h"
#include "api/oip.h"
#include "api/respond.h"
#include "api/router.h"
#include "server/clock.h"
#include "server/log.h"
#include "server/metrics.h"

/* ---- the access log ------------------------------------------------------ */

static void remote_address(struct MHD_Connection *c, char *buf, size_t len)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(buf, len, "-");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf, (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf, (socklen_t)len);
}

/* The access log: one line per finished request. */
static void log_request(const api_request *r, int status, double ms)
{
    char remote[64];
    remote_address(r->conn, remote, sizeof(remote));
    unsigned long long us = ms > 0 ? (unsigned long long)(ms * 1e3 + 0.5) : 0;
    char text[400];
    const char *tx = NULL;
    if (log_get_format() == LOG_FORMAT_TEXT) {
        snprintf(text, sizeof(text), "%s %s %d %llu.%03llums %zu %s", r->method, r->path, status,
                 us / 1000, us % 1000, r->resp_bytes, remote);
        tx = text;
    }
    log_event_text(tx, LOG_INFO, "request", LOG_STR("method", r->method), LOG_STR("path", r->path),
                   LOG_INT("status", status), LOG_MILLI("duration_ms", us), LOG_UINT("bytes", r->resp_bytes),
                   LOG_STR("remote", remote));
}

/* Requests between their first callback and on_completed. The daemon runs
 * one server per process, so one counter serves; api_stop waits for it to
 * reach zero before it closes the connections (the shutdown drain). */
static _Atomic int open_requests;

/* ---- libmicrohttpd callbacks ----------------------------------------------- */

static enum MHD_Result add_length(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    *(size_t *)cls += strlen(key) + (value ? strlen(value) : 0) + 4;  /* ": " or "=&", CRLF */
    return MHD_YES;
}

/* Answers a request line or headers over --max-header-bytes with a JSON
 * 414 or 431 and closes the connection; returns 0 when they fit. The sizes
 * are those of the parsed request (the query string after unescaping).
 * libmicrohttpd's buffer is larger than the limit (see api_start), so only
 * what overflows even that gets libmicrohttpd's own (HTML) answer. */
static int refuse_oversized_head(api_request *r, const char *url, const char *method,
                                 const char *version, enum MHD_Result *ret)
{
    static const char *const close_hdr[] = {"Connection", "close", NULL};
    size_t limit = (size_t)r->srv->cfg->max_header_bytes;
    size_t line = strlen(method) + strlen(url) + strlen(version) + 4, headers = 0;
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, add_length, &line);
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, add_length, &headers);
    char detail[160];
    if (line > limit) {
        snprintf(detail, sizeof(detail), "the request line is %zu bytes; the limit is %zu (--max-header-bytes)",
                 line, limit);
        *ret = api_error(r, 414, "request line too long", detail, close_hdr);
        return 1;
    }
    if (line + headers > limit) {
        snprintf(detail, sizeof(detail),
                 "the request line and headers are %zu bytes; the limit is %zu (--max-header-bytes)",
                 line + headers, limit);
        *ret = api_error(r, 431, "request headers too large", detail, close_hdr);
        return 1;
    }
    return 0;
}

/* Keeps a piece of the body for routes that keep one (up to their limit);
 * discards it otherwise. */
static enum MHD_Result take_body(api_request *r, const char *data, size_t n)
{
    if (r->too_large || r->body_max == 0)
        return MHD_YES;
    if (n > r->body_max - r->len) {
        /* Only a chunked body can get here: a Content-Length over the limit
         * was refused on the first call. Stop keeping it. */
        r->too_large = 1;
        free(r->body);
        r->body = NULL;
        r->len = r->cap = 0;
        return MHD_YES;
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 16384;
        while (cap < r->len + n)
            cap *= 2;
        if (cap > r->body_max)
            cap = (size_t)r->body_max;
        uint8_t *p = realloc(r->body, cap);
        if (!p)
            return MHD_NO;
        r->body = p;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    api_server *srv = cls;
    api_request *r = *con_cls;
    if (!r) {
        /* Counted before the check, so that api_stop either waits for this
         * request or this request sees the close coming (both atomics are
         * sequentially consistent). */
        atomic_fetch_add(&open_requests, 1);
        if (atomic_load(&srv->closing)) {
            atomic_fetch_sub(&open_requests, 1);
            atomic_fetch_add(&srv->requests_not_taken, 1);
            return MHD_NO;  /* closes the connection before any answer */
        }
        r = calloc(1, sizeof(*r));
        if (!r) {
            atomic_fetch_sub(&open_requests, 1);
            return MHD_NO;  /* closes the connection: nothing better without memory */
        }
        r->srv = srv;
        r->conn = conn;
        r->start_ns = clock_mono_ns();
        snprintf(r->method, sizeof(r->method), "%s", method);
        snprintf(r->path, sizeof(r->path), "%s", url);
        atomic_init(&r->pending, 0);
        *con_cls = r;
        api_route_find(r, url, method);
        if (r->row)
            r->body_max = r->row->body_max == API_BODY_SETTING ? srv->cfg->max_body_bytes : r->row->body_max;
        enum MHD_Result ret;
        if (refuse_oversized_head(r, url, method, version, &ret))
            return ret;
        if (r->row && r->row->on_headers) {
            r->dispatched = 1;
            return api_route_dispatch(r, url, method);
        }
        return MHD_YES;
    }
    if (r->status) {
        /* A response is queued already (an early error): discard the body. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return take_body(r, upload_data, n);
    }
    r->body_done = 1;
    if (!r->dispatched) {
        r->dispatched = 1;
        return api_route_dispatch(r, url, method);
    }
    /* after the body of a route dispatched on its headers, or a resume */
    return r->row ? r->row->handler(r) : MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    api_request *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    double secs = (double)(clock_mono_ns() - r->start_ns) / 1e9;
    /* 499: the client did not get an answer (nginx's convention): it went
     * away before one, or the connection ended before the queued answer
     * was sent. Logged so; the metrics count the answer given. */
    int status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && r->status ? r->status : 499;
    if (r->status)
        metrics_request(r->route, r->status, secs);
    log_request(r, status, secs * 1e3);
    free(r->body);
    free(r->jobs);
    free(r->xjobs);
    free(r->xfields);
    if (r->v2)
        oip_request_free(r->v2);
    free(r->v2);
    free(r->bg_body);
    free(r);
    atomic_fetch_sub(&open_requests, 1);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)conn;
    (void)socket_context;
    api_server *srv = cls;
    int started = toe == MHD_CONNECTION_NOTIFY_STARTED;
    batcher_connections(srv->b, started ? 1 : -1);
    pthread_mutex_lock(&srv->conn_mu);
    if (started) {
        srv->conns_open++;
        if (srv->conns_pending > 0)
            srv->conns_pending--;
    } else {
        srv->conns_open--;
        pthread_cond_signal(&srv->conn_cv);  /* a slot freed for the acceptor */
    }
    pthread_mutex_unlock(&srv->conn_mu);
}

/* What libmicrohttpd says about a TLS handshake that failed. */
#define TLS_HANDSHAKE_FAILED "Error: received handshake message out of context."

/* A failed handshake costs a client nothing, so one line each would let a
 * port scanner flood the log: each is counted
 * (mnistd_tls_handshake_failures_total), and one line at most every
 * TLS_FAIL_LOG_S seconds says how many failed since the last line. */
#define TLS_FAIL_LOG_S 60

static void tls_handshake_failed(api_server *s)
{
    uint64_t total = metrics_tls_handshake_failed();
    atomic_fetch_add_explicit(&s->tls_fail_unlogged, 1, memory_order_relaxed);
    uint64_t now = clock_mono_ns(), last = atomic_load_explicit(&s->tls_fail_logged_ns, memory_order_relaxed);
    if (last && now - last < TLS_FAIL_LOG_S * 1000000000ull)
        return;
    if (!atomic_compare_exchange_strong_explicit(&s->tls_fail_logged_ns, &last, now, memory_order_relaxed,
                                                 memory_order_relaxed))
        return;  /* another thread writes this line */
    uint64_t n = atomic_exchange_explicit(&s->tls_fail_unlogged, 0, memory_order_relaxed);
    log_event(LOG_WARN, "TLS handshakes failed", LOG_UINT("failed", n), LOG_UINT("total", total),
              LOG_INT("next_line_after_s", TLS_FAIL_LOG_S));
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (strcmp(msg, TLS_HANDSHAKE_FAILED) == 0) {
        tls_handshake_failed(cls);
        return;
    }
    log_event(LOG_ERROR, msg, LOG_STR("source", "libmicrohttpd"));
}

api_server *api_start(const mnistd_config *cfg, modelstore *ms, batcher *b, explainer *ex, jobs *jb,
                      lifecycle *lc, char *err, size_t errlen)
{
    api_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    s->ms = ms;
    s->b = b;
    s->ex = ex;
    s->jobs = jb;
    s->lc = lc;
    pthread_mutex_init(&s->bg_mu, NULL);
    pthread_cond_init(&s->bg_cv, NULL);
    atomic_init(&s->quiescing, 0);
    atomic_init(&s->closing, 0);
    atomic_init(&s->requests_not_taken, 0);
    atomic_init(&s->tls_fail_unlogged, 0);
    atomic_init(&s->tls_fail_logged_ns, 0);
    s->listen_fd = -1;
    pthread_mutex_init(&s->conn_mu, NULL);
    pthread_cond_init(&s->conn_cv, NULL);

    /* HTTPS: every handshake takes the current certificate from
     * api_tls_retrieve (so that SIGHUP can replace it); a client CA makes
     * libmicrohttpd ask each client for a certificate. */
    struct MHD_OptionItem tls_opts[3] = {{MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL},
                                         {MHD_OPTION_END, 0, NULL}};
    if (cfg->tls_cert[0]) {
        s->tls = api_tls_load(cfg->tls_cert, cfg->tls_key, cfg->tls_client_ca, err, errlen);
        if (!s->tls) {
            free(s);
            return NULL;
        }
        tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)api_tls_retrieve};
        if (api_tls_client_ca_pem(s->tls))
            tls_opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0,
                                                  (void *)api_tls_client_ca_pem(s->tls)};
    }
    s->listen_fd = api_listen_open(cfg, &s->port, err, errlen);
    if (s->listen_fd < 0) {
        api_tls_free(s->tls);
        free(s);
        return NULL;
    }
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                         MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC |
                         (s->tls ? MHD_USE_TLS : 0);
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, s,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, s,  /* first, so it sees every message */
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)cfg->http_threads,
        /* The acceptor enforces max_connections. libmicrohttpd's own count
         * drops a moment after it reports a connection closed, so at the same
         * limit it would refuse the connection the acceptor hands it for the
         * freed slot: its limit only backs ours up. */
        MHD_OPTION_CONNECTION_LIMIT, 2u * (unsigned int)cfg->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)cfg->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->connection_timeout,
        /* Each connection's buffer for the request line and headers (the
         * body streams through the same memory in pieces). It is twice the
         * limit and 8 KiB more, so that a request over the limit is still
         * read whole and answered in JSON (refuse_oversized_head); one that
         * overflows even this gets libmicrohttpd's own 414 or 431 page.
         * libmicrohttpd zeroes the whole buffer after every request, so its
         * size costs time on each one: keep the limit modest. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->max_header_bytes * 2 + 8192,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_ARRAY, tls_opts,
        MHD_OPTION_END);
    if (!s->mhd) {
        snprintf(err, errlen, "cannot start the HTTP server (libmicrohttpd)");
        close(s->listen_fd);
        api_tls_free(s->tls);
        free(s);
        return NULL;
    }
    if (api_acceptor_start(s) != 0) {
        snprintf(err, errlen, "cannot start the acceptor thread");
        MHD_stop_daemon(s->mhd);
        close(s->listen_fd);
        api_tls_free(s->tls);
        free(s);
        return NULL;
    }
    return s;
}

int api_port(const api_server *s)
{
    return s->port;
}

const char *api_scheme(const api_server *s)
{
    return s->tls ? "https" : "http";
}

int api_reload_tls(api_server *s, char *info, size_t infolen, char *err, size_t errlen)
{
    if (!s->tls) {
        snprintf(err, errlen, "not serving HTTPS: nothing to reload");
        return 1;
    }
    return api_tls_reload(s->tls, info, infolen, err, errlen);
}

void api_tls_info(const api_server *s, char *buf, size_t len)
{
    if (s->tls)
        api_tls_describe(s->tls, buf, len);
    else
        snprintf(buf, len, "%s", "");
}

void api_quiesce(api_server *s)
{
    /* Stop listening now without closing the descriptor (api_stop does):
     * new connections are refused at once, which a client or load balancer
     * can retry safely, instead of waiting in the kernel's queue to be reset
     * when the socket is closed. */
    api_acceptor_stop(s);
}

/* Waits, until `end` at most, for every open request to complete. */
static void wait_requests_done(uint64_t end)
{
    while (atomic_load(&open_requests) > 0 && clock_mono_ns() < end) {
        struct timespec step = {0, 2 * 1000 * 1000};
        nanosleep(&step, NULL);
    }
}

void api_stop(api_server *s)
{
    if (!s)
        return;
    /* background operations hold suspended connections: let them end */
    pthread_mutex_lock(&s->bg_mu);
    while (s->bg_running > 0)
        pthread_cond_wait(&s->bg_cv, &s->bg_mu);
    pthread_mutex_unlock(&s->bg_mu);
    /* The drain: requests already accepted (reading their body, decoding,
     * sending their answer) finish before the connections are closed, for at
     * most the request timeout plus 2 s. Idle keep-alive connections are
     * closed at once by MHD_stop_daemon. */
    int drain = atomic_load(&s->quiescing);
    api_acceptor_stop(s);
    if (drain) {
        uint64_t end = clock_mono_ns() + ((uint64_t)s->cfg->request_timeout_ms + 2000) * 1000000ull;
        wait_requests_done(end);
        /* A keep-alive client may send its next request at any moment, and
         * one arriving now would be cut off by the close with its answer
         * unsent: from here on a new request is not taken (the client sees
         * the connection close before any answer, so it knows nothing was
         * done), and those already started are waited for once more. */
        atomic_store(&s->closing, 1);
        wait_requests_done(end);
        uint64_t cut = atomic_load(&s->requests_not_taken);
        if (cut)
            log_event(LOG_INFO, "shutdown: requests that arrived after the drain were not taken",
                      LOG_UINT("requests", cut));
    }
    MHD_stop_daemon(s->mhd);
    close(s->listen_fd);
    api_tls_free(s->tls);  /* no session is left to use a certificate */
    pthread_mutex_destroy(&s->conn_mu);
    pthread_cond_destroy(&s->conn_cv);
    free(s);
}
