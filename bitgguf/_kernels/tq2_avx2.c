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

/* The four-row kernel's prefetch distance, as I2_S's (i2s_avx2.c) */
#define BG_TQ2_PREFETCH 8192

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
        sum += (double)bg_f16c_at(row + 64) * (acc - qsum);
    }
    return (float)sum;
}

/* Four consecutive rows against one token (decode). Shared by the four rows: the activation loads, the block's Σq
 * and the horizontal sums (one hadd tree gives the four rows' block integers). The same integers and double sums
 * per row as bg_tq2_dot_avx2, so the same floats. */
void bg_tq2_dot_x4_avx2(const uint8_t *row, size_t row_bytes, const bg_act *a, float *out) {
    const __m256i mask = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    const int8_t *q = a->q;
    double sum[4] = {0.0, 0.0, 0.0, 0.0};
    for (int b = 0; b < a->n / BG_TQ2_BLOCK; b++, q += BG_TQ2_BLOCK) {
        const size_t off = (size_t)b * 66;
        /* the four rows are contiguous: 4 x 66 bytes of them per block (five lines) */
        for (int i = 0; i < 5; i++) bg_prefetch(row + BG_TQ2_PREFETCH + 4 * off + 64 * i);
        __m256i v[4];
        for (int k = 0; k < 4; k++) {
            const uint8_t *blk = row + k * row_bytes + off;
            v[k] = _mm256_madd_epi16(_mm256_add_epi16(tq2_half(blk, q, mask), tq2_half(blk + 32, q + 128, mask)),
                                     ones);
        }
        int32_t acc[4];
        _mm_storeu_si128((__m128i *)acc, bg_hsum4_i32x8(v[0], v[1], v[2], v[3]));
        const int32_t *gs = a->gsum + b * (BG_TQ2_BLOCK / BG_ACT_GROUP);
        const int32_t qsum = gs[0] + gs[1] + gs[2] + gs[3] + gs[4] + gs[5] + gs[6] + gs[7];
        for (int k = 0; k < 4; k++) sum[k] += (double)bg_f16c_at(row + k * row_bytes + off + 64) * (acc[k] - qsum);
    }
    for (int k = 0; k < 4; k++) out[k] = (float)sum[k];
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
