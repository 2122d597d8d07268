/* Unit tests of the daemon settings (server/config.c): defaults, flags,
 * environment, precedence and validation. */
#include <stdlib.h>
#include <string.h>

#include "server/config.h"
#include "tests/unit/test.h"

static int run(mnistd_config *c, char *err, size_t errlen, int argc, char **argv)
{
    FILE *devnull = fopen("/dev/null", "w");
    int r = config_parse(c, argc, argv, devnull, err, errlen);
    if (devnull)
        fclose(devnull);
    return r;
}

#define ARGV(...) ((char *[]){"serve", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"serve", __VA_ARGS__}) / sizeof(char *)))

int main(void)
{
    mnistd_config c;
    char err[256];
    /* Start from a clean environment for every variable used here. */
    unsetenv("MNISTD_PORT");
    unsetenv("MNISTD_MAX_BATCH");
    unsetenv("MNISTD_BIND");
    unsetenv("MNISTD_LOG_FORMAT");

    TEST_BEGIN("config_defaults");
    {
        char *argv[] = {"serve", NULL};
        CHECK(run(&c, err, sizeof(err), 1, argv) == 0, "%s", err);
        CHECK(c.port == 8080 && strcmp(c.bind, "127.0.0.1") == 0, "port %d bind %s", c.port, c.bind);
        CHECK(c.max_batch == 64 && c.threads == 2 && c.max_body_bytes == 1048576, "defaults");
        CHECK(strcmp(c.model, "models/mnist-cnn.safetensors") == 0, "model %s", c.model);
    }
    TEST_END();

    TEST_BEGIN("config_flags_both_spellings");
    CHECK(run(&c, err, sizeof(err), ARGC("--port", "0", "--max-batch=8", "--bind", "::1",
                                          "--log-format=text", "--model", "/tmp/m"),
              ARGV("--port", "0", "--max-batch=8", "--bind", "::1", "--log-format=text",
                   "--model", "/tmp/m")) == 0, "%s", err);
    CHECK(c.port == 0 && c.max_batch == 8 && strcmp(c.bind, "::1") == 0, "values");
    CHECK(c.log_format == LOG_FORMAT_TEXT && strcmp(c.model, "/tmp/m") == 0, "values 2");
    TEST_END();

    TEST_BEGIN("config_env_and_flag_precedence");
    setenv("MNISTD_PORT", "9001", 1);
    setenv("MNISTD_MAX_BATCH", "16", 1);
    CHECK(run(&c, err, sizeof(err), ARGC("--max-batch", "4"), ARGV("--max-batch", "4")) == 0, "%s", err);
    CHECK(c.port == 9001, "env ignored: port %d", c.port);
    CHECK(c.max_batch == 4, "flag did not win: %d", c.max_batch);
    unsetenv("MNISTD_PORT");
    unsetenv("MNISTD_MAX_BATCH");
    TEST_END();

    TEST_BEGIN("config_rejects_bad_values");
    {
        static const char *bad[][2] = {
            {"--port", "65536"}, {"--port", "-1"}, {"--port", "12x"}, {"--port", ""},
            {"--port", " 80"}, {"--max-batch", "0"}, {"--max-batch", "1025"},
            {"--threads", "0"}, {"--bind", "localhost"}, {"--bind", "1.2.3"},
            {"--log-format", "xml"}, {"--max-body-bytes", "99999999999999999999999"},
            {"--request-timeout-ms", "0"}, {"--model", ""},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            char *argv[] = {"serve", (char *)bad[i][0], (char *)bad[i][1], NULL};
            err[0] = '\0';
            CHECK(run(&c, err, sizeof(err), 3, argv) == -1, "%s %s accepted", bad[i][0], bad[i][1]);
            CHECK(err[0] != '\0', "%s %s: no message", bad[i][0], bad[i][1]);
        }
        char *argv1[] = {"serve", "--nope", "1", NULL};
        CHECK(run(&c, err, sizeof(err), 3, argv1) == -1 && strstr(err, "--nope"), "unknown flag: %s", err);
        char *argv2[] = {"serve", "--port", NULL};
        CHECK(run(&c, err, sizeof(err), 2, argv2) == -1 && strstr(err, "needs a value"), "missing: %s", err);
        char *argv3[] = {"serve", "stray", NULL};
        CHECK(run(&c, err, sizeof(err), 2, argv3) == -1, "stray argument accepted");
        char *argv4[] = {"serve", "--max-images", "100", "--max-queue", "10", NULL};
        CHECK(run(&c, err, sizeof(err), 5, argv4) == -1, "max-images > max-queue accepted");
    }
    TEST_END();

    TEST_BEGIN("config_env_error_names_variable");
    setenv("MNISTD_PORT", "http", 1);
    {
        char *argv[] = {"serve", NULL};
        CHECK(run(&c, err, sizeof(err), 1, argv) == -1 && strstr(err, "MNISTD_PORT"), "err: %s", err);
        /* a valid flag does not hide a bad variable: each value is checked */
    }
    unsetenv("MNISTD_PORT");
    TEST_END();

    TEST_BEGIN("config_tls_pairs");
    {
        unsetenv("MNISTD_TLS_KEY");
        setenv("MNISTD_TLS_CERT", "/etc/mnistd/tls.crt", 1);
        char *argv[] = {"serve", NULL};
        CHECK(run(&c, err, sizeof(err), 1, argv) == -1 && strstr(err, "give both"), "cert alone: %s", err);
        CHECK(run(&c, err, sizeof(err), ARGC("--tls-key", "k.pem"), ARGV("--tls-key", "k.pem")) == 0 &&
                  strcmp(c.tls_cert, "/etc/mnistd/tls.crt") == 0 && strcmp(c.tls_key, "k.pem") == 0,
              "cert from the environment, key from a flag: %s", err);
        unsetenv("MNISTD_TLS_CERT");
        CHECK(run(&c, err, sizeof(err), ARGC("--tls-client-ca", "ca.pem"), ARGV("--tls-client-ca", "ca.pem")) == -1 &&
                  strstr(err, "tls-client-ca needs"),
              "client CA without a certificate: %s", err);
        CHECK(run(&c, err, sizeof(err), 1, argv) == 0 && c.tls_cert[0] == '\0', "no TLS by default: %s", err);
    }
    TEST_END();

    TEST_BEGIN("config_help_lists_every_flag");
    {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        char *argv[] = {"serve", "--help", NULL};
        int r = config_parse(&c, 2, argv, f, err, sizeof(err));
        fclose(f);
        CHECK(r == 1, "--help returned %d", r);
        static const char *want[] = {"--port", "MNISTD_PORT", "--bind", "MNISTD_BIND", "--model",
                                     "MNISTD_MODEL", "--data", "MNISTD_DATA", "--threads",
                                     "--max-batch", "MNISTD_MAX_BATCH", "--batch-timeout-us",
                                     "MNISTD_BATCH_TIMEOUT_US", "--max-queue", "MNISTD_MAX_QUEUE",
                                     "--max-body-bytes", "MNISTD_MAX_BODY_BYTES", "--log-format",
                                     "--request-timeout-ms", "--max-connections", "default 1048576"};
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
            CHECK(buf && strstr(buf, want[i]), "help lacks %s", want[i]);
        free(buf);
    }
    TEST_END();

    TEST_BEGIN("config_json");
    {
        char *argv[] = {"serve", "--model", "a\"b", NULL};
        CHECK(run(&c, err, sizeof(err), 3, argv) == 0, "%s", err);
        char js[4096];
        config_to_json(&c, js, sizeof(js));
        CHECK(strstr(js, "\"model\":\"a\\\"b\"") != NULL, "json %s", js);
        CHECK(strstr(js, "\"max-batch\":64") != NULL, "json %s", js);
    }
    TEST_END();

    TEST_EXIT();
}
