/* The model store (server/modelstore.c): reference counts across swaps.
 * A model published over one that is still referenced stays whole until
 * its last release, which frees it (the ASan pass reports a leak or a use
 * after free otherwise); readers and publishers on several threads at once
 * always see a whole model, and models in the order they were published.
 * Synchronisation is by barrier and join; nothing sleeps. */
#include "tests/unit/test.h"

#include <pthread.h>
#include <stdatomic.h>

#include "model/net.h"
#include "server/modelstore.h"

/* A model whose every parameter is k, and whose source names k. */
static served_model *model_k(int k)
{
    float *params = malloc(sizeof(float) * NET_NUM_PARAMS);
    if (!params)
        return NULL;
    for (int i = 0; i < NET_NUM_PARAMS; i++)
        params[i] = (float)k;
    char src[32];
    snprintf(src, sizeof src, "model %d", k);
    served_model *m = model_from_params(params, NULL, src);
    free(params);
    return m;
}

/* 1 if m is a whole model_k(k) for some k (every parameter and the source
 * agree); *k is set to it. */
static int whole(const served_model *m, int *k)
{
    int v = (int)m->params[0];
    for (int i = 0; i < NET_NUM_PARAMS; i += 97)
        if (m->params[i] != (float)v)
            return 0;
    if (m->params[NET_NUM_PARAMS - 1] != (float)v)
        return 0;
    char src[32];
    snprintf(src, sizeof src, "model %d", v);
    *k = v;
    return strcmp(m->source, src) == 0;
}

typedef struct {
    modelstore *ms;
    pthread_barrier_t *start;
    atomic_int *publishing;     /* publishers still running */
    int id, models;             /* a publisher's models: id*models+1 .. (id+1)*models */
    long reads, torn, backwards;
} thread_arg;

static void *reader_main(void *v)
{
    thread_arg *a = v;
    int last = 0;
    pthread_barrier_wait(a->start);
    /* Until every publisher is done, then once more. */
    for (int more = 1; more;) {
        more = atomic_load(a->publishing) > 0;
        served_model *m = modelstore_acquire(a->ms);
        if (!m)
            continue;
        int k = 0;
        if (!whole(m, &k))
            a->torn++;
        else if (k < last)
            a->backwards++;  /* one publisher in the ordered test */
        last = k;
        a->reads++;
        model_release(m);
    }
    return NULL;
}

static void *publisher_main(void *v)
{
    thread_arg *a = v;
    pthread_barrier_wait(a->start);
    for (int i = 1; i <= a->models; i++) {
        /* Now and then, hold the current model across the publish. */
        served_model *held = i % 7 == 0 ? modelstore_acquire(a->ms) : NULL;
        served_model *m = model_k(a->id * a->models + i);
        if (m)
            modelstore_publish(a->ms, m);
        int k;
        if (held && !whole(held, &k))
            a->torn++;
        model_release(held);
    }
    atomic_fetch_sub(a->publishing, 1);
    return NULL;
}

/* readers and publishers at once; returns reads done, sets *torn and
 * *backwards summed over the readers. */
static long run_threads(modelstore *ms, int readers, int publishers, int models, long *torn,
                        long *backwards)
{
    thread_arg args[16];
    pthread_t th[16];
    pthread_barrier_t start;
    atomic_int publishing;
    int n = readers + publishers;
    atomic_init(&publishing, publishers);
    pthread_barrier_init(&start, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        args[i] = (thread_arg){.ms = ms, .start = &start, .publishing = &publishing,
                               .id = i - readers, .models = models};
        pthread_create(&th[i], NULL, i < readers ? reader_main : publisher_main, &args[i]);
    }
    long reads = 0;
    *torn = *backwards = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        reads += args[i].reads;
        *torn += args[i].torn;
        *backwards += args[i].backwards;
    }
    pthread_barrier_destroy(&start);
    return reads;
}

int main(void)
{
    const int models = TEST_UNDER_TSAN ? 40 : 100;
    printf("  %d models per publisher%s\n", models, TEST_UNDER_TSAN ? " (ThreadSanitizer build)" : "");
    modelstore ms;

    TEST_BEGIN("modelstore_empty");
    CHECK(modelstore_init(&ms) == 0, "init");
    CHECK(!modelstore_ready(&ms) && modelstore_acquire(&ms) == NULL, "a new store has no model");
    modelstore_publish(&ms, NULL);
    CHECK(!modelstore_ready(&ms), "publishing NULL");
    modelstore_destroy(&ms);
    TEST_END();

    TEST_BEGIN("modelstore_publish_acquire_release");
    modelstore_init(&ms);
    served_model *a = model_k(1);
    CHECK(a && atomic_load(&a->refs) == 1, "a new model holds one reference");
    char version_a[32];
    snprintf(version_a, sizeof version_a, "%s", a->version);
    modelstore_publish(&ms, a);  /* the store takes over that reference */
    CHECK(modelstore_ready(&ms), "ready after publish");
    served_model *r1 = modelstore_acquire(&ms), *r2 = modelstore_acquire(&ms);
    CHECK(r1 == a && r2 == a && atomic_load(&a->refs) == 3, "two readers: refs %d", atomic_load(&a->refs));
    model_release(r2);
    CHECK(atomic_load(&a->refs) == 2, "after one release: refs %d", atomic_load(&a->refs));

    /* Publish b while r1 still holds a: a stays whole, new readers get b. */
    served_model *b = model_k(2);
    modelstore_publish(&ms, b);
    CHECK(atomic_load(&a->refs) == 1, "the store let go of a: refs %d", atomic_load(&a->refs));
    int k = 0;
    CHECK(whole(r1, &k) && k == 1 && strcmp(r1->version, version_a) == 0,
          "a changed while referenced (k %d)", k);
    served_model *r3 = modelstore_acquire(&ms);
    CHECK(r3 == b && strcmp(b->version, version_a) != 0, "the next acquire gets the new model");
    model_release(r3);
    /* The last reference: a is freed here (the ASan pass reports a leak if
     * not, and a use after free if the store had freed it earlier). */
    model_release(r1);
    /* Unpublishing releases the store's reference to b, which frees it. */
    modelstore_publish(&ms, NULL);
    CHECK(!modelstore_ready(&ms) && modelstore_acquire(&ms) == NULL, "unpublished");
    model_release(NULL);
    modelstore_destroy(&ms);
    TEST_END();

    TEST_BEGIN("modelstore_destroy_releases_current");
    modelstore_init(&ms);
    modelstore_publish(&ms, model_k(3));
    served_model *held = modelstore_acquire(&ms);
    modelstore_destroy(&ms);  /* drops the store's reference only */
    CHECK(held && whole(held, &k) && k == 3 && atomic_load(&held->refs) == 1,
          "a reference outlives the store");
    model_release(held);
    TEST_END();

    TEST_BEGIN("modelstore_concurrent_readers_one_publisher");
    modelstore_init(&ms);
    long torn, backwards;
    long reads = run_threads(&ms, 2, 1, models, &torn, &backwards);
    CHECK(torn == 0, "%ld of %ld reads saw a torn model", torn, reads);
    CHECK(backwards == 0, "%ld reads saw an older model after a newer one", backwards);
    served_model *last = modelstore_acquire(&ms);
    CHECK(last && whole(last, &k) && k == models, "the last published model is current (%d)", k);
    CHECK(last && atomic_load(&last->refs) == 2, "refs %d", last ? atomic_load(&last->refs) : -1);
    model_release(last);
    modelstore_destroy(&ms);
    printf("  %ld reads\n", reads);
    TEST_END();

    TEST_BEGIN("modelstore_concurrent_readers_and_publishers");
    modelstore_init(&ms);
    reads = run_threads(&ms, 2, 2, models / 2, &torn, &backwards);
    CHECK(torn == 0, "%ld of %ld reads saw a torn model", torn, reads);
    last = modelstore_acquire(&ms);
    CHECK(last && atomic_load(&last->refs) == 2, "refs %d", last ? atomic_load(&last->refs) : -1);
    model_release(last);
    modelstore_destroy(&ms);
    TEST_END();

    TEST_EXIT();
}
