/* Q6_K and Q4_0 output heads, NEON: codes unpacked 16 at a time, scaled by their sub-block's int8 scale in int16
 * (exact), widened to f32 and fused into x; one multiply by d per block. Float summation order differs from
 * head_q6k_scalar.c only. */
#include "kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

/* acc += (sc * q[0..15]) * x[0..15] */
static inline float32x4_t fma16(int8x16_t q, int16_t sc, const float *x, float32x4_t acc) {
    const int16x8_t lo = vmulq_n_s16(vmovl_s8(vget_low_s8(q)), sc), hi = vmulq_n_s16(vmovl_high_s8(q), sc);
    acc = vfmaq_f32(acc, vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), vld1q_f32(x));
    acc = vfmaq_f32(acc, vcvtq_f32_s32(vmovl_high_s16(lo)), vld1q_f32(x + 4));
    acc = vfmaq_f32(acc, vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), vld1q_f32(x + 8));
    return vfmaq_f32(acc, vcvtq_f32_s32(vmovl_high_s16(hi)), vld1q_f32(x + 12));
}

float bg_q6_k_dot_neon(const void *row, const float *x, int n) {
    const uint8_t *p = row;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m3 = vdupq_n_u8(0x03);
    const int8x16_t k32 = vdupq_n_s8(32);
    float32x4_t acc = vdupq_n_f32(0);
    for (int b = 0; b < n / BG_Q6_K_BLOCK; b++, p += BG_Q6_K_BYTES, x += BG_Q6_K_BLOCK) {
        const int8_t *sc = (const int8_t *)(p + 192);
        float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
        for (int h = 0; h < 2; h++) {
            for (int c = 0; c < 2; c++) {  /* 16-byte columns: weights l = 16c .. 16c + 15 of each quarter */
                const uint8x16_t ql0 = vld1q_u8(p + 64 * h + 16 * c), ql1 = vld1q_u8(p + 64 * h + 32 + 16 * c);
                const uint8x16_t qh = vld1q_u8(p + 128 + 32 * h + 16 * c);
                uint8x16_t q[4];
                q[0] = vorrq_u8(vandq_u8(ql0, m4), vshlq_n_u8(vandq_u8(qh, m3), 4));
                q[1] = vorrq_u8(vandq_u8(ql1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 2), m3), 4));
                q[2] = vorrq_u8(vshrq_n_u8(ql0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 4), m3), 4));
                q[3] = vorrq_u8(vshrq_n_u8(ql1, 4), vshlq_n_u8(vshrq_n_u8(qh, 6), 4));
                for (int k = 0; k < 4; k++) {
                    const int8x16_t v = vsubq_s8(vreinterpretq_s8_u8(q[k]), k32);
                    const float *xk = x + 128 * h + 32 * k + 16 * c;
                    if (c == 0) s0 = fma16(v, sc[8 * h + 2 * k], xk, s0);
                    else s1 = fma16(v, sc[8 * h + 2 * k + 1], xk, s1);
                }
            }
        }
        uint16_t d;
        memcpy(&d, p + 208, 2);
        acc = vfmaq_n_f32(acc, vaddq_f32(s0, s1), bg_f16_to_f32(d));
    }
    return vaddvq_f32(acc);
}

static inline float32x4_t i8_part(int8x16_t v, int part) {
    int16x8_t h = part < 2 ? vmovl_s8(vget_low_s8(v)) : vmovl_high_s8(v);
    return vcvtq_f32_s32((part & 1) ? vmovl_high_s16(h) : vmovl_s16(vget_low_s16(h)));
}

float bg_q4_0_dot_neon(const void *row, const float *x, int n) {
    const uint8_t *p = row;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    const int8x16_t k8 = vdupq_n_s8(8);
    float32x4_t acc = vdupq_n_f32(0);
    for (int b = 0; b < n / BG_Q4_0_BLOCK; b++, p += BG_Q4_0_BYTES, x += BG_Q4_0_BLOCK) {
        const uint8x16_t qs = vld1q_u8(p + 2);
        const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(qs, m4)), k8);
        const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(qs, 4)), k8);
        float32x4_t s = vmulq_f32(i8_part(lo, 0), vld1q_f32(x));
        for (int k = 1; k < 4; k++) s = vfmaq_f32(s, i8_part(lo, k), vld1q_f32(x + 4 * k));
        for (int k = 0; k < 4; k++) s = vfmaq_f32(s, i8_part(hi, k), vld1q_f32(x + 16 + 4 * k));
        uint16_t d;
        memcpy(&d, p, 2);
        acc = vfmaq_n_f32(acc, s, bg_f16_to_f32(d));
    }
    return vaddvq_f32(acc);
}

#endif
