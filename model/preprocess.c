/* model/preprocess.c -- MNIST-style preprocessing of a gray image; see
 * preprocess.h. Pure pixel arithmetic: no libpng, no I/O.
 *
 * Beyond what the header says:
 *   - polarity: the mean of the outermost rows and columns; over 128 (light
 *     paper) the image is inverted;
 *   - 28x28: nothing else, so MNIST images round-trip exactly (pixel/255);
 *     no pixel over the ink threshold (32) is IMG_ERR_EMPTY;
 *   - other sizes: the background level (median of the border) is taken out
 *     and the contrast stretched so the strongest ink is 255 (photographed
 *     paper and pencil; no change for a clean black-background image); less
 *     than 32 levels of contrast is IMG_ERR_EMPTY; the bounding box of the
 *     pixels over 32 is cropped, box-filtered (area average) to 20 px on its
 *     longer side, and placed so its centre of mass, in pixel-centre
 *     coordinates, is (14, 14) rounded to whole pixels; what falls outside the
 *     field is clipped. Output values are not quantised to 1/255. */
#include "model/preprocess.h"
#include "model/err.h"

#include <stdlib.h>
#include <string.h>

/* Ink threshold of img_to_mnist: after polarity and background removal, a
 * pixel brighter than this is ink for the bounding box. 32 of 255 skips the
 * faint anti-aliasing fringe and sensor/paper noise while keeping every
 * stroke; the pixels inside the box keep their values. */
#define IMG_INK_THRESHOLD 32
/* MNIST geometry: the digit fits a 20x20 box inside the 28x28 field. */
#define IMG_FIELD 28
#define IMG_BOX   20

/* Median of the outermost rows and columns (the background estimate). */
static unsigned border_median(const uint8_t *g, uint32_t w, uint32_t h,
                              double *mean)
{
    uint64_t hist[256] = {0};
    uint64_t n = 0, sum = 0, half, acc = 0;

    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++) {
            if (y != 0 && y != h - 1 && x != 0 && x != w - 1) {
                x = w - 2;      /* jump to the right edge of an inner row */
                continue;
            }
            uint8_t v = g[(size_t)y * w + x];
            hist[v]++;
            sum += v;
            n++;
        }
    }
    *mean = (double)sum / (double)n;
    half = (n + 1) / 2;
    for (unsigned v = 0; v < 256; v++) {
        acc += hist[v];
        if (acc >= half)
            return v;
    }
    return 255;
}

/* For each of the n_out output cells of one axis, the source span it covers
 * when n_in source pixels are squeezed (or stretched) onto n_out: cell o
 * covers [o*s, (o+1)*s) with s = n_in/n_out. first[o] is the first source
 * index; wts[o*span + k] the weight of source first[o]+k (fraction of the
 * cell it covers; the weights of a cell sum to 1). */
typedef struct {
    uint32_t n_out, span;
    uint32_t *first;
    double *wts;
} box_axis;

static int box_axis_init(box_axis *a, uint32_t n_in, uint32_t n_out)
{
    double s = (double)n_in / (double)n_out;

    a->n_out = n_out;
    a->span = (uint32_t)s + 2;
    a->first = malloc(sizeof(uint32_t) * n_out);
    a->wts = calloc((size_t)n_out * a->span, sizeof(double));
    if (a->first == NULL || a->wts == NULL)
        return -1;
    for (uint32_t o = 0; o < n_out; o++) {
        double lo = o * s, hi = (o + 1) * s;
        uint32_t i0 = (uint32_t)lo;
        if (i0 >= n_in)
            i0 = n_in - 1;
        a->first[o] = i0;
        for (uint32_t k = 0; k < a->span && i0 + k < n_in; k++) {
            double p0 = (double)(i0 + k), p1 = p0 + 1.0;
            double ov = (hi < p1 ? hi : p1) - (lo > p0 ? lo : p0);
            if (ov > 0)
                a->wts[(size_t)o * a->span + k] = ov / s;
        }
    }
    return 0;
}

static void box_axis_free(box_axis *a)
{
    free(a->first);
    free(a->wts);
}

/* Rounds half away from zero without libm. */
static long round_nearest(double v)
{
    return v >= 0 ? (long)(v + 0.5) : -(long)(-v + 0.5);
}

int img_to_mnist(const uint8_t *gray, uint32_t w, uint32_t h, float out[784],
                 char *err, size_t errlen)
{
    return img_to_mnist_field(gray, w, h, out, NULL, err, errlen);
}

int img_to_mnist_field(const uint8_t *gray, uint32_t w, uint32_t h, float out[784],
                       img_field *field, char *err, size_t errlen)
{
    uint8_t *g = NULL;
    float *tmp = NULL, *small = NULL;
    box_axis ax = {0}, ay = {0};
    int rc = IMG_ERR_EMPTY;
    double bmean;
    unsigned bg;
    size_t n;

    if (gray == NULL || out == NULL || w == 0 || h == 0) {
        err_set(err, errlen, "no image to classify (0 pixels)");
        return IMG_ERR_EMPTY;
    }
    n = (size_t)w * h;
    bg = border_median(gray, w, h, &bmean);
    /* A light border is paper: make the digit white on black like MNIST. */
    int invert = bmean > 128.0;
    if (invert)
        bg = 255 - bg;

    if (w == IMG_FIELD && h == IMG_FIELD) {
        /* MNIST's own geometry: only polarity, so MNIST images round-trip. */
        int ink = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned v = invert ? 255u - gray[i] : gray[i];
            out[i] = (float)v / 255.0f;
            ink |= v > IMG_INK_THRESHOLD;
        }
        if (!ink) {
            err_set(err, errlen, "no ink: the image is blank");
            memset(out, 0, 784 * sizeof(float));
            return IMG_ERR_EMPTY;
        }
        if (field)
            *field = (img_field){0, 0, IMG_FIELD, IMG_FIELD};
        return IMG_OK;
    }

    g = malloc(n);
    if (g == NULL) {
        err_set(err, errlen, "out of memory");
        return IMG_ERR_NOMEM;
    }
    /* Polarity, then take the background level (median of the border) out
     * and stretch what is left so the darkest ink is 255: gray paper in a
     * photo becomes black like MNIST's background and pencil becomes full
     * strokes. Contrast of IMG_INK_THRESHOLD or less is no ink at all (so
     * paper texture is never stretched into strokes). A clean image (black
     * background, ink reaching 255) is unchanged. */
    unsigned peak = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v = invert ? 255u - gray[i] : gray[i];
        if (v > peak)
            peak = v;
    }
    uint32_t x0 = w, y0 = h, x1 = 0, y1 = 0;
    if (peak > bg + IMG_INK_THRESHOLD) {
        for (uint32_t y = 0; y < h; y++) {
            for (uint32_t x = 0; x < w; x++) {
                size_t i = (size_t)y * w + x;
                unsigned v = invert ? 255u - gray[i] : gray[i];
                v = v > bg ? (v - bg) * 255u / (peak - bg) : 0u;
                g[i] = (uint8_t)v;
                if (v > IMG_INK_THRESHOLD) {
                    if (x < x0) x0 = x;
                    if (x > x1) x1 = x;
                    if (y < y0) y0 = y;
                    if (y > y1) y1 = y;
                }
            }
        }
    }
    if (x0 > x1) {
        err_set(err, errlen, "no ink: the image is blank");
        memset(out, 0, 784 * sizeof(float));
        rc = IMG_ERR_EMPTY;
        goto cleanup;
    }

    /* Crop to the ink, fit the longer side to 20 keeping the aspect ratio. */
    uint32_t cw = x1 - x0 + 1, chh = y1 - y0 + 1;
    uint32_t longer = cw > chh ? cw : chh;
    uint32_t nw = (uint32_t)round_nearest((double)cw * IMG_BOX / longer);
    uint32_t nh = (uint32_t)round_nearest((double)chh * IMG_BOX / longer);
    if (nw < 1)
        nw = 1;
    if (nh < 1)
        nh = 1;

    tmp = malloc(sizeof(float) * (size_t)chh * nw);
    small = calloc((size_t)nh * nw, sizeof(float));
    if (tmp == NULL || small == NULL || box_axis_init(&ax, cw, nw) != 0 ||
        box_axis_init(&ay, chh, nh) != 0) {
        err_set(err, errlen, "out of memory");
        rc = IMG_ERR_NOMEM;
        goto cleanup;
    }
    /* Area averaging, separable: rows first (chh x nw), then columns. */
    for (uint32_t y = 0; y < chh; y++) {
        const uint8_t *src = g + (size_t)(y0 + y) * w + x0;
        for (uint32_t o = 0; o < nw; o++) {
            double acc = 0;
            const double *wt = ax.wts + (size_t)o * ax.span;
            for (uint32_t k = 0; k < ax.span && ax.first[o] + k < cw; k++)
                acc += wt[k] * src[ax.first[o] + k];
            tmp[(size_t)y * nw + o] = (float)acc;
        }
    }
    for (uint32_t o = 0; o < nh; o++) {
        const double *wt = ay.wts + (size_t)o * ay.span;
        for (uint32_t k = 0; k < ay.span && ay.first[o] + k < chh; k++) {
            const float *row = tmp + (size_t)(ay.first[o] + k) * nw;
            for (uint32_t x = 0; x < nw; x++)
                small[(size_t)o * nw + x] += (float)(wt[k] * row[x]);
        }
    }

    /* Centre of mass in pixel-centre coordinates (pixel i spans [i, i+1)),
     * then shift so it lands on (14, 14), the centre of the field. */
    double sum = 0, sx = 0, sy = 0;
    for (uint32_t y = 0; y < nh; y++) {
        for (uint32_t x = 0; x < nw; x++) {
            double v = small[(size_t)y * nw + x];
            sum += v;
            sx += v * (x + 0.5);
            sy += v * (y + 0.5);
        }
    }
    long dx = IMG_FIELD / 2, dy = IMG_FIELD / 2;
    if (sum > 0) {
        dx = round_nearest(IMG_FIELD / 2.0 - sx / sum);
        dy = round_nearest(IMG_FIELD / 2.0 - sy / sum);
    }
    memset(out, 0, 784 * sizeof(float));
    for (uint32_t y = 0; y < nh; y++) {
        long ty = (long)y + dy;
        if (ty < 0 || ty >= IMG_FIELD)
            continue;
        for (uint32_t x = 0; x < nw; x++) {
            long tx = (long)x + dx;
            if (tx < 0 || tx >= IMG_FIELD)
                continue;
            float v = small[(size_t)y * nw + x] / 255.0f;
            out[ty * IMG_FIELD + tx] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
    }
    if (field) {
        /* field column f shows source columns from x0 + (f - dx) cw/nw */
        const double scx = (double)cw / nw, scy = (double)chh / nh;
        *field = (img_field){x0 - dx * scx, y0 - dy * scy, IMG_FIELD * scx, IMG_FIELD * scy};
    }
    rc = IMG_OK;

cleanup:
    box_axis_free(&ax);
    box_axis_free(&ay);
    free(small);
    free(tmp);
    free(g);
    return rc;
}
