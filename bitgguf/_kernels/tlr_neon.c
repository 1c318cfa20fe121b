/* I2_ROWS tail (tlr.c) with NEON: the tail of t = cols % 128 weights, t % 32 == 0, as 8-byte chunks of its g = t/4
 * code bytes (byte b holds weights b, b + g, b + 2g, b + 3g), widening multiplies into int16. Exact Σcq. */
#include "kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

int32_t bg_i2r_tail_cq_neon(const uint8_t *tail, const int8_t *q, int t) {
    const int g = t / 4;
    const uint8x8_t mask = vdup_n_u8(3);
    int16x8_t s = vdupq_n_s16(0);  /* at most 4 * 2 * 128 per chunk, 4 chunks */
    for (int b = 0; b < g; b += 8) {
        uint8x8_t c = vld1_u8(tail + b);
        s = vmlal_s8(s, vreinterpret_s8_u8(vshr_n_u8(c, 6)), vld1_s8(q + b));
        s = vmlal_s8(s, vreinterpret_s8_u8(vand_u8(vshr_n_u8(c, 4), mask)), vld1_s8(q + g + b));
        s = vmlal_s8(s, vreinterpret_s8_u8(vand_u8(vshr_n_u8(c, 2), mask)), vld1_s8(q + 2 * g + b));
        s = vmlal_s8(s, vreinterpret_s8_u8(vand_u8(c, mask)), vld1_s8(q + 3 * g + b));
    }
    return vaddlvq_s16(s);
}
#endif
