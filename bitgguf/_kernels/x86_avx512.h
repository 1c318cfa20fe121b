/* Shared helpers for the AVX-512 (BW + VL + VNNI) kernel files; include after the file selects its target. */
#ifndef BITGGUF_X86_AVX512_H
#define BITGGUF_X86_AVX512_H
#include <immintrin.h>

#include "x86_avx2.h" /* bg_exp_f32x8 and its constants */

/* A zmm whose low half's bytes are lo and high half's hi: masks that leave one 2-bit field of each byte in place */
static inline __m512i bg_mask_pair(int lo, int hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi8((char)lo)), _mm256_set1_epi8((char)hi), 1);
}

/* Sums of codes masked in place (times 2^lo_shift in lanes 0-7, 2^hi_shift in lanes 8-15) divided by their factors:
 * every lane is a multiple of its factor, so the arithmetic shifts are exact. */
static inline __m512i bg_unscale_halves(__m512i acc, int lo_shift, int hi_shift) {
    return _mm512_srav_epi32(acc, _mm512_inserti64x4(_mm512_set1_epi32(lo_shift), _mm256_set1_epi32(hi_shift), 1));
}

/* out[i] lane t = in[t] lane i: a 16 x 16 transpose of 4-byte elements (int32 sums, or groups of 4 int8) in 64
 * shuffles. in and out may be the same array. */
static inline void bg_transpose16_epi32(const __m512i in[16], __m512i out[16]) {
    __m512i a[16], b[16];
    for (int p = 0; p < 8; p++) {  /* per 128-bit lane L: elements 4L.. of rows 2p, 2p+1 interleaved */
        a[2 * p] = _mm512_unpacklo_epi32(in[2 * p], in[2 * p + 1]);
        a[2 * p + 1] = _mm512_unpackhi_epi32(in[2 * p], in[2 * p + 1]);
    }
    for (int q = 0; q < 4; q++) {  /* b[4q + j], lane L: element 4L + j of rows 4q..4q+3 */
        b[4 * q] = _mm512_unpacklo_epi64(a[4 * q], a[4 * q + 2]);
        b[4 * q + 1] = _mm512_unpackhi_epi64(a[4 * q], a[4 * q + 2]);
        b[4 * q + 2] = _mm512_unpacklo_epi64(a[4 * q + 1], a[4 * q + 3]);
        b[4 * q + 3] = _mm512_unpackhi_epi64(a[4 * q + 1], a[4 * q + 3]);
    }
    for (int j = 0; j < 4; j++) {  /* out[4L + j]: lane L of b[j], b[4 + j], b[8 + j], b[12 + j] */
        const __m512i c0 = _mm512_shuffle_i32x4(b[j], b[4 + j], 0x44), c1 = _mm512_shuffle_i32x4(b[j], b[4 + j], 0xee);
        const __m512i c2 = _mm512_shuffle_i32x4(b[8 + j], b[12 + j], 0x44);
        const __m512i c3 = _mm512_shuffle_i32x4(b[8 + j], b[12 + j], 0xee);
        out[j] = _mm512_shuffle_i32x4(c0, c2, 0x88);
        out[4 + j] = _mm512_shuffle_i32x4(c0, c2, 0xdd);
        out[8 + j] = _mm512_shuffle_i32x4(c1, c3, 0x88);
        out[12 + j] = _mm512_shuffle_i32x4(c1, c3, 0xdd);
    }
}
/* x86_avx2.h's bg_exp_f32x8, the same operations and constants in 16 lanes (bitwise its values) */
static inline __m512 bg_exp_f32x16(__m512 x) {
    const __mmask16 underflow = _mm512_cmp_ps_mask(x, _mm512_set1_ps(BG_EXP_MIN), _CMP_LT_OQ);
    x = _mm512_min_ps(_mm512_set1_ps(BG_EXP_MAX), _mm512_max_ps(_mm512_set1_ps(BG_EXP_MIN), x));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(BG_EXP_LOG2E)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(BG_EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(BG_EXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(BG_EXP_P5);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(BG_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(BG_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(BG_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(BG_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(BG_EXP_P0));
    const __m512 er = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mov_ps((__mmask16)~underflow, _mm512_mul_ps(er, _mm512_castsi512_ps(bits)));
}

#endif
