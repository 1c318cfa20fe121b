/* Q6_K and Q4_0 output heads, AVX2 + FMA: codes unpacked 32 at a time with byte masks and shifts, scaled by their
 * sub-block's int8 scale in int16 (exact), widened to f32 and fused into x; one multiply by d per block. Results
 * differ from head_q6k_scalar.c only by float summation order. */
#include "kernels.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif
#include "x86_avx2.h"

#define BG_HEAD_PREFETCH 4096

/* acc += (sc * q[0..15]) * x[0..15] for 16 int8 codes sharing one scale */
static inline __m256 fma16(__m128i q, int sc, const float *x, __m256 acc) {
    __m256i w = _mm256_mullo_epi16(_mm256_cvtepi8_epi16(q), _mm256_set1_epi16((int16_t)sc));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(w))), _mm256_loadu_ps(x),
                          acc);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_extracti128_si256(w, 1))),
                           _mm256_loadu_ps(x + 8), acc);
}

float bg_q6_k_dot_avx2(const void *row, const float *x, int n) {
    const uint8_t *p = row;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x03), k32 = _mm256_set1_epi8(32);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / BG_Q6_K_BLOCK; b++, p += BG_Q6_K_BYTES, x += BG_Q6_K_BLOCK) {
        _mm_prefetch((const char *)p + BG_HEAD_PREFETCH, _MM_HINT_T0);
        _mm_prefetch((const char *)p + BG_HEAD_PREFETCH + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)p + BG_HEAD_PREFETCH + 128, _MM_HINT_T0);
        _mm_prefetch((const char *)p + BG_HEAD_PREFETCH + 192, _MM_HINT_T0);
        const int8_t *sc = (const int8_t *)(p + 192);
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        for (int h = 0; h < 2; h++) {
            const __m256i ql0 = bg_load256(p + 64 * h), ql1 = bg_load256(p + 64 * h + 32);
            const __m256i qh = bg_load256(p + 128 + 32 * h);
            /* the four 32-weight quarters of this half; shifts are 16-bit, the masks keep each byte's own bits */
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4));
            for (int k = 0; k < 4; k++) {
                const __m256i v = _mm256_sub_epi8(q[k], k32);
                const float *xk = x + 128 * h + 32 * k;
                const int8_t *sk = sc + 8 * h + 2 * k;
                s0 = fma16(_mm256_castsi256_si128(v), sk[0], xk, s0);
                s1 = fma16(_mm256_extracti128_si256(v, 1), sk[1], xk + 16, s1);
            }
        }
        uint16_t d;
        memcpy(&d, p + 208, 2);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(bg_f16_to_f32(d)), _mm256_add_ps(s0, s1), acc);
    }
    return bg_hsum_f32x8(acc);
}

float bg_q4_0_dot_avx2(const void *row, const float *x, int n) {
    const uint8_t *p = row;
    const __m128i m4 = _mm_set1_epi8(0x0F), k8 = _mm_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / BG_Q4_0_BLOCK; b++, p += BG_Q4_0_BYTES, x += BG_Q4_0_BLOCK) {
        _mm_prefetch((const char *)p + BG_HEAD_PREFETCH, _MM_HINT_T0);
        const __m128i qs = _mm_loadu_si128((const __m128i *)(p + 2));
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(qs, m4), k8);
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(qs, 4), m4), k8);
        __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), _mm256_loadu_ps(x));
        s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), _mm256_loadu_ps(x + 8),
                            s);
        s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), _mm256_loadu_ps(x + 16), s);
        s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), _mm256_loadu_ps(x + 24),
                            s);
        uint16_t d;
        memcpy(&d, p, 2);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(bg_f16_to_f32(d)), s, acc);
    }
    return bg_hsum_f32x8(acc);
}

/* ---- Q5_K / Q4_K (layouts in head_q6k_scalar.c) ---- */

/* acc += (sc * q[0..15]) * x[0..15] for 16 unsigned codes */
static inline __m256 fma16u(__m128i q, int sc, const float *x, __m256 acc) {
    __m256i w = _mm256_mullo_epi16(_mm256_cvtepu8_epi16(q), _mm256_set1_epi16((int16_t)sc));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(w))), _mm256_loadu_ps(x),
                          acc);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_extracti128_si256(w, 1))),
                           _mm256_loadu_ps(x + 8), acc);
}

/* one 32-weight sub-block: q (32 codes), its scale and min */
static inline void k_sub(__m256i q, int sc, int m, const float *x, __m256 *accq, __m256 *accm) {
    *accq = fma16u(_mm256_castsi256_si128(q), sc, x, *accq);
    *accq = fma16u(_mm256_extracti128_si256(q, 1), sc, x + 16, *accq);
    __m256 xs = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(x + 8)),
                              _mm256_add_ps(_mm256_loadu_ps(x + 16), _mm256_loadu_ps(x + 24)));
    *accm = _mm256_fmadd_ps(_mm256_set1_ps((float)m), xs, *accm);
}

static inline float k_dot_avx2(const uint8_t *p, const float *x, int n, int five_bit) {
    const int bytes = five_bit ? BG_Q5_K_BYTES : BG_Q4_K_BYTES;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m1 = _mm256_set1_epi8(0x01);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / 256; b++, p += bytes, x += 256) {
        _mm_prefetch((const char *)p + BG_HEAD_PREFETCH, _MM_HINT_T0);
        _mm_prefetch((const char *)p + BG_HEAD_PREFETCH + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)p + BG_HEAD_PREFETCH + 128, _MM_HINT_T0);
        const uint8_t *qs = p + (five_bit ? 48 : 16);
        __m256i hb = five_bit ? bg_load256(p + 16) : _mm256_setzero_si256();
        __m256 accq = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
        for (int pr = 0; pr < 4; pr++) {
            const __m256i v = bg_load256(qs + 32 * pr);
            __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            if (five_bit) {  /* bits 2pr, 2pr + 1 of qh: hb is shifted right by 2 per pair (16-bit shifts, masked) */
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, m1), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), m1), 4));
                hb = _mm256_srli_epi16(hb, 2);
            }
            int sc, m;
            bg_k_scale_min(2 * pr, p + 4, &sc, &m);
            k_sub(lo, sc, m, x + 64 * pr, &accq, &accm);
            bg_k_scale_min(2 * pr + 1, p + 4, &sc, &m);
            k_sub(hi, sc, m, x + 64 * pr + 32, &accq, &accm);
        }
        uint16_t d, dmin;
        memcpy(&d, p, 2);
        memcpy(&dmin, p + 2, 2);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(bg_f16_to_f32(d)), accq, acc);
        acc = _mm256_fnmadd_ps(_mm256_set1_ps(bg_f16_to_f32(dmin)), accm, acc);
    }
    return bg_hsum_f32x8(acc);
}

float bg_q5_k_dot_avx2(const void *row, const float *x, int n) { return k_dot_avx2(row, x, n, 1); }
float bg_q4_k_dot_avx2(const void *row, const float *x, int n) { return k_dot_avx2(row, x, n, 0); }

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
