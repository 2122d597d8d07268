/* Unit tests of API access control: the bearer-token check (api/auth.c) and
 * how the token is loaded and kept out of printed settings
 * (server/config.c). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/auth.h"
#include "server/config.h"
#include "tests/unit/test.h"

static const char TOKEN[] = "s3cr3t-t0ken-0123456789abcdef";

static int parse(mnistd_config *c, char *err, size_t errlen, const char *token_file)
{
    FILE *devnull = fopen("/dev/null", "w");
    char *argv[] = {"serve", "--token-file", (char *)token_file, NULL};
    int r = config_parse(c, token_file ? 3 : 1, argv, devnull, err, errlen);
    if (devnull)
        fclose(devnull);
    return r;
}

/* Writes text to path with mode; returns 0. */
static int put(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    return chmod(path, mode);
}

int main(void)
{
    mnistd_config c;
    char err[1200];
    unsetenv("MNISTD_TOKEN");
    unsetenv("MNISTD_TOKEN_FILE");
    size_t tl = strlen(TOKEN);

    TEST_BEGIN("auth_header_accepts_the_token");
    CHECK(api_auth_check_header("Bearer s3cr3t-t0ken-0123456789abcdef", TOKEN, tl) == 1, "plain");
    CHECK(api_auth_check_header("bearer s3cr3t-t0ken-0123456789abcdef", TOKEN, tl) == 1, "lower-case scheme");
    CHECK(api_auth_check_header("BEARER \t s3cr3t-t0ken-0123456789abcdef  ", TOKEN, tl) == 1, "spaces");
    TEST_END();

    TEST_BEGIN("auth_header_refuses_others");
    CHECK(api_auth_check_header(NULL, TOKEN, tl) == 0, "no header");
    CHECK(api_auth_check_header("", TOKEN, tl) == 0, "empty");
    CHECK(api_auth_check_header("Bearer", TOKEN, tl) == 0, "scheme only");
    CHECK(api_auth_check_header("Bearer ", TOKEN, tl) == 0, "empty credentials");
    CHECK(api_auth_check_header("Basic s3cr3t-t0ken-0123456789abcdef", TOKEN, tl) == 0, "Basic");
    CHECK(api_auth_check_header("Bearers3cr3t-t0ken-0123456789abcdef", TOKEN, tl) == 0, "no space");
    CHECK(api_auth_check_header("s3cr3t-t0ken-0123456789abcdef", TOKEN, tl) == 0, "no scheme");
    CHECK(api_auth_check_header("Bearer s3cr3t-t0ken-0123456789abcdeF", TOKEN, tl) == 0, "last byte");
    CHECK(api_auth_check_header("Bearer S3cr3t-t0ken-0123456789abcdef", TOKEN, tl) == 0, "first byte");
    CHECK(api_auth_check_header("Bearer s3cr3t-t0ken-0123456789abcde", TOKEN, tl) == 0, "prefix");
    CHECK(api_auth_check_header("Bearer s3cr3t-t0ken-0123456789abcdefs3cr3t-t0ken-0123456789abcdef",
                                TOKEN, tl) == 0, "repeated (the cyclic read must not match)");
    CHECK(api_auth_check_header("Bearer s3cr3t-t0ken-0123456789abcdefx", TOKEN, tl) == 0, "longer");
    CHECK(api_auth_check_header("Bearer s3cr3t-t0ken 0123456789abcdef", TOKEN, tl) == 0, "space inside");
    TEST_END();

    TEST_BEGIN("auth_open_without_a_token");
    CHECK(api_auth_check_header(NULL, "", 0) == 1, "no token configured: open");
    CHECK(parse(&c, err, sizeof(err), NULL) == 0 && c.token_len == 0, "%s", err);
    TEST_END();

    char dir[] = "/tmp/mnistd-auth.XXXXXX";
    if (!mkdtemp(dir)) {
        TEST_BEGIN("auth_tmpdir");
        CHECK(0, "mkdtemp failed");
        TEST_END();
        TEST_EXIT();
    }
    char path[256];
    snprintf(path, sizeof(path), "%s/token", dir);

    TEST_BEGIN("auth_token_file_loaded");
    {
        CHECK(put(path, "s3cr3t-t0ken-0123456789abcdef\n", 0600) == 0, "write");
        CHECK(parse(&c, err, sizeof(err), path) == 0, "%s", err);
        CHECK(c.token_len == tl && strcmp(c.token, TOKEN) == 0, "token '%s'", c.token);
        CHECK(c.token_warning[0] == '\0', "warning for mode 600: %s", c.token_warning);
        CHECK(strcmp(c.token_source, path) == 0, "source %s", c.token_source);
        CHECK(put(path, "s3cr3t-t0ken-0123456789abcdef\r\n", 0400) == 0, "write");
        CHECK(parse(&c, err, sizeof(err), path) == 0 && c.token_len == tl, "CRLF: %s", err);
    }
    TEST_END();

    TEST_BEGIN("auth_token_not_printed");
    {
        char js[8192];
        CHECK(put(path, TOKEN, 0600) == 0, "write");
        CHECK(parse(&c, err, sizeof(err), path) == 0, "%s", err);
        config_to_json(&c, js, sizeof(js));
        CHECK(strstr(js, TOKEN) == NULL, "the token is in the settings JSON: %s", js);
        CHECK(strstr(js, "\"token-file\":") != NULL, "the token file's path is missing: %s", js);
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        config_usage(f);
        fclose(f);
        CHECK(buf && strstr(buf, "MNISTD_TOKEN_FILE") && strstr(buf, "MNISTD_TOKEN "), "help lacks the token");
        free(buf);
    }
    TEST_END();

    TEST_BEGIN("auth_token_file_world_readable_warns");
    CHECK(put(path, TOKEN, 0644) == 0, "write");
    CHECK(parse(&c, err, sizeof(err), path) == 0 && c.token_len == tl, "%s", err);
    CHECK(strstr(c.token_warning, "644") != NULL, "warning: '%s'", c.token_warning);
    TEST_END();

    TEST_BEGIN("auth_token_file_refused");
    {
        struct { const char *text; mode_t mode; const char *why; } bad[] = {
            {"", 0600, "empty"},
            {"\n\n", 0600, "empty"},
            {"short-token\n", 0600, "characters"},
            {"s3cr3t-t0ken 0123456789abcdef\n", 0600, "visible ASCII"},
            {"s3cr3t-t0ken-0123456789abcdef\nsecond-line-0123456789\n", 0600, "visible ASCII"},
            {"s3cr3t-t0ken-0123456789abcdef\n", 0620, "writable"},
            {"s3cr3t-t0ken-0123456789abcdef\n", 0602, "writable"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            CHECK(put(path, bad[i].text, bad[i].mode) == 0, "write");
            err[0] = '\0';
            int r = parse(&c, err, sizeof(err), path);
            CHECK(r == -1 && strstr(err, bad[i].why), "case %zu: r=%d err '%s'", i, r, err);
            CHECK(strstr(err, "s3cr3t") == NULL, "case %zu: the error shows the token: %s", i, err);
        }
        char *long_tok = malloc(CONFIG_TOKEN_MAX + 2);
        memset(long_tok, 'a', CONFIG_TOKEN_MAX + 1);
        long_tok[CONFIG_TOKEN_MAX + 1] = '\0';
        CHECK(put(path, long_tok, 0600) == 0, "write");
        CHECK(parse(&c, err, sizeof(err), path) == -1 && strstr(err, "256"), "long: %s", err);
        long_tok[CONFIG_TOKEN_MAX] = '\0';
        CHECK(put(path, long_tok, 0600) == 0, "write");
        CHECK(parse(&c, err, sizeof(err), path) == 0 && c.token_len == CONFIG_TOKEN_MAX, "max: %s", err);
        free(long_tok);
        char missing[300];
        snprintf(missing, sizeof(missing), "%s/absent", dir);
        CHECK(parse(&c, err, sizeof(err), missing) == -1 && strstr(err, "cannot open"), "absent: %s", err);
        CHECK(parse(&c, err, sizeof(err), dir) == -1 && strstr(err, "regular file"), "directory: %s", err);
    }
    TEST_END();

    TEST_BEGIN("auth_token_from_environment");
    {
        setenv("MNISTD_TOKEN", "env-token-0123456789abcdef", 1);
        CHECK(parse(&c, err, sizeof(err), NULL) == 0, "%s", err);
        CHECK(strcmp(c.token, "env-token-0123456789abcdef") == 0 && strcmp(c.token_source, "MNISTD_TOKEN") == 0,
              "token '%s' from %s", c.token, c.token_source);
        CHECK(put(path, TOKEN, 0600) == 0, "write");
        CHECK(parse(&c, err, sizeof(err), path) == 0 && strcmp(c.token, TOKEN) == 0, "the file wins: %s", err);
        setenv("MNISTD_TOKEN", "short", 1);
        CHECK(parse(&c, err, sizeof(err), NULL) == -1 && strstr(err, "MNISTD_TOKEN"), "short env: %s", err);
        setenv("MNISTD_TOKEN_FILE", path, 1);
        unsetenv("MNISTD_TOKEN");
        CHECK(parse(&c, err, sizeof(err), NULL) == 0 && strcmp(c.token, TOKEN) == 0, "MNISTD_TOKEN_FILE: %s", err);
        unsetenv("MNISTD_TOKEN_FILE");
    }
    TEST_END();

    unlink(path);
    rmdir(dir);
    TEST_EXIT();
}
