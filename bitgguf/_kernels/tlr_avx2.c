/* I2_ROWS tail (tlr.c) with AVX2: the tail of t = cols % 128 weights, t % 32 == 0, as 8-byte chunks of its g = t/4
 * code bytes: byte b holds weights b, b + g, b + 2g, b + 3g. Two of the four weight groups share one maddubs (the
 * 64-bit halves shifted by 6 | 4, then 2 | 0). Exact Σcq. */
#include "kernels.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif
#include <immintrin.h>

static inline __m128i load2x64(const void *lo, const void *hi) {
    return _mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)lo), _mm_loadl_epi64((const __m128i *)hi));
}

int32_t bg_i2r_tail_cq_avx2(const uint8_t *tail, const int8_t *q, int t) {
    const int g = t / 4;
    const __m128i mask = _mm_set1_epi8(3), sh01 = _mm_set_epi64x(4, 6), sh23 = _mm_set_epi64x(0, 2);
    __m128i s = _mm_setzero_si128();  /* int16 lanes: at most 2 * 2 * 128 per chunk, 4 chunks */
    for (int b = 0; b < g; b += 8) {
        __m128i c = _mm_loadl_epi64((const __m128i *)(tail + b));
        c = _mm_unpacklo_epi64(c, c);
        __m128i c01 = _mm_and_si128(_mm_srlv_epi64(c, sh01), mask), c23 = _mm_and_si128(_mm_srlv_epi64(c, sh23), mask);
        s = _mm_add_epi16(s, _mm_maddubs_epi16(c01, load2x64(q + b, q + g + b)));
        s = _mm_add_epi16(s, _mm_maddubs_epi16(c23, load2x64(q + 2 * g + b, q + 3 * g + b)));
    }
    __m128i w = _mm_madd_epi16(s, _mm_set1_epi16(1));
    w = _mm_add_epi32(w, _mm_shuffle_epi32(w, 0x4e));
    w = _mm_add_epi32(w, _mm_shuffle_epi32(w, 0xb1));
    return _mm_cvtsi128_si32(w);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
