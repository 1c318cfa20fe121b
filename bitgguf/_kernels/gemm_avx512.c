/* The prompt path's GEMMs, AVX-512 VNNI (I2_S and I2_ROWS, TQ2_0, TQ1_0, TL2): x86_gemm.h's panels and loops, with the
 * 32 x 32 products in vpdpbusd instead of AMX tiles, into the same sums (so the same outputs, bit for bit).
 *
 * One zmm of acc holds one weight row's sums for a tile's 16 tokens (a row of an AMX sum tile), which suits the
 * token tiles: row i of a tile chunk holds values 4i..4i+3 of the 16 tokens, so vpdpbusd of that row (signed) with
 * the weight row's 4 codes at 4i broadcast (unsigned) adds those 4 products to each token's lane. A weight row's
 * codes are thus unpacked once per batch, and each code load serves two token tiles; the one-row-at-a-time
 * multi-token kernel (i2s_avx512.c) instead reloads every token's activations for each row, from L2 at 128 tokens.
 */
#include "kernels.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,prfchw"))), \
                             apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,prfchw")
#endif
#include "x86_gemm.h"

#define STEP_ROWS 8  /* rows per pass: 16 sums (8 rows x 2 token tiles) in registers, 10 loads per 16 vpdpbusd */

static inline __m512i broadcast_codes(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* The panel's rows STEP_ROWS at a time against both token tiles over all `cols` columns (column k of a tile pair:
 * row k/4 of chunk k/64, at byte 16 k from b0 and from b1). */
static inline void step_two_tiles(const uint8_t *panel, int cols, const int8_t *b0, const int8_t *b1, int first,
                                  int32_t (*acc)[2][256]) {
    for (int g = 0; g < PANEL_ROWS; g += STEP_ROWS) {
        __m512i s0[STEP_ROWS], s1[STEP_ROWS];
        int32_t *a0 = acc[0][g / 16] + (g % 16) * 16, *a1 = acc[1][g / 16] + (g % 16) * 16;
        for (int r = 0; r < STEP_ROWS; r++) {
            s0[r] = first ? _mm512_setzero_si512() : _mm512_load_si512((const void *)(a0 + 16 * r));
            s1[r] = first ? _mm512_setzero_si512() : _mm512_load_si512((const void *)(a1 + 16 * r));
        }
        const uint8_t *w = panel + (size_t)g * cols;
        for (int k = 0; k < cols; k += 4) {
            const __m512i q0 = _mm512_loadu_si512((const void *)(b0 + 16 * k));
            const __m512i q1 = _mm512_loadu_si512((const void *)(b1 + 16 * k));
            for (int r = 0; r < STEP_ROWS; r++) {
                const __m512i c = broadcast_codes(w + (size_t)r * cols + k);
                s0[r] = _mm512_dpbusd_epi32(s0[r], c, q0);
                s1[r] = _mm512_dpbusd_epi32(s1[r], c, q1);
            }
        }
        for (int r = 0; r < STEP_ROWS; r++) {
            _mm512_store_si512((void *)(a0 + 16 * r), s0[r]);
            _mm512_store_si512((void *)(a1 + 16 * r), s1[r]);
        }
    }
}

/* The same against one token tile (the other holds no token), 16 rows at a time: as many sums in registers. */
static inline void step_one_tile(const uint8_t *panel, int cols, const int8_t *b0, int first, int32_t (*acc)[2][256]) {
    for (int h = 0; h < 2; h++) {
        __m512i s[16];
        int32_t *a = acc[0][h];
        for (int r = 0; r < 16; r++)
            s[r] = first ? _mm512_setzero_si512() : _mm512_load_si512((const void *)(a + 16 * r));
        const uint8_t *w = panel + (size_t)16 * h * cols;
        for (int k = 0; k < cols; k += 4) {
            const __m512i q0 = _mm512_loadu_si512((const void *)(b0 + 16 * k));
            for (int r = 0; r < 16; r++)
                s[r] = _mm512_dpbusd_epi32(s[r], broadcast_codes(w + (size_t)r * cols + k), q0);
        }
        for (int r = 0; r < 16; r++) _mm512_store_si512((void *)(a + 16 * r), s[r]);
    }
}

/* x86_gemm.h's step. Kept out of line: inlined into x86_gemm.h's loops, GCC 12 copied every sum register around
 * each vpdpbusd (2B4T pp128 at avx512, 2 threads: 195-208 tok/s inlined, 218-242 not). */
__attribute__((noinline)) static void vnni_step(const uint8_t *panel, int cols, const int8_t *tiles, int chunks,
                                                int kc0, int T, int live, int first, int32_t (*acc)[2][256]) {
    const int8_t *b0 = tiles + ((size_t)T * chunks + kc0) * 1024, *b1 = b0 + (size_t)chunks * 1024;
    if (live == 2)
        step_two_tiles(panel, cols, b0, b1, first, acc);
    else
        step_one_tile(panel, cols, b0, first, acc);
}

void bg_i2s_gemm_avx512(const uint8_t *rows, size_t row_bytes, int n_rows, const int8_t *tiles, const bg_act *acts,
                        int n, float *out, size_t stride) {
    i2s_gemm(vnni_step, rows, row_bytes, n_rows, tiles, acts, n, out, stride);
}

void bg_tq2_gemm_avx512(const uint8_t *rows, size_t row_bytes, int n_rows, const int8_t *tiles, const bg_act *acts,
                        int n, float *out, size_t stride) {
    tq_gemm(0, vnni_step, rows, row_bytes, n_rows, tiles, acts, n, out, stride);
}

void bg_tq1_gemm_avx512(const uint8_t *rows, size_t row_bytes, int n_rows, const int8_t *tiles, const bg_act *acts,
                        int n, float *out, size_t stride) {
    tq_gemm(1, vnni_step, rows, row_bytes, n_rows, tiles, acts, n, out, stride);
}

void bg_tl2_gemm_avx512(const bg_tl2 *w, int mt, uint8_t *codes, const int8_t *tiles, const bg_act *acts, int n,
                        float *out, size_t stride) {
    tl2_gemm(vnni_step, w, mt, codes, tiles, acts, n, out, stride);
}

void bg_gemm_put_tile_avx512(const bg_act *acts, int n, int tile, int8_t *tiles) {
    const int cols = acts[0].n, chunks = cols / 64;
    int8_t *dst = tiles + (size_t)tile * chunks * 1024;
    for (int kc = 0; kc < chunks; kc++, dst += 1024) {
        __m512i r[16];  /* r[t]: token t's 16 groups of 4 values; row i of the chunk is group i of tokens 0..15 */
        for (int t = 0; t < 16; t++)
            r[t] = t < n ? _mm512_loadu_si512((const void *)(acts[t].q + 64 * kc)) : _mm512_setzero_si512();
        bg_transpose16_epi32(r, r);
        for (int i = 0; i < 16; i++) _mm512_storeu_si512((void *)(dst + 64 * i), r[i]);
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
