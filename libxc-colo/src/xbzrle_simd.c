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
#define XBZRLE_AVX512_TARGET "avx512f,avx512bw,avx2,bmi,bmi2,popcnt,lzcnt"

__attribute__((target(XBZRLE_AVX2_TARGET))) int
xbzrle_encode_avx2(const uint8_t *old_page, const uint8_t *new_page,
                   size_t len, uint8_t *dst, size_t dst_len)
{
    uint64_t mask[XBZRLE_MASK_WORDS];
    uint64_t any = 0;
    size_t full = len / 64 * 64;

    for (size_t o = 0; o < full; o += 64) {
        __m256i a0 = _mm256_loadu_si256((const __m256i *)(old_page + o));
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(new_page + o));
        __m256i a1 = _mm256_loadu_si256((const __m256i *)(old_page + o + 32));
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(new_page + o + 32));
        uint32_t eq0 = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a0, b0));
        uint32_t eq1 = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a1, b1));
        uint64_t m = ~((uint64_t)eq1 << 32 | eq0);
        mask[o / 64] = m;
        any |= m;
    }
    xbzrle_mask_tail(old_page, new_page, full, len, mask);
    if (full < len)
        any |= mask[full / 64];
    if (!any)
        return 0;
    return xbzrle_encode_mask(mask, (len + 63) / 64, new_page, len, dst,
                              dst_len);
}

__attribute__((target(XBZRLE_AVX512_TARGET))) int
xbzrle_encode_avx512(const uint8_t *old_page, const uint8_t *new_page,
                     size_t len, uint8_t *dst, size_t dst_len)
{
    uint64_t mask[XBZRLE_MASK_WORDS];
    uint64_t any = 0;
    size_t full = len / 64 * 64;

    for (size_t o = 0; o < full; o += 64) {
        __m512i a = _mm512_loadu_si512((const void *)(old_page + o));
        __m512i b = _mm512_loadu_si512((const void *)(new_page + o));
        uint64_t m = _mm512_cmpneq_epi8_mask(a, b);
        mask[o / 64] = m;
        any |= m;
    }
    xbzrle_mask_tail(old_page, new_page, full, len, mask);
    if (full < len)
        any |= mask[full / 64];
    if (!any)
        return 0;
    return xbzrle_encode_mask(mask, (len + 63) / 64, new_page, len, dst,
                              dst_len);
}
#endif
