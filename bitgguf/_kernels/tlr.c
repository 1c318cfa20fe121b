/* I2_ROWS: the row-major layout TL1 and TL2 tensors are repacked into when a model is loaded (bitgguf-internal; the
 * files keep bitnet.cpp's tile-permuted layouts). A row of `cols` weights (cols % 8 == 0) is cols / 4 bytes:
 *   - floor(cols / 128) I2_S blocks (32 bytes: byte b holds the codes c = t + 1 of weights b, b+32, b+64, b+96 in
 *     bits 7-6, 5-4, 3-2, 1-0), so a row with cols % 128 == 0 is exactly an I2_S row;
 *   - then the tail, t = cols % 128 weights in t / 4 bytes laid out the same way with t / 4 in place of 32:
 *     byte b holds weights b, b + t/4, b + 2t/4, b + 3t/4.
 * One f32 tensor scale follows the rows, as for I2_S. The whole blocks run through the I2_S kernel of each level (the
 * activations' count and sum cut to the blocks) and the short tail through bg_i2r_tail; both parts are exact
 * integers, so the result equals Σ(c-1)q exactly at every level.
 *
 * TL1 is always repacked: its pair indices are 2 bits per weight like I2_S, so a lookup-table kernel (two pshufb and
 * a re-zip per 16 rows, int16 entries |w0*b0 + w1*b1| <= 256) would read as many bytes for more work. TL2 reads 5/24
 * byte per weight, so where an ISA level has a SIMD tile kernel for it (tl2_avx2.c) it is read in place, and repacked
 * here only on request or on levels without one (NEON). tools/tl_lut_probe.c has the first measurements (one thread,
 * AVX2, us per matvec for (640, 2560), (2560, 2560), (6912, 2560), (2560, 6912)): I2_S row kernel 26 / 105 / 295 /
 * 269; TL1-style LUT tiles 39 / 134 / 415 / 408. */
#include "kernels.h"

void bg_i2r_tail(const uint8_t *tail, const int8_t *q, int t, int32_t *cq, int32_t *qsum) {
    const int g = t / 4;
    int32_t acc = 0, s = 0;
    for (int b = 0; b < g; b++) {
        int byte = tail[b];
        acc += (byte >> 6) * q[b] + ((byte >> 4) & 3) * q[b + g] + ((byte >> 2) & 3) * q[b + 2 * g] +
               (byte & 3) * q[b + 3 * g];
    }
    for (int i = 0; i < t; i++) s += q[i];
    *cq = acc;
    *qsum = s;
}

typedef int32_t (*tail_cq_fn)(const uint8_t *tail, const int8_t *q, int t);

/* Σcq and Σq of the tail: SIMD when t % 32 == 0 (every TL2 tail, and every tail of a real model, whose dimensions are
 * all multiples of 32), with Σq from the activations' 32-value group sums (the tail starts on a group boundary). */
static inline void tail_sums(const uint8_t *tail, const bg_act *a, int full, int t, tail_cq_fn simd, int32_t *cq,
                             int32_t *qs) {
    if (simd && t % 32 == 0) {
        *cq = simd(tail, a->q + full, t);
        int32_t s = 0;
        for (int g = full / BG_ACT_GROUP; g < a->n / BG_ACT_GROUP; g++) s += a->gsum[g];
        *qs = s;
    } else {
        bg_i2r_tail(tail, a->q + full, t, cq, qs);
    }
}

/* Whole blocks by an I2_S kernel, the tail by tail_sums; exact integers both, summed exactly in f32 (below 2^24). */
static inline float i2r_dot(const uint8_t *row, const bg_act *a, bg_dot_i8_fn i2s, tail_cq_fn simd) {
    const int full = a->n / BG_I2S_BLOCK * BG_I2S_BLOCK, t = a->n - full;
    if (!t) return i2s(row, a);
    int32_t cq, qs;
    tail_sums(row + full / 4, a, full, t, simd, &cq, &qs);
    if (!full) return (float)(cq - qs);
    bg_act head = *a;
    head.n = full;
    head.sum = a->sum - qs;
    return i2s(row, &head) + (float)(cq - qs);
}

float bg_i2r_dot_scalar(const uint8_t *row, const bg_act *a) { return i2r_dot(row, a, bg_i2s_dot_scalar, NULL); }

#if defined(__x86_64__)
float bg_i2r_dot_avx2(const uint8_t *row, const bg_act *a) {
    return i2r_dot(row, a, bg_i2s_dot_avx2, bg_i2r_tail_cq_avx2);
}
/* Four rows (decode): rows of whole I2_S blocks (every TL row of 2B4T's shapes) by the I2_S four-row kernel. */
void bg_i2r_dot_x4_avx2(const uint8_t *row, size_t row_bytes, const bg_act *a, float *out) {
    if (a->n % BG_I2S_BLOCK == 0) {
        bg_i2s_dot_x4_avx2(row, row_bytes, a, out);
        return;
    }
    for (int k = 0; k < 4; k++) out[k] = bg_i2r_dot_avx2(row + (size_t)k * row_bytes, a);
}
float bg_i2r_dot_avx512(const uint8_t *row, const bg_act *a) {
    return i2r_dot(row, a, bg_i2s_dot_avx512, bg_i2r_tail_cq_avx2);
}

/* Several tokens: the I2_S multi-token kernel over the whole blocks (activations cut as above), tails added. */
static void i2r_dot_multi(const uint8_t *row, const bg_act *acts, int n, float *out, size_t stride,
                          bg_dot_i8_multi_fn i2s_multi) {
    const int full = acts[0].n / BG_I2S_BLOCK * BG_I2S_BLOCK, t = acts[0].n - full;
    if (!t) {
        i2s_multi(row, acts, n, out, stride);
        return;
    }
    if (!full) {
        for (int i = 0; i < n; i++) out[(size_t)i * stride] = bg_i2r_dot_scalar(row, &acts[i]);
        return;
    }
    enum { CHUNK = 16 };
    bg_act head[CHUNK];
    int32_t tail[CHUNK];
    for (int i0 = 0; i0 < n; i0 += CHUNK) {
        const int m = n - i0 < CHUNK ? n - i0 : CHUNK;
        for (int i = 0; i < m; i++) {
            int32_t cq, qs;
            tail_sums(row + full / 4, &acts[i0 + i], full, t, bg_i2r_tail_cq_avx2, &cq, &qs);
            head[i] = acts[i0 + i];
            head[i].n = full;
            head[i].sum = acts[i0 + i].sum - qs;
            tail[i] = cq - qs;
        }
        i2s_multi(row, head, m, out + (size_t)i0 * stride, stride);
        for (int i = 0; i < m; i++) out[(size_t)(i0 + i) * stride] += (float)tail[i];
    }
}

void bg_i2r_dot_multi_avx2(const uint8_t *row, const bg_act *acts, int n, float *out, size_t stride) {
    i2r_dot_multi(row, acts, n, out, stride, bg_i2s_dot_multi_avx2);
}

void bg_i2r_dot_multi_avx512(const uint8_t *row, const bg_act *acts, int n, float *out, size_t stride) {
    i2r_dot_multi(row, acts, n, out, stride, bg_i2s_dot_multi_avx512);
}
#endif

#if defined(__aarch64__)
float bg_i2r_dot_neon(const uint8_t *row, const bg_act *a) {
    return i2r_dot(row, a, bg_i2s_dot_neon, bg_i2r_tail_cq_neon);
}
float bg_i2r_dot_neon_dotprod(const uint8_t *row, const bg_act *a) {
    return i2r_dot(row, a, bg_i2s_dot_neon_dotprod, bg_i2r_tail_cq_neon);
}
#endif
