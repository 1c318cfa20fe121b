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

/* ---- Q5_K / Q4_K (layouts in head_q6k_scalar.c) ---- */

/* acc += (sc * q[0..15]) * x[0..15] for 16 unsigned codes (sc * q <= 63 * 31 fits int16) */
static inline float32x4_t fma16u(uint8x16_t q, int16_t sc, const float *x, float32x4_t acc) {
    return fma16(vreinterpretq_s8_u8(q), sc, x, acc);  /* codes <= 31: the same as signed bytes */
}

static inline float k_dot_neon(const uint8_t *p, const float *x, int n, int five_bit) {
    const int bytes = five_bit ? BG_Q5_K_BYTES : BG_Q4_K_BYTES;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m1 = vdupq_n_u8(0x01);
    float32x4_t acc = vdupq_n_f32(0);
    for (int b = 0; b < n / 256; b++, p += bytes, x += 256) {
        const uint8_t *qs = p + (five_bit ? 48 : 16);
        float32x4_t accq = vdupq_n_f32(0), accm = vdupq_n_f32(0);
        for (int pr = 0; pr < 4; pr++) {
            int sc0, m0, sc1, m1s;
            bg_k_scale_min(2 * pr, p + 4, &sc0, &m0);
            bg_k_scale_min(2 * pr + 1, p + 4, &sc1, &m1s);
            const float *x0 = x + 64 * pr, *x1 = x0 + 32;
            for (int c = 0; c < 2; c++) {
                const uint8x16_t v = vld1q_u8(qs + 32 * pr + 16 * c);
                uint8x16_t lo = vandq_u8(v, m4), hi = vshrq_n_u8(v, 4);
                if (five_bit) {
                    const uint8x16_t hb = vld1q_u8(p + 16 + 16 * c);
                    const int8x16_t sh = vdupq_n_s8((int8_t)(-2 * pr));
                    const uint8x16_t h = vshlq_u8(hb, sh);  /* qh >> 2pr */
                    lo = vorrq_u8(lo, vshlq_n_u8(vandq_u8(h, m1), 4));
                    hi = vorrq_u8(hi, vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 1), m1), 4));
                }
                accq = fma16u(lo, (int16_t)sc0, x0 + 16 * c, accq);
                accq = fma16u(hi, (int16_t)sc1, x1 + 16 * c, accq);
            }
            float32x4_t s0 = vaddq_f32(vaddq_f32(vld1q_f32(x0), vld1q_f32(x0 + 4)),
                                       vaddq_f32(vld1q_f32(x0 + 8), vld1q_f32(x0 + 12)));
            s0 = vaddq_f32(s0, vaddq_f32(vaddq_f32(vld1q_f32(x0 + 16), vld1q_f32(x0 + 20)),
                                         vaddq_f32(vld1q_f32(x0 + 24), vld1q_f32(x0 + 28))));
            float32x4_t s1 = vaddq_f32(vaddq_f32(vld1q_f32(x1), vld1q_f32(x1 + 4)),
                                       vaddq_f32(vld1q_f32(x1 + 8), vld1q_f32(x1 + 12)));
            s1 = vaddq_f32(s1, vaddq_f32(vaddq_f32(vld1q_f32(x1 + 16), vld1q_f32(x1 + 20)),
                                         vaddq_f32(vld1q_f32(x1 + 24), vld1q_f32(x1 + 28))));
            accm = vfmaq_n_f32(accm, s0, (float)m0);
            accm = vfmaq_n_f32(accm, s1, (float)m1s);
        }
        uint16_t d, dmin;
        memcpy(&d, p, 2);
        memcpy(&dmin, p + 2, 2);
        acc = vfmaq_n_f32(acc, accq, bg_f16_to_f32(d));
        acc = vfmsq_f32(acc, accm, vdupq_n_f32(bg_f16_to_f32(dmin)));
    }
    return vaddvq_f32(acc);
}

float bg_q5_k_dot_neon(const void *row, const float *x, int n) { return k_dot_neon(row, x, n, 1); }
float bg_q4_k_dot_neon(const void *row, const float *x, int n) { return k_dot_neon(row, x, n, 0); }

#endif
