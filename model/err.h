/* model/err.h -- the error message convention of model/: a function that
 * fails writes a one-line message into a caller-supplied buffer. */
#ifndef MNISTD_ERR_H
#define MNISTD_ERR_H

#include <stddef.h>

/* printf-style message into err (at most errlen bytes, NUL-terminated);
 * does nothing when err is NULL or errlen is 0. */
void err_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
