/* api/http.c -- the libmicrohttpd daemon: setup, routing, request lifecycle,
 * response helpers and the per-request log line.
 *
 * libmicrohttpd calls the access handler several times per request: first
 * with the headers only, then once per piece of body, then once with no
 * data when the body is complete, and again after a suspended connection is
 * resumed. The per-request state (api_request) is created on the first call
 * and freed by on_completed, which libmicrohttpd calls on every path,
 * aborted connections included. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/internal.h"
#include "api/oip.h"
#include "api/web.h"
#include "server/clock.h"
#include "server/log.h"

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

/* ---- responses ----------------------------------------------------------- */

/* Requests between their first callback and on_completed. The daemon runs
 * one server per process, so one counter serves; api_stop waits for it to
 * reach zero before it closes the connections (the shutdown drain). */
static _Atomic int open_requests;

static enum MHD_Result queue(api_request *r, int status, const char *ctype, struct MHD_Response *resp,
                             size_t len, const char *const *headers)
{
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    for (int i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
    /* Shutting down: close each keep-alive connection after its answer, so
     * clients reconnect (and find the listener closed) instead of sending
     * on a connection about to be closed under them. */
    if (atomic_load(&r->srv->quiescing))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned int)status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES) {
        r->status = status;
        r->resp_bytes = len;
    }
    return ret;
}

enum MHD_Result api_respond(api_request *r, int status, const char *ctype, const void *body,
                            size_t len, const char *const *headers)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    return queue(r, status, ctype, resp, len, headers);
}

enum MHD_Result api_respond_static(api_request *r, int status, const char *ctype, const void *body,
                                   size_t len, const char *const *headers)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT);
    return queue(r, status, ctype, resp, len, headers);
}

enum MHD_Result api_respond_owned(api_request *r, int status, const char *ctype, char *body,
                                  size_t len, const char *const *headers)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    return queue(r, status, ctype, resp, len, headers);
}

enum MHD_Result api_respond_json(api_request *r, int status, cJSON *obj, const char *const *headers)
{
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!text)
        return api_error(r, 500, "out of memory", NULL, NULL);
    size_t len = strlen(text);
    /* cJSON allocates with malloc: MUST_FREE's free() matches. One newline
     * at the end keeps terminal output tidy. */
    char *body = realloc(text, len + 2);
    if (!body) {
        free(text);
        return api_error(r, 500, "out of memory", NULL, NULL);
    }
    body[len] = '\n';
    body[len + 1] = '\0';
    return api_respond_owned(r, status, "application/json", body, len + 1, headers);
}

void api_rfc3339(double unix_seconds, char *buf, size_t len)
{
    time_t t = (time_t)unix_seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

enum MHD_Result api_error(api_request *r, int status, const char *error, const char *detail,
                          const char *const *headers)
{
    char buf[1536];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "{\"error\":\"");
    json_escape(buf, sizeof(buf) - 64, &n, error);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\",\"status\":%d", status);
    if (detail && *detail && n + 16 < sizeof(buf)) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, ",\"detail\":\"");
        json_escape(buf, sizeof(buf) - 4, &n, detail);
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\"");
    }
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "}\n");
    return api_respond(r, status, "application/json", buf, n, headers);
}

/* ---- routing ------------------------------------------------------------- */

typedef enum { M_GET = 1, M_POST = 2, M_DELETE = 4 } method_bit;

typedef struct {
    const char *path;
    metrics_route route;
    int methods;          /* method_bit set; GET implies HEAD */
    const char *allow;    /* the Allow header of a 405 */
} route_def;

static const route_def routes[] = {
    {"/predict", MR_PREDICT, M_POST, "POST"},
    {"/model", MR_MODEL, M_GET, "GET, HEAD"},
    {"/healthz", MR_HEALTHZ, M_GET, "GET, HEAD"},
    {"/readyz", MR_READYZ, M_GET, "GET, HEAD"},
    {"/metrics", MR_METRICS, M_GET, "GET, HEAD"},
    {"/openapi.yaml", MR_OPENAPI, M_GET, "GET, HEAD"},
    {"/train", MR_TRAIN, M_GET | M_POST, "GET, HEAD, POST"},
    {"/train/", MR_TRAIN_JOB, M_GET | M_DELETE, "GET, HEAD, DELETE"}, /* prefix: /train/{id} */
    {"/evaluate", MR_EVALUATE, M_POST, "POST"},
    {"/samples.png", MR_SAMPLES, M_GET, "GET, HEAD"},
};

/* The id of /train/{id}: a positive decimal integer, else -1. */
static int job_id_of(const char *url)
{
    const char *s = url + strlen("/train/");
    long v = 0;
    if (!*s || strlen(s) > 9)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v > 0 ? (int)v : -1;
}

/* Dispatches the first call of a request. */
static enum MHD_Result dispatch(api_request *r, const char *url, const char *method)
{
    const route_def *rt = NULL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        size_t n = strlen(routes[i].path);
        if (routes[i].path[n - 1] == '/' ? strncmp(url, routes[i].path, n) == 0 && url[n]
                                         : strcmp(url, routes[i].path) == 0)
            rt = &routes[i];
    }
    if (!rt && strncmp(url, "/v2", 3) == 0 && (url[3] == '\0' || url[3] == '/'))
        return api_v2_begin(r, url, method);
    if (!rt && api_web_find(url, NULL, NULL, NULL) == 0) {
        r->route = MR_WEB;
        return api_web_respond(r, url);
    }
    if (!rt) {
        r->route = MR_OTHER;
        return api_error(r, 404, "not found", "no such path; see /openapi.yaml", NULL);
    }
    r->route = rt->route;
    int m = 0;
    if (strcmp(method, "GET") == 0)
        m = M_GET;
    else if (strcmp(method, "HEAD") == 0) {
        m = M_GET;
        r->is_head = 1;
    } else if (strcmp(method, "POST") == 0)
        m = M_POST;
    else if (strcmp(method, "DELETE") == 0)
        m = M_DELETE;
    if (!(m & rt->methods)) {
        const char *hdr[] = {"Allow", rt->allow, NULL};
        char detail[96];
        snprintf(detail, sizeof(detail), "%s allows %s", rt->path, rt->allow);
        return api_error(r, 405, "method not allowed", detail, hdr);
    }
    switch (rt->route) {
    case MR_PREDICT: return api_predict_begin(r);
    case MR_MODEL: return api_get_model(r);
    case MR_HEALTHZ: return api_get_healthz(r);
    case MR_READYZ: return api_get_readyz(r);
    case MR_METRICS: return api_get_metrics(r);
    case MR_OPENAPI: return api_get_openapi(r);
    case MR_TRAIN: return m == M_POST ? api_post_train(r) : api_get_train_list(r);
    case MR_TRAIN_JOB: {
        int id = job_id_of(url);
        if (id < 0)
            return api_error(r, 404, "not found", "no such training job: ids are positive integers", NULL);
        return m == M_DELETE ? api_delete_train_job(r, id) : api_get_train_job(r, id);
    }
    case MR_EVALUATE: return api_post_evaluate(r);
    case MR_SAMPLES: return api_get_samples(r);
    default: return api_error(r, 404, "not found", NULL, NULL);
    }
}

/* ---- libmicrohttpd callbacks ----------------------------------------------- */

/* POST /predict is dispatched on the first call, so that its limits (413,
 * 411, 415, 503) refuse a body before it is read. Every other route answers
 * on the call after the (empty or discarded) body: a response queued on the
 * first call makes libmicrohttpd close the connection, and health checks and
 * scrapes should keep theirs alive. */
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

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    api_server *srv = cls;
    api_request *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;  /* closes the connection: nothing better without memory */
        r->srv = srv;
        r->conn = conn;
        r->start_ns = clock_mono_ns();
        r->route = MR_OTHER;
        snprintf(r->method, sizeof(r->method), "%s", method);
        snprintf(r->path, sizeof(r->path), "%s", url);
        atomic_init(&r->pending, 0);
        *con_cls = r;
        atomic_fetch_add(&open_requests, 1);
        enum MHD_Result ret;
        if (refuse_oversized_head(r, url, method, version, &ret))
            return ret;
        if (strcmp(url, "/predict") == 0 && strcmp(method, "POST") == 0) {
            r->route = MR_PREDICT;
            r->dispatched = 1;
            return api_predict_begin(r);
        }
        /* v2 infer, like /predict, is checked before its body is read */
        if (strncmp(url, "/v2/", 4) == 0 && strcmp(method, "POST") == 0) {
            r->dispatched = 1;
            return api_v2_begin(r, url, method);
        }
        if (strcmp(url, "/train") == 0 && strcmp(method, "POST") == 0)
            r->route = MR_TRAIN;  /* keeps its (small) JSON body */
        if (strcmp(url, "/samples.png") == 0) {
            const char *off = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "offset");
            if (off)
                snprintf(r->bg_query, sizeof(r->bg_query), "%.30s", off);
            else
                r->bg_query[0] = '\0';
            if (off && strlen(off) > 30)
                snprintf(r->bg_query, sizeof(r->bg_query), "x");  /* too long: refused as invalid */
        }
        return MHD_YES;
    }
    if (r->bg_state == 2)
        return api_bg_finish(r);
    if (r->bg_state == 1)
        return MHD_YES;
    if (r->status) {
        /* A response is queued already (an early error): discard the body. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        int infer = r->route == MR_PREDICT || r->route == MR_V2_INFER || r->route == MR_V2_VINFER;
        if (r->too_large || (!infer && r->route != MR_TRAIN))
            return MHD_YES;  /* only inference and POST /train keep a body */
        uint64_t limit = r->route == MR_TRAIN ? API_TRAIN_MAX_BODY : srv->cfg->max_body_bytes;
        if (n > limit - r->len) {
            /* Only a chunked body can get here: a Content-Length over the
             * limit was refused on the first call. Stop keeping it. */
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
            if (cap > limit)
                cap = (size_t)limit;
            uint8_t *p = realloc(r->body, cap);
            if (!p)
                return MHD_NO;
            r->body = p;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        return MHD_YES;
    }
    if (r->route == MR_PREDICT)
        return api_predict_finish(r);
    if (r->route == MR_V2_INFER || r->route == MR_V2_VINFER)
        return api_v2_infer_finish(r);
    if (!r->dispatched) {
        r->dispatched = 1;
        return dispatch(r, url, method);
    }
    return MHD_YES;
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
    /* 499: the client went away before an answer (nginx's convention);
     * counted in the log, not in the metrics' status codes. */
    int status = r->status ? r->status : 499;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && r->status == 0)
        status = 499;
    if (r->status)
        metrics_request(r->route, r->status, secs);
    log_request(r, status, secs * 1e3);
    free(r->body);
    free(r->jobs);
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

/* ---- accepting ------------------------------------------------------------ */

/* libmicrohttpd's own accept runs in whichever of its threads wakes first,
 * which under a burst of new connections takes nearly all of them: one HTTP
 * thread then serves every client while the others idle, and answers wait
 * on it. Connections handed over with MHD_add_connection are spread over
 * the threads instead. This thread accepts, waits while max_connections are
 * open (a connection over the limit waits unanswered, as in the kernel's
 * queue, until a slot frees), and hands each one over. It ends when the
 * socket is shut down (api_quiesce, api_stop). */
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
static int open_listener(const mnistd_config *cfg, int *port, char *err, size_t errlen)
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

/* Wakes the acceptor out of accept() and its wait for a slot, and joins it. */
static void stop_acceptor(api_server *s)
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

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_event(LOG_ERROR, msg, LOG_STR("source", "libmicrohttpd"));
}

api_server *api_start(const mnistd_config *cfg, modelstore *ms, batcher *b, jobs *jb, char *err,
                      size_t errlen)
{
    api_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    s->ms = ms;
    s->b = b;
    s->jobs = jb;
    pthread_mutex_init(&s->bg_mu, NULL);
    pthread_cond_init(&s->bg_cv, NULL);
    atomic_init(&s->quiescing, 0);
    s->listen_fd = -1;
    pthread_mutex_init(&s->conn_mu, NULL);
    pthread_cond_init(&s->conn_cv, NULL);

    s->listen_fd = open_listener(cfg, &s->port, err, errlen);
    if (s->listen_fd < 0) {
        free(s);
        return NULL;
    }
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                         MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
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
        MHD_OPTION_END);
    if (!s->mhd) {
        snprintf(err, errlen, "cannot start the HTTP server (libmicrohttpd)");
        close(s->listen_fd);
        free(s);
        return NULL;
    }
    if (pthread_create(&s->acceptor, NULL, acceptor_main, s) != 0) {
        snprintf(err, errlen, "cannot start the acceptor thread");
        MHD_stop_daemon(s->mhd);
        close(s->listen_fd);
        free(s);
        return NULL;
    }
    s->acceptor_started = 1;
    return s;
}

int api_port(const api_server *s)
{
    return s->port;
}

void api_quiesce(api_server *s)
{
    /* Stop listening now without closing the descriptor (api_stop does):
     * new connections are refused at once, which a client or load balancer
     * can retry safely, instead of waiting in the kernel's queue to be reset
     * when the socket is closed. */
    stop_acceptor(s);
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
    stop_acceptor(s);
    if (drain) {
        uint64_t end = clock_mono_ns() + ((uint64_t)s->cfg->request_timeout_ms + 2000) * 1000000ull;
        while (atomic_load(&open_requests) > 0 && clock_mono_ns() < end) {
            struct timespec step = {0, 2 * 1000 * 1000};
            nanosleep(&step, NULL);
        }
    }
    MHD_stop_daemon(s->mhd);
    close(s->listen_fd);
    pthread_mutex_destroy(&s->conn_mu);
    pthread_cond_destroy(&s->conn_cv);
    free(s);
}
