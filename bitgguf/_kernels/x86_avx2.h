/* Shared helpers for the AVX2 kernel files; include after the file selects its target. */
#ifndef BITGGUF_X86_AVX2_H
#define BITGGUF_X86_AVX2_H
#include <immintrin.h>
#include <string.h>

#include "kernels.h"

static inline int32_t bg_hsum_i32x8(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* The lane sums of four vectors at once: (Σa, Σb, Σc, Σd). hadd(hadd(a, b), hadd(c, d)) gives those four partial
 * sums in each 128-bit half; the halves are then added. */
static inline __m128i bg_hsum4_i32x8(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

static inline float bg_hsum_f32x8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Software prefetch of a weight stream; build with -DBG_SW_PREFETCH=0 to measure without it. */
#ifndef BG_SW_PREFETCH
#define BG_SW_PREFETCH 1
#endif
static inline void bg_prefetch(const void *p) {
    if (BG_SW_PREFETCH) _mm_prefetch((const char *)p, _MM_HINT_T0);
}

/* An f16 scale by F16C (the including file's target has it): exact, the same value as bg_f16_to_f32. */
static inline float bg_f16c_at(const void *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static inline __m256i bg_load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* ---- Q5_K / Q4_K pieces shared by the AVX2 and AVX-512 heads (layouts in head_q6k_scalar.c) ---- */

/* Σx per 32-value sub-block of Q8_K block b, as int16 (the mins' multipliers) */
static inline __m128i bg_k_bsum32(const bg_q8k *x, int b) {
    const int16_t *bs = x->bsum + (size_t)b * 16;
    return _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)bs), _mm_loadu_si128((const __m128i *)(bs + 8)));
}

/* The eight 6-bit (scale, min) pairs of the block at p as bytes [sc0..7, m0..7], from the 12 packed bytes as 32-bit
 * words u0, u1, u2 (bg_k_scale_min's rule, 4 at a time): lanes (u0 & 63s, (u2 & 15s) | (u0 >> 2 & 48s), u1 & 63s,
 * (u2 >> 4 & 15s) | (u1 >> 2 & 48s)). The load reads 4 bytes past the scales, inside the block. */
static inline __m128i bg_k_scales_mins(const uint8_t *p) {
    const __m128i shift_m = _mm_setr_epi32(0, 0, 0, 4);
    const __m128i mask_lo = _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f);
    const __m128i mask_hi = _mm_setr_epi32(0, 0x30303030, 0, 0x30303030);
    const __m128i u = _mm_loadu_si128((const __m128i *)(p + 4));
    const __m128i lo = _mm_srlv_epi32(_mm_shuffle_epi32(u, _MM_SHUFFLE(2, 1, 2, 0)), shift_m);
    const __m128i hi = _mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(u, _MM_SHUFFLE(1, 1, 0, 0)), 2), mask_hi);
    return _mm_or_si128(_mm_and_si128(lo, mask_lo), hi);
}

#ifndef BG_KQ_PREFETCH
#define BG_KQ_PREFETCH 8192
#endif
/* A Q5_K / Q4_K block's lines `ahead` bytes ahead of p. The AVX2 kernels use BG_KQ_PREFETCH (8 KiB: with four
 * adjacent rows read at once, the lines ahead of the last row are only distance - 3 rows ahead; Zen 5, 2 threads:
 * 4 -> 8 KiB about +1%); the AVX-512 ones a distance by vendor (head_k_avx512.c). */
static inline void bg_k_prefetch(const uint8_t *p, int ahead) {
    bg_prefetch(p + ahead);
    bg_prefetch(p + ahead + 64);
    bg_prefetch(p + ahead + 128);
}

/* The f32 combine of one block at p for one row: (d·dx)·isum - (dmin·dx)·msum, msum being the lanes of mins added
 * (isum: Σ scale·code·x; mins: partial sums of Σ min·Σx; dx: the block's activation scale) */
static inline float bg_k_combine1(const uint8_t *p, float dx, int32_t isum, __m128i mins) {
    __m128i ms = _mm_add_epi32(mins, _mm_shuffle_epi32(mins, 0x4e));
    ms = _mm_add_epi32(ms, _mm_shuffle_epi32(ms, 0xb1));
    return (bg_f16c_at(p) * dx) * (float)isum - (bg_f16c_at(p + 2) * dx) * (float)_mm_cvtsi128_si32(ms);
}

/* sum + the f32 combine of one block for four rows: isum (Σ scale·code·x per row), mins[k] (row k's partial sums of
 * Σ min·Σx, added here), d_dmin[k] (row k's f16 d and dmin), dx (the block's activation scale). Per lane the
 * one-row kernel's operations, (d·dx)·isum - (dmin·dx)·msum, so each row gets its value bit for bit. */
static inline __m128 bg_k_combine4(__m128 sum, const uint32_t d_dmin[4], float dx, __m128i isum,
                                   const __m128i mins[4]) {
    const __m128i msum = _mm_hadd_epi32(_mm_hadd_epi32(mins[0], mins[1]), _mm_hadd_epi32(mins[2], mins[3]));
    /* [d0 dmin0 d1 dmin1 ..] * dx times [isum0 msum0 isum1 msum1 ..], then d·isum - dmin·msum per row */
    const __m256 dm = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)d_dmin)), _mm256_set1_ps(dx));
    const __m256i im = _mm256_setr_m128i(_mm_unpacklo_epi32(isum, msum), _mm_unpackhi_epi32(isum, msum));
    const __m256 ab = _mm256_mul_ps(dm, _mm256_cvtepi32_ps(im));
    const __m256 diff = _mm256_hsub_ps(ab, ab);  /* [r0 r1 r0 r1 | r2 r3 r2 r3] */
    return _mm_add_ps(sum, _mm_castpd_ps(_mm_unpacklo_pd(_mm_castps_pd(_mm256_castps256_ps128(diff)),
                                                         _mm_castps_pd(_mm256_extractf128_ps(diff, 1)))));
}
/* e^x by Cephes' expf method: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-6 polynomial, and 2^n in the exponent
 * bits; within 2 ulp of expf. x < -87.34 (where e^x leaves the normal floats) gives 0, and -inf too; x > 88 gives
 * e^88; NaN stays NaN (max and min return their second operand, x, for a NaN). Its constants, shared by the 8- and
 * 16-lane versions (x86_avx512.h's bg_exp_f32x16), whose values must agree bit for bit: */
#define BG_EXP_MIN -87.33654f
#define BG_EXP_MAX 88.0f
#define BG_EXP_LOG2E 1.44269504088896341f
#define BG_EXP_LN2_HI 0.693359375f /* ln2 in two parts: n * hi is exact */
#define BG_EXP_LN2_LO -2.12194440e-4f
#define BG_EXP_P5 1.9875691500e-4f
#define BG_EXP_P4 1.3981999507e-3f
#define BG_EXP_P3 8.3334519073e-3f
#define BG_EXP_P2 4.1665795894e-2f
#define BG_EXP_P1 1.6666665459e-1f
#define BG_EXP_P0 5.0000001201e-1f

/* e^x for 8 floats */
static inline __m256 bg_exp_f32x8(__m256 x) {
    const __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(BG_EXP_MIN), _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_set1_ps(BG_EXP_MAX), _mm256_max_ps(_mm256_set1_ps(BG_EXP_MIN), x));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(BG_EXP_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(BG_EXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(BG_EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(BG_EXP_P5);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(BG_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(BG_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(BG_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(BG_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(BG_EXP_P0));
    const __m256 er = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(underflow, _mm256_mul_ps(er, _mm256_castsi256_ps(bits)));
}
#endif
