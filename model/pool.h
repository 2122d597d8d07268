/* model/pool.h -- a tiny fork-join thread pool for the numeric core.
 *
 * pool_run(p, fn, arg) calls fn(arg, tid, n) once for every tid in 0..n-1,
 * tid 0 on the calling thread, the others on the pool's workers, and returns
 * when all have returned. Workers spin briefly before sleeping so that the
 * back-to-back calls of a forward pass do not pay a wake-up each. One caller
 * at a time per pool. */
#ifndef MNISTD_POOL_H
#define MNISTD_POOL_H

#include <stdatomic.h>

typedef void (*pool_fn)(void *arg, int tid, int nthreads);
typedef struct pool pool;

/* Creates a pool for n threads in all (n-1 workers; n <= 1 makes none).
 * Returns NULL on failure. */
pool *pool_create(int n);
void pool_free(pool *p);
int pool_size(const pool *p);
void pool_run(pool *p, pool_fn fn, void *arg);

/* A barrier for the n threads of one pool_run job (zero-initialised):
 * pool_barrier_wait returns once all n have called it. It spins, as the
 * workers do between jobs, yielding the core now and then in case a thread
 * it waits for was descheduled; it returns 1 when it had to yield (the
 * others were late by more than a few microseconds: busy cores), else 0.
 * Reusable at once. */
typedef struct {
    atomic_int arrived, phase;
} pool_barrier;
int pool_barrier_wait(pool_barrier *b, int n);

/* Number of online cores (at least 1). */
int pool_ncores(void);

#endif
