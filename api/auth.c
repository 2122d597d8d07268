/* api/auth.c -- see auth.h.
 *
 * The token is loaded once by config_parse (server/config.c) into the
 * configuration; here a request's Authorization header is parsed and its
 * credentials compared with it in time that does not depend on where (or
 * whether) they differ. Neither the expected nor the offered token is ever
 * written anywhere: the access log holds method, path and status only. */
#include <stddef.h>
#include <string.h>

#include "api/auth.h"
#include "api/respond.h"

/* Compares the offered credentials (off, offlen) with the token (tok, toklen)
 * in constant time: the loop always runs over the whole token, reading the
 * offered bytes cyclically, and folds every difference, the length
 * difference included, into one accumulator. Only the token's length (not
 * a secret worth the name at 16+ characters) shapes the timing. Returns 1
 * when equal. */
static int equal_ct(const unsigned char *off, size_t offlen, const unsigned char *tok, size_t toklen)
{
    volatile unsigned char acc = 0;
    size_t lendiff = offlen ^ toklen;
    for (size_t i = 0; i < sizeof(lendiff); i++)
        acc |= (unsigned char)(lendiff >> (8 * i));
    for (size_t i = 0; i < toklen; i++) {
        unsigned char o = offlen ? off[i % offlen] : 0;
        acc |= (unsigned char)(o ^ tok[i]);
    }
    return acc == 0;
}

/* 1 for the characters HTTP treats as optional white space. */
static int is_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

int api_auth_check_header(const char *header, const char *token, size_t token_len)
{
    if (token_len == 0)
        return 1;
    if (!header)
        return 0;
    const char *p = header;
    while (is_ows(*p))
        p++;
    /* The scheme name is case-insensitive (RFC 7235 section 2.1). */
    if (strncasecmp(p, "Bearer", 6) != 0 || !is_ows(p[6]))
        return 0;
    p += 6;
    while (is_ows(*p))
        p++;
    size_t len = strlen(p);
    while (len > 0 && is_ows(p[len - 1]))
        len--;
    return equal_ct((const unsigned char *)p, len, (const unsigned char *)token, token_len);
}

int api_auth_ok(api_request *r)
{
    const mnistd_config *cfg = r->srv->cfg;
    if (cfg->token_len == 0)
        return 1;
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    return api_auth_check_header(h, cfg->token, cfg->token_len);
}

int api_auth_refused(api_request *r, enum MHD_Result *ret)
{
    static const char *const www_auth[] = {"WWW-Authenticate", "Bearer realm=\"mnistd\"", NULL};
    if (api_auth_ok(r))
        return 0;
    *ret = api_error(r, 401, "unauthorized", "this endpoint needs the header 'Authorization: Bearer <token>'",
                     www_auth);
    return 1;
}
