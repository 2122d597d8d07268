/* api/jsonbody.c -- see jsonbody.h. */
#include "api/jsonbody.h"

#include <stdio.h>
#include <strings.h>

int api_json_body_refused(api_request *r, const char *what, const char *route, enum MHD_Result *ret)
{
    char d[128];
    if (r->too_large) {
        snprintf(d, sizeof(d), "%s body is at most %llu bytes", what, (unsigned long long)r->body_max);
        *ret = api_error(r, 413, "body too large", d, NULL);
        return 1;
    }
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (r->len > 0 && ct && strncasecmp(ct, "application/json", 16) != 0 &&
        strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 && strncasecmp(ct, "text/plain", 10) != 0) {
        snprintf(d, sizeof(d), "%s takes a JSON object (application/json)", route);
        *ret = api_error(r, 415, "unsupported media type", d, NULL);
        return 1;
    }
    return 0;
}
