/* model/pool.h -- a tiny fork-join thread pool for the numeric core.
 *
 * pool_run(p, fn, arg) calls fn(arg, tid, n) once for every tid in 0..n-1,
 * tid 0 on the calling thread, the others on the pool's workers, and returns
 * when all have returned. Workers spin briefly before sleeping so that the
 * back-to-back calls of a forward pass do not pay a wake-up each. One caller
 * at a time per pool. */
#ifndef MNISTD_POOL_H
#define MNISTD_POOL_H

typedef void (*pool_fn)(void *arg, int tid, int nthreads);
typedef struct pool pool;

/* Creates a pool for n threads in all (n-1 workers; n <= 1 makes none).
 * Returns NULL on failure. */
pool *pool_create(int n);
void pool_free(pool *p);
int pool_size(const pool *p);
void pool_run(pool *p, pool_fn fn, void *arg);

/* Number of online cores (at least 1). */
int pool_ncores(void);

#endif
