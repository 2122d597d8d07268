/* Unit tests of the route table (api/router.c): the metric label values it
 * registers (the series names dashboards and alerts rely on) and which row
 * and label a path and method find. */
#include "api/api.h"
#include "api/router.h"
#include "tests/unit/test.h"

static int label_of(const char *url, const char *method, const api_route **row)
{
    api_request r;
    memset(&r, 0, sizeof r);
    api_route_find(&r, url, method);
    *row = r.row;
    return r.route;
}

int main(void)
{
    static const char *const want_routes[] = {
        "/predict", "/explain", "/model", "/healthz", "/readyz", "/metrics", "/openapi.yaml",
        "/train", "/train/{id}", "/evaluate", "/samples.png",
        "/models", "/models/{version}", "/models/{version}/activate",
        "/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/{model}", "/v2/models/{model}/ready",
        "/v2/models/{model}/infer", "/v2/models/{model}/explain", "/v2/models/{model}/versions/{version}",
        "/v2/models/{model}/versions/{version}/ready", "/v2/models/{model}/versions/{version}/infer",
        "/v2/models/{model}/versions/{version}/explain",
        "web", "other",
    };
    static const char *const want_reasons[] = {
        "queue_full", "deadline", "not_ready", "shutting_down", "body_too_large",
        "too_many_images", "length_required", "unsupported_media_type", "bad_request",
        "unprocessable",
    };
    metrics_labels l;
    api_metric_labels(&l);

    TEST_BEGIN("router_metric_labels");
    int n = (int)(sizeof want_routes / sizeof want_routes[0]);
    CHECK(l.nroutes == n, "%d route labels, want %d", l.nroutes, n);
    for (int i = 0; i < n && i < l.nroutes; i++)
        CHECK(strcmp(l.routes[i], want_routes[i]) == 0, "label %d is %s, want %s", i, l.routes[i], want_routes[i]);
    n = (int)(sizeof want_reasons / sizeof want_reasons[0]);
    CHECK(l.nreasons == n, "%d reasons, want %d", l.nreasons, n);
    for (int i = 0; i < n && i < l.nreasons; i++)
        CHECK(strcmp(l.reasons[i], want_reasons[i]) == 0, "reason %d is %s", i, l.reasons[i]);
    TEST_END();

    TEST_BEGIN("router_find");
    const api_route *row;
    int k = label_of("/predict", "POST", &row);
    CHECK(row && row->on_headers && row->body_max == API_BODY_SETTING && strcmp(l.routes[k], "/predict") == 0,
          "POST /predict");
    k = label_of("/predict", "GET", &row);
    CHECK(!row && strcmp(l.routes[k], "/predict") == 0, "GET /predict: no row, its label");
    k = label_of("/train", "POST", &row);
    CHECK(row && row->access == API_TOKEN && row->body_max == 65536 && !row->on_headers, "POST /train");
    k = label_of("/train", "HEAD", &row);
    CHECK(row && strcmp(row->method, "GET") == 0 && strcmp(l.routes[k], "/train") == 0, "HEAD /train is GET's");
    k = label_of("/train/12", "DELETE", &row);
    CHECK(row && row->access == API_TOKEN && strcmp(l.routes[k], "/train/{id}") == 0, "DELETE /train/12");
    k = label_of("/train/abc", "GET", &row);
    CHECK(row && strcmp(l.routes[k], "/train/{id}") == 0, "an invalid id still has the route's label");
    k = label_of("/train/", "GET", &row);
    CHECK(!row && strcmp(l.routes[k], "other") == 0, "/train/ alone");
    k = label_of("/nope", "GET", &row);
    CHECK(!row && strcmp(l.routes[k], "other") == 0, "unknown path");
    k = label_of("/v2/models/mnist/versions/abc/infer", "POST", &row);
    CHECK(row && row->on_headers && strcmp(l.routes[k], "/v2/models/{model}/versions/{version}/infer") == 0,
          "v2 versioned infer");
    k = label_of("/v2/models/mnist/ready", "GET", &row);
    CHECK(row && strcmp(l.routes[k], "/v2/models/{model}/ready") == 0, "v2 model ready");
    k = label_of("/v2/models//ready", "GET", &row);
    CHECK(!row && strcmp(l.routes[k], "other") == 0, "an empty {model} segment");
    k = label_of("/v2/models/a/b/ready", "GET", &row);
    CHECK(!row && strcmp(l.routes[k], "other") == 0, "{model} is one segment");
    k = label_of("/models/0123456789abcdef/activate", "POST", &row);
    CHECK(row && row->access == API_TOKEN && strcmp(l.routes[k], "/models/{version}/activate") == 0,
          "POST /models/{version}/activate");
    k = label_of("/models/0123456789abcdef", "DELETE", &row);
    CHECK(row && row->access == API_TOKEN && strcmp(l.routes[k], "/models/{version}") == 0,
          "DELETE /models/{version}");
    k = label_of("/models/0123456789abcdef", "GET", &row);
    CHECK(row && row->access == API_OPEN && strcmp(l.routes[k], "/models/{version}") == 0, "GET /models/{version}");
    k = label_of("/healthz", "GET", &row);
    CHECK(row && row->access == API_OPEN && row->body_max == 0 && strcmp(l.routes[k], "/healthz") == 0, "healthz");
    TEST_END();
    TEST_EXIT();
}
