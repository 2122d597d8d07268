/* model/checkpoint.h -- model files in the safetensors format.
 *
 * File layout: 8-byte little-endian unsigned header length N, then N bytes of
 * JSON header, then the raw little-endian tensor data. The header maps each
 * tensor name (net_tensors[] order and names) to
 *   {"dtype":"F32","shape":[...],"data_offsets":[begin,end]}
 * with offsets relative to the start of the data section, tensors packed in
 * net_tensors[] order with no gaps, and "__metadata__" to a string->string
 * map (architecture, format version, mnistd version, training recipe,
 * accuracy, creation time, ...). The header is padded with spaces to a
 * multiple of 8 bytes, as the reference implementation does.
 *
 * The metadata key CKPT_FORMAT_KEY holds the format version, written by
 * ckpt_save alone; the loader refuses another version with a message that
 * says which mnistd wrote the file, and judges a file without the key by its
 * tensors. Files of older mnistd versions also carry "format":"mnistd-1"
 * (CKPT_LEGACY_FORMAT_KEY); they load, and a save drops that key.
 *
 * Saving is atomic: write a temporary file in the same directory, fsync it,
 * rename it over the target, fsync the directory. A reader never sees a half
 * written file under the target name.
 *
 * Loading checks everything: header length within the file and a bound
 * (CKPT_MAX_HEADER), valid JSON, every expected tensor present exactly once
 * with dtype F32 and the expected shape, offsets contiguous, within the data
 * section and matching the sizes, no unknown tensors, file size exact, and
 * all values finite. A file that does not match the network is refused with
 * a clear message; *params is only written when the whole file is valid. */
#ifndef MNISTD_CHECKPOINT_H
#define MNISTD_CHECKPOINT_H

#include <stddef.h>

#define CKPT_FORMAT_KEY "format_version"
#define CKPT_FORMAT_VERSION "1"
#define CKPT_LEGACY_FORMAT_KEY "format"

#define CKPT_MAX_HEADER (1u << 20)
#define CKPT_MAX_META 32
#define CKPT_KEY_MAX 64
#define CKPT_VAL_MAX 512

typedef struct {
    int n;
    char key[CKPT_MAX_META][CKPT_KEY_MAX];
    char val[CKPT_MAX_META][CKPT_VAL_MAX];
} ckpt_meta;

/* Sets key to val (replacing an existing key); -1 if full or too long. */
int ckpt_meta_set(ckpt_meta *m, const char *key, const char *val);
/* Returns the value of key, or NULL. */
const char *ckpt_meta_get(const ckpt_meta *m, const char *key);

/* Writes params (NET_NUM_PARAMS floats) and meta (may be NULL) to path
 * atomically. Returns 0, or -1 with err set; on failure the previous file at
 * path, if any, is untouched. */
int ckpt_save(const char *path, const float *params, const ckpt_meta *meta,
              char *err, size_t errlen);

/* Removes the temporary files that saves of path interrupted by a crash left
 * behind (ckpt_save writes a temporary file beside path and renames it over
 * path; a process killed in between leaves it). Only files of processes that
 * are gone are removed: a PID that no longer exists, or the caller's own,
 * so call it before this process saves path (at startup: in a container the
 * daemon is PID 1 after every restart). A save running in another process
 * is left alone, as far as this PID namespace shows: two containers sharing
 * a writable directory could remove each other's. Returns the number of
 * files removed. */
int ckpt_remove_stale_temps(const char *path);

/* Reads path into params (NET_NUM_PARAMS floats) and meta (may be NULL).
 * Returns 0, or -1 with err set and params untouched. */
int ckpt_load(const char *path, float *params, ckpt_meta *meta,
              char *err, size_t errlen);

/* The same as ckpt_load, on a file already in memory (for fuzzing/tests). */
int ckpt_load_buffer(const unsigned char *buf, size_t len, float *params,
                     ckpt_meta *meta, char *err, size_t errlen);

#endif
