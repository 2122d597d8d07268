/* tests/fuzz/fuzz_json_train.c -- libFuzzer harness: the POST /train request
 * handler (api/train.c, api_post_train) with its JSON body parsing and field
 * validation, and the bearer-token gate the route table puts in front of it
 * (api/auth.c, api_auth_refused).
 *
 * The handler runs as in the daemon but without libmicrohttpd and without a
 * training thread: this file defines the few functions api/train.c calls
 * outside itself (header lookup, api/respond.h, the jobs manager), and
 * they check what the handler hands them:
 *   - exactly one response per request, with a status POST /train documents
 *     (202, 400, 401, 409, 413, 415, 422, 500, 503), a JSON body that cJSON
 *     can print, and for 202 and 409 a Location header /train/<id>;
 *   - a configuration reaches jobs_submit only inside the documented ranges
 *     (the TRAIN_MAX_* limits of model/train.h, checked by
 *     train_config_check, as the real jobs_submit checks it);
 *   - a jobs_submit that runs out of resources is a 503, never a 422.
 *
 * Input layout:
 *   byte 0   flags: bits 0-1 the Content-Type (none, application/json,
 *            "text/plain; charset=utf-8", image/png); bit 2 a job is already
 *            running (409); bit 3 a token is configured; bits 4-7 all set:
 *            the body went over the size limit (413); bits 4-7 = 0x5:
 *            jobs_submit runs out of memory (503)
 *   line     up to the first '\n': the Authorization header value (used when
 *            a token is configured; an empty line means no header)
 *   rest     the request body, in a buffer of exactly its size. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/auth.h"
#include "api/respond.h"

#define FUZZ_ASSERT(cond) do { if (!(cond)) { \
    fprintf(stderr, "fuzz_json_train: contract broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
    abort(); } } while (0)

#define FUZZ_TOKEN "fuzz-token-0123456789abcdef"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* The handler under test (its row in api/router.c declares it the same way). */
enum MHD_Result api_post_train(api_request *r);

/* What the current request looks like to the stubs, and what they saw. */
static struct {
    const char *ctype;          /* Content-Type header or NULL */
    char auth[1024];            /* Authorization header */
    int has_auth;
    int busy;                   /* a job is running: jobs_submit says JOBS_BUSY */
    int no_memory;              /* jobs_submit says JOBS_ERROR (out of memory) */
    int resource_failed;        /* ... and it did so for this request */
    int responses;              /* responses queued */
    int submitted;              /* jobs_submit accepted a job */
    train_config cfg;           /* the last config jobs_submit accepted */
} st;

/* ---- libmicrohttpd -------------------------------------------------- */

const char *MHD_lookup_connection_value(struct MHD_Connection *connection,
                                        enum MHD_ValueKind kind, const char *key)
{
    (void)connection;
    FUZZ_ASSERT(kind == MHD_HEADER_KIND);
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_TYPE) == 0)
        return st.ctype;
    if (strcasecmp(key, MHD_HTTP_HEADER_AUTHORIZATION) == 0)
        return st.has_auth ? st.auth : NULL;
    return NULL;
}

/* ---- api/respond.h ---------------------------------------------------- */

/* Records one response; checks the status and the headers. */
static void record(api_request *r, int status, const char *const *headers)
{
    static const int allowed[] = { 202, 400, 401, 409, 413, 415, 422, 500, 503 };
    int ok = 0;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        ok |= status == allowed[i];
    FUZZ_ASSERT(ok);
    FUZZ_ASSERT(r->status == 0);  /* one response per request */
    r->status = status;
    st.responses++;
    if (status == 202 || status == 409) {
        FUZZ_ASSERT(headers != NULL && headers[0] != NULL);
        FUZZ_ASSERT(strcmp(headers[0], "Location") == 0);
        FUZZ_ASSERT(strncmp(headers[1], "/train/", 7) == 0);
    }
    for (int i = 0; headers && headers[i]; i += 2)
        FUZZ_ASSERT(headers[i + 1] != NULL);
}

enum MHD_Result api_respond_json(api_request *r, int status, struct cJSON *obj,
                                 const char *const *headers)
{
    record(r, status, headers);
    FUZZ_ASSERT(obj != NULL);
    char *text = cJSON_PrintUnformatted(obj);
    FUZZ_ASSERT(text != NULL);
    cJSON *back = cJSON_Parse(text);
    FUZZ_ASSERT(back != NULL);  /* what the handler built is valid JSON */
    if (status >= 400) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(back, "error");
        FUZZ_ASSERT(cJSON_IsString(e));
    }
    cJSON_Delete(back);
    free(text);
    cJSON_Delete(obj);
    return MHD_YES;
}

enum MHD_Result api_error(api_request *r, int status, const char *error, const char *detail,
                          const char *const *headers)
{
    record(r, status, headers);
    FUZZ_ASSERT(error != NULL && error[0] != '\0');
    (void)detail;
    return MHD_YES;
}

enum MHD_Result api_field_error(api_request *r, const char *field, const char *detail)
{
    record(r, 422, NULL);
    FUZZ_ASSERT(field != NULL && detail != NULL && detail[0] != '\0');
    return MHD_YES;
}

void api_rfc3339(double unix_seconds, char *buf, size_t len)
{
    time_t t = (time_t)unix_seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- server/jobs.c ---------------------------------------------------- */

int jobs_submit_promote(jobs *j, const train_config *cfg, const char *reason, promote_policy promote,
                        int *id, char *err, size_t errlen)
{
    (void)j;
    FUZZ_ASSERT(reason != NULL);
    FUZZ_ASSERT(promote == PROMOTE_IF_BETTER || promote == PROMOTE_ALWAYS || promote == PROMOTE_NEVER);
    /* What the handler validated: the documented ranges of POST /train,
     * learning_rate and validation_split also as the floats they became. */
    FUZZ_ASSERT(train_config_check(cfg, NULL, err, errlen) == 0);
    if (st.busy) {
        *id = 7;
        snprintf(err, errlen, "training job 7 is still running");
        return JOBS_BUSY;
    }
    if (st.no_memory) {
        st.resource_failed = 1;
        snprintf(err, errlen, "out of memory");
        return JOBS_ERROR;
    }
    st.cfg = *cfg;
    st.submitted = 1;
    *id = 8;
    return JOBS_OK;
}

/* ---- server/lifecycle.h: this daemon owns its models ---------------- */

int lifecycle_writable(lifecycle *lc)
{
    (void)lc;
    return 1;
}

const char *lifecycle_readonly_reason(lifecycle *lc)
{
    (void)lc;
    return "";
}

int jobs_get(jobs *j, int id, job_info *out)
{
    (void)j;
    if (!st.submitted || id != 8)
        return JOBS_NOT_FOUND;
    memset(out, 0, sizeof *out);
    out->id = id;
    out->status = JOB_QUEUED;
    out->cfg = st.cfg;
    snprintf(out->reason, sizeof out->reason, "api");
    out->created_at = 1700000000.0;
    out->epochs = st.cfg.epochs;
    out->loss = out->accuracy = NAN;
    out->eta = -1;
    return JOBS_OK;
}

int jobs_list(jobs *j, job_info *out, int max)
{
    (void)j;
    (void)out;
    (void)max;
    return 0;
}

int jobs_cancel(jobs *j, int id)
{
    (void)j;
    (void)id;
    return JOBS_NOT_FOUND;
}

/* ---- the harness ------------------------------------------------------ */

/* The reference reading of auth.h, written independently of api/auth.c:
 * 1 when header is "Bearer" (any case), then at least one space or tab,
 * then exactly token, with optional spaces or tabs before and after. */
static int bearer_matches(const char *header, const char *token)
{
    if (header == NULL)
        return 0;
    size_t n = strlen(header), i = 0;
    while (i < n && (header[i] == ' ' || header[i] == '\t'))
        i++;
    if (n - i < 7 || strncasecmp(header + i, "bearer", 6) != 0)
        return 0;
    i += 6;
    if (header[i] != ' ' && header[i] != '\t')
        return 0;
    while (i < n && (header[i] == ' ' || header[i] == '\t'))
        i++;
    while (n > i && (header[n - 1] == ' ' || header[n - 1] == '\t'))
        n--;
    return n - i == strlen(token) && memcmp(header + i, token, n - i) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const ctypes[] = { NULL, "application/json",
                                          "text/plain; charset=utf-8", "image/png" };
    static mnistd_config cfg;
    static api_server srv;
    api_request r;

    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    data++;
    size--;
    size_t alen = 0;
    while (alen < size && alen < sizeof st.auth - 1 && data[alen] != '\n')
        alen++;
    memset(&st, 0, sizeof st);
    memcpy(st.auth, data, alen);
    st.auth[alen] = '\0';
    st.has_auth = alen > 0;
    size_t off = alen < size ? alen + 1 : alen;
    st.ctype = ctypes[flags & 3];
    st.busy = (flags >> 2) & 1;
    st.no_memory = (flags & 0xf0) == 0x50;

    memset(&cfg, 0, sizeof cfg);
    if ((flags >> 3) & 1) {
        snprintf(cfg.token, sizeof cfg.token, "%s", FUZZ_TOKEN);
        cfg.token_len = strlen(FUZZ_TOKEN);
    }
    memset(&srv, 0, sizeof srv);
    srv.cfg = &cfg;

    memset(&r, 0, sizeof r);
    r.srv = &srv;
    r.len = size - off;
    r.body = malloc(r.len ? r.len : 1);  /* exactly the body: ASan sees an over-read */
    if (r.body == NULL)
        return 0;
    memcpy(r.body, data + off, r.len);
    r.cap = r.len;
    r.too_large = (flags & 0xf0) == 0xf0;
    r.body_max = 65536;

    /* as the router dispatches a protected route: the gate, then the handler */
    enum MHD_Result ret;
    if (!api_auth_refused(&r, &ret))
        ret = api_post_train(&r);
    FUZZ_ASSERT(ret == MHD_YES || ret == MHD_NO);
    FUZZ_ASSERT(st.responses == 1);
    /* Authorization: with a token, 401 exactly when the header is not
     * "Bearer <token>". */
    if (cfg.token_len > 0) {
        int good = bearer_matches(st.has_auth ? st.auth : NULL, FUZZ_TOKEN);
        FUZZ_ASSERT((r.status == 401) == !good);
        FUZZ_ASSERT(api_auth_check_header(st.has_auth ? st.auth : NULL, FUZZ_TOKEN,
                                          strlen(FUZZ_TOKEN)) == good);
    } else {
        FUZZ_ASSERT(r.status != 401);
    }
    if (r.status == 202)
        FUZZ_ASSERT(st.submitted);
    /* A resource failure is the server's: 503, not a 422 "invalid field". */
    FUZZ_ASSERT(!st.resource_failed || r.status == 503);
    free(r.body);
    return 0;
}
