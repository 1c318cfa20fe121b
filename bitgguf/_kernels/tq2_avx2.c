/* TQ2_0 ternary dot product, AVX2 (maddubs). Per block: exact integer Σ(c-1)q, then sum += d * isum in block
 * order, exactly as tq2_scalar.c does, so the result is bitwise the same. */
#include "kernels.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif
#include "x86_avx2.h"

/* Σcq of one 128-weight half as 16 int16 lanes (at most 2048 in magnitude); LSB-first codes. */
static inline __m256i tq2_half(const uint8_t *w, const int8_t *q, __m256i mask) {
    __m256i p = bg_load256(w);
    __m256i s = _mm256_maddubs_epi16(_mm256_and_si256(p, mask), bg_load256(q));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(p, 2), mask), bg_load256(q + 32)));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(p, 4), mask), bg_load256(q + 64)));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(p, 6), mask), bg_load256(q + 96)));
    return s;
}

float bg_tq2_dot_avx2(const uint8_t *row, const bg_act *a) {
    const __m256i mask = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    const int8_t *q = a->q;
    double sum = 0.0;  /* d * isum is exact in double, so FMA contraction cannot change it */
    for (int b = 0; b < a->n / BG_TQ2_BLOCK; b++, row += 66, q += BG_TQ2_BLOCK) {
        __m256i s = _mm256_add_epi16(tq2_half(row, q, mask), tq2_half(row + 32, q + 128, mask));
        int32_t acc = bg_hsum_i32x8(_mm256_madd_epi16(s, ones));
        const int32_t *gs = a->gsum + b * (BG_TQ2_BLOCK / BG_ACT_GROUP);
        int32_t qsum = gs[0] + gs[1] + gs[2] + gs[3] + gs[4] + gs[5] + gs[6] + gs[7];
        uint16_t d;
        memcpy(&d, row + 64, 2);
        sum += (double)bg_f16_to_f32(d) * (acc - qsum);
    }
    return (float)sum;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
