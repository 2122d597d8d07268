/* tests/fuzz/fuzz_json_evaluate.c -- libFuzzer harness: the body of
 * POST /evaluate (api/evalreq.c, evalreq_parse), which names the evaluation
 * sets.
 *
 * Checked beyond ASan/UBSan, against an independent reading of the
 * contract (api/evalreq.h, openapi.yaml EvaluateRequest):
 *   - the answer is 0, 400 or 422; field and detail are NUL-terminated
 *     within their buffers; 0 leaves field empty, 400 and 422 set detail,
 *     a refusal leaves no sets;
 *   - an empty body is 0 with no transformed set;
 *   - 0 exactly when the body is a JSON object that is empty or whose only
 *     key is "set" (at most once) with one of the documented names, and the mask is that
 *     name's (one bit per transformation, all three for "transformed").
 *
 * Input: the whole body, in a buffer of exactly its size. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/evalreq.h"

#define FUZZ_ASSERT(cond) do { if (!(cond)) { \
    fprintf(stderr, "fuzz_json_evaluate: contract broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
    abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The mask a body should give, or -1 when it should be refused. */
static long expected(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"test", "shifted", "rotated", "thickened", "transformed"};
    static const long masks[] = {0, 1, 2, 4, 7};
    if (size == 0)
        return 0;
    cJSON *o = cJSON_ParseWithLength((const char *)data, size);
    long want = cJSON_IsObject(o) && !o->child ? 0 : -1;  /* {}: every default */
    if (cJSON_IsObject(o) && o->child && !o->child->next && o->child->string &&
        strcmp(o->child->string, "set") == 0 && cJSON_IsString(o->child)) {
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strcmp(o->child->valuestring, names[i]) == 0)
                want = masks[i];
    }
    cJSON_Delete(o);
    return want;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *body = malloc(size ? size : 1);  /* exactly the body: ASan sees an over-read */
    if (!body)
        return 0;
    memcpy(body, data, size);
    char field[64], detail[160];
    memset(field, 'x', sizeof field);
    memset(detail, 'x', sizeof detail);
    unsigned sets = 0xdead;
    int rc = evalreq_parse(body, size, &sets, field, sizeof field, detail, sizeof detail);
    FUZZ_ASSERT(rc == 0 || rc == 400 || rc == 422);
    FUZZ_ASSERT(memchr(field, '\0', sizeof field) != NULL);
    FUZZ_ASSERT(memchr(detail, '\0', sizeof detail) != NULL);
    if (rc == 0)
        FUZZ_ASSERT(field[0] == '\0' && sets <= 7);
    else
        FUZZ_ASSERT(detail[0] != '\0' && sets == 0);
    long want = expected(body, size);
    FUZZ_ASSERT((rc == 0) == (want >= 0));
    if (rc == 0)
        FUZZ_ASSERT((long)sets == want);
    free(body);
    return 0;
}
