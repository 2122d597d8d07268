/* api/web.h -- the web page (web/index.html, web/app.js, web/style.css),
 * built into the binary by api/web.c and served at GET /. */
#ifndef MNISTD_API_WEB_H
#define MNISTD_API_WEB_H

#include <stddef.h>

#include "api/internal.h"

/* Looks up a page path: "/" and "/index.html" (the page), "/app.js",
 * "/style.css" and the same under "/static/" (its assets). path is the URL
 * path without the query string. On 0 the out-parameters that are not NULL
 * get the file's bytes (static storage in the binary: never freed), their
 * length and the Content-Type. Returns 0 when found, -1 otherwise
 * (including a NULL path). */
int api_web_find(const char *path, const char **body, size_t *len, const char **content_type);

/* Answers a request for a path api_web_find knows: GET and HEAD get the
 * file (200, Cache-Control: no-store, a Content-Security-Policy allowing
 * only this origin), other methods 405 with Allow: GET, HEAD; a path it does
 * not know gets the usual JSON 404. */
enum MHD_Result api_web_respond(api_request *r, const char *path);

#endif
