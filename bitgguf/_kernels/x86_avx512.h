/* Shared helpers for the AVX-512 (BW + VL + VNNI) kernel files; include after the file selects its target. */
#ifndef BITGGUF_X86_AVX512_H
#define BITGGUF_X86_AVX512_H
#include <immintrin.h>

/* 32 activations for lanes 0-31 and 32 for lanes 32-63 of one zmm register. */
static inline __m512i bg_load_pair256(const int8_t *lo, const int8_t *hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)lo)),
                              _mm256_loadu_si256((const __m256i *)hi), 1);
}

static inline int32_t bg_hsum256_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* A zmm whose low half's bytes are lo and high half's hi: masks that leave one 2-bit field of each byte in place */
static inline __m512i bg_mask_pair(int lo, int hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi8((char)lo)), _mm256_set1_epi8((char)hi), 1);
}

/* Σ (lanes 0-7) >> lo_shift + Σ (lanes 8-15) >> hi_shift: sums of codes masked in place (times 2^shift), divided
 * exactly by their factor */
static inline int32_t bg_reduce_halves(__m512i acc, int lo_shift, int hi_shift) {
    const __m256i lo = _mm512_castsi512_si256(acc), hi = _mm512_extracti64x4_epi64(acc, 1);
    return (bg_hsum256_i32(lo) >> lo_shift) + (bg_hsum256_i32(hi) >> hi_shift);
}
#endif
