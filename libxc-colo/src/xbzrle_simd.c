/*
 * xbzrle_simd.c - the AVX2 and AVX-512BW encoder paths.
 *
 * Each builds the page's change mask 64 bytes at a time and hands it to the
 * shared phase 2 (xbzrle_impl.h). Function target attributes, not per-file
 * flags, enable the instructions, so the file builds with the project's
 * flags and the code runs only after xbzrle.c has checked the CPU.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "xbzrle_impl.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define XBZRLE_AVX2_TARGET "avx2,bmi,bmi2,popcnt,lzcnt"
/*
 * The AVX-512 path uses the AVX-512BW/VL compare-into-mask and masked
 * moves on 256-bit vectors, as glibc's EVEX string functions do: measured
 * here, 512-bit compares made sparse pages slower once the pages come from
 * DRAM (it costs the overlap between one page's work and the next page's
 * loads), while 256-bit EVEX keeps the AVX-512 gain in the compare.
 */
#define XBZRLE_AVX512_TARGET                                                   \
    "avx512f,avx512bw,avx512vl,avx2,bmi,bmi2,popcnt,lzcnt"

/* Mask word of the 64 bytes at o: two 32-byte compares. */
__attribute__((target(XBZRLE_AVX2_TARGET))) static inline
    __attribute__((always_inline)) uint64_t
    avx2_chunk(const uint8_t *old_page, const uint8_t *new_page, size_t o)
{
    __m256i a0 = _mm256_loadu_si256((const __m256i *)(old_page + o));
    __m256i b0 = _mm256_loadu_si256((const __m256i *)(new_page + o));
    __m256i a1 = _mm256_loadu_si256((const __m256i *)(old_page + o + 32));
    __m256i b1 = _mm256_loadu_si256((const __m256i *)(new_page + o + 32));
    uint32_t eq0 = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a0, b0));
    uint32_t eq1 = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a1, b1));

    return ~((uint64_t)eq1 << 32 | eq0);
}

/* live[] from mask[], four words per compare (mask[] is zero-padded). */
__attribute__((target(XBZRLE_AVX2_TARGET))) static inline
    __attribute__((always_inline)) void
    avx2_live(const uint64_t *mask, size_t nw, uint64_t *live)
{
    for (size_t j = 0; j < (nw + 63) / 64; j++) {
        uint64_t lv = 0;
        for (size_t g = 0; g < 64 && j * 64 + g < nw; g += 4) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(mask + j * 64 + g));
            __m256i z = _mm256_cmpeq_epi64(v, _mm256_setzero_si256());
            lv |= (uint64_t)(~_mm256_movemask_pd(_mm256_castsi256_pd(z)) & 0xf)
                  << g;
        }
        live[j] = lv;
    }
}

__attribute__((target(XBZRLE_AVX2_TARGET))) int
xbzrle_encode_avx2(const uint8_t *old_page, const uint8_t *new_page,
                   size_t len, uint8_t *dst, size_t dst_len)
{
    uint64_t mask[XBZRLE_MASK_WORDS + XBZRLE_MASK_PAD];
    uint64_t live[XBZRLE_LIVE_WORDS];

#define AVX2_CHUNK(o) avx2_chunk(old_page, new_page, (o))
    XBZRLE_BUILD_MASKS(AVX2_CHUNK, old_page, new_page, len, mask);
#undef AVX2_CHUNK
    avx2_live(mask, (len + 63) / 64, live);
    return xbzrle_encode_mask(mask, live, (len + 63) / 64, new_page, len, dst,
                              dst_len);
}

/* Mask word of the 64 bytes at o: two 32-byte compares into masks. */
__attribute__((target(XBZRLE_AVX512_TARGET))) static inline
    __attribute__((always_inline)) uint64_t
    avx512_chunk(const uint8_t *old_page, const uint8_t *new_page, size_t o)
{
    __m256i a0 = _mm256_loadu_si256((const __m256i *)(old_page + o));
    __m256i b0 = _mm256_loadu_si256((const __m256i *)(new_page + o));
    __m256i a1 = _mm256_loadu_si256((const __m256i *)(old_page + o + 32));
    __m256i b1 = _mm256_loadu_si256((const __m256i *)(new_page + o + 32));
    uint64_t lo = _mm256_cmpneq_epi8_mask(a0, b0);
    uint64_t hi = _mm256_cmpneq_epi8_mask(a1, b1);

    return hi << 32 | lo;
}

/* live[] from mask[], four words per test (mask[] is zero-padded). */
__attribute__((target(XBZRLE_AVX512_TARGET))) static inline
    __attribute__((always_inline)) void
    avx512_live(const uint64_t *mask, size_t nw, uint64_t *live)
{
    for (size_t j = 0; j < (nw + 63) / 64; j++) {
        uint64_t lv = 0;
        for (size_t g = 0; g < 64 && j * 64 + g < nw; g += 4) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(mask + j * 64 + g));
            lv |= (uint64_t)_mm256_test_epi64_mask(v, v) << g;
        }
        live[j] = lv;
    }
}

__attribute__((target(XBZRLE_AVX512_TARGET))) int
xbzrle_encode_avx512(const uint8_t *old_page, const uint8_t *new_page,
                     size_t len, uint8_t *dst, size_t dst_len)
{
    uint64_t mask[XBZRLE_MASK_WORDS + XBZRLE_MASK_PAD];
    uint64_t live[XBZRLE_LIVE_WORDS];

#define AVX512_CHUNK(o) avx512_chunk(old_page, new_page, (o))
    XBZRLE_BUILD_MASKS(AVX512_CHUNK, old_page, new_page, len, mask);
#undef AVX512_CHUNK
    avx512_live(mask, (len + 63) / 64, live);
    return xbzrle_encode_mask(mask, live, (len + 63) / 64, new_page, len, dst,
                              dst_len);
}

/* A run of up to 32 bytes is one masked load and one masked store: no
 * branch on its length and no byte outside it touched (masked-off lanes
 * neither fault nor write). */
#define XBZRLE_AVX512_RUN 32u

__attribute__((target(XBZRLE_AVX512_TARGET))) static inline
    __attribute__((always_inline)) void
    copy_masked(uint8_t *to, const uint8_t *from, size_t n)
{
    __mmask32 m = (__mmask32)_bzhi_u32(~0u, (unsigned)n);
    _mm256_mask_storeu_epi8(to, m, _mm256_maskz_loadu_epi8(m, from));
}

__attribute__((target(XBZRLE_AVX512_TARGET))) int
xbzrle_decode_avx512(const uint8_t *src, size_t src_len, uint8_t *page,
                     size_t len)
{
    XBZRLE_DECODE_BODY(copy_masked, XBZRLE_AVX512_RUN);
}

/* ------------------------------------------------------------------------ */
/* The AVX-512 VBMI decoder: records two at a time from a table.            */
/* ------------------------------------------------------------------------ */

/*
 * A serial decoder waits, for every record, on the load of its non-zero
 * length before it knows where the next record starts: one L1 load latency
 * and an add per record, which caps a dense delta (10-50% of bytes changed,
 * 300-1000 records a page) far below memcpy speed. This decoder takes that
 * chain off the critical path. For a block of src it computes, 64 offsets
 * at a time and without knowing where records start, what a record
 * starting at each offset k would span:
 *   single[k] = 2 + src[k + 1]  when src[k] and src[k + 1] are both in
 *                               1..127 (one-byte lengths, no zero-length
 *                               run), else 0;
 *   pair[k]   = single[k] + single[k + single[k]] when both are non-zero,
 *               else 0 (a vpermi2b gathers the second from 128 entries).
 * The decode loop then follows the records through pair[]: one load and an
 * add per two records, while the copies of earlier pairs run alongside.
 * Whatever pair[] does not cover (two-byte lengths, malformed records, the
 * ends of src and of the page) goes through XBZRLE_DECODE_ONE, one record
 * at a time with every check, so the result and the page left behind on a
 * rejected delta are those of every other decoder.
 * Measured on 64 MiB of 4 KiB pages (bench codec): 10% random 4.0 -> 4.8
 * GB/s, 50% random 1.5 -> 2.2 GB/s. What bounds it now is the work per
 * record (two length loads, one masked load and store) and, out of cache,
 * reading the page's lines before writing into them; the quad[] table
 * (four records per load) that was tried did not pay for its build.
 */
#define XBZRLE_VBMI_TARGET XBZRLE_AVX512_TARGET ",avx512vbmi,prfchw"

/* Offsets per vector, and vectors per table block. A block is built when
 * the decoder reaches it, so a long literal run skips its tables. */
#define XBZRLE_PAIR_CHUNK 64u
#define XBZRLE_PAIR_BLOCK_CHUNKS 4u
#define XBZRLE_PAIR_BLOCK (XBZRLE_PAIR_CHUNK * XBZRLE_PAIR_BLOCK_CHUNKS)
/* Shorter deltas (a few sparse records) are not worth a table. */
#define XBZRLE_PAIR_MIN_SRC 128u

static const uint8_t pair_iota[XBZRLE_PAIR_CHUNK] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
    32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};

/* The 64 bytes at src + o, zero past src_len: a masked load neither reads
 * nor faults there. */
__attribute__((target(XBZRLE_VBMI_TARGET))) static inline
    __attribute__((always_inline)) __m512i
    load_chunk(const uint8_t *src, size_t src_len, size_t o)
{
    if (XBZRLE_LIKELY(o + XBZRLE_PAIR_CHUNK <= src_len))
        return _mm512_loadu_si512(src + o);
    if (o >= src_len)
        return _mm512_setzero_si512();
    return _mm512_maskz_loadu_epi8(_bzhi_u64(~0ull, (unsigned)(src_len - o)),
                                   src + o);
}

/*
 * single[] for the 64 offsets from o. Zeros read past src_len make 0, and
 * so does a record that would run past src_len: a table entry promises
 * that its records lie inside src.
 */
__attribute__((target(XBZRLE_VBMI_TARGET))) static inline
    __attribute__((always_inline)) __m512i
    single_spans(const uint8_t *src, size_t src_len, size_t o)
{
    const __m512i one = _mm512_set1_epi8(1);
    /* b - 1 <= 126 (unsigned) iff b is in 1..127. */
    const __m512i top = _mm512_set1_epi8(XBZRLE_ULEB_ONE_BYTE - 2);
    __m512i z, n, span;
    __mmask64 ok;

    if (XBZRLE_UNLIKELY(o >= src_len))
        return _mm512_setzero_si512();
    z = load_chunk(src, src_len, o);
    n = load_chunk(src, src_len, o + 1);
    ok = _mm512_cmple_epu8_mask(_mm512_sub_epi8(z, one), top) &
         _mm512_cmple_epu8_mask(_mm512_sub_epi8(n, one), top);
    span = _mm512_maskz_add_epi8(ok, n, _mm512_set1_epi8(2));
    if (XBZRLE_UNLIKELY(src_len - o <
                        XBZRLE_PAIR_CHUNK + XBZRLE_FAST_SRC_SPAN)) {
        /* Near the end: offset k may span at most src_len - o - k bytes
         * (a byte, as src_len - o is small here; 0 past the end). */
        __m512i room =
            _mm512_subs_epu8(_mm512_set1_epi8((char)(uint8_t)(src_len - o)),
                             _mm512_loadu_si512(pair_iota));
        span = _mm512_maskz_mov_epi8(_mm512_cmple_epu8_mask(span, room), span);
    }
    return span;
}

/*
 * pair[] from single[] of these 64 offsets and the next 64. The second
 * record starts at k + single[k] <= 63 + 129; past the two vectors (index
 * bit 7 set: vpermi2b reaches 128 entries) the pair is left to the checked
 * step. A sum is at most 127 + 129: the
 * one that wraps, 256, becomes 0, which also means "not a pair".
 */
__attribute__((target(XBZRLE_VBMI_TARGET))) static inline
    __attribute__((always_inline)) __m512i
    pair_spans(__m512i cur, __m512i next)
{
    __m512i idx = _mm512_add_epi8(_mm512_loadu_si512(pair_iota), cur);
    __m512i second = _mm512_permutex2var_epi8(cur, idx, next);
    /* A zero single[k] gives idx = k and so second = 0 itself. */
    __mmask64 ok = ~_mm512_movepi8_mask(idx) &
                   _mm512_test_epi8_mask(second, second);

    return _mm512_maskz_add_epi8(ok, cur, second);
}

/* Fills pair[] for the offsets from base; returns how many it covers. */
__attribute__((target(XBZRLE_VBMI_TARGET))) static size_t
build_pairs(const uint8_t *src, size_t src_len, size_t base, uint8_t *pair)
{
    size_t left = src_len - base;
    size_t nchunks = (left + XBZRLE_PAIR_CHUNK - 1) / XBZRLE_PAIR_CHUNK;
    __m512i cur = single_spans(src, src_len, base);

    if (nchunks > XBZRLE_PAIR_BLOCK_CHUNKS)
        nchunks = XBZRLE_PAIR_BLOCK_CHUNKS;
    for (size_t c = 0; c < nchunks; c++) {
        __m512i next =
            single_spans(src, src_len, base + (c + 1) * XBZRLE_PAIR_CHUNK);
        _mm512_storeu_si512(pair + c * XBZRLE_PAIR_CHUNK,
                            pair_spans(cur, next));
        cur = next;
    }
    return nchunks * XBZRLE_PAIR_CHUNK;
}

/* A non-zero run of a pair: 1..127 bytes, all inside src and the page. */
__attribute__((target(XBZRLE_VBMI_TARGET))) static inline
    __attribute__((always_inline)) void
    copy_run(uint8_t *to, const uint8_t *from, size_t n)
{
    if (XBZRLE_LIKELY(n <= XBZRLE_AVX512_RUN))
        copy_masked(to, from, n);
    else
        memcpy(to, from, n);
}

/*
 * A dense delta writes into every line of the page. The lines this far
 * ahead of the page position are fetched for writing as the decoder goes
 * (prefetchw), so its stores wait less on memory; never past the page, so
 * no guess about where the caller's next page lies. Measured on 64 MiB of
 * 4 KiB pages, 10% random: about +15% over no prefetch.
 */
#define XBZRLE_PREFETCH_AHEAD 1024u
#define XBZRLE_CACHE_LINE 64u

__attribute__((target(XBZRLE_VBMI_TARGET))) int
xbzrle_decode_avx512_vbmi(const uint8_t *src, size_t src_len, uint8_t *page,
                          size_t len)
{
    uint8_t pair[XBZRLE_PAIR_BLOCK];
    size_t base = 0, covered = 0, k = 0, d = 0;

    if (src_len < XBZRLE_PAIR_MIN_SRC)
        return xbzrle_decode_avx512(src, src_len, page, len);
    /* The first lines too: the loop below prefetches from there on. */
    for (size_t o = 0; o < XBZRLE_PREFETCH_AHEAD && o < len;
         o += XBZRLE_CACHE_LINE)
        __builtin_prefetch(page + o, 1);
    /* k is the src position relative to the table's base, s = src + base.
     * The inner loop's only latency chain is k = k + pair[k]. */
    while (base + k < src_len) {
        const uint8_t *s;
        size_t i;

        if (k >= covered) {
            base += k;
            k = 0;
            covered = build_pairs(src, src_len, base, pair);
        }
        s = src + base;
        while (k < covered) {
            size_t v = pair[k];
            if (XBZRLE_UNLIKELY(v == 0))
                break;
            size_t z0 = s[k], n0 = s[k + 1];
            size_t j = k + 2 + n0, z1 = s[j], n1 = s[j + 1];
            size_t d0 = d + z0, d1 = d0 + n0 + z1, end = d1 + n1;
            /* A hint that cannot fault, but kept inside the page. */
            if (XBZRLE_LIKELY(d + XBZRLE_PREFETCH_AHEAD < len))
                __builtin_prefetch(page + d + XBZRLE_PREFETCH_AHEAD, 1);
            /* Both records are well formed and inside src (the table
             * says so); they must also fit the page. */
            if (XBZRLE_UNLIKELY(end > len))
                break;
            copy_run(page + d0, s + k + 2, n0);
            copy_run(page + d1, s + j + 2, n1);
            d = end;
            k += v;
        }
        i = base + k;
        if (k >= covered || i >= src_len)
            continue;
        XBZRLE_DECODE_ONE(copy_masked, XBZRLE_AVX512_RUN);
        k = i - base;
    }
    return (int)d;
}
#endif