/* model/augment.c -- the image transforms of augmentation: see augment.h. */
#include "model/augment.h"

#include <math.h>
#include <string.h>

#include "model/net.h"

#define SIDE 28
#define CENTRE 13.5f

_Static_assert(SIDE * SIDE == NET_IN_PIXELS, "the transforms assume 28x28 images");

/* in at (x, y), 0 outside the image. */
static inline float pixel(const float *in, int x, int y)
{
    return x >= 0 && x < SIDE && y >= 0 && y < SIDE ? in[y * SIDE + x] : 0.0f;
}

void augment_affine(float *out, const float *in, float angle_deg, float scale, float dx, float dy)
{
    // in, out (28, 28)
    const double a = (double)angle_deg * (M_PI / 180.0);
    const float c = (float)cos(a), s = (float)sin(a), inv = 1.0f / scale;
    /* The forward map takes p to CENTRE + scale * M (p - CENTRE) + d with M
     * the rotation that turns counter-clockwise on a y-down grid; each
     * output pixel reads the input where the inverse map sends it. */
    for (int qy = 0; qy < SIDE; qy++) {
        for (int qx = 0; qx < SIDE; qx++) {
            const float u = ((float)qx - CENTRE - dx) * inv, v = ((float)qy - CENTRE - dy) * inv;
            const float px = CENTRE + c * u - s * v, py = CENTRE + s * u + c * v;
            const float fx0 = floorf(px), fy0 = floorf(py);
            const int x0 = (int)fx0, y0 = (int)fy0;
            const float fx = px - fx0, fy = py - fy0;
            float val = 0.0f;
            if (x0 >= -1 && x0 < SIDE && y0 >= -1 && y0 < SIDE)
                val = (1.0f - fy) * ((1.0f - fx) * pixel(in, x0, y0) + fx * pixel(in, x0 + 1, y0)) +
                      fy * ((1.0f - fx) * pixel(in, x0, y0 + 1) + fx * pixel(in, x0 + 1, y0 + 1));
            out[qy * SIDE + qx] = val;
        }
    }
}

/* One step of the cross: the maximum (dilate) or minimum (erode) of each
 * pixel and its neighbours inside the image. */
static void cross_step(float *out, const float *in, int dilate)
{
    static const int nb[4][2] = {{-1, 0}, {1, 0}, {0, -1}, {0, 1}};
    for (int y = 0; y < SIDE; y++) {
        for (int x = 0; x < SIDE; x++) {
            float v = in[y * SIDE + x];
            for (int k = 0; k < 4; k++) {
                const int nx = x + nb[k][0], ny = y + nb[k][1];
                if (nx < 0 || nx >= SIDE || ny < 0 || ny >= SIDE)
                    continue;
                const float w = in[ny * SIDE + nx];
                v = dilate ? fmaxf(v, w) : fminf(v, w);
            }
            out[y * SIDE + x] = v;
        }
    }
}

void augment_thickness(float *out, const float *in, float t)
{
    // in, out (28, 28)
    const int dilate = t > 0.0f;
    const float mag = fabsf(t);
    const int steps = (int)mag;
    const float frac = mag - (float)steps;
    float a[NET_IN_PIXELS], b[NET_IN_PIXELS];
    memcpy(a, in, sizeof(a));
    for (int i = 0; i < steps; i++) {
        cross_step(b, a, dilate);
        memcpy(a, b, sizeof(a));
    }
    if (frac > 0.0f) {
        cross_step(b, a, dilate);
        for (int k = 0; k < NET_IN_PIXELS; k++)
            a[k] += frac * (b[k] - a[k]);
    }
    memcpy(out, a, sizeof(a));
}

/* Uniform in [-m, m]. */
static float symmetric(rng *r, float m)
{
    return (2.0f * rng_float(r) - 1.0f) * m;
}

void augment_random(float *img, const augment_config *a, rng *r)
{
    const float dx = symmetric(r, a->shift), dy = symmetric(r, a->shift);
    const float angle = symmetric(r, a->rotate), scale = 1.0f + symmetric(r, a->scale);
    const float t = a->thicken == 0.0f && a->thin == 0.0f ? (rng_next(r), 0.0f)
                                                          : -a->thin + rng_float(r) * (a->thin + a->thicken);
    float tmp[NET_IN_PIXELS];
    if (t != 0.0f)
        augment_thickness(img, memcpy(tmp, img, sizeof(tmp)), t);
    if (dx != 0.0f || dy != 0.0f || angle != 0.0f || scale != 1.0f)
        augment_affine(img, memcpy(tmp, img, sizeof(tmp)), angle, scale, dx, dy);
}
