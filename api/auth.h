/* api/auth.h -- bearer-token access control for the mutating endpoints.
 *
 * When a token is configured (--token-file / MNISTD_TOKEN_FILE), POST /train,
 * DELETE /train/{id} (and any other mutating route) require the header
 * `Authorization: Bearer <token>`, compared in constant time. Read-only
 * endpoints stay open. The token never appears in logs or metrics. */
#ifndef MNISTD_API_AUTH_H
#define MNISTD_API_AUTH_H

#include "api/internal.h"

/* 1 if r may use a mutating endpoint (no token configured, or the right
 * bearer token given), 0 otherwise. */
int api_auth_ok(api_request *r);

/* The gate of a protected route: when r may not use it, answers 401 with
 * WWW-Authenticate: Bearer, sets *ret and returns 1; otherwise returns 0. */
int api_auth_refused(api_request *r, enum MHD_Result *ret);

/* The check itself, without a connection (for unit tests): 1 when
 * token_len is 0, or header is "Bearer <token>" (scheme case-insensitive,
 * spaces or tabs around the credentials ignored) with exactly that token;
 * 0 otherwise (header NULL, another scheme, a different token). The
 * comparison takes the same time wherever the credentials differ. */
int api_auth_check_header(const char *header, const char *token, size_t token_len);

#endif
