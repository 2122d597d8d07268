/* The fork-join pool (model/pool.c): every tid runs exactly once per
 * pool_run and has returned when pool_run returns, results gathered from
 * the workers are right, pools used by several callers at once and a pool
 * used from inside another pool's task, and shutdown at any point (right
 * after creation, before the workers first ran, after many runs).
 * Synchronisation is pool_run's own return; nothing sleeps. */
#include "tests/unit/test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "model/pool.h"

#define MAXT 64

/* One pool_run's record: how often each tid ran, and what it wrote. */
typedef struct {
    atomic_int hits[MAXT];
    int nthreads_seen[MAXT];    /* plain: written by each tid, read after the run */
    atomic_int bad_nthreads;
} run_record;

static void count_fn(void *arg, int tid, int n)
{
    run_record *r = arg;
    if (tid < 0 || tid >= MAXT) {
        atomic_fetch_add(&r->bad_nthreads, 1);
        return;
    }
    atomic_fetch_add(&r->hits[tid], 1);
    r->nthreads_seen[tid] = n;
}

/* Runs pool p `runs` times; 0 if every run called each tid 0..size-1 once
 * with nthreads = size, and no other tid. */
static int runs_exactly_once(pool *p, int runs)
{
    int size = pool_size(p);
    for (int k = 0; k < runs; k++) {
        run_record r;
        memset(&r, 0, sizeof r);
        pool_run(p, count_fn, &r);
        if (atomic_load(&r.bad_nthreads))
            return -1;
        for (int t = 0; t < MAXT; t++) {
            int want = t < size ? 1 : 0;
            if (atomic_load(&r.hits[t]) != want || (want && r.nthreads_seen[t] != size)) {
                printf("  run %d: tid %d ran %d times (nthreads %d, pool size %d)\n", k, t,
                       atomic_load(&r.hits[t]), r.nthreads_seen[t], size);
                return -1;
            }
        }
    }
    return 0;
}

/* A parallel sum of 1..n split into contiguous slices by tid. */
typedef struct {
    int64_t n;
    int64_t partial[MAXT];
    int heavy_tid;  /* this tid also does extra work, so the others wait */
} sum_job;

static void sum_fn(void *arg, int tid, int nthreads)
{
    sum_job *s = arg;
    int64_t lo = s->n * tid / nthreads + 1, hi = s->n * (tid + 1) / nthreads;
    int64_t acc = 0;
    for (int64_t i = lo; i <= hi; i++)
        acc += i;
    if (tid == s->heavy_tid) {
        /* Extra work whose result is zero: long enough that the caller
         * and the other workers stop spinning and sleep. */
        volatile int64_t x = 0;
        for (int i = 0; i < 200000; i++)
            x += i & 1 ? 1 : -1;
        acc += x;
    }
    s->partial[tid] = acc;
}

static int sums_right(pool *p, int runs, int heavy)
{
    for (int k = 0; k < runs; k++) {
        sum_job s;
        memset(&s, 0, sizeof s);
        s.n = 1000 + 37 * k;
        s.heavy_tid = heavy ? k % pool_size(p) : -1;
        pool_run(p, sum_fn, &s);
        int64_t total = 0;
        for (int t = 0; t < pool_size(p); t++)
            total += s.partial[t];
        if (total != s.n * (s.n + 1) / 2) {
            printf("  run %d: sum of 1..%lld is %lld\n", k, (long long)s.n, (long long)total);
            return -1;
        }
    }
    return 0;
}

/* Several callers at once, each with its own pool. */
typedef struct {
    pool *p;
    int runs;
    int rc;
    pthread_barrier_t *start;
} caller_arg;

static void *caller_main(void *v)
{
    caller_arg *a = v;
    pthread_barrier_wait(a->start);
    a->rc = runs_exactly_once(a->p, a->runs) | sums_right(a->p, a->runs, 0);
    return NULL;
}

/* A task that runs a pool of its own (one inner pool per outer tid: a pool
 * has one caller at a time). */
typedef struct {
    pool *inner[MAXT];
    atomic_int failures;
    atomic_int ran;
} nested_job;

static void nested_fn(void *arg, int tid, int n)
{
    (void)n;
    nested_job *nj = arg;
    atomic_fetch_add(&nj->ran, 1);
    if (runs_exactly_once(nj->inner[tid], 3) != 0 || sums_right(nj->inner[tid], 3, 0) != 0)
        atomic_fetch_add(&nj->failures, 1);
}

/* Phases separated by pool_barrier_wait: each thread writes its slot, waits,
 * then every thread must see every slot of this phase written, and waits
 * again before the next phase overwrites them. */
typedef struct {
    pool_barrier bar;
    int slot[8];
    int phases;
    atomic_int failures;
} barrier_job;

static void barrier_fn(void *arg, int tid, int n)
{
    barrier_job *bj = arg;
    for (int ph = 0; ph < bj->phases; ph++) {
        __atomic_store_n(&bj->slot[tid], ph, __ATOMIC_RELAXED);
        pool_barrier_wait(&bj->bar, n);
        for (int t = 0; t < n; t++)
            if (__atomic_load_n(&bj->slot[t], __ATOMIC_RELAXED) != ph)
                atomic_fetch_add(&bj->failures, 1);
        pool_barrier_wait(&bj->bar, n);
    }
}

int main(void)
{
    const int runs = TEST_UNDER_TSAN ? 200 : 1000;
    printf("  %d runs per pool%s\n", runs, TEST_UNDER_TSAN ? " (ThreadSanitizer build)" : "");

    TEST_BEGIN("pool_sizes_clamped");
    pool *p = pool_create(0);
    CHECK(p && pool_size(p) == 1, "pool_create(0): size %d", pool_size(p));
    CHECK(p && runs_exactly_once(p, 3) == 0, "a pool of 1 runs tid 0 on the caller");
    pool_free(p);
    p = pool_create(1000);
    CHECK(p && pool_size(p) == MAXT, "pool_create(1000): size %d", pool_size(p));
    CHECK(p && runs_exactly_once(p, 20) == 0, "a pool of %d", pool_size(p));
    pool_free(p);
    CHECK(pool_size(NULL) == 1 && runs_exactly_once(NULL, 2) == 0, "a NULL pool runs on the caller");
    CHECK(pool_ncores() >= 1 && pool_ncores() <= MAXT, "pool_ncores %d", pool_ncores());
    pool_free(NULL);
    TEST_END();

    TEST_BEGIN("pool_each_tid_once_per_run");
    const int sizes[] = {2, 3, 8};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        p = pool_create(sizes[i]);
        CHECK(p && pool_size(p) == sizes[i], "size %d", sizes[i]);
        /* More threads than cores: each run waits for descheduled ones. */
        int r = sizes[i] > pool_ncores() ? runs / 10 : runs;
        CHECK(p && runs_exactly_once(p, r) == 0, "pool of %d", sizes[i]);
        pool_free(p);
    }
    TEST_END();

    TEST_BEGIN("pool_results_gathered");
    p = pool_create(4);
    CHECK(sums_right(p, runs, 0) == 0, "even work");
    /* One tid at a time much slower than the rest: the caller and the
     * other workers go from spinning to sleeping, and must still be woken. */
    CHECK(sums_right(p, runs / 10, 1) == 0, "uneven work");
    pool_free(p);
    TEST_END();

    TEST_BEGIN("pool_concurrent_callers");
    enum { NCALLERS = 4 };
    caller_arg ca[NCALLERS];
    pthread_t th[NCALLERS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NCALLERS);
    for (int i = 0; i < NCALLERS; i++) {
        ca[i] = (caller_arg){.p = pool_create(2 + i % 2), .runs = runs / 4, .rc = -1, .start = &start};
        CHECK(ca[i].p != NULL, "pool_create");
        pthread_create(&th[i], NULL, caller_main, &ca[i]);
    }
    for (int i = 0; i < NCALLERS; i++) {
        pthread_join(th[i], NULL);
        CHECK(ca[i].rc == 0, "caller %d", i);
        pool_free(ca[i].p);
    }
    pthread_barrier_destroy(&start);
    TEST_END();

    TEST_BEGIN("pool_nested");
    p = pool_create(3);
    nested_job nj;
    memset(&nj, 0, sizeof nj);
    for (int t = 0; t < pool_size(p); t++)
        nj.inner[t] = pool_create(2);
    for (int k = 0; k < runs / 30 + 1; k++)
        pool_run(p, nested_fn, &nj);
    CHECK(atomic_load(&nj.failures) == 0, "%d inner runs failed", atomic_load(&nj.failures));
    CHECK(atomic_load(&nj.ran) == (runs / 30 + 1) * 3, "outer tasks ran %d times", atomic_load(&nj.ran));
    for (int t = 0; t < pool_size(p); t++)
        pool_free(nj.inner[t]);
    pool_free(p);
    TEST_END();

    TEST_BEGIN("pool_barrier_phases");
    for (int size = 1; size <= 3; size++) {
        p = pool_create(size);
        barrier_job bj;
        memset(&bj, 0, sizeof bj);
        bj.phases = runs / 10;
        for (int k = 0; k < 10; k++)
            pool_run(p, barrier_fn, &bj);
        CHECK(atomic_load(&bj.failures) == 0, "pool of %d: %d stale slots after a barrier", size,
              atomic_load(&bj.failures));
        pool_free(p);
    }
    TEST_END();

    TEST_BEGIN("pool_shutdown");
    /* Freed at once, before the workers may even have started; run at once
     * after creation (a job posted before a worker first looks); freed
     * after runs. ASan and TSan check the rest (no leak, no race). */
    int ok = 1;
    for (int k = 0; k < runs / 10 && ok; k++) {
        pool *q = pool_create(2 + k % 3);
        ok = q != NULL;
        pool_free(q);
        q = pool_create(2 + k % 3);
        ok = ok && q && runs_exactly_once(q, 1 + k % 3) == 0;
        pool_free(q);
    }
    CHECK(ok, "create/run/free cycle failed");
    TEST_END();

    TEST_EXIT();
}
