/* Q6_K, Q5_K, Q4_K and Q4_0 output heads, NEON.
 * The K-quants against Q8_K activations: codes unpacked 16 at a time, widening int8 products summed per sub-block
 * (exact), times the sub-block scale; the per-block f32 combine is the scalar kernel's, so the result is bitwise the
 * same. Q4_0 keeps f32 activations (float summation order differs from head_q6k_scalar.c only). */
#include "kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

/* Σ a_i b_i over 16 int8 pairs, as 4 int32 lanes (each product pair fits int16: |a| <= 63, |b| <= 128) */
static inline int32x4_t dot16(int8x16_t a, const int8_t *b) {
    const int8x16_t bv = vld1q_s8(b);
    return vpadalq_s16(vpaddlq_s16(vmull_s8(vget_low_s8(a), vget_low_s8(bv))), vmull_high_s8(a, bv));
}

float bg_q6_k_dot_q8k_neon(const void *row, const bg_q8k *x) {
    const uint8_t *p = row;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m3 = vdupq_n_u8(0x03);
    const int8x16_t k32 = vdupq_n_s8(32);
    float sum = 0.0f;
    for (int b = 0; b < x->n / BG_QK_K; b++, p += BG_Q6_K_BYTES) {
        const int8_t *sc = (const int8_t *)(p + 192), *xq = x->q + (size_t)b * BG_QK_K;
        int32x4_t acc = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            for (int c = 0; c < 2; c++) {  /* 16-byte columns: weights l = 16c .. 16c + 15 of each quarter */
                const uint8x16_t ql0 = vld1q_u8(p + 64 * h + 16 * c), ql1 = vld1q_u8(p + 64 * h + 32 + 16 * c);
                const uint8x16_t qh = vld1q_u8(p + 128 + 32 * h + 16 * c);
                uint8x16_t q[4];
                q[0] = vorrq_u8(vandq_u8(ql0, m4), vshlq_n_u8(vandq_u8(qh, m3), 4));
                q[1] = vorrq_u8(vandq_u8(ql1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 2), m3), 4));
                q[2] = vorrq_u8(vshrq_n_u8(ql0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 4), m3), 4));
                q[3] = vorrq_u8(vshrq_n_u8(ql1, 4), vshlq_n_u8(vshrq_n_u8(qh, 6), 4));
                for (int k = 0; k < 4; k++) {  /* sub-block 8h + 2k + c */
                    const int8x16_t v = vsubq_s8(vreinterpretq_s8_u8(q[k]), k32);
                    acc = vmlaq_n_s32(acc, dot16(v, xq + 128 * h + 32 * k + 16 * c), sc[8 * h + 2 * k + c]);
                }
            }
        }
        sum += (bg_f16_at(p + 208) * x->d[b]) * (float)vaddvq_s32(acc);
    }
    return sum;
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

static inline float k_dot_q8k_neon(const uint8_t *p, const bg_q8k *x, int five_bit) {
    const int bytes = five_bit ? BG_Q5_K_BYTES : BG_Q4_K_BYTES;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m1 = vdupq_n_u8(0x01);
    float sum = 0.0f;
    for (int b = 0; b < x->n / BG_QK_K; b++, p += bytes) {
        const int8_t *xq = x->q + (size_t)b * BG_QK_K;
        const int16_t *bsum = x->bsum + (size_t)b * 16;
        const uint8_t *qs = p + (five_bit ? 48 : 16);
        int32x4_t acc = vdupq_n_s32(0);
        int32_t msum = 0;
        for (int pr = 0; pr < 4; pr++) {
            int sc0, m0, sc1, m1s;
            bg_k_scale_min(2 * pr, p + 4, &sc0, &m0);
            bg_k_scale_min(2 * pr + 1, p + 4, &sc1, &m1s);
            msum += m0 * (bsum[4 * pr] + bsum[4 * pr + 1]) + m1s * (bsum[4 * pr + 2] + bsum[4 * pr + 3]);
            for (int c = 0; c < 2; c++) {
                const uint8x16_t v = vld1q_u8(qs + 32 * pr + 16 * c);
                uint8x16_t lo = vandq_u8(v, m4), hi = vshrq_n_u8(v, 4);
                if (five_bit) {
                    const uint8x16_t hb = vld1q_u8(p + 16 + 16 * c);
                    const uint8x16_t h = vshlq_u8(hb, vdupq_n_s8((int8_t)(-2 * pr)));  /* qh >> 2pr */
                    lo = vorrq_u8(lo, vshlq_n_u8(vandq_u8(h, m1), 4));
                    hi = vorrq_u8(hi, vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 1), m1), 4));
                }
                /* codes <= 31: the same as signed bytes */
                acc = vmlaq_n_s32(acc, dot16(vreinterpretq_s8_u8(lo), xq + 64 * pr + 16 * c), sc0);
                acc = vmlaq_n_s32(acc, dot16(vreinterpretq_s8_u8(hi), xq + 64 * pr + 32 + 16 * c), sc1);
            }
        }
        sum += (bg_f16_at(p) * x->d[b]) * (float)vaddvq_s32(acc) - (bg_f16_at(p + 2) * x->d[b]) * (float)msum;
    }
    return sum;
}

float bg_q5_k_dot_q8k_neon(const void *row, const bg_q8k *x) { return k_dot_q8k_neon(row, x, 1); }
float bg_q4_k_dot_q8k_neon(const void *row, const bg_q8k *x) { return k_dot_q8k_neon(row, x, 0); }

#endif
