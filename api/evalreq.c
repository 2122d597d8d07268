/* api/evalreq.c -- the body of POST /evaluate: see evalreq.h. */
#include "api/evalreq.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "model/robust.h"

int evalreq_parse(const uint8_t *body, size_t len, unsigned *sets, char *field, size_t fieldlen,
                  char *detail, size_t detaillen)
{
    snprintf(field, fieldlen, "%s", "");
    snprintf(detail, detaillen, "%s", "");
    *sets = 0;
    if (len == 0)
        return 0;
    cJSON *o = cJSON_ParseWithLength((const char *)body, len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        snprintf(detail, detaillen, "send a JSON object, e.g. {\"set\":\"transformed\"}");
        return 400;
    }
    int rc = 0;
    for (const cJSON *it = o->child; it && rc == 0; it = it->next) {
        snprintf(field, fieldlen, "%.60s", it->string ? it->string : "");
        if (!it->string || strcmp(it->string, "set") != 0) {
            snprintf(detail, detaillen, "unknown field '%.60s'; known: set", field);
            rc = 422;
        } else if (it != cJSON_GetObjectItemCaseSensitive(o, "set")) {
            snprintf(detail, detaillen, "field 'set' appears more than once");
            rc = 422;
        } else if (!cJSON_IsString(it) || robust_set_parse(it->valuestring, sets) != 0) {
            snprintf(detail, detaillen, "set must be one of " ROBUST_SET_NAMES);
            rc = 422;
        }
    }
    if (rc == 0)
        snprintf(field, fieldlen, "%s", "");
    else
        *sets = 0;
    cJSON_Delete(o);
    return rc;
}
