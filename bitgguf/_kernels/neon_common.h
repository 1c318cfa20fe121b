/* Shared helpers for the NEON kernel files. The dotprod variants are compiled for armv8.2-a+dotprod inside a
 * push/pop region (gcc) or with a function attribute (clang), so the rest of the file stays baseline NEON. */
#ifndef BITGGUF_NEON_COMMON_H
#define BITGGUF_NEON_COMMON_H
#include <arm_neon.h>

#if defined(__clang__)
#define BG_DOTPROD_BEGIN
#define BG_DOTPROD_END
#define BG_DOTPROD_FN __attribute__((target("dotprod")))
#else
#define BG_DOTPROD_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"arch=armv8.2-a+dotprod\")")
#define BG_DOTPROD_END _Pragma("GCC pop_options")
#define BG_DOTPROD_FN
#endif

/* vdotq_s32 inside a dotprod function. clang's arm_neon.h (before clang 16) declares it only when the whole file is
 * compiled with dotprod, so there it is written as the instruction itself. */
#if defined(__clang__) && !defined(__ARM_FEATURE_DOTPROD)
BG_DOTPROD_FN static inline int32x4_t bg_vdotq_s32(int32x4_t acc, int8x16_t a, int8x16_t b) {
    __asm__("sdot %0.4s, %1.16b, %2.16b" : "+w"(acc) : "w"(a), "w"(b));
    return acc;
}
#else
#define bg_vdotq_s32 vdotq_s32
#endif

/* acc (8 x int16) += codes * q over 16 lanes (codes 0..3, so the products fit int16 comfortably). */
static inline int16x8_t bg_mla_codes(int16x8_t acc, uint8x16_t codes, const int8_t *q) {
    int8x16_t c = vreinterpretq_s8_u8(codes), x = vld1q_s8(q);
    acc = vmlal_s8(acc, vget_low_s8(c), vget_low_s8(x));
    return vmlal_high_s8(acc, c, x);
}
#endif
