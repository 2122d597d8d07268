/* model/atomicfile.h -- files replaced whole or not at all.
 *
 * atomic_write writes a temporary file beside the target (its name: the
 * target's, a temporary infix, the writer's PID and a counter),
 * fsyncs it, renames it over the target and fsyncs the directory: a reader
 * (or a process starting after a crash at any moment) sees the old file or
 * the new one, complete, never a mix or a truncation. A process killed in
 * the middle leaves at most its temporary file behind (see
 * atomic_remove_stale_temps). */
#ifndef MNISTD_ATOMICFILE_H
#define MNISTD_ATOMICFILE_H

#include <stddef.h>

typedef struct {
    const void *data;
    size_t len;
} atomic_part;

/* Writes the parts, in order, as the new content of path (mode 0644).
 * Returns 0, or -1 with err set ("PATH: write failed: No space left on
 * device", ...); on failure the previous file at path, if any, is untouched
 * and no temporary file is left. */
int atomic_write(const char *path, const atomic_part *parts, int nparts,
                 char *err, size_t errlen);

/* fsyncs the directory holding path, so that a rename or an unlink in it
 * survives a crash. 0 or -1 (errno set). */
int atomic_sync_parent(const char *path);

/* Removes, in directory dir, the temporary files that
 * atomic_write calls of processes that are gone left behind: a PID that no
 * longer exists, or our own (call it before this process writes there: in a
 * container the daemon is PID 1 after every restart). A write running in
 * another process is left alone, as far as this PID namespace shows. name
 * limits it to the temporary files of that target ("" or NULL: of any).
 * Returns the number removed. */
int atomic_remove_stale_temps(const char *dir, const char *name);

/* 1 if file (a name in a directory) has the form of an atomic_write
 * temporary file. */
int atomic_is_temp_name(const char *file);

#endif
