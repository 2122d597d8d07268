/* model/checkpoint.c -- safetensors model files; see checkpoint.h.
 *
 * The writer emits what the safetensors reference implementation emits for
 * our tensors: "__metadata__" first, then the tensors in net_tensors[] order
 * with contiguous offsets, the header padded with spaces to a multiple of 8.
 * The reader follows the reference's validation (header length, JSON, UTF-8,
 * dtype, shape, offsets contiguous from 0 in any order, sizes, exact data
 * length) and adds what this network needs: exactly the expected tensors,
 * every value finite. */
#include "model/checkpoint.h"
#include "model/atomicfile.h"
#include "model/err.h"
#include "model/net.h"
#include "model/quant.h"
#include "model/version.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The data section is the in-memory float array byte for byte; safetensors
 * is little-endian, so refuse to build where that would be wrong. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "checkpoint.c writes floats in host order and needs a little-endian host");
_Static_assert(sizeof(float) == 4, "F32 tensors need a 4-byte float");

#define DATA_BYTES ((size_t)NET_NUM_PARAMS * sizeof(float))

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF): the
 * reference reader rejects a header that is not valid UTF-8, so the writer
 * must never produce one. */
static int utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t k;
        unsigned min;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1; min = 0x80; cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2; min = 0x800; cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3; min = 0x10000; cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

int ckpt_meta_set(ckpt_meta *m, const char *key, const char *val)
{
    if (!m || !key || !val || !*key)
        return -1;
    if (strlen(key) >= CKPT_KEY_MAX || strlen(val) >= CKPT_VAL_MAX)
        return -1;
    if (m->n < 0 || m->n > CKPT_MAX_META)
        return -1;
    for (int i = 0; i < m->n; i++) {
        if (strcmp(m->key[i], key) == 0) {
            snprintf(m->val[i], CKPT_VAL_MAX, "%s", val);
            return 0;
        }
    }
    if (m->n == CKPT_MAX_META)
        return -1;
    snprintf(m->key[m->n], CKPT_KEY_MAX, "%s", key);
    snprintf(m->val[m->n], CKPT_VAL_MAX, "%s", val);
    m->n++;
    return 0;
}

const char *ckpt_meta_get(const ckpt_meta *m, const char *key)
{
    if (!m || !key || m->n < 0 || m->n > CKPT_MAX_META)
        return NULL;
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->key[i], key) == 0)
            return m->val[i];
    return NULL;
}

/* ---- Writing ----------------------------------------------------------- */

/* Builds the metadata to store: the caller's entries, plus architecture,
 * mnistd version and creation time where the caller did not set them (and
 * there is room), so that every file says what it is, and always the
 * format version this writer writes. The legacy key "format" is not copied
 * (metadata read from an older file carries it): format_version replaces it. */
static int build_meta(ckpt_meta *out, const ckpt_meta *in, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (in) {
        if (in->n < 0 || in->n > CKPT_MAX_META) {
            err_set(err, errlen, "metadata count %d out of range 0..%d", in->n, CKPT_MAX_META);
            return -1;
        }
        for (int i = 0; i < in->n; i++) {
            if (strcmp(in->key[i], CKPT_LEGACY_FORMAT_KEY) == 0)
                continue;
            size_t kl = strnlen(in->key[i], CKPT_KEY_MAX);
            size_t vl = strnlen(in->val[i], CKPT_VAL_MAX);
            if (kl == 0 || kl == CKPT_KEY_MAX || vl == CKPT_VAL_MAX) {
                err_set(err, errlen, "metadata entry %d is empty or not terminated", i);
                return -1;
            }
            if (!utf8_valid((const unsigned char *)in->key[i], kl) ||
                !utf8_valid((const unsigned char *)in->val[i], vl)) {
                err_set(err, errlen, "metadata \"%s\" is not valid UTF-8", in->key[i]);
                return -1;
            }
            if (ckpt_meta_set(out, in->key[i], in->val[i]) != 0) {
                err_set(err, errlen, "metadata \"%s\" could not be stored", in->key[i]);
                return -1;
            }
        }
    }
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm) && strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0) {
        if (!ckpt_meta_get(out, "created"))
            ckpt_meta_set(out, "created", when);
    }
    if (!ckpt_meta_get(out, "architecture"))
        ckpt_meta_set(out, "architecture", NET_ARCH_NAME);
    ckpt_meta_set(out, CKPT_FORMAT_KEY, CKPT_FORMAT_VERSION);
    if (!ckpt_meta_get(out, "mnistd_version"))
        ckpt_meta_set(out, "mnistd_version", MNISTD_VERSION);
    return 0;
}

/* Serialises the JSON header for meta, padded with spaces so that its length
 * is a multiple of 8. Returns a malloc'd string (the caller's) and its
 * length in *len, or NULL on allocation failure. */
static char *build_header(const ckpt_meta *meta, size_t *len)
{
    cJSON *root = cJSON_CreateObject();
    char *text = NULL, *out = NULL;
    size_t off = 0;

    if (!root)
        goto cleanup;
    cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
    if (!m)
        goto cleanup;
    for (int i = 0; i < meta->n; i++)
        if (!cJSON_AddStringToObject(m, meta->key[i], meta->val[i]))
            goto cleanup;
    for (int t = 0; t < NET_NUM_TENSORS; t++) {
        const net_tensor *nt = &net_tensors[t];
        cJSON *o = cJSON_AddObjectToObject(root, nt->name);
        if (!o || !cJSON_AddStringToObject(o, "dtype", "F32"))
            goto cleanup;
        cJSON *shape = cJSON_AddArrayToObject(o, "shape");
        cJSON *offs = cJSON_AddArrayToObject(o, "data_offsets");
        if (!shape || !offs)
            goto cleanup;
        for (int d = 0; d < nt->ndim; d++)
            if (!cJSON_AddItemToArray(shape, cJSON_CreateNumber(nt->shape[d])))
                goto cleanup;
        size_t begin = off * sizeof(float), end = (off + nt->count) * sizeof(float);
        if (!cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)begin)) ||
            !cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)end)))
            goto cleanup;
        off += nt->count;
    }
    text = cJSON_PrintUnformatted(root);
    if (!text)
        goto cleanup;
    size_t tl = strlen(text);
    size_t padded = (tl + 7) & ~(size_t)7;
    out = malloc(padded + 1);
    if (!out)
        goto cleanup;
    memcpy(out, text, tl);
    memset(out + tl, ' ', padded - tl);
    out[padded] = '\0';
    *len = padded;
cleanup:
    cJSON_free(text);
    cJSON_Delete(root);
    return out;
}

int ckpt_save(const char *path, const float *params, const ckpt_meta *meta, char *err,
              size_t errlen)
{
    ckpt_meta *m = NULL;
    char *header = NULL;
    size_t hlen = 0;
    int ret = -1;

    if (!path || !*path || !params) {
        err_set(err, errlen, "checkpoint: no path or parameters given");
        return -1;
    }
    /* A file the reader would refuse must not replace a good one. */
    for (int t = 0; t < NET_NUM_TENSORS; t++) {
        const net_tensor *nt = &net_tensors[t];
        for (size_t i = 0; i < nt->count; i++) {
            if (!isfinite(params[nt->offset + i])) {
                err_set(err, errlen, "%s: not saved: %s element %zu is %s", path, nt->name, i,
                        isnan(params[nt->offset + i]) ? "NaN" : "infinite");
                return -1;
            }
        }
    }
    m = malloc(sizeof *m);
    if (!m) {
        err_set(err, errlen, "%s: out of memory", path);
        goto cleanup;
    }
    if (build_meta(m, meta, err, errlen) != 0)
        goto cleanup;
    header = build_header(m, &hlen);
    if (!header) {
        err_set(err, errlen, "%s: out of memory building the header", path);
        goto cleanup;
    }
    if (hlen > CKPT_MAX_HEADER) {
        err_set(err, errlen, "%s: header of %zu bytes exceeds %u", path, hlen,
                (unsigned)CKPT_MAX_HEADER);
        goto cleanup;
    }
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    /* Tensor by tensor, in the order and at the offsets the header states;
     * written beside path and renamed over it (model/atomicfile.h). */
    atomic_part parts[2 + NET_NUM_TENSORS] = {{lenbuf, sizeof lenbuf}, {header, hlen}};
    for (int t = 0; t < NET_NUM_TENSORS; t++)
        parts[2 + t] = (atomic_part){params + net_tensors[t].offset, net_tensors[t].count * sizeof(float)};
    if (atomic_write(path, parts, 2 + NET_NUM_TENSORS, err, errlen) != 0)
        goto cleanup;
    ret = 0;
cleanup:
    free(header);
    free(m);
    return ret;
}

int ckpt_remove_stale_temps(const char *path)
{
    char dir[PATH_MAX];
    if (!path || !*path)
        return 0;
    const char *slash = strrchr(path, '/');
    if (slash)
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    else
        snprintf(dir, sizeof dir, ".");
    return atomic_remove_stale_temps(dir, slash ? slash + 1 : path);
}

/* ---- Reading ----------------------------------------------------------- */

/* Reads a JSON number that must be a non-negative integer below 2^53. */
static int json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != floor(d))
        return -1;
    *out = (uint64_t)d;
    return 0;
}

static int find_tensor(const char *name)
{
    for (int t = 0; t < NET_NUM_TENSORS; t++)
        if (strcmp(net_tensors[t].name, name) == 0)
            return t;
    return -1;
}

/* Checks one tensor entry of the header against net_tensors[t] and stores
 * its byte offsets. */
static int check_tensor(const cJSON *o, int t, uint64_t *begin, uint64_t *end, char *err,
                        size_t errlen)
{
    const net_tensor *nt = &net_tensors[t];
    if (!cJSON_IsObject(o)) {
        err_set(err, errlen, "tensor \"%s\": entry is not a JSON object", nt->name);
        return -1;
    }
    for (const cJSON *f = o->child; f; f = f->next) {
        if (strcmp(f->string, "dtype") != 0 && strcmp(f->string, "shape") != 0 &&
            strcmp(f->string, "data_offsets") != 0) {
            err_set(err, errlen, "tensor \"%s\": unknown field \"%s\"", nt->name, f->string);
            return -1;
        }
    }
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(o, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(o, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(o, "data_offsets");
    if (!cJSON_IsString(dtype)) {
        err_set(err, errlen, "tensor \"%s\": dtype missing or not a string", nt->name);
        return -1;
    }
    if (strcmp(dtype->valuestring, "F32") != 0) {
        err_set(err, errlen, "tensor \"%s\": dtype %.16s, expected F32", nt->name,
                dtype->valuestring);
        return -1;
    }
    char want[64], got[128];
    int wl = 0, gl = 0;
    for (int d = 0; d < nt->ndim; d++)
        wl += snprintf(want + wl, sizeof want - (size_t)wl, "%s%d", d ? "," : "", nt->shape[d]);
    if (!cJSON_IsArray(shape)) {
        err_set(err, errlen, "tensor \"%s\": shape missing or not an array", nt->name);
        return -1;
    }
    int ndim = cJSON_GetArraySize(shape), ok = ndim == nt->ndim, d = 0;
    for (const cJSON *s = shape->child; s; s = s->next, d++) {
        uint64_t v;
        if (json_uint(s, &v) != 0) {
            err_set(err, errlen, "tensor \"%s\": shape holds a non-integer", nt->name);
            return -1;
        }
        if (gl < (int)sizeof got - 24)
            gl += snprintf(got + gl, sizeof got - (size_t)gl, "%s%llu", d ? "," : "",
                           (unsigned long long)v);
        if (d < nt->ndim && v != (uint64_t)nt->shape[d])
            ok = 0;
    }
    if (!ok) {
        err_set(err, errlen, "tensor \"%s\": shape [%s], expected [%s]", nt->name, got, want);
        return -1;
    }
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        json_uint(offs->child, begin) != 0 || json_uint(offs->child->next, end) != 0) {
        err_set(err, errlen, "tensor \"%s\": data_offsets must be two non-negative integers",
                nt->name);
        return -1;
    }
    if (*end < *begin) {
        err_set(err, errlen, "tensor \"%s\": data_offsets [%llu,%llu] end before begin",
                nt->name, (unsigned long long)*begin, (unsigned long long)*end);
        return -1;
    }
    if (*end - *begin != nt->count * sizeof(float)) {
        err_set(err, errlen, "tensor \"%s\": data_offsets [%llu,%llu] span %llu bytes, "
                "its shape needs %zu", nt->name, (unsigned long long)*begin,
                (unsigned long long)*end, (unsigned long long)(*end - *begin),
                nt->count * sizeof(float));
        return -1;
    }
    return 0;
}

/* Copies "__metadata__" (string -> string) into out. */
static int read_meta(const cJSON *o, ckpt_meta *out, char *err, size_t errlen)
{
    if (!cJSON_IsObject(o)) {
        err_set(err, errlen, "__metadata__ is not a JSON object");
        return -1;
    }
    for (const cJSON *e = o->child; e; e = e->next) {
        if (!cJSON_IsString(e)) {
            err_set(err, errlen, "__metadata__ \"%.64s\": value is not a string", e->string);
            return -1;
        }
        if (ckpt_meta_get(out, e->string)) {
            err_set(err, errlen, "__metadata__ \"%.64s\" appears twice", e->string);
            return -1;
        }
        if (out->n == CKPT_MAX_META) {
            err_set(err, errlen, "__metadata__ has more than %d entries", CKPT_MAX_META);
            return -1;
        }
        if (ckpt_meta_set(out, e->string, e->valuestring) != 0) {
            err_set(err, errlen, "__metadata__ \"%.64s\": key longer than %d or value longer "
                    "than %d bytes (or empty key)", e->string, CKPT_KEY_MAX - 1,
                    CKPT_VAL_MAX - 1);
            return -1;
        }
    }
    return 0;
}

/* The file's format version, from its metadata: format_version must be this
 * reader's. A file without it came from an mnistd before format_version
 * existed or from another safetensors writer, and is judged by its tensors
 * alone. ("format" says nothing here: older mnistd files carry
 * "format":"mnistd-1", and other writers name their framework in it, such as
 * "pt" or "np".) */
static int check_format(const cJSON *md, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(md, CKPT_FORMAT_KEY);
    if (!v)
        return 0;
    if (!cJSON_IsString(v)) {
        err_set(err, errlen, "__metadata__ \"%s\": value is not a string", CKPT_FORMAT_KEY);
        return -1;
    }
    if (strcmp(v->valuestring, CKPT_FORMAT_VERSION) != 0) {
        const cJSON *who = cJSON_GetObjectItemCaseSensitive(md, "mnistd_version");
        err_set(err, errlen, "model file format_version \"%.16s\", but mnistd %s reads format "
                "version %s (written by mnistd %.32s: load it with that version, or train a "
                "model with this one)", v->valuestring, MNISTD_VERSION, CKPT_FORMAT_VERSION,
                cJSON_IsString(who) ? who->valuestring : "unknown");
        return -1;
    }
    return 0;
}

int ckpt_load_buffer(const unsigned char *buf, size_t len, float *params, ckpt_meta *meta,
                     char *err, size_t errlen)
{
    cJSON *root = NULL;
    ckpt_meta *m = NULL;
    int ret = -1;
    int seen[NET_NUM_TENSORS] = { 0 };
    uint64_t begin[NET_NUM_TENSORS], end[NET_NUM_TENSORS];

    if (!params || (!buf && len > 0)) {
        err_set(err, errlen, "checkpoint: no buffer or parameters given");
        return -1;
    }
    if (len == 0) {
        err_set(err, errlen, "empty file");
        return -1;
    }
    if (len < 8) {
        err_set(err, errlen, "file of %zu bytes is too short for the 8-byte header length", len);
        return -1;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | buf[i];
    if (n == 0) {
        err_set(err, errlen, "header length is 0");
        return -1;
    }
    if (n > len - 8) {
        err_set(err, errlen, "header length %llu is larger than the file (%zu bytes after the "
                "length)", (unsigned long long)n, len - 8);
        return -1;
    }
    if (n > CKPT_MAX_HEADER) {
        err_set(err, errlen, "header length %llu exceeds the limit of %u bytes",
                (unsigned long long)n, (unsigned)CKPT_MAX_HEADER);
        return -1;
    }
    const char *hdr = (const char *)buf + 8;
    if (!utf8_valid((const unsigned char *)hdr, (size_t)n)) {
        err_set(err, errlen, "header is not valid UTF-8");
        return -1;
    }
    if (hdr[0] != '{') {
        err_set(err, errlen, "header is not a JSON object (starts with 0x%02x)",
                (unsigned char)hdr[0]);
        return -1;
    }
    /* cJSON ends a string at an escaped NUL, so "conv1.bias\u0000junk" would
     * read as "conv1.bias": refuse any \u0000 escape (an odd run of
     * backslashes before "u0000"). */
    for (size_t i = 0; i + 6 <= (size_t)n; i++) {
        if (hdr[i] != '\\' || memcmp(hdr + i + 1, "u0000", 5) != 0)
            continue;
        size_t k = 0;
        while (k < i && hdr[i - 1 - k] == '\\')
            k++;
        if (k % 2 == 0) {
            err_set(err, errlen, "header contains a NUL character (\\u0000) at byte %zu", i);
            return -1;
        }
    }
    const char *pend = NULL;
    root = cJSON_ParseWithLengthOpts(hdr, (size_t)n, &pend, 0);
    if (!root || !cJSON_IsObject(root)) {
        size_t at = pend ? (size_t)(pend - hdr) : 0;
        err_set(err, errlen, "header is not valid JSON (error near byte %zu)", at);
        goto cleanup;
    }
    /* Only the reference's space padding may follow the JSON object. */
    for (const char *p = pend; p < hdr + n; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            err_set(err, errlen, "header has data after its JSON object (byte %zu)",
                    (size_t)(p - hdr));
            goto cleanup;
        }
    }
    if (check_format(cJSON_GetObjectItemCaseSensitive(root, "__metadata__"), err, errlen) != 0)
        goto cleanup;
    m = calloc(1, sizeof *m);
    if (!m) {
        err_set(err, errlen, "out of memory");
        goto cleanup;
    }
    int have_meta = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (have_meta++) {
                err_set(err, errlen, "__metadata__ appears twice");
                goto cleanup;
            }
            if (read_meta(e, m, err, errlen) != 0)
                goto cleanup;
            /* the int8 activation scales are refused here, not when int8
             * is first used */
            float scales[QUANT_NSCALES];
            const char *qs = ckpt_meta_get(m, QUANT_SCALES_KEY);
            if (qs && quant_scales_parse(qs, scales, err, errlen) != 0)
                goto cleanup;
            continue;
        }
        int t = find_tensor(e->string);
        if (t < 0) {
            err_set(err, errlen, "unknown tensor \"%.64s\" (not part of %s)", e->string,
                    NET_ARCH_NAME);
            goto cleanup;
        }
        if (seen[t]++) {
            err_set(err, errlen, "tensor \"%s\" appears twice", net_tensors[t].name);
            goto cleanup;
        }
        if (check_tensor(e, t, &begin[t], &end[t], err, errlen) != 0)
            goto cleanup;
    }
    for (int t = 0; t < NET_NUM_TENSORS; t++) {
        if (!seen[t]) {
            err_set(err, errlen, "missing tensor \"%s\"", net_tensors[t].name);
            goto cleanup;
        }
    }

    /* The sizes match the shapes (checked above), so the data section's
     * length is known: a shorter one is a truncated file. */
    size_t data_len = len - 8 - (size_t)n;
    if (data_len < DATA_BYTES) {
        err_set(err, errlen, "truncated: data section is %zu bytes, the tensors need %zu",
                data_len, DATA_BYTES);
        goto cleanup;
    }
    for (int t = 0; t < NET_NUM_TENSORS; t++) {
        if (end[t] > data_len) {
            err_set(err, errlen, "tensor \"%s\": data_offsets [%llu,%llu] out of range: the "
                    "data section is %zu bytes", net_tensors[t].name,
                    (unsigned long long)begin[t], (unsigned long long)end[t], data_len);
            goto cleanup;
        }
    }

    /* Offsets must tile [0, DATA_BYTES) exactly, in whatever order the
     * writer chose (the reference sorts by name): walk them by begin. */
    uint64_t pos = 0;
    for (int k = 0; k < NET_NUM_TENSORS; k++) {
        int best = -1;
        for (int t = 0; t < NET_NUM_TENSORS; t++)
            if (seen[t] == 1 && (best < 0 || begin[t] < begin[best]))
                best = t;
        seen[best] = 2;
        if (begin[best] < pos) {
            err_set(err, errlen, "tensor \"%s\": data_offsets [%llu,%llu] overlap the "
                    "previous tensor, which ends at %llu", net_tensors[best].name,
                    (unsigned long long)begin[best], (unsigned long long)end[best],
                    (unsigned long long)pos);
            goto cleanup;
        }
        if (begin[best] > pos) {
            err_set(err, errlen, "tensor \"%s\": data_offsets [%llu,%llu] leave a gap after "
                    "byte %llu", net_tensors[best].name, (unsigned long long)begin[best],
                    (unsigned long long)end[best], (unsigned long long)pos);
            goto cleanup;
        }
        pos = end[best];
    }
    /* pos == DATA_BYTES here: no gaps, and the sizes add up. */
    if (data_len > DATA_BYTES) {
        err_set(err, errlen, "%zu trailing bytes after the tensor data", data_len - DATA_BYTES);
        goto cleanup;
    }

    /* Check every value before writing any, so params stay untouched. */
    const unsigned char *data = buf + 8 + n;
    for (int t = 0; t < NET_NUM_TENSORS; t++) {
        const unsigned char *src = data + begin[t];
        for (size_t i = 0; i < net_tensors[t].count; i++) {
            float v;
            memcpy(&v, src + i * sizeof v, sizeof v);
            if (!isfinite(v)) {
                err_set(err, errlen, "tensor \"%s\" element %zu is %s", net_tensors[t].name, i,
                        isnan(v) ? "NaN" : "infinite");
                goto cleanup;
            }
        }
    }
    for (int t = 0; t < NET_NUM_TENSORS; t++)
        memcpy(params + net_tensors[t].offset, data + begin[t],
               net_tensors[t].count * sizeof(float));
    if (meta)
        *meta = *m;
    ret = 0;
cleanup:
    cJSON_Delete(root);
    free(m);
    return ret;
}

int ckpt_load(const char *path, float *params, ckpt_meta *meta, char *err, size_t errlen)
{
    /* Larger than this cannot be a checkpoint of this network. */
    const size_t max_size = 8 + CKPT_MAX_HEADER + DATA_BYTES;
    unsigned char *buf = NULL;
    struct stat st;
    int fd = -1, ret = -1;

    if (!path || !params) {
        err_set(err, errlen, "checkpoint: no path or parameters given");
        return -1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err_set(err, errlen, "%s: %s", path, strerror(errno));
        goto cleanup;
    }
    if (fstat(fd, &st) != 0) {
        err_set(err, errlen, "%s: %s", path, strerror(errno));
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        err_set(err, errlen, "%s: not a regular file", path);
        goto cleanup;
    }
    if ((uint64_t)st.st_size > max_size) {
        err_set(err, errlen, "%s: %lld bytes, larger than any checkpoint of %s (%zu)", path,
                (long long)st.st_size, NET_ARCH_NAME, max_size);
        goto cleanup;
    }
    size_t size = (size_t)st.st_size;
    buf = malloc(size ? size : 1);
    if (!buf) {
        err_set(err, errlen, "%s: out of memory", path);
        goto cleanup;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err_set(err, errlen, "%s: read error: %s", path, strerror(errno));
            goto cleanup;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (got != size) {
        err_set(err, errlen, "%s: file shrank while being read", path);
        goto cleanup;
    }
    char msg[400];
    if (ckpt_load_buffer(buf, size, params, meta, msg, sizeof msg) != 0) {
        err_set(err, errlen, "%s: %s", path, msg);
        goto cleanup;
    }
    ret = 0;
cleanup:
    if (fd >= 0)
        close(fd);
    free(buf);
    return ret;
}
