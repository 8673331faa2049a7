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
#endif
