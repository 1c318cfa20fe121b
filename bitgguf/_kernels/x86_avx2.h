/* Shared helpers for the AVX2 kernel files; include after the file selects its target. */
#ifndef BITGGUF_X86_AVX2_H
#define BITGGUF_X86_AVX2_H
#include <immintrin.h>

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
/* e^x for 8 floats by Cephes' expf method: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-6 polynomial, and 2^n
 * in the exponent bits; within 2 ulp of expf. x < -87.34 (where e^x leaves the normal floats) gives 0, and -inf
 * too; x > 88 gives e^88; NaN stays NaN (max and min return their second operand, x, for a NaN). */
static inline __m256 bg_exp_f32x8(__m256 x) {
    const __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_set1_ps(88.0f), _mm256_max_ps(_mm256_set1_ps(-87.33654f), x));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);  /* ln2 in two parts: exact n * hi */
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 er = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(underflow, _mm256_mul_ps(er, _mm256_castsi256_ps(bits)));
}
#endif
