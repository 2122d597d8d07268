/* Minimal test harness shared by the C tests.
 *
 * Each check prints one line the runner (tests/run.sh) counts:
 *   PASS <name>            the check held
 *   FAIL <name>: <why>     it did not (file:line included)
 *   SKIP <name>: <why>     it could not run here (e.g. no MNIST data)
 * A test program exits 1 if any check failed, else 0. */
#ifndef MNISTD_TEST_H
#define MNISTD_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((unused)) static int t_failed_ = 0;
__attribute__((unused)) static int t_cur_failed_ = 0;
__attribute__((unused)) static const char *t_cur_ = NULL;

#define TEST_BEGIN(name) do { t_cur_ = (name); t_cur_failed_ = 0; } while (0)
#define TEST_END() do { if (!t_cur_failed_) printf("PASS %s\n", t_cur_); \
                        fflush(stdout); t_cur_ = NULL; } while (0)
#define TEST_SKIP(name, ...) do { printf("SKIP %s: ", (name)); printf(__VA_ARGS__); \
                                  printf("\n"); fflush(stdout); } while (0)

#define CHECK(cond, ...) do { if (!(cond)) { \
    printf("FAIL %s: %s:%d: ", t_cur_ ? t_cur_ : "?", __FILE__, __LINE__); \
    printf(__VA_ARGS__); printf("\n"); fflush(stdout); \
    t_failed_++; t_cur_failed_++; } } while (0)

#define TEST_EXIT() return t_failed_ ? 1 : 0

/* A test program's scratch directory (it creates it, e.g. with mkdtemp) and
 * tpath(name), the path of name inside it, in a static rotating buffer (4
 * paths can be in use at once). */
__attribute__((unused)) static char tmpdir[256];
__attribute__((unused)) static const char *tpath(const char *name)
{
    static char bufs[4][512];
    static int i = 0;
    i = (i + 1) % 4;
    snprintf(bufs[i], sizeof bufs[i], "%s/%s", tmpdir, name);
    return bufs[i];
}

/* Directory of the MNIST files for tests, or NULL: the MNISTD_DATA setting. */
static inline const char *test_data_dir(void)
{
    const char *d = getenv("MNISTD_DATA");
    return (d && *d) ? d : NULL;
}

/* 1 in a ThreadSanitizer build (SANITIZER=thread), where code runs 5-20
 * times slower: stress tests scale their sizes by this and print them. */
#if defined(__SANITIZE_THREAD__)
#define TEST_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_UNDER_TSAN 1
#endif
#endif
#ifndef TEST_UNDER_TSAN
#define TEST_UNDER_TSAN 0
#endif

#endif
