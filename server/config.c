/* server/config.c -- settings from flags, environment and defaults.
 *
 * One table describes every setting: its flag, its environment variable,
 * its type, range, default and help text. Parsing, validation, --help and
 * the JSON dump all read that table, so they cannot drift apart. */
#include "server/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/kernels.h"

typedef enum { OPT_INT, OPT_U64, OPT_STR, OPT_ADDR, OPT_LOGFMT, OPT_KERNELS, OPT_PRECISION } opt_type;

typedef struct {
    const char *flag;    /* without the leading "--" */
    const char *env;
    opt_type type;
    size_t offset;       /* into mnistd_config */
    size_t size;         /* for OPT_STR: the buffer size */
    uint64_t min, max;   /* for numbers, inclusive */
    const char *help;
} opt_def;

#define OFF(f) offsetof(mnistd_config, f)
#define SZ(f) sizeof(((mnistd_config *)0)->f)

static const opt_def opts[] = {
    {"port", "MNISTD_PORT", OPT_INT, OFF(port), 0, 0, 65535,
     "TCP port to listen on; 0 picks a free port (the startup line prints it)"},
    {"bind", "MNISTD_BIND", OPT_ADDR, OFF(bind), SZ(bind), 0, 0,
     "numeric IPv4 or IPv6 address to listen on (0.0.0.0: every interface)"},
    {"model", "MNISTD_MODEL", OPT_STR, OFF(model), SZ(model), 0, 0,
     "model file (safetensors) to serve; with --model-dir, the file that seeds an empty "
     "repository as its first version (the file itself is then never written)"},
    {"model-dir", "MNISTD_MODEL_DIR", OPT_STR, OFF(model_dir), SZ(model_dir), 0, 0,
     "model repository: every trained model is kept as an immutable version there, one is "
     "active (served); training jobs are promoted per their policy and their records kept "
     "(DIR/jobs). Only one process owns (trains into) it; others serve it read-only. "
     "Empty = none (a single --model file)"},
    {"keep-models", "MNISTD_KEEP_MODELS", OPT_INT, OFF(keep_models), 0, 0, 100000,
     "versions kept in the repository: the oldest beyond N are deleted after each new one, "
     "never the active or the previously active one; 0 = keep all"},
    {"watch-s", "MNISTD_WATCH_S", OPT_INT, OFF(watch_s), 0, 0, 86400,
     "every S seconds, serve the repository's active version if another process changed it "
     "(replicas sharing a repository follow its activations); 0 = do not watch"},
    {"data", "MNISTD_DATA", OPT_STR, OFF(data), SZ(data), 0, 0,
     "directory of the MNIST files (training and evaluation); empty = none"},
    {"threads", "MNISTD_THREADS", OPT_INT, OFF(threads), 0, 1, 64,
     "inference workers, each running whole batches"},
    {"http-threads", "MNISTD_HTTP_THREADS", OPT_INT, OFF(http_threads), 0, 1, 64,
     "HTTP threads (parsing, PNG decoding, responses)"},
    {"max-batch", "MNISTD_MAX_BATCH", OPT_INT, OFF(max_batch), 0, 1, 1024,
     "most images in one forward pass"},
    {"batch-timeout-us", "MNISTD_BATCH_TIMEOUT_US", OPT_INT, OFF(batch_timeout_us), 0, 0, 1000000,
     "longest a queued image waits for its batch to fill, in microseconds; a worker "
     "only waits for its share of the open connections. 0: a free worker runs "
     "at once on what is queued (batches still form while workers are busy), which "
     "measured fastest on 2 cores"},
    {"max-queue", "MNISTD_MAX_QUEUE", OPT_INT, OFF(max_queue), 0, 1, 1000000,
     "images waiting for a worker; beyond it POST /predict answers 503 + Retry-After"},
    {"max-images", "MNISTD_MAX_IMAGES", OPT_INT, OFF(max_images), 0, 1, 1024,
     "images (multipart parts) in one request; more answers 413"},
    {"max-body-bytes", "MNISTD_MAX_BODY_BYTES", OPT_U64, OFF(max_body_bytes), 0, 64,
     (uint64_t)1 << 30, "request body limit in bytes; more answers 413 before the body is read"},
    {"max-image-pixels", "MNISTD_MAX_IMAGE_PIXELS", OPT_U64, OFF(max_image_pixels), 0, 1,
     (uint64_t)1 << 28, "decoded image width*height limit; more answers 422"},
    {"max-image-side", "MNISTD_MAX_IMAGE_SIDE", OPT_INT, OFF(max_image_side), 0, 1, 65535,
     "decoded image width and height limit; more answers 422"},
    {"max-connections", "MNISTD_MAX_CONNECTIONS", OPT_INT, OFF(max_connections), 0, 1, 100000,
     "open connections from all clients together"},
    {"max-connections-per-ip", "MNISTD_MAX_CONNECTIONS_PER_IP", OPT_INT,
     OFF(max_connections_per_ip), 0, 0, 100000,
     "open connections from one client address; 0 = no per-address limit"},
    {"connection-timeout", "MNISTD_CONNECTION_TIMEOUT", OPT_INT, OFF(connection_timeout), 0, 1, 86400,
     "seconds a connection may stay idle before it is closed"},
    {"request-timeout-ms", "MNISTD_REQUEST_TIMEOUT_MS", OPT_INT, OFF(request_timeout_ms), 0, 1, 600000,
     "deadline of a prediction from its arrival; past it the answer is 504"},
    {"max-header-bytes", "MNISTD_MAX_HEADER_BYTES", OPT_INT, OFF(max_header_bytes), 0, 4096, 1048576,
     "largest request line plus headers; over it a request gets a JSON 431 (a "
     "request line alone over it: 414) and the connection closes. Each connection's "
     "buffer is twice this plus 8 KiB"},
    {"explain-threads", "MNISTD_EXPLAIN_THREADS", OPT_INT, OFF(explain_threads), 0, 1, 64,
     "explanation workers (POST /explain), each explaining one image at a time on one core, "
     "at a lower priority than the inference workers"},
    {"explain-queue", "MNISTD_EXPLAIN_QUEUE", OPT_INT, OFF(explain_queue), 0, 1, 100000,
     "images waiting for an explanation worker; beyond it POST /explain answers 503 + "
     "Retry-After (predictions have their own queue)"},
    {"explain-max-images", "MNISTD_EXPLAIN_MAX_IMAGES", OPT_INT, OFF(explain_max_images), 0, 1, 1024,
     "images (multipart parts) in one POST /explain request; more answers 413"},
    {"explain-max-steps", "MNISTD_EXPLAIN_MAX_STEPS", OPT_INT, OFF(explain_max_steps), 0, 1, 1024,
     "most Integrated Gradients steps a request may ask for (?steps=; the default is 64, or "
     "this when lower); more answers 400"},
    {"explain-timeout-ms", "MNISTD_EXPLAIN_TIMEOUT_MS", OPT_INT, OFF(explain_timeout_ms), 0, 1, 600000,
     "deadline of an explanation from its arrival; an image not started by then answers 504"},
    {"shutdown-timeout-s", "MNISTD_SHUTDOWN_TIMEOUT_S", OPT_INT, OFF(shutdown_timeout_s), 0, 0, 3600,
     "on SIGTERM, seconds a running training job may take to finish before it is "
     "cancelled; 0 cancels it at once (its model is then not saved)"},
    {"job-history", "MNISTD_JOB_HISTORY", OPT_INT, OFF(job_history), 0, 1, 64,
     "finished training jobs kept (GET /train lists them; older ones answer 404)"},
    {"token-file", "MNISTD_TOKEN_FILE", OPT_STR, OFF(token_file), SZ(token_file), 0, 0,
     "file holding the API token; when a token is set (this file, or the MNISTD_TOKEN "
     "variable), mutating endpoints need `Authorization: Bearer TOKEN` (else 401)"},
    {"tls-cert", "MNISTD_TLS_CERT", OPT_STR, OFF(tls_cert), SZ(tls_cert), 0, 0,
     "PEM file of the server certificate (its chain may follow): with --tls-key the "
     "daemon serves HTTPS only. SIGHUP reloads both (and --tls-client-ca) without "
     "dropping connections; a failed reload keeps the old ones"},
    {"tls-key", "MNISTD_TLS_KEY", OPT_STR, OFF(tls_key), SZ(tls_key), 0, 0,
     "PEM file of the certificate's private key (unencrypted); never logged"},
    {"tls-client-ca", "MNISTD_TLS_CLIENT_CA", OPT_STR, OFF(tls_client_ca), SZ(tls_client_ca), 0, 0,
     "PEM file of the CA(s) whose client certificates may use the mutating endpoints "
     "(mutual TLS): without one they answer 403; other endpoints need none"},
    {"tls-reload-s", "MNISTD_TLS_RELOAD_S", OPT_INT, OFF(tls_reload_s), 0, 0, 86400,
     "every S seconds, reload the TLS files when one changed (its inode, size or time), as "
     "SIGHUP does: for certificates that cert-manager rotates in a Secret volume; "
     "0 = on SIGHUP only"},
    {"model-name", "MNISTD_MODEL_NAME", OPT_STR, OFF(model_name), SZ(model_name), 0, 0,
     "the model's name in the Open Inference Protocol (/v2/models/NAME): 1..63 letters, "
     "digits, '_', '-' or '.'"},
    {"log-format", "MNISTD_LOG_FORMAT", OPT_LOGFMT, OFF(log_format), 0, 0, 0,
     "json (one object per line) or text"},
    {"log-flush-ms", "MNISTD_LOG_FLUSH_MS", OPT_INT, OFF(log_flush_ms), 0, 0, 10000,
     "0 writes each log line at once; N gathers lines and writes them at most N ms later, "
     "in one write (warnings and errors at once, everything on exit): a line per request "
     "costs a container runtime's log pipe more than the request itself"},
    {"kernels", "MNISTD_KERNELS", OPT_KERNELS, OFF(kernels), SZ(kernels), 0, 0,
     "compute kernels: auto (the fastest this CPU runs), portable, avx2 (AVX2+FMA) or "
     "avx512; a level the CPU lacks is a startup error"},
    {"precision", "MNISTD_PRECISION", OPT_PRECISION, OFF(precision), SZ(precision), 0, 0,
     "arithmetic of predictions (/predict, /v2 infer): fp32, or int8 (8-bit weights and "
     "activations, with the activation scales stored in the model's metadata; a model "
     "without them is served in fp32, and GET /model says why). Explanations stay fp32"},
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

void config_defaults(mnistd_config *c)
{
    memset(c, 0, sizeof(*c));
    c->port = 8080;
    snprintf(c->bind, sizeof(c->bind), "127.0.0.1");
    snprintf(c->model, sizeof(c->model), "models/mnist-cnn.safetensors");
    c->data[0] = '\0';
    c->threads = 2;
    c->http_threads = 2;
    c->max_batch = 64;
    c->batch_timeout_us = 0;
    c->max_queue = 1024;
    c->max_images = 64;
    c->max_body_bytes = 1u << 20;
    c->max_image_pixels = 4194304;
    c->max_image_side = 4096;
    c->max_connections = 1000;
    c->max_connections_per_ip = 0;
    c->connection_timeout = 30;
    c->request_timeout_ms = 5000;
    c->max_header_bytes = 8192;
    c->explain_threads = 1;
    c->explain_queue = 16;
    c->explain_max_images = 8;
    c->explain_max_steps = 256;
    c->explain_timeout_ms = 10000;
    c->shutdown_timeout_s = 0;
    c->job_history = 32;
    c->model_dir[0] = '\0';
    c->keep_models = 0;
    c->watch_s = 0;
    c->token_file[0] = '\0';
    snprintf(c->model_name, sizeof(c->model_name), "mnist");
    c->log_format = LOG_FORMAT_JSON;
    c->log_flush_ms = 0;
    snprintf(c->kernels, sizeof(c->kernels), "auto");
    snprintf(c->precision, sizeof(c->precision), "fp32");
}

/* Parses a whole decimal unsigned number (no sign, no spaces, no suffix). */
static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || !end || *end)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/* Sets one option from text; src names it in errors ("--port" or
 * "MNISTD_PORT"). Returns 0 or -1 with err set. */
static int set_opt(mnistd_config *c, const opt_def *o, const char *val,
                   const char *src, char *err, size_t errlen)
{
    char *base = (char *)c + o->offset;
    switch (o->type) {
    case OPT_INT:
    case OPT_U64: {
        uint64_t v;
        if (parse_u64(val, &v) < 0) {
            snprintf(err, errlen, "%s: '%s' is not a whole non-negative number", src, val);
            return -1;
        }
        if (v < o->min || v > o->max) {
            snprintf(err, errlen, "%s: %s is out of range %" PRIu64 "..%" PRIu64,
                     src, val, o->min, o->max);
            return -1;
        }
        if (o->type == OPT_INT)
            *(int *)base = (int)v;
        else
            *(uint64_t *)base = v;
        return 0;
    }
    case OPT_STR:
        if (strlen(val) >= o->size) {
            snprintf(err, errlen, "%s: value longer than %zu bytes", src, o->size - 1);
            return -1;
        }
        memcpy(base, val, strlen(val) + 1);
        return 0;
    case OPT_ADDR: {
        unsigned char tmp[16];
        if (strlen(val) >= o->size ||
            (inet_pton(AF_INET, val, tmp) != 1 && inet_pton(AF_INET6, val, tmp) != 1)) {
            snprintf(err, errlen, "%s: '%s' is not a numeric IPv4 or IPv6 address", src, val);
            return -1;
        }
        memcpy(base, val, strlen(val) + 1);
        return 0;
    }
    case OPT_LOGFMT:
        if (strcmp(val, "json") == 0)
            *(log_format *)base = LOG_FORMAT_JSON;
        else if (strcmp(val, "text") == 0)
            *(log_format *)base = LOG_FORMAT_TEXT;
        else {
            snprintf(err, errlen, "%s: '%s' is not json or text", src, val);
            return -1;
        }
        return 0;
    case OPT_KERNELS: {
        /* The name only: whether the CPU runs it is checked at startup. */
        int ok = strcmp(val, "auto") == 0;
        for (int l = 0; !ok && l < KERNELS_NLEVELS; l++)
            ok = strcmp(val, kernels_level_name((kernels_level)l)) == 0;
        if (!ok || strlen(val) >= o->size) {
            snprintf(err, errlen, "%s: '%s' is not auto, portable, avx2 or avx512", src, val);
            return -1;
        }
        memcpy(base, val, strlen(val) + 1);
        return 0;
    }
    case OPT_PRECISION:
        if ((strcmp(val, "fp32") != 0 && strcmp(val, "int8") != 0) || strlen(val) >= o->size) {
            snprintf(err, errlen, "%s: '%s' is not fp32 or int8", src, val);
            return -1;
        }
        memcpy(base, val, strlen(val) + 1);
        return 0;
    }
    return -1;
}

/* Checks the settings against each other once all are known. */
static int check_cross(const mnistd_config *c, char *err, size_t errlen)
{
    if (c->max_images > c->max_queue) {
        snprintf(err, errlen, "max-images (%d) cannot exceed max-queue (%d): such a request "
                 "could never be queued", c->max_images, c->max_queue);
        return -1;
    }
    if (c->explain_max_images > c->explain_queue) {
        snprintf(err, errlen, "explain-max-images (%d) cannot exceed explain-queue (%d): such a "
                 "request could never be queued", c->explain_max_images, c->explain_queue);
        return -1;
    }
    if (c->model[0] == '\0') {
        snprintf(err, errlen, "model: the model path cannot be empty");
        return -1;
    }
    if (!c->tls_cert[0] != !c->tls_key[0]) {
        snprintf(err, errlen, "tls-cert and tls-key: give both (HTTPS) or neither (HTTP)");
        return -1;
    }
    if (c->tls_client_ca[0] && !c->tls_cert[0]) {
        snprintf(err, errlen, "tls-client-ca needs tls-cert and tls-key (client certificates are a TLS feature)");
        return -1;
    }
    /* a URL path segment that needs no escaping, and not "." or ".." */
    static const char name_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.";
    size_t n = strlen(c->model_name);
    if (n == 0 || strspn(c->model_name, name_chars) != n || strcmp(c->model_name, ".") == 0 ||
        strcmp(c->model_name, "..") == 0) {
        snprintf(err, errlen, "model-name: '%.63s' must be 1..63 letters, digits, '_', '-' or '.'",
                 c->model_name);
        return -1;
    }
    return 0;
}

/* Checks a token's text: length and characters (visible ASCII, no spaces,
 * so that it survives an HTTP header unchanged). src names it in errors. */
static int check_token(const char *tok, size_t len, const char *src, char *err, size_t errlen)
{
    if (len == 0) {
        snprintf(err, errlen, "%s: the token is empty", src);
        return -1;
    }
    if (len < CONFIG_TOKEN_MIN || len > CONFIG_TOKEN_MAX) {
        snprintf(err, errlen, "%s: the token has %zu characters; it must have %d..%d", src, len,
                 CONFIG_TOKEN_MIN, CONFIG_TOKEN_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)tok[i];
        if (ch <= 0x20 || ch >= 0x7f) {
            snprintf(err, errlen, "%s: the token may only hold visible ASCII characters "
                     "(no spaces, controls or line breaks inside)", src);
            return -1;
        }
    }
    return 0;
}

/* Reads the token from c->token_file. The file must be a regular file that
 * group and others cannot write (else anyone with that access could choose
 * the token); one trailing line break (LF or CRLF) and trailing spaces are
 * ignored, as editors and `echo` add them. */
static int read_token_file(mnistd_config *c, char *err, size_t errlen)
{
    const char *path = c->token_file;
    char buf[CONFIG_TOKEN_MAX + 8];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "token-file: cannot open '%.900s': %s", path, strerror(errno));
        return -1;
    }
    int ret = -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "token-file: cannot stat '%.900s': %s", path, strerror(errno));
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "token-file: '%.900s' is not a regular file", path);
        goto cleanup;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errlen, "token-file: '%.900s' is writable by group or others (mode %03o); "
                 "chmod go-w it", path, (unsigned)(st.st_mode & 0777));
        goto cleanup;
    }
    size_t len = 0;
    for (;;) {
        ssize_t k = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            snprintf(err, errlen, "token-file: cannot read '%.900s': %s", path, strerror(errno));
            goto cleanup;
        }
        if (k == 0)
            break;
        len += (size_t)k;
        if (len == sizeof(buf) - 1) {
            snprintf(err, errlen, "token-file: '%.900s' is longer than a token (%d characters)", path,
                     CONFIG_TOKEN_MAX);
            goto cleanup;
        }
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
                       buf[len - 1] == '\t'))
        len--;
    char src[CONFIG_PATH_MAX + 16];
    snprintf(src, sizeof(src), "token-file '%.900s'", path);
    if (check_token(buf, len, src, err, errlen) < 0)
        goto cleanup;
    memcpy(c->token, buf, len);
    c->token[len] = '\0';
    c->token_len = len;
    snprintf(c->token_source, sizeof(c->token_source), "%s", path);
    if (st.st_mode & (S_IRGRP | S_IROTH))
        snprintf(c->token_warning, sizeof(c->token_warning),
                 "the token file is readable by group or others (mode %03o); chmod 600 it "
                 "unless only the daemon's user can reach it (as in its container)",
                 (unsigned)(st.st_mode & 0777));
    ret = 0;
cleanup:
    /* The token stays only in c->token: wipe the read buffer. */
    memset(buf, 0, sizeof(buf));
    close(fd);
    return ret;
}

/* Loads the token: the file wins over MNISTD_TOKEN (an explicit file is the
 * safer and more specific setting). No token: every endpoint is open. */
static int load_token(mnistd_config *c, char *err, size_t errlen)
{
    c->token[0] = '\0';
    c->token_len = 0;
    c->token_source[0] = '\0';
    c->token_warning[0] = '\0';
    if (c->token_file[0])
        return read_token_file(c, err, errlen);
    const char *v = getenv("MNISTD_TOKEN");
    if (!v || !*v)
        return 0;
    size_t len = strlen(v);
    if (check_token(v, len, "MNISTD_TOKEN", err, errlen) < 0)
        return -1;
    memcpy(c->token, v, len + 1);
    c->token_len = len;
    snprintf(c->token_source, sizeof(c->token_source), "MNISTD_TOKEN");
    return 0;
}

int config_parse(mnistd_config *c, int argc, char **argv, FILE *out,
                 char *err, size_t errlen)
{
    config_defaults(c);
    for (size_t i = 0; i < NOPTS; i++) {
        const char *v = getenv(opts[i].env);
        if (v == NULL)
            continue;
        /* An empty variable is "unset", except for --data where empty means none. */
        if (*v == '\0' && opts[i].type != OPT_STR)
            continue;
        if (set_opt(c, &opts[i], v, opts[i].env, err, errlen) < 0)
            return -1;
        if (opts[i].offset == OFF(model))
            c->model_given = 1;
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            config_usage(out);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (flags start with --)", arg);
            return -1;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const opt_def *o = NULL;
        for (size_t i = 0; i < NOPTS; i++)
            if (strlen(opts[i].flag) == nlen && strncmp(opts[i].flag, name, nlen) == 0)
                o = &opts[i];
        if (!o) {
            snprintf(err, errlen, "unknown flag '%.*s' (see --help)", (int)(nlen + 2), arg);
            return -1;
        }
        const char *val;
        if (eq)
            val = eq + 1;
        else if (a + 1 < argc)
            val = argv[++a];
        else {
            snprintf(err, errlen, "--%s needs a value", o->flag);
            return -1;
        }
        char src[64];
        snprintf(src, sizeof(src), "--%s", o->flag);
        if (set_opt(c, o, val, src, err, errlen) < 0)
            return -1;
        if (o->offset == OFF(model))
            c->model_given = 1;
    }
    if (check_cross(c, err, errlen) < 0)
        return -1;
    return load_token(c, err, errlen);
}

/* Formats the default of one option into buf. */
static void default_text(const opt_def *o, char *buf, size_t len)
{
    mnistd_config d;
    config_defaults(&d);
    const char *base = (const char *)&d + o->offset;
    switch (o->type) {
    case OPT_INT: snprintf(buf, len, "%d", *(const int *)base); break;
    case OPT_U64: snprintf(buf, len, "%" PRIu64, *(const uint64_t *)base); break;
    case OPT_STR:
    case OPT_ADDR:
    case OPT_KERNELS:
    case OPT_PRECISION: snprintf(buf, len, "%s", *base ? base : "(none)"); break;
    case OPT_LOGFMT: snprintf(buf, len, "json"); break;
    }
}

void config_usage(FILE *f)
{
    fprintf(f, "usage: mnistd [serve] [--flag value | --flag=value]...\n\n"
               "Runs the HTTP daemon. Each flag may also be set by its environment variable;\n"
               "a flag wins over the variable, the variable over the default.\n\n");
    for (size_t i = 0; i < NOPTS; i++) {
        char def[CONFIG_PATH_MAX + 8];
        default_text(&opts[i], def, sizeof(def));
        fprintf(f, "  --%-24s %-30s default %s\n      %s\n", opts[i].flag, opts[i].env, def,
                opts[i].help);
    }
}

/* printf-style append at *n, never past buflen (the text is cut there). */
static void addf(char *buf, size_t buflen, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void addf(char *buf, size_t buflen, size_t *n, const char *fmt, ...)
{
    if (*n + 1 >= buflen)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *n, buflen - *n, fmt, ap);
    va_end(ap);
    if (k > 0)
        *n += (size_t)k;
}

size_t config_to_json(const mnistd_config *c, char *buf, size_t buflen)
{
    size_t n = 0;
    if (buflen == 0)
        return 0;
    buf[0] = '\0';
    addf(buf, buflen, &n, "{");
    for (size_t i = 0; i < NOPTS; i++) {
        const char *base = (const char *)c + opts[i].offset;
        addf(buf, buflen, &n, "%s\"%s\":", i ? "," : "", opts[i].flag);
        switch (opts[i].type) {
        case OPT_INT: addf(buf, buflen, &n, "%d", *(const int *)base); break;
        case OPT_U64: addf(buf, buflen, &n, "%" PRIu64, *(const uint64_t *)base); break;
        case OPT_STR:
        case OPT_ADDR:
        case OPT_KERNELS:
        case OPT_PRECISION:
            addf(buf, buflen, &n, "\"");
            json_escape(buf, buflen - 1, &n, base);
            addf(buf, buflen, &n, "\"");
            break;
        case OPT_LOGFMT:
            addf(buf, buflen, &n, "\"%s\"", c->log_format == LOG_FORMAT_TEXT ? "text" : "json");
            break;
        }
    }
    addf(buf, buflen, &n, "}");
    if (n >= buflen)
        n = buflen - 1;
    buf[n] = '\0';
    return n;
}
