/* Q6_K and Q4_0 output heads in portable C: the row dequantized on the fly times f32 activations (the head keeps
 * its activations in float, as the F16 / Q8_0 heads do), and the row -> f32 conversion for embedding lookups.
 *
 * Q6_K super-block (256 weights, 210 bytes): ql[128] low nibbles, qh[64] high 2 bits, int8 scales[16], f16 d.
 * Weight j of a half h = j / 128 (l = j % 32, quarter k = (j % 128) / 32): low nibble of ql[64h + l + 32(k & 1)]
 * (k < 2) or its high nibble (k >= 2), plus bits 2k..2k+1 of qh[32h + l] << 4; value d * scales[j / 16] * (q - 32).
 * The dot takes scales[j / 16] * (q - 32) as an exact integer in float, sums it times x over the block, then
 * multiplies by d: the numpy dequantize times x up to float order.
 * Q4_0 block (32 weights, 18 bytes): f16 d, qs[16]; weight j < 16 in the low nibble of qs[j], j + 16 in the high
 * nibble; value d * (q - 8). */
#include "kernels.h"

/* the 256 signed codes (q - 32) of one Q6_K block, in weight order */
void bg_q6_k_unpack(const uint8_t *blk, int8_t *q) {
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
        int8_t *o = q + 128 * h;
        for (int l = 0; l < 32; l++) {
            o[l] = (int8_t)(((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32);
            o[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
            o[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            o[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
}

static inline float q6_k_d(const uint8_t *blk) {
    uint16_t d;
    memcpy(&d, blk + 208, 2);
    return bg_f16_to_f32(d);
}

float bg_q6_k_dot_scalar(const void *row, const float *x, int n) {
    const uint8_t *p = row;
    int8_t q[BG_Q6_K_BLOCK];
    float sum = 0.0f;
    for (int b = 0; b < n / BG_Q6_K_BLOCK; b++, p += BG_Q6_K_BYTES, x += BG_Q6_K_BLOCK) {
        const int8_t *sc = (const int8_t *)(p + 192);
        bg_q6_k_unpack(p, q);
        float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int i = 0; i < BG_Q6_K_BLOCK; i += 8)
            for (int k = 0; k < 8; k++) s[k] += (float)(sc[i / 16] * q[i + k]) * x[i + k];
        sum += q6_k_d(p) * (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])));
    }
    return sum;
}

/* (d * scale) * q, as numpy's and ggml's dequantize: the embedding rows equal the reference's exactly */
void bg_q6_k_to_float(const void *row, float *y, int n) {
    const uint8_t *p = row;
    int8_t q[BG_Q6_K_BLOCK];
    for (int b = 0; b < n / BG_Q6_K_BLOCK; b++, p += BG_Q6_K_BYTES, y += BG_Q6_K_BLOCK) {
        const int8_t *sc = (const int8_t *)(p + 192);
        const float d = q6_k_d(p);
        bg_q6_k_unpack(p, q);
        for (int i = 0; i < BG_Q6_K_BLOCK; i++) y[i] = (d * (float)sc[i / 16]) * (float)q[i];
    }
}

float bg_q4_0_dot_scalar(const void *row, const float *x, int n) {
    const uint8_t *p = row;
    float sum = 0.0f;
    for (int b = 0; b < n / BG_Q4_0_BLOCK; b++, p += BG_Q4_0_BYTES, x += BG_Q4_0_BLOCK) {
        uint16_t d;
        memcpy(&d, p, 2);
        const uint8_t *qs = p + 2;
        float s[4] = {0, 0, 0, 0};
        for (int i = 0; i < 16; i += 2) {
            s[0] += (float)((qs[i] & 0xF) - 8) * x[i];
            s[1] += (float)((qs[i + 1] & 0xF) - 8) * x[i + 1];
            s[2] += (float)((qs[i] >> 4) - 8) * x[i + 16];
            s[3] += (float)((qs[i + 1] >> 4) - 8) * x[i + 17];
        }
        sum += bg_f16_to_f32(d) * ((s[0] + s[1]) + (s[2] + s[3]));
    }
    return sum;
}

void bg_q4_0_to_float(const void *row, float *y, int n) {
    const uint8_t *p = row;
    for (int b = 0; b < n / BG_Q4_0_BLOCK; b++, p += BG_Q4_0_BYTES, y += BG_Q4_0_BLOCK) {
        uint16_t d;
        memcpy(&d, p, 2);
        const float df = bg_f16_to_f32(d);
        for (int i = 0; i < 16; i++) {
            y[i] = (float)((p[2 + i] & 0xF) - 8) * df;
            y[i + 16] = (float)((p[2 + i] >> 4) - 8) * df;
        }
    }
}
