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
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/internal.h"
#include "api/web.h"

/* ---- logging ------------------------------------------------------------- */

/* Appends s as JSON string content (no quotes) to buf at *n, bounded. */
static void json_escape(char *buf, size_t cap, size_t *n, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p && *n + 8 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            buf[(*n)++] = '\\';
            buf[(*n)++] = (char)*p;
        } else if (*p < 0x20 || *p == 0x7f) {
            *n += (size_t)snprintf(buf + *n, cap - *n, "\\u%04x", *p);
        } else {
            buf[(*n)++] = (char)*p;
        }
    }
    buf[*n] = '\0';
}

static void timestamp(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

void api_log_event(log_format fmt, const char *level, const char *msg, const char *json_fields)
{
    char ts[40];
    timestamp(ts, sizeof(ts));
    if (fmt == LOG_FORMAT_TEXT) {
        fprintf(stderr, "%s %s %s%s%s\n", ts, level, msg, json_fields ? " " : "",
                json_fields ? json_fields : "");
        return;
    }
    char line[2048];
    size_t n = (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, level);
    json_escape(line, sizeof(line), &n, msg);
    fprintf(stderr, "%s\"%s%s}\n", line, json_fields ? "," : "", json_fields ? json_fields : "");
}

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
    char ts[40], remote[64];
    timestamp(ts, sizeof(ts));
    remote_address(r->conn, remote, sizeof(remote));
    /* the duration with 3 decimals, in integers: cheaper than %.3f */
    unsigned long long us = ms > 0 ? (unsigned long long)(ms * 1e3 + 0.5) : 0;
    if (r->srv->cfg->log_format == LOG_FORMAT_TEXT) {
        fprintf(stderr, "%s %s %s %d %llu.%03llums %zu %s\n", ts, r->method, r->path, status,
                us / 1000, us % 1000, r->resp_bytes, remote);
        return;
    }
    char line[1024];
    size_t n = (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"info\",\"msg\":\"request\","
                                "\"method\":\"", ts);
    json_escape(line, sizeof(line), &n, r->method);
    n += (size_t)snprintf(line + n, sizeof(line) - n, "\",\"path\":\"");
    json_escape(line, sizeof(line), &n, r->path);
    fprintf(stderr, "%s\",\"status\":%d,\"duration_ms\":%llu.%03llu,\"bytes\":%zu,\"remote\":\"%s\"}\n",
            line, status, us / 1000, us % 1000, r->resp_bytes, remote);
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
    json_escape(buf, sizeof(buf), &n, error);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\",\"status\":%d", status);
    if (detail && *detail && n + 16 < sizeof(buf)) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, ",\"detail\":\"");
        json_escape(buf, sizeof(buf) - 3, &n, detail);
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
static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)version;
    api_server *srv = cls;
    api_request *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;  /* closes the connection: nothing better without memory */
        r->srv = srv;
        r->conn = conn;
        r->start_ns = batcher_now_ns();
        r->route = MR_OTHER;
        snprintf(r->method, sizeof(r->method), "%s", method);
        snprintf(r->path, sizeof(r->path), "%s", url);
        atomic_init(&r->pending, 0);
        *con_cls = r;
        atomic_fetch_add(&open_requests, 1);
        if (strcmp(url, "/predict") == 0 && strcmp(method, "POST") == 0) {
            r->route = MR_PREDICT;
            r->dispatched = 1;
            return api_predict_begin(r);
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
        if (r->too_large || (r->route != MR_PREDICT && r->route != MR_TRAIN))
            return MHD_YES;  /* only /predict and POST /train keep a body */
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
    double secs = (double)(batcher_now_ns() - r->start_ns) / 1e9;
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
    batcher_connections(srv->b, toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    api_server *srv = cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    api_log_event(srv->cfg->log_format, "error", msg, "\"source\":\"libmicrohttpd\"");
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
    s->quiesced_fd = -1;

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                         MHD_USE_ERROR_LOG;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, cfg->bind, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)cfg->port);
    } else if (inet_pton(AF_INET6, cfg->bind, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)cfg->port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "bind: '%s' is not a numeric address", cfg->bind);
        free(s);
        return NULL;
    }
    s->mhd = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_access, s,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, s,  /* first, so it sees every message */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)cfg->http_threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)cfg->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->connection_timeout,
        /* Bounds each connection's buffer for the request line and headers
         * (the body streams through the same memory in pieces): over it,
         * libmicrohttpd answers 414 or 431 itself and closes. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->max_header_bytes,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
        MHD_OPTION_END);
    if (!s->mhd) {
        snprintf(err, errlen, "cannot listen on %s port %d (in use, or no permission?)", cfg->bind, cfg->port);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : cfg->port;
    return s;
}

int api_port(const api_server *s)
{
    return s->port;
}

void api_quiesce(api_server *s)
{
    atomic_store(&s->quiescing, 1);
    if (s->quiesced_fd >= 0)
        return;
    /* The socket is ours to close, but only after MHD_stop_daemon. */
    s->quiesced_fd = MHD_quiesce_daemon(s->mhd);
    /* Stop listening now without closing the descriptor (an MHD thread may
     * still hold it): new connections are refused at once, which a client
     * or load balancer can retry safely, instead of waiting in the kernel's
     * queue to be reset when the socket is closed. */
    if (s->quiesced_fd >= 0)
        shutdown(s->quiesced_fd, SHUT_RDWR);
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
    if (atomic_load(&s->quiescing)) {
        uint64_t end = batcher_now_ns() + ((uint64_t)s->cfg->request_timeout_ms + 2000) * 1000000ull;
        while (atomic_load(&open_requests) > 0 && batcher_now_ns() < end) {
            struct timespec step = {0, 2 * 1000 * 1000};
            nanosleep(&step, NULL);
        }
    }
    MHD_stop_daemon(s->mhd);
    if (s->quiesced_fd >= 0)
        close(s->quiesced_fd);
    free(s);
}
