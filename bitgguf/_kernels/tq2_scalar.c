/* TQ2_0 ternary dot product, portable C. A block is 256 weights: qs[64] then an f16 scale d. In half h (32 bytes)
 * byte m holds the codes of weights h*128 + l*32 + m in bits 2l..2l+1 (LSB first, the opposite of I2_S).
 * Per block the integer sum Σ(c-1)q is exact; d * isum is exact in double, so the double sum of blocks (rounded
 * to f32 at the end) is the same in every variant, FMA or not. */
#include "kernels.h"

float bg_tq2_dot_scalar(const uint8_t *row, const bg_act *a) {
    const int8_t *q = a->q;
    double sum = 0.0;  /* d * isum is exact in double, so FMA contraction cannot change it */
    for (int b = 0; b < a->n / BG_TQ2_BLOCK; b++, row += 66, q += BG_TQ2_BLOCK) {
        int32_t acc = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *qs = row + 32 * h;
            const int8_t *qh = q + 128 * h;
            for (int m = 0; m < 32; m++) {
                int byte = qs[m];
                acc += (byte & 3) * qh[m] + ((byte >> 2) & 3) * qh[m + 32] + ((byte >> 4) & 3) * qh[m + 64] +
                       (byte >> 6) * qh[m + 96];
            }
        }
        const int32_t *gs = a->gsum + b * (BG_TQ2_BLOCK / BG_ACT_GROUP);
        int32_t qsum = gs[0] + gs[1] + gs[2] + gs[3] + gs[4] + gs[5] + gs[6] + gs[7];
        uint16_t d;
        memcpy(&d, row + 64, 2);
        sum += (double)bg_f16_to_f32(d) * (acc - qsum);
    }
    return (float)sum;
}
