/* I2_S prompt path, AMX-INT8: rows against a batch of tokens as tile matrix products. TDPBUSD multiplies a 16 x 64
 * tile of unsigned bytes (16 weight rows' codes c = w + 1, 64 weights each) by a 64 x 16 tile of int8 activations
 * (16 tokens, bg_gemm_put_token's layout) into 16 x 16 int32 sums Σcq, exactly; Σ(c-1)q = Σcq - Σq as at every
 * other level. Each weight byte is unpacked once per batch and used for every token: one core does 1.4-1.7 T MAC/s
 * at the 2B4T shapes with 64 tokens from L2 (python -m bench.kernels), against 0.16-0.18 T for AVX-512 VNNI's
 * multi-token kernel.
 *
 * Blocking: 32 rows x 32 tokens per step, the four 16 x 16 sums held in tiles 0-3, rows in tiles 4-5, tokens in
 * 6-7. The 32 rows' codes are unpacked into a panel block of PANEL_COLS columns at a time (on the stack), the sums
 * kept in `acc` between blocks, and the next block's bytes are prefetched meanwhile. 2B4T pp128, 2 threads: 256
 * columns 447 tok/s, 512 434, 1024 418 (a block and one token pair's block stay in L1 while the pairs go by). */
#include "kernels.h"

#if BG_BUILD_AMX
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,amx-tile,amx-int8"))), \
                             apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,amx-tile,amx-int8")
#endif
#include "x86_amx.h"

#define PANEL_COLS 256  /* 8 KiB of codes */
#define GROUP_TOKENS (8 * BG_GEMM_TILE_TOKENS)  /* tokens whose sums `acc` holds (the engine's batch is <= 128) */

/* Codes of columns k0..k0+cols of n_rows rows into panel rows of `cols` bytes; rows n_rows..31 zero (they add 0). */
static void unpack_panel(const uint8_t *rows, size_t row_bytes, int n_rows, int k0, int cols, uint8_t *panel) {
    const __m512i mask = _mm512_set1_epi8(3);
    /* a block's 32 bytes in both halves, shifted by (6, 4) and (2, 0): weights 0-63 and 64-127 in order */
    const __m512i sh01 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(6)), _mm256_set1_epi16(4), 1);
    const __m512i sh23 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(2)), _mm256_set1_epi16(0), 1);
    for (int r = 0; r < n_rows; r++) {
        const uint8_t *src = rows + (size_t)r * row_bytes + k0 / 4;
        uint8_t *dst = panel + (size_t)r * cols;
        for (int b = 0; b < cols / BG_I2S_BLOCK; b++) {
            const __m512i p = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(src + 32 * b)));
            _mm512_storeu_si512((void *)(dst + 128 * b), _mm512_and_si512(_mm512_srlv_epi16(p, sh01), mask));
            _mm512_storeu_si512((void *)(dst + 128 * b + 64), _mm512_and_si512(_mm512_srlv_epi16(p, sh23), mask));
        }
    }
    memset(panel + (size_t)n_rows * cols, 0, (size_t)(PANEL_ROWS - n_rows) * cols);
}

void bg_i2s_gemm_amx(const uint8_t *rows, size_t row_bytes, int n_rows, const int8_t *tiles, const bg_act *acts,
                     int n, float *out, size_t stride) {
    const int K = acts[0].n, chunks = K / 64;
    uint8_t panel[PANEL_ROWS * PANEL_COLS] __attribute__((aligned(64)));
    int32_t acc[GROUP_TOKENS / BG_GEMM_TILE_TOKENS][2][256] __attribute__((aligned(64)));
    configure_tiles();
    for (int r0 = 0; r0 < n_rows; r0 += PANEL_ROWS) {
        const int nr = n_rows - r0 < PANEL_ROWS ? n_rows - r0 : PANEL_ROWS;
        for (int t0 = 0; t0 < n; t0 += GROUP_TOKENS) {
            const int nt = n - t0 < GROUP_TOKENS ? n - t0 : GROUP_TOKENS;
            const int T0 = t0 / BG_GEMM_TILE_TOKENS, n_tiles = (nt + 2 * BG_GEMM_TILE_TOKENS - 1) / 32 * 2;
            for (int k0 = 0; k0 < K; k0 += PANEL_COLS) {
                const int cols = K - k0 < PANEL_COLS ? K - k0 : PANEL_COLS;
                unpack_panel(rows + (size_t)r0 * row_bytes, row_bytes, nr, k0, cols, panel);
                const int next_k0 = k0 + PANEL_COLS < K ? k0 + PANEL_COLS : 0, next_r0 = next_k0 ? r0 : r0 + PANEL_ROWS;
                prefetch_panel(rows + (size_t)next_r0 * row_bytes, row_bytes, (size_t)next_k0 / 4,
                               (size_t)(K - next_k0 < PANEL_COLS ? K - next_k0 : PANEL_COLS) / 4);
                for (int T = 0; T < n_tiles; T += 2)
                    panel_times_tokens(panel, cols, tiles, chunks, k0 / 64, T0 + T, k0 == 0, acc + T);
            }
            for (int t = 0; t < nt; t++) {
                const int32_t *sums = acc[t / BG_GEMM_TILE_TOKENS][0] + t % BG_GEMM_TILE_TOKENS;
                const int32_t sum_q = acts[t0 + t].sum;
                float *o = out + (size_t)(t0 + t) * stride + r0;
                for (int r = 0; r < nr; r++) o[r] = (float)(sums[(r / 16) * 256 + (r % 16) * 16] - sum_q);
            }
        }
    }
    _tile_release();
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
