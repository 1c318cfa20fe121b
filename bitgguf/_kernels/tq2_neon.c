/* TQ2_0 ternary dot product, NEON and NEON dotprod: exact integer sum per block, then sum += d * isum in block order
 * (bitwise the same as tq2_scalar.c). Codes are LSB first: bits 2l..2l+1 of byte m of half h are weight
 * h*128 + l*32 + m. */
#include "kernels.h"

#if defined(__aarch64__)
#include "neon_common.h"

static inline double tq2_finish(const uint8_t *row, const bg_act *a, int b, int32_t acc) {
    const int32_t *gs = a->gsum + b * (BG_TQ2_BLOCK / BG_ACT_GROUP);
    int32_t qsum = gs[0] + gs[1] + gs[2] + gs[3] + gs[4] + gs[5] + gs[6] + gs[7];
    uint16_t d;
    memcpy(&d, row + 64, 2);
    return (double)bg_f16_to_f32(d) * (acc - qsum);
}

float bg_tq2_dot_neon(const uint8_t *row, const bg_act *a) {
    const uint8x16_t mask = vdupq_n_u8(3);
    const int8_t *q = a->q;
    double sum = 0.0;  /* d * isum is exact in double, so FMA contraction cannot change it */
    for (int b = 0; b < a->n / BG_TQ2_BLOCK; b++, row += 66, q += BG_TQ2_BLOCK) {
        int32x4_t acc = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            uint8x16_t p0 = vld1q_u8(row + 32 * h), p1 = vld1q_u8(row + 32 * h + 16);
            const int8_t *qh = q + 128 * h;
            int16x8_t s = vdupq_n_s16(0);
            s = bg_mla_codes(s, vandq_u8(p0, mask), qh);
            s = bg_mla_codes(s, vandq_u8(p1, mask), qh + 16);
            s = bg_mla_codes(s, vandq_u8(vshrq_n_u8(p0, 2), mask), qh + 32);
            s = bg_mla_codes(s, vandq_u8(vshrq_n_u8(p1, 2), mask), qh + 48);
            s = bg_mla_codes(s, vandq_u8(vshrq_n_u8(p0, 4), mask), qh + 64);
            s = bg_mla_codes(s, vandq_u8(vshrq_n_u8(p1, 4), mask), qh + 80);
            s = bg_mla_codes(s, vshrq_n_u8(p0, 6), qh + 96);
            s = bg_mla_codes(s, vshrq_n_u8(p1, 6), qh + 112);
            acc = vpadalq_s16(acc, s);
        }
        sum += tq2_finish(row, a, b, vaddvq_s32(acc));
    }
    return (float)sum;
}

BG_DOTPROD_BEGIN
BG_DOTPROD_FN float bg_tq2_dot_neon_dotprod(const uint8_t *row, const bg_act *a) {
    const uint8x16_t mask = vdupq_n_u8(3);
    const int8_t *q = a->q;
    double sum = 0.0;  /* d * isum is exact in double, so FMA contraction cannot change it */
    for (int b = 0; b < a->n / BG_TQ2_BLOCK; b++, row += 66, q += BG_TQ2_BLOCK) {
        int32x4_t acc = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            uint8x16_t p0 = vld1q_u8(row + 32 * h), p1 = vld1q_u8(row + 32 * h + 16);
            const int8_t *qh = q + 128 * h;
#define DOT(codes, off) acc = bg_vdotq_s32(acc, vreinterpretq_s8_u8(codes), vld1q_s8(qh + (off)))
            DOT(vandq_u8(p0, mask), 0);
            DOT(vandq_u8(p1, mask), 16);
            DOT(vandq_u8(vshrq_n_u8(p0, 2), mask), 32);
            DOT(vandq_u8(vshrq_n_u8(p1, 2), mask), 48);
            DOT(vandq_u8(vshrq_n_u8(p0, 4), mask), 64);
            DOT(vandq_u8(vshrq_n_u8(p1, 4), mask), 80);
            DOT(vshrq_n_u8(p0, 6), 96);
            DOT(vshrq_n_u8(p1, 6), 112);
#undef DOT
        }
        sum += tq2_finish(row, a, b, vaddvq_s32(acc));
    }
    return (float)sum;
}
BG_DOTPROD_END

#endif
