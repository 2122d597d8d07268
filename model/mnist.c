/* model/mnist.c -- loading MNIST-format (IDX) data sets; see mnist.h.
 *
 * Both plain and gzipped files go through zlib's gz* interface, which reads a
 * file without a gzip header transparently as plain bytes. The header is read
 * and checked first; the payload buffer then grows with the bytes actually
 * present (never beyond what the header announces), so a lying header cannot
 * make us allocate gigabytes for a 20-byte file. */
#include "model/mnist.h"
#include "model/err.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
/* Far above any MNIST-like set (70k), far below what would overflow sizes. */
#define MNIST_MAX_N 10000000u
#define MNIST_ROWS 28
#define MNIST_COLS 28
/* First allocation of the payload; it grows by doubling up to the announced
 * size, so the 47 MB training images need at most one reallocation. */
#define INITIAL_CHUNK ((size_t)64 << 20)

static uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* zlib's gzerror text is "path: message"; the path is already in ours. */
static const char *gz_msg(gzFile f, const char *path, int *zerr)
{
    const char *msg = gzerror(f, zerr);
    size_t pl = strlen(path);
    if (!msg)
        return "unknown error";
    if (strncmp(msg, path, pl) == 0 && msg[pl] == ':' && msg[pl + 1] == ' ')
        msg += pl + 2;
    return msg;
}

/* Reads up to len bytes from f into buf, looping because gzread takes an
 * unsigned int count. Returns the number of bytes read (short only at end of
 * data) or -1 on a read or decompression error, with the message in err. */
static long long gz_read_full(gzFile f, unsigned char *buf, size_t len,
                              const char *path, char *err, size_t errlen)
{
    size_t got = 0;
    while (got < len) {
        size_t want = len - got;
        if (want > (1u << 30))
            want = 1u << 30;
        int r = gzread(f, buf + got, (unsigned)want);
        int zerr = Z_OK;
        const char *msg = NULL;
        if (r <= 0)
            msg = gz_msg(f, path, &zerr);
        /* gzread returns 0 both at a clean end and after a truncated gzip
         * stream; only gzerror tells them apart. */
        if (r < 0 || (zerr != Z_OK && zerr != Z_STREAM_END)) {
            if (zerr == Z_ERRNO)
                err_set(err, errlen, "%s: read error: %s", path, strerror(errno));
            else
                err_set(err, errlen, "%s: corrupt compressed data: %s", path, msg);
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (long long)got;
}

/* Opens an IDX file, checks its header (magic and dimension sizes) and reads
 * the payload of count*item bytes. On success *data is the caller's to free
 * and *n_out the item count. kind is "images" or "labels" for messages. */
static int idx_read(const char *path, uint32_t magic, unsigned char **data,
                    uint32_t *n_out, char *err, size_t errlen)
{
    const int is_images = magic == IDX_MAGIC_IMAGES;
    const char *kind = is_images ? "images" : "labels";
    const size_t hdr_len = is_images ? 16 : 8;
    unsigned char hdr[16];
    unsigned char *buf = NULL;
    gzFile f = NULL;
    struct stat st;
    int ret = -1;

    *data = NULL;
    *n_out = 0;
    if (stat(path, &st) != 0) {
        err_set(err, errlen, "%s: %s", path, strerror(errno));
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        err_set(err, errlen, "%s: not a regular file", path);
        goto cleanup;
    }
    if (st.st_size == 0) {
        err_set(err, errlen, "%s: empty file", path);
        goto cleanup;
    }
    f = gzopen(path, "rb");
    if (!f) {
        err_set(err, errlen, "%s: cannot open: %s", path,
                errno ? strerror(errno) : "out of memory");
        goto cleanup;
    }
    gzbuffer(f, 256 * 1024);

    long long r = gz_read_full(f, hdr, hdr_len, path, err, errlen);
    if (r < 0)
        goto cleanup;
    /* The magic first: a labels file given as images is shorter than an
     * images header, and "wrong kind of file" is the useful message. */
    uint32_t m = r >= 4 ? be32(hdr) : magic;
    if (m != magic) {
        if (m == IDX_MAGIC_IMAGES || m == IDX_MAGIC_LABELS)
            err_set(err, errlen, "%s: bad magic 0x%08x: this is an IDX %s file, expected %s",
                    path, m, m == IDX_MAGIC_IMAGES ? "images" : "labels", kind);
        else if ((m >> 8) == 0x08)
            err_set(err, errlen, "%s: bad magic 0x%08x: %u dimensions, expected %d",
                    path, m, m & 0xffu, is_images ? 3 : 1);
        else
            err_set(err, errlen, "%s: bad magic 0x%08x, expected 0x%08x (IDX unsigned-byte %s)",
                    path, m, magic, kind);
        goto cleanup;
    }
    if ((size_t)r < hdr_len) {
        err_set(err, errlen, "%s: truncated header: %lld of %zu bytes", path, r, hdr_len);
        goto cleanup;
    }
    uint32_t n = be32(hdr + 4);
    if (n == 0 || n > MNIST_MAX_N) {
        err_set(err, errlen, "%s: header says %u %s, expected 1..%u", path, n, kind,
                MNIST_MAX_N);
        goto cleanup;
    }
    size_t item = 1;
    if (is_images) {
        uint32_t rows = be32(hdr + 8), cols = be32(hdr + 12);
        if (rows != MNIST_ROWS || cols != MNIST_COLS) {
            err_set(err, errlen, "%s: images are %ux%u, expected %dx%d", path, rows, cols,
                    MNIST_ROWS, MNIST_COLS);
            goto cleanup;
        }
        item = (size_t)MNIST_ROWS * MNIST_COLS;
    }

    /* Grow with the data actually present so a lying count costs nothing. */
    const size_t total = (size_t)n * item;
    size_t cap = total < INITIAL_CHUNK ? total : INITIAL_CHUNK;
    size_t have = 0;
    buf = malloc(cap);
    if (!buf) {
        err_set(err, errlen, "%s: out of memory for %zu bytes", path, cap);
        goto cleanup;
    }
    for (;;) {
        r = gz_read_full(f, buf + have, cap - have, path, err, errlen);
        if (r < 0)
            goto cleanup;
        have += (size_t)r;
        if (have < cap || cap == total)
            break;
        size_t ncap = cap * 2 < total ? cap * 2 : total;
        unsigned char *nb = realloc(buf, ncap);
        if (!nb) {
            err_set(err, errlen, "%s: out of memory for %zu bytes", path, ncap);
            goto cleanup;
        }
        buf = nb;
        cap = ncap;
    }
    if (have < total) {
        err_set(err, errlen, "%s: truncated: header says %u %s, file holds %zu%s", path, n,
                kind, have / item, (have % item) ? " and a partial one" : "");
        goto cleanup;
    }
    unsigned char extra;
    r = gz_read_full(f, &extra, 1, path, err, errlen);
    if (r < 0)
        goto cleanup;
    if (r > 0) {
        err_set(err, errlen, "%s: trailing bytes after the %u %s the header announces",
                path, n, kind);
        goto cleanup;
    }
    if (!is_images) {
        for (size_t i = 0; i < total; i++) {
            if (buf[i] > 9) {
                err_set(err, errlen, "%s: label %zu is %u, expected 0..9", path, i,
                        (unsigned)buf[i]);
                goto cleanup;
            }
        }
    }
    *data = buf;
    *n_out = n;
    buf = NULL;
    ret = 0;
cleanup:
    free(buf);
    if (f)
        gzclose(f);
    return ret;
}

int mnist_load(mnist_set *out, const char *images_path, const char *labels_path,
               char *err, size_t errlen)
{
    unsigned char *img = NULL, *lab = NULL;
    uint32_t ni = 0, nl = 0;
    int ret = -1;

    if (!out)
        return -1;
    memset(out, 0, sizeof *out);
    if (!images_path || !labels_path) {
        err_set(err, errlen, "mnist: no file name given");
        return -1;
    }
    if (idx_read(images_path, IDX_MAGIC_IMAGES, &img, &ni, err, errlen) != 0)
        goto cleanup;
    if (idx_read(labels_path, IDX_MAGIC_LABELS, &lab, &nl, err, errlen) != 0)
        goto cleanup;
    if (ni != nl) {
        err_set(err, errlen, "%s: holds %u labels but %s holds %u images", labels_path, nl,
                images_path, ni);
        goto cleanup;
    }
    out->n = (int)ni;
    out->rows = MNIST_ROWS;
    out->cols = MNIST_COLS;
    out->images = img;
    out->labels = lab;
    img = lab = NULL;
    ret = 0;
cleanup:
    free(img);
    free(lab);
    return ret;
}

static int is_regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Finds the file for prefix ("train-images") and kind ("idx3") in dir: the
 * canonical "-idx3-ubyte" spelling before the ".idx3-ubyte" one, each plain
 * before gzipped. Writes the path to out; -1 with a message if none exists. */
static int find_file(const char *dir, const char *prefix, const char *kind, char *out,
                     size_t outlen, char *err, size_t errlen)
{
    static const char *const seps[] = { "-", "." };
    static const char *const exts[] = { "", ".gz" };
    for (size_t s = 0; s < 2; s++) {
        for (size_t e = 0; e < 2; e++) {
            int k = snprintf(out, outlen, "%s/%s%s%s-ubyte%s", dir, prefix, seps[s], kind,
                             exts[e]);
            if (k < 0 || (size_t)k >= outlen) {
                err_set(err, errlen, "%s: path too long", dir);
                return -1;
            }
            if (is_regular(out))
                return 0;
        }
    }
    err_set(err, errlen, "%s: no %s-%s-ubyte[.gz] (or %s.%s-ubyte[.gz]) in this directory",
            dir, prefix, kind, prefix, kind);
    return -1;
}

int mnist_load_dir(mnist_set *out, const char *dir, const char *which, char *err,
                   size_t errlen)
{
    char ipath[PATH_MAX], lpath[PATH_MAX], ipre[32], lpre[32];
    struct stat st;

    if (!out)
        return -1;
    memset(out, 0, sizeof *out);
    if (!dir || !which) {
        err_set(err, errlen, "mnist: no directory or set name given");
        return -1;
    }
    if (strcmp(which, "test") == 0)
        which = "t10k";
    if (strcmp(which, "train") != 0 && strcmp(which, "t10k") != 0) {
        err_set(err, errlen, "mnist: unknown set \"%s\" (expected train, t10k or test)", which);
        return -1;
    }
    if (stat(dir, &st) != 0) {
        err_set(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        err_set(err, errlen, "%s: not a directory", dir);
        return -1;
    }
    snprintf(ipre, sizeof ipre, "%s-images", which);
    snprintf(lpre, sizeof lpre, "%s-labels", which);
    if (find_file(dir, ipre, "idx3", ipath, sizeof ipath, err, errlen) != 0)
        return -1;
    if (find_file(dir, lpre, "idx1", lpath, sizeof lpath, err, errlen) != 0)
        return -1;
    return mnist_load(out, ipath, lpath, err, errlen);
}

void mnist_free(mnist_set *s)
{
    if (!s)
        return;
    free(s->images);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

void mnist_to_float(const mnist_set *s, int first, int n, float *out)
{
    /* Out-of-range requests are a caller bug; refuse them rather than read
     * past the array. */
    if (!s || !out || !s->images || first < 0 || n <= 0 || first > s->n - n)
        return;
    const size_t px = (size_t)s->rows * (size_t)s->cols;
    const uint8_t *src = s->images + (size_t)first * px;
    const size_t total = (size_t)n * px;
    for (size_t i = 0; i < total; i++)
        out[i] = (float)src[i] / 255.0f;
}
