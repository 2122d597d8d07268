/* Tests of model/mnist.c: synthetic IDX files (plain and gzipped, good and
 * broken in every way the loader must catch), then the real MNIST files when
 * MNISTD_DATA is set and Fashion-MNIST when its Debian package is installed. */
#include "tests/unit/test.h"
#include "model/mnist.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Writes bytes to path, gzipped if gz. Returns 0 on success. */
static int write_bytes(const char *path, const void *data, size_t len, int gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        if (!f)
            return -1;
        int ok = len == 0 || gzwrite(f, data, (unsigned)len) == (int)len;
        return (gzclose(f) == Z_OK && ok) ? 0 : -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = len == 0 || fwrite(data, 1, len, f) == len;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* A synthetic images file: header (magic, n, rows, cols) then payload_n
 * images of rows*cols bytes, pixel (k, i) = (k * 7 + i) & 255, then extra
 * garbage bytes. header_len cuts the header short when < 16. */
static int write_images(const char *path, int gz, uint32_t magic, uint32_t n, uint32_t rows,
                        uint32_t cols, size_t payload_n, size_t extra, size_t header_len)
{
    size_t px = (size_t)rows * cols;
    size_t len = 16 + payload_n * px + extra;
    unsigned char *buf = calloc(1, len);
    if (!buf)
        return -1;
    put_be32(buf, magic);
    put_be32(buf + 4, n);
    put_be32(buf + 8, rows);
    put_be32(buf + 12, cols);
    for (size_t k = 0; k < payload_n; k++)
        for (size_t i = 0; i < px; i++)
            buf[16 + k * px + i] = (unsigned char)((k * 7 + i) & 255);
    for (size_t i = 0; i < extra; i++)
        buf[16 + payload_n * px + i] = 0xAB;
    if (header_len < 16)
        len = header_len;
    int r = write_bytes(path, buf, len, gz);
    free(buf);
    return r;
}

/* A synthetic labels file: labels k % 10, except bad_at gets bad_value. */
static int write_labels(const char *path, int gz, uint32_t magic, uint32_t n, size_t payload_n,
                        size_t extra, long bad_at, unsigned char bad_value)
{
    size_t len = 8 + payload_n + extra;
    unsigned char *buf = calloc(1, len);
    if (!buf)
        return -1;
    put_be32(buf, magic);
    put_be32(buf + 4, n);
    for (size_t k = 0; k < payload_n; k++)
        buf[8 + k] = (unsigned char)(k % 10);
    if (bad_at >= 0 && (size_t)bad_at < payload_n)
        buf[8 + bad_at] = bad_value;
    int r = write_bytes(path, buf, len, gz);
    free(buf);
    return r;
}

/* Checks the contents of a set written by write_images/write_labels. */
static int set_matches(const mnist_set *s, int n)
{
    if (s->n != n || s->rows != 28 || s->cols != 28 || !s->images || !s->labels)
        return 0;
    for (int k = 0; k < n; k++) {
        if (s->labels[k] != k % 10)
            return 0;
        for (int i = 0; i < 784; i++)
            if (s->images[(size_t)k * 784 + i] != (uint8_t)((k * 7 + i) & 255))
                return 0;
    }
    return 1;
}

static int set_is_empty(const mnist_set *s)
{
    return s->n == 0 && s->images == NULL && s->labels == NULL;
}

/* Expects mnist_load to fail with a message naming `names` and containing
 * `what`, leaving the set empty. */
static void expect_fail(const char *test, const char *img, const char *lab,
                        const char *names, const char *what)
{
    mnist_set s;
    char err[512] = "";
    memset(&s, 0x5A, sizeof s);
    TEST_BEGIN(test);
    int r = mnist_load(&s, img, lab, err, sizeof err);
    printf("# %s: %s\n", test, err);
    CHECK(r == -1, "returned %d", r);
    CHECK(set_is_empty(&s), "set not left empty");
    CHECK(strstr(err, names) != NULL, "error does not name %s: \"%s\"", names, err);
    CHECK(strstr(err, what) != NULL, "error does not say \"%s\": \"%s\"", what, err);
    if (r == 0)
        mnist_free(&s);
    TEST_END();
}

static void test_good_files(void)
{
    mnist_set s;
    char err[512] = "";

    TEST_BEGIN("load_plain");
    CHECK(write_images(tpath("img"), 0, 0x803, 13, 28, 28, 13, 0, 16) == 0, "write");
    CHECK(write_labels(tpath("lab"), 0, 0x801, 13, 13, 0, -1, 0) == 0, "write");
    CHECK(mnist_load(&s, tpath("img"), tpath("lab"), err, sizeof err) == 0, "%s", err);
    CHECK(set_matches(&s, 13), "contents differ");
    mnist_free(&s);
    CHECK(set_is_empty(&s), "mnist_free does not zero");
    mnist_free(&s); /* twice is safe */
    TEST_END();

    TEST_BEGIN("load_gzip");
    CHECK(write_images(tpath("img.gz"), 1, 0x803, 21, 28, 28, 21, 0, 16) == 0, "write");
    CHECK(write_labels(tpath("lab.gz"), 1, 0x801, 21, 21, 0, -1, 0) == 0, "write");
    CHECK(mnist_load(&s, tpath("img.gz"), tpath("lab.gz"), err, sizeof err) == 0, "%s", err);
    CHECK(set_matches(&s, 21), "contents differ");
    mnist_free(&s);
    TEST_END();

    TEST_BEGIN("to_float");
    CHECK(write_images(tpath("img"), 0, 0x803, 3, 28, 28, 3, 0, 16) == 0, "write");
    CHECK(write_labels(tpath("lab"), 0, 0x801, 3, 3, 0, -1, 0) == 0, "write");
    CHECK(mnist_load(&s, tpath("img"), tpath("lab"), err, sizeof err) == 0, "%s", err);
    if (s.n == 3) {
        float *f = malloc(2 * 784 * sizeof *f);
        float sentinel = -7.0f;
        for (int i = 0; i < 2 * 784; i++)
            f[i] = sentinel;
        mnist_to_float(&s, 1, 2, f);
        int bad = 0;
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < 784; i++) {
                float want = (float)s.images[(size_t)(k + 1) * 784 + i] / 255.0f;
                if (f[k * 784 + i] != want)
                    bad++;
            }
        CHECK(bad == 0, "%d values differ from x/255", bad);
        /* image 1, pixel 248: (7 + 248) & 255 = 255 -> exactly 1.0 */
        CHECK(f[248] == 1.0f, "255 maps to %g", (double)f[248]);
        /* out of range: nothing written */
        for (int i = 0; i < 784; i++)
            f[i] = sentinel;
        mnist_to_float(&s, 2, 2, f);
        CHECK(f[0] == sentinel, "out-of-range request wrote data");
        free(f);
    }
    mnist_free(&s);
    TEST_END();
}

static void test_dir(void)
{
    mnist_set s;
    char err[512] = "";
    char d[300];

    TEST_BEGIN("load_dir_canonical");
    snprintf(d, sizeof d, "%s/canon", tmpdir);
    CHECK(mkdir(d, 0700) == 0, "mkdir");
    CHECK(write_images(tpath("canon/train-images-idx3-ubyte.gz"), 1, 0x803, 5, 28, 28, 5, 0,
                       16) == 0, "write");
    CHECK(write_labels(tpath("canon/train-labels-idx1-ubyte.gz"), 1, 0x801, 5, 5, 0, -1,
                       0) == 0, "write");
    CHECK(write_images(tpath("canon/t10k-images-idx3-ubyte"), 0, 0x803, 4, 28, 28, 4, 0,
                       16) == 0, "write");
    CHECK(write_labels(tpath("canon/t10k-labels-idx1-ubyte"), 0, 0x801, 4, 4, 0, -1, 0) == 0,
          "write");
    CHECK(mnist_load_dir(&s, d, "train", err, sizeof err) == 0, "%s", err);
    CHECK(set_matches(&s, 5), "train contents");
    mnist_free(&s);
    CHECK(mnist_load_dir(&s, d, "t10k", err, sizeof err) == 0, "%s", err);
    CHECK(set_matches(&s, 4), "t10k contents");
    mnist_free(&s);
    CHECK(mnist_load_dir(&s, d, "test", err, sizeof err) == 0, "test alias: %s", err);
    CHECK(set_matches(&s, 4), "test alias contents");
    mnist_free(&s);
    CHECK(mnist_load_dir(&s, d, "valid", err, sizeof err) == -1, "unknown set accepted");
    CHECK(strstr(err, "valid") != NULL, "error: %s", err);
    TEST_END();

    TEST_BEGIN("load_dir_plain_wins");
    /* A plain file beside a gzipped one with different contents. */
    CHECK(write_images(tpath("canon/train-images-idx3-ubyte"), 0, 0x803, 7, 28, 28, 7, 0,
                       16) == 0, "write");
    CHECK(write_labels(tpath("canon/train-labels-idx1-ubyte"), 0, 0x801, 7, 7, 0, -1, 0) == 0,
          "write");
    CHECK(mnist_load_dir(&s, d, "train", err, sizeof err) == 0, "%s", err);
    CHECK(s.n == 7, "loaded %d examples, the plain file has 7", s.n);
    mnist_free(&s);
    TEST_END();

    TEST_BEGIN("load_dir_dot_spelling");
    snprintf(d, sizeof d, "%s/dot", tmpdir);
    CHECK(mkdir(d, 0700) == 0, "mkdir");
    CHECK(write_images(tpath("dot/train-images.idx3-ubyte"), 0, 0x803, 6, 28, 28, 6, 0, 16) == 0,
          "write");
    CHECK(write_labels(tpath("dot/train-labels.idx1-ubyte.gz"), 1, 0x801, 6, 6, 0, -1, 0) == 0,
          "write");
    CHECK(mnist_load_dir(&s, d, "train", err, sizeof err) == 0, "%s", err);
    CHECK(set_matches(&s, 6), "contents");
    mnist_free(&s);
    TEST_END();

    TEST_BEGIN("load_dir_missing_files");
    snprintf(d, sizeof d, "%s/empty", tmpdir);
    CHECK(mkdir(d, 0700) == 0, "mkdir");
    memset(&s, 0x5A, sizeof s);
    CHECK(mnist_load_dir(&s, d, "train", err, sizeof err) == -1, "empty dir accepted");
    CHECK(set_is_empty(&s), "set not empty");
    CHECK(strstr(err, d) && strstr(err, "train-images-idx3-ubyte"), "error: %s", err);
    /* images present, labels missing: the message names the labels file */
    CHECK(write_images(tpath("empty/train-images-idx3-ubyte"), 0, 0x803, 2, 28, 28, 2, 0, 16) ==
          0, "write");
    CHECK(mnist_load_dir(&s, d, "train", err, sizeof err) == -1, "missing labels accepted");
    CHECK(strstr(err, "train-labels-idx1-ubyte"), "error: %s", err);
    snprintf(d, sizeof d, "%s/no-such-dir", tmpdir);
    CHECK(mnist_load_dir(&s, d, "train", err, sizeof err) == -1, "missing dir accepted");
    CHECK(strstr(err, "no-such-dir"), "error: %s", err);
    TEST_END();
}

static void test_corrupt(void)
{
    char lab[512], img[512];
    snprintf(lab, sizeof lab, "%s", tpath("good-labels"));
    snprintf(img, sizeof img, "%s", tpath("good-images"));
    write_labels(lab, 0, 0x801, 5, 5, 0, -1, 0);
    write_images(img, 0, 0x803, 5, 28, 28, 5, 0, 16);

    for (int gz = 0; gz < 2; gz++) {
        char name[64], p[64];
        const char *sfx = gz ? "_gz" : "";
#define BAD(test, file, ...) do { snprintf(p, sizeof p, "%s%s", file, gz ? ".gz" : ""); \
        __VA_ARGS__; snprintf(name, sizeof name, "%s%s", test, sfx); } while (0)

        BAD("bad_magic", "bad-magic", write_images(tpath(p), gz, 0x12345678, 5, 28, 28, 5, 0, 16));
        expect_fail(name, tpath(p), lab, p, "bad magic");

        BAD("labels_as_images", "lab-as-img", write_labels(tpath(p), gz, 0x801, 5, 5, 0, -1, 0));
        expect_fail(name, tpath(p), lab, p, "labels file");

        BAD("wrong_ndim", "ndim", write_images(tpath(p), gz, 0x804, 5, 28, 28, 5, 0, 16));
        expect_fail(name, tpath(p), lab, p, "4 dimensions");

        BAD("wrong_dims", "dims", write_images(tpath(p), gz, 0x803, 5, 28, 27, 5, 0, 16));
        expect_fail(name, tpath(p), lab, p, "28x27");

        BAD("truncated_header", "trunc-hdr", write_images(tpath(p), gz, 0x803, 5, 28, 28, 0, 0, 10));
        expect_fail(name, tpath(p), lab, p, "truncated header");

        BAD("truncated_labels_header", "trunc-lhdr", write_bytes(tpath(p), "\0\0\x08\x01\0", 5, gz));
        expect_fail(name, img, tpath(p), p, "truncated header");

        BAD("truncated_data", "trunc-data", write_images(tpath(p), gz, 0x803, 5, 28, 28, 3, 0, 16));
        expect_fail(name, tpath(p), lab, p, "header says 5 images, file holds 3");

        BAD("truncated_labels", "trunc-lab", write_labels(tpath(p), gz, 0x801, 5, 4, 0, -1, 0));
        expect_fail(name, img, tpath(p), p, "header says 5 labels, file holds 4");

        BAD("count_mismatch", "mismatch", write_labels(tpath(p), gz, 0x801, 4, 4, 0, -1, 0));
        expect_fail(name, img, tpath(p), p, "4 labels");

        BAD("label_10", "label10", write_labels(tpath(p), gz, 0x801, 5, 5, 0, 3, 10));
        expect_fail(name, img, tpath(p), p, "label 3 is 10");

        BAD("trailing_images", "trail-img", write_images(tpath(p), gz, 0x803, 5, 28, 28, 5, 3, 16));
        expect_fail(name, tpath(p), lab, p, "trailing bytes");

        BAD("trailing_labels", "trail-lab", write_labels(tpath(p), gz, 0x801, 5, 5, 1, -1, 0));
        expect_fail(name, img, tpath(p), p, "trailing bytes");

        BAD("zero_count", "zero", write_images(tpath(p), gz, 0x803, 0, 28, 28, 0, 0, 16));
        expect_fail(name, tpath(p), lab, p, "header says 0 images");

        /* A huge announced count must be refused, or at least not allocated
         * before the data is there. */
        BAD("huge_count", "huge", write_images(tpath(p), gz, 0x803, 0xFFFFFFF0u, 28, 28, 1, 0, 16));
        expect_fail(name, tpath(p), lab, p, "4294967280 images");

        BAD("large_count_truncated", "large", write_images(tpath(p), gz, 0x803, 9000000, 28, 28, 2, 0, 16));
        expect_fail(name, tpath(p), lab, p, "header says 9000000 images, file holds 2");
#undef BAD
    }

    write_bytes(tpath("empty-file"), "", 0, 0);
    expect_fail("empty_file", tpath("empty-file"), lab, "empty-file", "empty");
    expect_fail("empty_labels_file", img, tpath("empty-file"), "empty-file", "empty");
    expect_fail("missing_file", tpath("does-not-exist"), lab, "does-not-exist",
                "No such file");
    expect_fail("directory_as_file", tmpdir, lab, tmpdir, "not a regular file");
}

/* Writes a good gzipped images file, then damages its compressed bytes. */
static void test_corrupt_gzip(void)
{
    char lab[512], gzp[512];
    snprintf(lab, sizeof lab, "%s", tpath("good-labels"));
    snprintf(gzp, sizeof gzp, "%s", tpath("cz.gz"));
    unsigned char *buf = NULL;
    long len = 0;

    write_images(gzp, 1, 0x803, 5, 28, 28, 5, 0, 16);
    FILE *f = fopen(gzp, "rb");
    if (f) {
        fseek(f, 0, SEEK_END);
        len = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc((size_t)len);
        if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len)
            len = 0;
        fclose(f);
    }
    TEST_BEGIN("gzip_fixture");
    CHECK(buf && len > 40, "could not read back the gzip file");
    TEST_END();
    if (!buf || len <= 40) {
        free(buf);
        return;
    }

    /* Flipped bits in the deflate stream: a data or CRC error. */
    unsigned char *bad = malloc((size_t)len);
    memcpy(bad, buf, (size_t)len);
    for (long i = 12; i < len - 8; i += 5)
        bad[i] ^= 0x55;
    write_bytes(tpath("corrupt.gz"), bad, (size_t)len, 0);
    expect_fail("gzip_corrupt_stream", tpath("corrupt.gz"), lab, "corrupt.gz", ":");

    /* Only the CRC in the trailer is wrong: zlib reports it at the end. */
    memcpy(bad, buf, (size_t)len);
    bad[len - 8] ^= 0xFF;
    write_bytes(tpath("badcrc.gz"), bad, (size_t)len, 0);
    expect_fail("gzip_bad_crc", tpath("badcrc.gz"), lab, "badcrc.gz", "corrupt");

    /* The compressed file cut in half. */
    write_bytes(tpath("cut.gz"), buf, (size_t)len / 2, 0);
    expect_fail("gzip_truncated", tpath("cut.gz"), lab, "cut.gz", ":");
    free(bad);
    free(buf);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Loads a real data set and checks its size, exact label histogram and
 * pixel range. first_label < 0 skips that check. */
static void check_real(const char *test, const char *dir, const char *which, int n,
                       const int *hist_want, int first_label)
{
    mnist_set s;
    char err[512] = "";
    TEST_BEGIN(test);
    double t0 = now_s();
    int r = mnist_load_dir(&s, dir, which, err, sizeof err);
    double t1 = now_s();
    CHECK(r == 0, "%s", err);
    if (r == 0) {
        printf("# %s: %s/%s loaded in %.3f s\n", test, dir, which, t1 - t0);
        CHECK(s.n == n, "n = %d, expected %d", s.n, n);
        CHECK(s.rows == 28 && s.cols == 28, "%dx%d", s.rows, s.cols);
        int hist[10] = { 0 }, sum = 0;
        for (int i = 0; i < s.n; i++)
            hist[s.labels[i]]++;
        for (int c = 0; c < 10; c++) {
            sum += hist[c];
            CHECK(hist[c] == hist_want[c], "class %d: %d examples, expected %d", c, hist[c],
                  hist_want[c]);
        }
        CHECK(sum == n, "histogram sums to %d", sum);
        if (first_label >= 0)
            CHECK(s.labels[0] == first_label, "first label %d", s.labels[0]);
        unsigned lo = 255, hi = 0;
        double mean = 0;
        size_t total = (size_t)s.n * 784;
        for (size_t i = 0; i < total; i++) {
            if (s.images[i] < lo)
                lo = s.images[i];
            if (s.images[i] > hi)
                hi = s.images[i];
            mean += s.images[i];
        }
        mean /= (double)total;
        CHECK(lo == 0 && hi == 255, "pixel range %u..%u", lo, hi);
        /* MNIST's mean pixel is ~33 (0.13 * 255), Fashion's ~73: loose
         * bounds that catch a misaligned or garbled payload. */
        CHECK(mean > 20 && mean < 90, "mean pixel %.1f", mean);
        mnist_free(&s);
    }
    TEST_END();
}

static void test_real(void)
{
    static const int mnist_train[10] = { 5923, 6742, 5958, 6131, 5842,
                                         5421, 5918, 6265, 5851, 5949 };
    static const int mnist_test[10] = { 980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009 };
    static const int fashion_train[10] = { 6000, 6000, 6000, 6000, 6000,
                                           6000, 6000, 6000, 6000, 6000 };
    static const int fashion_test[10] = { 1000, 1000, 1000, 1000, 1000,
                                          1000, 1000, 1000, 1000, 1000 };
    const char *d = test_data_dir();
    if (d) {
        check_real("mnist_real_train", d, "train", 60000, mnist_train, 5);
        check_real("mnist_real_t10k", d, "t10k", 10000, mnist_test, 7);
    } else {
        TEST_SKIP("mnist_real_train", "MNISTD_DATA not set");
        TEST_SKIP("mnist_real_t10k", "MNISTD_DATA not set");
    }
    struct stat st;
    if (stat(FASHION_DIR, &st) == 0 && S_ISDIR(st.st_mode)) {
        check_real("fashion_mnist_train", FASHION_DIR, "train", 60000, fashion_train, 9);
        check_real("fashion_mnist_t10k", FASHION_DIR, "test", 10000, fashion_test, 9);
    } else {
        TEST_SKIP("fashion_mnist_train", "%s absent (Debian dataset-fashion-mnist)",
                  FASHION_DIR);
        TEST_SKIP("fashion_mnist_t10k", "%s absent", FASHION_DIR);
    }
}

/* Removes the temp dir tree (two levels deep is all the tests create). */
static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_mnist.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        printf("FAIL setup: mkdtemp %s\n", tmpdir);
        return 1;
    }
    test_good_files();
    test_dir();
    test_corrupt();
    test_corrupt_gzip();
    test_real();
    rm_tree(tmpdir);
    TEST_EXIT();
}
