/* TQ1_0 ternary dot product, NEON and NEON dotprod (layout in tq1_scalar.c). Base-3 digits: a byte multiply by 3^n
 * (mod 256 for free), then (v * 3) >> 8 by a widening multiply and a narrowing shift. Per block: exact integer
 * Σ(c-1)q, then sum += d * isum in block order, bitwise the same as tq1_scalar.c. */
#include "kernels.h"

#if defined(__aarch64__)
#include "neon_common.h"

static inline uint8x16_t tq1_digits(uint8x16_t b, uint8x16_t p) {
    const uint8x8_t three = vdup_n_u8(3);
    uint8x16_t v = vmulq_u8(b, p);
    return vcombine_u8(vshrn_n_u16(vmull_u8(vget_low_u8(v), three), 8), vshrn_n_u16(vmull_high_u8(v, vdupq_n_u8(3)), 8));
}

/* The block's 16 digit vectors, in the order of the activations q[16 i .. 16 i + 15]. */
static inline void tq1_unpack(const uint8_t *blk, uint8x16_t d[16]) {
    static const uint8_t qh_pow[16] = {1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27};
    uint8x16_t a0 = vld1q_u8(blk), a1 = vld1q_u8(blk + 16), b = vld1q_u8(blk + 32);
    uint32_t qh;
    memcpy(&qh, blk + 48, 4);
    uint8x16_t c = vreinterpretq_u8_u32(vdupq_n_u32(qh));  /* byte k = qh[k % 4]: weight 240 + k is digit k / 4 */
    uint8_t pw = 1;
    for (int n = 0; n < 5; n++, pw = (uint8_t)(pw * 3)) {
        uint8x16_t p = vdupq_n_u8(pw);
        d[2 * n] = tq1_digits(a0, p);
        d[2 * n + 1] = tq1_digits(a1, p);
        d[10 + n] = tq1_digits(b, p);
    }
    d[15] = tq1_digits(c, vld1q_u8(qh_pow));
}

static inline double tq1_finish(const uint8_t *row, const bg_act *a, int b, int32_t acc) {
    const int32_t *gs = a->gsum + b * (BG_TQ1_BLOCK / BG_ACT_GROUP);
    int32_t qsum = gs[0] + gs[1] + gs[2] + gs[3] + gs[4] + gs[5] + gs[6] + gs[7];
    uint16_t d;
    memcpy(&d, row + 52, 2);
    return (double)bg_f16_to_f32(d) * (acc - qsum);
}

float bg_tq1_dot_neon(const uint8_t *row, const bg_act *a) {
    double sum = 0.0;  /* d * isum is exact in double, so FMA contraction cannot change it */
    for (int b = 0; b < a->n / BG_TQ1_BLOCK; b++, row += BG_TQ1_BYTES) {
        const int8_t *q = a->q + b * BG_TQ1_BLOCK;
        uint8x16_t d[16];
        tq1_unpack(row, d);
        int16x8_t s = vdupq_n_s16(0);  /* 32 products of <= 2 * 128 per lane: fits int16 */
        for (int i = 0; i < 16; i++) s = bg_mla_codes(s, d[i], q + 16 * i);
        sum += tq1_finish(row, a, b, vaddlvq_s16(s));
    }
    return (float)sum;
}

BG_DOTPROD_BEGIN
BG_DOTPROD_FN float bg_tq1_dot_neon_dotprod(const uint8_t *row, const bg_act *a) {
    double sum = 0.0;  /* d * isum is exact in double, so FMA contraction cannot change it */
    for (int b = 0; b < a->n / BG_TQ1_BLOCK; b++, row += BG_TQ1_BYTES) {
        const int8_t *q = a->q + b * BG_TQ1_BLOCK;
        uint8x16_t d[16];
        tq1_unpack(row, d);
        int32x4_t acc = vdupq_n_s32(0);
        for (int i = 0; i < 16; i++) acc = bg_vdotq_s32(acc, vreinterpretq_s8_u8(d[i]), vld1q_s8(q + 16 * i));
        sum += tq1_finish(row, a, b, vaddvq_s32(acc));
    }
    return (float)sum;
}
BG_DOTPROD_END

#endif
