/* model/explain.c -- Integrated Gradients and the heat map: see explain.h.
 *
 * One explanation is one batch through net_input_grads: the steps points of
 * the path from the baseline to the input, then the input and the baseline
 * themselves (for the logits the attributions are checked against). */
#include "model/explain.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/layers.h"
#include "model/mem.h"

struct explain_ctx {
    int max_steps;
    net_train_ctx *net;
    float *xs;      /* (max_steps + 2, 784): the path's points, the input, the baseline */
    float *dx;      /* their input gradients */
    float *logits;  /* (max_steps + 2, 10) */
    uint8_t *target;
};

explain_ctx *explain_ctx_create(int max_steps, int threads)
{
    if (max_steps < 1 || max_steps > EXPLAIN_STEPS_LIMIT)
        return NULL;
    explain_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    const size_t B = (size_t)max_steps + 2;
    c->max_steps = max_steps;
    c->net = net_train_ctx_create((int)B, threads);
    c->xs = mem_aligned(sizeof(float) * B * NET_IN_PIXELS);
    c->dx = mem_aligned(sizeof(float) * B * NET_IN_PIXELS);
    c->logits = mem_aligned(sizeof(float) * B * NET_CLASSES);
    c->target = malloc(B);
    if (!c->net || !c->xs || !c->dx || !c->logits || !c->target) {
        explain_ctx_free(c);
        return NULL;
    }
    return c;
}

void explain_ctx_free(explain_ctx *c)
{
    if (!c)
        return;
    net_train_ctx_free(c->net);
    mem_free(c->xs);
    mem_free(c->dx);
    mem_free(c->logits);
    free(c->target);
    free(c);
}

int explain_ig(explain_ctx *c, const float *params, const float *x, int target, int steps,
               explain_result *out)
{
    if (!c || !params || !x || !out || steps < 1 || steps > c->max_steps ||
        target >= NET_CLASSES)
        return -1;
    const int B = steps + 2;
    /* The baseline is the black image (all zeros): the path's point k is
     * a_k x, the input is sample steps, the baseline sample steps + 1. */
    for (int k = 0; k < steps; k++) {
        const float a = ((float)k + 0.5f) / (float)steps;
        float *p = c->xs + (size_t)k * NET_IN_PIXELS;
        for (int i = 0; i < NET_IN_PIXELS; i++)
            p[i] = a * x[i];
    }
    memcpy(c->xs + (size_t)steps * NET_IN_PIXELS, x, sizeof(float) * NET_IN_PIXELS);
    memset(c->xs + (size_t)(steps + 1) * NET_IN_PIXELS, 0, sizeof(float) * NET_IN_PIXELS);
    if (target < 0) {
        /* the predicted class: one forward pass of the input first */
        c->target[0] = 0;
        if (net_input_grads(c->net, params, x, c->target, 1, c->dx, c->logits) != 0)
            return -1;
        target = net_argmax(c->logits);
    }
    memset(c->target, target, (size_t)B);
    if (net_input_grads(c->net, params, c->xs, c->target, B, c->dx, c->logits) != 0)
        return -1;
    /* Sum over the path in double, in order: the same answer for the same
     * input whatever the thread count. */
    double sum = 0.0;
    for (int i = 0; i < NET_IN_PIXELS; i++) {
        double g = 0.0;
        for (int k = 0; k < steps; k++)
            g += c->dx[(size_t)k * NET_IN_PIXELS + i];
        /* an unlit pixel (the baseline's value) gets exactly 0, not -0 */
        double a = x[i] != 0.0f ? (double)x[i] * g / steps : 0.0;
        out->attr[i] = (float)a;
        sum += a;
    }
    memcpy(out->logits, c->logits + (size_t)steps * NET_CLASSES, sizeof(out->logits));
    memcpy(out->baseline_logits, c->logits + (size_t)(steps + 1) * NET_CLASSES,
           sizeof(out->baseline_logits));
    softmax_forward(out->probs, out->logits, 1);
    out->predicted = net_argmax(out->logits);
    out->target = target;
    out->steps = steps;
    out->sum = sum;
    out->delta = sum - ((double)out->logits[target] - out->baseline_logits[target]);
    return 0;
}

int explain_heatmap(const float *x, const float *attr, int scale, uint8_t **rgb, uint32_t *w,
                    uint32_t *h)
{
    if (scale < 1 || scale > 64)
        return -1;
    const uint32_t side = 28u * (uint32_t)scale;
    uint8_t *img = malloc((size_t)side * side * 3);
    if (!img)
        return -1;
    float top = 0.0f;
    for (int i = 0; i < NET_IN_PIXELS; i++)
        top = fmaxf(top, fabsf(attr[i]));
    static const float pos[3] = {230, 40, 40}, neg[3] = {40, 100, 235};
    for (int i = 0; i < NET_IN_PIXELS; i++) {
        /* the input at 60% brightness, so that strokes show under the colour */
        float gray = 153.0f * fminf(fmaxf(x[i], 0.0f), 1.0f);
        float t = top > 0.0f ? sqrtf(fabsf(attr[i]) / top) : 0.0f;
        const float *col = attr[i] >= 0.0f ? pos : neg;
        uint8_t px[3];
        for (int ch = 0; ch < 3; ch++)
            px[ch] = (uint8_t)lrintf((1.0f - t) * gray + t * col[ch]);
        const uint32_t r0 = (uint32_t)(i / 28) * (uint32_t)scale, c0 = (uint32_t)(i % 28) * (uint32_t)scale;
        for (uint32_t r = r0; r < r0 + (uint32_t)scale; r++)
            for (uint32_t cc = c0; cc < c0 + (uint32_t)scale; cc++)
                memcpy(img + ((size_t)r * side + cc) * 3, px, 3);
    }
    *rgb = img;
    *w = *h = side;
    return 0;
}
