/*
 * xbzrle_impl.h - what the XBZRLE encoder paths share (internal).
 *
 * Every encoder path works in two phases:
 *   1. a CPU-specific loop builds the change mask of the page: bit i of
 *      mask[i / 64] is set when byte i differs between the old and the new
 *      page (bits past len are clear), and live[], one bit per changed word;
 *   2. the code below, the same for every path, computes the exact encoded
 *      size from the mask (popcounts, plus a closer look only at runs long
 *      enough to need a two-byte length), bails out when it would not fit,
 *      and only then lists the run boundaries and emits the runs. A page
 *      with so few changed words that it cannot overflow skips the size.
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
 * The common pair (a zero run of at most 14 bits, a non-zero run shorter
 * than XBZRLE_COPY_CHUNK) is written without a branch: two bytes for the
 * zero run's length (the second is garbage when one is enough), one for the
 * non-zero run's, one fixed 32-byte move, then the output position advances
 * by the real size. That writes up to XBZRLE_EMIT_SLACK bytes, so the fast
 * path runs only while that much room is left in dst (and 32 bytes are left
 * to read in the page).
 */
#define XBZRLE_COPY_CHUNK 32u
#define XBZRLE_EMIT_SLACK (3u + XBZRLE_COPY_CHUNK)

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
 * Phase 1's output besides the mask: live[j] bit b is set when mask word
 * 64 * j + b is non-zero, so phase 2 costs little for the (common) sparse
 * page: it visits only changed words and the words right after them.
 */
#define XBZRLE_LIVE_WORDS (XBZRLE_MASK_WORDS / 64)

/* Mask words rounded up to what the vector live[] builders read at once. */
#define XBZRLE_MASK_PAD 8u

/*
 * Phase 1 skeleton: `chunk(o)` is an expression giving the mask word of the
 * 64 bytes at offset o. Fills mask[] for a page of len bytes, and zeroes the
 * words after it up to a multiple of XBZRLE_MASK_PAD. Unrolled by four, so
 * the loop is little more than the loads and compares.
 */
#define XBZRLE_BUILD_MASKS(chunk, old_page, new_page, len, mask)               \
    do {                                                                       \
        size_t nfull_ = (len) / 64, w_ = 0, nw_ = ((len) + 63) / 64;           \
        for (; w_ + 4 <= nfull_; w_ += 4) {                                    \
            (mask)[w_] = chunk(w_ * 64);                                       \
            (mask)[w_ + 1] = chunk(w_ * 64 + 64);                              \
            (mask)[w_ + 2] = chunk(w_ * 64 + 128);                             \
            (mask)[w_ + 3] = chunk(w_ * 64 + 192);                             \
        }                                                                      \
        for (; w_ < nfull_; w_++)                                              \
            (mask)[w_] = chunk(w_ * 64);                                       \
        xbzrle_mask_tail(old_page, new_page, nfull_ * 64, len, mask);          \
        for (w_ = nw_; w_ % XBZRLE_MASK_PAD; w_++)                             \
            (mask)[w_] = 0;                                                    \
    } while (0)

/* live[] from mask[], a word at a time (the scalar path's way). */
XBZRLE_INLINE void xbzrle_live_scalar(const uint64_t *mask, size_t nw,
                                      uint64_t *live)
{
    for (size_t j = 0; j < (nw + 63) / 64; j++) {
        uint64_t lv = 0;
        for (size_t w = j * 64; w < nw && w < j * 64 + 64; w++)
            lv |= (uint64_t)(mask[w] != 0) << (w - j * 64);
        live[j] = lv;
    }
}

/*
 * Non-zero runs of 128 bytes or more need a second length byte; each holds
 * at least one whole mask word of ones. This visits each maximal group of
 * such words, measures the run around it and returns the extra bytes.
 * Returns XBZRLE_INEXPRESSIBLE when a non-zero run exceeds 14 bits: the
 * format has no way to split one (a zero run of 0 is only allowed first),
 * so such a page must go whole.
 */
XBZRLE_INLINE long xbzrle_long_nonzero_extra(const uint64_t *mask, size_t nw)
{
    long extra = 0;
    size_t w = 0;

    while (w < nw) {
        size_t g = w, before, after, run;

        if (mask[w] != ~0ull) {
            w++;
            continue;
        }
        while (g + 1 < nw && mask[g + 1] == ~0ull)
            g++;
        /* Neighbours are not all ones (groups are maximal). */
        before = w > 0 ? (size_t)__builtin_clzll(~mask[w - 1]) : 0;
        after = g + 1 < nw ? (size_t)__builtin_ctzll(~mask[g + 1]) : 0;
        run = before + 64 * (g - w + 1) + after;
        if (run > XBZRLE_MAX_RUN)
            return XBZRLE_INEXPRESSIBLE;
        extra += run >= XBZRLE_ULEB_ONE_BYTE;
        w = g + 1;
    }
    return extra;
}

/*
 * The exact encoded size: every changed byte, plus one length byte for each
 * non-zero run and one for the zero run before it, plus what long runs add.
 * Only changed words are visited. A zero run of 128 bytes or more spans a
 * whole zero word, i.e. a gap between changed words, which is measured
 * exactly (two neighbouring changed words hold at most 126 zero bits in a
 * row). Returns 0 for equal pages, XBZRLE_INEXPRESSIBLE as above.
 */
XBZRLE_INLINE long xbzrle_encoded_size(const uint64_t *mask,
                                       const uint64_t *live, size_t nw)
{
    uint64_t changed = 0, runs = 0, full = 0;
    long extra = 0;
    size_t prev = 0; /* last changed word + 1, 0 before the first */

    for (size_t j = 0; j < (nw + 63) / 64; j++) {
        for (uint64_t lv = live[j]; lv; lv &= lv - 1) {
            size_t w = j * 64 + (size_t)__builtin_ctzll(lv);
            uint64_t x = mask[w];
            uint64_t carry = w ? mask[w - 1] >> 63 : 0;

            changed += (uint64_t)__builtin_popcountll(x);
            /* A run starts where a bit is set and the bit before is not. */
            runs += (uint64_t)__builtin_popcountll(x & ~((x << 1) | carry));
            full |= (uint64_t)(x == ~0ull);
            if (w > prev) {
                /* Words [prev, w) are zero: the zero run crosses them. */
                size_t before = prev ? (size_t)__builtin_clzll(mask[prev - 1])
                                     : 0;
                size_t z = before + 64 * (w - prev) +
                           (size_t)__builtin_ctzll(x);
                extra += (long)xbzrle_zero_run_cost(z) - 1;
            }
            prev = w + 1;
        }
    }
    if (changed == 0)
        return 0;
    if (full) {
        long more = xbzrle_long_nonzero_extra(mask, nw);
        if (more < 0)
            return more;
        extra += more;
    }
    return (long)(changed + 2 * runs) + extra;
}

/*
 * The page is emitted in slices of this many bytes: the run boundaries of a
 * slice are listed first (a short dependency chain per boundary instead of
 * a load and a bit scan per run), then the runs are written from the list.
 * One slice holds a 4 KiB page; the list takes 2 bytes per boundary.
 */
#define XBZRLE_SLICE_BYTES 4096u
/* The boundary list is written four entries at a time. */
#define XBZRLE_FLATTEN_UNROLL 4u

/*
 * Count of trailing zeros of x; any value for 0 (the flattening loop below
 * stores such values only as garbage past its end). On x86-64 it is one
 * tzcnt (rep bsf on CPUs before BMI, which leaves the register alone for 0),
 * written in asm so the compiler neither branches on x == 0 nor sees
 * __builtin_ctzll(0), which C leaves undefined.
 */
XBZRLE_INLINE unsigned xbzrle_tz(uint64_t x)
{
#if defined(__x86_64__)
    uint64_t r = 64;

    __asm__("rep; bsfq %1, %0" : "+r"(r) : "rm"(x) : "cc");
    return (unsigned)r;
#else
    return x ? (unsigned)__builtin_ctzll(x) : 64u;
#endif
}

/*
 * Appends base + the index of every set bit of t to out[k..]; returns the
 * new k. The loop runs popcount / 4 rounds of four unconditional stores,
 * so its only branch does not depend on where the bits are; it writes up to
 * XBZRLE_FLATTEN_UNROLL - 1 garbage entries past the new k.
 */
XBZRLE_INLINE size_t xbzrle_flatten(uint16_t *out, size_t k, unsigned base,
                                    uint64_t t)
{
    size_t cnt = (size_t)__builtin_popcountll(t);
    uint16_t *o = out + k;

    for (size_t r = 0; r < cnt; r += XBZRLE_FLATTEN_UNROLL) {
        o[0] = (uint16_t)(base + xbzrle_tz(t));
        t &= t - 1;
        o[1] = (uint16_t)(base + xbzrle_tz(t));
        t &= t - 1;
        o[2] = (uint16_t)(base + xbzrle_tz(t));
        t &= t - 1;
        o[3] = (uint16_t)(base + xbzrle_tz(t));
        t &= t - 1;
        o += XBZRLE_FLATTEN_UNROLL;
    }
    return k + cnt;
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

/* Where the fast path of xbzrle_emit_run() may run: d < dst_end and
 * s < src_end (0 when never). */
struct xbzrle_limits {
    size_t dst_end, src_end;
};

XBZRLE_INLINE struct xbzrle_limits xbzrle_limits(size_t dst_len, size_t len)
{
    struct xbzrle_limits l;

    l.dst_end = dst_len >= XBZRLE_EMIT_SLACK ? dst_len - XBZRLE_EMIT_SLACK + 1
                                             : 0;
    l.src_end = len >= XBZRLE_COPY_CHUNK ? len - XBZRLE_COPY_CHUNK + 1 : 0;
    return l;
}

/*
 * Writes any pair exactly: long zero runs split, two-byte lengths, long
 * copies. Returns the new output position.
 */
XBZRLE_INLINE size_t xbzrle_emit_run_slow(uint8_t *dst, size_t d,
                                          const uint8_t *new_page, size_t pos,
                                          size_t s, size_t e)
{
    size_t z = s - pos, n = e - s;

    while (z > XBZRLE_MAX_RUN) {
        /* Split as xbzrle_zero_run_cost() describes. */
        size_t k = z - 2 < XBZRLE_MAX_RUN ? z - 2 : XBZRLE_MAX_RUN;
        d = xbzrle_put_uleb(dst, d, k);
        dst[d++] = 1;
        dst[d++] = new_page[pos + k];
        pos += k + 1;
        z -= k + 1;
    }
    d = xbzrle_put_uleb(dst, d, z);
    d = xbzrle_put_uleb(dst, d, n);
    memcpy(dst + d, new_page + s, n);
    return d + n;
}

/*
 * Writes the pair for the non-zero run [s, e) after the zero run [pos, s).
 * The caller has checked that the whole delta fits dst_len, so only the
 * over-writes of the fast path need care.
 */
XBZRLE_INLINE size_t xbzrle_emit_run(uint8_t *dst, size_t d,
                                     struct xbzrle_limits lim,
                                     const uint8_t *new_page, size_t pos,
                                     size_t s, size_t e)
{
    size_t z = s - pos, n = e - s;

    /* One test: z < 2^14, n < 32, room to write and to read. */
    if (XBZRLE_LIKELY(((z >> 14) | (n >> 5)) == 0 && d < lim.dst_end &&
                      s < lim.src_end)) {
        size_t two = z >= XBZRLE_ULEB_ONE_BYTE;
        dst[d] = (uint8_t)(z | two << 7);
        dst[d + 1] = (uint8_t)(z >> 7);
        d += 1 + two;
        dst[d] = (uint8_t)n;
        memcpy(dst + d + 1, new_page + s, XBZRLE_COPY_CHUNK);
        return d + 1 + n;
    }
    return xbzrle_emit_run_slow(dst, d, new_page, pos, s, e);
}

/*
 * Emits the runs described by mask, one slice (64 words, one live[] word)
 * at a time. A boundary is a byte whose changed-ness differs from the byte
 * before (byte -1 counts as unchanged), so boundaries alternate: start of a
 * non-zero run, its end, the next start... Only changed words are visited:
 * the one boundary an unchanged word can hold (a run ending at its first
 * byte) is added by the word before. A run still open at the end of the
 * page ends at len.
 */
XBZRLE_INLINE size_t xbzrle_emit(const uint64_t *mask, const uint64_t *live,
                                 size_t nw, const uint8_t *new_page,
                                 size_t len, uint8_t *dst, size_t dst_len)
{
    uint16_t bnd[XBZRLE_SLICE_BYTES + XBZRLE_FLATTEN_UNROLL];
    size_t pos = 0, d = 0, open_start = 0;
    int open = 0;
    struct xbzrle_limits lim = xbzrle_limits(dst_len, len);

    for (size_t j = 0; j < (nw + 63) / 64; j++) {
        size_t slice = j * XBZRLE_SLICE_BYTES, k = 0, i = 0;
        /* Bit b: is word b + 1 changed. */
        uint64_t next_live =
            live[j] >> 1 | (j + 1 < (nw + 63) / 64 ? live[j + 1] << 63 : 0);
        for (uint64_t lv = live[j]; lv; lv &= lv - 1) {
            unsigned b = (unsigned)__builtin_ctzll(lv);
            size_t w = j * 64 + b;
            uint64_t x = mask[w];
            uint64_t carry = w ? mask[w - 1] >> 63 : 0;
            /* Positions are relative to the slice: they fit 16 bits. */
            k = xbzrle_flatten(bnd, k, b * 64, x ^ ((x << 1) | carry));
            /* A run reaching the end of w ends at the first byte of w + 1
             * unless w + 1 is changed too (then it is visited next). */
            bnd[k] = (uint16_t)(b * 64 + 64);
            k += (x >> 63) & ~(next_live >> b) & 1;
        }
        if (open && k > 0) {
            d = xbzrle_emit_run(dst, d, lim, new_page, pos,
                                open_start, slice + bnd[0]);
            pos = slice + bnd[0];
            open = 0;
            i = 1;
        }
        for (; i + 1 < k; i += 2) {
            size_t s = slice + bnd[i], e = slice + bnd[i + 1];
            d = xbzrle_emit_run(dst, d, lim, new_page, pos, s, e);
            pos = e;
        }
        if (i < k) {
            open = 1;
            open_start = slice + bnd[i];
        }
    }
    if (open)
        d = xbzrle_emit_run(dst, d, lim, new_page, pos, open_start,
                            len);
    return d;
}

/*
 * A changed mask word adds at most 64 bytes and 32 runs of at most 4
 * length bytes each to the delta; zero-run splits add 4 bytes per 14 bits
 * of page. A page with few changed words whose bound fits dst_len skips the
 * size pass: it cannot overflow, nor hold a non-zero run over 14 bits.
 */
#define XBZRLE_WORD_MAX_BYTES (64u + 32u * 4u)
#define XBZRLE_FEW_LIVE_WORDS 16u

XBZRLE_INLINE size_t xbzrle_few_live_bound(const uint64_t *live, size_t nw,
                                           size_t len)
{
    size_t nlive = 0;

    for (size_t j = 0; j < (nw + 63) / 64; j++)
        nlive += (size_t)__builtin_popcountll(live[j]);
    if (nlive > XBZRLE_FEW_LIVE_WORDS)
        return SIZE_MAX;
    return nlive * XBZRLE_WORD_MAX_BYTES + 4 * (len / XBZRLE_MAX_RUN + 1);
}

/* Phase 2 for every path: size, early exit, emit. */
XBZRLE_INLINE int xbzrle_encode_mask(const uint64_t *mask,
                                     const uint64_t *live, size_t nw,
                                     const uint8_t *new_page, size_t len,
                                     uint8_t *dst, size_t dst_len)
{
    long size;

    if (xbzrle_few_live_bound(live, nw, len) <= dst_len)
        return (int)xbzrle_emit(mask, live, nw, new_page, len, dst, dst_len);
    size = xbzrle_encoded_size(mask, live, nw);

    if (size <= 0)
        return (int)size;
    if ((size_t)size > dst_len)
        return -1;
    return (int)xbzrle_emit(mask, live, nw, new_page, len, dst, dst_len);
}

/* ------------------------------------------------------------------------ */
/* Decoding (xcc_xbzrle_decode), shared by the decoder paths.                */
/* ------------------------------------------------------------------------ */

/* One decoder path: returns as xcc_xbzrle_decode; len is validated. */
typedef int xbzrle_decode_fn(const uint8_t *src, size_t src_len,
                             uint8_t *page, size_t len);

int xbzrle_decode_generic(const uint8_t *src, size_t src_len, uint8_t *page,
                          size_t len);
#if defined(__x86_64__)
int xbzrle_decode_avx512(const uint8_t *src, size_t src_len, uint8_t *page,
                         size_t len);
int xbzrle_decode_avx512_vbmi(const uint8_t *src, size_t src_len,
                              uint8_t *page, size_t len);
#endif

/* Decoder result for malformed input. */
#define XBZRLE_MALFORMED (-1)

/*
 * Reads one length at src[*i]: 0 and *v set, or -1 when it is missing, has
 * a third byte (over 14 bits) or is overlong (a second byte of 0, which
 * QEMU's encoder never writes).
 */
XBZRLE_INLINE int xbzrle_read_length(const uint8_t *src, size_t src_len,
                                     size_t *i, size_t *v)
{
    size_t at = *i;
    uint8_t b, hi;

    if (at >= src_len)
        return -1;
    b = src[at];
    if (XBZRLE_LIKELY(b < XBZRLE_ULEB_ONE_BYTE)) {
        *v = b;
        *i = at + 1;
        return 0;
    }
    if (at + 1 >= src_len)
        return -1;
    hi = src[at + 1];
    if (hi >= XBZRLE_ULEB_ONE_BYTE || hi == 0)
        return -1;
    *v = (size_t)(b & (XBZRLE_ULEB_ONE_BYTE - 1)) | (size_t)hi << 7;
    *i = at + 2;
    return 0;
}

/*
 * The one validator of a delta's grammar, with the decoder's own rules and
 * length reader (xbzrle_read_length, XBZRLE_DECODE_ONE): NULL when
 * xcc_xbzrle_decode(src, src_len, page, len) would accept the delta, else
 * what is wrong, with *where set to the byte of src it concerns. Reads
 * nothing but src; the stream parser calls it before any page is touched.
 */
const char *xbzrle_validate(const uint8_t *src, size_t src_len, size_t len,
                            size_t *where);

/* Copies n bytes, 1 <= n <= 16, touching exactly [0, n) of both sides:
 * two overlapping moves of the largest size that fits, no read of page. */
XBZRLE_INLINE void xbzrle_copy_short(uint8_t *to, const uint8_t *from,
                                     size_t n)
{
    if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, from, 8);
        memcpy(&b, from + n - 8, 8);
        memcpy(to, &a, 8);
        memcpy(to + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, from, 4);
        memcpy(&b, from + n - 4, 4);
        memcpy(to, &a, 4);
        memcpy(to + n - 4, &b, 4);
    } else {
        uint8_t a = from[0], b = from[n / 2], c = from[n - 1];
        to[0] = a;
        to[n / 2] = b;
        to[n - 1] = c;
    }
}

/* Runs up to this long take the short copy (or one masked move). */
#define XBZRLE_SHORT_RUN 16u

/*
 * The decoder's fast loop takes records whose two lengths are one ULEB byte
 * each (1..127: nearly every record of a dense delta). Such a record spans
 * at most XBZRLE_FAST_SRC_SPAN bytes of src and moves the page position by
 * at most XBZRLE_FAST_PAGE_SPAN, so one test of the positions against
 * bounds computed once replaces the per-record checks against src_len and
 * len.
 */
#define XBZRLE_FAST_SRC_SPAN (2u + XBZRLE_ULEB_ONE_BYTE - 1u)
#define XBZRLE_FAST_PAGE_SPAN (2u * (XBZRLE_ULEB_ONE_BYTE - 1u))

/* The high bit of each byte of a record's two length bytes read as one
 * 16-bit word, and a one in each byte to subtract. */
#define XBZRLE_LENGTHS_HIGH_BITS 0x8080u
#define XBZRLE_LENGTHS_ONES 0x0101u

/*
 * w holds a record's two length bytes (in either byte order: the test is
 * symmetric). Non-zero when either is not in 1..127, i.e. when the fast
 * loop must leave the record to the exact, checking step: a two-byte
 * length, a zero-length run (malformed, or the leading zero run of 0).
 * A byte b has its high bit set in b | (b - 1) iff b is 0 or >= 128; the
 * low byte's borrow into the high byte happens only when the low byte is 0,
 * which is flagged anyway.
 */
XBZRLE_INLINE unsigned xbzrle_lengths_not_fast(unsigned w)
{
    return (w | (w - XBZRLE_LENGTHS_ONES)) & XBZRLE_LENGTHS_HIGH_BITS;
}

/* The page and src positions below which a record is fast-loop safe. */
XBZRLE_INLINE size_t xbzrle_fast_end(size_t total, size_t span)
{
    return total >= span ? total - span + 1 : 0;
}

/*
 * Applies the one record at src[i] with every rule checked, the page
 * position being d (variables of the calling decoder), and advances both;
 * on a malformed record, returns XBZRLE_MALFORMED from the calling decoder
 * with nothing of that record written. Used for whatever the fast loops
 * leave: records near the ends of src or the page, two-byte lengths (most
 * records of a sparse delta), and every malformed record. copy_fast is the
 * decoder's own copy for runs up to fast_max bytes (see below).
 */
#define XBZRLE_DECODE_ONE(copy_fast, fast_max)                                 \
    do {                                                                       \
        size_t z1_, n1_;                                                       \
        int first_ = i == 0;                                                   \
        if (xbzrle_read_length(src, src_len, &i, &z1_) < 0 ||                  \
            (z1_ == 0 && !first_))                                             \
            return XBZRLE_MALFORMED;                                           \
        d += z1_;                                                              \
        if (d > len)                                                           \
            return XBZRLE_MALFORMED;                                           \
        if (xbzrle_read_length(src, src_len, &i, &n1_) < 0 || n1_ == 0)        \
            return XBZRLE_MALFORMED;                                           \
        if (n1_ > len - d || n1_ > src_len - i)                                \
            return XBZRLE_MALFORMED;                                           \
        if (XBZRLE_LIKELY(n1_ <= (fast_max)))                                  \
            copy_fast(page + d, src + i, n1_);                                 \
        else                                                                   \
            memcpy(page + d, src + i, n1_);                                    \
        d += n1_;                                                              \
        i += n1_;                                                              \
    } while (0)

/*
 * The decoder. copy_fast(to, from, n) copies a run of 1..fast_max bytes
 * and must touch nothing outside [0, n) of either buffer (the checked step
 * uses it at the very end of src). Records are applied in order, and a
 * malformed record is found before any of its bytes is written, so every
 * decoder leaves the same page behind when it rejects a delta.
 *
 * The fast loop's latency chain is the src position: one byte load of the
 * non-zero run's length and an add per record. Everything else (the
 * validity test, the page position, the copy) hangs off that chain and
 * overlaps the next record.
 */
#define XBZRLE_DECODE_BODY(copy_fast, fast_max)                                \
    do {                                                                       \
        const size_t src_fast_end =                                            \
            xbzrle_fast_end(src_len, XBZRLE_FAST_SRC_SPAN);                    \
        const size_t page_fast_end =                                           \
            xbzrle_fast_end(len, XBZRLE_FAST_PAGE_SPAN);                       \
        size_t i = 0, d = 0;                                                   \
        /* A delta too short for the fast loop (a sparse page: a few        \
         * records with two-byte zero runs) takes the plain checked loop:   \
         * measured, the fast loop's set-up cost sparse pages ~10%. */      \
        if (src_fast_end == 0) {                                               \
            while (i < src_len)                                                \
                XBZRLE_DECODE_ONE(copy_fast, fast_max);                        \
            return (int)d;                                                     \
        }                                                                      \
        while (i < src_len) {                                                  \
            while (XBZRLE_LIKELY(i < src_fast_end && d < page_fast_end)) {     \
                uint16_t w;                                                    \
                size_t z, n;                                                   \
                memcpy(&w, src + i, sizeof(w));                                \
                if (XBZRLE_UNLIKELY(xbzrle_lengths_not_fast(w)))               \
                    break;                                                     \
                z = src[i];                                                    \
                n = src[i + 1];                                                \
                d += z;                                                        \
                if (XBZRLE_LIKELY(n <= (fast_max)))                            \
                    copy_fast(page + d, src + i + 2, n);                       \
                else                                                           \
                    memcpy(page + d, src + i + 2, n);                          \
                d += n;                                                        \
                i += 2 + n;                                                    \
            }                                                                  \
            if (i >= src_len)                                                  \
                break;                                                         \
            XBZRLE_DECODE_ONE(copy_fast, fast_max);                            \
        }                                                                      \
        return (int)d;                                                         \
    } while (0)

#endif /* XCC_XBZRLE_IMPL_H */
