/* TQ2_0 ternary dot product, AVX-512 VNNI (one row; decode). Codes masked in place as in i2s_avx512.c: in half h of
 * a block byte m holds weights 128h + 32l + m at bits 2l, so a half's 32 bytes in both halves of a zmm, masked by
 * (0x03 | 0x0C in the high half) and (0x30 | 0xC0), give the codes of weights 128h..+63 and +64..+127 in order, times
 * 1 and 4, 16 and 64 by zmm half; the lanes are divided by their factor when reduced. Same integers, so the same
 * floats, as tq2_scalar.c. */
#include "kernels.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), \
                             apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif
#include "x86_avx512.h"

#define TQ2_BYTES 66
#define TQ2_PREFETCH 4096  /* as i2s_avx512.c's */

static inline float scale_of(const uint8_t *blk) {
    uint16_t d;
    memcpy(&d, blk + 64, 2);
    return _cvtsh_ss(d);  /* F16C: exact, as bg_f16_to_f32 */
}

/* Half h of a block added to the sums of the codes masked by 0x03 | 0x0C (s01) and 0x30 | 0xC0 (s23). */
static inline void half_sums(const uint8_t *blk, const int8_t *q, int h, __m512i *s01, __m512i *s23) {
    const __m512i m01 = bg_mask_pair(0x03, 0x0C), m23 = bg_mask_pair(0x30, 0xC0);
    const __m512i p = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 32 * h)));
    *s01 = _mm512_dpbusd_epi32(*s01, _mm512_and_si512(p, m01), _mm512_loadu_si512((const void *)(q + 128 * h)));
    *s23 = _mm512_dpbusd_epi32(*s23, _mm512_and_si512(p, m23), _mm512_loadu_si512((const void *)(q + 128 * h + 64)));
}

static inline void block_sums(const uint8_t *blk, const int8_t *q, __m512i *s01, __m512i *s23) {
    half_sums(blk, q, 0, s01, s23);
    half_sums(blk, q, 1, s01, s23);
}

/* Σcq from the sums of the codes masked by 0x03 | 0x0C and by 0x30 | 0xC0 */
static inline int32_t codes_dot(__m512i s01, __m512i s23) {
    return _mm512_reduce_add_epi32(_mm512_add_epi32(bg_unscale_halves(s01, 0, 2), bg_unscale_halves(s23, 4, 6)));
}

float bg_tq2_dot_avx512(const uint8_t *row, const bg_act *a) {
    const int nb = a->n / BG_TQ2_BLOCK;
    if (bg_row_one_scale(row, nb, TQ2_BYTES)) {  /* the row's sums in int32, scaled once (0.0 + keeps +0) */
        /* two blocks per pass, each half in its own pair of sums: eight chains, where two kept vpdpbusd waiting (6
         * cycles on Sapphire Rapids at two per cycle). Rows from L2, one core: 2560 values 12.3-12.8 -> 14.0-15.2
         * GB/s, 6912 values 11.7-12.2 -> 14.8-15.2 */
        __m512i s01[4], s23[4];
        for (int k = 0; k < 4; k++) s01[k] = s23[k] = _mm512_setzero_si512();
        int b = 0;
        for (; b + 2 <= nb; b += 2) {
            const uint8_t *blk = row + (size_t)b * TQ2_BYTES;
            _mm_prefetch((const char *)(blk + TQ2_PREFETCH), _MM_HINT_T0);
            _mm_prefetch((const char *)(blk + 64 + TQ2_PREFETCH), _MM_HINT_T0);
            half_sums(blk, a->q + b * BG_TQ2_BLOCK, 0, &s01[0], &s23[0]);
            half_sums(blk, a->q + b * BG_TQ2_BLOCK, 1, &s01[1], &s23[1]);
            half_sums(blk + TQ2_BYTES, a->q + (b + 1) * BG_TQ2_BLOCK, 0, &s01[2], &s23[2]);
            half_sums(blk + TQ2_BYTES, a->q + (b + 1) * BG_TQ2_BLOCK, 1, &s01[3], &s23[3]);
        }
        if (b < nb) block_sums(row + (size_t)b * TQ2_BYTES, a->q + b * BG_TQ2_BLOCK, &s01[0], &s23[0]);
        const __m512i t01 = _mm512_add_epi32(_mm512_add_epi32(s01[0], s01[1]), _mm512_add_epi32(s01[2], s01[3]));
        const __m512i t23 = _mm512_add_epi32(_mm512_add_epi32(s23[0], s23[1]), _mm512_add_epi32(s23[2], s23[3]));
        return (float)(0.0 + (double)scale_of(row) * (codes_dot(t01, t23) - a->sum));
    }
    /* a scale per block: each block's sum on its own */
    double sum = 0.0;  /* d * isum is exact in double, so FMA contraction cannot change it */
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = row + (size_t)b * TQ2_BYTES;
        _mm_prefetch((const char *)(blk + TQ2_PREFETCH), _MM_HINT_T0);
        __m512i s01 = _mm512_setzero_si512(), s23 = s01;
        block_sums(blk, a->q + b * BG_TQ2_BLOCK, &s01, &s23);
        const int32_t cq = codes_dot(s01, s23);
        const int32_t *gs = a->gsum + b * (BG_TQ2_BLOCK / BG_ACT_GROUP);
        const int32_t qsum = gs[0] + gs[1] + gs[2] + gs[3] + gs[4] + gs[5] + gs[6] + gs[7];
        sum += (double)scale_of(blk) * (cq - qsum);
    }
    return (float)sum;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
