/* api/evalreq.h -- the body of POST /evaluate: nothing (the test set), or a
 * JSON object {"set": NAME} naming the evaluation sets (model/robust.h:
 * "test", "shifted", "rotated", "thickened", "transformed"). A parser of
 * outside input with no server around it (tests/fuzz/fuzz_json_evaluate.c). */
#ifndef MNISTD_API_EVALREQ_H
#define MNISTD_API_EVALREQ_H

#include <stddef.h>
#include <stdint.h>

/* Reads body[0, len). Returns 0 with *sets the mask of robust_set_parse
 * (0 for an empty body); 400 when the body is not a JSON object; 422 when a
 * field is unknown, repeated or not one of the names, with field naming it
 * and detail saying why. field and detail are always NUL-terminated. */
int evalreq_parse(const uint8_t *body, size_t len, unsigned *sets, char *field, size_t fieldlen,
                  char *detail, size_t detaillen);

#endif
