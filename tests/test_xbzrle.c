/*
 * test_xbzrle.c - the XBZRLE codec: QEMU's test vectors, every malformed
 * input rule, dst_len boundaries with guard bytes, 64 KiB pages with runs at
 * the 14-bit limit, and identical bytes from every encoder path.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xccolo.h"

#define PAGE 4096
#define BIG_PAGE 65536
#define MAX_RUN 0x3fff /* the format's 14-bit length limit */
#define GUARD 64
#define GUARD_BYTE 0xa5

static const char *const impls[] = {"scalar", "avx2", "avx512"};
#define NIMPLS (sizeof(impls) / sizeof(impls[0]))

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd();
}

/* new = old with each byte changed with probability per_mille / 1000. */
static void mutate(const uint8_t *old, uint8_t *new, size_t n,
                   unsigned per_mille)
{
    for (size_t i = 0; i < n; i++)
        new[i] = rnd() % 1000 < per_mille ? (uint8_t)(old[i] + 1 + rnd() % 255)
                                          : old[i];
}

/* A buffer of n bytes followed by GUARD guard bytes. */
static uint8_t *guarded(size_t n)
{
    uint8_t *p = malloc(n + GUARD);
    cr_assert_not_null(p);
    memset(p, GUARD_BYTE, n + GUARD);
    return p;
}

static void assert_guard(const uint8_t *p, size_t n, const char *what)
{
    for (size_t i = 0; i < GUARD; i++)
        cr_assert_eq(p[n + i], GUARD_BYTE, "%s: byte %zu past the end written",
                     what, i);
}

/* Encodes, decodes onto a copy of old, and checks the result is new. */
static int roundtrip(const uint8_t *old, const uint8_t *new, size_t len,
                     uint8_t *dst, size_t dst_len)
{
    int r = xcc_xbzrle_encode(old, new, len, dst, dst_len);
    if (r > 0) {
        uint8_t *page = guarded(len);
        memcpy(page, old, len);
        int d = xcc_xbzrle_decode(dst, (size_t)r, page, len);
        cr_assert(d >= 0, "decode of our own %d-byte delta failed", r);
        cr_assert(memcmp(page, new, len) == 0, "round trip lost bytes");
        assert_guard(page, len, "decode");
        free(page);
    } else if (r == 0) {
        cr_assert(memcmp(old, new, len) == 0, "0 for pages that differ");
    }
    return r;
}

/* ------------------------------------------------------------------------ */
/* QEMU's vectors.                                                           */
/* ------------------------------------------------------------------------ */

static const uint8_t vec_old_tail[] = {0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
                                       0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12,
                                       0x13, 0x68, 0x00, 0x00, 0x6b, 0x00, 0x6d};
static const uint8_t vec_new_tail[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                       0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
                                       0x0f, 0x68, 0x00, 0x00, 0x67, 0x00, 0x69};
static const uint8_t vec_delta[24] = {
    0xe9, 0x07, 0x0f, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
    0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x03, 0x01, 0x67, 0x01, 0x01, 0x69};

static void vector_pages(uint8_t *old, uint8_t *new)
{
    memset(old, 0, PAGE);
    memset(new, 0, PAGE);
    memcpy(old + 1001, vec_old_tail, sizeof(vec_old_tail));
    memcpy(new + 1001, vec_new_tail, sizeof(vec_new_tail));
}

/* Every test ends within this unless it sets its own .timeout. */
TestSuite(xbzrle, .timeout = 120);

Test(xbzrle, qemu_24_byte_vector_every_path)
{
    static uint8_t old[PAGE], new[PAGE], dst[PAGE];

    vector_pages(old, new);
    for (size_t i = 0; i < NIMPLS; i++) {
        if (xcc_xbzrle_set_impl(impls[i]) < 0) {
            printf("skip %s: %s\n", impls[i], strerror(errno));
            continue;
        }
        memset(dst, 0, sizeof(dst));
        cr_assert_eq(xcc_xbzrle_encode(old, new, PAGE, dst, PAGE), 24,
                     "%s", impls[i]);
        cr_assert_arr_eq(dst, vec_delta, 24, "%s: wrong bytes", impls[i]);
    }
}

Test(xbzrle, qemu_vector_decodes)
{
    static uint8_t old[PAGE], new[PAGE];

    vector_pages(old, new);
    /* Covered bytes: up to the end of the last non-zero run. */
    cr_assert_eq(xcc_xbzrle_decode(vec_delta, sizeof(vec_delta), old, PAGE),
                 1001 + 21);
    cr_assert_arr_eq(old, new, PAGE);
}

Test(xbzrle, last_byte_changed)
{
    static uint8_t old[PAGE], new[PAGE], dst[PAGE];
    static const uint8_t want[] = {0xff, 0x1f, 0x01, 0x01};

    new[PAGE - 1] = 1;
    cr_assert_eq(xcc_xbzrle_encode(old, new, PAGE, dst, PAGE), 4);
    cr_assert_arr_eq(dst, want, 4);
    cr_assert_eq(xcc_xbzrle_decode(dst, 4, old, PAGE), PAGE);
    cr_assert_arr_eq(old, new, PAGE);
}

Test(xbzrle, first_byte_changed_starts_with_zero_run_of_0)
{
    static uint8_t old[PAGE], new[PAGE], dst[PAGE];
    static const uint8_t want[] = {0x00, 0x01, 0x07};

    new[0] = 7;
    cr_assert_eq(xcc_xbzrle_encode(old, new, PAGE, dst, PAGE), 3);
    cr_assert_arr_eq(dst, want, 3);
}

Test(xbzrle, equal_pages_encode_to_nothing)
{
    static uint8_t old[PAGE], dst[PAGE];

    fill_random(old, PAGE);
    cr_assert_eq(xcc_xbzrle_encode(old, old, PAGE, dst, PAGE), 0);
    cr_assert_eq(xcc_xbzrle_encode(old, old, PAGE, NULL, 0), 0);
    cr_assert_eq(xcc_xbzrle_decode(dst, 0, old, PAGE), 0);
}

Test(xbzrle, every_second_byte_overflows)
{
    static uint8_t old[PAGE], new[PAGE], dst[PAGE];

    for (size_t i = 0; i < PAGE; i += 2)
        new[i] = 1;
    errno = 0;
    cr_assert_eq(xcc_xbzrle_encode(old, new, PAGE, dst, PAGE), -1);
    cr_assert_eq(errno, ENOSPC);
    /* 2048 runs of one byte, three bytes each. */
    static uint8_t big[2 * PAGE];
    cr_assert_eq(roundtrip(old, new, PAGE, big, sizeof(big)), 3 * PAGE / 2);
}

/* ------------------------------------------------------------------------ */
/* Malformed deltas: each rule.                                              */
/* ------------------------------------------------------------------------ */

struct bad_case {
    const char *why;
    size_t len;
    uint8_t src[8];
    size_t src_len;
};

static const struct bad_case bad_cases[] = {
    {"length over 14 bits (third ULEB byte)", PAGE, {0xff, 0xff, 0x01, 0x01, 0x07}, 5},
    {"length over 14 bits in the non-zero run", PAGE, {0x00, 0x81, 0x80, 0x01}, 4},
    {"overlong ULEB (second byte 0)", PAGE, {0x80, 0x00, 0x01, 0x07}, 4},
    {"overlong ULEB in the non-zero run", PAGE, {0x00, 0x81, 0x00, 0x07}, 4},
    {"zero-length non-zero run", PAGE, {0x05, 0x00}, 2},
    {"zero-length non-zero run later", PAGE, {0x00, 0x01, 0x07, 0x01, 0x00}, 5},
    {"zero run of 0 not at the start", PAGE, {0x01, 0x01, 0x07, 0x00, 0x01, 0x07}, 6},
    {"zero run past the page", 64, {0x41, 0x01, 0x07}, 3},
    {"zero run to the page end, then a run", 64, {0x40, 0x01, 0x07}, 3},
    {"non-zero run past the page", 64, {0x3f, 0x02, 0x07, 0x07}, 4},
    {"non-zero run past src_len", PAGE, {0x00, 0x05, 0x01, 0x02}, 4},
    {"truncated ULEB", PAGE, {0x80}, 1},
    {"truncated ULEB of the non-zero run", PAGE, {0x00, 0x80}, 2},
    {"zero run with no non-zero run", PAGE, {0x05}, 1},
    {"trailing zero run after a pair", PAGE, {0x00, 0x01, 0x07, 0x05}, 4},
};

Test(xbzrle, malformed_inputs_rejected_page_bounds_kept)
{
    for (size_t c = 0; c < sizeof(bad_cases) / sizeof(bad_cases[0]); c++) {
        const struct bad_case *bc = &bad_cases[c];
        for (size_t i = 0; i < NIMPLS; i++) {
            if (xcc_xbzrle_set_impl(impls[i]) < 0)
                continue;
            uint8_t *page = guarded(bc->len);
            /* An exact-size copy, so ASan sees any read past src_len. */
            uint8_t *src = malloc(bc->src_len);
            memcpy(src, bc->src, bc->src_len);
            memset(page, 0x11, bc->len);
            errno = 0;
            cr_assert_eq(xcc_xbzrle_decode(src, bc->src_len, page, bc->len),
                         -1, "%s (%s): accepted", bc->why, impls[i]);
            cr_assert_eq(errno, EINVAL, "%s", bc->why);
            assert_guard(page, bc->len, bc->why);
            free(src);
            free(page);
        }
    }
}

Test(xbzrle, well_formed_edge_deltas_accepted)
{
    static uint8_t page[64];
    /* A run ending exactly at the page end; a two-byte length. */
    static const uint8_t end_run[] = {0x3f, 0x01, 0x07};
    cr_assert_eq(xcc_xbzrle_decode(end_run, sizeof(end_run), page, 64), 64);
    cr_assert_eq(page[63], 7);
    static uint8_t big[PAGE];
    static const uint8_t two_byte[] = {0x80, 0x01, 0x01, 0x09};
    cr_assert_eq(xcc_xbzrle_decode(two_byte, sizeof(two_byte), big, PAGE), 129);
    cr_assert_eq(big[128], 9);
}

Test(xbzrle, bad_arguments)
{
    static uint8_t a[PAGE], b[PAGE], dst[PAGE];

    errno = 0;
    cr_assert_eq(xcc_xbzrle_encode(a, b, 12, dst, PAGE), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(xcc_xbzrle_encode(a, b, BIG_PAGE + 8, dst, PAGE), -1);
    cr_assert_eq(xcc_xbzrle_decode(dst, 1, a, 20), -1);
    cr_assert_eq(xcc_xbzrle_encode(NULL, b, PAGE, dst, PAGE), -1);
    cr_assert_eq(xcc_xbzrle_encode(a, b, 0, dst, PAGE), 0);
}

/* ------------------------------------------------------------------------ */
/* dst_len boundaries.                                                       */
/* ------------------------------------------------------------------------ */

/* Every dst_len from 0 to exact + 1: -1 below exact, the same bytes from
 * exact on, and never a byte written past dst_len. */
static void check_every_dst_len(const uint8_t *old, const uint8_t *new,
                                size_t len, const char *what)
{
    size_t cap = len + len / 2 + 64;
    uint8_t *ref = malloc(cap);
    int exact = xcc_xbzrle_encode(old, new, len, ref, cap);

    cr_assert(exact > 0, "%s: exact size %d", what, exact);
    for (size_t dl = 0; dl <= (size_t)exact + 1; dl++) {
        uint8_t *dst = guarded(dl);
        errno = 0;
        int r = xcc_xbzrle_encode(old, new, len, dst, dl);
        if (dl < (size_t)exact) {
            cr_assert_eq(r, -1, "%s: dst_len %zu < %d gave %d", what, dl,
                         exact, r);
            cr_assert_eq(errno, ENOSPC);
        } else {
            cr_assert_eq(r, exact, "%s: dst_len %zu gave %d", what, dl, r);
            cr_assert(memcmp(dst, ref, (size_t)exact) == 0, "%s", what);
        }
        assert_guard(dst, dl, what);
        free(dst);
    }
    free(ref);
}

Test(xbzrle, every_dst_len_every_path, .timeout = 120)
{
    static uint8_t old[BIG_PAGE], new[BIG_PAGE];
    static const unsigned densities[] = {1, 30, 100, 300, 500};
    char what[96];

    for (size_t i = 0; i < NIMPLS; i++) {
        if (xcc_xbzrle_set_impl(impls[i]) < 0) {
            printf("skip %s: %s\n", impls[i], strerror(errno));
            continue;
        }
        for (size_t d = 0; d < sizeof(densities) / sizeof(densities[0]); d++) {
            fill_random(old, PAGE);
            mutate(old, new, PAGE, densities[d]);
            new[0] = (uint8_t)(old[0] + 1);
            new[PAGE - 1] = (uint8_t)(old[PAGE - 1] + 1);
            snprintf(what, sizeof(what), "%s, %u/1000 changed", impls[i],
                     densities[d]);
            check_every_dst_len(old, new, PAGE, what);
        }
        /* Small pages: the fast paths' slack matters most here. */
        for (size_t len = 8; len <= 256; len += 8) {
            fill_random(old, len);
            mutate(old, new, len, 400);
            new[len / 2] = (uint8_t)(old[len / 2] ^ 0x40);
            snprintf(what, sizeof(what), "%s, len %zu", impls[i], len);
            check_every_dst_len(old, new, len, what);
        }
        /* A 64 KiB page with split zero runs and a long non-zero run. */
        memset(old, 0, BIG_PAGE);
        memset(new, 0, BIG_PAGE);
        memset(new + 40000, 0x33, 300);
        new[BIG_PAGE - 1] = 1;
        snprintf(what, sizeof(what), "%s, 64 KiB", impls[i]);
        check_every_dst_len(old, new, BIG_PAGE, what);
    }
}

/* ------------------------------------------------------------------------ */
/* 64 KiB pages and the 14-bit limit.                                        */
/* ------------------------------------------------------------------------ */

Test(xbzrle, zero_run_over_14_bits_is_split)
{
    static uint8_t old[BIG_PAGE], new[BIG_PAGE], dst[BIG_PAGE];
    /* 65535 unchanged bytes: three splits (zero run 16383, the next
     * unchanged byte as a one-byte literal), then 16383 and the change. */
    static const uint8_t want[] = {0xff, 0x7f, 0x01, 0x00, 0xff, 0x7f,
                                   0x01, 0x00, 0xff, 0x7f, 0x01, 0x00,
                                   0xff, 0x7f, 0x01, 0x01};

    new[BIG_PAGE - 1] = 1;
    for (size_t i = 0; i < NIMPLS; i++) {
        if (xcc_xbzrle_set_impl(impls[i]) < 0)
            continue;
        cr_assert_eq(roundtrip(old, new, BIG_PAGE, dst, sizeof(dst)),
                     (int)sizeof(want), "%s", impls[i]);
        cr_assert_arr_eq(dst, want, sizeof(want), "%s", impls[i]);
    }
}

Test(xbzrle, zero_runs_around_the_limit)
{
    static uint8_t old[BIG_PAGE], new[BIG_PAGE], dst[BIG_PAGE];
    static const size_t gaps[] = {MAX_RUN - 1, MAX_RUN,     MAX_RUN + 1,
                                  MAX_RUN + 2, MAX_RUN + 3, 2 * MAX_RUN + 1,
                                  2 * MAX_RUN + 2, 2 * MAX_RUN + 3};

    for (size_t g = 0; g < sizeof(gaps) / sizeof(gaps[0]); g++) {
        fill_random(old, BIG_PAGE);
        memcpy(new, old, BIG_PAGE);
        /* A change at 0, then gaps[g] unchanged bytes, then a change. */
        new[0] ^= 1;
        new[1 + gaps[g]] ^= 1;
        for (size_t i = 0; i < NIMPLS; i++) {
            if (xcc_xbzrle_set_impl(impls[i]) < 0)
                continue;
            int r = roundtrip(old, new, BIG_PAGE, dst, sizeof(dst));
            size_t splits = 0, z = gaps[g];
            while (z > MAX_RUN) {
                size_t k = z - 2 < MAX_RUN ? z - 2 : MAX_RUN;
                z -= k + 1;
                splits++;
            }
            /* 00 01 x, 4 bytes per split, the rest of the zero run, 01 x. */
            cr_assert_eq(r, (int)(3 + 4 * splits + (z < 128 ? 1 : 2) + 2),
                         "gap %zu (%s)", gaps[g], impls[i]);
        }
    }
}

Test(xbzrle, nonzero_run_at_the_limit)
{
    static uint8_t old[BIG_PAGE], new[BIG_PAGE], dst[BIG_PAGE];

    for (size_t i = 0; i < NIMPLS; i++) {
        if (xcc_xbzrle_set_impl(impls[i]) < 0)
            continue;
        memset(old, 0, BIG_PAGE);
        memset(new, 0, BIG_PAGE);
        /* Exactly 16383 changed bytes in a row: one two-byte length. */
        memset(new + 100, 0xee, MAX_RUN);
        cr_assert_eq(roundtrip(old, new, BIG_PAGE, dst, sizeof(dst)),
                     1 + 2 + MAX_RUN, "%s", impls[i]);
        cr_assert_eq(dst[0], 100);
        cr_assert_eq(dst[1], 0xff);
        cr_assert_eq(dst[2], 0x7f);
        /* One more cannot be expressed at all: the page goes whole. */
        new[100 + MAX_RUN] = 0xee;
        errno = 0;
        cr_assert_eq(xcc_xbzrle_encode(old, new, BIG_PAGE, dst, sizeof(dst)),
                     -1, "%s", impls[i]);
        cr_assert_eq(errno, ERANGE);
        /* A whole 64 KiB page changed: the same. */
        memset(new, 0x01, BIG_PAGE);
        cr_assert_eq(xcc_xbzrle_encode(old, new, BIG_PAGE, dst, sizeof(dst)),
                     -1);
    }
}

Test(xbzrle, long_runs_decode_at_the_limit)
{
    static uint8_t page[BIG_PAGE];
    static uint8_t src[4 + MAX_RUN];

    /* zero run 16383, non-zero run 16383: the largest lengths allowed. */
    src[0] = 0xff;
    src[1] = 0x7f;
    src[2] = 0xff;
    src[3] = 0x7f;
    memset(src + 4, 0x5a, MAX_RUN);
    cr_assert_eq(xcc_xbzrle_decode(src, sizeof(src), page, BIG_PAGE),
                 2 * MAX_RUN);
    cr_assert_eq(page[MAX_RUN - 1], 0);
    cr_assert_eq(page[MAX_RUN], 0x5a);
    cr_assert_eq(page[2 * MAX_RUN - 1], 0x5a);
    cr_assert_eq(page[2 * MAX_RUN], 0);
}

/* ------------------------------------------------------------------------ */
/* Every path, the same bytes.                                               */
/* ------------------------------------------------------------------------ */

Test(xbzrle, identical_output_across_paths, .timeout = 120)
{
    static uint8_t old[BIG_PAGE], new[BIG_PAGE];
    static uint8_t out[NIMPLS][BIG_PAGE + BIG_PAGE / 2 + 64];
    static const unsigned densities[] = {0, 1, 5, 20, 100, 300, 500, 900, 1000};
    static const size_t lens[] = {8, 16, 56, 64, 72, 120, 128, 200, 1000,
                                  4096, 4104, 8192, 16384, 65536};
    int have[NIMPLS], nhave = 0;

    for (size_t i = 0; i < NIMPLS; i++) {
        have[i] = xcc_xbzrle_set_impl(impls[i]) == 0;
        if (!have[i])
            printf("skip %s: this CPU lacks it (%s)\n", impls[i],
                   strerror(errno));
        nhave += have[i];
    }
    cr_assert(have[0], "the scalar path is always there");
    for (unsigned iter = 0; iter < 3000; iter++) {
        size_t len = lens[rnd() % (sizeof(lens) / sizeof(lens[0]))];
        unsigned dens = densities[rnd() % (sizeof(densities) /
                                           sizeof(densities[0]))];
        size_t dst_len = rnd() % 2 ? len : len + len / 2 + 64;
        int ref = 0;

        fill_random(old, len);
        mutate(old, new, len, dens);
        if (rnd() % 4 == 0) {
            /* A burst: a run of changed bytes of random length. */
            size_t at = rnd() % len, n = rnd() % 300;
            for (size_t k = at; k < len && k < at + n; k++)
                new[k] = (uint8_t)(old[k] + 1);
        }
        for (size_t i = 0; i < NIMPLS; i++) {
            if (!have[i])
                continue;
            xcc_xbzrle_set_impl(impls[i]);
            int r = xcc_xbzrle_encode(old, new, len, out[i], dst_len);
            if (i == 0) {
                ref = r;
                if (r > 0) {
                    static uint8_t page[BIG_PAGE];
                    memcpy(page, old, len);
                    cr_assert_eq(xcc_xbzrle_decode(out[0], (size_t)r, page,
                                                   len) >= 0,
                                 1);
                    cr_assert(memcmp(page, new, len) == 0,
                              "round trip, len %zu", len);
                }
                continue;
            }
            cr_assert_eq(r, ref, "%s returned %d, scalar %d (len %zu, %u/1000)",
                         impls[i], r, ref, len, dens);
            if (r > 0)
                cr_assert(memcmp(out[i], out[0], (size_t)r) == 0,
                          "%s bytes differ from scalar (len %zu, %u/1000)",
                          impls[i], len, dens);
        }
    }
    printf("compared %d paths on 3000 page pairs\n", nhave);
}

Test(xbzrle, decoders_agree_across_paths)
{
    static uint8_t old[PAGE], new[PAGE], delta[2 * PAGE], page[NIMPLS][PAGE];

    for (unsigned iter = 0; iter < 500; iter++) {
        fill_random(old, PAGE);
        mutate(old, new, PAGE, (unsigned)(rnd() % 600));
        xcc_xbzrle_set_impl("scalar");
        int r = xcc_xbzrle_encode(old, new, PAGE, delta, sizeof(delta));
        cr_assert(r >= 0);
        /* Damage some deltas so the error paths are compared too. */
        if (iter % 3 == 0 && r > 0)
            delta[rnd() % (size_t)r] = (uint8_t)rnd();
        int ref = 0;
        for (size_t i = 0; i < NIMPLS; i++) {
            if (xcc_xbzrle_set_impl(impls[i]) < 0)
                continue;
            memcpy(page[i], old, PAGE);
            int d = xcc_xbzrle_decode(delta, (size_t)r, page[i], PAGE);
            if (i == 0) {
                ref = d;
                continue;
            }
            cr_assert_eq(d, ref, "%s decode", impls[i]);
            cr_assert(memcmp(page[i], page[0], PAGE) == 0, "%s decode",
                      impls[i]);
        }
    }
}

/*
 * Dense deltas (where the table-driven AVX-512 VBMI decoder works) cut at
 * many lengths and damaged with the bytes that matter to the format (0,
 * 0x7f, 0x80, 0xff): every path must give the scalar path's verdict and
 * leave the same page, reading only an exact-size copy of the delta and
 * writing nothing past the page.
 */
#define CUT_MAX_PAGE 16384
#define CUT_EDGE 160 /* cut lengths this close to either end are all tried */

Test(xbzrle, decoders_agree_on_cut_and_damaged_dense_deltas, .timeout = 120)
{
    static const size_t lens[] = {64, 72, 200, 1000, PAGE, CUT_MAX_PAGE};
    static const unsigned densities[] = {30, 100, 300, 500};
    static const uint8_t damage[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
    static uint8_t old[CUT_MAX_PAGE], new[CUT_MAX_PAGE];
    static uint8_t delta[2 * CUT_MAX_PAGE], page[NIMPLS][CUT_MAX_PAGE + GUARD];

    for (unsigned iter = 0; iter < 120; iter++) {
        size_t len = lens[rnd() % (sizeof(lens) / sizeof(lens[0]))];
        unsigned dens = densities[rnd() % (sizeof(densities) /
                                           sizeof(densities[0]))];
        fill_random(old, len);
        mutate(old, new, len, dens);
        xcc_xbzrle_set_impl("scalar");
        int r = xcc_xbzrle_encode(old, new, len, delta, sizeof(delta));
        cr_assert(r >= 0);
        if (iter % 2 && r > 0)
            delta[rnd() % (size_t)r] = damage[rnd() % sizeof(damage)];
        /* Cuts: every length near both ends (where the table decoder
         * switches to its checked step), one in 16 in between. */
        for (size_t cut = 0; cut <= (size_t)r; cut++) {
            if (cut > CUT_EDGE && cut + CUT_EDGE < (size_t)r && rnd() % 16)
                continue;
            uint8_t *src = malloc(cut ? cut : 1);
            cr_assert_not_null(src);
            memcpy(src, delta, cut);
            int ref = 0;
            for (size_t i = 0; i < NIMPLS; i++) {
                if (xcc_xbzrle_set_impl(impls[i]) < 0)
                    continue;
                memcpy(page[i], old, len);
                memset(page[i] + len, GUARD_BYTE, GUARD);
                int d = xcc_xbzrle_decode(src, cut, page[i], len);
                assert_guard(page[i], len, impls[i]);
                if (i == 0) {
                    ref = d;
                    continue;
                }
                cr_assert_eq(d, ref,
                             "%s: %d, scalar %d (len %zu, cut %zu of %d)",
                             impls[i], d, ref, len, cut, r);
                cr_assert(memcmp(page[i], page[0], len) == 0,
                          "%s: pages differ (len %zu, cut %zu of %d)", impls[i],
                          len, cut, r);
            }
            if (cut == (size_t)r && iter % 2 == 0)
                cr_assert(ref >= 0 && memcmp(page[0], new, len) == 0,
                          "whole delta, len %zu", len);
            free(src);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Path selection.                                                           */
/* ------------------------------------------------------------------------ */

Test(xbzrle, set_impl_names)
{
    errno = 0;
    cr_assert_eq(xcc_xbzrle_set_impl("sse9"), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(xcc_xbzrle_set_impl(NULL), -1);
    cr_assert_eq(xcc_xbzrle_set_impl("scalar"), 0);
    cr_assert_str_eq(xcc_xbzrle_impl(), "scalar");
    cr_assert_eq(xcc_xbzrle_set_impl("auto"), 0);
    for (size_t i = 1; i < NIMPLS; i++) {
        errno = 0;
        int r = xcc_xbzrle_set_impl(impls[i]);
        if (r == 0) {
            cr_assert_str_eq(xcc_xbzrle_impl(), impls[i]);
            cr_assert_eq(xcc_xbzrle_impl_supported(impls[i]), 1);
        } else {
            cr_assert_eq(errno, ENOTSUP, "%s", impls[i]);
            cr_assert_eq(xcc_xbzrle_impl_supported(impls[i]), 0);
            printf("%s: not supported here\n", impls[i]);
        }
    }
}

Test(xbzrle, environment_forces_path_at_first_use)
{
    static uint8_t a[PAGE], b[PAGE], dst[PAGE];

    /* Each Criterion test is its own process: this is the first use. */
    setenv("XCC_XBZRLE_IMPL", "scalar", 1);
    b[5] = 1;
    cr_assert_eq(xcc_xbzrle_encode(a, b, PAGE, dst, PAGE), 3);
    cr_assert_str_eq(xcc_xbzrle_impl(), "scalar");
}

Test(xbzrle, unknown_environment_value_means_auto)
{
    const char *best = "scalar";

    setenv("XCC_XBZRLE_IMPL", "no-such-path", 1);
    if (xcc_xbzrle_impl_supported("avx512"))
        best = "avx512";
    else if (xcc_xbzrle_impl_supported("avx2"))
        best = "avx2";
    cr_assert_str_eq(xcc_xbzrle_impl(), best);
}
