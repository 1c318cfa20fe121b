/* Shared helpers for the AVX-512 (BW + VL + VNNI) kernel files; include after the file selects its target. */
#ifndef BITGGUF_X86_AVX512_H
#define BITGGUF_X86_AVX512_H
#include <immintrin.h>

/* A zmm whose low half's bytes are lo and high half's hi: masks that leave one 2-bit field of each byte in place */
static inline __m512i bg_mask_pair(int lo, int hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi8((char)lo)), _mm256_set1_epi8((char)hi), 1);
}

/* Sums of codes masked in place (times 2^lo_shift in lanes 0-7, 2^hi_shift in lanes 8-15) divided by their factors:
 * every lane is a multiple of its factor, so the arithmetic shifts are exact. */
static inline __m512i bg_unscale_halves(__m512i acc, int lo_shift, int hi_shift) {
    return _mm512_srav_epi32(acc, _mm512_inserti64x4(_mm512_set1_epi32(lo_shift), _mm256_set1_epi32(hi_shift), 1));
}
#endif
