/* server/clock.h -- the process's clocks.
 *
 * clock_mono_ns: a monotonic clock for durations and deadlines (request
 * timing, batch deadlines, timeouts); it never steps. clock_wall: the time
 * of day in unix seconds, for timestamps shown to people (job times, the
 * model's load time, log lines); it may step. */
#ifndef MNISTD_CLOCK_H
#define MNISTD_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds of the clock id. */
static inline uint64_t clock_ns_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Monotonic nanoseconds since an arbitrary point. */
static inline uint64_t clock_mono_ns(void)
{
    return clock_ns_of(CLOCK_MONOTONIC);
}

/* Monotonic seconds since an arbitrary point. */
static inline double clock_mono_s(void)
{
    return (double)clock_mono_ns() / 1e9;
}

/* Wall-clock nanoseconds since the unix epoch. */
static inline uint64_t clock_wall_ns(void)
{
    return clock_ns_of(CLOCK_REALTIME);
}

/* Wall-clock seconds since the unix epoch. */
static inline double clock_wall(void)
{
    return (double)clock_wall_ns() / 1e9;
}

#endif
