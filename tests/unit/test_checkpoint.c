/* Tests of model/checkpoint.c: round trip, layout, atomic replacement, and
 * every kind of broken file the strict reader must refuse (headers written
 * by hand here), each leaving the parameters untouched. */
#include "tests/unit/test.h"
#include "model/checkpoint.h"
#include "model/net.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DATA_BYTES ((size_t)NET_NUM_PARAMS * 4)

static uint64_t rnd_state = 0x1234567887654321ULL;
static uint32_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (uint32_t)(rnd_state >> 16);
}

/* Random finite floats of every magnitude, including -0 and subnormals, so
 * that "bit-identical" means something. */
static void fill_random(float *p)
{
    for (int i = 0; i < NET_NUM_PARAMS; i++) {
        uint32_t bits;
        float f;
        do {
            bits = rnd();
            memcpy(&f, &bits, 4);
        } while (!isfinite(f));
        p[i] = (i % 3 == 0) ? f : ((float)(rnd() % 20001) - 10000.0f) / 7919.0f;
    }
    p[1] = -0.0f;
    p[2] = 1e-40f; /* subnormal */
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static int write_all(const char *path, const void *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = len == 0 || fwrite(b, 1, len, f) == len;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* ---- Hand-written headers --------------------------------------------- */

/* One tensor entry of a hand-made header. */
typedef struct {
    char name[64];
    char dtype[16];
    char shape[64];
    long long begin, end;
    int skip;
    char raw[128]; /* if set, the whole entry value, verbatim */
} entry;

/* The entries a correct writer produces: net_tensors[] order, packed. */
static void default_entries(entry *e)
{
    long long off = 0;
    for (int t = 0; t < NET_NUM_TENSORS; t++) {
        const net_tensor *nt = &net_tensors[t];
        memset(&e[t], 0, sizeof e[t]);
        snprintf(e[t].name, sizeof e[t].name, "%s", nt->name);
        snprintf(e[t].dtype, sizeof e[t].dtype, "F32");
        int l = 0;
        for (int d = 0; d < nt->ndim; d++)
            l += snprintf(e[t].shape + l, sizeof e[t].shape - (size_t)l, "%s%d", d ? "," : "",
                          nt->shape[d]);
        e[t].begin = off;
        e[t].end = off + (long long)nt->count * 4;
        off = e[t].end;
    }
}

/* Builds "8-byte length + header + data" into a malloc'd buffer. The header
 * is meta_json (may be NULL) then the n entries in the order given by
 * order[] (NULL = 0..n-1), then extra_json (may be NULL); padded with spaces
 * to 8 unless nopad is 1 (2: at least one space). data_len bytes of data follow, taken from params (the
 * value of tensor t at its entry's begin) and zero beyond. */
static unsigned char *build_file(const entry *e, int n, const int *order, const char *meta_json,
                                 const char *extra_json, const float *params, size_t data_len,
                                 int nopad, size_t *out_len)
{
    char *h = malloc(1 << 16);
    int l = snprintf(h, 1 << 16, "{");
    int first = 1;
    if (meta_json) {
        l += snprintf(h + l, (size_t)(1 << 16) - (size_t)l, "\"__metadata__\":%s", meta_json);
        first = 0;
    }
    for (int k = 0; k < n; k++) {
        const entry *x = &e[order ? order[k] : k];
        if (x->skip)
            continue;
        if (x->raw[0])
            l += snprintf(h + l, (size_t)(1 << 16) - (size_t)l, "%s\"%s\":%s", first ? "" : ",",
                          x->name, x->raw);
        else
            l += snprintf(h + l, (size_t)(1 << 16) - (size_t)l,
                          "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%s],\"data_offsets\":[%lld,%lld]}",
                          first ? "" : ",", x->name, x->dtype, x->shape, x->begin, x->end);
        first = 0;
    }
    if (extra_json)
        l += snprintf(h + l, (size_t)(1 << 16) - (size_t)l, ",%s", extra_json);
    l += snprintf(h + l, (size_t)(1 << 16) - (size_t)l, "}");
    if (nopad == 2)
        h[l++] = ' ';
    while (nopad != 1 && l % 8)
        h[l++] = ' ';
    size_t total = 8 + (size_t)l + data_len;
    unsigned char *b = calloc(1, total);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)l >> (8 * i));
    memcpy(b + 8, h, (size_t)l);
    for (int t = 0; t < NET_NUM_TENSORS && params; t++) {
        for (int k = 0; k < n; k++) {
            if (strcmp(e[k].name, net_tensors[t].name) != 0 || e[k].raw[0] || e[k].skip)
                continue;
            size_t nb = net_tensors[t].count * 4;
            if (e[k].begin >= 0 && (size_t)e[k].begin + nb <= data_len)
                memcpy(b + 8 + l + e[k].begin, params + net_tensors[t].offset, nb);
        }
    }
    free(h);
    *out_len = total;
    return b;
}

static float *params_good;  /* the values written into hand-made files */
static float *params_dst;   /* load target, checked untouched on refusal */
static float *params_copy;  /* its expected contents */

static void reset_dst(void)
{
    for (int i = 0; i < NET_NUM_PARAMS; i++)
        params_dst[i] = 42.0f + (float)(i % 7);
    memcpy(params_copy, params_dst, DATA_BYTES);
}

/* Loads buf both from memory and from a file; both must refuse with a
 * message containing `what` and leave params and meta untouched. */
static void expect_refuse(const char *test, const unsigned char *buf, size_t len,
                          const char *what)
{
    char err[512] = "", err2[512] = "";
    ckpt_meta meta;
    TEST_BEGIN(test);
    reset_dst();
    memset(&meta, 0, sizeof meta);
    ckpt_meta_set(&meta, "sentinel", "x");
    int r = ckpt_load_buffer(buf, len, params_dst, &meta, err, sizeof err);
    printf("# %s: %s\n", test, err);
    CHECK(r == -1, "ckpt_load_buffer returned %d", r);
    CHECK(strstr(err, what) != NULL, "message \"%s\" does not say \"%s\"", err, what);
    CHECK(memcmp(params_dst, params_copy, DATA_BYTES) == 0, "params were written");
    CHECK(meta.n == 1 && strcmp(meta.key[0], "sentinel") == 0, "meta was written");

    const char *p = tpath("bad.safetensors");
    CHECK(write_all(p, buf, len) == 0, "write fixture");
    r = ckpt_load(p, params_dst, &meta, err2, sizeof err2);
    CHECK(r == -1, "ckpt_load returned %d", r);
    CHECK(strstr(err2, p) != NULL, "ckpt_load message does not name the file: %s", err2);
    CHECK(strstr(err2, what) != NULL, "ckpt_load message \"%s\" does not say \"%s\"", err2,
          what);
    CHECK(memcmp(params_dst, params_copy, DATA_BYTES) == 0, "params were written");
    TEST_END();
}

/* Builds a file from entries and expects it refused. */
static void refuse_entries(const char *test, const entry *e, int n, const char *extra,
                           size_t data_len, const char *what)
{
    size_t len;
    unsigned char *b = build_file(e, n, NULL, "{\"k\":\"v\"}", extra, params_good, data_len,
                                  0, &len);
    expect_refuse(test, b, len, what);
    free(b);
}

static void test_meta_helpers(void)
{
    ckpt_meta m;
    char longkey[CKPT_KEY_MAX + 1], longval[CKPT_VAL_MAX + 1];
    memset(&m, 0, sizeof m);
    TEST_BEGIN("meta_set_get");
    CHECK(ckpt_meta_set(&m, "a", "1") == 0 && ckpt_meta_set(&m, "b", "2") == 0, "set");
    CHECK(ckpt_meta_set(&m, "a", "3") == 0 && m.n == 2, "replace added an entry: n=%d", m.n);
    CHECK(ckpt_meta_get(&m, "a") && strcmp(ckpt_meta_get(&m, "a"), "3") == 0, "get a");
    CHECK(ckpt_meta_get(&m, "zz") == NULL, "get missing");
    memset(longkey, 'k', CKPT_KEY_MAX);
    longkey[CKPT_KEY_MAX] = 0;
    memset(longval, 'v', CKPT_VAL_MAX);
    longval[CKPT_VAL_MAX] = 0;
    CHECK(ckpt_meta_set(&m, longkey, "x") == -1, "key of %d bytes accepted", CKPT_KEY_MAX);
    CHECK(ckpt_meta_set(&m, "x", longval) == -1, "value of %d bytes accepted", CKPT_VAL_MAX);
    longval[CKPT_VAL_MAX - 1] = 0;
    CHECK(ckpt_meta_set(&m, "x", longval) == 0, "value of %d bytes refused", CKPT_VAL_MAX - 1);
    CHECK(ckpt_meta_set(&m, "", "x") == -1, "empty key accepted");
    memset(&m, 0, sizeof m);
    char k[16];
    for (int i = 0; i < CKPT_MAX_META; i++) {
        snprintf(k, sizeof k, "k%d", i);
        CHECK(ckpt_meta_set(&m, k, "v") == 0, "entry %d refused", i);
    }
    CHECK(ckpt_meta_set(&m, "one-more", "v") == -1, "entry beyond CKPT_MAX_META accepted");
    CHECK(ckpt_meta_set(&m, "k3", "w") == 0, "replace in a full set refused");
    TEST_END();
}

/* No leftover temporary files in tmpdir. */
static int count_tmp_files(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp."))
            n++;
    closedir(d);
    return n;
}

static void test_round_trip(void)
{
    char err[512] = "";
    ckpt_meta in, out;
    float *p = malloc(DATA_BYTES), *q = malloc(DATA_BYTES);
    const char *path = tpath("model.safetensors");
    fill_random(p);

    TEST_BEGIN("round_trip");
    memset(&in, 0, sizeof in);
    ckpt_meta_set(&in, "test_accuracy", "0.9912");
    ckpt_meta_set(&in, "recipe", "keras-mnist-cnn: adam 1e-3, batch 64, 5 epochs, \"quoted\"\n\tü");
    ckpt_meta_set(&in, "architecture", "custom-arch-label");
    CHECK(ckpt_save(path, p, &in, err, sizeof err) == 0, "save: %s", err);
    memset(q, 0, DATA_BYTES);
    memset(&out, 0, sizeof out);
    CHECK(ckpt_load(path, q, &out, err, sizeof err) == 0, "load: %s", err);
    CHECK(memcmp(p, q, DATA_BYTES) == 0, "params differ after the round trip");
    for (int i = 0; i < in.n; i++) {
        const char *v = ckpt_meta_get(&out, in.key[i]);
        CHECK(v && strcmp(v, in.val[i]) == 0, "meta %s came back as %s", in.key[i],
              v ? v : "(missing)");
    }
    /* What every file records about itself, unless the caller said otherwise. */
    CHECK(ckpt_meta_get(&out, "format_version"), "no format_version");
    CHECK(ckpt_meta_get(&out, "mnistd_version"), "no mnistd_version");
    const char *c = ckpt_meta_get(&out, "created");
    CHECK(c && strlen(c) == 20 && c[4] == '-' && c[19] == 'Z', "created = %s", c ? c : "-");
    CHECK(count_tmp_files() == 0, "a temporary file is left behind");
    TEST_END();

    TEST_BEGIN("round_trip_null_meta");
    CHECK(ckpt_save(path, p, NULL, err, sizeof err) == 0, "save: %s", err);
    memset(q, 0, DATA_BYTES);
    CHECK(ckpt_load(path, q, NULL, err, sizeof err) == 0, "load: %s", err);
    CHECK(memcmp(p, q, DATA_BYTES) == 0, "params differ");
    CHECK(ckpt_load(path, q, &out, err, sizeof err) == 0, "load: %s", err);
    CHECK(ckpt_meta_get(&out, "architecture") &&
          strcmp(ckpt_meta_get(&out, "architecture"), NET_ARCH_NAME) == 0,
          "default architecture missing");
    TEST_END();

    /* The layout the safetensors reference writes and expects. */
    TEST_BEGIN("file_layout");
    size_t len = 0;
    unsigned char *b = read_all(path, &len);
    CHECK(b != NULL, "read back");
    if (b) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--)
            n = (n << 8) | b[i];
        CHECK(n % 8 == 0, "header length %llu not a multiple of 8", (unsigned long long)n);
        CHECK(len == 8 + n + DATA_BYTES, "file is %zu bytes, expected %llu", len,
              (unsigned long long)(8 + n + DATA_BYTES));
        CHECK(b[8] == '{', "header does not start with {");
        CHECK(memcmp(b + 8 + n, p, DATA_BYTES) == 0, "data section is not the params");
        char *h = strndup((const char *)b + 8, (size_t)n);
        CHECK(strstr(h, "\"conv1.weight\":{\"dtype\":\"F32\",\"shape\":[32,3,3,1],"
                        "\"data_offsets\":[0,1152]}") != NULL, "conv1.weight entry: %.300s", h);
        CHECK(strstr(h, "\"fc2.bias\":{\"dtype\":\"F32\",\"shape\":[10],"
                        "\"data_offsets\":[373248,373288]}") != NULL, "fc2.bias entry");
        free(h);
        free(b);
    }
    TEST_END();

    TEST_BEGIN("save_replaces_existing");
    struct stat st1, st2;
    CHECK(stat(path, &st1) == 0, "stat");
    for (int i = 0; i < NET_NUM_PARAMS; i++)
        q[i] = p[i] + 1.0f;
    CHECK(ckpt_save(path, q, NULL, err, sizeof err) == 0, "save: %s", err);
    CHECK(stat(path, &st2) == 0, "stat");
    CHECK(st1.st_ino != st2.st_ino, "the file was rewritten in place, not replaced by rename");
    float *r = malloc(DATA_BYTES);
    CHECK(ckpt_load(path, r, NULL, err, sizeof err) == 0, "load: %s", err);
    CHECK(memcmp(q, r, DATA_BYTES) == 0, "the new contents did not replace the old");
    CHECK(count_tmp_files() == 0, "a temporary file is left behind");
    free(r);
    TEST_END();

    TEST_BEGIN("save_failure_keeps_old_file");
    size_t len0 = 0, len1 = 0;
    unsigned char *before = read_all(path, &len0);
    q[777] = NAN;
    CHECK(ckpt_save(path, q, NULL, err, sizeof err) == -1, "NaN params saved");
    CHECK(strstr(err, "conv2.weight") && strstr(err, "NaN"), "message: %s", err);
    q[777] = INFINITY;
    CHECK(ckpt_save(path, q, NULL, err, sizeof err) == -1, "Inf params saved");
    CHECK(strstr(err, "infinite"), "message: %s", err);
    unsigned char *after = read_all(path, &len1);
    CHECK(before && after && len0 == len1 && memcmp(before, after, len0) == 0,
          "the old file changed");
    CHECK(count_tmp_files() == 0, "a temporary file is left behind");
    free(before);
    free(after);
    CHECK(ckpt_save(tpath("no-such-dir/m.safetensors"), p, NULL, err, sizeof err) == -1,
          "save into a missing directory succeeded");
    CHECK(strstr(err, "no-such-dir"), "message: %s", err);
    ckpt_meta bad;
    memset(&bad, 0, sizeof bad);
    ckpt_meta_set(&bad, "k", "\xff\xfe");
    CHECK(ckpt_save(path, p, &bad, err, sizeof err) == -1, "invalid UTF-8 metadata saved");
    CHECK(strstr(err, "UTF-8"), "message: %s", err);
    CHECK(count_tmp_files() == 0, "a temporary file is left behind");
    TEST_END();

    free(p);
    free(q);
}

static void test_accepts(void)
{
    entry e[NET_NUM_TENSORS];
    char err[512] = "";
    size_t len;
    ckpt_meta m;

    /* The Python reference writes tensors sorted by name: other offsets
     * order, same contents. */
    TEST_BEGIN("accepts_other_tensor_order");
    static const int order[NET_NUM_TENSORS] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0 };
    default_entries(e);
    long long off = 0;
    for (int k = 0; k < NET_NUM_TENSORS; k++) {
        entry *x = &e[order[k]];
        long long sz = x->end - x->begin;
        x->begin = off;
        x->end = off + sz;
        off += sz;
    }
    unsigned char *b = build_file(e, NET_NUM_TENSORS, order, NULL, NULL, params_good,
                                  DATA_BYTES, 0, &len);
    memset(params_dst, 0, DATA_BYTES);
    memset(&m, 0x11, sizeof m);
    CHECK(ckpt_load_buffer(b, len, params_dst, &m, err, sizeof err) == 0, "%s", err);
    CHECK(memcmp(params_dst, params_good, DATA_BYTES) == 0, "values landed in the wrong place");
    CHECK(m.n == 0, "no metadata in the file, %d entries loaded", m.n);
    free(b);
    TEST_END();

    TEST_BEGIN("accepts_unpadded_header");
    default_entries(e);
    b = build_file(e, NET_NUM_TENSORS, NULL, "{\"a\":\"b\"}", NULL, params_good, DATA_BYTES, 1,
                   &len);
    memset(params_dst, 0, DATA_BYTES);
    CHECK(ckpt_load_buffer(b, len, params_dst, &m, err, sizeof err) == 0, "%s", err);
    CHECK(memcmp(params_dst, params_good, DATA_BYTES) == 0, "values differ");
    CHECK(m.n == 1 && strcmp(ckpt_meta_get(&m, "a"), "b") == 0, "metadata");
    free(b);
    TEST_END();
}

static void test_refuses(void)
{
    entry e[NET_NUM_TENSORS + 2];
    size_t len;
    unsigned char *b;
    const int N = NET_NUM_TENSORS;

    default_entries(e);
    snprintf(e[0].shape, sizeof e[0].shape, "32,3,3,2");
    refuse_entries("refuse_wrong_shape", e, N, NULL, DATA_BYTES,
                   "shape [32,3,3,2], expected [32,3,3,1]");
    default_entries(e);
    snprintf(e[6].shape, sizeof e[6].shape, "576,64");
    refuse_entries("refuse_transposed_shape", e, N, NULL, DATA_BYTES,
                   "\"fc1.weight\": shape [576,64], expected [64,576]");
    default_entries(e);
    snprintf(e[0].shape, sizeof e[0].shape, "32,9");
    refuse_entries("refuse_wrong_ndim", e, N, NULL, DATA_BYTES, "shape [32,9]");
    default_entries(e);
    snprintf(e[1].shape, sizeof e[1].shape, "-32");
    refuse_entries("refuse_negative_dim", e, N, NULL, DATA_BYTES, "non-integer");

    /* cJSON would read "conv1.bias\u0000junk" as "conv1.bias" */
    default_entries(e);
    snprintf(e[1].name, sizeof e[1].name, "conv1.bias\\u0000junk");
    refuse_entries("refuse_nul_in_name", e, N, NULL, DATA_BYTES, "NUL character");
    /* an escaped backslash before "u0000" is plain text, not a NUL: the
     * name is then simply unknown */
    default_entries(e);
    snprintf(e[1].name, sizeof e[1].name, "conv1.bias\\\\u0000");
    refuse_entries("refuse_escaped_backslash_name_is_text", e, N, NULL, DATA_BYTES, "unknown tensor");

    default_entries(e);
    e[9].skip = 1;
    refuse_entries("refuse_missing_tensor", e, N, NULL, DATA_BYTES - 40,
                   "missing tensor \"fc2.bias\"");
    default_entries(e);
    refuse_entries("refuse_extra_tensor", e, N,
                   "\"fc3.weight\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
                   DATA_BYTES, "unknown tensor \"fc3.weight\"");
    default_entries(e);
    e[N] = e[3];
    refuse_entries("refuse_duplicate_tensor", e, N + 1, NULL, DATA_BYTES,
                   "\"conv2.bias\" appears twice");

    default_entries(e);
    snprintf(e[2].dtype, sizeof e[2].dtype, "F16");
    e[2].end = e[2].begin + (e[2].end - e[2].begin) / 2;
    refuse_entries("refuse_dtype_f16", e, N, NULL, DATA_BYTES, "dtype F16, expected F32");
    default_entries(e);
    snprintf(e[5].dtype, sizeof e[5].dtype, "F64");
    refuse_entries("refuse_dtype_f64", e, N, NULL, DATA_BYTES, "dtype F64, expected F32");
    default_entries(e);
    snprintf(e[5].raw, sizeof e[5].raw, "{\"shape\":[64],\"data_offsets\":[222720,222976]}");
    refuse_entries("refuse_dtype_missing", e, N, NULL, DATA_BYTES, "dtype missing");
    default_entries(e);
    snprintf(e[5].raw, sizeof e[5].raw,
             "{\"dtype\":\"F32\",\"shape\":[64],\"data_offsets\":[222720,222976],\"x\":1}");
    refuse_entries("refuse_unknown_field", e, N, NULL, DATA_BYTES, "unknown field \"x\"");

    default_entries(e);
    e[1].begin -= 4;
    e[1].end -= 4;
    refuse_entries("refuse_overlapping_offsets", e, N, NULL, DATA_BYTES, "overlap");
    default_entries(e);
    for (int t = 1; t < N; t++) {
        e[t].begin += 4;
        e[t].end += 4;
    }
    refuse_entries("refuse_gapped_offsets", e, N, NULL, DATA_BYTES + 4, "gap");
    default_entries(e);
    e[9].begin += 40;
    e[9].end += 40;
    refuse_entries("refuse_out_of_range_offsets", e, N, NULL, DATA_BYTES, "out of range");
    default_entries(e);
    e[4].end += 4;
    refuse_entries("refuse_offsets_size_mismatch", e, N, NULL, DATA_BYTES, "its shape needs");
    default_entries(e);
    e[4].end = e[4].begin - 4;
    refuse_entries("refuse_offsets_reversed", e, N, NULL, DATA_BYTES, "end before begin");
    default_entries(e);
    snprintf(e[7].raw, sizeof e[7].raw,
             "{\"dtype\":\"F32\",\"shape\":[64],\"data_offsets\":[370432.5,370688]}");
    refuse_entries("refuse_fractional_offset", e, N, NULL, DATA_BYTES, "data_offsets must be");
    default_entries(e);
    snprintf(e[7].raw, sizeof e[7].raw, "[1,2,3]");
    refuse_entries("refuse_entry_not_object", e, N, NULL, DATA_BYTES, "not a JSON object");

    default_entries(e);
    b = build_file(e, N, NULL, "{\"k\":1}", NULL, params_good, DATA_BYTES, 0, &len);
    expect_refuse("refuse_metadata_not_string", b, len, "not a string");
    free(b);
    b = build_file(e, N, NULL, "[]", NULL, params_good, DATA_BYTES, 0, &len);
    expect_refuse("refuse_metadata_not_object", b, len, "__metadata__ is not a JSON object");
    free(b);
    b = build_file(e, N, NULL, "{\"k\":\"\xc3\x28\"}", NULL, params_good, DATA_BYTES, 0, &len);
    expect_refuse("refuse_invalid_utf8", b, len, "UTF-8");
    free(b);

    /* Header-level damage. */
    default_entries(e);
    /* nopad 2: at least one padding space, for the junk-after-JSON cases */
    b = build_file(e, N, NULL, NULL, NULL, params_good, DATA_BYTES, 2, &len);
    unsigned char *c = malloc(len + 8);

    memcpy(c, b, len);
    uint64_t big = 1000000;
    for (int i = 0; i < 8; i++)
        c[i] = (unsigned char)(big >> (8 * i));
    expect_refuse("refuse_header_len_beyond_file", c, len, "larger than the file");
    big = 1ULL << 62;
    for (int i = 0; i < 8; i++)
        c[i] = (unsigned char)(big >> (8 * i));
    expect_refuse("refuse_header_len_huge", c, len, "larger than the file");
    memset(c, 0, 8);
    expect_refuse("refuse_header_len_zero", c, len, "header length is 0");

    memcpy(c, b, len);
    c[8 + 1] = '#';
    expect_refuse("refuse_header_not_json", c, len, "not valid JSON");
    memcpy(c, b, len);
    c[8] = '[';
    expect_refuse("refuse_header_not_object", c, len, "not a JSON object");
    memcpy(c, b, len);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = (hl << 8) | c[i];
    c[8 + hl - 1] = 'x'; /* junk in the padding after the closing brace */
    expect_refuse("refuse_junk_after_json", c, len, "after its JSON object");
    memcpy(c, b, len);
    c[8 + hl - 1] = '\0';
    expect_refuse("refuse_nul_in_header", c, len, "after its JSON object");

    expect_refuse("refuse_truncated_file", b, len - 100, "truncated: data section is");
    expect_refuse("refuse_truncated_in_header", b, 8 + hl - 3, "larger than the file");
    memcpy(c, b, len);
    memset(c + len, 0, 8);
    expect_refuse("refuse_trailing_bytes", c, len + 3, "3 trailing bytes");

    float bad = NAN;
    size_t at = 8 + hl + (net_tensors[6].offset + 5) * 4;
    memcpy(c, b, len);
    memcpy(c + at, &bad, 4);
    expect_refuse("refuse_nan_value", c, len, "\"fc1.weight\" element 5 is NaN");
    bad = -INFINITY;
    memcpy(c + len - 4, &bad, 4);
    memcpy(c + at, b + at, 4);
    expect_refuse("refuse_inf_value", c, len, "\"fc2.bias\" element 9 is infinite");

    expect_refuse("refuse_empty_file", b, 0, "empty file");
    expect_refuse("refuse_short_file", b, 7, "too short");

    /* A header over the limit, in a buffer big enough to hold it. */
    size_t hlen = CKPT_MAX_HEADER + 8;
    size_t hfile = 8 + hlen + DATA_BYTES - 16; /* under ckpt_load's file size bound */
    unsigned char *h = malloc(hfile);
    memset(h, ' ', hfile);
    for (int i = 0; i < 8; i++)
        h[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    h[8] = '{';
    h[9] = '}';
    expect_refuse("refuse_header_over_limit", h, hfile, "exceeds the limit");
    free(h);

    TEST_BEGIN("refuse_missing_file");
    char err[512] = "";
    reset_dst();
    CHECK(ckpt_load(tpath("absent.safetensors"), params_dst, NULL, err, sizeof err) == -1,
          "loaded a missing file");
    CHECK(strstr(err, "absent.safetensors") && strstr(err, "No such file"), "message: %s", err);
    CHECK(ckpt_load(tmpdir, params_dst, NULL, err, sizeof err) == -1, "loaded a directory");
    CHECK(strstr(err, "not a regular file"), "message: %s", err);
    CHECK(memcmp(params_dst, params_copy, DATA_BYTES) == 0, "params were written");
    TEST_END();

    /* Every prefix of the header region, and random byte damage to it: no
     * crash (the sanitizer builds check that), and every prefix refused. */
    TEST_BEGIN("refuse_every_truncation_and_damage");
    int accepted = 0;
    for (size_t l = 0; l < 8 + hl + 64; l++)
        if (ckpt_load_buffer(b, l, params_dst, NULL, err, sizeof err) == 0)
            accepted++;
    CHECK(accepted == 0, "%d truncated prefixes accepted", accepted);
    CHECK(memcmp(params_dst, params_copy, DATA_BYTES) == 0, "params were written");
    for (int k = 0; k < 3000; k++) {
        memcpy(c, b, 8 + hl);
        size_t pos = 8 + rnd() % hl;
        c[pos] = (unsigned char)rnd();
        if (ckpt_load_buffer(c, len, params_dst, NULL, err, sizeof err) == 0)
            CHECK(memcmp(params_dst, params_good, DATA_BYTES) == 0,
                  "accepted a damaged header (byte %zu) with different values", pos);
        reset_dst();
    }
    TEST_END();

    free(b);
    free(c);
}

/* Temporary files left by a killed process with our pid (a container's pid 1
 * after a restart) must not block a save: it takes the next free name. */
static void test_stale_temp_names(void)
{
    TEST_BEGIN("save_skips_stale_temp_names");
    char path[600], stale[700], err[512];
    snprintf(path, sizeof path, "%s", tpath("stale.safetensors"));
    /* more names than this process has used so far */
    for (int i = 0; i < 300; i++) {
        snprintf(stale, sizeof stale, "%s.tmp.%ld.%d", path, (long)getpid(), i);
        FILE *f = fopen(stale, "w");
        if (f) {
            fputs("left by a crash", f);
            fclose(f);
        }
    }
    int rc = ckpt_save(path, params_good, NULL, err, sizeof err);
    CHECK(rc == 0, "save blocked by stale temporary files: %s", err);
    CHECK(ckpt_load(path, params_dst, NULL, err, sizeof err) == 0 &&
              memcmp(params_dst, params_good, DATA_BYTES) == 0,
          "the saved file does not load back: %s", err);
    TEST_END();
}

/* One format key: the writer's, whatever the caller passes; files with the
 * older pair of keys load; another version is refused with a hint. */
static void test_format_key(void)
{
    char err[512] = "";
    ckpt_meta in, out;
    const char *path = tpath("format.safetensors");

    TEST_BEGIN("format_key_written_once_by_the_writer");
    memset(&in, 0, sizeof in);
    ckpt_meta_set(&in, CKPT_LEGACY_FORMAT_KEY, "mnistd-1");
    ckpt_meta_set(&in, CKPT_FORMAT_KEY, "7");
    CHECK(ckpt_save(path, params_good, &in, err, sizeof err) == 0, "save: %s", err);
    memset(&out, 0, sizeof out);
    CHECK(ckpt_load(path, params_dst, &out, err, sizeof err) == 0, "load: %s", err);
    const char *fv = ckpt_meta_get(&out, CKPT_FORMAT_KEY);
    CHECK(fv && strcmp(fv, CKPT_FORMAT_VERSION) == 0, "format_version %s", fv ? fv : "(none)");
    CHECK(ckpt_meta_get(&out, CKPT_LEGACY_FORMAT_KEY) == NULL, "the legacy key was saved again");
    TEST_END();

    entry e[NET_NUM_TENSORS];
    default_entries(e);
    size_t len;
    unsigned char *b = build_file(e, NET_NUM_TENSORS, NULL,
                                  "{\"format\":\"mnistd-1\",\"format_version\":\"1\"}", NULL,
                                  params_good, DATA_BYTES, 0, &len);
    TEST_BEGIN("format_both_legacy_keys_load");
    CHECK(ckpt_load_buffer(b, len, params_dst, NULL, err, sizeof err) == 0, "refused: %s", err);
    TEST_END();
    free(b);

    b = build_file(e, NET_NUM_TENSORS, NULL,
                   "{\"format_version\":\"2\",\"mnistd_version\":\"9.9.9\"}", NULL,
                   params_good, DATA_BYTES, 0, &len);
    expect_refuse("refuse_other_format_version", b, len, "format_version \"2\"");
    TEST_BEGIN("refuse_other_format_version_hint");
    CHECK(ckpt_load_buffer(b, len, params_dst, NULL, err, sizeof err) == -1 &&
          strstr(err, "reads format version 1") && strstr(err, "written by mnistd 9.9.9"),
          "no hint: %s", err);
    TEST_END();
    free(b);

    /* Other writers name their framework in "format" (safetensors' save_file). */
    b = build_file(e, NET_NUM_TENSORS, NULL, "{\"format\":\"np\"}", NULL, params_good,
                   DATA_BYTES, 0, &len);
    TEST_BEGIN("format_key_of_other_writers_loads");
    CHECK(ckpt_load_buffer(b, len, params_dst, NULL, err, sizeof err) == 0, "refused: %s", err);
    TEST_END();
    free(b);

    /* int8 activation scales in the metadata: three positive numbers, or the
     * file is refused with a message naming the key. */
    const char *scales[] = {"{\"int8_scales\":\"0.01 0.02 0.03\"}", "{\"int8_scales\":\"0.01 nan 0.03\"}",
                            "{\"int8_scales\":\"0.01 0.02\"}", "{\"int8_scales\":\"0 0.02 0.03\"}",
                            "{\"int8_scales\":\"\"}"};
    TEST_BEGIN("int8_scales_checked_on_load");
    for (int i = 0; i < 5; i++) {
        b = build_file(e, NET_NUM_TENSORS, NULL, scales[i], NULL, params_good, DATA_BYTES, 0, &len);
        err[0] = 0;
        int rc = ckpt_load_buffer(b, len, params_dst, NULL, err, sizeof err);
        if (i == 0)
            CHECK(rc == 0, "good scales refused: %s", err);
        else
            CHECK(rc == -1 && strstr(err, "int8_scales"), "%s: rc %d, \"%s\"", scales[i], rc, err);
        free(b);
    }
    TEST_END();

    /* The shipped model loads, and saved again it carries one format key. */
    TEST_BEGIN("shipped_model_loads_and_resaves_with_one_format_key");
    memset(&out, 0, sizeof out);
    if (ckpt_load("models/mnist-cnn.safetensors", params_dst, &out, err, sizeof err) != 0) {
        CHECK(0, "shipped model: %s", err);
    } else {
        CHECK(ckpt_save(path, params_dst, &out, err, sizeof err) == 0, "save: %s", err);
        CHECK(ckpt_load(path, params_dst, &out, err, sizeof err) == 0, "reload: %s", err);
        CHECK(ckpt_meta_get(&out, CKPT_LEGACY_FORMAT_KEY) == NULL &&
              ckpt_meta_get(&out, CKPT_FORMAT_KEY) != NULL, "format keys after the re-save");
    }
    TEST_END();
}

/* The temporary files of interrupted saves: those of gone processes and of
 * this one go; those of a live process, of other files and other names stay. */
static void test_remove_stale_temps(void)
{
    TEST_BEGIN("remove_stale_temps");
    pid_t gone = fork();
    if (gone == 0)
        _exit(0);
    waitpid(gone, NULL, 0);
    char model[600], name[700];
    snprintf(model, sizeof model, "%s", tpath("served.safetensors"));
    const char *fmt[] = {"%s.tmp.%ld.3", "%s.tmp.%ld.0"};
    long pids[] = {(long)getpid(), (long)gone};
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, fmt[i], model, pids[i]);
        CHECK(write_all(name, "x", 1) == 0, "fixture %s", name);
    }
    const char *keep[] = {"served.safetensors.tmp.1.0", "served.safetensors.tmp.x.0",
                          "served.safetensors.tmp.5", "served.safetensors.tmp.5.", "other.safetensors.tmp.%ld.0",
                          "served.safetensors"};
    for (int i = 0; i < 6; i++) {
        char base[100];
        snprintf(base, sizeof base, keep[i], (long)gone);
        CHECK(write_all(tpath(base), "x", 1) == 0, "fixture %s", base);
    }
    int removed = ckpt_remove_stale_temps(model);
    CHECK(removed == 2, "removed %d, expected 2", removed);
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, fmt[i], model, pids[i]);
        CHECK(access(name, F_OK) != 0, "%s is still there", name);
    }
    for (int i = 0; i < 6; i++) {
        char base[100];
        snprintf(base, sizeof base, keep[i], (long)gone);
        CHECK(access(tpath(base), F_OK) == 0, "%s was removed", base);
        unlink(tpath(base));
    }
    CHECK(ckpt_remove_stale_temps(tpath("no-such-dir/m.safetensors")) == 0, "missing directory");
    TEST_END();
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_ckpt.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        printf("FAIL setup: mkdtemp %s\n", tmpdir);
        return 1;
    }
    params_good = malloc(DATA_BYTES);
    params_dst = malloc(DATA_BYTES);
    params_copy = malloc(DATA_BYTES);
    fill_random(params_good);

    test_meta_helpers();
    test_round_trip();
    test_accepts();
    test_refuses();
    test_stale_temp_names();
    test_format_key();
    test_remove_stale_temps();

    free(params_good);
    free(params_dst);
    free(params_copy);
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                unlink(tpath(e->d_name));
        closedir(d);
    }
    rmdir(tmpdir);
    TEST_EXIT();
}
