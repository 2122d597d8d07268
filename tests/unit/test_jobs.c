/* Training jobs without HTTP: a short job succeeds, saves and publishes its
 * model; a second job is refused while one runs; cancellation; validation;
 * a job without data fails with a clear error; the history is bounded. */
#include "tests/unit/test.h"

#include <unistd.h>

#include "model/checkpoint.h"
#include "model/net.h"
#include "server/jobs.h"
#include "server/modelstore.h"

int main(void)
{
    char tmpl[] = "/tmp/mnistd-jobs-XXXXXX", path[256], err[512];
    if (!mkdtemp(tmpl))
        return 1;
    snprintf(path, sizeof path, "%s/model.safetensors", tmpl);
    modelstore ms;
    modelstore_init(&ms);
    train_config cfg;
    train_config_default(&cfg);
    int id = 0;

    TEST_BEGIN("job_without_data_fails_clearly");
    jobs *nj = jobs_create(&ms, path, "", 2, 4);
    CHECK(jobs_submit(nj, &cfg, "api", &id, err, sizeof err) == JOBS_OK, "submit: %s", err);
    jobs_wait(nj, id);
    job_info in;
    CHECK(jobs_get(nj, id, &in) == JOBS_OK && in.status == JOB_FAILED, "status %d", in.status);
    CHECK(strstr(in.error, "no data directory") != NULL, "error: %s", in.error);
    CHECK(access(path, F_OK) != 0, "a failed job wrote a model");
    jobs_destroy(nj);
    TEST_END();

    TEST_BEGIN("job_config_validated");
    jobs *vj = jobs_create(&ms, path, "/nonexistent", 2, 4);
    train_config bad = cfg;
    bad.epochs = 0;
    CHECK(jobs_submit(vj, &bad, "api", &id, err, sizeof err) == JOBS_INVALID && strstr(err, "epochs"), "epochs 0: %s", err);
    bad = cfg;
    bad.batch_size = 5000;
    CHECK(jobs_submit(vj, &bad, "api", &id, err, sizeof err) == JOBS_INVALID && strstr(err, "batch_size"), "batch 5000: %s", err);
    bad = cfg;
    bad.learning_rate = -1;
    CHECK(jobs_submit(vj, &bad, "api", &id, err, sizeof err) == JOBS_INVALID && strstr(err, "learning_rate"), "lr: %s", err);
    bad = cfg;
    bad.validation_split = 1.5f;
    CHECK(jobs_submit(vj, &bad, "api", &id, err, sizeof err) == JOBS_INVALID && strstr(err, "validation_split"), "split: %s", err);
    CHECK(jobs_submit(vj, &cfg, "api", &id, err, sizeof err) == JOBS_OK, "good config refused");
    jobs_wait(vj, id);
    jobs_get(vj, id, &in);
    CHECK(in.status == JOB_FAILED && strstr(in.error, "/nonexistent"), "missing data dir: %s", in.error);
    CHECK(jobs_cancel(vj, id) == JOBS_FINISHED, "cancel of a finished job");
    CHECK(jobs_cancel(vj, 999) == JOBS_NOT_FOUND && jobs_get(vj, 999, &in) == JOBS_NOT_FOUND, "unknown id");
    jobs_destroy(vj);
    TEST_END();

    const char *dir = test_data_dir();
    if (!dir) {
        TEST_SKIP("job_trains_saves_publishes", "MNISTD_DATA not set");
        TEST_SKIP("job_busy_and_cancel", "MNISTD_DATA not set");
        TEST_SKIP("job_history_bounded", "MNISTD_DATA not set");
        goto out;
    }
    jobs *j = jobs_create(&ms, path, dir, 2, 3);
    TEST_BEGIN("job_trains_saves_publishes");
    cfg.epochs = 1;
    cfg.limit = 3000;
    CHECK(jobs_submit(j, &cfg, "api", &id, err, sizeof err) == JOBS_OK, "submit: %s", err);
    int busy_id = 0;
    CHECK(jobs_submit(j, &cfg, "api", &busy_id, err, sizeof err) == JOBS_BUSY && busy_id == id,
          "second job while one runs: busy id %d", busy_id);
    jobs_wait(j, id);
    jobs_get(j, id, &in);
    CHECK(in.status == JOB_SUCCEEDED, "status %s: %s", job_status_name(in.status), in.error);
    CHECK(in.n_history == 1 && in.history[0].val_accuracy > 0.5, "history %d", in.n_history);
    CHECK(in.has_test && in.test_accuracy > 0.8, "test accuracy %.4f", in.test_accuracy);
    CHECK(in.train_samples == 2400 && in.val_samples == 600, "split %d/%d", in.train_samples, in.val_samples);
    served_model *m = modelstore_acquire(&ms);
    CHECK(m && strcmp(m->version, in.model_version) == 0, "published model is not the job's");
    float *p = malloc(4 * NET_NUM_PARAMS);
    CHECK(ckpt_load(path, p, NULL, err, sizeof err) == 0, "saved model: %s", err);
    CHECK(m && memcmp(p, m->params, 4 * NET_NUM_PARAMS) == 0, "saved and served models differ");
    free(p);
    model_release(m);
    printf("  job %d: test accuracy %.4f, model %s\n", id, in.test_accuracy, in.model_version);
    TEST_END();

    TEST_BEGIN("job_busy_and_cancel");
    cfg.epochs = 3;
    cfg.limit = 0;
    CHECK(jobs_submit(j, &cfg, "api", &id, err, sizeof err) == JOBS_OK, "submit: %s", err);
    /* wait until it is really training, then cancel */
    for (;;) {
        jobs_get(j, id, &in);
        if (in.batch > 2 || in.status >= JOB_SUCCEEDED)
            break;
        usleep(1000);
    }
    CHECK(jobs_cancel(j, id) == JOBS_OK, "cancel refused");
    jobs_wait(j, id);
    jobs_get(j, id, &in);
    CHECK(in.status == JOB_CANCELLED, "status %s", job_status_name(in.status));
    CHECK(in.epoch == 1, "cancelled job ran to epoch %d", in.epoch);
    jobs_stats st;
    jobs_get_stats(j, &st);
    CHECK(st.succeeded == 1 && st.cancelled == 1 && st.running_id == 0, "stats %ld/%ld/%d", st.succeeded, st.cancelled, st.running_id);
    TEST_END();

    TEST_BEGIN("job_history_bounded");
    cfg.epochs = 1;
    cfg.limit = 200;
    for (int k = 0; k < 3; k++) {
        CHECK(jobs_submit(j, &cfg, "api", &id, err, sizeof err) == JOBS_OK, "submit: %s", err);
        jobs_wait(j, id);
    }
    job_info list[8];
    int n = jobs_list(j, list, 8);
    CHECK(n == 3 && list[0].id == id && list[2].id == id - 2, "history: %d jobs, newest %d", n, n ? list[0].id : 0);
    TEST_END();
    jobs_destroy(j);
out:
    modelstore_destroy(&ms);
    unlink(path);
    rmdir(tmpl);
    TEST_EXIT();
}
