/* Shared pieces of the AMX-INT8 kernels (i2s_amx.c, tq_amx.c); include after the file selects its target. */
#ifndef BITGGUF_X86_AMX_H
#define BITGGUF_X86_AMX_H
#include <immintrin.h>
#include <string.h>

#define PANEL_ROWS 32  /* weight rows per panel: two 16-row tiles */

/* Into L2: `bytes` bytes at `offset` in each of 32 rows, the next panel block, read while this one's tile products
 * run (without it the unpack waited on memory for a third of the GEMM's time in a prompt). Rows past the call's are
 * the next call's, and prefetches do not fault. */
static inline void prefetch_panel(const uint8_t *rows, size_t row_bytes, size_t offset, size_t bytes) {
    for (int r = 0; r < PANEL_ROWS; r++)
        for (size_t b = 0; b < bytes; b += 64)
            _mm_prefetch((const char *)(rows + r * row_bytes + offset + b), _MM_HINT_T1);
}

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* Eight tiles of 16 rows x 64 bytes (the int32 sums are 16 x 16). A constant: the compiler does not see that
 * ldtilecfg reads the struct, and a struct filled on the stack just before could be optimized away. */
static const tile_config bg_amx_tiles = {.palette = 1,
                                         .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
                                         .rows = {16, 16, 16, 16, 16, 16, 16, 16}};

static inline void configure_tiles(void) { _tile_loadconfig(&bg_amx_tiles); }

/* The 32 x 32 sums of the panel's rows and token tiles T, T+1 over one block of columns (chunks kc0.. of the
 * tiles), added to acc[0..1] (first block: from zero). acc: [token tile][row half][16 x 16]. */
static inline void panel_times_tokens(const uint8_t *panel, int cols, const int8_t *tiles, int chunks, int kc0, int T,
                                      int first, int32_t (*acc)[2][256]) {
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

#endif
