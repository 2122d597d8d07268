/* api/router.h -- the route table: for a path and a method, the handler that
 * answers, with everything the request lifecycle needs to know about the
 * route beforehand. Adding a route is one row in api/router.c, its handler,
 * and its description in openapi.yaml. */
#ifndef MNISTD_API_ROUTER_H
#define MNISTD_API_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "api/internal.h"
/* A handler answers its request (one of api/respond.h's functions) or
 * suspends the connection. It is called once the body is complete, and
 * again after each resume of the connection until it has answered. A route
 * dispatched on the headers (on_headers) is called on the first callback of
 * the request too, with r->body_done 0: it may refuse the request before the
 * body is read. */
typedef enum MHD_Result (*api_handler)(api_request *r);

typedef enum {
    API_OPEN = 0, /* anyone */
    API_TOKEN,    /* with --tls-client-ca a client certificate from that CA, else 403; when a
                     token is configured: Authorization: Bearer <token>, else 401 */
} api_access;

/* body_max: the body comes from the --max-body-bytes setting. */
#define API_BODY_SETTING UINT64_MAX

typedef struct api_route {
    const char *path;     /* "/train/{id}": {id} is the rest of the path, a positive integer */
    const char *method;   /* "GET" (which also answers HEAD), "POST" or "DELETE" */
    const char *label;    /* the route label of the HTTP metrics */
    uint64_t body_max;    /* body bytes kept for the handler (more: too_large); 0 discards the body */
    api_access access;
    int on_headers;       /* dispatched on the headers too, before the body is read */
    api_handler handler;
} api_route;

/* On a request's first callback: finds its row (r->row, NULL when no row has
 * this path and method) and its metric label (r->route). */
void api_route_find(api_request *r, const char *url, const char *method);

/* Dispatches the request: 404 for a path no row (nor the web page) has, 405
 * with Allow for a method the path does not have, 404 for an {id} that is
 * not a positive integer, 403 for a protected route without a trusted client
 * certificate (mutual TLS), 401 for one without the token;
 * otherwise the row's handler. */
enum MHD_Result api_route_dispatch(api_request *r, const char *url, const char *method);

#endif
