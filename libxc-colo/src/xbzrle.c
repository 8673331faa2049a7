/*
 * xbzrle.c - XBZRLE page deltas, QEMU's wire format byte for byte.
 *
 * The delta of a page is the XOR of its new and old bytes; it is sent as
 * alternating runs of unchanged and changed bytes:
 *
 *   delta  = pair pair ...     (nothing at all for equal pages)
 *   pair   = zrun nzrun
 *   zrun   = length            bytes left as they are; 0 only in the
 *                              first pair (the page starts with a change)
 *   nzrun  = length byte...    length >= 1 new bytes, copied as they are
 *   length = ULEB128, at most two bytes (14 bits, XBZRLE_MAX_RUN)
 *
 * The unchanged bytes after the last changed run are not written (no
 * trailing zero run), so a delta ends with an nzrun. Runs are maximal: the
 * encoder writes the same bytes as QEMU's xbzrle_encode_buffer(), and either
 * decoder reads the other's output. Pages over 16 KiB can hold runs longer
 * than 14 bits; see xbzrle_zero_run_cost() in xbzrle_impl.h.
 *
 * Encoding is pure: no allocation, no state but the choice of encoder path,
 * made once from the CPU (or forced by XCC_XBZRLE_IMPL /
 * xcc_xbzrle_set_impl()). The paths only differ in how they build the page's
 * change mask; see xbzrle_impl.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "xbzrle_impl.h"
#include "xccolo.h"

/* The environment variable that forces a path at first use. */
#define XBZRLE_IMPL_ENV "XCC_XBZRLE_IMPL"

/* ------------------------------------------------------------------------ */
/* Scalar path: 8 bytes at a time with plain integer operations.            */
/* ------------------------------------------------------------------------ */

/* The mask word of the 64 bytes at o, from eight 8-byte words. */
static inline __attribute__((always_inline)) uint64_t
scalar_chunk(const uint8_t *old_page, const uint8_t *new_page, size_t o)
{
    uint64_t m = 0;

    for (unsigned k = 0; k < 8; k++)
        m |= xbzrle_word_mask(old_page + o + 8 * k, new_page + o + 8 * k)
             << (8 * k);
    return m;
}

int xbzrle_encode_scalar(const uint8_t *old_page, const uint8_t *new_page,
                         size_t len, uint8_t *dst, size_t dst_len)
{
    uint64_t mask[XBZRLE_MASK_WORDS + XBZRLE_MASK_PAD];
    uint64_t live[XBZRLE_LIVE_WORDS];

#define SCALAR_CHUNK(o) scalar_chunk(old_page, new_page, (o))
    XBZRLE_BUILD_MASKS(SCALAR_CHUNK, old_page, new_page, len, mask);
#undef SCALAR_CHUNK
    xbzrle_live_scalar(mask, (len + 63) / 64, live);
    return xbzrle_encode_mask(mask, live, (len + 63) / 64, new_page, len, dst,
                              dst_len);
}

/* ------------------------------------------------------------------------ */
/* Path selection.                                                           */
/* ------------------------------------------------------------------------ */

/*
 * The decoder is picked per delta, by its length. A short delta (a few
 * sparse runs: 4 changed bytes in a page make about 16 bytes, 16 make about
 * 57) is a handful of tiny records: the VBMI table does not pay for its
 * build there (the VBMI decoder hands such deltas to the masked-copy
 * decoder), and a masked store per one-byte run costs more than the generic
 * decoder's short copy. Measured with `xc-colo bench codec` (decode of
 * 64 MiB of pages onto their old contents, AMD EPYC, gcc 12): 4 changed
 * bytes per page, generic 33-75 GB/s against 35-37 through the AVX-512
 * decoders; 16 changed bytes, generic ahead too. Longer deltas (dense
 * pages, hundreds of records) go to the path's own decoder, where the VBMI
 * table is 1.2-1.6x the generic decoder.
 */
#define XBZRLE_DECODE_SHORT 128u

struct xbzrle_impl {
    const char *name;
    xbzrle_encode_fn *encode;
    xbzrle_decode_fn *decode;       /* deltas of XBZRLE_DECODE_SHORT bytes on */
    xbzrle_decode_fn *decode_short; /* shorter ones */
    int (*supported)(void);
};

static int scalar_supported(void)
{
    return 1;
}

#if defined(__x86_64__)
/* The SIMD paths also use popcnt, tzcnt/lzcnt (bmi) in their phase 2. */
static int avx2_supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
           __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
}

static int avx512_supported(void)
{
    return avx2_supported() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

/* The table-driven decoder also needs vpermi2b (AVX-512 VBMI). */
static int avx512_vbmi_supported(void)
{
    return avx512_supported() && __builtin_cpu_supports("avx512vbmi");
}
#endif

/*
 * Best first: "auto" takes the first one the CPU supports, and a name
 * takes the first supported entry of that name ("avx512" decodes with the
 * VBMI table decoder where the CPU has VBMI).
 */
static const struct xbzrle_impl xbzrle_impls[] = {
#if defined(__x86_64__)
    {"avx512", xbzrle_encode_avx512, xbzrle_decode_avx512_vbmi,
     xbzrle_decode_generic, avx512_vbmi_supported},
    {"avx512", xbzrle_encode_avx512, xbzrle_decode_avx512,
     xbzrle_decode_generic, avx512_supported},
    {"avx2", xbzrle_encode_avx2, xbzrle_decode_generic, xbzrle_decode_generic,
     avx2_supported},
#endif
    {"scalar", xbzrle_encode_scalar, xbzrle_decode_generic,
     xbzrle_decode_generic, scalar_supported},
};

static _Atomic(const struct xbzrle_impl *) xbzrle_current;

static const struct xbzrle_impl *impl_best(void)
{
    for (size_t i = 0; i < sizeof(xbzrle_impls) / sizeof(xbzrle_impls[0]);
         i++)
        if (xbzrle_impls[i].supported())
            return &xbzrle_impls[i];
    return &xbzrle_impls[sizeof(xbzrle_impls) / sizeof(xbzrle_impls[0]) - 1];
}

/*
 * Resolves a name: 0 and *out set, or an errno (EINVAL unknown name,
 * ENOTSUP a path this CPU or build lacks).
 */
static int impl_lookup(const char *name, const struct xbzrle_impl **out)
{
    static const char *const known[] = {"auto", "scalar", "avx2", "avx512"};
    int is_known = 0;

    if (!name)
        return EINVAL;
    if (!strcmp(name, "auto")) {
        *out = impl_best();
        return 0;
    }
    for (size_t i = 0; i < sizeof(xbzrle_impls) / sizeof(xbzrle_impls[0]);
         i++) {
        if (strcmp(name, xbzrle_impls[i].name) ||
            !xbzrle_impls[i].supported())
            continue;
        *out = &xbzrle_impls[i];
        return 0;
    }
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        is_known |= !strcmp(name, known[i]);
    /* A known path compiled out (not x86-64) is unsupported, not unknown. */
    return is_known ? ENOTSUP : EINVAL;
}

/*
 * The path in force, chosen at first use. An unknown or unsupported
 * XCC_XBZRLE_IMPL falls back to "auto": the codec cannot log, and a wrong
 * value must not stop a migration. Two threads racing here pick the same.
 */
static const struct xbzrle_impl *impl_get(void)
{
    const struct xbzrle_impl *impl =
        atomic_load_explicit(&xbzrle_current, memory_order_acquire);
    const char *env;

    if (XBZRLE_LIKELY(impl != NULL))
        return impl;
    env = getenv(XBZRLE_IMPL_ENV);
    if (!env || !*env || impl_lookup(env, &impl) != 0)
        impl = impl_best();
    const struct xbzrle_impl *expected = NULL;
    /* A concurrent xcc_xbzrle_set_impl() wins over the environment. */
    if (!atomic_compare_exchange_strong(&xbzrle_current, &expected, impl))
        impl = expected;
    return impl;
}

int xcc_xbzrle_set_impl(const char *name)
{
    const struct xbzrle_impl *impl;
    int err = impl_lookup(name, &impl);

    if (err) {
        errno = err;
        return -1;
    }
    atomic_store_explicit(&xbzrle_current, impl, memory_order_release);
    return 0;
}

const char *xcc_xbzrle_impl(void)
{
    return impl_get()->name;
}

int xcc_xbzrle_impl_supported(const char *name)
{
    const struct xbzrle_impl *impl;

    return impl_lookup(name, &impl) == 0;
}

/* ------------------------------------------------------------------------ */
/* Public encode / decode.                                                   */
/* ------------------------------------------------------------------------ */

static int len_ok(size_t len)
{
    return len % 8 == 0 && len <= XBZRLE_MAX_LEN;
}

int xcc_xbzrle_encode(const uint8_t *old_page, const uint8_t *new_page,
                      size_t len, uint8_t *dst, size_t dst_len)
{
    int r;

    if (!len_ok(len) || (len && (!old_page || !new_page)) ||
        (dst_len && !dst)) {
        errno = EINVAL;
        return -1;
    }
    if (len == 0)
        return 0;
    r = impl_get()->encode(old_page, new_page, len, dst, dst_len);
    if (XBZRLE_UNLIKELY(r < 0)) {
        errno = r == XBZRLE_INEXPRESSIBLE ? ERANGE : ENOSPC;
        return -1;
    }
    return r;
}

int xbzrle_decode_generic(const uint8_t *src, size_t src_len, uint8_t *page,
                          size_t len)
{
    XBZRLE_DECODE_BODY(xbzrle_copy_short, XBZRLE_SHORT_RUN);
}

int xcc_xbzrle_decode(const uint8_t *src, size_t src_len, uint8_t *page,
                      size_t len)
{
    const struct xbzrle_impl *impl;
    int r;

    if (!len_ok(len) || (src_len && !src) || (len && !page)) {
        errno = EINVAL;
        return -1;
    }
    impl = impl_get();
    r = (src_len < XBZRLE_DECODE_SHORT ? impl->decode_short
                                       : impl->decode)(src, src_len, page, len);
    if (XBZRLE_UNLIKELY(r < 0)) {
        errno = EINVAL;
        return -1;
    }
    return r;
}

/* ------------------------------------------------------------------------ */
/* Validation without a page (the stream parser's check).                    */
/* ------------------------------------------------------------------------ */

/* Mirrors XBZRLE_DECODE_ONE rule for rule; fuzz_stream asserts that every
 * delta this accepts decodes. */
const char *xbzrle_validate(const uint8_t *src, size_t src_len, size_t len,
                            size_t *where)
{
    size_t i = 0, d = 0;

    *where = 0;
    if (!len_ok(len))
        return "page size the codec does not take";
    while (i < src_len) {
        size_t zrun, nzrun;

        *where = i;
        if (xbzrle_read_length(src, src_len, &i, &zrun) < 0)
            return "bad zero-run length (truncated, over 14 bits or "
                   "overlong)";
        if (zrun == 0 && *where > 0)
            return "empty zero run after the first";
        d += zrun;
        if (d > len)
            return "zero run passes the end of the page";
        *where = i;
        if (xbzrle_read_length(src, src_len, &i, &nzrun) < 0)
            return "bad or missing data-run length (truncated, over 14 bits "
                   "or overlong)";
        if (nzrun == 0)
            return "empty data run";
        if (nzrun > len - d)
            return "data run passes the end of the page";
        if (nzrun > src_len - i)
            return "data run passes the end of the delta";
        i += nzrun;
        d += nzrun;
    }
    return NULL;
}
