/* server/metrics.c -- counters, histograms and their text exposition.
 *
 * Histograms keep per-bucket (non-cumulative) counts and their sum in
 * integer micro-units, each a relaxed atomic: an observation is two or three
 * atomic adds and no lock. Rendering reads the atomics one by one; a scrape
 * racing an update may see a count one ahead of the sum, which Prometheus
 * tolerates (the series stay monotonic). Buckets are cumulated at render. */
#include "server/metrics.h"

#include <dirent.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "model/version.h"
#include "server/clock.h"

#define MAX_BUCKETS 20

typedef struct {
    const double *bounds;
    int nb;
    _Atomic uint64_t counts[MAX_BUCKETS + 1];  /* last one: above every bound */
    _Atomic uint64_t sum_micro;                /* sum of values * 1e6 */
} histogram;

static const double latency_bounds[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1, 2.5, 5, 10,
};
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
#define NB(a) ((int)(sizeof(a) / sizeof((a)[0])))

#define MIN_STATUS 100
#define NSTATUS 500

static struct {
    const char *const *routes;  /* label values, from metrics_init */
    int nroutes;
    const char *const *reasons;
    int nreasons;
    _Atomic uint64_t requests[METRICS_MAX_ROUTES][NSTATUS];
    histogram duration[METRICS_MAX_ROUTES];
    histogram queue_wait;
    histogram compute;
    histogram batch_size;
    _Atomic uint64_t images;
    _Atomic uint64_t rejected[2][METRICS_MAX_REASONS]; /* predict, explain */
    _Atomic uint64_t activations[MACT_COUNT];
    _Atomic uint64_t promotions[2];     /* not promoted, promoted */
    _Atomic uint64_t tls_failures;
    double start_time;
} M;

static void hist_init(histogram *h, const double *bounds, int nb)
{
    h->bounds = bounds;
    h->nb = nb;
    for (int i = 0; i <= MAX_BUCKETS; i++)
        atomic_store_explicit(&h->counts[i], 0, memory_order_relaxed);
    atomic_store_explicit(&h->sum_micro, 0, memory_order_relaxed);
}

/* Records one value: the first bucket whose bound is >= v, and the sum. */
static void hist_observe(histogram *h, double v)
{
    if (!(v >= 0))
        v = 0;  /* NaN or negative (a clock step): count it as zero */
    int i = 0;
    while (i < h->nb && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    double micro = v * 1e6 + 0.5;
    atomic_fetch_add_explicit(&h->sum_micro, micro < 1.8e19 ? (uint64_t)micro : 0,
                              memory_order_relaxed);
}

static int clamp_count(int n, int max)
{
    return n < 0 ? 0 : n > max ? max : n;
}

void metrics_init(const metrics_labels *labels)
{
    static const metrics_labels none = {0};
    if (!labels)
        labels = &none;
    M.routes = labels->routes;
    M.nroutes = labels->routes ? clamp_count(labels->nroutes, METRICS_MAX_ROUTES) : 0;
    M.reasons = labels->reasons;
    M.nreasons = labels->reasons ? clamp_count(labels->nreasons, METRICS_MAX_REASONS) : 0;
    for (int r = 0; r < METRICS_MAX_ROUTES; r++) {
        for (int s = 0; s < NSTATUS; s++)
            atomic_store_explicit(&M.requests[r][s], 0, memory_order_relaxed);
        hist_init(&M.duration[r], latency_bounds, NB(latency_bounds));
    }
    hist_init(&M.queue_wait, latency_bounds, NB(latency_bounds));
    hist_init(&M.compute, latency_bounds, NB(latency_bounds));
    hist_init(&M.batch_size, batch_bounds, NB(batch_bounds));
    atomic_store_explicit(&M.images, 0, memory_order_relaxed);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < METRICS_MAX_REASONS; i++)
            atomic_store_explicit(&M.rejected[k][i], 0, memory_order_relaxed);
    for (int i = 0; i < MACT_COUNT; i++)
        atomic_store_explicit(&M.activations[i], 0, memory_order_relaxed);
    for (int i = 0; i < 2; i++)
        atomic_store_explicit(&M.promotions[i], 0, memory_order_relaxed);
    atomic_store_explicit(&M.tls_failures, 0, memory_order_relaxed);
    M.start_time = clock_wall();
}

void metrics_request(int route, int status, double seconds)
{
    if (M.nroutes == 0)
        return;
    if (route < 0 || route >= M.nroutes)
        route = M.nroutes - 1;
    if (status < MIN_STATUS || status >= MIN_STATUS + NSTATUS)
        status = 500;
    atomic_fetch_add_explicit(&M.requests[route][status - MIN_STATUS], 1, memory_order_relaxed);
    hist_observe(&M.duration[route], seconds);
}

void metrics_queue_wait(double seconds)
{
    hist_observe(&M.queue_wait, seconds);
}

void metrics_batch(int size, double seconds)
{
    hist_observe(&M.batch_size, (double)size);
    hist_observe(&M.compute, seconds);
    atomic_fetch_add_explicit(&M.images, (uint64_t)(size > 0 ? size : 0), memory_order_relaxed);
}

void metrics_activation(metrics_activation_reason reason)
{
    if (reason >= 0 && reason < MACT_COUNT)
        atomic_fetch_add_explicit(&M.activations[reason], 1, memory_order_relaxed);
}

void metrics_promotion(int promoted)
{
    atomic_fetch_add_explicit(&M.promotions[promoted ? 1 : 0], 1, memory_order_relaxed);
}

uint64_t metrics_tls_handshake_failed(void)
{
    return atomic_fetch_add_explicit(&M.tls_failures, 1, memory_order_relaxed) + 1;
}

void metrics_rejected(int explain, int reason)
{
    if (reason >= 0 && reason < M.nreasons)
        atomic_fetch_add_explicit(&M.rejected[explain ? 1 : 0][reason], 1, memory_order_relaxed);
}

uint64_t metrics_request_count(int route, int status)
{
    if (route < 0 || route >= M.nroutes || status < MIN_STATUS || status >= MIN_STATUS + NSTATUS)
        return 0;
    return atomic_load_explicit(&M.requests[route][status - MIN_STATUS], memory_order_relaxed);
}

static uint64_t hist_total(const histogram *h);

uint64_t metrics_batch_count(void)
{
    return hist_total(&M.batch_size);
}

uint64_t metrics_image_count(void)
{
    return atomic_load_explicit(&M.images, memory_order_relaxed);
}

/* ---- exposition ---------------------------------------------------------- */

static void family(strbuf *sb, const char *name, const char *type, const char *help)
{
    sb_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Prints a bucket bound the way Prometheus clients do (shortest form). */
static void fmt_bound(char *buf, size_t len, double b)
{
    snprintf(buf, len, "%.10g", b);
}

/* Renders one histogram's series; labels is "" or e.g. `route="/predict",`. */
static void hist_render(strbuf *sb, const char *name, const char *labels, const histogram *h)
{
    uint64_t cum = 0;
    char le[32];
    for (int i = 0; i < h->nb; i++) {
        cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        fmt_bound(le, sizeof(le), h->bounds[i]);
        sb_printf(sb, "%s_bucket{%sle=\"%s\"} %llu\n", name, labels, le, (unsigned long long)cum);
    }
    cum += atomic_load_explicit(&h->counts[h->nb], memory_order_relaxed);
    sb_printf(sb, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
    /* _sum and _count without the trailing comma of the label prefix. */
    size_t ll = strlen(labels);
    char lab[256] = "";
    if (ll > 0 && ll < sizeof(lab)) {
        memcpy(lab, labels, ll - 1);
        lab[ll - 1] = '\0';
    }
    double sum = (double)atomic_load_explicit(&h->sum_micro, memory_order_relaxed) / 1e6;
    if (lab[0]) {
        sb_printf(sb, "%s_sum{%s} %.6f\n", name, lab, sum);
        sb_printf(sb, "%s_count{%s} %llu\n", name, lab, (unsigned long long)cum);
    } else {
        sb_printf(sb, "%s_sum %.6f\n", name, sum);
        sb_printf(sb, "%s_count %llu\n", name, (unsigned long long)cum);
    }
}

static uint64_t hist_total(const histogram *h)
{
    uint64_t n = 0;
    for (int i = 0; i <= h->nb; i++)
        n += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
    return n;
}

/* Process figures from /proc and getrusage; -1 when unavailable. */
static void statm_bytes(long long *vsize, long long *rss)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long pages_total = -1, pages_res = -1;
    *vsize = *rss = -1;
    if (!f)
        return;
    if (fscanf(f, "%lld %lld", &pages_total, &pages_res) == 2) {
        *vsize = pages_total * (long long)sysconf(_SC_PAGESIZE);
        *rss = pages_res * (long long)sysconf(_SC_PAGESIZE);
    }
    fclose(f);
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;  /* the directory stream's own descriptor */
}

void metrics_render(strbuf *sb, const metrics_live *live)
{
    /* HTTP */
    family(sb, "mnistd_http_requests_total", "counter",
           "HTTP requests answered, by route and status code.");
    for (int r = 0; r < M.nroutes; r++)
        for (int s = 0; s < NSTATUS; s++) {
            uint64_t v = atomic_load_explicit(&M.requests[r][s], memory_order_relaxed);
            if (v)
                sb_printf(sb, "mnistd_http_requests_total{route=\"%s\",code=\"%d\"} %llu\n",
                          M.routes[r], s + MIN_STATUS, (unsigned long long)v);
        }
    family(sb, "mnistd_http_request_duration_seconds", "histogram",
           "Time from a request's arrival to its response, by route.");
    for (int r = 0; r < M.nroutes; r++) {
        /* Routes never requested stay out, except the first so that the
         * family always has series for dashboards and alerts. */
        if (r != 0 && hist_total(&M.duration[r]) == 0)
            continue;
        char lab[160];
        snprintf(lab, sizeof(lab), "route=\"%.128s\",", M.routes[r]);
        hist_render(sb, "mnistd_http_request_duration_seconds", lab, &M.duration[r]);
    }

    /* Inference */
    family(sb, "mnistd_inference_queue_wait_seconds", "histogram",
           "Time an image waited in the inference queue before its batch started.");
    hist_render(sb, "mnistd_inference_queue_wait_seconds", "", &M.queue_wait);
    family(sb, "mnistd_inference_compute_seconds", "histogram",
           "Time of one batched forward pass.");
    hist_render(sb, "mnistd_inference_compute_seconds", "", &M.compute);
    family(sb, "mnistd_inference_batch_size", "histogram",
           "Images per forward pass.");
    hist_render(sb, "mnistd_inference_batch_size", "", &M.batch_size);
    family(sb, "mnistd_inference_images_total", "counter", "Images classified.");
    sb_printf(sb, "mnistd_inference_images_total %llu\n",
              (unsigned long long)atomic_load_explicit(&M.images, memory_order_relaxed));
    static const char *const rejected[2][2] = {
        {"mnistd_predict_rejected_total", "Prediction requests refused, by reason."},
        {"mnistd_explain_rejected_total", "Explanation requests refused, by reason."},
    };
    for (int k = 0; k < 2; k++) {
        family(sb, rejected[k][0], "counter", rejected[k][1]);
        for (int i = 0; i < M.nreasons; i++)
            sb_printf(sb, "%s{reason=\"%s\"} %llu\n", rejected[k][0], M.reasons[i],
                      (unsigned long long)atomic_load_explicit(&M.rejected[k][i], memory_order_relaxed));
    }
    family(sb, "mnistd_tls_handshake_failures_total", "counter",
           "TLS handshakes that failed (HTTPS only).");
    sb_printf(sb, "mnistd_tls_handshake_failures_total %llu\n",
              (unsigned long long)atomic_load_explicit(&M.tls_failures, memory_order_relaxed));

    if (live) {
        family(sb, "mnistd_inference_queue_depth", "gauge", "Images waiting for a worker now.");
        sb_printf(sb, "mnistd_inference_queue_depth %d\n", live->queue_depth);
        family(sb, "mnistd_inference_queue_capacity", "gauge",
               "Most images that may wait (--max-queue).");
        sb_printf(sb, "mnistd_inference_queue_capacity %d\n", live->queue_capacity);
        family(sb, "mnistd_explain_queue_depth", "gauge",
               "Images waiting for an explanation worker now (POST /explain).");
        sb_printf(sb, "mnistd_explain_queue_depth %d\n", live->explain_queue_depth);
        family(sb, "mnistd_explain_queue_capacity", "gauge",
               "Most images that may wait for an explanation (--explain-queue).");
        sb_printf(sb, "mnistd_explain_queue_capacity %d\n", live->explain_queue_capacity);
        family(sb, "mnistd_inference_max_batch", "gauge", "Most images per forward pass (--max-batch).");
        sb_printf(sb, "mnistd_inference_max_batch %d\n", live->max_batch);
        family(sb, "mnistd_inference_workers", "gauge", "Inference worker threads.");
        sb_printf(sb, "mnistd_inference_workers %d\n", live->workers);
        family(sb, "mnistd_model_ready", "gauge", "1 while a model is loaded and serving, else 0.");
        sb_printf(sb, "mnistd_model_ready %d\n", live->ready ? 1 : 0);
        if (live->model_version) {
            family(sb, "mnistd_model_info", "gauge", "The served model (value is always 1).");
            sb_append(sb, "mnistd_model_info{version=\"", 27);
            sb_label_value(sb, live->model_version);
            sb_append(sb, "\",architecture=\"", 16);
            sb_label_value(sb, live->model_arch ? live->model_arch : "");
            sb_append(sb, "\",source=\"", 10);
            sb_label_value(sb, live->model_source ? live->model_source : "");
            sb_append(sb, "\"} 1\n", 5);
            family(sb, "mnistd_model_parameters", "gauge", "Parameters of the served model.");
            sb_printf(sb, "mnistd_model_parameters %ld\n", live->model_params);
            family(sb, "mnistd_model_loaded_timestamp_seconds", "gauge",
                   "When the served model was loaded, in unix seconds.");
            sb_printf(sb, "mnistd_model_loaded_timestamp_seconds %.3f\n", live->model_loaded_time);
            if (live->model_accuracy >= 0) {
                family(sb, "mnistd_model_test_accuracy_ratio", "gauge",
                       "Test-set accuracy recorded with the served model (0..1).");
                sb_printf(sb, "mnistd_model_test_accuracy_ratio %.6f\n", live->model_accuracy);
            }
        }
    }
    static const char *const act_names[MACT_COUNT] = {"startup", "job", "api", "watch"};
    family(sb, "mnistd_model_activations_total", "counter",
           "Changes of the served model, by reason (startup, job, api, watch).");
    for (int i = 0; i < MACT_COUNT; i++)
        sb_printf(sb, "mnistd_model_activations_total{reason=\"%s\"} %llu\n", act_names[i],
                  (unsigned long long)atomic_load_explicit(&M.activations[i], memory_order_relaxed));
    family(sb, "mnistd_training_promotions_total", "counter",
           "Successful training jobs whose model was promoted to serve, or not (per its policy).");
    sb_printf(sb, "mnistd_training_promotions_total{outcome=\"promoted\"} %llu\n",
              (unsigned long long)atomic_load_explicit(&M.promotions[1], memory_order_relaxed));
    sb_printf(sb, "mnistd_training_promotions_total{outcome=\"not_promoted\"} %llu\n",
              (unsigned long long)atomic_load_explicit(&M.promotions[0], memory_order_relaxed));
    if (live && live->model_versions >= 0) {
        family(sb, "mnistd_model_versions", "gauge", "Valid model versions in the model repository.");
        sb_printf(sb, "mnistd_model_versions %d\n", live->model_versions);
    }

    /* Training */
    if (live && live->have_training) {
        family(sb, "mnistd_training_jobs_total", "counter", "Training jobs that ended, by outcome.");
        sb_printf(sb, "mnistd_training_jobs_total{outcome=\"succeeded\"} %ld\n", live->training.succeeded);
        sb_printf(sb, "mnistd_training_jobs_total{outcome=\"failed\"} %ld\n", live->training.failed);
        sb_printf(sb, "mnistd_training_jobs_total{outcome=\"cancelled\"} %ld\n", live->training.cancelled);
        /* The running job's gauges: one family each, one value each. */
        const struct {
            const char *name, *help;
            double value;
        } g[] = {
            {"mnistd_training_running", "1 while a training job is queued or running, else 0.",
             live->training.running_id > 0},
            {"mnistd_training_job_id", "Id of the running training job, 0 if none.", live->training.running_id},
            {"mnistd_training_epoch", "Current epoch of the running job (1-based), 0 if none.",
             live->training.epoch},
            {"mnistd_training_epochs", "Epochs the running job will train, 0 if none.", live->training.epochs},
            {"mnistd_training_batch", "Batches done in the current epoch of the running job.",
             live->training.batch},
            {"mnistd_training_batches", "Batches per epoch of the running job.", live->training.batches},
            {"mnistd_training_progress_ratio", "Fraction of the running job done (0..1).",
             live->training.progress},
            {"mnistd_training_loss", "Mean training loss of the running job's current epoch so far.",
             live->training.loss},
            {"mnistd_training_accuracy_ratio",
             "Training accuracy of the running job's current epoch so far (0..1).", live->training.accuracy},
            {"mnistd_training_samples_per_second", "Training throughput of the running job.",
             live->training.samples_per_sec},
        };
        for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
            family(sb, g[i].name, "gauge", g[i].help);
            sb_printf(sb, "%s %.9g\n", g[i].name, g[i].value);
        }
    }

    /* Process */
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        family(sb, "mnistd_process_cpu_seconds_total", "counter",
               "User and system CPU time of the process.");
        sb_printf(sb, "mnistd_process_cpu_seconds_total %.6f\n", cpu);
    }
    long long vs, rss;
    statm_bytes(&vs, &rss);
    if (rss >= 0) {
        family(sb, "mnistd_process_resident_memory_bytes", "gauge", "Resident memory of the process.");
        sb_printf(sb, "mnistd_process_resident_memory_bytes %lld\n", rss);
    }
    if (vs >= 0) {
        family(sb, "mnistd_process_virtual_memory_bytes", "gauge", "Virtual memory of the process.");
        sb_printf(sb, "mnistd_process_virtual_memory_bytes %lld\n", vs);
    }
    int fds = open_fds();
    if (fds >= 0) {
        family(sb, "mnistd_process_open_fds", "gauge", "Open file descriptors.");
        sb_printf(sb, "mnistd_process_open_fds %d\n", fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        family(sb, "mnistd_process_max_fds", "gauge", "Limit of open file descriptors.");
        sb_printf(sb, "mnistd_process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
    family(sb, "mnistd_process_start_time_seconds", "gauge", "Start time of the process in unix seconds.");
    sb_printf(sb, "mnistd_process_start_time_seconds %.3f\n", M.start_time);
    family(sb, "mnistd_build_info", "gauge", "Version of the running build (value is always 1).");
    sb_printf(sb, "mnistd_build_info{version=\"%s\",revision=\"%s\"} 1\n", MNISTD_VERSION, MNISTD_GITREV);
}
