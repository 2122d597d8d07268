/* Unit tests of the metrics module (server/metrics.c): counting, histogram
 * buckets, exposition format, and promtool's lint of the output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/metrics.h"
#include "tests/unit/test.h"

static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return 1;
    return 0;
}

/* The label values the serving layer registers (here a few of them). */
static const char *const routes[] = {"/predict", "/healthz", "/never", "other"};
enum { R_PREDICT, R_HEALTHZ, R_NEVER, R_OTHER };
static const char *const reasons[] = {"queue_full", "deadline"};

int main(void)
{
    const metrics_labels labels = {routes, 4, reasons, 2};
    metrics_init(&labels);
    metrics_request(R_PREDICT, 200, 0.0003);
    metrics_request(R_PREDICT, 200, 0.002);
    metrics_request(R_PREDICT, 413, 0.00001);
    metrics_request(R_HEALTHZ, 200, 20.0);    /* above every bound */
    metrics_request(R_OTHER, 999, 0.1);       /* invalid status counts as 500 */
    metrics_request(99, 200, 0.1);            /* an unknown route counts as the last */
    metrics_batch(3, 0.001);
    metrics_batch(64, 0.004);
    metrics_queue_wait(0.0005);
    metrics_rejected(0, 0);
    metrics_rejected(0, 0);
    metrics_rejected(1, 0);                   /* an explanation's */
    metrics_rejected(0, 7);                   /* unknown: ignored */

    metrics_live live = {
        .queue_depth = 5, .queue_capacity = 1024, .max_batch = 64, .workers = 2, .ready = 1,
        .model_version = "v\"1\\x", .model_arch = "mnist-cnn-v1", .model_source = "/a\nb",
        .model_params = 93322, .model_accuracy = 0.99, .model_loaded_time = 1.5,
    };
    strbuf sb = {0};
    metrics_render(&sb, &live);
    size_t len = 0;
    char *text = sb_take(&sb, &len);

    TEST_BEGIN("metrics_counters");
    CHECK(text != NULL, "render failed");
    CHECK(metrics_request_count(R_PREDICT, 200) == 2, "predict 200 count");
    CHECK(metrics_request_count(R_OTHER, 500) == 1, "clamped status");
    CHECK(metrics_request_count(R_OTHER, 200) == 1, "unknown route");
    CHECK(metrics_batch_count() == 2 && metrics_image_count() == 67, "batches/images");
    CHECK(text && has_line(text, "mnistd_http_requests_total{route=\"/predict\",code=\"200\"} 2"), "req line");
    CHECK(text && has_line(text, "mnistd_http_requests_total{route=\"/predict\",code=\"413\"} 1"), "413 line");
    CHECK(text && has_line(text, "mnistd_predict_rejected_total{reason=\"queue_full\"} 2"), "rejected");
    CHECK(text && has_line(text, "mnistd_predict_rejected_total{reason=\"deadline\"} 0"), "every reason");
    CHECK(text && !strstr(text, "route=\"/never\""), "a route never requested is rendered");
    CHECK(text && has_line(text, "mnistd_inference_images_total 67"), "images");
    CHECK(text && has_line(text, "mnistd_inference_queue_depth 5"), "depth");
    CHECK(text && has_line(text, "mnistd_model_ready 1"), "ready");
    TEST_END();

    TEST_BEGIN("metrics_histogram_cumulative");
    CHECK(text && has_line(text, "mnistd_http_request_duration_seconds_bucket{route=\"/predict\",le=\"0.0001\"} 1"),
          "first bucket");
    CHECK(text && has_line(text, "mnistd_http_request_duration_seconds_bucket{route=\"/predict\",le=\"0.0005\"} 2"),
          "0.0005 bucket");
    CHECK(text && has_line(text, "mnistd_http_request_duration_seconds_bucket{route=\"/predict\",le=\"+Inf\"} 3"),
          "+Inf");
    CHECK(text && has_line(text, "mnistd_http_request_duration_seconds_count{route=\"/predict\"} 3"), "count");
    CHECK(text && has_line(text, "mnistd_http_request_duration_seconds_sum{route=\"/predict\"} 0.002310"), "sum");
    CHECK(text && has_line(text, "mnistd_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"10\"} 0"),
          "20 s is above 10");
    CHECK(text && has_line(text, "mnistd_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 1"),
          "20 s in +Inf");
    CHECK(text && has_line(text, "mnistd_inference_batch_size_bucket{le=\"2\"} 0"), "batch 2");
    CHECK(text && has_line(text, "mnistd_inference_batch_size_bucket{le=\"4\"} 1"), "batch 4");
    CHECK(text && has_line(text, "mnistd_inference_batch_size_bucket{le=\"64\"} 2"), "batch 64 (le is inclusive)");
    CHECK(text && has_line(text, "mnistd_inference_batch_size_sum 67.000000"), "batch sum");
    CHECK(text && !strstr(text, "route=\"/model\""), "unrequested route present");
    TEST_END();

    TEST_BEGIN("metrics_label_escaping");
    CHECK(text && strstr(text, "mnistd_model_info{version=\"v\\\"1\\\\x\",architecture=\"mnist-cnn-v1\","
                               "source=\"/a\\nb\"} 1\n"), "escaped labels");
    TEST_END();

    TEST_BEGIN("metrics_help_and_type_for_every_family");
    {
        int fam = 0, bad = 0;
        for (const char *p = text; p && (p = strstr(p, "# TYPE ")) != NULL; p++) {
            fam++;
            char name[128];
            if (sscanf(p, "# TYPE %127s", name) != 1 || strncmp(name, "mnistd_", 7) != 0)
                bad++;
        }
        CHECK(fam >= 20, "only %d families", fam);
        CHECK(bad == 0, "%d families without the mnistd_ prefix", bad);
    }
    TEST_END();

    if (access("/usr/bin/promtool", X_OK) != 0) {
        TEST_SKIP("metrics_promtool_clean", "promtool not installed (Debian package prometheus)");
    } else if (text) {
        TEST_BEGIN("metrics_promtool_clean");
        char path[] = "/tmp/mnistd-metrics-XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0, "mkstemp");
        if (fd >= 0) {
            CHECK(write(fd, text, len) == (ssize_t)len, "write");
            close(fd);
            char cmd[256];
            snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
            FILE *p = popen(cmd, "r");
            char out[4096] = "";
            size_t got = p ? fread(out, 1, sizeof(out) - 1, p) : 0;
            out[got] = '\0';
            int rc = p ? pclose(p) : -1;
            CHECK(rc == 0 && got == 0, "promtool rc=%d: %s", rc, out);
            unlink(path);
        }
        TEST_END();
    }
    free(text);
    TEST_EXIT();
}
