/* model/grid.c -- the 5x5 sample picture: see grid.h. */
#include "model/grid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 5x7 glyphs, one byte per row, bit 4 = leftmost pixel. */
typedef struct {
    char c;
    uint8_t rows[7];
} glyph;

static const glyph FONT[] = {
    {'0', {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e}},
    {'1', {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e}},
    {'2', {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f}},
    {'3', {0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e}},
    {'4', {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02}},
    {'5', {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e}},
    {'6', {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e}},
    {'7', {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e}},
    {'9', {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c}},
    {':', {0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00}},
    {',', {0x00, 0x00, 0x00, 0x00, 0x0c, 0x04, 0x08}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c}},
    {'-', {0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f}},
    {'P', {0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10}},
    {'a', {0x00, 0x00, 0x0e, 0x01, 0x0f, 0x11, 0x0f}},
    {'b', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1e}},
    {'c', {0x00, 0x00, 0x0e, 0x10, 0x10, 0x11, 0x0e}},
    {'d', {0x01, 0x01, 0x0d, 0x13, 0x11, 0x11, 0x0f}},
    {'e', {0x00, 0x00, 0x0e, 0x11, 0x1f, 0x10, 0x0e}},
    {'i', {0x04, 0x00, 0x0c, 0x04, 0x04, 0x04, 0x0e}},
    {'l', {0x0c, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e}},
    {'r', {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10}},
    {'t', {0x08, 0x08, 0x1c, 0x08, 0x08, 0x09, 0x06}},
};

static const uint8_t *find_glyph(char c)
{
    for (size_t i = 0; i < sizeof(FONT) / sizeof(FONT[0]); i++)
        if (FONT[i].c == c)
            return FONT[i].rows;
    return NULL;
}

static void put(uint8_t *rgb, uint32_t w, uint32_t h, int x, int y, uint8_t r, uint8_t g,
                uint8_t b)
{
    if (x < 0 || y < 0 || (uint32_t)x >= w || (uint32_t)y >= h)
        return;
    uint8_t *p = rgb + ((size_t)y * w + (size_t)x) * 3;
    p[0] = r;
    p[1] = g;
    p[2] = b;
}

void grid_text(uint8_t *rgb, uint32_t w, uint32_t h, int x, int y, int s, const char *text,
               uint8_t r, uint8_t g, uint8_t b)
{
    for (; *text; text++, x += 6 * s) {
        const uint8_t *gl = find_glyph(*text);
        if (!gl)
            continue;
        for (int row = 0; row < 7; row++)
            for (int col = 0; col < 5; col++)
                if (gl[row] & (0x10 >> col))
                    for (int dy = 0; dy < s; dy++)
                        for (int dx = 0; dx < s; dx++)
                            put(rgb, w, h, x + col * s + dx, y + row * s + dy, r, g, b);
    }
}

int grid_render(const uint8_t *images, const uint8_t *labels, const uint8_t *preds, int n,
                uint8_t **rgb, uint32_t *w, uint32_t *h)
{
    if (!images || !labels || !preds || n < 1 || n > 25 || !rgb || !w || !h)
        return -1;
    const int rows = (n + GRID_COLS - 1) / GRID_COLS;
    const uint32_t W = GRID_COLS * GRID_CELL_W, H = (uint32_t)rows * GRID_CELL_H;
    uint8_t *buf = malloc((size_t)W * H * 3);
    if (!buf)
        return -1;
    memset(buf, 255, (size_t)W * H * 3);
    for (int i = 0; i < n; i++) {
        const int cx = (i % GRID_COLS) * GRID_CELL_W, cy = (i / GRID_COLS) * GRID_CELL_H;
        const uint8_t *im = images + (size_t)i * 784;
        const int wrong = labels[i] != preds[i];
        for (int y = 0; y < 28 * GRID_SCALE; y++)
            for (int x = 0; x < 28 * GRID_SCALE; x++) {
                uint8_t v = im[(y / GRID_SCALE) * 28 + x / GRID_SCALE];
                put(buf, W, H, cx + GRID_PAD + x, cy + GRID_PAD + y, v, v, v);
            }
        if (wrong) /* a red frame around the image */
            for (int t = 1; t <= 3; t++)
                for (int k = -t; k < 28 * GRID_SCALE + t; k++) {
                    put(buf, W, H, cx + GRID_PAD + k, cy + GRID_PAD - t, 220, 0, 0);
                    put(buf, W, H, cx + GRID_PAD + k, cy + GRID_PAD + 28 * GRID_SCALE - 1 + t, 220, 0, 0);
                    put(buf, W, H, cx + GRID_PAD - t, cy + GRID_PAD + k, 220, 0, 0);
                    put(buf, W, H, cx + GRID_PAD + 28 * GRID_SCALE - 1 + t, cy + GRID_PAD + k, 220, 0, 0);
                }
        char line[32];
        const int ty = cy + GRID_PAD + 28 * GRID_SCALE + 5;
        snprintf(line, sizeof line, "Label: %d", labels[i] % 10);
        grid_text(buf, W, H, cx + GRID_PAD, ty, 1, line, 0, 0, 0);
        snprintf(line, sizeof line, "Predicted: %d", preds[i] % 10);
        if (wrong)
            grid_text(buf, W, H, cx + GRID_PAD, ty + 10, 1, line, 200, 0, 0);
        else
            grid_text(buf, W, H, cx + GRID_PAD, ty + 10, 1, line, 0, 110, 0);
    }
    *rgb = buf;
    *w = W;
    *h = H;
    return 0;
}
