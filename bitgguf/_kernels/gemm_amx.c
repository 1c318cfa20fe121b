/* The prompt path's GEMMs, AMX-INT8 (I2_S and I2_ROWS, TQ2_0, TQ1_0, TL2): rows against a batch of tokens as tile
 * matrix products. TDPBUSD multiplies a 16 x 64 tile of unsigned bytes (16 weight rows' codes c = w + 1, 64 weights
 * each) by a 64 x 16 tile of int8 activations (16 tokens, bg_gemm_put_token's layout) into 16 x 16 int32 sums Σcq,
 * exactly; Σ(c-1)q = Σcq - Σq as at every other level. Each weight byte is unpacked once per batch and used for
 * every token: one core does 1.4-1.7 T MAC/s at the 2B4T shapes with 64 tokens from L2 (python -m bench.kernels).
 *
 * Blocking (x86_gemm.h): 32 rows x 32 tokens per step, the four 16 x 16 sums held in tiles 0-3, rows in tiles
 * 4-5, tokens in 6-7. I2_S panels are 256 columns: 2B4T pp128, 2 threads: 256 columns 447 tok/s, 512 434, 1024 418
 * (a block and one token pair's block stay in L1 while the pairs go by). */
#include "kernels.h"

#if BG_BUILD_AMX
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,amx-tile,amx-int8,prfchw"))), \
                             apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,amx-tile,amx-int8,prfchw")
#endif
#include "x86_gemm.h"

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* Eight tiles of 16 rows x 64 bytes (the int32 sums are 16 x 16). A constant: the compiler does not see that
 * ldtilecfg reads the struct, and a struct filled on the stack just before could be optimized away. */
static const tile_config amx_tiles = {.palette = 1,
                                      .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
                                      .rows = {16, 16, 16, 16, 16, 16, 16, 16}};

/* x86_gemm.h's step in tiles: each sum tile is one 16 x 16 quarter of acc. Both token tiles always (a padding
 * tile's products cost little here). */
static void amx_step(const uint8_t *panel, int cols, const int8_t *tiles, int chunks, int kc0, int T, int live,
                     int first, int32_t (*acc)[2][256]) {
    (void)live;
    if (first) {
        _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    } else {
        _tile_loadd(0, acc[0][0], 64); _tile_loadd(1, acc[1][0], 64);
        _tile_loadd(2, acc[0][1], 64); _tile_loadd(3, acc[1][1], 64);
    }
    const int8_t *b0 = tiles + ((size_t)T * chunks + kc0) * 1024, *b1 = b0 + (size_t)chunks * 1024;
    for (int kc = 0; kc < cols / 64; kc++) {
        _tile_loadd(4, panel + 64 * kc, cols);
        _tile_loadd(5, panel + (size_t)16 * cols + 64 * kc, cols);
        _tile_loadd(6, b0 + (size_t)1024 * kc, 64);
        _tile_loadd(7, b1 + (size_t)1024 * kc, 64);
        _tile_dpbusd(0, 4, 6);
        _tile_dpbusd(1, 4, 7);
        _tile_dpbusd(2, 5, 6);
        _tile_dpbusd(3, 5, 7);
    }
    _tile_stored(0, acc[0][0], 64); _tile_stored(1, acc[1][0], 64);
    _tile_stored(2, acc[0][1], 64); _tile_stored(3, acc[1][1], 64);
}

void bg_i2s_gemm_amx(const uint8_t *rows, size_t row_bytes, int n_rows, const int8_t *tiles, const bg_act *acts,
                     int n, float *out, size_t stride) {
    _tile_loadconfig(&amx_tiles);
    i2s_gemm(amx_step, rows, row_bytes, n_rows, tiles, acts, n, out, stride);
    _tile_release();
}

void bg_tq2_gemm_amx(const uint8_t *rows, size_t row_bytes, int n_rows, const int8_t *tiles, const bg_act *acts,
                     int n, float *out, size_t stride) {
    _tile_loadconfig(&amx_tiles);
    tq_gemm(0, amx_step, rows, row_bytes, n_rows, tiles, acts, n, out, stride);
    _tile_release();
}

void bg_tq1_gemm_amx(const uint8_t *rows, size_t row_bytes, int n_rows, const int8_t *tiles, const bg_act *acts,
                     int n, float *out, size_t stride) {
    _tile_loadconfig(&amx_tiles);
    tq_gemm(1, amx_step, rows, row_bytes, n_rows, tiles, acts, n, out, stride);
    _tile_release();
}

void bg_tl2_gemm_amx(const bg_tl2 *w, int mt, uint8_t *codes, const int8_t *tiles, const bg_act *acts, int n,
                     float *out, size_t stride) {
    _tile_loadconfig(&amx_tiles);
    tl2_gemm(amx_step, w, mt, codes, tiles, acts, n, out, stride);
    _tile_release();
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
