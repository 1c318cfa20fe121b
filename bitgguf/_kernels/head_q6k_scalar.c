/* Q6_K, Q5_K, Q4_K and Q4_0 output heads in portable C, and their row -> f32 conversion for embedding lookups.
 * The K-quants take Q8_K activations (bg_q8k), as ggml does: exact integer sums per 256-weight block, combined in
 * f32 exactly as every other level does it (kernels.h). Q4_0 keeps f32 activations, as the F16 / Q8_0 heads do.
 *
 * Q6_K super-block (256 weights, 210 bytes): ql[128] low nibbles, qh[64] high 2 bits, int8 scales[16], f16 d.
 * Weight j of a half h = j / 128 (l = j % 32, quarter k = (j % 128) / 32): low nibble of ql[64h + l + 32(k & 1)]
 * (k < 2) or its high nibble (k >= 2), plus bits 2k..2k+1 of qh[32h + l] << 4; value d * scales[j / 16] * (q - 32).
 * The dot: isum = Σ_j scales[j] Σ_{i in sub-block j} (q_i - 32) x_i over the block's Q8_K codes x, exact; then
 * sum += (d * d_x) * isum.
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

float bg_q6_k_dot_q8k_scalar(const void *row, const bg_q8k *x) {
    const uint8_t *p = row;
    int8_t q[BG_Q6_K_BLOCK];
    float sum = 0.0f;
    for (int b = 0; b < x->n / BG_QK_K; b++, p += BG_Q6_K_BYTES) {
        const int8_t *sc = (const int8_t *)(p + 192), *xq = x->q + (size_t)b * BG_QK_K;
        bg_q6_k_unpack(p, q);
        int32_t isum = 0;
        for (int j = 0; j < 16; j++) {
            int32_t s = 0;
            for (int i = 16 * j; i < 16 * j + 16; i++) s += q[i] * xq[i];
            isum += sc[j] * s;
        }
        sum += (bg_f16_at(p + 208) * x->d[b]) * (float)isum;
    }
    return sum;
}

/* (d * scale) * q, as numpy's and ggml's dequantize: the embedding rows equal the reference's exactly */
void bg_q6_k_to_float(const void *row, float *y, int n) {
    const uint8_t *p = row;
    int8_t q[BG_Q6_K_BLOCK];
    for (int b = 0; b < n / BG_Q6_K_BLOCK; b++, p += BG_Q6_K_BYTES, y += BG_Q6_K_BLOCK) {
        const int8_t *sc = (const int8_t *)(p + 192);
        const float d = bg_f16_at(p + 208);
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

/* ---- Q5_K / Q4_K: eight 32-weight sub-blocks per 256, each with a 6-bit scale sc and min m ------------------
 * Q5_K (176 bytes): f16 d, f16 dmin, scales[12], qh[32], qs[128]; Q4_K (144 bytes): f16 d, f16 dmin, scales[12],
 * qs[128]. value = d * sc_j * q - dmin * m_j. Sub-blocks 2p and 2p + 1 share qs[32p .. 32p + 31] (low, high
 * nibble); Q5_K's fifth bits are bits 2p and 2p + 1 of qh[l]. The dot, over Q8_K codes x: per block the exact
 * integers isum = Σ_j sc_j Σ_{i in j} q_i x_i and msum = Σ_j m_j Σ_{i in j} x_i, then
 * sum += (d * d_x) * isum - (dmin * d_x) * msum. */
void bg_k_scale_min(int j, const uint8_t *s, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* one block's 256 codes (0..31 or 0..15) in weight order */
static void k_unpack(const uint8_t *blk, int five_bit, uint8_t *q) {
    const uint8_t *qs = blk + (five_bit ? 48 : 16), *qh = blk + 16;
    for (int p = 0; p < 4; p++)
        for (int l = 0; l < 32; l++) {
            q[64 * p + l] = qs[32 * p + l] & 0xF;
            q[64 * p + 32 + l] = qs[32 * p + l] >> 4;
            if (five_bit) {
                q[64 * p + l] |= ((qh[l] >> (2 * p)) & 1) << 4;
                q[64 * p + 32 + l] |= ((qh[l] >> (2 * p + 1)) & 1) << 4;
            }
        }
}

static float k_dot_q8k(const uint8_t *p, const bg_q8k *x, int five_bit) {
    const int bytes = five_bit ? BG_Q5_K_BYTES : BG_Q4_K_BYTES;
    uint8_t q[256];
    float sum = 0.0f;
    for (int b = 0; b < x->n / BG_QK_K; b++, p += bytes) {
        const int8_t *xq = x->q + (size_t)b * BG_QK_K;
        const int16_t *bsum = x->bsum + (size_t)b * (BG_QK_K / 16);
        k_unpack(p, five_bit, q);
        int32_t isum = 0, msum = 0;
        for (int j = 0; j < 8; j++) {
            int sc, m;
            bg_k_scale_min(j, p + 4, &sc, &m);
            int32_t s = 0;
            for (int i = 32 * j; i < 32 * j + 32; i++) s += q[i] * xq[i];
            isum += sc * s;
            msum += m * (bsum[2 * j] + bsum[2 * j + 1]);
        }
        sum += (bg_f16_at(p) * x->d[b]) * (float)isum - (bg_f16_at(p + 2) * x->d[b]) * (float)msum;
    }
    return sum;
}

/* (d * sc) * q - dmin * m, as numpy's and ggml's dequantize */
static void k_to_float(const uint8_t *p, float *y, int n, int five_bit) {
    const int bytes = five_bit ? BG_Q5_K_BYTES : BG_Q4_K_BYTES;
    uint8_t q[256];
    for (int b = 0; b < n / 256; b++, p += bytes, y += 256) {
        k_unpack(p, five_bit, q);
        const float d = bg_f16_at(p), dmin = bg_f16_at(p + 2);
        for (int j = 0; j < 8; j++) {
            int sc, m;
            bg_k_scale_min(j, p + 4, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            for (int i = 0; i < 32; i++) y[32 * j + i] = d1 * (float)q[32 * j + i] - m1;
        }
    }
}

float bg_q5_k_dot_q8k_scalar(const void *row, const bg_q8k *x) { return k_dot_q8k(row, x, 1); }
float bg_q4_k_dot_q8k_scalar(const void *row, const bg_q8k *x) { return k_dot_q8k(row, x, 0); }
void bg_q5_k_to_float(const void *row, float *y, int n) { k_to_float(row, y, n, 1); }
void bg_q4_k_to_float(const void *row, float *y, int n) { k_to_float(row, y, n, 0); }
