/* tests/tools/mkpng.c -- makes PNG files for the tests.
 *
 *   mkpng --mnist DIR --index I [--type T] [--interlace] [--invert]
 *         [--scale K] [--transparent-bg] -o out.png [--raw-out f.bin]
 *       MNIST t10k image I as a PNG of type T:
 *         gray gray16 ga ga16 rgb rgb16 rgba rgba16 palette palette-trns
 *         gray1 gray2 gray4
 *       --invert          dark digit on white
 *       --scale K         nearest-neighbour upscale to 28K x 28K
 *       --transparent-bg  the way a drawing app exports: the background fully
 *                         transparent, the digit black with its ink as alpha
 *                         (type rgba unless ga/ga16/rgba16/palette-trns given)
 *       palette-trns always stores the digit that way (black, alpha in tRNS).
 *       Every type but gray1/2/4 stores the image exactly, so mnistd sees the
 *       same 784 values whatever the type.
 *   mkpng --label --mnist DIR --index I        prints the label
 *   mkpng --blank W H -o f.png                 all black W x H (no ink)
 *   mkpng --bar W H [--type T] [--invert] ... -o f.png
 *                                              a "1" (white bar, 10% x 70%, centred)
 *                                              that needs no data set
 *   mkpng --huge-header W H -o f.png           an IHDR declaring W x H with a
 *                                              tiny IDAT (decompression bomb probe)
 *   mkpng --big-ztxt BYTES -o f.png            a small digit PNG carrying a zTXt
 *                                              chunk of about BYTES bytes
 *   mkpng --raw-out f.bin IN.png               the 784 float32 (host order)
 *                                              mnistd computes for IN.png
 *       With -o and --raw-out both, the floats are those of the PNG written.
 *       A PNG mnistd rejects: exit 3, "img_status <code>: <message>" on stderr.
 *
 * Exit status: 0 ok, 1 failure, 2 usage, 3 mnistd rejects the PNG. */
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "model/png.h"
#include "model/preprocess.h"
#include "model/mnist.h"

typedef enum {
    T_GRAY, T_GRAY16, T_GA, T_GA16, T_RGB, T_RGB16, T_RGBA, T_RGBA16,
    T_PALETTE, T_PALETTE_TRNS, T_GRAY1, T_GRAY2, T_GRAY4
} ptype;

static const struct { const char *name; ptype t; } type_names[] = {
    {"gray", T_GRAY}, {"gray16", T_GRAY16}, {"ga", T_GA}, {"ga16", T_GA16},
    {"rgb", T_RGB}, {"rgb16", T_RGB16}, {"rgba", T_RGBA}, {"rgba16", T_RGBA16},
    {"palette", T_PALETTE}, {"palette-trns", T_PALETTE_TRNS},
    {"gray1", T_GRAY1}, {"gray2", T_GRAY2}, {"gray4", T_GRAY4},
};

static void usage(void)
{
    fprintf(stderr,
        "usage: mkpng --mnist DIR --index I [--type T] [--interlace] [--invert]\n"
        "             [--scale K] [--transparent-bg] -o out.png [--raw-out f.bin]\n"
        "       mkpng --label --mnist DIR --index I\n"
        "       mkpng --blank W H -o f.png\n"
        "       mkpng --bar W H [--type T] [--interlace] [--invert] -o f.png\n"
        "       mkpng --huge-header W H -o f.png\n"
        "       mkpng --big-ztxt BYTES -o f.png\n"
        "       mkpng --raw-out f.bin IN.png\n"
        "types: gray gray16 ga ga16 rgb rgb16 rgba rgba16 palette palette-trns\n"
        "       gray1 gray2 gray4\n");
}

static int parse_u32(const char *s, uint32_t *out)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s == '\0' || *s == '-')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* A PNG being written: libpng structs plus the output file. */
typedef struct {
    FILE *f;
    png_structp png;
    png_infop info;
} writer;

static void on_write_error(png_structp png, png_const_charp msg)
{
    fprintf(stderr, "mkpng: libpng: %s\n", msg);
    png_longjmp(png, 1);
}

static int writer_open(writer *wr, const char *path)
{
    memset(wr, 0, sizeof *wr);
    wr->f = fopen(path, "wb");
    if (wr->f == NULL) {
        fprintf(stderr, "mkpng: %s: %s\n", path, strerror(errno));
        return -1;
    }
    wr->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL,
                                      on_write_error, NULL);
    if (wr->png != NULL)
        wr->info = png_create_info_struct(wr->png);
    if (wr->png == NULL || wr->info == NULL) {
        fprintf(stderr, "mkpng: out of memory\n");
        return -1;
    }
    /* Let the probes declare any size PNG allows. */
    png_set_user_limits(wr->png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_init_io(wr->png, wr->f);
    return 0;
}

static int writer_close(writer *wr, int ok)
{
    int rc = ok ? 0 : -1;

    if (wr->png != NULL)
        png_destroy_write_struct(&wr->png, wr->info ? &wr->info : NULL);
    if (wr->f != NULL && fclose(wr->f) != 0)
        rc = -1;
    return rc;
}

/* Writes the prepared rows as a PNG; the setjmp lives here, where no local
 * changes after it, so libpng's longjmp clobbers nothing. */
static int emit_png(const char *path, png_bytep *rows, uint32_t w, uint32_t h,
                    int depth, int ctype, int interlace, int alpha_ink)
{
    writer wr;
    png_color pal[256];
    png_byte trns[256];
    volatile int ok = 0;

    if (writer_open(&wr, path) != 0)
        goto done;
    if (setjmp(png_jmpbuf(wr.png)))
        goto done;
    png_set_IHDR(wr.png, wr.info, w, h, depth, ctype,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (ctype == PNG_COLOR_TYPE_PALETTE) {
        for (int i = 0; i < 256; i++) {
            png_byte c = (png_byte)(alpha_ink ? 0 : i);
            pal[i].red = pal[i].green = pal[i].blue = c;
            trns[i] = (png_byte)i;
        }
        png_set_PLTE(wr.png, wr.info, pal, 256);
        if (alpha_ink)
            png_set_tRNS(wr.png, wr.info, trns, 256, NULL);
    }
    png_write_info(wr.png, wr.info);
    png_write_image(wr.png, rows);
    png_write_end(wr.png, NULL);
    ok = 1;
done:
    if (writer_close(&wr, ok) != 0) {
        fprintf(stderr, "mkpng: could not write %s\n", path);
        return -1;
    }
    return 0;
}

/* Writes a w x h image of type t from 8-bit "ink" values v (0 = background).
 * 'invert' stores 255 - v (dark on light); 'alpha_ink' stores black with the
 * ink as alpha. Rows are built into one buffer, then written by libpng. */
static int write_typed(const char *path, const uint8_t *v, uint32_t w,
                       uint32_t h, ptype t, int interlace, int invert,
                       int alpha_ink)
{
    int depth = 8, ctype = PNG_COLOR_TYPE_GRAY, spp = 1, rc;
    uint8_t *buf = NULL;
    png_bytep *rows = NULL;
    size_t rowbytes;

    switch (t) {
    case T_GRAY:   break;
    case T_GRAY16: depth = 16; break;
    case T_GRAY1:  depth = 1; break;
    case T_GRAY2:  depth = 2; break;
    case T_GRAY4:  depth = 4; break;
    case T_GA:     ctype = PNG_COLOR_TYPE_GRAY_ALPHA; spp = 2; break;
    case T_GA16:   ctype = PNG_COLOR_TYPE_GRAY_ALPHA; spp = 2; depth = 16; break;
    case T_RGB:    ctype = PNG_COLOR_TYPE_RGB; spp = 3; break;
    case T_RGB16:  ctype = PNG_COLOR_TYPE_RGB; spp = 3; depth = 16; break;
    case T_RGBA:   ctype = PNG_COLOR_TYPE_RGB_ALPHA; spp = 4; break;
    case T_RGBA16: ctype = PNG_COLOR_TYPE_RGB_ALPHA; spp = 4; depth = 16; break;
    case T_PALETTE:
    case T_PALETTE_TRNS: ctype = PNG_COLOR_TYPE_PALETTE; break;
    }
    rowbytes = ((size_t)w * spp * depth + 7) / 8;
    buf = calloc(rowbytes, h);
    rows = malloc(sizeof(png_bytep) * h);
    if (buf == NULL || rows == NULL) {
        fprintf(stderr, "mkpng: out of memory\n");
        free(buf);
        free(rows);
        return -1;
    }
    for (uint32_t y = 0; y < h; y++) {
        uint8_t *row = buf + (size_t)y * rowbytes;
        rows[y] = row;
        for (uint32_t x = 0; x < w; x++) {
            unsigned ink = v[(size_t)y * w + x];
            unsigned g = invert ? 255u - ink : ink, a = 255;
            if (alpha_ink) {
                g = 0;
                a = ink;
            }
            unsigned s[4] = {g, g, g, a};
            if (spp == 2)
                s[1] = a;
            if (ctype == PNG_COLOR_TYPE_PALETTE) {
                row[x] = (uint8_t)(alpha_ink ? ink : g);
            } else if (depth < 8) {
                unsigned q = g >> (8 - depth);
                unsigned shift = 8 - depth - (unsigned)((x * depth) % 8);
                row[x * depth / 8] |= (uint8_t)(q << shift);
            } else {
                for (int c = 0; c < spp; c++) {
                    if (depth == 16) {
                        unsigned s16 = s[c] * 257u;
                        row[(x * spp + c) * 2] = (uint8_t)(s16 >> 8);
                        row[(x * spp + c) * 2 + 1] = (uint8_t)s16;
                    } else {
                        row[x * spp + c] = (uint8_t)s[c];
                    }
                }
            }
        }
    }

    rc = emit_png(path, rows, w, h, depth, ctype, interlace, alpha_ink);
    free(buf);
    free(rows);
    return rc;
}

/* A PNG whose IHDR declares w x h 8-bit gray but whose IDAT holds only a
 * few compressed zero rows: a decoder that trusts the header and allocates
 * w*h up front is the bug this probes for. */
static int write_huge_header(const char *path, uint32_t w, uint32_t h)
{
    writer wr;
    uint8_t ihdr[13];
    size_t raw_len = (size_t)w + 1 < 65536 ? (size_t)w + 1 : 65536;
    uint8_t *raw = calloc(raw_len, 1);
    uLongf zlen = compressBound(raw_len);
    uint8_t *z = malloc(zlen);
    volatile int ok = 0;

    if (raw == NULL || z == NULL ||
        compress2(z, &zlen, raw, raw_len, 9) != Z_OK) {
        fprintf(stderr, "mkpng: compression failed\n");
        free(raw);
        free(z);
        return -1;
    }
    png_save_uint_32(ihdr, w);
    png_save_uint_32(ihdr + 4, h);
    ihdr[8] = 8;    /* bit depth */
    ihdr[9] = 0;    /* gray */
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    if (writer_open(&wr, path) != 0)
        goto done;
    if (setjmp(png_jmpbuf(wr.png)))
        goto done;
    png_write_sig(wr.png);
    png_write_chunk(wr.png, (png_const_bytep)"IHDR", ihdr, sizeof ihdr);
    png_write_chunk(wr.png, (png_const_bytep)"IDAT", z, zlen);
    png_write_chunk(wr.png, (png_const_bytep)"IEND", NULL, 0);
    ok = 1;
done:
    free(raw);
    free(z);
    return writer_close(&wr, ok);
}

/* A 28x28 "1" (a vertical bar) with a zTXt chunk of about 'bytes' bytes
 * before the image data: keyword, method 0, a stored (uncompressed) zlib
 * stream of pseudo-random letters. */
static int write_big_ztxt(const char *path, uint32_t bytes)
{
    writer wr;
    uint8_t img[28 * 28] = {0};
    const char key[] = "Comment";
    size_t head = sizeof key + 1;           /* keyword, NUL, method */
    size_t text_len = bytes > head + 64 ? bytes - head - 64 : 16;
    uint8_t *text = malloc(text_len);
    uLongf zlen = compressBound(text_len);
    uint8_t *chunk = malloc(head + zlen);
    png_bytep rows[28];
    uint32_t seed = 12345;
    volatile int ok = 0;

    if (text == NULL || chunk == NULL) {
        fprintf(stderr, "mkpng: out of memory\n");
        free(text);
        free(chunk);
        return -1;
    }
    for (size_t i = 0; i < text_len; i++) {
        seed = seed * 1103515245u + 12345u;
        text[i] = (uint8_t)('a' + (seed >> 16) % 26);
    }
    memcpy(chunk, key, sizeof key);
    chunk[sizeof key] = 0;
    if (compress2(chunk + head, &zlen, text, text_len, 0) != Z_OK) {
        fprintf(stderr, "mkpng: compression failed\n");
        free(text);
        free(chunk);
        return -1;
    }
    for (int y = 4; y < 24; y++)
        for (int x = 12; x < 16; x++)
            img[y * 28 + x] = 255;
    for (int y = 0; y < 28; y++)
        rows[y] = img + y * 28;
    if (writer_open(&wr, path) != 0)
        goto done;
    if (setjmp(png_jmpbuf(wr.png)))
        goto done;
    png_set_IHDR(wr.png, wr.info, 28, 28, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(wr.png, wr.info);
    png_write_chunk(wr.png, (png_const_bytep)"zTXt", chunk, head + zlen);
    png_write_image(wr.png, rows);
    png_write_end(wr.png, NULL);
    ok = 1;
done:
    free(text);
    free(chunk);
    return writer_close(&wr, ok);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;

    if (f == NULL) {
        fprintf(stderr, "mkpng: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            uint8_t *p = realloc(buf, ncap);
            if (p == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Decodes 'png_path' the way mnistd does and writes the 784 floats. */
static int raw_out(const char *png_path, const char *out_path)
{
    char err[256];
    size_t len = 0;
    uint8_t *buf = read_file(png_path, &len), *gray = NULL;
    uint32_t w, h;
    float x[784];
    img_limits lim;
    FILE *f;
    int rc;

    if (buf == NULL)
        return 1;
    img_limits_default(&lim);
    rc = img_decode_png(buf, len, &lim, &gray, &w, &h, err, sizeof err);
    free(buf);
    if (rc == IMG_OK) {
        rc = img_to_mnist(gray, w, h, x, err, sizeof err);
        free(gray);
    }
    if (rc != IMG_OK) {
        fprintf(stderr, "img_status %d: %s\n", rc, err);
        return 3;
    }
    f = fopen(out_path, "wb");
    if (f == NULL || fwrite(x, sizeof x, 1, f) != 1) {
        fprintf(stderr, "mkpng: %s: %s\n", out_path, strerror(errno));
        if (f != NULL)
            fclose(f);
        return 1;
    }
    if (fclose(f) != 0)
        return 1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *mnist_dir = NULL, *out = NULL, *raw = NULL, *in = NULL;
    uint32_t index = 0, scale = 1, a = 0, b = 0;
    int have_index = 0, label = 0, interlace = 0, invert = 0, tbg = 0;
    int have_type = 0;
    enum { M_MNIST, M_BLANK, M_HUGE, M_ZTXT, M_BAR } mode = M_MNIST;
    ptype t = T_GRAY;
    char err[256];

    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(o, "--mnist") && more) {
            mnist_dir = argv[++i];
        } else if (!strcmp(o, "--index") && more) {
            if (parse_u32(argv[++i], &index) != 0)
                goto bad;
            have_index = 1;
        } else if (!strcmp(o, "--type") && more) {
            const char *n = argv[++i];
            size_t k;
            for (k = 0; k < sizeof type_names / sizeof type_names[0]; k++)
                if (!strcmp(n, type_names[k].name))
                    break;
            if (k == sizeof type_names / sizeof type_names[0]) {
                fprintf(stderr, "mkpng: unknown type %s\n", n);
                goto bad;
            }
            t = type_names[k].t;
            have_type = 1;
        } else if (!strcmp(o, "--interlace")) {
            interlace = 1;
        } else if (!strcmp(o, "--invert")) {
            invert = 1;
        } else if (!strcmp(o, "--transparent-bg")) {
            tbg = 1;
        } else if (!strcmp(o, "--scale") && more) {
            if (parse_u32(argv[++i], &scale) != 0 || scale < 1 || scale > 146)
                goto bad;
        } else if (!strcmp(o, "--label")) {
            label = 1;
        } else if ((!strcmp(o, "--blank") || !strcmp(o, "--huge-header") ||
                    !strcmp(o, "--bar")) && i + 2 < argc) {
            mode = !strcmp(o, "--blank") ? M_BLANK
                 : !strcmp(o, "--bar") ? M_BAR : M_HUGE;
            if (parse_u32(argv[i + 1], &a) != 0 || parse_u32(argv[i + 2], &b) != 0 ||
                a == 0 || b == 0 || a > PNG_UINT_31_MAX || b > PNG_UINT_31_MAX)
                goto bad;
            i += 2;
        } else if (!strcmp(o, "--big-ztxt") && more) {
            mode = M_ZTXT;
            if (parse_u32(argv[++i], &a) != 0 || a > 0x7fff0000u)
                goto bad;
        } else if (!strcmp(o, "-o") && more) {
            out = argv[++i];
        } else if (!strcmp(o, "--raw-out") && more) {
            raw = argv[++i];
        } else if (!strcmp(o, "-i") && more) {
            in = argv[++i];
        } else if (o[0] != '-' && in == NULL) {
            in = o;
        } else {
            goto bad;
        }
    }

    if (mode == M_BLANK) {
        uint8_t *z;
        if (out == NULL || (uint64_t)a * b > (1u << 28))
            goto bad;
        z = calloc((size_t)a * b, 1);
        if (z == NULL)
            return 1;
        int rc = write_typed(out, z, a, b, T_GRAY, 0, 0, 0);
        free(z);
        if (rc != 0)
            return 1;
        return raw ? raw_out(out, raw) : 0;
    }
    if (mode == M_HUGE || mode == M_ZTXT) {
        if (out == NULL)
            goto bad;
        if ((mode == M_HUGE ? write_huge_header(out, a, b)
                            : write_big_ztxt(out, a)) != 0)
            return 1;
        return raw ? raw_out(out, raw) : 0;
    }

    if (mode == M_MNIST && mnist_dir == NULL) {
        if (raw != NULL && in != NULL)
            return raw_out(in, raw);
        goto bad;
    }
    if (mode == M_MNIST && (!have_index || (!label && out == NULL)))
        goto bad;
    if (mode == M_BAR && (out == NULL || (uint64_t)a * b > (1u << 28)))
        goto bad;
    if (tbg || t == T_PALETTE_TRNS) {
        if (invert) {
            fprintf(stderr, "mkpng: --invert does not combine with an alpha-ink image\n");
            goto bad;
        }
        if (!have_type)
            t = T_RGBA;
        if (t != T_GA && t != T_GA16 && t != T_RGBA && t != T_RGBA16 &&
            t != T_PALETTE_TRNS) {
            fprintf(stderr, "mkpng: --transparent-bg needs ga, ga16, rgba, rgba16 "
                    "or palette-trns\n");
            goto bad;
        }
        tbg = 1;
    }

    uint8_t *img;
    uint32_t iw, ih;
    if (mode == M_BAR) {
        /* A "1" that needs no data set: a bar 10% wide, 70% tall, centred. */
        iw = a;
        ih = b;
        img = calloc((size_t)iw * ih, 1);
        if (img == NULL)
            return 1;
        uint32_t bw = iw / 10 ? iw / 10 : 1, bh = ih * 7 / 10 ? ih * 7 / 10 : 1;
        for (uint32_t y = (ih - bh) / 2; y < (ih - bh) / 2 + bh; y++)
            for (uint32_t x = (iw - bw) / 2; x < (iw - bw) / 2 + bw; x++)
                img[(size_t)y * iw + x] = 255;
        goto write;
    }

    mnist_set s;
    if (mnist_load_dir(&s, mnist_dir, "t10k", err, sizeof err) != 0) {
        fprintf(stderr, "mkpng: %s\n", err);
        return 1;
    }
    if (index >= (uint32_t)s.n) {
        fprintf(stderr, "mkpng: index %u out of range (0..%d)\n", (unsigned)index,
                s.n - 1);
        mnist_free(&s);
        return 2;
    }
    if (label) {
        printf("%d\n", s.labels[index]);
        mnist_free(&s);
        return 0;
    }
    iw = ih = 28 * scale;
    img = malloc((size_t)iw * ih);
    if (img == NULL) {
        mnist_free(&s);
        return 1;
    }
    const uint8_t *src = s.images + (size_t)index * 784;
    for (uint32_t y = 0; y < ih; y++)
        for (uint32_t x = 0; x < iw; x++)
            img[(size_t)y * iw + x] = src[(y / scale) * 28 + x / scale];
    mnist_free(&s);
write:;
    int rc = write_typed(out, img, iw, ih, t, interlace, invert, tbg);
    free(img);
    if (rc != 0)
        return 1;
    if (raw != NULL)
        return raw_out(in ? in : out, raw);
    return 0;

bad:
    usage();
    return 2;
}
