/* TQ1_0 ternary dot product, AVX2 (layout in tq1_scalar.c). Base-3 digits are unpacked 32 at a time with 16-bit
 * multiplies (AVX2 has no byte multiply): the low and the high byte of each 16-bit lane are moved to the top byte,
 * multiplied by 3^n (mod 256 falls out of the top byte), and (v * 3) >> 8 is mulhi(v << 8, 3). The digits then go
 * through maddubs like I2_S codes. Per block: exact integer Σ(c-1)q, then sum += d * isum in block order, bitwise
 * the same as tq1_scalar.c. */
#include "kernels.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif
#include "x86_avx2.h"

/* Digits of the 32 bytes b, byte k multiplied by the 16-bit lane k/2's entry of p (3^n <= 81). */
static inline __m256i tq1_digits(__m256i b, __m256i p) {
    const __m256i three = _mm256_set1_epi16(3), hi_mask = _mm256_set1_epi16((short)0xff00);
    __m256i lo = _mm256_mulhi_epu16(_mm256_mullo_epi16(_mm256_slli_epi16(b, 8), p), three);
    __m256i hi = _mm256_mulhi_epu16(_mm256_mullo_epi16(_mm256_and_si256(b, hi_mask), p), three);
    return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 8));
}

/* Σcq of one block as 16 int16 lanes (8 maddubs of digits <= 2: at most 8 * 2 * 2 * 128 = 4096 per lane). */
static inline __m256i tq1_block(const uint8_t *blk, const int8_t *q) {
    const __m256i p0 = _mm256_set1_epi16(1), p1 = _mm256_set1_epi16(3), p2 = _mm256_set1_epi16(9);
    const __m256i p3 = _mm256_set1_epi16(27), p4 = _mm256_set1_epi16(81);
    const __m256i p01 = _mm256_setr_epi16(1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i p23 = _mm256_setr_epi16(9, 9, 9, 9, 9, 9, 9, 9, 27, 27, 27, 27, 27, 27, 27, 27);
    /* low lane: qs[32..47] digit 4; high lane: qh, byte k = qh[k % 4] times 3^(k / 4) (lane k/2 -> 3^(k/4)) */
    const __m256i p4h = _mm256_setr_epi16(81, 81, 81, 81, 81, 81, 81, 81, 1, 1, 3, 3, 9, 9, 27, 27);
    __m256i a = bg_load256(blk);
    __m128i b16 = _mm_loadu_si128((const __m128i *)(blk + 32));
    __m256i b = _mm256_broadcastsi128_si256(b16);
    uint32_t qh;
    memcpy(&qh, blk + 48, 4);
    __m256i c = _mm256_inserti128_si256(_mm256_castsi128_si256(b16), _mm_set1_epi32((int)qh), 1);
    __m256i s = _mm256_maddubs_epi16(tq1_digits(a, p0), bg_load256(q));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(tq1_digits(a, p1), bg_load256(q + 32)));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(tq1_digits(a, p2), bg_load256(q + 64)));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(tq1_digits(a, p3), bg_load256(q + 96)));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(tq1_digits(a, p4), bg_load256(q + 128)));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(tq1_digits(b, p01), bg_load256(q + 160)));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(tq1_digits(b, p23), bg_load256(q + 192)));
    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(tq1_digits(c, p4h), bg_load256(q + 224)));
    return s;
}

float bg_tq1_dot_avx2(const uint8_t *row, const bg_act *a) {
    const __m256i ones = _mm256_set1_epi16(1);
    double sum = 0.0;  /* d * isum is exact in double, so FMA contraction cannot change it */
    for (int b = 0; b < a->n / BG_TQ1_BLOCK; b++, row += BG_TQ1_BYTES) {
        int32_t acc = bg_hsum_i32x8(_mm256_madd_epi16(tq1_block(row, a->q + b * BG_TQ1_BLOCK), ones));
        const int32_t *gs = a->gsum + b * (BG_TQ1_BLOCK / BG_ACT_GROUP);
        int32_t qsum = gs[0] + gs[1] + gs[2] + gs[3] + gs[4] + gs[5] + gs[6] + gs[7];
        uint16_t d;
        memcpy(&d, row + 52, 2);
        sum += (double)bg_f16_to_f32(d) * (acc - qsum);
    }
    return (float)sum;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
