/* tests/fuzz/fuzz_idx.c -- libFuzzer harness: the IDX (MNIST) loader.
 *
 * mnist_load reads two files by name, plain or gzipped. The input holds
 * both: a 4-byte little-endian length L, then L bytes of the images file,
 * then the labels file (the rest). L larger than what follows gives all of
 * it to the images file and an empty labels file. Each file is written to
 * an in-memory file (memfd) made once per process and opened by the loader
 * through its /proc/self/fd path, so a run touches no disk and the loader
 * is fuzzed through its real file code (stat, gzopen, gzread).
 *
 * Checked beyond the sanitizers: on success 1..n examples of 28x28 with
 * every label 0..9, arrays of the announced sizes (every byte is read, so
 * ASan sees a short array) and mnist_to_float in range; on failure an empty
 * set and a message; mnist_free twice is safe. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "model/mnist.h"

#define FUZZ_ASSERT(cond) do { if (!(cond)) { \
    fprintf(stderr, "fuzz_idx: contract broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
    abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int img_fd = -1, lab_fd = -1;
static volatile unsigned sink;
static char img_path[64], lab_path[64];

/* Replaces the whole content of fd with buf[0..len). 0 or -1. */
static int put(int fd, const uint8_t *buf, size_t len)
{
    if (ftruncate(fd, 0) != 0)
        return -1;
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(fd, buf + done, len - done, (off_t)done);
        if (w <= 0)
            return -1;
        done += (size_t)w;
    }
    return 0;
}

/* Reads every image byte (ASan sees an array shorter than n*784) and
 * returns 1 if every label is 0..9. Not coverage-instrumented: a traced
 * compare per byte would slow every run and guide nothing. */
__attribute__((noinline, no_sanitize("coverage")))
static int labels_ok(const mnist_set *s)
{
    unsigned sum = 0;
    const size_t px = (size_t)s->n * 28 * 28;
    for (size_t i = 0; i < px; i++)
        sum += s->images[i];
    sink = sum;  /* keeps the reads: the optimiser may not drop them */
    int ok = 1;
    for (int i = 0; i < s->n; i++)
        ok &= s->labels[i] <= 9;
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mnist_set s;
    char err[512];

    if (img_fd < 0) {
        img_fd = memfd_create("fuzz-images", 0);
        lab_fd = memfd_create("fuzz-labels", 0);
        if (img_fd < 0 || lab_fd < 0) {
            perror("fuzz_idx: memfd_create");
            abort();
        }
        snprintf(img_path, sizeof img_path, "/proc/self/fd/%d", img_fd);
        snprintf(lab_path, sizeof lab_path, "/proc/self/fd/%d", lab_fd);
    }

    size_t ilen = 0, off = 0;
    if (size >= 4) {
        ilen = (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 |
               (size_t)data[3] << 24;
        off = 4;
    }
    if (ilen > size - off)
        ilen = size - off;
    if (put(img_fd, data + off, ilen) != 0 ||
        put(lab_fd, data + off + ilen, size - off - ilen) != 0) {
        perror("fuzz_idx: writing the memfd");
        abort();
    }

    memset(&s, 0x5a, sizeof s);
    err[0] = '\0';
    if (mnist_load(&s, img_path, lab_path, err, sizeof err) != 0) {
        FUZZ_ASSERT(err[0] != '\0');
        FUZZ_ASSERT(s.n == 0 && s.images == NULL && s.labels == NULL);
        mnist_free(&s);
        return 0;
    }
    FUZZ_ASSERT(s.n >= 1 && s.rows == 28 && s.cols == 28);
    FUZZ_ASSERT(s.images != NULL && s.labels != NULL);
    FUZZ_ASSERT(labels_ok(&s));
    float f[2 * 28 * 28];
    int k = s.n < 2 ? s.n : 2;
    mnist_to_float(&s, s.n - k, k, f);
    for (int i = 0; i < k * 28 * 28; i++)
        FUZZ_ASSERT(f[i] >= 0.0f && f[i] <= 1.0f);
    /* Out-of-range requests are refused, not read. */
    mnist_to_float(&s, s.n, 1, f);
    mnist_to_float(&s, -1, 1, f);
    mnist_free(&s);
    mnist_free(&s);
    return 0;
}
