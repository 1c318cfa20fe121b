/* TQ1_0 ternary dot product, portable C. A block is 256 weights in 54 bytes: qs[48], qh[4], f16 d. Bytes hold base-3
 * digits, first digit most significant, scaled by 256/243: digit n of byte b is ((uint8)(b * 3^n) * 3) >> 8.
 *   qs[m], m < 32:  digits n = 0..4 are weights m + 32n            (weights 0..159)
 *   qs[32 + m]:     digits n = 0..4 are weights 160 + m + 16n      (weights 160..239)
 *   qh[j]:          digits n = 0..3 are weights 240 + j + 4n       (weights 240..255)
 * Digits are the codes c = t + 1. Per block the integer Σ(c-1)q is exact and d * isum is exact in double, so every
 * variant sums the same doubles in the same order and rounds once (as TQ2_0). */
#include "kernels.h"

static inline int tq1_digit(int byte, int pow3) { return (((byte * pow3) & 0xff) * 3) >> 8; }

/* Σ(c-1)q of one block (the scalar oracle; also used by the SIMD files' tests). */
int32_t bg_tq1_block_isum(const uint8_t *blk, const int8_t *q, const int32_t *gsum) {
    static const int pow3[5] = {1, 3, 9, 27, 81};
    int32_t acc = 0;
    for (int n = 0; n < 5; n++) {
        for (int m = 0; m < 32; m++) acc += tq1_digit(blk[m], pow3[n]) * q[m + 32 * n];
        for (int m = 0; m < 16; m++) acc += tq1_digit(blk[32 + m], pow3[n]) * q[160 + m + 16 * n];
    }
    for (int n = 0; n < 4; n++)
        for (int j = 0; j < 4; j++) acc += tq1_digit(blk[48 + j], pow3[n]) * q[240 + j + 4 * n];
    int32_t qsum = 0;
    for (int g = 0; g < BG_TQ1_BLOCK / BG_ACT_GROUP; g++) qsum += gsum[g];
    return acc - qsum;
}

float bg_tq1_dot_scalar(const uint8_t *row, const bg_act *a) {
    double sum = 0.0;  /* d * isum is exact in double, so FMA contraction cannot change it */
    for (int b = 0; b < a->n / BG_TQ1_BLOCK; b++, row += BG_TQ1_BYTES) {
        int32_t isum = bg_tq1_block_isum(row, a->q + b * BG_TQ1_BLOCK, a->gsum + b * (BG_TQ1_BLOCK / BG_ACT_GROUP));
        uint16_t d;
        memcpy(&d, row + 52, 2);
        sum += (double)bg_f16_to_f32(d) * isum;
    }
    return (float)sum;
}

void bg_tq1_order_act(const int8_t *q, int n, int8_t *out) {
    for (int b = 0; b < n / BG_TQ1_BLOCK; b++, q += BG_TQ1_BLOCK) {
        for (int d = 0; d < 5; d++, out += 64) {
            memcpy(out, q + 32 * d, 32);
            memcpy(out + 32, q + 160 + 16 * d, 16);
            memset(out + 48, 0, 16);
            if (d < 4) memcpy(out + 48, q + 240 + 4 * d, 4);
        }
    }
}
