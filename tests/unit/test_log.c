/* Unit tests of server/log: every line is one valid JSON object whose
 * strings are escaped by the logger (paths with quotes, backslashes and
 * control characters included), typed fields keep their types, an
 * over-long line is cut and stays valid, the text format, and gathered
 * lines (log_set_flush_ms): held until a warning, a flush or the interval,
 * in order. */
#include <cjson/cJSON.h>
#include <time.h>
#include <unistd.h>

#include "server/log.h"
#include "tests/unit/test.h"

/* Runs one logging call with stderr sent to a file; returns what it wrote
 * (static buffer). */
static char captured[65536];
#define CAPTURE(call) do {                                            \
        fflush(stderr);                                               \
        FILE *tf_ = tmpfile();                                        \
        int saved_ = dup(2);                                          \
        dup2(fileno(tf_), 2);                                         \
        call;                                                         \
        fflush(stderr);                                               \
        dup2(saved_, 2);                                              \
        close(saved_);                                                \
        rewind(tf_);                                                  \
        size_t n_ = fread(captured, 1, sizeof(captured) - 1, tf_);    \
        captured[n_] = '\0';                                          \
        fclose(tf_);                                                  \
    } while (0)

/* What the file behind fd holds now (static buffer). */
static char seen[65536];
static const char *contents(int fd)
{
    ssize_t n = pread(fd, seen, sizeof(seen) - 1, 0);
    seen[n > 0 ? n : 0] = '\0';
    return seen;
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int main(void)
{
    const char *path = "/tmp/a \"quoted\" dir\\with\tcontrols\x01\n/model.safetensors";

    TEST_BEGIN("log_json_escapes_fields");
    log_set_format(LOG_FORMAT_JSON);
    CAPTURE(log_event(LOG_WARN, "cannot \"load\"", LOG_STR("model", path), LOG_STR("none", NULL)));
    size_t len = strlen(captured);
    CHECK(len > 0 && captured[len - 1] == '\n' && strchr(captured, '\n') == captured + len - 1,
          "not one line: %s", captured);
    cJSON *o = cJSON_Parse(captured);
    CHECK(o != NULL, "not JSON: %s", captured);
    if (o) {
        CHECK(str_of(o, "ts") && strlen(str_of(o, "ts")) == 24, "ts: %s", captured);
        CHECK(str_of(o, "level") && strcmp(str_of(o, "level"), "warn") == 0, "level: %s", captured);
        CHECK(str_of(o, "msg") && strcmp(str_of(o, "msg"), "cannot \"load\"") == 0, "msg: %s", captured);
        CHECK(str_of(o, "model") && strcmp(str_of(o, "model"), path) == 0, "path changed: %s", captured);
        CHECK(str_of(o, "none") && !*str_of(o, "none"), "NULL string: %s", captured);
    }
    cJSON_Delete(o);
    TEST_END();

    TEST_BEGIN("log_typed_fields");
    CAPTURE(log_event(LOG_INFO, "typed", LOG_INT("neg", -42), LOG_UINT("big", 18446744073709551615ull),
                      LOG_BOOL("yes", 7), LOG_BOOL("no", 0), LOG_MILLI("duration_ms", 1234567),
                      LOG_DBL("acc", 0.990912345), LOG_DBL("nan", NAN),
                      LOG_JSON("config", "{\"port\":0,\"bind\":\"::1\"}")));
    CHECK(strstr(captured, "\"neg\":-42,\"big\":18446744073709551615,\"yes\":true,\"no\":false,"
                           "\"duration_ms\":1234.567,\"acc\":0.990912,\"nan\":null,\"config\":{\"port\":0,\"bind\":\"::1\"}}\n") != NULL,
          "fields: %s", captured);
    o = cJSON_Parse(captured);
    CHECK(o != NULL, "not JSON: %s", captured);
    cJSON_Delete(o);
    CAPTURE(log_event(LOG_ERROR, "bare"));
    CHECK(strstr(captured, "\"level\":\"error\",\"msg\":\"bare\"}\n") != NULL, "no fields: %s", captured);
    TEST_END();

    TEST_BEGIN("log_long_line_cut_valid");
    static char big[40000];
    memset(big, 'x', sizeof(big) - 1);
    for (size_t i = 0; i + 3 < sizeof(big) - 1; i += 97)
        memcpy(big + i, "\xc3\xa9\"", 3);  /* 'é' and a quote, so a cut can fall inside either */
    CAPTURE(log_event(LOG_INFO, "long", LOG_STR("a", big), LOG_INT("after", 1), LOG_JSON("j", big)));
    len = strlen(captured);
    CHECK(len > 8000 && len <= 16384 && captured[len - 1] == '\n', "length %zu", len);
    o = cJSON_Parse(captured);
    CHECK(o != NULL, "a cut line is not JSON (ends %s)", captured + (len > 40 ? len - 40 : 0));
    cJSON_Delete(o);
    TEST_END();

    TEST_BEGIN("log_text_format");
    log_set_format(LOG_FORMAT_TEXT);
    CAPTURE(log_event(LOG_INFO, "listening", LOG_INT("port", 8080), LOG_STR("p", "a\"b")));
    CHECK(strstr(captured, "Z info listening \"port\":8080,\"p\":\"a\\\"b\"\n") != NULL, "text: %s", captured);
    CAPTURE(log_event(LOG_INFO, "stopped"));
    CHECK(strstr(captured, "Z info stopped\n") != NULL, "text without fields: %s", captured);
    CAPTURE(log_event_text("GET /healthz 200 0.1ms 16 -", LOG_INFO, "request", LOG_INT("status", 200)));
    CHECK(strstr(captured, "Z GET /healthz 200 0.1ms 16 -\n") != NULL, "own text: %s", captured);
    log_set_format(LOG_FORMAT_JSON);
    TEST_END();

    TEST_BEGIN("log_gathers_lines");
    {
        fflush(stderr);
        FILE *tf = tmpfile();
        int fd = fileno(tf), saved = dup(2);
        dup2(fd, 2);
        log_set_format(LOG_FORMAT_TEXT);
        CHECK(log_set_flush_ms(10000) == 0, "the log thread did not start");
        log_event(LOG_INFO, "first");
        log_event(LOG_INFO, "second");
        CHECK(strstr(contents(fd), "first") == NULL, "an info line was written at once: %s", seen);
        log_event(LOG_WARN, "third");
        contents(fd);
        const char *a = strstr(seen, "first"), *b = strstr(seen, "second"), *c = strstr(seen, "third");
        CHECK(a && b && c && a < b && b < c, "a warning did not write the gathered lines in order: %s", seen);
        log_event(LOG_INFO, "fourth");
        CHECK(strstr(contents(fd), "fourth") == NULL, "held line written: %s", seen);
        log_flush();
        CHECK(strstr(contents(fd), "fourth") != NULL, "log_flush did not write: %s", seen);
        log_event(LOG_INFO, "fifth");
        CHECK(strstr(contents(fd), "fifth") != NULL, "after log_flush lines are not written at once: %s", seen);
        /* the interval: a held line comes out on its own (bounded wait) */
        CHECK(log_set_flush_ms(20) == 0, "the log thread did not restart");
        log_event(LOG_INFO, "sixth");
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        double waited = 0;
        while (!strstr(contents(fd), "sixth") && waited < 10.0) {
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
            clock_gettime(CLOCK_MONOTONIC, &t);
            waited = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) * 1e-9;
        }
        CHECK(strstr(seen, "sixth") != NULL, "a held line was not written within 10 s");
        log_flush();
        log_set_format(LOG_FORMAT_JSON);
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        fclose(tf);
    }
    TEST_END();

    TEST_BEGIN("json_escape_bounds");
    char buf[16];
    size_t n = 0;
    int cut = json_escape(buf, sizeof(buf), &n, "ab\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac");
    CHECK(cut == -1 && n == 14 && buf[n] == '\0', "cut %d n %zu", cut, n);
    n = 0;
    cut = json_escape(buf, sizeof(buf), &n, "abcd\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac");
    CHECK(cut == -1 && n == 13 && buf[n] == '\0', "a sequence split: cut %d n %zu", cut, n);
    n = 0;
    cut = json_escape(buf, sizeof(buf), &n, "\x1f\\");
    CHECK(cut == 0 && strcmp(buf, "\\u001f\\\\") == 0, "escaped %s", buf);
    TEST_END();
    TEST_EXIT();
}
