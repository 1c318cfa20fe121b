/* I2_S ternary dot product, portable C: the fallback every platform has and the oracle for the SIMD variants.
 * A block is 128 weights in 32 bytes; byte b holds the 2-bit codes c (0 -> -1, 1 -> 0, 2 -> +1) of weights
 * b, b+32, b+64, b+96 in bits 7-6, 5-4, 3-2, 1-0. */
#include "kernels.h"

float bg_i2s_dot_scalar(const uint8_t *row, const bg_act *a) {
    const int8_t *q = a->q;
    int32_t acc = 0;
    for (int b = 0; b < a->n / BG_I2S_BLOCK; b++, row += 32, q += BG_I2S_BLOCK) {
        for (int j = 0; j < 32; j++) {
            int byte = row[j];
            acc += (byte >> 6) * q[j] + ((byte >> 4) & 3) * q[j + 32] + ((byte >> 2) & 3) * q[j + 64] +
                   (byte & 3) * q[j + 96];
        }
    }
    return (float)(acc - a->sum);  /* Σ(c-1)q = Σcq - Σq; exact in f32 below 2^24 */
}
