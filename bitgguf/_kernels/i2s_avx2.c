/* I2_S ternary dot product, AVX2: unsigned codes times int8 activations with maddubs (32 products per
 * instruction), 16-bit partial sums widened once per 16 blocks. Same integer result as i2s_scalar.c. */
#include "kernels.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif
#include "x86_avx2.h"

/* Prefetch this far ahead in the weight stream (into the next rows): the hardware prefetcher alone leaves the
 * kernel well below DRAM bandwidth (measured: 8.5 -> 12 GB/s on one Zen core). 8 KiB rather than 4: with both
 * cores streaming, decode went 14.7-15.0 -> 16.5-17.2 tok/s (2B4T shape, 2-core Zen 2 VM). */
#ifndef BG_I2S_PREFETCH
#define BG_I2S_PREFETCH 8192
#endif

/* Blocks whose 16-bit sums are added before widening to 32 bits. A lane of one block's four maddubs is the sum of
 * 8 products c*q with c in {0,1,2}, q in [-128,127]: within [-2048, 2032], so 16 blocks stay within int16
 * ([-32768, 32512]). Widening (vpmaddwd) runs on the same pipe as vpmaddubsw: once per 16 blocks, not per block. */
#define BG_I2S_GROUP 16

/* The four 2-bit code planes of a block: weights j, j+32, j+64, j+96 of byte j. */
#define UNPACK(p, c0, c1, c2, c3)                                  \
    __m256i c0 = _mm256_and_si256(_mm256_srli_epi16(p, 6), mask); \
    __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(p, 4), mask); \
    __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(p, 2), mask); \
    __m256i c3 = _mm256_and_si256(p, mask);

/* Σcq of one row over blocks [b0, b1) (b1 - b0 <= BG_I2S_GROUP) as 8 int32 lanes. */
static inline __m256i i2s_group(const uint8_t *row, const int8_t *q, int b0, int b1) {
    const __m256i mask = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    for (int b = b0; b < b1; b++) {
        bg_prefetch(row + 32 * b + BG_I2S_PREFETCH);
        __m256i p = bg_load256(row + 32 * b);
        const int8_t *qb = q + 128 * b;
        UNPACK(p, c0, c1, c2, c3)
        s0 = _mm256_add_epi16(s0, _mm256_add_epi16(_mm256_maddubs_epi16(c0, bg_load256(qb)),
                                                   _mm256_maddubs_epi16(c1, bg_load256(qb + 32))));
        s1 = _mm256_add_epi16(s1, _mm256_add_epi16(_mm256_maddubs_epi16(c2, bg_load256(qb + 64)),
                                                   _mm256_maddubs_epi16(c3, bg_load256(qb + 96))));
    }
    return _mm256_add_epi32(_mm256_madd_epi16(s0, ones), _mm256_madd_epi16(s1, ones));
}

float bg_i2s_dot_avx2(const uint8_t *row, const bg_act *a) {
    const int nb = a->n / BG_I2S_BLOCK;
    __m256i acc = _mm256_setzero_si256();
    for (int b = 0; b < nb; b += BG_I2S_GROUP)
        acc = _mm256_add_epi32(acc, i2s_group(row, a->q, b, b + BG_I2S_GROUP < nb ? b + BG_I2S_GROUP : nb));
    return (float)(bg_hsum_i32x8(acc) - a->sum);
}

/* Σcq of one block of one row (four maddubs: within [-2048, 2032] per int16 lane) */
static inline __m256i i2s_block(const uint8_t *blk, __m256i q0, __m256i q1, __m256i q2, __m256i q3, __m256i mask) {
    __m256i p = bg_load256(blk);
    UNPACK(p, c0, c1, c2, c3)
    return _mm256_add_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(c0, q0), _mm256_maddubs_epi16(c1, q1)),
                            _mm256_add_epi16(_mm256_maddubs_epi16(c2, q2), _mm256_maddubs_epi16(c3, q3)));
}

/* Four consecutive rows against one token (decode): a block's four activation vectors are loaded once for the four
 * rows (five loads per row-block become two), and each row keeps one int16 sum per BG_I2S_GROUP blocks (16 x
 * [-2048, 2032] fits). Loads were the limit: on one Zen 3 core from cache, 74-78 -> 88-90 GMAC/s (python -m
 * bench.kernels, gemv_cache). The same integers as bg_i2s_dot_avx2, so the same floats. */
void bg_i2s_dot_x4_avx2(const uint8_t *row, size_t row_bytes, const bg_act *a, float *out) {
    const __m256i mask = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    const uint8_t *r0 = row, *r1 = row + row_bytes, *r2 = r1 + row_bytes, *r3 = r2 + row_bytes;
    const int nb = a->n / BG_I2S_BLOCK;
    __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int b0 = 0; b0 < nb; b0 += BG_I2S_GROUP) {
        const int b1 = b0 + BG_I2S_GROUP < nb ? b0 + BG_I2S_GROUP : nb;
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
        for (int b = b0; b < b1; b++) {
            /* the four rows are contiguous (4 x 32 bytes per block): two lines of prefetch per block */
            bg_prefetch(r0 + BG_I2S_PREFETCH + 128 * b);
            bg_prefetch(r0 + BG_I2S_PREFETCH + 128 * b + 64);
            const int8_t *q = a->q + 128 * b;
            const __m256i q0 = bg_load256(q), q1 = bg_load256(q + 32), q2 = bg_load256(q + 64),
                          q3 = bg_load256(q + 96);
            s0 = _mm256_add_epi16(s0, i2s_block(r0 + 32 * b, q0, q1, q2, q3, mask));
            s1 = _mm256_add_epi16(s1, i2s_block(r1 + 32 * b, q0, q1, q2, q3, mask));
            s2 = _mm256_add_epi16(s2, i2s_block(r2 + 32 * b, q0, q1, q2, q3, mask));
            s3 = _mm256_add_epi16(s3, i2s_block(r3 + 32 * b, q0, q1, q2, q3, mask));
        }
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(s0, ones));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(s1, ones));
        acc2 = _mm256_add_epi32(acc2, _mm256_madd_epi16(s2, ones));
        acc3 = _mm256_add_epi32(acc3, _mm256_madd_epi16(s3, ones));
    }
    const __m128i isum = _mm_sub_epi32(bg_hsum4_i32x8(acc0, acc1, acc2, acc3), _mm_set1_epi32(a->sum));
    _mm_storeu_ps(out, _mm_cvtepi32_ps(isum));
}

/* T tokens against one row: each block's codes are unpacked once and used for all T; 16-bit sums per token are
 * widened once per BG_I2S_GROUP blocks. */
#define MULTI_T 4
static inline void i2s_multi_tile(const uint8_t *row, const bg_act *acts, int nb, float *out, size_t stride) {
    const __m256i mask = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    __m256i acc[MULTI_T];
    for (int k = 0; k < MULTI_T; k++) acc[k] = _mm256_setzero_si256();
    for (int b0 = 0; b0 < nb; b0 += BG_I2S_GROUP) {
        const int b1 = b0 + BG_I2S_GROUP < nb ? b0 + BG_I2S_GROUP : nb;
        __m256i s[MULTI_T];
        for (int k = 0; k < MULTI_T; k++) s[k] = _mm256_setzero_si256();
        for (int b = b0; b < b1; b++) {
            __m256i p = bg_load256(row + 32 * b);
            UNPACK(p, c0, c1, c2, c3)
            for (int k = 0; k < MULTI_T; k++) {
                const int8_t *q = acts[k].q + 128 * b;
                __m256i x = _mm256_add_epi16(_mm256_maddubs_epi16(c0, bg_load256(q)),
                                             _mm256_maddubs_epi16(c1, bg_load256(q + 32)));
                __m256i y = _mm256_add_epi16(_mm256_maddubs_epi16(c2, bg_load256(q + 64)),
                                             _mm256_maddubs_epi16(c3, bg_load256(q + 96)));
                s[k] = _mm256_add_epi16(s[k], _mm256_add_epi16(x, y));
            }
        }
        for (int k = 0; k < MULTI_T; k++) acc[k] = _mm256_add_epi32(acc[k], _mm256_madd_epi16(s[k], ones));
    }
    for (int k = 0; k < MULTI_T; k++) out[(size_t)k * stride] = (float)(bg_hsum_i32x8(acc[k]) - acts[k].sum);
}

/* Several tokens against one row (prompt processing): tiles of MULTI_T tokens, the rest one by one. */
void bg_i2s_dot_multi_avx2(const uint8_t *row, const bg_act *acts, int n, float *out, size_t stride) {
    const int nb = acts[0].n / BG_I2S_BLOCK;
    int t = 0;
    for (; t + MULTI_T <= n; t += MULTI_T) i2s_multi_tile(row, acts + t, nb, out + (size_t)t * stride, stride);
    for (; t < n; t++) out[(size_t)t * stride] = bg_i2s_dot_avx2(row, &acts[t]);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
