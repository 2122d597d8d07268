/* The one validator of the training settings (model/train.h): every setting
 * at and just past each end of its range, the integer and float rules, the
 * order in which settings are reported and the messages the API and the
 * command line show. */
#include "tests/unit/test.h"

#include <float.h>

#include "model/train.h"

/* train_field_check(f, v) == want, with the message naming the setting. */
static int field_is(train_field f, double v, int want)
{
    char err[160] = "";
    int rc = train_field_check(f, v, err, sizeof err);
    if ((rc == 0) != want)
        return 0;
    return want || strstr(err, train_field_name(f)) == err;
}

int main(void)
{
    TEST_BEGIN("train_check_defaults_pass");
    train_config c;
    train_config_default(&c);
    train_field bad = TRAIN_FIELD_LIMIT;
    char err[160] = "";
    CHECK(train_config_check(&c, &bad, err, sizeof err) == 0 && bad == TRAIN_FIELD_NONE,
          "defaults refused: %s", err);
    TEST_END();

    TEST_BEGIN("train_check_epochs_bounds");
    CHECK(!field_is(TRAIN_FIELD_EPOCHS, 0, 1) && field_is(TRAIN_FIELD_EPOCHS, 0, 0), "0");
    CHECK(field_is(TRAIN_FIELD_EPOCHS, 1, 1), "1");
    CHECK(field_is(TRAIN_FIELD_EPOCHS, TRAIN_MAX_EPOCHS, 1), "max");
    CHECK(field_is(TRAIN_FIELD_EPOCHS, TRAIN_MAX_EPOCHS + 1, 0), "max+1");
    CHECK(field_is(TRAIN_FIELD_EPOCHS, 1.5, 0), "1.5 is not whole");
    CHECK(field_is(TRAIN_FIELD_EPOCHS, NAN, 0) && field_is(TRAIN_FIELD_EPOCHS, INFINITY, 0), "nan/inf");
    TEST_END();

    TEST_BEGIN("train_check_batch_size_bounds");
    CHECK(field_is(TRAIN_FIELD_BATCH_SIZE, 0, 0) && field_is(TRAIN_FIELD_BATCH_SIZE, 1, 1), "low end");
    CHECK(field_is(TRAIN_FIELD_BATCH_SIZE, TRAIN_MAX_BATCH, 1), "max");
    CHECK(field_is(TRAIN_FIELD_BATCH_SIZE, TRAIN_MAX_BATCH + 1, 0), "max+1");
    TEST_END();

    TEST_BEGIN("train_check_learning_rate_bounds");
    CHECK(field_is(TRAIN_FIELD_LEARNING_RATE, 0, 0), "0 (open end)");
    CHECK(field_is(TRAIN_FIELD_LEARNING_RATE, -1e-3, 0), "negative");
    CHECK(field_is(TRAIN_FIELD_LEARNING_RATE, FLT_MIN, 1), "smallest normal float");
    CHECK(field_is(TRAIN_FIELD_LEARNING_RATE, 1e-50, 0), "1e-50 is 0 as a float");
    CHECK(field_is(TRAIN_FIELD_LEARNING_RATE, TRAIN_MAX_LR, 1), "max (closed end)");
    CHECK(field_is(TRAIN_FIELD_LEARNING_RATE, TRAIN_MAX_LR + 1e-12, 0), "just over max (as a double)");
    CHECK(field_is(TRAIN_FIELD_LEARNING_RATE, NAN, 0), "nan");
    TEST_END();

    TEST_BEGIN("train_check_validation_split_bounds");
    CHECK(field_is(TRAIN_FIELD_VALIDATION_SPLIT, 0, 1), "0 (closed end)");
    CHECK(field_is(TRAIN_FIELD_VALIDATION_SPLIT, -1e-9, 0), "negative");
    CHECK(field_is(TRAIN_FIELD_VALIDATION_SPLIT, 0.99, 1), "0.99");
    CHECK(field_is(TRAIN_FIELD_VALIDATION_SPLIT, TRAIN_MAX_SPLIT, 0), "1 (open end)");
    CHECK(field_is(TRAIN_FIELD_VALIDATION_SPLIT, 0.99999999999, 0), "rounds to 1 as a float");
    TEST_END();

    TEST_BEGIN("train_check_seed_limit_threads_bounds");
    CHECK(field_is(TRAIN_FIELD_SEED, -1, 0) && field_is(TRAIN_FIELD_SEED, 0, 1), "seed low end");
    CHECK(field_is(TRAIN_FIELD_SEED, TRAIN_MAX_SEED, 1) && field_is(TRAIN_FIELD_SEED, TRAIN_MAX_SEED + 1.0, 0),
          "seed high end");
    CHECK(field_is(TRAIN_FIELD_LIMIT, -1, 0) && field_is(TRAIN_FIELD_LIMIT, 0, 1), "limit low end");
    CHECK(field_is(TRAIN_FIELD_LIMIT, TRAIN_MAX_LIMIT, 1) && field_is(TRAIN_FIELD_LIMIT, TRAIN_MAX_LIMIT + 1.0, 0),
          "limit high end");
    CHECK(field_is(TRAIN_FIELD_THREADS, -1, 0) && field_is(TRAIN_FIELD_THREADS, 0, 1), "threads low end");
    CHECK(field_is(TRAIN_FIELD_THREADS, TRAIN_MAX_THREADS, 1) && field_is(TRAIN_FIELD_THREADS, TRAIN_MAX_THREADS + 1, 0),
          "threads high end");
    CHECK(field_is(TRAIN_FIELD_NONE, 0, 0), "TRAIN_FIELD_NONE is no setting");
    TEST_END();

    TEST_BEGIN("train_check_config_names_first_bad_field");
    train_config b = c;
    b.seed = (uint64_t)TRAIN_MAX_SEED + 1;
    b.batch_size = 0;
    CHECK(train_config_check(&b, &bad, err, sizeof err) == -1 && bad == TRAIN_FIELD_BATCH_SIZE,
          "bad %d: %s", (int)bad, err);
    CHECK(strcmp(err, "batch_size must be an integer in 1..1024") == 0, "message: %s", err);
    b = c;
    b.seed = (uint64_t)TRAIN_MAX_SEED + 1;
    CHECK(train_config_check(&b, &bad, err, sizeof err) == -1 && bad == TRAIN_FIELD_SEED, "seed");
    CHECK(strcmp(err, "seed must be an integer in 0..2147483647") == 0, "message: %s", err);
    b = c;
    b.learning_rate = 2.0f;
    CHECK(train_config_check(&b, NULL, err, sizeof err) == -1 &&
          strcmp(err, "learning_rate must be a number in (0, 1]") == 0, "message: %s", err);
    b = c;
    b.validation_split = 1.0f;
    CHECK(train_config_check(&b, &bad, err, sizeof err) == -1 && bad == TRAIN_FIELD_VALIDATION_SPLIT &&
          strcmp(err, "validation_split must be a number in [0, 1)") == 0, "message: %s", err);
    b = c;
    b.epochs = TRAIN_MAX_EPOCHS + 1;
    CHECK(train_config_check(&b, &bad, err, sizeof err) == -1 && bad == TRAIN_FIELD_EPOCHS &&
          strcmp(err, "epochs must be an integer in 1..100") == 0, "message: %s", err);
    b = c;
    b.limit = -1;
    CHECK(train_config_check(&b, &bad, NULL, 0) == -1 && bad == TRAIN_FIELD_LIMIT, "limit, no err buffer");
    b = c;
    b.threads = TRAIN_MAX_THREADS + 1;
    CHECK(train_config_check(&b, &bad, err, sizeof err) == -1 && bad == TRAIN_FIELD_THREADS, "threads");
    TEST_END();

    TEST_BEGIN("train_check_field_names");
    CHECK(strcmp(train_field_name(TRAIN_FIELD_EPOCHS), "epochs") == 0 &&
          strcmp(train_field_name(TRAIN_FIELD_BATCH_SIZE), "batch_size") == 0 &&
          strcmp(train_field_name(TRAIN_FIELD_LEARNING_RATE), "learning_rate") == 0 &&
          strcmp(train_field_name(TRAIN_FIELD_VALIDATION_SPLIT), "validation_split") == 0 &&
          strcmp(train_field_name(TRAIN_FIELD_SEED), "seed") == 0 &&
          strcmp(train_field_name(TRAIN_FIELD_LIMIT), "limit") == 0 &&
          strcmp(train_field_name(TRAIN_FIELD_NONE), "") == 0 &&
          strcmp(train_field_name((train_field)99), "") == 0, "names");
    TEST_END();
    TEST_EXIT();
}
