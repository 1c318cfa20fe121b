/* TL2 read in place: bitnet.cpp's 1.67-bit tile layout (ternary_layouts.py's docstring, spec §3) used by a lookup-table
 * kernel instead of being repacked into 2-bit rows, so decode streams 5/24 byte per weight instead of 1/4.
 *
 * A tensor (M, K) tiled by (BM, BK) holds three streams, each ordered by M-tiles of BM rows:
 *   mag:  K3 = K - K % BK columns as triples (w0, w1, w2) -> |9 w0 + 3 w1 + w2| in 0..13, one nibble per triple;
 *         per (M-tile, K-tile, 32-row sub-tile) BK/6 runs of 32 bytes, run p holding triples 2p (high nibble) and
 *         2p + 1 (low nibble) of 32 rows in the byte order rows 0-7, 16-23, 8-15, 24-31;
 *   sign: per (M-tile, K-tile, sub-tile) BK/24 runs of 16 uint16: word r of run q has the sign of triple 8q + e of
 *         row r at bit 15 - 2e and of row 16 + r at bit 14 - 2e;
 *   tail: the last K2 = K % BK columns as TL1 pairs idx = 3 w0 + w1 + 4, per (M-tile, 32-column tile, sub-tile) 8 runs
 *         of 32 bytes laid out like mag (pairs 2p and 2p + 1 of run p).
 * The kernel looks each nibble up in a table built per token from the int8 activations: for triple j the 16 int16
 * values w . (q[3j], q[3j+1], q[3j+2]) by magnitude (14 used), for tail pair j the 9 values w . (q[2j], q[2j+1]),
 * stored as 16 low bytes then 16 high bytes (two byte shuffles make 32 rows' int16 entries). The sign is applied to
 * the looked-up entry. Every level returns the exact integer Σ w q per row. */
#ifndef BITGGUF_TL2_H
#define BITGGUF_TL2_H

#include <stddef.h>
#include <stdint.h>

#include "cpu.h"
#include "kernels.h"

typedef struct {
    const uint8_t *mag, *sign, *tail;
    int rows, cols, BM, BK, K3, K2;
} bg_tl2;

#define BG_TL2_TABLE 32    /* bytes per triple or pair table: 16 low bytes, 16 high bytes of int16 entries */
#define BG_TL2_TABLE_AVX512 64  /* at the AVX-512 levels: 32 int16 words, the entries and their negations */
#define BG_TL2_MAX_BM 512  /* the engine's bound on BM (bitnet.cpp's presets go up to 320) */
/* tokens per tile-kernel call in a batch: 8 tables of a K-tile (8 KiB, 16 KiB at AVX-512) and outputs fit L1 */
#define BG_TL2_TOKENS 8
/* The SIMD tile kernels' software prefetch distance in the magnitude stream (a quarter of it in the sign stream), as
 * the I2_S kernel does: the two streams are sequential, but the hardware prefetcher alone leaves decode below DRAM
 * bandwidth. */
#ifndef BG_TL2_PREFETCH
#define BG_TL2_PREFETCH 8192
#endif
#define BG_TYPE_TL2 39     /* ggml id of bitnet.cpp's TL2 (upstream ggml's MXFP4 reuses it: the reader tells them apart) */

/* The streams of a TL2 tensor's data (M, K) tiled (BM, BK). 0, or -1 when the layout cannot have these values. */
int bg_tl2_init(bg_tl2 *w, const uint8_t *data, int M, int K, int BM, int BK);

/* 1 when every magnitude is <= 13 and every tail pair index <= 8 (ternary data), else 0. */
int bg_tl2_valid(const bg_tl2 *w);

/* Bytes of one token's tables for a TL2 tensor of `cols` columns tiled with BK, in the format of isa's kernels. */
size_t bg_tl2_table_bytes(bg_isa isa, int cols, int BK);

/* One token's tables from its int8 activations q (cols values). */
void bg_tl2_tables(const int8_t *q, int cols, int BK, uint8_t *tables);
void bg_tl2_tables_avx2(const int8_t *q, int cols, int BK, uint8_t *tables);
void bg_tl2_tables_avx512(const int8_t *q, int cols, int BK, uint8_t *tables);

/* out[t * BM + r] = Σ_k w[mt * BM + r][k] q_t[k], exact, for the BM rows of M-tile mt and n tokens, token t's tables
 * at tables + t * table_stride. Each block of weights is read once for the n tokens. */
typedef void (*bg_tl2_tile_fn)(const bg_tl2 *w, int mt, const uint8_t *tables, size_t table_stride, int n,
                               int32_t *out);
void bg_tl2_tile_scalar(const bg_tl2 *w, int mt, const uint8_t *tables, size_t table_stride, int n, int32_t *out);
void bg_tl2_tile_avx2(const bg_tl2 *w, int mt, const uint8_t *tables, size_t table_stride, int n, int32_t *out);
void bg_tl2_tile_avx512(const bg_tl2 *w, int mt, const uint8_t *tables, size_t table_stride, int n, int32_t *out);

/* The tile kernel and the table builder for isa (a pair: the tables are in the kernel's format): the scalar ones
 * where the level has none (NEON). */
bg_tl2_tile_fn bg_tl2_tile_kernel(bg_isa isa);
typedef void (*bg_tl2_tables_fn)(const int8_t *q, int cols, int BK, uint8_t *tables);
bg_tl2_tables_fn bg_tl2_tables_kernel(bg_isa isa);
/* 1 when isa has a SIMD tile kernel. Loaders read TL2 in place there, and repack it into 2-bit rows elsewhere (where
 * only the scalar tile kernel would run it). */
int bg_tl2_in_place(bg_isa isa);

/* Byte b of a 32-byte run holds row bg_tl2_row_of_byte(b) of its 32-row sub-tile (8-byte groups stored 0, 2, 1, 3) */
static inline int bg_tl2_row_of_byte(int b) { return (b & 7) | (b & 8) << 1 | (b & 16) >> 1; }

/* ---- the prompt path (AMX, AVX-512 VNNI): TL2 tiles decoded into codes and multiplied as I2_S rows ---- */

/* Bytes from one row of decoded codes to the next (bg_tl2_sub_tile_codes writes 4 bytes at a time: past the end) */
static inline size_t bg_tl2_codes_ld(int cols) { return (size_t)cols + 16; }

/* Codes c = w + 1 (0..2) of all the columns of the 32 rows of sub-tile sub of M-tile mt: row r's at codes + r * ld
 * (ld >= bg_tl2_codes_ld(cols)). The data must be valid (bg_tl2_valid). */
void bg_tl2_sub_tile_codes(const bg_tl2 *w, int mt, int sub, uint8_t *codes, size_t ld);
/* The same bytes by AVX2 shuffles in AVX-512VL's 32 registers (tl2_codes_avx512.c; the x86 GEMMs' decoder) */
void bg_tl2_sub_tile_codes_avx512(const bg_tl2 *w, int mt, int sub, uint8_t *codes, size_t ld);

/* out[t * stride + r] = Σ_k w[mt * BM + r][k] q_t[k] (exact, as float) for the BM rows of M-tile mt and n tokens
 * laid out in `tiles` by bg_gemm_put_token (acts: their sums); codes: 32 * bg_tl2_codes_ld(cols) bytes of scratch. */
typedef void (*bg_tl2_gemm_fn)(const bg_tl2 *w, int mt, uint8_t *codes, const int8_t *tiles, const bg_act *acts,
                               int n, float *out, size_t stride);
void bg_tl2_gemm_avx512(const bg_tl2 *w, int mt, uint8_t *codes, const int8_t *tiles, const bg_act *acts, int n,
                        float *out, size_t stride);
void bg_tl2_gemm_amx(const bg_tl2 *w, int mt, uint8_t *codes, const int8_t *tiles, const bg_act *acts, int n,
                     float *out, size_t stride);
/* The GEMM for isa and a tensor of `cols` columns, or NULL (other levels; cols not a multiple of 64) */
bg_tl2_gemm_fn bg_tl2_gemm_kernel(bg_isa isa, int cols);

#endif
