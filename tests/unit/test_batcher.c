/* The inference batcher (server/batcher.c) with fake jobs on a real model:
 * every callback runs exactly once with the right probabilities, deadlines
 * (WQ_DEADLINE), no model (WQ_NO_MODEL), all-or-nothing BATCHER_FULL,
 * batcher_stop draining the queue and refusing new jobs, batches filled to
 * the share of open connections (batcher_connections), and a closed
 * connection waking a worker that waits for company.
 *
 * Nothing sleeps: tests wait on a condition variable that the callbacks
 * signal, and hold a worker where they need it with a "gate" job whose
 * callback blocks until the test opens the gate. Waits have a guard (a
 * failure, not a hang) far below the batch timeouts they check against.
 * The batcher has no way to cancel a queued job, so none is tested. */
#include "tests/unit/test.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "model/net.h"
#include "server/batcher.h"
#include "server/clock.h"
#include "server/modelstore.h"

#define GUARD_SEC 60          /* a wait that takes longer is a failure */
#define LONG_TIMEOUT_US 2000000000 /* 2000 s: a batch that waits this long fails the guard */
#define NPATTERNS 16
#define SENTINEL_STATUS ((workq_status)99)

/* What the callbacks report to the test, under mu. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;               /* callbacks run */
    int gate_open, gate_entered;
} tracker;

typedef struct {
    batch_job job;
    tracker *t;
    int calls;              /* under t->mu */
    int pattern;            /* which input */
    int gate;               /* the callback blocks until the gate opens */
} fake;

static float ref_probs[NPATTERNS][NET_CLASSES];
static char model_version[32];

static void tracker_init(tracker *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
}

static void tracker_destroy(tracker *t)
{
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
}

static void on_done(workq_job *job, void *user)
{
    fake *f = user;
    tracker *t = f->t;
    (void)job;
    pthread_mutex_lock(&t->mu);
    if (f->gate) {
        t->gate_entered = 1;
        pthread_cond_broadcast(&t->cv);
        while (!t->gate_open)
            pthread_cond_wait(&t->cv, &t->mu);
    }
    f->calls++;
    t->done++;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void input_of(int pattern, float *x)
{
    for (int i = 0; i < NET_IN_PIXELS; i++)
        x[i] = (float)((i * (pattern + 3) + pattern * 7) % 17) / 16.0f;
}

static void fake_init(fake *f, tracker *t, int pattern)
{
    memset(f, 0, sizeof *f);
    f->t = t;
    f->pattern = pattern % NPATTERNS;
    input_of(f->pattern, f->job.input);
    for (int c = 0; c < NET_CLASSES; c++)
        f->job.probs[c] = -1;
    f->job.q.status = SENTINEL_STATUS;
    f->job.q.done = on_done;
    f->job.q.user = f;
}

/* Waits until ready(t, arg) holds (checked under t->mu), at most GUARD_SEC:
 * 0, or -1 when the guard expired. */
typedef int (*ready_fn)(const tracker *t, const void *arg);

static int wait_for(tracker *t, ready_fn ready, const void *arg)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += GUARD_SEC;
    int rc = 0;
    pthread_mutex_lock(&t->mu);
    while (!ready(t, arg) && rc == 0)
        if (pthread_cond_timedwait(&t->cv, &t->mu, &until) == ETIMEDOUT && !ready(t, arg))
            rc = -1;
    pthread_mutex_unlock(&t->mu);
    return rc;
}

static int ready_done(const tracker *t, const void *n) { return t->done >= *(const int *)n; }
static int ready_gate(const tracker *t, const void *arg) { (void)arg; return t->gate_entered; }
static int ready_called(const tracker *t, const void *f) { (void)t; return ((const fake *)f)->calls > 0; }

static int done_count(tracker *t)
{
    pthread_mutex_lock(&t->mu);
    int n = t->done;
    pthread_mutex_unlock(&t->mu);
    return n;
}

static int wait_done(tracker *t, int n) { return wait_for(t, ready_done, &n); }
static int wait_gate_entered(tracker *t) { return wait_for(t, ready_gate, NULL); }

/* 1 if every inference worker thread sleeps ('S' in /proc: on the
 * batcher's condition variable, or in a test's gate), 0 if one does not. */
static int workers_asleep(void)
{
    DIR *d = opendir("/proc/self/task");
    char path[300], buf[512];
    struct dirent *e;
    int asleep = d != NULL;
    while (asleep && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        int ours = f && fgets(buf, sizeof buf, f) && strcmp(buf, "mnistd-infer\n") == 0;
        if (f)
            fclose(f);
        if (!ours)
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        f = fopen(path, "r");
        const char *paren = f && fgets(buf, sizeof buf, f) ? strrchr(buf, ')') : NULL;
        asleep = paren && paren[1] == ' ' && paren[2] == 'S';
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return asleep;
}

/* After a submit woke a worker: returns once every worker sleeps again,
 * i.e. it took the jobs and answered them, or decided to wait for more
 * (0), or -1 after GUARD_SEC. This is what lets a test see that a worker waits, not
 * only that it eventually answers. */
static int wait_workers_asleep(void)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        if (workers_asleep())
            return 0;
        sched_yield();
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (now.tv_sec - t0.tv_sec < GUARD_SEC);
    return -1;
}

static void open_gate(tracker *t)
{
    pthread_mutex_lock(&t->mu);
    t->gate_open = 1;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static int submit_one(batcher *b, fake *f, uint64_t deadline)
{
    return batcher_submit(b, &f->job, sizeof(fake), 1, deadline);
}

static int submit_n(batcher *b, fake *f, int n, uint64_t deadline)
{
    return batcher_submit(b, &f->job, sizeof(fake), n, deadline);
}

/* Each of the n fakes was called `calls` times; with WQ_OK, its
 * probabilities are the reference ones and its batch within 1..max_batch. */
static int check_fakes(const fake *f, int n, int calls, workq_status st, int max_batch)
{
    int bad = 0;
    for (int i = 0; i < n && bad < 5; i++) {
        const batch_job *j = &f[i].job;
        int ok = f[i].calls == calls && (calls == 0 ? j->q.status == SENTINEL_STATUS : j->q.status == st);
        if (ok && calls && st == WQ_OK) {
            ok = j->batch_size >= 1 && j->batch_size <= max_batch &&
                 strcmp(j->model_version, model_version) == 0;
            for (int c = 0; c < NET_CLASSES; c++)
                ok = ok && fabsf(j->probs[c] - ref_probs[f[i].pattern][c]) <= 1e-5f;
        } else if (ok && calls) {
            ok = j->probs[0] == -1;  /* not written */
        }
        if (!ok) {
            printf("  job %d: %d calls (want %d), status %d (want %d), batch %d, p0 %g (ref %g)\n",
                   i, f[i].calls, calls, (int)j->q.status, calls ? (int)st : (int)SENTINEL_STATUS,
                   j->batch_size, j->probs[0], ref_probs[f[i].pattern][0]);
            bad++;
        }
    }
    return bad ? -1 : 0;
}

/* ---- several submitters at once ---------------------------------------- */

#define WINDOW 16  /* a submitter's jobs in flight at most */

typedef struct {
    batcher *b;
    tracker *t;
    fake *f;
    int n, id;
    int refused;
    pthread_barrier_t *start;
} submitter;

static void *submitter_main(void *v)
{
    submitter *s = v;
    pthread_barrier_wait(s->start);
    for (int i = 0; i < s->n;) {
        int k = 1 + (i + s->id) % 5;
        if (k > s->n - i)
            k = s->n - i;
        /* Keep at most WINDOW jobs in flight: wait for job i+k-WINDOW. */
        if (i + k > WINDOW) {
            if (wait_for(s->t, ready_called, &s->f[i + k - 1 - WINDOW]) != 0) {
                s->refused = -1;
                return NULL;
            }
        }
        if (submit_n(s->b, s->f + i, k, 0) != BATCHER_OK)
            s->refused++;
        i += k;
    }
    return NULL;
}

static void *stopper_main(void *b)
{
    batcher_stop(b);
    return NULL;
}

int main(void)
{
    char err[256];
    const int per_submitter = TEST_UNDER_TSAN ? 60 : 500;
    printf("  %d jobs per submitter%s\n", per_submitter, TEST_UNDER_TSAN ? " (ThreadSanitizer build)" : "");

    /* A real model with random weights, and the reference answer for each
     * input pattern from a single-image forward pass. */
    float *params = malloc(sizeof(float) * NET_NUM_PARAMS);
    net_init(params, 7);
    modelstore ms, empty;
    modelstore_init(&ms);
    modelstore_init(&empty);
    served_model *m = model_from_params(params, NULL, "test");
    snprintf(model_version, sizeof model_version, "%s", m->version);
    modelstore_publish(&ms, m);
    net_ctx *ref = net_ctx_create(1, 1);
    for (int p = 0; p < NPATTERNS; p++) {
        float x[NET_IN_PIXELS];
        input_of(p, x);
        net_forward(ref, params, x, 1, ref_probs[p], NULL);
    }
    net_ctx_free(ref);
    free(params);

    TEST_BEGIN("batcher_create_rejects_bad_sizes");
    CHECK(batcher_create(&ms, 0, 8, 0, 8, err, sizeof err) == NULL && strstr(err, "invalid"), "0 workers");
    CHECK(batcher_create(&ms, 1, 0, 0, 8, err, sizeof err) == NULL, "max_batch 0");
    CHECK(batcher_create(&ms, 1, 8, -1, 8, err, sizeof err) == NULL, "timeout -1");
    CHECK(batcher_create(&ms, 1, 8, 0, 0, err, sizeof err) == NULL, "max_queue 0");
    TEST_END();

    TEST_BEGIN("batcher_every_callback_once");
    {
        enum { NSUB = 4 };
        tracker t;
        tracker_init(&t);
        batcher *b = batcher_create(&ms, 2, 8, 200, 4 * WINDOW, err, sizeof err);
        CHECK(b != NULL, "create: %s", err);
        batcher_connections(b, NSUB);
        fake *f = calloc((size_t)NSUB * per_submitter, sizeof *f);
        submitter s[NSUB];
        pthread_t th[NSUB];
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, NSUB);
        for (int i = 0; i < NSUB * per_submitter; i++)
            fake_init(&f[i], &t, i);
        for (int i = 0; i < NSUB; i++) {
            s[i] = (submitter){.b = b, .t = &t, .f = f + i * per_submitter, .n = per_submitter,
                               .id = i, .start = &start};
            pthread_create(&th[i], NULL, submitter_main, &s[i]);
        }
        for (int i = 0; i < NSUB; i++) {
            pthread_join(th[i], NULL);
            CHECK(s[i].refused == 0, "submitter %d: %d submits refused", i, s[i].refused);
        }
        CHECK(wait_done(&t, NSUB * per_submitter) == 0, "%d of %d answered", t.done, NSUB * per_submitter);
        batcher_connections(b, -NSUB);
        batcher_free(b);
        CHECK(t.done == NSUB * per_submitter, "callbacks %d", t.done);
        CHECK(check_fakes(f, NSUB * per_submitter, 1, WQ_OK, 8) == 0, "jobs answered wrongly");
        pthread_barrier_destroy(&start);
        free(f);
        tracker_destroy(&t);
    }
    TEST_END();

    TEST_BEGIN("batcher_deadline_passed");
    {
        tracker t;
        tracker_init(&t);
        /* A long batch timeout and more connections than jobs: the worker
         * would wait for company, but never past the oldest job's deadline. */
        batcher *b = batcher_create(&ms, 1, 8, LONG_TIMEOUT_US, 16, err, sizeof err);
        batcher_connections(b, 4);
        fake late[3], in_time[2];
        for (int i = 0; i < 3; i++)
            fake_init(&late[i], &t, i);
        for (int i = 0; i < 2; i++)
            fake_init(&in_time[i], &t, i);
        CHECK(submit_n(b, late, 3, 1) == BATCHER_OK, "submit");  /* a deadline long past */
        CHECK(wait_done(&t, 3) == 0, "a job past its deadline was not answered at once");
        CHECK(check_fakes(late, 3, 1, WQ_DEADLINE, 8) == 0, "late jobs");
        batcher_connections(b, -4);
        CHECK(submit_n(b, in_time, 2, clock_mono_ns() + 3600ull * 1000000000ull) == BATCHER_OK, "submit");
        CHECK(wait_done(&t, 5) == 0, "jobs within their deadline not answered");
        CHECK(check_fakes(in_time, 2, 1, WQ_OK, 8) == 0, "jobs in time");
        batcher_free(b);
        tracker_destroy(&t);
    }
    TEST_END();

    TEST_BEGIN("batcher_no_model");
    {
        tracker t;
        tracker_init(&t);
        batcher *b = batcher_create(&empty, 1, 8, 0, 16, err, sizeof err);
        fake f[2];
        fake_init(&f[0], &t, 0);
        fake_init(&f[1], &t, 1);
        CHECK(submit_n(b, f, 2, 0) == BATCHER_OK, "submit");
        CHECK(wait_done(&t, 2) == 0, "not answered");
        CHECK(check_fakes(f, 2, 1, WQ_NO_MODEL, 8) == 0, "status");
        batcher_free(b);
        tracker_destroy(&t);
    }
    TEST_END();

    TEST_BEGIN("batcher_full_is_all_or_nothing");
    {
        tracker t;
        tracker_init(&t);
        batcher *b = batcher_create(&ms, 1, 4, 0, 8, err, sizeof err);
        fake gate, queued[8], refused[5];
        fake_init(&gate, &t, 0);
        gate.gate = 1;
        for (int i = 0; i < 8; i++)
            fake_init(&queued[i], &t, i);
        for (int i = 0; i < 5; i++)
            fake_init(&refused[i], &t, i);
        /* The only worker holds the gate job; nothing leaves the queue. */
        CHECK(submit_one(b, &gate, 0) == BATCHER_OK && wait_gate_entered(&t) == 0, "gate");
        CHECK(batcher_queue_depth(b) == 0, "depth %d", batcher_queue_depth(b));
        CHECK(submit_n(b, queued, 5, 0) == BATCHER_OK && batcher_queue_depth(b) == 5, "5 of 8");
        CHECK(submit_n(b, refused, 4, 0) == BATCHER_FULL, "4 more with 3 free slots");
        CHECK(batcher_queue_depth(b) == 5, "a refused submit queued some jobs: depth %d",
              batcher_queue_depth(b));
        CHECK(submit_n(b, queued + 5, 3, 0) == BATCHER_OK && batcher_queue_depth(b) == 8, "fill");
        CHECK(submit_one(b, &refused[4], 0) == BATCHER_FULL, "1 more when full");
        open_gate(&t);
        CHECK(wait_done(&t, 9) == 0, "%d of 9 answered", t.done);
        batcher_free(b);  /* no callback may come after this */
        CHECK(check_fakes(queued, 8, 1, WQ_OK, 4) == 0, "queued jobs");
        CHECK(check_fakes(refused, 5, 0, WQ_OK, 4) == 0, "refused jobs were touched or called");
        CHECK(gate.calls == 1 && t.done == 9, "callbacks %d", t.done);
        tracker_destroy(&t);
    }
    TEST_END();

    TEST_BEGIN("batcher_stop_drains_queue");
    {
        tracker t;
        tracker_init(&t);
        batcher *b = batcher_create(&ms, 1, 2, 0, 16, err, sizeof err);
        fake gate, queued[7], after;
        fake_init(&gate, &t, 0);
        gate.gate = 1;
        for (int i = 0; i < 7; i++)
            fake_init(&queued[i], &t, i);
        fake_init(&after, &t, 0);
        CHECK(submit_one(b, &gate, 0) == BATCHER_OK && wait_gate_entered(&t) == 0, "gate");
        CHECK(submit_n(b, queued, 7, 0) == BATCHER_OK, "queue");
        /* Stop from another thread (it joins the workers, so it blocks
         * while the gate is closed); an empty submit tells when it began. */
        pthread_t stopper;
        pthread_create(&stopper, NULL, stopper_main, b);
        while (batcher_submit(b, NULL, 0, 0, 0) != BATCHER_STOPPED)
            sched_yield();
        CHECK(submit_one(b, &after, 0) == BATCHER_STOPPED, "a job accepted after stop began");
        CHECK(batcher_queue_depth(b) == 7, "stop dropped queued jobs: depth %d", batcher_queue_depth(b));
        open_gate(&t);
        pthread_join(stopper, NULL);
        /* batcher_stop returned: every queued job has been answered. */
        int done = done_count(&t);
        CHECK(done == 8, "%d of 8 answered when batcher_stop returned", done);
        CHECK(check_fakes(queued, 7, 1, WQ_OK, 2) == 0, "drained jobs");
        CHECK(batcher_queue_depth(b) == 0, "depth after stop");
        batcher_stop(b);  /* idempotent */
        CHECK(submit_one(b, &after, 0) == BATCHER_STOPPED, "submit after stop");
        batcher_free(b);
        CHECK(check_fakes(&after, 1, 0, WQ_OK, 2) == 0, "a refused job was touched or called");
        tracker_destroy(&t);
    }
    TEST_END();

    TEST_BEGIN("batcher_fills_to_connections");
    {
        /* One worker, a batch timeout of 2000 s: a batch waits exactly for
         * the open connections (capped at max_batch), never for the timeout. */
        tracker t;
        tracker_init(&t);
        batcher *b = batcher_create(&ms, 1, 4, LONG_TIMEOUT_US, 16, err, sizeof err);
        fake f[13];
        for (int i = 0; i < 13; i++)
            fake_init(&f[i], &t, i);
        /* No connection counted: no waiting. */
        CHECK(submit_one(b, &f[0], 0) == BATCHER_OK && wait_done(&t, 1) == 0, "waited with no connections");
        CHECK(f[0].job.batch_size == 1, "batch %d", f[0].job.batch_size);
        /* A lone client never waits for company. */
        batcher_connections(b, 1);
        CHECK(submit_one(b, &f[1], 0) == BATCHER_OK && wait_done(&t, 2) == 0, "a lone client waited");
        CHECK(f[1].job.batch_size == 1, "batch %d", f[1].job.batch_size);
        /* Three clients, one image each, submitted one by one: the worker
         * waits after the first and the second (it sleeps with the jobs
         * still queued), then runs the three as one batch. */
        batcher_connections(b, 2);
        for (int i = 2; i < 5; i++) {
            CHECK(submit_one(b, &f[i], 0) == BATCHER_OK, "submit %d", i);
            if (i < 4)
                CHECK(wait_workers_asleep() == 0 && batcher_queue_depth(b) == i - 1 && done_count(&t) == 2,
                      "%d of 3 jobs queued: the worker took them (depth %d)", i - 1,
                      batcher_queue_depth(b));
        }
        CHECK(wait_done(&t, 5) == 0, "3 jobs of 3 connections not answered");
        for (int i = 2; i < 5; i++)
            CHECK(f[i].job.batch_size == 3, "job %d in a batch of %d, want 3", i, f[i].job.batch_size);
        /* Twenty clients, eight images: two full batches of max_batch. */
        batcher_connections(b, 17);
        for (int i = 5; i < 13; i++) {
            CHECK(submit_one(b, &f[i], 0) == BATCHER_OK, "submit %d", i);
            if (i < 8)
                CHECK(wait_workers_asleep() == 0 && batcher_queue_depth(b) == i - 4,
                      "%d of 4 jobs queued: the worker took them (depth %d)", i - 4,
                      batcher_queue_depth(b));
        }
        CHECK(wait_done(&t, 13) == 0, "8 jobs of 20 connections not answered");
        for (int i = 5; i < 13; i++)
            CHECK(f[i].job.batch_size == 4, "job %d in a batch of %d, want 4", i, f[i].job.batch_size);
        CHECK(check_fakes(f, 13, 1, WQ_OK, 4) == 0, "answers");
        batcher_connections(b, -20);
        batcher_free(b);
        tracker_destroy(&t);
    }
    TEST_END();

    TEST_BEGIN("batcher_closed_connection_wakes_filling_worker");
    {
        /* Two connections, one image: the worker waits (batch timeout
         * 2000 s) for the other client. That client's connection closes:
         * the worker has no company left to wait for and answers at once,
         * not when the timeout ends (the guard fails long before). */
        tracker t;
        tracker_init(&t);
        batcher *b = batcher_create(&ms, 1, 8, LONG_TIMEOUT_US, 16, err, sizeof err);
        fake f[2];
        fake_init(&f[0], &t, 0);
        fake_init(&f[1], &t, 1);
        /* a first job, with no connection counted: the worker has started
         * (and has its name) when it is answered */
        CHECK(submit_one(b, &f[0], 0) == BATCHER_OK && wait_done(&t, 1) == 0, "first job");
        batcher_connections(b, 2);
        CHECK(submit_one(b, &f[1], 0) == BATCHER_OK, "submit");
        CHECK(wait_workers_asleep() == 0 && batcher_queue_depth(b) == 1 && done_count(&t) == 1,
              "the worker did not wait for the second connection (depth %d)", batcher_queue_depth(b));
        batcher_connections(b, -1);
        CHECK(wait_done(&t, 2) == 0, "a closed connection left the worker waiting for it");
        CHECK(check_fakes(f, 2, 1, WQ_OK, 8) == 0 && f[1].job.batch_size == 1, "answers");
        batcher_connections(b, -1);
        batcher_free(b);
        tracker_destroy(&t);
    }
    TEST_END();

    TEST_BEGIN("batcher_fill_shares_among_workers");
    {
        /* Two workers. Four connections and none in a batch: each worker
         * waits for its share, two, so four images one by one make two
         * batches of two (not one of four that idles the other core). */
        tracker t;
        tracker_init(&t);
        batcher *b = batcher_create(&ms, 2, 8, LONG_TIMEOUT_US, 16, err, sizeof err);
        fake f[4], gate, g[2];
        for (int i = 0; i < 4; i++)
            fake_init(&f[i], &t, i);
        batcher_connections(b, 4);
        for (int i = 0; i < 4; i++) {
            CHECK(submit_one(b, &f[i], 0) == BATCHER_OK, "submit %d", i);
            if (i % 2 == 0)
                CHECK(wait_workers_asleep() == 0 && batcher_queue_depth(b) == 1,
                      "job %d: the worker did not wait for its share (depth %d)", i,
                      batcher_queue_depth(b));
            else
                CHECK(wait_done(&t, i + 1) == 0, "a share of two not answered");
        }
        for (int i = 0; i < 4; i++)
            CHECK(f[i].job.batch_size == 2, "job %d in a batch of %d, want 2", i, f[i].job.batch_size);
        /* A client whose image is in a running batch (held at the gate)
         * sends nothing more: of three connections, the free worker waits
         * for two images, not three. */
        batcher_connections(b, -3);
        fake_init(&gate, &t, 0);
        gate.gate = 1;
        CHECK(submit_one(b, &gate, 0) == BATCHER_OK && wait_gate_entered(&t) == 0, "gate");
        batcher_connections(b, 2);
        fake_init(&g[0], &t, 1);
        fake_init(&g[1], &t, 2);
        CHECK(submit_one(b, &g[0], 0) == BATCHER_OK, "submit");
        CHECK(wait_workers_asleep() == 0 && batcher_queue_depth(b) == 1, "did not wait for the second");
        CHECK(submit_one(b, &g[1], 0) == BATCHER_OK, "submit");
        CHECK(wait_done(&t, 6) == 0, "the running batch's client was waited for");
        CHECK(g[0].job.batch_size == 2 && g[1].job.batch_size == 2, "batches %d and %d, want 2",
              g[0].job.batch_size, g[1].job.batch_size);
        open_gate(&t);
        CHECK(wait_done(&t, 7) == 0, "gate job");
        CHECK(check_fakes(f, 4, 1, WQ_OK, 8) == 0 && check_fakes(g, 2, 1, WQ_OK, 8) == 0, "answers");
        batcher_connections(b, -3);
        batcher_free(b);
        tracker_destroy(&t);
    }
    TEST_END();

    modelstore_destroy(&ms);
    modelstore_destroy(&empty);
    TEST_EXIT();
}
