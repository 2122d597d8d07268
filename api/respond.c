/* api/respond.c -- see respond.h. Every answer of the daemon goes through
 * queue(): the common headers, Connection: close while shutting down, and the
 * status and size the access log and the metrics report. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/respond.h"
#include "server/log.h"

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

enum MHD_Result api_field_error(api_request *r, const char *field, const char *detail)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return api_error(r, 500, "out of memory", NULL, NULL);
    cJSON_AddStringToObject(o, "error", "invalid field");
    cJSON_AddNumberToObject(o, "status", 422);
    cJSON_AddStringToObject(o, "detail", detail);
    cJSON_AddStringToObject(o, "field", field);
    return api_respond_json(r, 422, o, NULL);
}
