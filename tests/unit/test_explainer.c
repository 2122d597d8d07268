/* The explanation queue (server/explainer.c) on the shipped model: every
 * callback once with the explanation explain_ig gives, all-or-nothing
 * EXPLAINER_FULL, deadlines (WQ_DEADLINE), no model (WQ_NO_MODEL), and
 * explainer_stop draining the queue while refusing new jobs.
 *
 * Nothing sleeps: the test holds the worker with a "gate" job whose callback
 * blocks until the test opens the gate, and waits on a condition variable
 * the callbacks signal, with a guard (a failure, not a hang). */
#include "tests/unit/test.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "model/explain.h"
#include "server/clock.h"
#include "server/explainer.h"
#include "server/modelstore.h"

#define GUARD_SEC 120
#define STEPS 8

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, gate_open, gate_entered;
} tracker;

typedef struct {
    explain_job job;
    tracker *t;
    int calls, gate;
} fake;

static tracker T;

static void on_done(workq_job *job, void *user)
{
    fake *f = user;
    (void)job;
    pthread_mutex_lock(&T.mu);
    if (f->gate) {
        T.gate_entered = 1;
        pthread_cond_broadcast(&T.cv);
        while (!T.gate_open)
            pthread_cond_wait(&T.cv, &T.mu);
    }
    f->calls++;
    T.done++;
    pthread_cond_broadcast(&T.cv);
    pthread_mutex_unlock(&T.mu);
}

/* Waits until cond holds (under T.mu); 0, or -1 past the guard. */
#define WAIT_UNTIL(cond) ({ \
    struct timespec dl; clock_gettime(CLOCK_REALTIME, &dl); dl.tv_sec += GUARD_SEC; int rc_ = 0; \
    pthread_mutex_lock(&T.mu); \
    while (!(cond) && rc_ == 0) rc_ = pthread_cond_timedwait(&T.cv, &T.mu, &dl); \
    int ok_ = (cond); pthread_mutex_unlock(&T.mu); ok_ ? 0 : -1; })

static void init_job(fake *f, int target, int gate, int seed)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < NET_IN_PIXELS; i++)
        f->job.input[i] = ((i * 7 + seed * 13) % 29 < 9 && i % 28 > 5 && i % 28 < 22) ? 0.8f : 0.0f;
    f->job.target = target;
    f->job.steps = STEPS;
    f->job.q.done = on_done;
    f->job.q.user = f;
    f->gate = gate;
}

static void open_gate(void)
{
    pthread_mutex_lock(&T.mu);
    T.gate_open = 1;
    pthread_cond_broadcast(&T.cv);
    pthread_mutex_unlock(&T.mu);
}

static void close_gate(void)
{
    pthread_mutex_lock(&T.mu);
    T.gate_open = 0;
    T.gate_entered = 0;
    T.done = 0;
    pthread_mutex_unlock(&T.mu);
}

static void *stopper(void *arg)
{
    explainer_stop(arg);
    return NULL;
}

int main(void)
{
    char err[256];
    pthread_mutex_init(&T.mu, NULL);
    pthread_cond_init(&T.cv, NULL);
    modelstore ms;
    modelstore_init(&ms);
    served_model *m = model_load_file("models/mnist-cnn.safetensors", err, sizeof err);
    if (!m) {
        TEST_BEGIN("explainer_model");
        CHECK(0, "%s", err);
        TEST_END();
        TEST_EXIT();
    }
    /* the reference: explain_ig itself, with the same model */
    explain_ctx *ref = explain_ctx_create(STEPS, 1);
    modelstore_publish(&ms, m);
    explainer *e = explainer_create(&ms, 1, 3, STEPS, err, sizeof err);
    static fake gate, jobs[6];

    TEST_BEGIN("explainer_full_all_or_nothing_then_every_callback_once");
    init_job(&gate, -1, 1, 0);
    CHECK(explainer_submit(e, &gate.job, sizeof(fake), 1, 0) == EXPLAINER_OK, "gate refused");
    CHECK(WAIT_UNTIL(T.gate_entered) == 0, "the gate job never ran");
    for (int i = 0; i < 4; i++)
        init_job(&jobs[i], i == 1 ? 3 : -1, 0, i + 1);
    CHECK(explainer_submit(e, &jobs[0].job, sizeof(fake), 3, 0) == EXPLAINER_OK,
          "3 jobs in 3 places refused");
    CHECK(explainer_queue_depth(e) == 3, "depth %d", explainer_queue_depth(e));
    CHECK(explainer_submit(e, &jobs[3].job, sizeof(fake), 1, 0) == EXPLAINER_FULL, "a 4th job accepted");
    CHECK(jobs[3].job.q.status == WQ_PENDING && jobs[3].calls == 0, "the refused job was touched");
    open_gate();
    CHECK(WAIT_UNTIL(T.done == 4) == 0, "%d of 4 callbacks", T.done);
    for (int i = 0; i < 3; i++) {
        explain_result r;
        explain_ig(ref, m->params, jobs[i].job.input, jobs[i].job.target, STEPS, &r);
        CHECK(jobs[i].calls == 1 && jobs[i].job.q.status == WQ_OK, "job %d: %d calls, status %d", i,
              jobs[i].calls, jobs[i].job.q.status);
        CHECK(memcmp(r.attr, jobs[i].job.result.attr, sizeof r.attr) == 0 &&
              jobs[i].job.result.target == (i == 1 ? 3 : r.predicted) &&
              strcmp(jobs[i].job.model_version, m->version) == 0,
              "job %d: not explain_ig's explanation", i);
    }
    CHECK(explainer_queue_depth(e) == 0, "depth %d after", explainer_queue_depth(e));
    TEST_END();

    TEST_BEGIN("explainer_deadline_and_no_model");
    close_gate();
    init_job(&jobs[0], -1, 0, 1);
    CHECK(explainer_submit(e, &jobs[0].job, sizeof(fake), 1, 1) == EXPLAINER_OK, "refused");  /* due long ago */
    CHECK(WAIT_UNTIL(T.done == 1) == 0, "no callback");
    CHECK(jobs[0].job.q.status == WQ_DEADLINE, "status %d", jobs[0].job.q.status);
    modelstore_publish(&ms, NULL);
    init_job(&jobs[1], -1, 0, 2);
    CHECK(explainer_submit(e, &jobs[1].job, sizeof(fake), 1, 0) == EXPLAINER_OK, "refused");
    CHECK(WAIT_UNTIL(T.done == 2) == 0, "no callback");
    CHECK(jobs[1].job.q.status == WQ_NO_MODEL, "status %d", jobs[1].job.q.status);
    TEST_END();

    TEST_BEGIN("explainer_stop_drains_and_refuses");
    m = model_load_file("models/mnist-cnn.safetensors", err, sizeof err);
    modelstore_publish(&ms, m);
    close_gate();
    init_job(&gate, -1, 1, 0);
    explainer_submit(e, &gate.job, sizeof(fake), 1, 0);
    CHECK(WAIT_UNTIL(T.gate_entered) == 0, "the gate job never ran");
    for (int i = 0; i < 3; i++)
        init_job(&jobs[i], -1, 0, i + 3);
    CHECK(explainer_submit(e, &jobs[0].job, sizeof(fake), 3, 0) == EXPLAINER_OK, "refused");
    pthread_t th;
    pthread_create(&th, NULL, stopper, e);
    init_job(&jobs[3], -1, 0, 6);
    /* the queue is full until the stopper thread flags the stop (at once;
     * then it waits for the worker, held by the gate) */
    uint64_t end = clock_mono_ns() + (uint64_t)GUARD_SEC * 1000000000ull;
    int st;
    while ((st = explainer_submit(e, &jobs[3].job, sizeof(fake), 1, 0)) == EXPLAINER_FULL && clock_mono_ns() < end)
        sched_yield();
    CHECK(st == EXPLAINER_STOPPED, "submit during stop: %d", st);
    open_gate();
    pthread_join(th, NULL);
    CHECK(T.done == 4 && jobs[3].calls == 0, "after stop: %d callbacks", T.done);
    for (int i = 0; i < 3; i++)
        CHECK(jobs[i].calls == 1 && jobs[i].job.q.status == WQ_OK, "job %d: %d calls, status %d", i,
              jobs[i].calls, jobs[i].job.q.status);
    TEST_END();

    explainer_free(e);
    explain_ctx_free(ref);
    modelstore_destroy(&ms);
    TEST_EXIT();
}
