/* Unit tests of server/strbuf: appends, printf-style appends that grow the
 * buffer, and fmt_g6 against the C library's "%.6g" on the numbers the
 * daemon prints (probabilities, which are floats) and on edge cases. */
#include <float.h>
#include <stdint.h>

#include "server/strbuf.h"
#include "tests/unit/test.h"

/* xorshift64*, for reproducible samples */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t next_u64(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static float float_of_bits(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* Compares fmt_g6(v) with snprintf("%.6g", v); counts and shows the first
 * few differences. */
static int mismatches = 0;
static void compare(double v)
{
    char want[64], got[64];
    snprintf(want, sizeof want, "%.6g", v);
    size_t n = fmt_g6(got, v);
    if (strcmp(want, got) != 0 || n != strlen(want)) {
        if (mismatches < 5)
            CHECK(0, "%.17g: fmt_g6 gave \"%s\" (length %zu), printf \"%s\"", v, got, n, want);
        mismatches++;
    }
}

int main(void)
{
    TEST_BEGIN("g6_edges");
    mismatches = 0;
    const double edges[] = {0.0, -0.0, 1.0, 0.5, 0.1, 0.0001, 0.00001, 0.000099999, 0.00009999995,
                            0.999999, 0.9999995, 0.99999949, 0.99999951, 1e-22, 9.99999e-23,
                            1.5e-22, 1e-12, 1e-13, 123456.5, 123457.5, 999999.4, 999999.5,
                            1e6, 1e7, 12.5, 0.125, 0.0000125, 3.0e-5, 2.5e-7, -1.0, -0.25,
                            1.0 / 3.0, 2.0 / 3.0, FLT_MIN, FLT_TRUE_MIN, FLT_MAX, DBL_MIN,
                            1e300, INFINITY, -INFINITY, NAN};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        compare(edges[i]);
    CHECK(mismatches == 0, "%d of %zu edge values differ", mismatches, sizeof edges / sizeof edges[0]);
    TEST_END();

    /* Every positive finite float is reachable from random bit patterns. */
    TEST_BEGIN("g6_random_floats_equal_printf");
    mismatches = 0;
    int n = 0;
    for (int i = 0; i < 1000000; i++) {
        float f = float_of_bits((uint32_t)(next_u64() >> 33));  /* sign bit 0 */
        if (!isfinite(f))
            continue;
        compare((double)f);
        n++;
    }
    CHECK(mismatches == 0, "%d of %d random floats differ", mismatches, n);
    TEST_END();

    /* Softmax outputs: exp of a spread of logits, normalised, as floats. */
    TEST_BEGIN("g6_probabilities_equal_printf");
    mismatches = 0;
    for (int i = 0; i < 1000000; i++) {
        double x = (double)(next_u64() >> 11) / 9007199254740992.0;  /* [0, 1) */
        compare((double)(float)exp(-60.0 * x));
        compare((double)(float)x);
    }
    CHECK(mismatches == 0, "%d of 2000000 probabilities differ", mismatches);
    TEST_END();

    TEST_BEGIN("sb_printf_grows_and_appends");
    strbuf sb = {0};
    sb_printf(&sb, "%s", "ab");
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 5; i++)
        sb_printf(&sb, "[%d:%s]", i, big);  /* each larger than the first capacity */
    sb_g6(&sb, 0.25);
    sb_append(&sb, "!", 1);
    size_t len = 0;
    char *s = sb_take(&sb, &len);
    CHECK(s != NULL, "sb_take failed");
    if (s) {
        size_t want = 2 + 5 * (3 + 999 + 1) + 4 + 1;
        CHECK(len == want && strlen(s) == want, "length %zu (strlen %zu), want %zu", len, strlen(s), want);
        CHECK(strncmp(s, "ab[0:xxx", 8) == 0, "starts %.12s", s);
        CHECK(strcmp(s + len - 7, "x]0.25!") == 0, "ends %s", s + len - 7);
        CHECK(strstr(s, "[4:x") != NULL, "fifth append missing");
    }
    free(s);
    TEST_END();

    TEST_EXIT();
}
