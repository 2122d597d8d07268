/* api/oipreply.c -- Open Inference Protocol (KServe v2) responses for the
 * MNIST model: the probabilities, or the classification extension's top
 * classes, as JSON or as binary tensors, and the explain extension's
 * attributions (see oip.h). */
#include "api/oip.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "server/log.h"

void oip_top_k(const float probs[NET_CLASSES], int k, char out[][24])
{
    int used[NET_CLASSES] = {0};
    for (int j = 0; j < k && j < NET_CLASSES; j++) {
        int best = -1;
        for (int c = 0; c < NET_CLASSES; c++)
            if (!used[c] && (best < 0 || probs[c] > probs[best]))
                best = c;
        used[best] = 1;
        snprintf(out[j], 24, "%f:%d", (double)probs[best], best);
    }
}

/* s as a JSON string. Every string here is at most OIP_ID_MAX bytes (the
 * request's id, the model's name and version, a class), so the buffer holds
 * it escaped whole. */
static void json_str(strbuf *sb, const char *s)
{
    char buf[6 * OIP_ID_MAX + 8] = "\"";
    size_t n = 1;
    json_escape(buf, sizeof(buf) - 1, &n, s);
    buf[n++] = '"';
    sb_append(sb, buf, n);
}

/* n values as JSON numbers of 9 significant digits (a float reads back as
 * itself), comma separated. */
static void json_floats(strbuf *sb, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char num[32];
        int l = snprintf(num, sizeof(num), i ? ",%.9g" : "%.9g", (double)v[i]);
        sb_append(sb, num, (size_t)l);
    }
}

int oip_write_response(const oip_request *req, const float *probs, const char *model_name,
                       const char *model_version, char **body, size_t *len, size_t *json_len)
{
    strbuf sb = {0}, bin = {0};
    int n = req->n, k = req->class_k;
    sb_append(&sb, "{\"model_name\":", 14);
    json_str(&sb, model_name);
    sb_append(&sb, ",\"model_version\":", 17);
    json_str(&sb, model_version);
    if (req->has_id) {
        sb_append(&sb, ",\"id\":", 6);
        json_str(&sb, req->id);
    }
    static const char outs[] = ",\"outputs\":[{\"name\":\"" OIP_OUTPUT_NAME "\",";
    sb_append(&sb, outs, sizeof(outs) - 1);
    if (k > 0) {
        sb_printf(&sb, "\"datatype\":\"BYTES\",\"shape\":[%d,%d],", n, k);
        char top[NET_CLASSES][24];
        if (req->out_binary) {
            for (int i = 0; i < n; i++) {
                oip_top_k(probs + (size_t)i * NET_CLASSES, k, top);
                for (int j = 0; j < k; j++) {
                    uint32_t l = (uint32_t)strlen(top[j]);
                    uint8_t le[4] = {(uint8_t)l, (uint8_t)(l >> 8), (uint8_t)(l >> 16), (uint8_t)(l >> 24)};
                    sb_append(&bin, (const char *)le, 4);
                    sb_append(&bin, top[j], l);
                }
            }
        } else {
            sb_append(&sb, "\"data\":[", 8);
            for (int i = 0; i < n; i++) {
                oip_top_k(probs + (size_t)i * NET_CLASSES, k, top);
                for (int j = 0; j < k; j++) {
                    if (i || j)
                        sb_append(&sb, ",", 1);
                    json_str(&sb, top[j]);
                }
            }
            sb_append(&sb, "]", 1);
        }
    } else {
        sb_printf(&sb, "\"datatype\":\"FP32\",\"shape\":[%d,%d],", n, NET_CLASSES);
        if (req->out_binary) {
            size_t count = (size_t)n * NET_CLASSES;
            for (size_t i = 0; i < count; i++) {
                uint32_t u;
                memcpy(&u, &probs[i], 4);
                uint8_t le[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
                sb_append(&bin, (const char *)le, 4);
            }
        } else {
            sb_append(&sb, "\"data\":[", 8);
            json_floats(&sb, probs, (size_t)n * NET_CLASSES);
            sb_append(&sb, "]", 1);
        }
    }
    if (req->out_binary) {
        sb_printf(&sb, "\"parameters\":{\"binary_data_size\":%zu}}]}", bin.len);
    } else {
        sb_append(&sb, "}]}\n", 4);
    }
    size_t jl = sb.len;
    if (bin.len)
        sb_append(&sb, bin.buf, bin.len);
    sb_free(&bin);
    char *out = sb_take(&sb, len);
    if (!out)
        return -1;
    *body = out;
    *json_len = jl;
    return 0;
}

int oip_write_explain_response(const oip_request *req, const oip_explanation *ex, int steps,
                               const char *model_name, const char *model_version, char **body,
                               size_t *len)
{
    strbuf sb = {0};
    const int n = req->n;
    sb_append(&sb, "{\"model_name\":", 14);
    json_str(&sb, model_name);
    sb_append(&sb, ",\"model_version\":", 17);
    json_str(&sb, model_version);
    if (req->has_id) {
        sb_append(&sb, ",\"id\":", 6);
        json_str(&sb, req->id);
    }
    sb_printf(&sb, ",\"parameters\":{\"method\":\"integrated_gradients\",\"baseline\":\"black\","
              "\"steps\":%d},\"outputs\":[{\"name\":\"" OIP_EXPLAIN_OUTPUT "\",\"datatype\":\"FP32\","
              "\"shape\":[%d,%d,%d],\"data\":[", steps, n, NET_IN_H, NET_IN_W);
    json_floats(&sb, ex->attributions, (size_t)n * NET_IN_PIXELS);
    sb_printf(&sb, "]},{\"name\":\"target\",\"datatype\":\"INT32\",\"shape\":[%d],\"data\":[", n);
    for (int i = 0; i < n; i++)
        sb_printf(&sb, i ? ",%d" : "%d", ex->target[i]);
    sb_printf(&sb, "]},{\"name\":\"" OIP_OUTPUT_NAME "\",\"datatype\":\"FP32\",\"shape\":[%d,%d],"
              "\"data\":[", n, NET_CLASSES);
    json_floats(&sb, ex->probs, (size_t)n * NET_CLASSES);
    sb_printf(&sb, "]},{\"name\":\"delta\",\"datatype\":\"FP32\",\"shape\":[%d],\"data\":[", n);
    json_floats(&sb, ex->delta, (size_t)n);
    sb_append(&sb, "]}]}\n", 5);
    *body = sb_take(&sb, len);
    return *body ? 0 : -1;
}
