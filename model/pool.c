/* model/pool.c -- fork-join pool: see pool.h. */
#include "model/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define POOL_MAX 64
/* About 0.2-0.5 ms of pause instructions: longer than the gaps between the
 * calls of a training step or a forward pass, short enough not to burn a
 * core that other work (or a descheduled sibling) needs. */
#define SPIN_ITERS 3000

struct pool {
    int n;
    pthread_t th[POOL_MAX];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_cond_t done_cv; /* the caller sleeps here when spinning is not enough */
    atomic_uint gen;        /* bumped for each job (and for shutdown) */
    atomic_int pending;     /* workers still running the current job */
    atomic_int stop;
    pool_fn fn;
    void *arg;
};

typedef struct {
    pool *p;
    int tid;
    unsigned gen0; /* the generation when the worker was made: a job posted
                      before the thread first runs must still be seen */
} worker_arg;


static void *worker_main(void *v)
{
    pool *p = ((worker_arg *)v)->p;
    int tid = ((worker_arg *)v)->tid;
    unsigned seen = ((worker_arg *)v)->gen0;
    free(v);
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen &&
               spins < SPIN_ITERS) {
            cpu_relax();
            spins++;
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load(&p->gen)) == seen)
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (atomic_load(&p->stop))
            return NULL;
        p->fn(p->arg, tid, p->n);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            /* the last one out wakes the caller if it went to sleep */
            pthread_mutex_lock(&p->mu);
            pthread_cond_broadcast(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

int pool_ncores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > POOL_MAX ? POOL_MAX : (int)n);
}

pool *pool_create(int n)
{
    if (n < 1)
        n = 1;
    if (n > POOL_MAX)
        n = POOL_MAX;
    pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->n = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    for (int i = 1; i < n; i++) {
        worker_arg *wa = malloc(sizeof(*wa));
        if (!wa)
            goto error;
        wa->p = p;
        wa->tid = i;
        wa->gen0 = atomic_load(&p->gen);
        if (pthread_create(&p->th[i], NULL, worker_main, wa) != 0) {
            free(wa);
            goto error;
        }
        p->n = i + 1;
    }
    return p;
error:
    pool_free(p);
    return NULL;
}

void pool_free(pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->done_cv);
    free(p);
}

int pool_size(const pool *p) { return p ? p->n : 1; }

void pool_run(pool *p, pool_fn fn, void *arg)
{
    if (!p || p->n <= 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->pending, p->n - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    int spins = 0;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0 && spins < SPIN_ITERS) {
        cpu_relax();
        spins++;
    }
    if (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->pending) > 0)
            pthread_cond_wait(&p->done_cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

int pool_barrier_wait(pool_barrier *b, int n)
{
    int ph = atomic_load_explicit(&b->phase, memory_order_acquire), yielded = 0;
    if (atomic_fetch_add_explicit(&b->arrived, 1, memory_order_acq_rel) == n - 1) {
        atomic_store_explicit(&b->arrived, 0, memory_order_relaxed);
        atomic_store_explicit(&b->phase, ph + 1, memory_order_release);
        return 0;
    }
    for (unsigned spins = 1; atomic_load_explicit(&b->phase, memory_order_acquire) == ph; spins++)
        if (spins % 4096 == 0) {
            sched_yield();
            yielded = 1;
        } else {
            cpu_relax();
        }
    return yielded;
}
