/* api/respond.h -- how a handler answers: every response of the daemon, the
 * JSON error body, and the date format of the API. The handlers include this
 * header (not the router's or the lifecycle's), so no file of api/ calls back
 * into a file that calls it. */
#ifndef MNISTD_API_RESPOND_H
#define MNISTD_API_RESPOND_H

#include "api/internal.h"

/* Queues a response with body (copied) and content type; extra headers are
 * NULL-terminated name/value pairs. Records status and size in r. */
enum MHD_Result api_respond(api_request *r, int status, const char *ctype,
                            const void *body, size_t len, const char *const *headers);
/* The same, taking over a malloc'd body (freed by libmicrohttpd). */
enum MHD_Result api_respond_owned(api_request *r, int status, const char *ctype,
                                  char *body, size_t len, const char *const *headers);
/* The same, for a body that outlives the response (the files built into
 * the binary): sent from where it is, not copied. */
enum MHD_Result api_respond_static(api_request *r, int status, const char *ctype,
                                   const void *body, size_t len, const char *const *headers);
/* Queues obj (a cJSON object, which this deletes) as a JSON response. */
struct cJSON;
enum MHD_Result api_respond_json(api_request *r, int status, struct cJSON *obj,
                                 const char *const *headers);
/* Formats unix seconds as RFC 3339 UTC ("2026-01-02T03:04:05Z"). */
void api_rfc3339(double unix_seconds, char *buf, size_t len);

/* {"error": error, "status": status[, "detail": detail]} with the status. */
enum MHD_Result api_error(api_request *r, int status, const char *error, const char *detail,
                          const char *const *headers);

/* 422 {"error": "invalid field", "status": 422, "detail": detail, "field":
 * field}: a field of a JSON body is unknown, of the wrong type or out of
 * range (openapi.yaml, FieldError). */
enum MHD_Result api_field_error(api_request *r, const char *field, const char *detail);

#endif
