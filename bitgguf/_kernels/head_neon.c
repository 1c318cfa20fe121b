/* Float-activation dot products for the output head, NEON: four 4-wide FMA accumulators reduced in a fixed order. */
#include "kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

static inline float32x4_t load_f16x4(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

#define DOT16(LOAD, TAIL)                                                                              \
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0), s2 = vdupq_n_f32(0), s3 = vdupq_n_f32(0);  \
    int i = 0;                                                                                         \
    for (; i + 16 <= n; i += 16) {                                                                     \
        s0 = vfmaq_f32(s0, LOAD(w + i), vld1q_f32(x + i));                                             \
        s1 = vfmaq_f32(s1, LOAD(w + i + 4), vld1q_f32(x + i + 4));                                     \
        s2 = vfmaq_f32(s2, LOAD(w + i + 8), vld1q_f32(x + i + 8));                                     \
        s3 = vfmaq_f32(s3, LOAD(w + i + 12), vld1q_f32(x + i + 12));                                   \
    }                                                                                                  \
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, LOAD(w + i), vld1q_f32(x + i));                    \
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));                           \
    for (; i < n; i++) sum += TAIL(w[i]) * x[i];                                                       \
    return sum;

static inline float id_f32(float v) { return v; }

float bg_f32_dot_neon(const void *row, const float *x, int n) {
    const float *w = row;
    DOT16(vld1q_f32, id_f32)
}

float bg_f16_dot_neon(const void *row, const float *x, int n) {
    const uint16_t *w = row;
    DOT16(load_f16x4, bg_f16_to_f32)
}

static inline float32x4_t i8x16_part(int8x16_t v, int part) {
    int16x8_t h = part < 2 ? vmovl_s8(vget_low_s8(v)) : vmovl_high_s8(v);
    int32x4_t w = (part & 1) ? vmovl_high_s16(h) : vmovl_s16(vget_low_s16(h));
    return vcvtq_f32_s32(w);
}

float bg_q8_0_dot_neon(const void *row, const float *x, int n) {
    const uint8_t *p = row;
    float32x4_t acc = vdupq_n_f32(0);
    for (int b = 0; b < n / BG_Q8_0_BLOCK; b++, p += 34, x += BG_Q8_0_BLOCK) {
        uint16_t d;
        memcpy(&d, p, 2);
        int8x16_t q0 = vld1q_s8((const int8_t *)(p + 2)), q1 = vld1q_s8((const int8_t *)(p + 18));
        float32x4_t s = vmulq_f32(i8x16_part(q0, 0), vld1q_f32(x));
        s = vfmaq_f32(s, i8x16_part(q0, 1), vld1q_f32(x + 4));
        s = vfmaq_f32(s, i8x16_part(q0, 2), vld1q_f32(x + 8));
        s = vfmaq_f32(s, i8x16_part(q0, 3), vld1q_f32(x + 12));
        s = vfmaq_f32(s, i8x16_part(q1, 0), vld1q_f32(x + 16));
        s = vfmaq_f32(s, i8x16_part(q1, 1), vld1q_f32(x + 20));
        s = vfmaq_f32(s, i8x16_part(q1, 2), vld1q_f32(x + 24));
        s = vfmaq_f32(s, i8x16_part(q1, 3), vld1q_f32(x + 28));
        acc = vfmaq_n_f32(acc, s, bg_f16_to_f32(d));
    }
    return vaddvq_f32(acc);
}

/* y += a * row: attention's weighted sum over the V cache */
void bg_f32_axpy_neon(const void *row, float a, float *y, int n) {
    const float *w = row;
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(w + i), a));
    for (; i < n; i++) y[i] += a * w[i];
}

void bg_f16_axpy_neon(const void *row, float a, float *y, int n) {
    const uint16_t *w = row;
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), load_f16x4(w + i), a));
    for (; i < n; i++) y[i] += a * bg_f16_to_f32(w[i]);
}

#endif
