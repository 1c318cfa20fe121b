/* Probe: does a T-MAC-style lookup-table GEMV (TL1 or TL2 style) beat the per-row I2_S kernel here (AVX2, 1 thread)?
 *
 * This decided how bitgguf runs TL1 files (see bitgguf/_kernels/tlr.c): repack into row-major 2-bit rows for the
 * I2_S kernel, or keep 32-row tiles of 4-bit pair indices (TL1's idx = 3*w0 + w1 + 4) and look them up in per-pair
 * tables built from the int8 activations. Both give the same exact integers (checked here). Its TL2 kernel uses a
 * simplified layout; the runtime's TL2 kernel, on bitnet.cpp's real layout, is bitgguf/_kernels/tl2_avx2.c.
 *
 *   LUT kernel: for each pair j of activations (b0, b1) a 16-entry int16 table w0*b0 + w1*b1, split into a low-byte
 *   and a high-byte pshufb table (|entry| <= 256 does not fit int8); a tile of 32 rows keeps, per pair, 16 bytes of
 *   nibbles (row m low, row m + 16 high); two pshufb give 32 rows' entries, re-zipped to int16 and accumulated
 *   (widened to int32 every 64 pairs).
 *
 * Build and run from the repository root (no -march: the kernels pick their ISA by pragma):
 *   cc -O3 -std=gnu11 -Ibitgguf/_kernels tools/tl_lut_probe.c bitgguf/_kernels/{cpu,kernels,i2s_*,tq2_*,tq1_*,tlr*,head_*}.c -lm -o /tmp/probe && /tmp/probe
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"

#if defined(__x86_64__)
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (uint32_t)(rs >> 11);
}
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* per-pair tables: 32 bytes (16 low bytes, 16 high bytes of the int16 entries) */
static void lut_build(const int8_t *q, int K, uint8_t *tbl) {
    for (int j = 0; j < K / 2; j++) {
        int b0 = q[2 * j], b1 = q[2 * j + 1];
        uint8_t *t = tbl + 32 * j;
        memset(t, 0, 32);
        for (int w0 = -1; w0 <= 1; w0++)
            for (int w1 = -1; w1 <= 1; w1++) {
                int idx = 3 * w0 + w1 + 4;
                int16_t e = (int16_t)(w0 * b0 + w1 * b1);
                t[idx] = (uint8_t)(e & 0xff);
                t[16 + idx] = (uint8_t)((uint16_t)e >> 8);
            }
    }
}

/* y[32 rows of one tile] += Σ_j table_j[idx]; exact int32 */
static void lut_tile(const uint8_t *w, const uint8_t *tbl, int npairs, int32_t *y) {
    const __m256i lo4 = _mm256_set1_epi8(0x0f);
    __m256i a[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int j0 = 0; j0 < npairs; j0 += 64) {
        __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
        int j1 = j0 + 64 < npairs ? j0 + 64 : npairs;
        for (int j = j0; j < j1; j++) {
            __m128i v = _mm_loadu_si128((const __m128i *)(w + 16 * j));
            __m256i idx = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), lo4);
            __m256i tl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(tbl + 32 * j)));
            __m256i th = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(tbl + 32 * j + 16)));
            __m256i l = _mm256_shuffle_epi8(tl, idx), h = _mm256_shuffle_epi8(th, idx);
            s0 = _mm256_add_epi16(s0, _mm256_unpacklo_epi8(l, h));
            s1 = _mm256_add_epi16(s1, _mm256_unpackhi_epi8(l, h));
        }
        /* widen: lanes of s0 are rows 0-7 | 16-23, s1 rows 8-15 | 24-31 */
        a[0] = _mm256_add_epi32(a[0], _mm256_srai_epi32(_mm256_slli_epi32(s0, 16), 16));
        a[1] = _mm256_add_epi32(a[1], _mm256_srai_epi32(s0, 16));
        a[2] = _mm256_add_epi32(a[2], _mm256_srai_epi32(_mm256_slli_epi32(s1, 16), 16));
        a[3] = _mm256_add_epi32(a[3], _mm256_srai_epi32(s1, 16));
    }
    int32_t t[4][8];
    for (int k = 0; k < 4; k++) _mm256_storeu_si256((__m256i *)t[k], a[k]);
    /* int16 lane i of s0: lane group g = i / 8 (0: rows 0-7, 1: rows 16-23), row = 16 g + i % 8 */
    for (int i = 0; i < 8; i++) {
        int g = i / 4, e = (i % 4) * 2;  /* int32 lane i holds int16 lanes 2i (even) and 2i + 1 (odd) */
        y[16 * g + e] = t[0][i], y[16 * g + e + 1] = t[1][i];
        y[16 * g + 8 + e] = t[2][i], y[16 * g + 8 + e + 1] = t[3][i];
    }
}

/* TL2 style: per triple of activations a 16-entry int16 table of |v| -> w . b for v = 9 w0 + 3 w1 + w2 >= 0 (14 used);
 * per tile and triple 16 bytes of magnitude nibbles (row m low, m + 16 high) and 4 bytes of sign bits (bit r = row r
 * negative), the looked-up entries negated per row: (e ^ m) - m. */
static void lut2_build(const int8_t *q, int K, uint8_t *tbl) {
    for (int j = 0; j < K / 3; j++) {
        uint8_t *t = tbl + 32 * j;
        memset(t, 0, 32);
        for (int v = 0; v <= 13; v++) {
            int u = v + 13, w0 = u / 9 - 1, w1 = u / 3 % 3 - 1, w2 = u % 3 - 1;
            int16_t e = (int16_t)(w0 * q[3 * j] + w1 * q[3 * j + 1] + w2 * q[3 * j + 2]);
            t[v] = (uint8_t)(e & 0xff);
            t[16 + v] = (uint8_t)((uint16_t)e >> 8);
        }
    }
}

static void lut2_tile(const uint8_t *w, const uint32_t *sg, const uint8_t *tbl, int ntrip, int32_t *y) {
    const __m256i lo4 = _mm256_set1_epi8(0x0f);
    const __m256i bits0 = _mm256_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i bits1 = _mm256_slli_epi16(bits0, 8);
    __m256i a[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int j0 = 0; j0 < ntrip; j0 += 64) {  /* |entry| <= 384: 64 triples fit int16 */
        __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
        int j1 = j0 + 64 < ntrip ? j0 + 64 : ntrip;
        for (int j = j0; j < j1; j++) {
            __m128i v = _mm_loadu_si128((const __m128i *)(w + 16 * j));
            __m256i idx = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), lo4);
            __m256i tl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(tbl + 32 * j)));
            __m256i th = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(tbl + 32 * j + 16)));
            __m256i l = _mm256_shuffle_epi8(tl, idx), h = _mm256_shuffle_epi8(th, idx);
            __m256i e0 = _mm256_unpacklo_epi8(l, h), e1 = _mm256_unpackhi_epi8(l, h);
            uint32_t b = sg[j];  /* rows 0-15 in the low 16 bits (128-bit lane 0), 16-31 high (lane 1) */
            __m256i S = _mm256_set_m128i(_mm_set1_epi16((short)(b >> 16)), _mm_set1_epi16((short)(b & 0xffff)));
            __m256i m0 = _mm256_cmpeq_epi16(_mm256_and_si256(S, bits0), bits0);
            __m256i m1 = _mm256_cmpeq_epi16(_mm256_and_si256(S, bits1), bits1);
            s0 = _mm256_add_epi16(s0, _mm256_sub_epi16(_mm256_xor_si256(e0, m0), m0));
            s1 = _mm256_add_epi16(s1, _mm256_sub_epi16(_mm256_xor_si256(e1, m1), m1));
        }
        a[0] = _mm256_add_epi32(a[0], _mm256_srai_epi32(_mm256_slli_epi32(s0, 16), 16));
        a[1] = _mm256_add_epi32(a[1], _mm256_srai_epi32(s0, 16));
        a[2] = _mm256_add_epi32(a[2], _mm256_srai_epi32(_mm256_slli_epi32(s1, 16), 16));
        a[3] = _mm256_add_epi32(a[3], _mm256_srai_epi32(s1, 16));
    }
    int32_t t[4][8];
    for (int k = 0; k < 4; k++) _mm256_storeu_si256((__m256i *)t[k], a[k]);
    for (int i = 0; i < 8; i++) {
        int g = i / 4, e = (i % 4) * 2;
        y[16 * g + e] = t[0][i], y[16 * g + e + 1] = t[1][i];
        y[16 * g + 8 + e] = t[2][i], y[16 * g + 8 + e + 1] = t[3][i];
    }
}

int main(void) {
    const int shapes[][2] = {{640, 2560}, {2560, 2560}, {6912, 2560}, {2560, 6912}};
    printf("one thread, AVX2; best time per matvec (table build included for LUT; TL2 over K - K %% 3 columns)\n");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int M = shapes[s][0], K = shapes[s][1];
        int8_t *codes = malloc((size_t)M * K);
        for (size_t i = 0; i < (size_t)M * K; i++) codes[i] = (int8_t)(rnd() % 3) - 1;
        /* I2_S rows */
        uint8_t *i2s = calloc((size_t)M * K / 4, 1);
        for (int r = 0; r < M; r++)
            for (int j = 0; j < K; j++)
                i2s[(size_t)r * K / 4 + j / 128 * 32 + j % 32] |=
                    (uint8_t)((codes[(size_t)r * K + j] + 1) << (6 - 2 * ((j % 128) / 32)));
        /* LUT tiles: tile of 32 rows, per pair j 16 bytes: row m low nibble, row m + 16 high nibble */
        uint8_t *lut = calloc((size_t)M * K / 4, 1);
        for (int r = 0; r < M; r++)
            for (int j = 0; j < K / 2; j++) {
                int idx = 3 * codes[(size_t)r * K + 2 * j] + codes[(size_t)r * K + 2 * j + 1] + 4;
                int tile = r / 32, m = r % 32;
                lut[(size_t)tile * 16 * (K / 2) + 16 * j + m % 16] |= (uint8_t)(idx << (m < 16 ? 0 : 4));
            }
        bg_act a;
        a.q = aligned_alloc(64, (size_t)K);
        a.gsum = malloc((size_t)(K / 32 + 1) * sizeof(int32_t));
        float *x = malloc((size_t)K * sizeof(float));
        for (int i = 0; i < K; i++) x[i] = (float)((int)(rnd() % 2001) - 1000) / 100.0f;
        bg_quantize_act(x, K, &a);
        uint8_t *tbl = aligned_alloc(64, (size_t)K / 2 * 32);
        float *y1 = malloc((size_t)M * sizeof(float));
        int32_t *y2 = malloc((size_t)M * sizeof(int32_t));
        const int reps = (int)(2e9 / ((double)M * K)) + 3;
        double best1 = 1e9, best2 = 1e9;
        for (int it = 0; it < reps; it++) {
            double t0 = now();
            for (int r = 0; r < M; r++) y1[r] = bg_i2s_dot_avx2(i2s + (size_t)r * K / 4, &a);
            double t1 = now();
            lut_build(a.q, K, tbl);
            for (int t = 0; t < M / 32; t++) lut_tile(lut + (size_t)t * 16 * (K / 2), tbl, K / 2, y2 + 32 * t);
            double t2 = now();
            best1 = t1 - t0 < best1 ? t1 - t0 : best1;
            best2 = t2 - t1 < best2 ? t2 - t1 : best2;
        }
        int bad = 0;
        for (int r = 0; r < M; r++) bad += y1[r] != (float)y2[r];
        /* TL2 tiles over the first K3 = K - K % 3 columns (compared with I2_S on the same codes, those columns) */
        const int K3 = K / 3 * 3, T = K3 / 3;
        uint8_t *mag = calloc((size_t)M * T / 2, 1);
        uint32_t *sg = calloc((size_t)(M / 32) * T, sizeof(uint32_t));
        int32_t *y3 = malloc((size_t)M * sizeof(int32_t)), *want3 = malloc((size_t)M * sizeof(int32_t));
        for (int r = 0; r < M; r++) {
            int32_t acc = 0;
            for (int j = 0; j < T; j++) {
                const int8_t *w = codes + (size_t)r * K + 3 * j;
                int v = 9 * w[0] + 3 * w[1] + w[2], tile = r / 32, m = r % 32;
                mag[(size_t)tile * 16 * T + 16 * j + m % 16] |= (uint8_t)((v < 0 ? -v : v) << (m < 16 ? 0 : 4));
                if (v < 0) sg[(size_t)tile * T + j] |= 1u << m;
                acc += w[0] * a.q[3 * j] + w[1] * a.q[3 * j + 1] + w[2] * a.q[3 * j + 2];
            }
            want3[r] = acc;
        }
        uint8_t *tbl2 = aligned_alloc(64, (size_t)(T + 1) * 32);
        double best3 = 1e9;
        for (int it = 0; it < reps; it++) {
            double t0 = now();
            lut2_build(a.q, K3, tbl2);
            for (int t = 0; t < M / 32; t++)
                lut2_tile(mag + (size_t)t * 16 * T, sg + (size_t)t * T, tbl2, T, y3 + 32 * t);
            double t1 = now() - t0;
            best3 = t1 < best3 ? t1 : best3;
        }
        for (int r = 0; r < M; r++) bad += y3[r] != want3[r];
        double gb = (double)M * K / 4 / 1e9;
        printf("(%5d, %5d): I2_S rows %6.0f us (%4.1f GB/s)  TL1 LUT %6.0f us (%4.1f GB/s)  TL2 LUT %6.0f us  %s\n", M, K,
               best1 * 1e6, gb / best1, best2 * 1e6, gb / best2, best3 * 1e6, bad ? "MISMATCH" : "same integers");
        free(mag), free(sg), free(y3), free(want3), free(tbl2);
        free(codes), free(i2s), free(lut), free(a.q), free(a.gsum), free(x), free(tbl), free(y1), free(y2);
    }
    return 0;
}
#else
int main(void) {
    printf("x86-64 only\n");
    return 0;
}
#endif
