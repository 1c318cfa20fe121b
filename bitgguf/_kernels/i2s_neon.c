/* I2_S ternary dot product, NEON: widening int8 multiply-accumulate (vmlal_s8) into 16-bit lanes, widened once per
 * block; and a dotprod variant (vdotq_s32: four int8 products into each int32 lane). Both give the exact integer
 * result of i2s_scalar.c. */
#include "kernels.h"

#if defined(__aarch64__)
#include "neon_common.h"

float bg_i2s_dot_neon(const uint8_t *row, const bg_act *a) {
    const uint8x16_t mask = vdupq_n_u8(3);
    const int8_t *q = a->q;
    int32x4_t acc = vdupq_n_s32(0);
    for (int b = 0; b < a->n / BG_I2S_BLOCK; b++, row += 32, q += BG_I2S_BLOCK) {
        uint8x16_t p0 = vld1q_u8(row), p1 = vld1q_u8(row + 16);
        int16x8_t s = vdupq_n_s16(0);  /* 16 products of at most 3 * 128 per lane: no overflow */
        s = bg_mla_codes(s, vshrq_n_u8(p0, 6), q);
        s = bg_mla_codes(s, vshrq_n_u8(p1, 6), q + 16);
        s = bg_mla_codes(s, vandq_u8(vshrq_n_u8(p0, 4), mask), q + 32);
        s = bg_mla_codes(s, vandq_u8(vshrq_n_u8(p1, 4), mask), q + 48);
        s = bg_mla_codes(s, vandq_u8(vshrq_n_u8(p0, 2), mask), q + 64);
        s = bg_mla_codes(s, vandq_u8(vshrq_n_u8(p1, 2), mask), q + 80);
        s = bg_mla_codes(s, vandq_u8(p0, mask), q + 96);
        s = bg_mla_codes(s, vandq_u8(p1, mask), q + 112);
        acc = vpadalq_s16(acc, s);
    }
    return (float)(vaddvq_s32(acc) - a->sum);
}

BG_DOTPROD_BEGIN
BG_DOTPROD_FN float bg_i2s_dot_neon_dotprod(const uint8_t *row, const bg_act *a) {
    const uint8x16_t mask = vdupq_n_u8(3);
    const int8_t *q = a->q;
    int32x4_t acc0 = vdupq_n_s32(0), acc1 = vdupq_n_s32(0);
    for (int b = 0; b < a->n / BG_I2S_BLOCK; b++, row += 32, q += BG_I2S_BLOCK) {
        uint8x16_t p0 = vld1q_u8(row), p1 = vld1q_u8(row + 16);
#define DOT(acc, codes, off) acc = bg_vdotq_s32(acc, vreinterpretq_s8_u8(codes), vld1q_s8(q + (off)))
        DOT(acc0, vshrq_n_u8(p0, 6), 0);
        DOT(acc1, vshrq_n_u8(p1, 6), 16);
        DOT(acc0, vandq_u8(vshrq_n_u8(p0, 4), mask), 32);
        DOT(acc1, vandq_u8(vshrq_n_u8(p1, 4), mask), 48);
        DOT(acc0, vandq_u8(vshrq_n_u8(p0, 2), mask), 64);
        DOT(acc1, vandq_u8(vshrq_n_u8(p1, 2), mask), 80);
        DOT(acc0, vandq_u8(p0, mask), 96);
        DOT(acc1, vandq_u8(p1, mask), 112);
#undef DOT
    }
    return (float)(vaddvq_s32(vaddq_s32(acc0, acc1)) - a->sum);
}

/* Several tokens against one row (prompt processing), 4 at a time: a block's 8 code vectors are unpacked once and
 * used for the 4 tokens (two accumulators per token to shorten the sdot chains). Exact int32 sums, as above. */
BG_DOTPROD_FN void bg_i2s_dot_multi_neon_dotprod(const uint8_t *row, const bg_act *acts, int n, float *out,
                                                 size_t stride) {
    const uint8x16_t mask = vdupq_n_u8(3);
    const int nb = acts[0].n / BG_I2S_BLOCK;
    int t = 0;
    for (; t + 4 <= n; t += 4) {
        int32x4_t acc[4][2];
        for (int k = 0; k < 4; k++) acc[k][0] = acc[k][1] = vdupq_n_s32(0);
        for (int b = 0; b < nb; b++) {
            const uint8x16_t p0 = vld1q_u8(row + 32 * b), p1 = vld1q_u8(row + 32 * b + 16);
            const int8x16_t c[8] = {
                vreinterpretq_s8_u8(vshrq_n_u8(p0, 6)), vreinterpretq_s8_u8(vshrq_n_u8(p1, 6)),
                vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(p0, 4), mask)),
                vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(p1, 4), mask)),
                vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(p0, 2), mask)),
                vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(p1, 2), mask)),
                vreinterpretq_s8_u8(vandq_u8(p0, mask)), vreinterpretq_s8_u8(vandq_u8(p1, mask)),
            };
            for (int k = 0; k < 4; k++) {
                const int8_t *q = acts[t + k].q + BG_I2S_BLOCK * b;
                for (int i = 0; i < 8; i += 2) {
                    acc[k][0] = bg_vdotq_s32(acc[k][0], c[i], vld1q_s8(q + 16 * i));
                    acc[k][1] = bg_vdotq_s32(acc[k][1], c[i + 1], vld1q_s8(q + 16 * i + 16));
                }
            }
        }
        for (int k = 0; k < 4; k++)
            out[(size_t)(t + k) * stride] = (float)(vaddvq_s32(vaddq_s32(acc[k][0], acc[k][1])) - acts[t + k].sum);
    }
    for (; t < n; t++) out[(size_t)t * stride] = bg_i2s_dot_neon_dotprod(row, &acts[t]);
}
BG_DOTPROD_END

#endif
