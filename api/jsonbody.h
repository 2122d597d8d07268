/* api/jsonbody.h -- the checks a handler makes before it reads its body as
 * JSON (POST /train, POST /evaluate). */
#ifndef MNISTD_API_JSONBODY_H
#define MNISTD_API_JSONBODY_H

#include "api/respond.h"

/* 1 when r's body is not to be read, with the answer queued in *ret: 413
 * when it went over the route's limit, 415 when it is not empty and its
 * Content-Type is none of application/json, application/x-www-form-urlencoded
 * and text/plain (the last two are what `curl -d` sends; no Content-Type is
 * fine too). what names the body in the 413 ("a training request"), route
 * the request in the 415 ("POST /train"). 0 when the body can be parsed. */
int api_json_body_refused(api_request *r, const char *what, const char *route, enum MHD_Result *ret);

#endif
