/* I2_S ternary dot product, AVX2: unsigned codes times int8 activations with maddubs (32 products per
 * instruction), 16-bit partial sums widened once per two blocks. Same integer result as i2s_scalar.c. */
#include "kernels.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif
#include "x86_avx2.h"

/* Σcq of one 128-weight block as 16 int16 lanes; each lane is at most 8 * 2 * 128 = 2048 in magnitude. */
static inline __m256i i2s_block(const uint8_t *w, const int8_t *q, __m256i mask) {
    __m256i p = bg_load256(w);
    __m256i s = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(p, 6), mask), bg_load256(q));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(p, 4), mask), bg_load256(q + 32)));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(p, 2), mask), bg_load256(q + 64)));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(p, mask), bg_load256(q + 96)));
    return s;
}

/* Prefetch this far ahead in the weight stream (into the next rows): the hardware prefetcher alone leaves the
 * kernel well below DRAM bandwidth (measured: 8.5 -> 12 GB/s on one Zen core). */
#define BG_I2S_PREFETCH 4096

float bg_i2s_dot_avx2(const uint8_t *row, const bg_act *a) {
    const __m256i mask = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    const int8_t *q = a->q;
    const int nb = a->n / BG_I2S_BLOCK;
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    int b = 0;
    for (; b + 4 <= nb; b += 4) {
        _mm_prefetch((const char *)(row + 32 * b + BG_I2S_PREFETCH), _MM_HINT_T0);
        _mm_prefetch((const char *)(row + 32 * b + BG_I2S_PREFETCH + 64), _MM_HINT_T0);
        __m256i s0 = _mm256_add_epi16(i2s_block(row + 32 * b, q + 128 * b, mask),
                                      i2s_block(row + 32 * (b + 1), q + 128 * (b + 1), mask));
        __m256i s1 = _mm256_add_epi16(i2s_block(row + 32 * (b + 2), q + 128 * (b + 2), mask),
                                      i2s_block(row + 32 * (b + 3), q + 128 * (b + 3), mask));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(s0, ones));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(s1, ones));
    }
    for (; b < nb; b++)
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(i2s_block(row + 32 * b, q + 128 * b, mask), ones));
    return (float)(bg_hsum_i32x8(_mm256_add_epi32(acc0, acc1)) - a->sum);
}

/* Four tokens at a time: each block's codes are unpacked once and used for all four. */
void bg_i2s_dot_multi_avx2(const uint8_t *row, const bg_act *acts, int n, float *out, size_t stride) {
    const __m256i mask = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    const int nb = acts[0].n / BG_I2S_BLOCK;
    int t = 0;
    for (; t + 4 <= n; t += 4) {
        __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                          _mm256_setzero_si256()};
        for (int b = 0; b < nb; b++) {
            if (t == 0 && (b & 1) == 0) _mm_prefetch((const char *)(row + 32 * b + BG_I2S_PREFETCH), _MM_HINT_T0);
            __m256i p = bg_load256(row + 32 * b);
            __m256i c0 = _mm256_and_si256(_mm256_srli_epi16(p, 6), mask);
            __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(p, 4), mask);
            __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(p, 2), mask);
            __m256i c3 = _mm256_and_si256(p, mask);
            for (int k = 0; k < 4; k++) {
                const int8_t *q = acts[t + k].q + 128 * b;
                __m256i s = _mm256_maddubs_epi16(c0, bg_load256(q));
                s = _mm256_add_epi16(s, _mm256_maddubs_epi16(c1, bg_load256(q + 32)));
                s = _mm256_add_epi16(s, _mm256_maddubs_epi16(c2, bg_load256(q + 64)));
                s = _mm256_add_epi16(s, _mm256_maddubs_epi16(c3, bg_load256(q + 96)));
                acc[k] = _mm256_add_epi32(acc[k], _mm256_madd_epi16(s, ones));
            }
        }
        for (int k = 0; k < 4; k++)
            out[(size_t)(t + k) * stride] = (float)(bg_hsum_i32x8(acc[k]) - acts[t + k].sum);
    }
    for (; t < n; t++) out[(size_t)t * stride] = bg_i2s_dot_avx2(row, &acts[t]);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
