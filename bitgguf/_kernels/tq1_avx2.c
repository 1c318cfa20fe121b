/* TQ1_0 ternary dot product, AVX2 (layout in tq1_scalar.c). A base-3 digit needs no multiply: with v = (uint8)(b*3^n),
 * the digit (3v) >> 8 is [v > 85] + [v > 170] (two byte compares), and the next v is (uint8)(3v) = v + v + v in
 * wrapping byte adds. The digits then go through maddubs like I2_S codes. Per block: exact integer Σ(c-1)q, then
 * sum += d * isum in block order, bitwise the same as tq1_scalar.c. */
#include "kernels.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif
#include "x86_avx2.h"

/* Prefetch distance in the weight stream (into the next rows), as I2_S's; the base-3 unpack leaves the hardware
 * prefetcher too little of the memory latency hidden */
#define BG_TQ1_PREFETCH 4096

/* (3v) >> 8 of each byte v: 0, 1 or 2 */
static inline __m256i tq1_digit(__m256i v) {
    const __m256i flip = _mm256_set1_epi8((char)0x80), t1 = _mm256_set1_epi8(85 - 128), t2 = _mm256_set1_epi8(170 - 128);
    __m256i x = _mm256_xor_si256(v, flip);  /* unsigned order as signed */
    return _mm256_abs_epi8(_mm256_add_epi8(_mm256_cmpgt_epi8(x, t1), _mm256_cmpgt_epi8(x, t2)));
}

static inline __m256i tq1_times3(__m256i v) { return _mm256_add_epi8(_mm256_add_epi8(v, v), v); }

static inline __m128i tq1_times3_128(__m128i v) { return _mm_add_epi8(_mm_add_epi8(v, v), v); }

/* The block's 256 digits as 8 vectors, in the order of the activations q[32 i .. 32 i + 31]. */
static inline void tq1_unpack(const uint8_t *blk, __m256i d[8]) {
    __m256i a = bg_load256(blk);
    d[0] = tq1_digit(a);
    for (int n = 1; n < 5; n++) {  /* weights 32n + m: digit n of qs[m] */
        a = tq1_times3(a);
        d[n] = tq1_digit(a);
    }
    /* qs[32..47] times 1 | 3, then 9 | 27 (weights 160..191, 192..223), then times 81 with the qh bytes */
    __m128i b1 = _mm_loadu_si128((const __m128i *)(blk + 32)), b3 = tq1_times3_128(b1);
    __m128i b9 = tq1_times3_128(b3), b27 = tq1_times3_128(b9), b81 = tq1_times3_128(b27);
    d[5] = tq1_digit(_mm256_set_m128i(b3, b1));
    d[6] = tq1_digit(_mm256_set_m128i(b27, b9));
    /* qh: byte k of 16 is qh[k % 4] times 3^(k / 4) (weight 240 + k); byte multiplies from 16-bit ones */
    uint32_t qh;
    memcpy(&qh, blk + 48, 4);
    const __m128i pw = _mm_setr_epi16(1, 1, 3, 3, 9, 9, 27, 27), lo8 = _mm_set1_epi16(0x00ff);
    __m128i h = _mm_set1_epi32((int)qh);
    h = _mm_or_si128(_mm_and_si128(_mm_mullo_epi16(h, pw), lo8), _mm_mullo_epi16(_mm_andnot_si128(lo8, h), pw));
    d[7] = tq1_digit(_mm256_set_m128i(h, b81));
}

/* Exact Σ(c-1)q of one block: 8 maddubs of digits <= 2 (at most 8 * 2 * 2 * 128 = 4096 per int16 lane). */
static inline int32_t tq1_isum(const __m256i d[8], const int8_t *q, const int32_t *gs) {
    __m256i s = _mm256_maddubs_epi16(d[0], bg_load256(q));
    for (int i = 1; i < 8; i++) s = _mm256_add_epi16(s, _mm256_maddubs_epi16(d[i], bg_load256(q + 32 * i)));
    int32_t acc = bg_hsum_i32x8(_mm256_madd_epi16(s, _mm256_set1_epi16(1)));
    return acc - (gs[0] + gs[1] + gs[2] + gs[3] + gs[4] + gs[5] + gs[6] + gs[7]);
}

static inline double tq1_d(const uint8_t *blk) { return (double)bg_f16c_at(blk + 52); }

float bg_tq1_dot_avx2(const uint8_t *row, const bg_act *a) {
    double sum = 0.0;  /* d * isum is exact in double, so FMA contraction cannot change it */
    for (int b = 0; b < a->n / BG_TQ1_BLOCK; b++, row += BG_TQ1_BYTES) {
        bg_prefetch(row + BG_TQ1_PREFETCH);  /* a line per 54-byte block: from DRAM 2.8 -> 4.5-4.9 GB/s */
        __m256i d[8];
        tq1_unpack(row, d);
        sum += tq1_d(row) * tq1_isum(d, a->q + b * BG_TQ1_BLOCK, a->gsum + b * (BG_TQ1_BLOCK / BG_ACT_GROUP));
    }
    return (float)sum;
}

/* Up to four tokens per pass: each block's digits are unpacked once (the expensive part of TQ1_0) and used for all
 * of them; per token the same block integers and double sums as bg_tq1_dot_avx2, so the same floats. */
void bg_tq1_dot_multi_avx2(const uint8_t *row, const bg_act *acts, int n, float *out, size_t stride) {
    const int nb = acts[0].n / BG_TQ1_BLOCK;
    for (int t = 0; t < n; t += 4) {
        const int k = n - t < 4 ? n - t : 4;
        double sum[4] = {0.0, 0.0, 0.0, 0.0};
        const uint8_t *blk = row;
        for (int b = 0; b < nb; b++, blk += BG_TQ1_BYTES) {
            __m256i d[8];
            tq1_unpack(blk, d);
            const double scale = tq1_d(blk);
            for (int i = 0; i < k; i++) {
                const bg_act *a = &acts[t + i];
                sum[i] += scale * tq1_isum(d, a->q + b * BG_TQ1_BLOCK, a->gsum + b * (BG_TQ1_BLOCK / BG_ACT_GROUP));
            }
        }
        for (int i = 0; i < k; i++) out[(size_t)(t + i) * stride] = (float)sum[i];
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
