/* No allocation after warm-up: this program interposes the process's
 * malloc family (the executable's definitions win over every shared
 * library's, jemalloc's and OpenBLAS's included), counts every call, and
 * checks that training steps, Adam steps and forward passes after the first
 * ones allocate nothing at all, in any library; so do the batches of
 * train_run with augmentation (gathering, transforming, a step), counted
 * between its progress callbacks. Skipped under sanitizers, which own the
 * allocator. */
#include "tests/unit/test.h"

#include <stdint.h>

#include "model/explain.h"
#include "model/mem.h"
#include "model/net.h"
#include "model/quant.h"
#include "model/train.h"

#ifndef MNISTD_SANITIZER
#include <stdatomic.h>
#include <errno.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static atomic_long n_alloc;

void *malloc(size_t n) { atomic_fetch_add(&n_alloc, 1); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { atomic_fetch_add(&n_alloc, 1); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { atomic_fetch_add(&n_alloc, 1); return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
void *aligned_alloc(size_t al, size_t n) { atomic_fetch_add(&n_alloc, 1); return __libc_memalign(al, n); }
void *memalign(size_t al, size_t n) { atomic_fetch_add(&n_alloc, 1); return __libc_memalign(al, n); }
int posix_memalign(void **out, size_t al, size_t n)
{
    atomic_fetch_add(&n_alloc, 1);
    void *p = __libc_memalign(al, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

/* Allocations counted from the 2nd batch to the last of the 1st epoch. */
typedef struct {
    long at_second, at_last;
} batch_count;

static int count_batches(const train_progress *p, void *user)
{
    batch_count *c = user;
    if (p->event == TRAIN_EV_BATCH && p->epoch == 1 && p->batch == 2)
        c->at_second = atomic_load(&n_alloc);
    if (p->event == TRAIN_EV_BATCH && p->epoch == 1 && p->batch == p->batches)
        c->at_last = atomic_load(&n_alloc);
    return 0;
}

/* An augmented train_run on a small synthetic set. */
static void augmented_training(void)
{
    enum { N = 640 };
    mnist_set s = {N, 28, 28, malloc((size_t)N * 784), malloc(N)};
    for (int i = 0; i < N; i++) {
        s.labels[i] = (uint8_t)(i % 10);
        for (int k = 0; k < 784; k++)
            s.images[(size_t)i * 784 + k] = (uint8_t)((k % 28 > 8 && k % 28 < 12 + i % 10 && k / 28 > 6) * 255);
    }
    train_config c;
    train_config_default(&c);
    c.epochs = 1;
    c.batch_size = 32;
    c.threads = 2;
    c.augment = (augment_config){3.0f, 15.0f, 0.1f, 1.5f, 0.5f};
    float *p = mem_aligned(4 * NET_NUM_PARAMS);
    batch_count bc = {-1, -1};
    char err[256] = "";
    TEST_BEGIN("augmented_training_allocates_nothing");
    int rc = train_run(p, &s, &c, count_batches, &bc, NULL, 0, err, sizeof err);
    long d = bc.at_last - bc.at_second;
    printf("  allocations during %d augmented training batches: %ld\n", N * 8 / 10 / 32 - 2, d);
    CHECK(rc == TRAIN_OK && bc.at_second >= 0 && bc.at_last >= 0, "train_run %d: %s", rc, err);
    CHECK(d == 0, "%ld allocations in the augmented training loop", d);
    TEST_END();
    mem_free(p);
    mnist_free(&s);
}

int main(void)
{
    enum { B = 64 };
    float *p = mem_aligned(4 * NET_NUM_PARAMS), *g = mem_aligned(4 * NET_NUM_PARAMS);
    float *m = mem_aligned(4 * NET_NUM_PARAMS), *v = mem_aligned(4 * NET_NUM_PARAMS);
    float *x = mem_aligned(4 * B * 784), *probs = mem_aligned(4 * B * 10);
    uint8_t y[B];
    for (int i = 0; i < B * 784; i++)
        x[i] = (float)((i * 7919) % 255) / 255.0f;
    for (int i = 0; i < B; i++)
        y[i] = (uint8_t)(i % 10);
    net_init(p, 1);
    net_train_ctx *tc = net_train_ctx_create(B, 2);
    net_ctx *ic = net_ctx_create(B, 2);
    /* warm-up: first calls may set up library buffers */
    for (int i = 0; i < 2; i++) {
        net_train_grads(tc, p, x, y, B, g, NULL, NULL);
        net_adam_step(p, g, m, v, NET_NUM_PARAMS, 1e-3f, 0.9f, 0.999f, 1e-7f, i + 1);
        net_forward(ic, p, x, B, probs, NULL);
        net_forward(ic, p, x, 1, probs, NULL);
    }
    TEST_BEGIN("training_steps_allocate_nothing");
    long before = atomic_load(&n_alloc);
    for (int i = 0; i < 20; i++) {
        net_train_grads(tc, p, x, y, B - (i % 3), g, NULL, NULL);
        net_adam_step(p, g, m, v, NET_NUM_PARAMS, 1e-3f, 0.9f, 0.999f, 1e-7f, i + 3);
    }
    long d = atomic_load(&n_alloc) - before;
    printf("  allocations during 20 training steps: %ld\n", d);
    CHECK(d == 0, "%ld allocations in the training loop", d);
    TEST_END();
    TEST_BEGIN("inference_allocates_nothing");
    before = atomic_load(&n_alloc);
    for (int i = 0; i < 50; i++)
        net_forward(ic, p, x, 1 + (i * 13) % B, probs, NULL);
    d = atomic_load(&n_alloc) - before;
    printf("  allocations during 50 forward passes: %ld\n", d);
    CHECK(d == 0, "%ld allocations in the inference path", d);
    TEST_END();
    TEST_BEGIN("int8_inference_allocates_nothing");
    {
        qnet_ctx *qc = qnet_ctx_create(B, 2);
        const float scales[QUANT_NSCALES] = {0.01f, 0.02f, 0.03f};
        char err[128];
        CHECK(qc && qnet_prepare(qc, p, scales, err, sizeof err) == 0, "int8 context");
        for (int i = 0; qc && i < 2; i++) {
            qnet_forward(qc, x, B, probs, NULL);
            qnet_forward(qc, x, 1, probs, NULL);
        }
        before = atomic_load(&n_alloc);
        for (int i = 0; qc && i < 50; i++) {
            qnet_forward(qc, x, 1 + (i * 13) % B, probs, NULL);
            if (i % 10 == 0)
                qnet_prepare(qc, p, scales, err, sizeof err);
        }
        d = atomic_load(&n_alloc) - before;
        printf("  allocations during 50 int8 forward passes and 5 prepares: %ld\n", d);
        CHECK(d == 0, "%ld allocations in the int8 inference path", d);
        qnet_ctx_free(qc);
    }
    TEST_END();
    TEST_BEGIN("explanation_allocates_nothing");
    explain_ctx *ec = explain_ctx_create(32, 2);
    static explain_result er;
    before = atomic_load(&n_alloc);
    for (int i = 0; i < 5; i++)
        explain_ig(ec, p, x, i % 2 ? 3 : -1, 8 + i * 6, &er);
    d = atomic_load(&n_alloc) - before;
    printf("  allocations during 5 explanations: %ld\n", d);
    CHECK(ec && d == 0, "%ld allocations in the explanation path", d);
    explain_ctx_free(ec);
    TEST_END();
    augmented_training();
    TEST_BEGIN("allocation_counter_works");
    before = atomic_load(&n_alloc);
    void *q = malloc(10);
    free(q);
    CHECK(atomic_load(&n_alloc) - before == 1, "the counter does not see malloc");
    TEST_END();
    net_train_ctx_free(tc);
    net_ctx_free(ic);
    mem_free(p); mem_free(g); mem_free(m); mem_free(v); mem_free(x); mem_free(probs);
    TEST_EXIT();
}
#else
int main(void)
{
    TEST_SKIP("training_steps_allocate_nothing", "sanitizer build owns malloc");
    TEST_SKIP("inference_allocates_nothing", "sanitizer build owns malloc");
    TEST_SKIP("int8_inference_allocates_nothing", "sanitizer build owns malloc");
    TEST_SKIP("explanation_allocates_nothing", "sanitizer build owns malloc");
    TEST_SKIP("augmented_training_allocates_nothing", "sanitizer build owns malloc");
    return 0;
}
#endif
