/* model/mnist.h -- loading MNIST-format (IDX) data sets.
 *
 * Reads the canonical IDX files (idx3 images: magic 0x00000803, idx1 labels:
 * magic 0x00000801, big-endian headers) either gzip-compressed (".gz", read
 * through zlib) or plain. Every header field is checked: magic, counts,
 * dimensions (rows/cols must be 28x28 for this network), label values (0..9),
 * image and label counts agreeing, truncated or oversized payloads. Errors
 * are reported as text naming the file, never by crashing.
 *
 * Works unchanged for Fashion-MNIST (same format and shape). */
#ifndef MNISTD_MNIST_H
#define MNISTD_MNIST_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int n;              /* number of examples */
    int rows, cols;     /* 28, 28 */
    uint8_t *images;    /* n*rows*cols bytes, row-major, 0..255 */
    uint8_t *labels;    /* n bytes, 0..9 */
} mnist_set;

/* Loads one images file and its labels file. On success fills *out (owned by
 * the caller, release with mnist_free) and returns 0; on failure returns -1,
 * leaves *out empty and writes a message naming the file into err. */
int mnist_load(mnist_set *out, const char *images_path, const char *labels_path,
               char *err, size_t errlen);

/* Loads "train" or "t10k" ("test" is accepted as an alias of t10k) from a
 * directory holding the canonical file names, each either plain
 * (train-images-idx3-ubyte) or gzipped (train-images-idx3-ubyte.gz); the plain
 * file wins when both exist. Also accepts the "-idx3-ubyte" / ".idx3-ubyte"
 * spellings. Returns 0 or -1 with err set (e.g. which file is missing). */
int mnist_load_dir(mnist_set *out, const char *dir, const char *which,
                   char *err, size_t errlen);

/* Frees the arrays and zeroes *s; safe on an empty or already freed set. */
void mnist_free(mnist_set *s);

/* Converts images [first, first+n) to floats in [0,1] (x/255) into out
 * (n*rows*cols floats). */
void mnist_to_float(const mnist_set *s, int first, int n, float *out);

#endif
