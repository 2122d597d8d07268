/* Tests of model/png.c and model/preprocess.c: PNG decoding of every colour type and bit depth,
 * alpha over white, limits and corrupt input, MNIST-style normalisation,
 * and PNG encoding. PNGs are made in memory with libpng by the helpers
 * below, so each test knows exactly which gray value every pixel must
 * decode to. */
#include "tests/unit/test.h"
#include "model/png.h"
#include "model/preprocess.h"
#include "model/mnist.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <zlib.h>

/* ------------------------------------------------------------------------
 * Making PNGs in memory
 * ------------------------------------------------------------------------ */

typedef struct {
    uint8_t *d;
    size_t n, cap;
} mbuf;

static void mbuf_put(mbuf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *q = realloc(b->d, cap);
        if (q == NULL) {
            fprintf(stderr, "out of memory\n");
            abort();
        }
        b->d = q;
        b->cap = cap;
    }
    memcpy(b->d + b->n, p, n);
    b->n += n;
}

static void mbuf_write(png_structp png, png_bytep p, size_t n)
{
    mbuf_put(png_get_io_ptr(png), p, n);
}

static void mbuf_flush(png_structp png)
{
    (void)png;
}

/* What a test PNG holds besides its pixels. */
typedef struct {
    int depth, ctype, interlace;
    const png_color *pal;
    int npal;
    const png_byte *trns;       /* palette alpha */
    int ntrns;
    const png_color_16 *trns_value; /* gray / RGB transparent colour */
    const char *extra_name;     /* an extra chunk written before IDAT */
    const uint8_t *extra;
    size_t extra_len;
} png_spec;

/* The setjmp part of make_png; nothing local changes after setjmp. */
static int write_png(png_structp png, png_infop info, mbuf *out,
                     const png_spec *sp, png_bytep *rows, uint32_t w, uint32_t h)
{
    if (setjmp(png_jmpbuf(png)))
        return -1;
    png_set_write_fn(png, out, mbuf_write, mbuf_flush);
    png_set_IHDR(png, info, w, h, sp->depth, sp->ctype,
                 sp->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (sp->pal != NULL)
        png_set_PLTE(png, info, sp->pal, sp->npal);
    if (sp->trns != NULL || sp->trns_value != NULL)
        png_set_tRNS(png, info, sp->trns, sp->ntrns, sp->trns_value);
    png_write_info(png, info);
    if (sp->extra_name != NULL)
        png_write_chunk(png, (png_const_bytep)sp->extra_name, sp->extra,
                        sp->extra_len);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    return 0;
}

/* Encodes packed rows (rowbytes each, as libpng wants them) into *out. */
static int make_png(mbuf *out, const png_spec *sp, const uint8_t *packed,
                    size_t rowbytes, uint32_t w, uint32_t h)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *rows = malloc(sizeof(png_bytep) * h);
    int rc = -1;

    memset(out, 0, sizeof *out);
    if (png != NULL && info != NULL && rows != NULL) {
        for (uint32_t y = 0; y < h; y++)
            rows[y] = (png_bytep)(packed + (size_t)y * rowbytes);
        rc = write_png(png, info, out, sp, rows, w, h);
    }
    if (png != NULL)
        png_destroy_write_struct(&png, info ? &info : NULL);
    free(rows);
    return rc;
}

/* Packs samples (spp per pixel, each < 2^depth) into PNG rows. */
static uint8_t *pack(const uint16_t *s, uint32_t w, uint32_t h, int depth,
                     int spp, size_t *rowbytes)
{
    size_t rb = ((size_t)w * spp * depth + 7) / 8;
    uint8_t *buf = calloc(rb, h);

    *rowbytes = rb;
    if (buf == NULL)
        return NULL;
    for (uint32_t y = 0; y < h; y++) {
        uint8_t *row = buf + (size_t)y * rb;
        for (uint32_t i = 0; i < w * (uint32_t)spp; i++) {
            unsigned v = s[(size_t)y * w * spp + i];
            if (depth == 16) {
                row[2 * i] = (uint8_t)(v >> 8);
                row[2 * i + 1] = (uint8_t)v;
            } else if (depth == 8) {
                row[i] = (uint8_t)v;
            } else {
                unsigned bit = i * depth;
                row[bit / 8] |= (uint8_t)(v << (8 - depth - bit % 8));
            }
        }
    }
    return buf;
}

/* A gray8 w x h PNG of 'pix' (most tests need nothing else). */
static int gray_png(mbuf *out, const uint8_t *pix, uint32_t w, uint32_t h)
{
    png_spec sp = {.depth = 8, .ctype = PNG_COLOR_TYPE_GRAY};
    return make_png(out, &sp, pix, w, w, h);
}

/* A PNG written byte by byte: signature, IHDR declaring w x h 8-bit gray,
 * an IDAT with 'idat_raw' zero bytes compressed, IEND; CRCs from zlib. */
static void put_chunk(mbuf *b, const char *type, const uint8_t *data, uint32_t n)
{
    uint8_t be[4];
    uLong crc = crc32(0, (const Bytef *)type, 4);

    png_save_uint_32(be, n);
    mbuf_put(b, be, 4);
    mbuf_put(b, type, 4);
    if (n) {
        mbuf_put(b, data, n);
        crc = crc32(crc, data, n);
    }
    png_save_uint_32(be, (png_uint_32)crc);
    mbuf_put(b, be, 4);
}

/* raw: the filtered scanlines (filter byte + w bytes per row), or fewer. */
static int raw_png(mbuf *b, uint32_t w, uint32_t h, const uint8_t *raw,
                   size_t raw_len)
{
    static const uint8_t sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    uint8_t ihdr[13] = {0};
    uLongf zlen = compressBound(raw_len);
    uint8_t *z = malloc(zlen);

    memset(b, 0, sizeof *b);
    if (z == NULL || compress2(z, &zlen, raw, raw_len, 1) != Z_OK) {
        free(z);
        return -1;
    }
    png_save_uint_32(ihdr, w);
    png_save_uint_32(ihdr + 4, h);
    ihdr[8] = 8;
    mbuf_put(b, sig, 8);
    put_chunk(b, "IHDR", ihdr, 13);
    put_chunk(b, "IDAT", z, (uint32_t)zlen);    /* one IDAT, however big */
    put_chunk(b, "IEND", NULL, 0);
    free(z);
    return 0;
}

static void header_only_png(mbuf *b, uint32_t w, uint32_t h)
{
    uint8_t raw[1024] = {0};
    /* As much data as the image needs, up to 1 KiB (the probes' "tiny IDAT") */
    uint64_t need = ((uint64_t)w + 1) * h;

    raw_png(b, w, h, raw, need < sizeof raw ? (size_t)need : sizeof raw);
}

/* ------------------------------------------------------------------------
 * Synthetic digits
 * ------------------------------------------------------------------------ */

static double seg_dist(double px, double py, double ax, double ay, double bx,
                       double by)
{
    double dx = bx - ax, dy = by - ay;
    double t = ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return hypot(px - (ax + t * dx), py - (ay + t * dy));
}

/* An anti-aliased "7" drawn on a side x side canvas (white on black), its
 * strokes scaled with the canvas and offset by (ox, oy) (in 28-px units). */
static void draw_seven(uint8_t *img, uint32_t side_w, uint32_t side_h,
                       double scale, double ox, double oy)
{
    for (uint32_t y = 0; y < side_h; y++) {
        for (uint32_t x = 0; x < side_w; x++) {
            double px = (x + 0.5) / scale - ox, py = (y + 0.5) / scale - oy;
            double d = seg_dist(px, py, 8, 7, 20, 7);
            double d2 = seg_dist(px, py, 20, 7, 12, 22);
            if (d2 < d)
                d = d2;
            double v = d < 1.0 ? 255 : d < 2.0 ? 255 * (2.0 - d) : 0;
            img[(size_t)y * side_w + x] = (uint8_t)(v + 0.5);
        }
    }
}

/* Centre of mass (pixel-centre coordinates) and ink bbox of a 28x28 input. */
static void field_stats(const float *x, double *cx, double *cy, int *bw, int *bh)
{
    double s = 0, sx = 0, sy = 0;
    int x0 = 28, x1 = -1, y0 = 28, y1 = -1;

    for (int y = 0; y < 28; y++) {
        for (int c = 0; c < 28; c++) {
            double v = x[y * 28 + c];
            s += v;
            sx += v * (c + 0.5);
            sy += v * (y + 0.5);
            if (v > 0) {
                if (c < x0) x0 = c;
                if (c > x1) x1 = c;
                if (y < y0) y0 = y;
                if (y > y1) y1 = y;
            }
        }
    }
    *cx = s > 0 ? sx / s : -1;
    *cy = s > 0 ? sy / s : -1;
    *bw = x1 - x0 + 1;
    *bh = y1 - y0 + 1;
}

/* Decodes and normalises; returns the img_status. */
static int png_to_input(const mbuf *b, float out[784], char *err, size_t errlen)
{
    uint8_t *g = NULL;
    uint32_t w, h;
    int rc = img_decode_png(b->d, b->n, NULL, &g, &w, &h, err, errlen);
    if (rc != IMG_OK)
        return rc;
    rc = img_to_mnist(g, w, h, out, err, errlen);
    free(g);
    return rc;
}

/* ------------------------------------------------------------------------
 * Every colour type and bit depth decodes to the right gray values
 * ------------------------------------------------------------------------ */

#define PW 17
#define PH 11

static unsigned comp_white(unsigned g, unsigned a)
{
    return (g * a + 255u * (255u - a) + 127u) / 255u;
}

/* Sample k of pixel i, any 16-bit value; alpha gets 0 and max at pixels 0
 * and 1 so both ends are always covered. */
static unsigned pat(int i, int k, int depth)
{
    unsigned v = (unsigned)(i * 4099 + k * 9001 + (i * i) * 37) & 0xFFFFu;
    return depth == 16 ? v : (v >> 3) & ((1u << depth) - 1u);
}

typedef struct {
    const char *name;
    int ctype, depth, trns;
} fmt_case;

/* Builds the PNG for one case into *b and the expected gray into exp. */
static int build_case(const fmt_case *fc, int interlace, mbuf *b, uint8_t *exp)
{
    int spp = fc->ctype == PNG_COLOR_TYPE_GRAY ? 1
            : fc->ctype == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
            : fc->ctype == PNG_COLOR_TYPE_RGB ? 3
            : fc->ctype == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : 1;
    int d = fc->depth, n = PW * PH;
    unsigned max = (1u << d) - 1u;
    uint16_t s[PW * PH * 4];
    png_color pal[256];
    png_byte trns[256];
    png_color_16 tv = {0};
    png_spec sp = {.depth = d, .ctype = fc->ctype, .interlace = interlace};

    /* 8-bit view of a sample as the decoder keeps it: 16-bit keeps its high
     * byte, 1/2/4-bit gray is scaled up to 0..255. */
#define TO8(v) (d == 16 ? (v) >> 8 : d == 8 ? (v) : (v) * 255u / max)
    if (fc->ctype == PNG_COLOR_TYPE_PALETTE) {
        int npal = 1 << d;
        for (int i = 0; i < npal; i++) {
            png_byte g = (png_byte)((i * 97 + 13) & 255);
            pal[i].red = pal[i].green = pal[i].blue = g;
            trns[i] = (png_byte)(i == 0 ? 0 : (i * 53 + 7) & 255);
        }
        sp.pal = pal;
        sp.npal = npal;
        if (fc->trns) {
            sp.trns = trns;
            sp.ntrns = npal == 2 ? 1 : npal / 2 + 1; /* the rest are opaque */
        }
        for (int i = 0; i < n; i++) {
            unsigned idx = (unsigned)(i * 7 + i / PW) % (unsigned)npal;
            s[i] = (uint16_t)idx;
            unsigned a = (fc->trns && (int)idx < sp.ntrns) ? trns[idx] : 255;
            exp[i] = (uint8_t)comp_white(pal[idx].red, a);
        }
    } else {
        for (int i = 0; i < n; i++) {
            unsigned g = pat(i, 0, d);
            unsigned a = i == 0 ? 0 : i == 1 ? max : pat(i, 1, d);
            int has_alpha = fc->ctype & PNG_COLOR_MASK_ALPHA;
            for (int k = 0; k < spp; k++)
                s[i * spp + k] = (uint16_t)g;      /* gray, or R = G = B */
            if (has_alpha)
                s[i * spp + spp - 1] = (uint16_t)a;
            unsigned g8 = TO8(g), a8 = has_alpha ? TO8(a) : 255;
            exp[i] = (uint8_t)comp_white(g8, a8);
        }
        if (fc->trns) {
            /* One transparent colour: the value pixel 2 has. */
            unsigned t = s[2 * spp];
            tv.gray = tv.red = tv.green = tv.blue = (png_uint_16)t;
            sp.trns_value = &tv;
            for (int i = 0; i < n; i++)
                if (s[i * spp] == t)
                    exp[i] = 255;
        }
    }
#undef TO8
    size_t rb;
    uint8_t *packed = pack(s, PW, PH, d, spp, &rb);
    if (packed == NULL)
        return -1;
    int rc = make_png(b, &sp, packed, rb, PW, PH);
    free(packed);
    return rc;
}

static void test_formats(void)
{
    static const fmt_case cases[] = {
        {"gray1", PNG_COLOR_TYPE_GRAY, 1, 0}, {"gray2", PNG_COLOR_TYPE_GRAY, 2, 0},
        {"gray4", PNG_COLOR_TYPE_GRAY, 4, 0}, {"gray8", PNG_COLOR_TYPE_GRAY, 8, 0},
        {"gray16", PNG_COLOR_TYPE_GRAY, 16, 0},
        {"gray8_trns", PNG_COLOR_TYPE_GRAY, 8, 1},
        {"gray2_trns", PNG_COLOR_TYPE_GRAY, 2, 1},
        {"gray16_trns", PNG_COLOR_TYPE_GRAY, 16, 1},
        {"ga8", PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0},
        {"ga16", PNG_COLOR_TYPE_GRAY_ALPHA, 16, 0},
        {"rgb8", PNG_COLOR_TYPE_RGB, 8, 0}, {"rgb16", PNG_COLOR_TYPE_RGB, 16, 0},
        {"rgb8_trns", PNG_COLOR_TYPE_RGB, 8, 1},
        {"rgba8", PNG_COLOR_TYPE_RGB_ALPHA, 8, 0},
        {"rgba16", PNG_COLOR_TYPE_RGB_ALPHA, 16, 0},
        {"palette1", PNG_COLOR_TYPE_PALETTE, 1, 0},
        {"palette2", PNG_COLOR_TYPE_PALETTE, 2, 0},
        {"palette4", PNG_COLOR_TYPE_PALETTE, 4, 0},
        {"palette8", PNG_COLOR_TYPE_PALETTE, 8, 0},
        {"palette1_trns", PNG_COLOR_TYPE_PALETTE, 1, 1},
        {"palette2_trns", PNG_COLOR_TYPE_PALETTE, 2, 1},
        {"palette4_trns", PNG_COLOR_TYPE_PALETTE, 4, 1},
        {"palette8_trns", PNG_COLOR_TYPE_PALETTE, 8, 1},
    };
    char name[96], err[256];

    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int il = 0; il < 2; il++) {
            mbuf b;
            uint8_t exp[PW * PH], *g = NULL;
            uint32_t w = 0, h = 0;
            snprintf(name, sizeof name, "decode_%s%s", cases[c].name,
                     il ? "_interlaced" : "");
            TEST_BEGIN(name);
            CHECK(build_case(&cases[c], il, &b, exp) == 0, "could not make the PNG");
            int rc = img_decode_png(b.d, b.n, NULL, &g, &w, &h, err, sizeof err);
            CHECK(rc == IMG_OK, "rc %d: %s", rc, err);
            if (rc == IMG_OK) {
                CHECK(w == PW && h == PH, "size %ux%u", (unsigned)w, (unsigned)h);
                int bad = 0, first = -1;
                for (int i = 0; i < PW * PH; i++) {
                    if (g[i] != exp[i]) {
                        bad++;
                        if (first < 0)
                            first = i;
                    }
                }
                CHECK(bad == 0, "%d pixels differ, first at %d: got %u want %u",
                      bad, first, first >= 0 ? g[first] : 0,
                      first >= 0 ? exp[first] : 0);
            }
            free(g);
            free(b.d);
            TEST_END();
        }
    }
}

/* Colour to gray uses 0.299 R + 0.587 G + 0.114 B. */
static void test_rgb_weights(void)
{
    static const uint8_t rgb[][3] = {
        {255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 0}, {10, 200, 90},
        {255, 255, 255}, {0, 0, 0}, {128, 64, 32},
    };
    enum { N = sizeof rgb / sizeof rgb[0] };
    uint8_t *g = NULL;
    uint32_t w, h;
    char err[256];
    mbuf b;

    TEST_BEGIN("decode_rgb_weights_bt601");
    CHECK(img_encode_png(&rgb[0][0], N, 1, 1, &b.d, &b.n) == 0, "encode");
    int rc = img_decode_png(b.d, b.n, NULL, &g, &w, &h, err, sizeof err);
    CHECK(rc == IMG_OK && w == N && h == 1, "rc %d: %s", rc, err);
    for (int i = 0; rc == IMG_OK && i < N; i++) {
        double want = 0.299 * rgb[i][0] + 0.587 * rgb[i][1] + 0.114 * rgb[i][2];
        CHECK(fabs(g[i] - want) <= 1.0, "(%u,%u,%u) -> %u, want %.1f", rgb[i][0],
              rgb[i][1], rgb[i][2], g[i], want);
    }
    free(g);
    free(b.d);
    TEST_END();
}

/* Known composites: transparent is paper, opaque is the colour. */
static void test_alpha_over_white(void)
{
    /* RGBA pixels: transparent red, opaque red, half black, clear black,
     * opaque black. */
    uint16_t s[5 * 4] = {255, 0, 0, 0,  255, 0, 0, 255,  0, 0, 0, 128,
                         0, 0, 0, 0,  0, 0, 0, 255};
    png_spec sp = {.depth = 8, .ctype = PNG_COLOR_TYPE_RGB_ALPHA};
    size_t rb;
    uint8_t *packed = pack(s, 5, 1, 8, 4, &rb), *g = NULL;
    uint32_t w, h;
    char err[256];
    mbuf b;

    TEST_BEGIN("decode_alpha_over_white");
    CHECK(packed && make_png(&b, &sp, packed, rb, 5, 1) == 0, "make");
    int rc = img_decode_png(b.d, b.n, NULL, &g, &w, &h, err, sizeof err);
    CHECK(rc == IMG_OK, "rc %d: %s", rc, err);
    if (rc == IMG_OK) {
        CHECK(g[0] == 255, "transparent red -> %u, want 255 (paper)", g[0]);
        CHECK(g[1] == 76, "opaque red -> %u, want 76", g[1]);
        CHECK(g[2] == 127, "half-transparent black -> %u, want 127", g[2]);
        CHECK(g[3] == 255, "clear black -> %u, want 255", g[3]);
        CHECK(g[4] == 0, "opaque black -> %u, want 0", g[4]);
    }
    free(g);
    free(b.d);
    free(packed);
    TEST_END();
}

/* A drawing app's export: transparent background, black ink whose alpha is
 * the ink amount. It must read exactly like the white-on-black original. */
static void test_transparent_drawing(void)
{
    uint8_t digit[784];
    uint16_t s[784 * 4];
    float a[784], x[784];
    char err[256];
    size_t rb;
    mbuf b0, b1;

    draw_seven(digit, 28, 28, 1.0, 0, 0);
    for (int i = 0; i < 784; i++) {
        s[4 * i] = s[4 * i + 1] = s[4 * i + 2] = 0;
        s[4 * i + 3] = digit[i];
    }
    png_spec sp = {.depth = 8, .ctype = PNG_COLOR_TYPE_RGB_ALPHA};
    uint8_t *packed = pack(s, 28, 28, 8, 4, &rb);

    TEST_BEGIN("to_mnist_transparent_background_drawing");
    CHECK(packed && make_png(&b1, &sp, packed, rb, 28, 28) == 0, "make");
    CHECK(gray_png(&b0, digit, 28, 28) == 0, "make");
    int r0 = png_to_input(&b0, a, err, sizeof err);
    CHECK(r0 == IMG_OK, "original: %d %s", r0, err);
    int r1 = png_to_input(&b1, x, err, sizeof err);
    CHECK(r1 == IMG_OK, "transparent: %d %s", r1, err);
    CHECK(r0 == IMG_OK && r1 == IMG_OK && memcmp(a, x, sizeof a) == 0,
          "transparent-background drawing differs from the original");
    free(packed);
    free(b0.d);
    free(b1.d);
    TEST_END();
}

/* ------------------------------------------------------------------------
 * img_to_mnist
 * ------------------------------------------------------------------------ */

static void test_mnist_roundtrip_28(void)
{
    uint8_t digit[784], inv[784];
    float x[784], y[784];
    char err[256];
    mbuf b;

    draw_seven(digit, 28, 28, 1.0, 0, 0);
    for (int i = 0; i < 784; i++)
        inv[i] = (uint8_t)(255 - digit[i]);

    TEST_BEGIN("to_mnist_28x28_exact_roundtrip");
    CHECK(gray_png(&b, digit, 28, 28) == 0, "make");
    int rc = png_to_input(&b, x, err, sizeof err);
    CHECK(rc == IMG_OK, "rc %d: %s", rc, err);
    int bad = 0;
    for (int i = 0; i < 784; i++)
        bad += x[i] != (float)digit[i] / 255.0f;
    CHECK(bad == 0, "%d of 784 values differ from pixel/255", bad);
    free(b.d);
    TEST_END();

    TEST_BEGIN("to_mnist_28x28_inverted_same_as_original");
    CHECK(gray_png(&b, inv, 28, 28) == 0, "make");
    rc = png_to_input(&b, y, err, sizeof err);
    CHECK(rc == IMG_OK, "rc %d: %s", rc, err);
    CHECK(memcmp(x, y, sizeof x) == 0, "dark-on-light 28x28 differs");
    free(b.d);
    TEST_END();
}

/* Checks centring and size of a normalised digit. */
static void check_normalised(const float *x, const char *what)
{
    double cx, cy;
    int bw, bh;

    field_stats(x, &cx, &cy, &bw, &bh);
    CHECK(fabs(cx - 14.0) <= 1.0 && fabs(cy - 14.0) <= 1.0,
          "%s: centre of mass (%.2f, %.2f), want (14, 14) +- 1", what, cx, cy);
    int longer = bw > bh ? bw : bh;
    CHECK(longer >= 19 && longer <= 21, "%s: bbox %dx%d, longer side %d, want 20 +- 1",
          what, bw, bh, longer);
    for (int i = 0; i < 784; i++) {
        if (!(x[i] >= 0.0f && x[i] <= 1.0f)) {
            CHECK(0, "%s: value %d = %f out of [0,1]", what, i, x[i]);
            break;
        }
    }
}

static void test_mnist_resize(void)
{
    char err[256];
    float x[784], ref[784];
    mbuf b;

    /* 5x nearest-neighbour upscale of the 28x28 digit. */
    uint8_t *big = malloc(140 * 140);
    uint8_t digit[784];
    draw_seven(digit, 28, 28, 1.0, 0, 0);
    for (int y = 0; y < 140; y++)
        for (int c = 0; c < 140; c++)
            big[y * 140 + c] = digit[(y / 5) * 28 + c / 5];

    TEST_BEGIN("to_mnist_upscaled_140x140_centred_and_fitted");
    CHECK(gray_png(&b, big, 140, 140) == 0, "make");
    int rc = png_to_input(&b, x, err, sizeof err);
    CHECK(rc == IMG_OK, "rc %d: %s", rc, err);
    if (rc == IMG_OK)
        check_normalised(x, "140x140");
    free(b.d);
    TEST_END();

    /* The same digit dark on white: same result. */
    TEST_BEGIN("to_mnist_upscaled_inverted_same");
    for (int i = 0; i < 140 * 140; i++)
        big[i] = (uint8_t)(255 - big[i]);
    CHECK(gray_png(&b, big, 140, 140) == 0, "make");
    rc = png_to_input(&b, ref, err, sizeof err);
    CHECK(rc == IMG_OK, "rc %d: %s", rc, err);
    CHECK(memcmp(x, ref, sizeof x) == 0, "dark-on-light 140x140 differs");
    free(b.d);
    free(big);
    TEST_END();

    /* A small digit in the top-left of a 400x300 canvas. */
    TEST_BEGIN("to_mnist_off_centre_in_large_canvas");
    uint8_t *canvas = malloc(400 * 300);
    draw_seven(canvas, 400, 300, 3.0, 5, 3);
    CHECK(gray_png(&b, canvas, 400, 300) == 0, "make");
    rc = png_to_input(&b, x, err, sizeof err);
    CHECK(rc == IMG_OK, "rc %d: %s", rc, err);
    if (rc == IMG_OK)
        check_normalised(x, "400x300 off-centre");
    free(b.d);
    TEST_END();

    /* The same on gray paper (background 200, ink 40): background removed. */
    TEST_BEGIN("to_mnist_gray_paper");
    for (int i = 0; i < 400 * 300; i++)
        canvas[i] = (uint8_t)(200 - canvas[i] * 160 / 255);
    CHECK(gray_png(&b, canvas, 400, 300) == 0, "make");
    rc = png_to_input(&b, ref, err, sizeof err);
    CHECK(rc == IMG_OK, "rc %d: %s", rc, err);
    if (rc == IMG_OK) {
        check_normalised(ref, "gray paper");
        double maxdiff = 0;
        for (int i = 0; i < 784; i++)
            maxdiff = fmax(maxdiff, fabs(ref[i] - x[i]));
        CHECK(maxdiff < 0.05, "gray paper differs from black background by %.3f",
              maxdiff);
        int bgnz = 0;
        for (int i = 0; i < 28; i++)
            bgnz += ref[i] != 0.0f;     /* top row is background */
        CHECK(bgnz == 0, "background not black: %d nonzero in row 0", bgnz);
    }
    free(b.d);
    free(canvas);
    TEST_END();

    /* A thin vertical stroke keeps its aspect ratio: 20 tall, narrow. */
    TEST_BEGIN("to_mnist_keeps_aspect_ratio");
    uint8_t *one = calloc(100 * 200, 1);
    for (int y = 20; y < 180; y++)
        for (int c = 45; c < 61; c++)
            one[y * 100 + c] = 255;
    CHECK(gray_png(&b, one, 100, 200) == 0, "make");
    rc = png_to_input(&b, x, err, sizeof err);
    CHECK(rc == IMG_OK, "rc %d: %s", rc, err);
    if (rc == IMG_OK) {
        double cx, cy;
        int bw, bh;
        field_stats(x, &cx, &cy, &bw, &bh);
        CHECK(bh == 20 && bw == 2, "bbox %dx%d, want 2x20 (160x16 scaled by 1/8)",
              bw, bh);
        CHECK(fabs(cx - 14) <= 1 && fabs(cy - 14) <= 1, "com (%.2f, %.2f)", cx, cy);
    }
    free(b.d);
    free(one);
    TEST_END();

    /* A digit smaller than 20 px is scaled up to 20. */
    TEST_BEGIN("to_mnist_small_digit_scaled_up");
    uint8_t *sm = malloc(60 * 60);
    draw_seven(sm, 60, 60, 0.5, 30, 40);
    CHECK(gray_png(&b, sm, 60, 60) == 0, "make");
    rc = png_to_input(&b, x, err, sizeof err);
    CHECK(rc == IMG_OK, "rc %d: %s", rc, err);
    if (rc == IMG_OK)
        check_normalised(x, "small digit");
    free(b.d);
    free(sm);
    TEST_END();
}

static void test_mnist_empty(void)
{
    char err[256] = "";
    float x[784];
    uint8_t *img = calloc(100 * 80, 1);

    TEST_BEGIN("to_mnist_blank_is_empty");
    CHECK(img_to_mnist(img, 28, 28, x, err, sizeof err) == IMG_ERR_EMPTY,
          "black 28x28 not EMPTY");
    CHECK(img_to_mnist(img, 100, 80, x, err, sizeof err) == IMG_ERR_EMPTY,
          "black 100x80 not EMPTY");
    CHECK(strlen(err) > 0, "no message");
    memset(img, 255, 100 * 80);
    CHECK(img_to_mnist(img, 100, 80, x, err, sizeof err) == IMG_ERR_EMPTY,
          "white paper 100x80 not EMPTY");
    memset(img, 20, 100 * 80);      /* faint, below the ink threshold */
    CHECK(img_to_mnist(img, 28, 28, x, err, sizeof err) == IMG_ERR_EMPTY,
          "faint 28x28 not EMPTY");
    CHECK(img_to_mnist(img, 0, 0, x, err, sizeof err) == IMG_ERR_EMPTY, "0x0");
    CHECK(img_to_mnist(NULL, 28, 28, x, err, sizeof err) == IMG_ERR_EMPTY, "NULL");
    TEST_END();

    TEST_BEGIN("to_mnist_blank_png_is_empty");
    mbuf b;
    memset(img, 0, 100 * 80);
    CHECK(gray_png(&b, img, 100, 80) == 0, "make");
    int rc = png_to_input(&b, x, err, sizeof err);
    CHECK(rc == IMG_ERR_EMPTY, "rc %d, want IMG_ERR_EMPTY", rc);
    free(b.d);
    free(img);
    TEST_END();

    /* Tiny images: one ink pixel, a 1-pixel-wide image. */
    TEST_BEGIN("to_mnist_tiny_images");
    uint8_t one = 255, col[5] = {0, 0, 255, 0, 0};
    rc = img_to_mnist(&one, 1, 1, x, err, sizeof err);
    CHECK(rc == IMG_ERR_EMPTY || rc == IMG_OK, "1x1: rc %d", rc);
    rc = img_to_mnist(col, 1, 5, x, err, sizeof err);
    CHECK(rc == IMG_OK, "1x5: rc %d: %s", rc, err);
    TEST_END();
}

/* ------------------------------------------------------------------------
 * Errors and limits
 * ------------------------------------------------------------------------ */

static int decode_status(const uint8_t *p, size_t n, const img_limits *lim,
                         char *err, size_t errlen)
{
    uint8_t *g = (uint8_t *)1;
    uint32_t w = 7, h = 7;
    int rc = img_decode_png(p, n, lim, &g, &w, &h, err, errlen);
    if (rc == IMG_OK)
        free(g);
    else if (g != NULL || w != 0 || h != 0)
        return 99;      /* outputs must be cleared on error */
    return rc;
}

static void test_errors(void)
{
    char err[256];
    uint8_t digit[784];
    mbuf b;

    draw_seven(digit, 28, 28, 1.0, 0, 0);
    CHECK(gray_png(&b, digit, 28, 28) == 0, "make");

    TEST_BEGIN("error_empty_and_not_png");
    CHECK(decode_status(NULL, 0, NULL, err, sizeof err) == IMG_ERR_NOT_PNG, "NULL");
    CHECK(decode_status(b.d, 0, NULL, err, sizeof err) == IMG_ERR_NOT_PNG, "len 0");
    CHECK(decode_status(b.d, 7, NULL, err, sizeof err) == IMG_ERR_NOT_PNG, "7 bytes");
    const char *gif = "GIF89a\x01\x00\x01\x00\x00\x00\x00;";
    CHECK(decode_status((const uint8_t *)gif, 14, NULL, err, sizeof err) ==
          IMG_ERR_NOT_PNG, "GIF");
    const char *txt = "{\"image\": \"not a png at all\"}";
    CHECK(decode_status((const uint8_t *)txt, strlen(txt), NULL, err, sizeof err) ==
          IMG_ERR_NOT_PNG, "JSON");
    CHECK(strstr(err, "PNG") != NULL, "message: %s", err);
    TEST_END();

    TEST_BEGIN("error_truncated");
    size_t cuts[] = {8, 12, 20, 33, 37, 41, b.n / 2, b.n - 13, b.n - 12, b.n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        err[0] = '\0';
        int rc = decode_status(b.d, cuts[i], NULL, err, sizeof err);
        CHECK(rc == IMG_ERR_CORRUPT, "cut at %zu of %zu: rc %d", cuts[i], b.n, rc);
        CHECK(strncmp(err, "corrupt PNG: ", 13) == 0 && strlen(err) > 13,
              "cut at %zu: message '%s'", cuts[i], err);
    }
    CHECK(decode_status(b.d, b.n, NULL, err, sizeof err) == IMG_OK, "whole file");
    TEST_END();

    TEST_BEGIN("error_bad_crc");
    uint8_t *c = malloc(b.n);
    memcpy(c, b.d, b.n);
    c[32] ^= 0x01;      /* last byte of the IHDR CRC */
    int rc = decode_status(c, b.n, NULL, err, sizeof err);
    CHECK(rc == IMG_ERR_CORRUPT, "IHDR CRC: rc %d", rc);
    CHECK(strstr(err, "CRC") != NULL, "libpng's message expected: %s", err);
    memcpy(c, b.d, b.n);
    c[16 + 3] ^= 0x40;  /* width changed, CRC now wrong */
    CHECK(decode_status(c, b.n, NULL, err, sizeof err) == IMG_ERR_CORRUPT, "IHDR data");
    memcpy(c, b.d, b.n);
    c[33 + 8 + 5] ^= 0x10; /* inside the IDAT data */
    CHECK(decode_status(c, b.n, NULL, err, sizeof err) == IMG_ERR_CORRUPT,
          "IDAT data: rc %d", decode_status(c, b.n, NULL, err, sizeof err));
    memcpy(c, b.d, b.n);
    c[b.n - 13] ^= 0x01; /* the IDAT CRC */
    CHECK(decode_status(c, b.n, NULL, err, sizeof err) == IMG_ERR_CORRUPT, "IDAT CRC");
    memcpy(c, b.d, b.n);
    c[33] = 0xFF;       /* IDAT length over 2^31 */
    CHECK(decode_status(c, b.n, NULL, err, sizeof err) == IMG_ERR_CORRUPT,
          "IDAT length: rc %d", decode_status(c, b.n, NULL, err, sizeof err));
    free(c);
    TEST_END();

    TEST_BEGIN("error_bad_ihdr");
    mbuf hb;
    header_only_png(&hb, 0, 10);    /* zero width: invalid IHDR */
    CHECK(decode_status(hb.d, hb.n, NULL, err, sizeof err) == IMG_ERR_CORRUPT,
          "0-width: %s", err);
    free(hb.d);
    header_only_png(&hb, 10, 10);
    hb.d[24] = 3;   /* bit depth 3 */
    png_save_uint_32(hb.d + 29, (png_uint_32)crc32(0, hb.d + 12, 17));
    CHECK(decode_status(hb.d, hb.n, NULL, err, sizeof err) == IMG_ERR_CORRUPT,
          "depth 3: %s", err);
    free(hb.d);
    header_only_png(&hb, 20, 20);   /* 1 KiB of data for 20*21 bytes: fine */
    CHECK(decode_status(hb.d, hb.n, NULL, err, sizeof err) == IMG_OK,
          "valid header-only png: %s", err);
    free(hb.d);
    TEST_END();

    TEST_BEGIN("limit_dimension_bomb_100000x100000");
    header_only_png(&hb, 100000, 100000);
    rc = decode_status(hb.d, hb.n, NULL, err, sizeof err);
    CHECK(rc == IMG_ERR_TOO_LARGE, "rc %d: %s", rc, err);
    CHECK(strstr(err, "100000x100000") != NULL, "message names the size: %s", err);
    free(hb.d);
    header_only_png(&hb, 5000, 10);     /* wider than 4096, few pixels */
    rc = decode_status(hb.d, hb.n, NULL, err, sizeof err);
    CHECK(rc == IMG_ERR_TOO_LARGE, "5000x10: rc %d: %s", rc, err);
    free(hb.d);
    header_only_png(&hb, 10, 5000);
    rc = decode_status(hb.d, hb.n, NULL, err, sizeof err);
    CHECK(rc == IMG_ERR_TOO_LARGE, "10x5000: rc %d: %s", rc, err);
    free(hb.d);
    TEST_END();

    TEST_BEGIN("limit_max_pixels");
    header_only_png(&hb, 4096, 1025);   /* each side fits; 4,198,400 pixels */
    rc = decode_status(hb.d, hb.n, NULL, err, sizeof err);
    CHECK(rc == IMG_ERR_TOO_LARGE, "4096x1025: rc %d: %s", rc, err);
    free(hb.d);
    img_limits lim;
    img_limits_default(&lim);
    lim.max_pixels = 28 * 28 - 1;
    rc = decode_status(b.d, b.n, &lim, err, sizeof err);
    CHECK(rc == IMG_ERR_TOO_LARGE, "28x28 with max_pixels 783: rc %d", rc);
    lim.max_pixels = 28 * 28;
    rc = decode_status(b.d, b.n, &lim, err, sizeof err);
    CHECK(rc == IMG_OK, "28x28 with max_pixels 784: rc %d: %s", rc, err);
    img_limits_default(&lim);
    lim.max_width = 27;
    rc = decode_status(b.d, b.n, &lim, err, sizeof err);
    CHECK(rc == IMG_ERR_TOO_LARGE, "max_width 27: rc %d", rc);
    img_limits_default(&lim);
    lim.max_height = 28;
    rc = decode_status(b.d, b.n, &lim, err, sizeof err);
    CHECK(rc == IMG_OK, "max_height 28: rc %d: %s", rc, err);
    TEST_END();

    TEST_BEGIN("limits_default_values");
    img_limits_default(&lim);
    CHECK(lim.max_width == 4096 && lim.max_height == 4096 &&
          lim.max_pixels == 4194304 && lim.max_chunk_bytes == 1048576,
          "defaults %u %u %llu %u", (unsigned)lim.max_width, (unsigned)lim.max_height,
          (unsigned long long)lim.max_pixels, (unsigned)lim.max_chunk_bytes);
    TEST_END();

    free(b.d);
}

/* A PNG of the digit with an extra chunk of n bytes before IDAT. */
static int digit_with_chunk(mbuf *b, const char *name, size_t n)
{
    uint8_t digit[784];
    uint8_t *data = malloc(n ? n : 1);
    png_spec sp = {.depth = 8, .ctype = PNG_COLOR_TYPE_GRAY, .extra_name = name,
                   .extra_len = n};
    int rc;

    if (data == NULL)
        return -1;
    /* keyword "Comment", NUL, method 0, then bytes that are not zlib */
    memset(data, 'x', n);
    if (n > 9) {
        memcpy(data, "Comment", 8);
        data[8] = 0;
    }
    sp.extra = data;
    draw_seven(digit, 28, 28, 1.0, 0, 0);
    rc = make_png(b, &sp, digit, 28, 28, 28);
    free(data);
    return rc;
}

static void test_chunk_limits(void)
{
    char err[256];
    img_limits lim;
    mbuf b;
    int rc;

    TEST_BEGIN("limit_big_ztxt_refused");
    CHECK(digit_with_chunk(&b, "zTXt", 2u << 20) == 0, "make");
    rc = decode_status(b.d, b.n, NULL, err, sizeof err);
    CHECK(rc == IMG_ERR_TOO_LARGE, "2 MiB zTXt, 1 MiB limit: rc %d: %s", rc, err);
    CHECK(strstr(err, "too large") != NULL, "message: %s", err);
    free(b.d);
    img_limits_default(&lim);
    lim.max_chunk_bytes = 1000;
    CHECK(digit_with_chunk(&b, "zTXt", 5000) == 0, "make");
    rc = decode_status(b.d, b.n, &lim, err, sizeof err);
    CHECK(rc == IMG_ERR_TOO_LARGE, "5000-byte zTXt, 1000 limit: rc %d: %s", rc, err);
    rc = decode_status(b.d, b.n, NULL, err, sizeof err);
    CHECK(rc == IMG_OK, "5000-byte zTXt, default limit: rc %d: %s", rc, err);
    free(b.d);
    TEST_END();

    TEST_BEGIN("limit_big_iccp_and_unknown_chunks_refused");
    img_limits_default(&lim);
    lim.max_chunk_bytes = 4096;
    CHECK(digit_with_chunk(&b, "iCCP", 100000) == 0, "make");
    rc = decode_status(b.d, b.n, &lim, err, sizeof err);
    CHECK(rc == IMG_ERR_TOO_LARGE, "big iCCP: rc %d: %s", rc, err);
    free(b.d);
    CHECK(digit_with_chunk(&b, "tEXt", 100000) == 0, "make");
    rc = decode_status(b.d, b.n, &lim, err, sizeof err);
    CHECK(rc == IMG_ERR_TOO_LARGE, "big tEXt: rc %d: %s", rc, err);
    free(b.d);
    CHECK(digit_with_chunk(&b, "prVt", 100000) == 0, "make");
    rc = decode_status(b.d, b.n, &lim, err, sizeof err);
    CHECK(rc == IMG_ERR_TOO_LARGE, "big private chunk: rc %d: %s", rc, err);
    free(b.d);
    TEST_END();

    /* The chunk limit is for metadata: an image whose pixels come in one
     * IDAT bigger than max_chunk_bytes (as some encoders write) decodes. */
    TEST_BEGIN("limit_single_idat_over_chunk_limit_allowed");
    uint32_t n = 1100;
    size_t raw_len = (size_t)(n + 1) * n;
    uint8_t *raw = malloc(raw_len), *g = NULL;
    uint32_t seed = 1, w, h;
    for (size_t i = 0; i < raw_len; i++) {
        seed = seed * 1664525u + 1013904223u;
        raw[i] = i % (n + 1) == 0 ? 0 : (uint8_t)(seed >> 24);
    }
    CHECK(raw_png(&b, n, n, raw, raw_len) == 0, "make");
    CHECK(b.n > (1u << 20) + 4096, "IDAT only %zu bytes", b.n);
    rc = img_decode_png(b.d, b.n, NULL, &g, &w, &h, err, sizeof err);
    CHECK(rc == IMG_OK && w == n && h == n, "rc %d: %s", rc, err);
    int bad = 0;
    for (uint32_t y = 0; rc == IMG_OK && y < n; y++)
        bad += memcmp(g + (size_t)y * n, raw + (size_t)y * (n + 1) + 1, n) != 0;
    CHECK(bad == 0, "%d rows differ", bad);
    free(g);
    free(raw);
    free(b.d);
    TEST_END();

    TEST_BEGIN("small_ancillary_chunks_ignored");
    /* Malformed but small metadata does not stop decoding. */
    CHECK(digit_with_chunk(&b, "zTXt", 200) == 0, "make");
    rc = decode_status(b.d, b.n, NULL, err, sizeof err);
    CHECK(rc == IMG_OK, "small bad zTXt: rc %d: %s", rc, err);
    free(b.d);
    CHECK(digit_with_chunk(&b, "iCCP", 300) == 0, "make");
    rc = decode_status(b.d, b.n, NULL, err, sizeof err);
    CHECK(rc == IMG_OK, "small bad iCCP: rc %d: %s", rc, err);
    free(b.d);
    TEST_END();
}

/* ------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------ */

static void test_encode(void)
{
    uint8_t pix[5 * 3 * 3], *out = NULL, *g = NULL;
    size_t len = 0;
    uint32_t w, h;
    char err[256];

    for (int i = 0; i < 15; i++)
        pix[i] = (uint8_t)(i * 17);
    TEST_BEGIN("encode_gray_roundtrip");
    CHECK(img_encode_png(pix, 5, 3, 0, &out, &len) == 0, "encode");
    int rc = img_decode_png(out, len, NULL, &g, &w, &h, err, sizeof err);
    CHECK(rc == IMG_OK && w == 5 && h == 3, "rc %d: %s", rc, err);
    CHECK(rc == IMG_OK && memcmp(g, pix, 15) == 0, "pixels differ");
    free(out);
    free(g);
    g = NULL;
    TEST_END();

    TEST_BEGIN("encode_rgb_roundtrip");
    for (int i = 0; i < 15; i++)
        pix[3 * i] = pix[3 * i + 1] = pix[3 * i + 2] = (uint8_t)(255 - i * 13);
    CHECK(img_encode_png(pix, 5, 3, 1, &out, &len) == 0, "encode");
    CHECK(len > 8 && out[25] == PNG_COLOR_TYPE_RGB, "not an RGB PNG");
    rc = img_decode_png(out, len, NULL, &g, &w, &h, err, sizeof err);
    CHECK(rc == IMG_OK && w == 5 && h == 3, "rc %d: %s", rc, err);
    for (int i = 0; rc == IMG_OK && i < 15; i++)
        CHECK(g[i] == 255 - i * 13, "pixel %d: %u", i, g[i]);
    free(out);
    free(g);
    TEST_END();

    TEST_BEGIN("encode_bad_arguments");
    CHECK(img_encode_png(NULL, 5, 3, 0, &out, &len) == -1 && out == NULL, "NULL pix");
    CHECK(img_encode_png(pix, 0, 3, 0, &out, &len) == -1, "width 0");
    CHECK(img_encode_png(pix, 5, 0, 0, &out, &len) == -1, "height 0");
    CHECK(img_encode_png(pix, 5, 3, 0, NULL, &len) == -1, "NULL out");
    CHECK(img_encode_png(pix, 5, 3, 0, &out, NULL) == -1, "NULL outlen");
    CHECK(img_encode_png(pix, 0x80000000u, 1, 0, &out, &len) == -1, "width 2^31");
    TEST_END();

    /* A bigger image, the size of the 5x5 sample grid. */
    TEST_BEGIN("encode_large_rgb");
    uint32_t gw = 5 * 28 * 4, gh = 5 * 28 * 4;
    uint8_t *grid = malloc((size_t)gw * gh * 3);
    for (size_t i = 0; i < (size_t)gw * gh * 3; i++)
        grid[i] = (uint8_t)((i * 2654435761u) >> 24);
    g = NULL;
    CHECK(img_encode_png(grid, gw, gh, 1, &out, &len) == 0, "encode");
    rc = img_decode_png(out, len, NULL, &g, &w, &h, err, sizeof err);
    CHECK(rc == IMG_OK && w == gw && h == gh, "rc %d: %s", rc, err);
    free(out);
    free(g);
    free(grid);
    TEST_END();
}

/* ------------------------------------------------------------------------
 * Real MNIST digits
 * ------------------------------------------------------------------------ */

static void test_mnist_data(void)
{
    const char *dir = test_data_dir();
    mnist_set s;
    char err[256];

    if (dir == NULL) {
        TEST_SKIP("mnist_t10k_first100_png_roundtrip", "MNISTD_DATA not set");
        TEST_SKIP("mnist_t10k_upscaled_normalised", "MNISTD_DATA not set");
        return;
    }
    TEST_BEGIN("mnist_t10k_first100_png_roundtrip");
    int lrc = mnist_load_dir(&s, dir, "t10k", err, sizeof err);
    CHECK(lrc == 0, "load: %s", err);
    if (lrc != 0) {
        TEST_END();
        return;
    }
    float want[784], got[784];
    int bad_images = 0;
    for (int i = 0; i < 100 && i < s.n; i++) {
        uint8_t *png = NULL, *g = NULL;
        size_t len = 0;
        uint32_t w, h;
        mnist_to_float(&s, i, 1, want);
        if (img_encode_png(s.images + (size_t)i * 784, 28, 28, 0, &png, &len) != 0) {
            bad_images++;
            continue;
        }
        int rc = img_decode_png(png, len, NULL, &g, &w, &h, err, sizeof err);
        if (rc == IMG_OK)
            rc = img_to_mnist(g, w, h, got, err, sizeof err);
        if (rc != IMG_OK || memcmp(want, got, sizeof want) != 0) {
            if (bad_images == 0)
                CHECK(0, "image %d: rc %d %s", i, rc, rc ? err : "values differ");
            bad_images++;
        }
        free(png);
        free(g);
    }
    CHECK(bad_images == 0, "%d of 100 images differ", bad_images);
    TEST_END();

    /* 3x upscales of real digits normalise to centred 20-px digits. */
    TEST_BEGIN("mnist_t10k_upscaled_normalised");
    uint8_t big[84 * 84];
    int off = 0;
    for (int i = 0; i < 50 && i < s.n; i++) {
        const uint8_t *src = s.images + (size_t)i * 784;
        for (int y = 0; y < 84; y++)
            for (int c = 0; c < 84; c++)
                big[y * 84 + c] = src[(y / 3) * 28 + c / 3];
        if (img_to_mnist(big, 84, 84, got, err, sizeof err) != IMG_OK) {
            off++;
            continue;
        }
        double cx, cy;
        int bw, bh;
        field_stats(got, &cx, &cy, &bw, &bh);
        int longer = bw > bh ? bw : bh;
        if (fabs(cx - 14) > 1 || fabs(cy - 14) > 1 || longer < 19 || longer > 21) {
            if (off == 0)
                CHECK(0, "image %d: com (%.2f, %.2f), bbox %dx%d", i, cx, cy, bw, bh);
            off++;
        }
    }
    CHECK(off == 0, "%d of 50 upscaled digits off", off);
    mnist_free(&s);
    TEST_END();
}

int main(void)
{
    test_formats();
    test_rgb_weights();
    test_alpha_over_white();
    test_transparent_drawing();
    test_mnist_roundtrip_28();
    test_mnist_resize();
    test_mnist_empty();
    test_errors();
    test_chunk_limits();
    test_encode();
    test_mnist_data();
    TEST_EXIT();
}
