/* model/png.c -- PNG decoding and encoding (libpng16); see png.h.
 *
 * Decoding works on an in-memory buffer. Every limit is applied before the
 * memory it protects is spent:
 *   - the IHDR is read and checked against img_limits (width, height, and
 *     width*height) before a single row is allocated; libpng's own user limits
 *     are set too, so a header over the limits never gets past png_read_info;
 *   - every chunk's declared length is checked against max_chunk_bytes by
 *     libpng as soon as the chunk header is read (png_set_chunk_malloc_max),
 *     and that condition, which libpng treats as a warning on read, is made an
 *     error here: a multi-megabyte zTXt or iCCP is refused, not skipped;
 *   - ancillary chunks the conversion does not need (text, ICC profiles,
 *     gamma, ...) are ignored by libpng without being stored.
 *
 * Error codes for limits: a header over the dimension/pixel limits and a
 * chunk over max_chunk_bytes are both IMG_ERR_TOO_LARGE (the input breaks a
 * configured limit; it is not malformed). Anything else libpng rejects is
 * IMG_ERR_CORRUPT with libpng's message.
 *
 * Gray conversion: palette, low bit depths and tRNS are expanded, 16-bit
 * samples keep their high byte, colour becomes gray with the ITU-R BT.601
 * weights (0.299 R + 0.587 G + 0.114 B, what PIL's convert("L") uses) applied
 * to the stored values (gAMA/cHRM are ignored, so the result does not depend
 * on optional metadata), and alpha is composited over white here, so that a
 * transparent background reads as paper.
 *
 * A zero field in img_limits means that field's default (libpng would read a
 * zero user limit as "nothing fits"); a NULL img_limits means all defaults.
 *
 * Encoding (img_encode_png) writes 8-bit gray or RGB, not interlaced, into a
 * buffer that grows as libpng writes. */
#include "model/png.h"
#include "model/err.h"

#include <limits.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMG_DEF_MAX_SIDE    4096u
#define IMG_DEF_MAX_PIXELS  4194304ull
#define IMG_DEF_MAX_CHUNK   (1u << 20)
/* At most this many ancillary chunks (text, sPLT, unknown) are looked at. */
#define IMG_CHUNK_CACHE_MAX 64u

void img_limits_default(img_limits *lim)
{
    if (lim == NULL)
        return;
    lim->max_width = IMG_DEF_MAX_SIDE;
    lim->max_height = IMG_DEF_MAX_SIDE;
    lim->max_pixels = IMG_DEF_MAX_PIXELS;
    lim->max_chunk_bytes = IMG_DEF_MAX_CHUNK;
}

/* ------------------------------------------------------------------------
 * Decoding
 * ------------------------------------------------------------------------ */

/* Everything the libpng callbacks and the setjmp-protected code change lives
 * here, in the frame of img_decode_png, which never calls setjmp itself.
 * decode_rows() (the function that calls setjmp) reads no local variable
 * after a longjmp, only this struct through its pointer parameter, so nothing
 * needs to be volatile and nothing it allocated is lost when libpng longjmps
 * out: the caller frees it. */
typedef struct {
    const uint8_t *buf;     /* the PNG */
    size_t len;
    size_t pos;             /* read position for read_from_buffer */
    int armed;              /* the jmp_buf is set: png_error may be raised */
    int too_large;          /* a limit was hit: IMG_ERR_TOO_LARGE */
    int oom;                /* allocation failed: IMG_ERR_NOMEM */
    char msg[192];          /* libpng's (or our) message for err */
    uint8_t *pix;           /* pixel rows (1 or 2 bytes per pixel), owned */
    png_bytep *rows;        /* row pointers into pix, owned */
    uint32_t w, h;
} decode_ctx;

/* libpng error callback: keep the message, unwind to decode_rows' setjmp. */
static void on_png_error(png_structp png, png_const_charp msg)
{
    decode_ctx *c = png_get_error_ptr(png);

    if (c != NULL && c->msg[0] == '\0')
        snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "libpng error");
    /* Limit hits, whichever way this libpng build reports them. */
    if (c != NULL && msg != NULL && (strstr(msg, "exceeds user limit") != NULL ||
                                     strstr(msg, "chunk data is too large") != NULL))
        c->too_large = 1;
    png_longjmp(png, 1);
}

/* libpng warning callback. Most warnings are harmless (a bad ancillary CRC,
 * an odd sRGB profile) and are ignored. Two are limit hits that libpng only
 * warns about: a dimension over the user limit (libpng follows it with
 * "Invalid IHDR data") and a chunk longer than the chunk limit (libpng would
 * read on); the second is turned into an error here, before the chunk's data
 * is read or buffered. */
static void on_png_warning(png_structp png, png_const_charp msg)
{
    decode_ctx *c = png_get_error_ptr(png);

    if (c == NULL || msg == NULL)
        return;
    if (strstr(msg, "exceeds user limit") != NULL) {
        c->too_large = 1;
        if (c->msg[0] == '\0')
            snprintf(c->msg, sizeof c->msg, "%s", msg);
    } else if (strstr(msg, "chunk data is too large") != NULL && c->armed) {
        c->too_large = 1;
        png_error(png, msg);
    }
}

/* libpng read callback over the in-memory buffer; running out of data is a
 * libpng error (the PNG is truncated), never a read past the end. */
static void read_from_buffer(png_structp png, png_bytep out, size_t n)
{
    decode_ctx *c = png_get_io_ptr(png);

    if (c == NULL || n > c->len - c->pos) {
        png_error(png, "unexpected end of PNG data (truncated file)");
        return;
    }
    memcpy(out, c->buf + c->pos, n);
    c->pos += n;
}

/* Reads the header, checks the limits, sets the transformations to 8-bit
 * gray (+ alpha) and reads every row into c->pix (c->rows point into it).
 * Returns IMG_OK or an img_status with c->msg set; on error c->pix/c->rows
 * may hold memory the caller frees. */
static int decode_rows(png_structp png, png_infop info, decode_ctx *c,
                       const img_limits *lim)
{
    png_uint_32 w, h;
    int depth, ctype, ilace;

    if (setjmp(png_jmpbuf(png)))
        return c->oom ? IMG_ERR_NOMEM
             : c->too_large ? IMG_ERR_TOO_LARGE : IMG_ERR_CORRUPT;
    c->armed = 1;

    png_set_read_fn(png, c, read_from_buffer);
    png_set_user_limits(png, lim->max_width, lim->max_height);
    png_set_chunk_cache_max(png, IMG_CHUNK_CACHE_MAX);
    png_set_chunk_malloc_max(png, lim->max_chunk_bytes);
    /* A negative count means every chunk except IHDR, PLTE, tRNS, IDAT and
     * IEND: ancillary chunks are read past (CRC-checked) and never stored. */
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);

    png_read_info(png, info);
    if (!png_get_IHDR(png, info, &w, &h, &depth, &ctype, &ilace, NULL, NULL))
        png_error(png, "no IHDR");
    /* libpng checked width/height against the user limits already; the
     * product is ours to check, before any row memory exists. */
    if ((uint64_t)w * h > lim->max_pixels) {
        c->too_large = 1;
        snprintf(c->msg, sizeof c->msg,
                 "image is %ux%u = %llu pixels, over the limit of %llu",
                 (unsigned)w, (unsigned)h, (unsigned long long)w * h,
                 (unsigned long long)lim->max_pixels);
        return IMG_ERR_TOO_LARGE;
    }

    png_set_expand(png);
    if (ctype == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(png);
    if (depth == 16)
        png_set_strip_16(png);
    if (ctype & PNG_COLOR_MASK_COLOR || ctype == PNG_COLOR_TYPE_PALETTE)
        png_set_rgb_to_gray_fixed(png, PNG_ERROR_ACTION_NONE, 29900, 58700);
    (void)png_set_interlace_handling(png);
    png_read_update_info(png, info);

    size_t ch = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (png_get_bit_depth(png, info) != 8 || (ch != 1 && ch != 2) ||
        rowbytes != (size_t)w * ch) {
        snprintf(c->msg, sizeof c->msg,
                 "unexpected pixel layout after conversion (%u bits, %zu channels)",
                 (unsigned)png_get_bit_depth(png, info), ch);
        return IMG_ERR_CORRUPT;
    }

    c->pix = malloc(rowbytes * h);
    c->rows = malloc(sizeof(png_bytep) * h);
    if (c->pix == NULL || c->rows == NULL) {
        c->oom = 1;
        snprintf(c->msg, sizeof c->msg, "out of memory for %ux%u pixels",
                 (unsigned)w, (unsigned)h);
        return IMG_ERR_NOMEM;
    }
    for (png_uint_32 y = 0; y < h; y++)
        c->rows[y] = c->pix + (size_t)y * rowbytes;
    png_read_image(png, c->rows);
    /* Reading to IEND rejects a file cut after its image data too. */
    png_read_end(png, NULL);

    /* Gray + alpha -> gray over white, in place (output index <= input). */
    if (ch == 2) {
        size_t n = (size_t)w * h;
        for (size_t i = 0; i < n; i++) {
            unsigned g = c->pix[2 * i], a = c->pix[2 * i + 1];
            c->pix[i] = (uint8_t)((g * a + 255u * (255u - a) + 127u) / 255u);
        }
    }
    c->w = w;
    c->h = h;
    return IMG_OK;
}

int img_decode_png(const uint8_t *buf, size_t len, const img_limits *lim,
                   uint8_t **gray, uint32_t *w, uint32_t *h,
                   char *err, size_t errlen)
{
    decode_ctx c;
    img_limits l;
    png_structp png = NULL;
    png_infop info = NULL;
    int rc;

    if (gray != NULL)
        *gray = NULL;
    if (w != NULL)
        *w = 0;
    if (h != NULL)
        *h = 0;
    if (gray == NULL || w == NULL || h == NULL) {
        err_set(err, errlen, "img_decode_png: no output pointers");
        return IMG_ERR_CORRUPT;
    }
    if (buf == NULL || len < 8 || png_sig_cmp(buf, 0, 8) != 0) {
        err_set(err, errlen, len == 0 ? "empty body: not a PNG image"
                                      : "not a PNG image (no PNG signature)");
        return IMG_ERR_NOT_PNG;
    }

    /* A zero field means "the default"; libpng treats 0 as "nothing fits". */
    img_limits_default(&l);
    if (lim != NULL) {
        if (lim->max_width)
            l.max_width = lim->max_width;
        if (lim->max_height)
            l.max_height = lim->max_height;
        if (lim->max_pixels)
            l.max_pixels = lim->max_pixels;
        if (lim->max_chunk_bytes)
            l.max_chunk_bytes = lim->max_chunk_bytes;
    }
    if (l.max_width > PNG_UINT_31_MAX)
        l.max_width = PNG_UINT_31_MAX;
    if (l.max_height > PNG_UINT_31_MAX)
        l.max_height = PNG_UINT_31_MAX;

    memset(&c, 0, sizeof c);
    c.buf = buf;
    c.len = len;
    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, on_png_error,
                                 on_png_warning);
    if (png != NULL)
        info = png_create_info_struct(png);
    if (png == NULL || info == NULL) {
        err_set(err, errlen, "out of memory creating the PNG decoder");
        rc = IMG_ERR_NOMEM;
        goto cleanup;
    }

    rc = decode_rows(png, info, &c, &l);
    if (rc == IMG_OK) {
        size_t n = (size_t)c.w * c.h;
        uint8_t *shrunk = realloc(c.pix, n ? n : 1);
        *gray = shrunk ? shrunk : c.pix;
        c.pix = NULL;
        *w = c.w;
        *h = c.h;
    } else if (rc == IMG_ERR_TOO_LARGE) {
        /* libpng's message does not say the size; the IHDR does (it is the
         * first chunk, its fields at fixed offsets). */
        char dims[64] = "";
        if (len >= 24 && memcmp(buf + 12, "IHDR", 4) == 0 &&
            strstr(c.msg, "user limit") != NULL)
            snprintf(dims, sizeof dims, "image declares %lux%lu; ",
                     (unsigned long)png_get_uint_32(buf + 16),
                     (unsigned long)png_get_uint_32(buf + 20));
        err_set(err, errlen, "PNG over the limits (%s%s; limits: %ux%u, "
                "%llu pixels, chunks up to %u bytes)", dims, c.msg,
                (unsigned)l.max_width, (unsigned)l.max_height,
                (unsigned long long)l.max_pixels, (unsigned)l.max_chunk_bytes);
    } else if (rc == IMG_ERR_NOMEM) {
        err_set(err, errlen, "%s", c.msg);
    } else {
        err_set(err, errlen, "corrupt PNG: %s", c.msg[0] ? c.msg : "libpng error");
    }

cleanup:
    if (png != NULL)
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
    free(c.rows);
    free(c.pix);
    return rc;
}

/* ------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------ */

/* The output buffer of img_encode_png; lives in the caller's frame for the
 * same reason as decode_ctx. */
typedef struct {
    uint8_t *data;
    size_t len, cap;
    int oom;
} encode_buf;

static void write_to_buffer(png_structp png, png_bytep data, size_t n)
{
    encode_buf *b = png_get_io_ptr(png);

    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = 1;
                png_error(png, "PNG too large for memory");
            }
            cap *= 2;
        }
        uint8_t *p = realloc(b->data, cap);
        if (p == NULL) {
            b->oom = 1;
            png_error(png, "out of memory");
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

static void flush_nothing(png_structp png)
{
    (void)png;
}

static void on_encode_error(png_structp png, png_const_charp msg)
{
    (void)msg;
    png_longjmp(png, 1);
}

static void on_encode_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* The setjmp-protected part of img_encode_png; state lives in *b. */
static int encode_rows(png_structp png, png_infop info, encode_buf *b,
                       const uint8_t *pix, uint32_t w, uint32_t h, int rgb)
{
    size_t rowbytes = (size_t)w * (rgb ? 3 : 1);

    if (setjmp(png_jmpbuf(png)))
        return -1;
    png_set_write_fn(png, b, write_to_buffer, flush_nothing);
    png_set_IHDR(png, info, w, h, 8,
                 rgb ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (uint32_t y = 0; y < h; y++)
        png_write_row(png, pix + (size_t)y * rowbytes);
    png_write_end(png, info);
    return 0;
}

int img_encode_png(const uint8_t *pix, uint32_t w, uint32_t h, int rgb,
                   uint8_t **out, size_t *outlen)
{
    encode_buf b = {0};
    png_structp png = NULL;
    png_infop info = NULL;
    int rc = -1;

    if (out != NULL)
        *out = NULL;
    if (outlen != NULL)
        *outlen = 0;
    if (pix == NULL || out == NULL || outlen == NULL || w == 0 || h == 0 ||
        w > PNG_UINT_31_MAX || h > PNG_UINT_31_MAX ||
        (uint64_t)w * h > SIZE_MAX / 4)
        return -1;

    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, on_encode_error,
                                  on_encode_warning);
    if (png != NULL)
        info = png_create_info_struct(png);
    if (png == NULL || info == NULL)
        goto cleanup;
    /* libpng refuses to write images over its default 1e6 x 1e6 user limit. */
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    if (encode_rows(png, info, &b, pix, w, h, rgb) != 0)
        goto cleanup;
    *out = b.data;
    *outlen = b.len;
    b.data = NULL;
    rc = 0;

cleanup:
    if (png != NULL)
        png_destroy_write_struct(&png, info ? &info : NULL);
    free(b.data);
    return rc;
}
