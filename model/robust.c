/* model/robust.c -- the transformed test sets: see robust.h. */
#include "model/robust.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/augment.h"
#include "model/err.h"
#include "model/net.h"
#include "model/rng.h"

static const struct {
    const char *name, *describe;
} kinds[ROBUST_KINDS] = {
    [ROBUST_SHIFTED] = {"shifted", "moved 3 pixels in a random direction"},
    [ROBUST_ROTATED] = {"rotated", "turned 20 degrees, clockwise or counter-clockwise at random"},
    [ROBUST_THICKENED] = {"thickened", "strokes thickened by 1.5 dilation steps of the 3x3 cross"},
};

const char *robust_name(robust_kind k)
{
    return k >= 0 && k < ROBUST_KINDS ? kinds[k].name : "";
}

const char *robust_describe(robust_kind k)
{
    return k >= 0 && k < ROBUST_KINDS ? kinds[k].describe : "";
}

int robust_parse(const char *name, robust_kind *k)
{
    for (int i = 0; name && i < ROBUST_KINDS; i++)
        if (strcmp(name, kinds[i].name) == 0) {
            *k = (robust_kind)i;
            return 0;
        }
    return -1;
}

int robust_set_parse(const char *name, unsigned *mask)
{
    robust_kind k;
    if (!name)
        return -1;
    if (strcmp(name, "test") == 0)
        *mask = 0;
    else if (strcmp(name, "transformed") == 0)
        *mask = (1u << ROBUST_KINDS) - 1;
    else if (robust_parse(name, &k) == 0)
        *mask = 1u << k;
    else
        return -1;
    return 0;
}

/* Image i transformed by kind k, into out (784 floats). */
static void transform(float *out, const float *in, robust_kind k, int i)
{
    rng r;
    rng_seed(&r, 0x70b057ULL * 1000003ULL + (uint64_t)k * 0x9e3779b97f4a7c15ULL + (uint64_t)i);
    switch (k) {
    case ROBUST_SHIFTED: {
        const double a = 2.0 * M_PI * (double)rng_float(&r);
        augment_affine(out, in, 0.0f, 1.0f, ROBUST_SHIFT_PX * (float)cos(a), ROBUST_SHIFT_PX * (float)sin(a));
        break;
    }
    case ROBUST_ROTATED:
        augment_affine(out, in, rng_float(&r) < 0.5f ? -ROBUST_ROTATE_DEG : ROBUST_ROTATE_DEG, 1.0f, 0.0f, 0.0f);
        break;
    default:
        augment_thickness(out, in, ROBUST_THICKEN);
        break;
    }
}

int robust_make(mnist_set *out, const mnist_set *src, robust_kind k, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!src || !src->images || src->rows * src->cols != NET_IN_PIXELS || k < 0 || k >= ROBUST_KINDS) {
        err_set(err, errlen, "cannot transform: the set is empty or not 28x28, or the kind is unknown");
        return -1;
    }
    out->images = malloc((size_t)src->n * NET_IN_PIXELS);
    out->labels = malloc((size_t)src->n);
    if (!out->images || !out->labels) {
        mnist_free(out);
        err_set(err, errlen, "out of memory transforming %d images", src->n);
        return -1;
    }
    out->n = src->n;
    out->rows = src->rows;
    out->cols = src->cols;
    memcpy(out->labels, src->labels, (size_t)src->n);
    float in[NET_IN_PIXELS], tr[NET_IN_PIXELS];
    for (int i = 0; i < src->n; i++) {
        mnist_to_float(src, i, 1, in);
        transform(tr, in, k, i);
        uint8_t *dst = out->images + (size_t)i * NET_IN_PIXELS;
        for (int p = 0; p < NET_IN_PIXELS; p++) {
            const float v = tr[p] < 0.0f ? 0.0f : tr[p] > 1.0f ? 1.0f : tr[p];
            dst[p] = (uint8_t)lrintf(v * 255.0f);
        }
    }
    return 0;
}

int robust_eval(const float *params, const mnist_set *test, robust_kind k, int threads, eval_result *out,
                char *err, size_t errlen)
{
    mnist_set t;
    if (robust_make(&t, test, k, err, errlen) != 0)
        return -1;
    int rc = eval_run(params, &t, 0, 0, threads, out, err, errlen);
    mnist_free(&t);
    return rc;
}
