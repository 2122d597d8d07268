/* server/jobstore.h -- training job records on disk, so that the jobs
 * survive a restart: one file DIR/ID.json per job, replaced atomically
 * (model/atomicfile.h) at each change of state and at each epoch. */
#ifndef MNISTD_JOBSTORE_H
#define MNISTD_JOBSTORE_H

#include <stddef.h>

#include "server/jobs.h"

/* Writes job's record. 0, or -1 with err set (the previous record stays). */
int jobstore_save(const char *dir, const job_info *job, char *err, size_t errlen);

/* Reads every record of dir into a malloc'd array (*out, the caller frees),
 * sorted by id; *n their number. Files that are not records are skipped
 * (and left alone). 0, or -1 when dir cannot be read. */
int jobstore_load(const char *dir, job_info **out, int *n);

/* Removes job id's record (a job dropped from the history). */
void jobstore_remove(const char *dir, int id);

#endif
