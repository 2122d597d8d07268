/* server/jobnames.c -- the names of a training job's statuses and phases,
 * as the API and the job records spell them; see jobs.h. */
#include "server/jobs.h"

const char *job_status_name(job_status s)
{
    switch (s) {
    case JOB_QUEUED: return "queued";
    case JOB_RUNNING: return "running";
    case JOB_SUCCEEDED: return "succeeded";
    case JOB_FAILED: return "failed";
    case JOB_CANCELLED: return "cancelled";
    }
    return "unknown";
}

const char *job_phase_name(job_phase p)
{
    static const char *const names[JOB_NPHASES] = {"queued", "load", "train", "evaluate", "quantize", "save"};
    return p >= 0 && p < JOB_NPHASES ? names[p] : "unknown";
}
