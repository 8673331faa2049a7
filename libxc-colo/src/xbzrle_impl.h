/*
 * xbzrle_impl.h - what the XBZRLE encoder paths share (internal).
 *
 * Every encoder path works in two phases:
 *   1. a CPU-specific loop builds the change mask of the page: bit i of
 *      mask[i / 64] is set when byte i differs between the old and the new
 *      page (bits past len are clear);
 *   2. the code below, the same for every path, computes the exact encoded
 *      size from the mask (popcounts, plus a closer look only at runs long
 *      enough to need a two-byte length), bails out when it would not fit,
 *      and only then walks the runs and emits them.
 * Since phase 2 is shared and the masks are the same bits whatever built
 * them, every path emits the same bytes. The helpers are always_inline so
 * each path's copy is compiled for its own target (popcnt, tzcnt, wide
 * moves in the AVX2 and AVX-512 functions).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_XBZRLE_IMPL_H
#define XCC_XBZRLE_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * QEMU's XBZRLE lengths are ULEB128 of at most two bytes (uleb128_encode_small
 * asserts n <= 0x3fff and the decoder rejects a third byte): 14 bits.
 */
#define XBZRLE_MAX_RUN 0x3fffu

/* Lengths below this fit one ULEB128 byte (7 bits). */
#define XBZRLE_ULEB_ONE_BYTE 0x80u

/* Largest page the codec takes: a 64 KiB page (and runs fit an int). */
#define XBZRLE_MAX_LEN 65536u

/* Mask words needed for the largest page (one bit per byte). */
#define XBZRLE_MASK_WORDS (XBZRLE_MAX_LEN / 64)

/*
 * Short non-zero runs are copied with one fixed 32-byte move and both
 * lengths are stored as two bytes, then the output position advances by the
 * real sizes. That over-writes up to this many bytes, so the fast path runs
 * only while this much room is left in dst.
 */
#define XBZRLE_COPY_CHUNK 32u
#define XBZRLE_EMIT_SLACK (2u + 2u + XBZRLE_COPY_CHUNK)

#define XBZRLE_INLINE static inline __attribute__((always_inline))
#define XBZRLE_LIKELY(x) __builtin_expect(!!(x), 1)
#define XBZRLE_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* One encoder path: fills nothing but dst; returns as xcc_xbzrle_encode. */
typedef int xbzrle_encode_fn(const uint8_t *old_page, const uint8_t *new_page,
                             size_t len, uint8_t *dst, size_t dst_len);

/* The paths (xbzrle.c, xbzrle_simd.c). len is already validated. */
int xbzrle_encode_scalar(const uint8_t *old_page, const uint8_t *new_page,
                         size_t len, uint8_t *dst, size_t dst_len);
#if defined(__x86_64__)
int xbzrle_encode_avx2(const uint8_t *old_page, const uint8_t *new_page,
                       size_t len, uint8_t *dst, size_t dst_len);
int xbzrle_encode_avx512(const uint8_t *old_page, const uint8_t *new_page,
                         size_t len, uint8_t *dst, size_t dst_len);
#endif

/* Encode result for a delta that cannot be expressed at all (see below). */
#define XBZRLE_INEXPRESSIBLE (-2)

XBZRLE_INLINE size_t xbzrle_uleb_len(size_t n)
{
    return 1 + (n >= XBZRLE_ULEB_ONE_BYTE);
}

/*
 * Byte mask of one 8-byte word: bit k set when byte k of a and b differ.
 * Used by the scalar path and for the tail (len % 64) of the SIMD paths.
 */
XBZRLE_INLINE uint64_t xbzrle_word_mask(const uint8_t *a, const uint8_t *b)
{
    const uint64_t low7 = 0x7f7f7f7f7f7f7f7full;
    /* Bit k of byte 7 lands on bit 56 + k: gathers the eight flags. */
    const uint64_t gather = 0x0102040810204080ull;
    uint64_t x, y;

    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    x ^= y;
    /* The high bit of each byte is set iff that byte of x is non-zero. */
    x = (((x & low7) + low7) | x) & ~low7;
    return ((x >> 7) * gather) >> 56;
}

/* Fills mask[] for bytes [from, len) in 8-byte steps; from % 64 == 0. */
XBZRLE_INLINE void xbzrle_mask_tail(const uint8_t *old_page,
                                    const uint8_t *new_page, size_t from,
                                    size_t len, uint64_t *mask)
{
    uint64_t m = 0;

    if (from >= len)
        return;
    for (size_t o = from; o < len; o += 8)
        m |= xbzrle_word_mask(old_page + o, new_page + o) << (o - from);
    mask[from / 64] = m;
}

/*
 * Bytes taken by a zero run of z (not the trailing one, which is never
 * written). A run longer than 14 bits cannot be one length, and two zero
 * runs cannot follow each other, so it is split: z is cut into a zero run of
 * k = min(XBZRLE_MAX_RUN, z - 2) bytes, a one-byte non-zero run carrying the
 * next (unchanged) byte as it is, and the rest (at least 1 byte, so a split
 * never merges into the changed bytes that follow). QEMU's decoder applies
 * such a literal like any other. Only pages over 16 KiB need it.
 */
XBZRLE_INLINE size_t xbzrle_zero_run_cost(size_t z)
{
    size_t cost = 0;

    while (XBZRLE_UNLIKELY(z > XBZRLE_MAX_RUN)) {
        size_t k = z - 2 < XBZRLE_MAX_RUN ? z - 2 : XBZRLE_MAX_RUN;
        cost += xbzrle_uleb_len(k) + 2;
        z -= k + 1;
    }
    return cost + xbzrle_uleb_len(z);
}

/*
 * The runs that need more than one length byte are at least 128 bytes long,
 * so each holds at least one whole mask word of all-zero or all-one bits.
 * This visits each maximal group of such words, measures the run around it
 * and returns the bytes that the run costs beyond the one length byte the
 * popcount formula charged it. Returns XBZRLE_INEXPRESSIBLE when a non-zero
 * run exceeds 14 bits: the format has no way to split one (a zero run of 0 is
 * only allowed first), so such a page must go whole.
 */
XBZRLE_INLINE long xbzrle_long_run_extra(const uint64_t *mask, size_t nw)
{
    long extra = 0;
    size_t w = 0;

    while (w < nw) {
        uint64_t fill = mask[w];
        size_t g = w, before, after, run;
        int trailing;

        if (fill != 0 && fill != ~0ull) {
            w++;
            continue;
        }
        while (g + 1 < nw && mask[g + 1] == fill)
            g++;
        /* Neighbours differ from fill (groups are maximal), so the bit
         * counts below see a set bit. */
        before = w > 0 ? (size_t)__builtin_clzll(mask[w - 1] ^ fill) : 0;
        trailing = g + 1 == nw;
        after = trailing ? 0 : (size_t)__builtin_ctzll(mask[g + 1] ^ fill);
        run = before + 64 * (g - w + 1) + after;
        if (fill == 0) {
            if (!trailing)
                extra += (long)xbzrle_zero_run_cost(run) - 1;
        } else {
            if (run > XBZRLE_MAX_RUN)
                return XBZRLE_INEXPRESSIBLE;
            extra += run >= XBZRLE_ULEB_ONE_BYTE;
        }
        w = g + 1;
    }
    return extra;
}

/*
 * The exact encoded size: every changed byte, plus one length byte for each
 * non-zero run and for the zero run before it, plus what long runs add.
 * Returns 0 for equal pages, XBZRLE_INEXPRESSIBLE as above.
 */
XBZRLE_INLINE long xbzrle_encoded_size(const uint64_t *mask, size_t nw)
{
    uint64_t changed = 0, runs = 0, carry = 0, uniform = 0;
    long extra;

    for (size_t w = 0; w < nw; w++) {
        uint64_t x = mask[w];
        changed += (uint64_t)__builtin_popcountll(x);
        /* A run starts where a bit is set and the bit before it is not. */
        runs += (uint64_t)__builtin_popcountll(x & ~((x << 1) | carry));
        carry = x >> 63;
        uniform |= (uint64_t)((x == 0) | (x == ~0ull));
    }
    if (changed == 0)
        return 0;
    extra = uniform ? xbzrle_long_run_extra(mask, nw) : 0;
    if (extra < 0)
        return extra;
    return (long)(changed + 2 * runs) + extra;
}

/* Index of the first set bit at or after pos, or nw * 64 when none. */
XBZRLE_INLINE size_t xbzrle_next_set(const uint64_t *mask, size_t nw,
                                     size_t pos)
{
    size_t w = pos / 64;
    uint64_t x;

    if (w >= nw)
        return nw * 64;
    x = mask[w] & (~0ull << (pos % 64));
    while (!x) {
        if (++w == nw)
            return nw * 64;
        x = mask[w];
    }
    return w * 64 + (size_t)__builtin_ctzll(x);
}

/* Index of the first clear bit at or after pos, or nw * 64 when none. */
XBZRLE_INLINE size_t xbzrle_next_clear(const uint64_t *mask, size_t nw,
                                       size_t pos)
{
    size_t w = pos / 64;
    uint64_t x;

    if (w >= nw)
        return nw * 64;
    x = ~mask[w] & (~0ull << (pos % 64));
    while (!x) {
        if (++w == nw)
            return nw * 64;
        x = ~mask[w];
    }
    return w * 64 + (size_t)__builtin_ctzll(x);
}

/* Writes n (< 2^14) as ULEB128; returns the new output position. */
XBZRLE_INLINE size_t xbzrle_put_uleb(uint8_t *dst, size_t d, size_t n)
{
    if (n < XBZRLE_ULEB_ONE_BYTE) {
        dst[d] = (uint8_t)n;
        return d + 1;
    }
    dst[d] = (uint8_t)(n | XBZRLE_ULEB_ONE_BYTE);
    dst[d + 1] = (uint8_t)(n >> 7);
    return d + 2;
}

/*
 * As xbzrle_put_uleb without a branch: always stores two bytes (the second
 * is garbage for a one-byte length and is overwritten next).
 */
XBZRLE_INLINE size_t xbzrle_put_uleb2(uint8_t *dst, size_t d, size_t n)
{
    size_t two = n >= XBZRLE_ULEB_ONE_BYTE;

    dst[d] = (uint8_t)(n | (two << 7));
    dst[d + 1] = (uint8_t)(n >> 7);
    return d + 1 + two;
}

/*
 * Emits the runs described by mask. The caller has checked that the exact
 * size fits dst_len, so only the over-writes of the fast path need care.
 */
XBZRLE_INLINE size_t xbzrle_emit(const uint64_t *mask, size_t nw,
                                 const uint8_t *new_page, size_t len,
                                 uint8_t *dst, size_t dst_len)
{
    size_t pos = 0, d = 0;

    for (;;) {
        size_t s = xbzrle_next_set(mask, nw, pos), e, z, n;

        if (s >= len)
            break;
        /* Padding bits past len are clear, so the run ends by len. */
        e = xbzrle_next_clear(mask, nw, s);
        z = s - pos;
        n = e - s;
        while (XBZRLE_UNLIKELY(z > XBZRLE_MAX_RUN)) {
            /* Split as xbzrle_zero_run_cost() describes. */
            size_t k = z - 2 < XBZRLE_MAX_RUN ? z - 2 : XBZRLE_MAX_RUN;
            d = xbzrle_put_uleb(dst, d, k);
            dst[d++] = 1;
            dst[d++] = new_page[pos + k];
            pos += k + 1;
            z -= k + 1;
        }
        if (XBZRLE_LIKELY(d + XBZRLE_EMIT_SLACK <= dst_len &&
                          n <= XBZRLE_COPY_CHUNK &&
                          s + XBZRLE_COPY_CHUNK <= len)) {
            d = xbzrle_put_uleb2(dst, d, z);
            d = xbzrle_put_uleb2(dst, d, n);
            memcpy(dst + d, new_page + s, XBZRLE_COPY_CHUNK);
        } else {
            d = xbzrle_put_uleb(dst, d, z);
            d = xbzrle_put_uleb(dst, d, n);
            memcpy(dst + d, new_page + s, n);
        }
        d += n;
        pos = e;
    }
    return d;
}

/* Phase 2 for every path: size, early exit, emit. */
XBZRLE_INLINE int xbzrle_encode_mask(const uint64_t *mask, size_t nw,
                                     const uint8_t *new_page, size_t len,
                                     uint8_t *dst, size_t dst_len)
{
    long size = xbzrle_encoded_size(mask, nw);

    if (size <= 0)
        return (int)size;
    if ((size_t)size > dst_len)
        return -1;
    return (int)xbzrle_emit(mask, nw, new_page, len, dst, dst_len);
}

#endif /* XCC_XBZRLE_IMPL_H */
