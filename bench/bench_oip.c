/* bench/bench_oip.c -- what parsing costs in a v2 infer request, against
 * the forward pass it feeds: a 64-image FP32 request in JSON (the values
 * printed with 9 significant digits, as clients print floats) parsed with
 * the fast path for numeric data and with cJSON alone, the same request in
 * the binary tensor form, and net_forward over the 64 images on one thread.
 * Prints "oip.<key>=<microseconds>" lines (medians of --rounds rounds). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/oip.h"
#include "bench/benchutil.h"
#include "model/net.h"

typedef int (*parse_fn)(const uint8_t *, size_t, const char *, const oip_limits *, oip_request *, char *, size_t);

/* Median microseconds of one parse (plus reading every image's pixels). */
static double time_parse(parse_fn fn, const uint8_t *body, size_t len, const char *ihcl, int rounds)
{
    oip_limits lim = {.max_images = 64};
    double *t = malloc(sizeof(double) * (size_t)rounds);
    static float x[NET_IN_PIXELS];
    for (int r = 0; r < rounds; r++) {
        oip_request req;
        char err[256];
        double t0 = clock_mono_s() * 1e6;
        if (fn(body, len, ihcl, &lim, &req, err, sizeof err) != 0) {
            fprintf(stderr, "bench_oip: parse failed: %s\n", err);
            exit(1);
        }
        for (int i = 0; i < req.n; i++)
            oip_request_pixels(&req, i, x);
        oip_request_free(&req);
        t[r] = clock_mono_s() * 1e6 - t0;
    }
    double m = bench_median(t, rounds);
    free(t);
    return m;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 50;
    if (rounds < 1)
        rounds = 1;
    enum { N = 64 };
    size_t cap = (size_t)N * NET_IN_PIXELS * 16 + 256;
    char *json = malloc(cap);
    float *pix = malloc(sizeof(float) * N * NET_IN_PIXELS);
    size_t n = (size_t)snprintf(json, cap, "{\"inputs\":[{\"name\":\"input\",\"shape\":[%d,28,28,1],"
                                "\"datatype\":\"FP32\",\"data\":[", N);
    for (int i = 0; i < N * NET_IN_PIXELS; i++) {
        /* MNIST-like: most pixels 0, the rest x/255 */
        unsigned v = (unsigned)(i * 2654435761u) >> 24;
        pix[i] = v < 200 ? 0.0f : (float)v / 255.0f;
        n += (size_t)snprintf(json + n, cap - n, i ? ",%.9g" : "%.9g", (double)pix[i]);
    }
    n += (size_t)snprintf(json + n, cap - n, "]}]}");

    char head[256], ihcl[32];
    int hl = snprintf(head, sizeof head, "{\"inputs\":[{\"name\":\"input\",\"shape\":[%d,28,28,1],\"datatype\":"
                      "\"FP32\",\"parameters\":{\"binary_data_size\":%zu}}]}", N, sizeof(float) * N * NET_IN_PIXELS);
    snprintf(ihcl, sizeof ihcl, "%d", hl);
    size_t blen = (size_t)hl + sizeof(float) * N * NET_IN_PIXELS;
    uint8_t *bin = malloc(blen);
    memcpy(bin, head, (size_t)hl);
    memcpy(bin + hl, pix, sizeof(float) * N * NET_IN_PIXELS);

    double fast = time_parse(oip_parse_request, (uint8_t *)json, n, NULL, rounds);
    double slow = time_parse(oip_parse_request_slow, (uint8_t *)json, n, NULL, rounds);
    double binary = time_parse(oip_parse_request, bin, blen, ihcl, rounds);

    float *params = calloc(NET_NUM_PARAMS, sizeof(float));
    net_ctx *ctx = net_ctx_create(N, 1);
    float probs[N * NET_CLASSES];
    double *t = malloc(sizeof(double) * (size_t)rounds);
    for (int r = 0; r < rounds; r++) {
        double t0 = clock_mono_s() * 1e6;
        net_forward(ctx, params, pix, N, probs, NULL);
        t[r] = clock_mono_s() * 1e6 - t0;
    }
    double fwd = bench_median(t, rounds);
    printf("oip.json_bytes=%zu\n", n);
    printf("oip.parse_json_fast_us=%.1f\n", fast);
    printf("oip.parse_json_cjson_us=%.1f\n", slow);
    printf("oip.parse_binary_us=%.1f\n", binary);
    printf("oip.forward_64_us=%.1f\n", fwd);
    net_ctx_free(ctx);
    free(params);
    free(t);
    free(json);
    free(pix);
    free(bin);
    return 0;
}
