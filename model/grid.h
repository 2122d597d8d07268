/* model/grid.h -- the reference script's picture: a 5x5 grid of test images,
 * each captioned "Label: y" / "Predicted: p", wrong predictions in red with
 * a red frame. Drawn with a built-in 5x7 bitmap font: no font files.
 *
 * Geometry (so a reader can find the images again): cell i (0-based, row
 * major, GRID_COLS per row) starts at x = (i % GRID_COLS) * GRID_CELL_W,
 * y = (i / GRID_COLS) * GRID_CELL_H; its image is the 28x28 digit scaled by
 * GRID_SCALE (nearest neighbour, gray as R=G=B) at offset (GRID_PAD,
 * GRID_PAD) inside the cell; the captions are below it. */
#ifndef MNISTD_GRID_H
#define MNISTD_GRID_H

#include <stddef.h>
#include <stdint.h>

#define GRID_COLS 5
#define GRID_SCALE 4
#define GRID_PAD 8
#define GRID_CELL_W (28 * GRID_SCALE + 2 * GRID_PAD)
#define GRID_CELL_H (28 * GRID_SCALE + 2 * GRID_PAD + 26)

/* Renders n (1..25) images (n*784 bytes, 0..255, white on black) with their
 * labels and predictions (0..9) into an RGB buffer of *w x *h pixels
 * (3 bytes each), which the caller frees with free(). Rows: ceil(n/5).
 * Returns 0, or -1 on bad arguments or out of memory. */
int grid_render(const uint8_t *images, const uint8_t *labels, const uint8_t *preds, int n,
                uint8_t **rgb, uint32_t *w, uint32_t *h);

/* Draws text at (x, y) in an RGB buffer of width w, height h, scale s (each
 * font pixel an s x s block), colour (r, g, b); unknown characters are drawn
 * as blanks. Clipped to the buffer. */
void grid_text(uint8_t *rgb, uint32_t w, uint32_t h, int x, int y, int s, const char *text,
               uint8_t r, uint8_t g, uint8_t b);

#endif
