/* The sample grid: cells hold the images at the documented place, wrong
 * predictions are framed in red, captions are drawn, bad arguments refused. */
#include "tests/unit/test.h"

#include <stdint.h>

#include "model/grid.h"

int main(void)
{
    enum { N = 7 };
    uint8_t im[N * 784], lab[N], pred[N];
    for (int i = 0; i < N * 784; i++)
        im[i] = (uint8_t)((i * 37 + i / 784 * 11) & 255);
    for (int i = 0; i < N; i++) {
        lab[i] = (uint8_t)i;
        pred[i] = (uint8_t)(i == 4 ? 9 : i);
    }
    uint8_t *rgb = NULL;
    uint32_t w = 0, h = 0;
    TEST_BEGIN("grid_geometry_and_cells");
    CHECK(grid_render(im, lab, pred, N, &rgb, &w, &h) == 0, "render failed");
    CHECK(w == 5 * GRID_CELL_W && h == 2 * GRID_CELL_H, "size %ux%u", w, h);
    int bad = 0;
    for (int i = 0; i < N && rgb; i++) {
        int cx = (i % 5) * GRID_CELL_W + GRID_PAD, cy = (i / 5) * GRID_CELL_H + GRID_PAD;
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++) {
                /* the centre of each scaled pixel */
                const uint8_t *p = rgb + ((size_t)(cy + y * GRID_SCALE + 1) * w + cx + x * GRID_SCALE + 1) * 3;
                uint8_t v = im[i * 784 + y * 28 + x];
                bad += p[0] != v || p[1] != v || p[2] != v;
            }
    }
    CHECK(bad == 0, "%d pixels differ from the images", bad);
    TEST_END();
    TEST_BEGIN("grid_marks_wrong_predictions");
    for (int i = 0; i < N && rgb; i++) {
        int cx = (i % 5) * GRID_CELL_W + GRID_PAD - 2, cy = (i / 5) * GRID_CELL_H + GRID_PAD + 10;
        const uint8_t *p = rgb + ((size_t)cy * w + cx) * 3;
        int red = p[0] > 150 && p[1] < 60 && p[2] < 60;
        CHECK(red == (lab[i] != pred[i]), "cell %d: frame red=%d, wrong=%d", i, red, lab[i] != pred[i]);
    }
    /* captions: some dark pixels below each image */
    for (int i = 0; i < N && rgb; i++) {
        int cx = (i % 5) * GRID_CELL_W, cy = (i / 5) * GRID_CELL_H + GRID_PAD + 28 * GRID_SCALE + 2;
        int ink = 0;
        for (int y = cy; y < cy + 22; y++)
            for (int x = cx; x < cx + GRID_CELL_W; x++)
                ink += rgb[((size_t)y * w + x) * 3 + 2] < 100;
        CHECK(ink > 40, "cell %d has no caption (%d dark pixels)", i, ink);
    }
    TEST_END();
    free(rgb);
    TEST_BEGIN("grid_rejects_bad_arguments");
    CHECK(grid_render(im, lab, pred, 0, &rgb, &w, &h) == -1, "n=0 accepted");
    CHECK(grid_render(im, lab, pred, 26, &rgb, &w, &h) == -1, "n=26 accepted");
    CHECK(grid_render(NULL, lab, pred, 1, &rgb, &w, &h) == -1, "NULL images accepted");
    TEST_END();
    TEST_EXIT();
}
