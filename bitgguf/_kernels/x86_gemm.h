/* Shared pieces of the x86 prompt GEMMs (gemm_amx.c, gemm_avx512.c); include after the file selects its target.
 *
 * Both levels run the same loops: 32 weight rows' codes c = w + 1 are unpacked into a panel (row r's codes at
 * panel + r * cols), and a step multiplies the panel by a pair of token tiles (bg_gemm_put_token's layout) into
 * 32 x 32 exact int32 sums Σcq, kept as acc[token tile][row half][16 x 16] (row-major: 16 tokens per row). The
 * steps differ only in the instructions: AMX's TDPBUSD (gemm_amx.c) or AVX-512 VNNI's vpdpbusd (gemm_avx512.c). */
#ifndef BITGGUF_X86_GEMM_H
#define BITGGUF_X86_GEMM_H
#include <immintrin.h>
#include <string.h>

#include "kernels.h"
#include "tl2.h"
#include "x86_avx512.h"

#define PANEL_ROWS 32     /* weight rows per panel: two 16-row tiles */
#define PANEL_COLS 256    /* I2_S: columns per panel block, 8 KiB of codes */
/* I2_S: panel blocks between a block's prefetch and its unpack. With the next block only, the unpack's first loads
 * still waited: one core, 6912 x 2560 from DRAM, 128 tokens, two ahead against one: AVX-512 306-311 against 281-290
 * G MAC/s, AMX 1095-1171 against 983-1037 (four or six ahead: no better) */
#define PREFETCH_BLOCKS 2
#define I2S_GROUP_TOKENS (8 * BG_GEMM_TILE_TOKENS)  /* tokens whose sums acc holds (the engine's batch is <= 128) */
/* TQ types: 64 tokens (a 128-token batch goes through in two groups; the double sums are 16 KiB of stack, and 128
 * measured no faster) */
#define TQ_GROUP_TOKENS (4 * BG_GEMM_TILE_TOKENS)

/* The 32 x 32 sums of a panel's rows and token tiles T, T+1 over `cols` columns (chunks kc0.. of the tiles), added
 * to acc[0..1] (first: from zero). live: 2, or 1 when tile T+1 holds no token (its sums may then be left as they
 * are: a prompt of 8 tokens need not cost what 32 do). */
typedef void (*bg_panel_step_fn)(const uint8_t *panel, int cols, const int8_t *tiles, int chunks, int kc0, int T,
                                 int live, int first, int32_t (*acc)[2][256]);

/* Token tiles that hold tokens: the last pair may have one. */
static inline int live_tiles(int nt, int T) {
    const int n = (nt + BG_GEMM_TILE_TOKENS - 1) / BG_GEMM_TILE_TOKENS - T;
    return n < 2 ? n : 2;
}

/* Into L2: `bytes` bytes at `offset` in each of 32 rows, a later panel block, read while this one's products run
 * (without it the unpack waited on memory for a third of the AMX GEMM's time in a prompt). Rows past the call's
 * are the next call's, and prefetches do not fault. */
static inline void prefetch_panel(const uint8_t *rows, size_t row_bytes, size_t offset, size_t bytes) {
    for (int r = 0; r < PANEL_ROWS; r++)
        for (size_t b = 0; b < bytes; b += 64)
            _mm_prefetch((const char *)(rows + r * row_bytes + offset + b), _MM_HINT_T1);
}

/* ---- I2_S (and I2_ROWS of whole blocks): one f32 scale per tensor, applied by the caller ---- */

/* Codes of columns k0..k0+cols of n_rows rows into panel rows of `cols` bytes; rows n_rows..31 zero (they add 0). */
static inline void i2s_unpack_panel(const uint8_t *rows, size_t row_bytes, int n_rows, int k0, int cols,
                                    uint8_t *panel) {
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

/* Where a GEMM's panels come from: I2_S rows (unpacked block by block, a later block prefetched), or rows of codes
 * already decoded (TL2: row r's codes at codes + r * ld). */
typedef struct {
    const uint8_t *rows;
    size_t row_bytes;
    const uint8_t *codes;
    size_t ld;
} panel_source;

/* Panel of rows r0..r0+nr-1 (rows nr..31 zero), columns k0..k0+cols of K. Decoded codes are copied too: the steps
 * reading them in place, ld apart, measured slower (2B4T TL2 pp128 at amx, 2 threads: 379 against 450 tok/s). */
static inline void fill_panel(const panel_source *src, int K, int r0, int nr, int k0, int cols, uint8_t *panel) {
    if (src->codes) {
        for (int r = 0; r < nr; r++)
            memcpy(panel + (size_t)r * cols, src->codes + (size_t)(r0 + r) * src->ld + k0, (size_t)cols);
        memset(panel + (size_t)nr * cols, 0, (size_t)(PANEL_ROWS - nr) * cols);
        return;
    }
    i2s_unpack_panel(src->rows + (size_t)r0 * src->row_bytes, src->row_bytes, nr, k0, cols, panel);
    int ahead_k0 = k0 + PREFETCH_BLOCKS * PANEL_COLS, ahead_r0 = r0;
    for (; ahead_k0 >= K; ahead_k0 -= K) ahead_r0 += PANEL_ROWS;
    prefetch_panel(src->rows + (size_t)ahead_r0 * src->row_bytes, src->row_bytes, (size_t)ahead_k0 / 4,
                   (size_t)(K - ahead_k0 < PANEL_COLS ? K - ahead_k0 : PANEL_COLS) / 4);
}

/* Step `step` of `steps` over a panel's nt tokens: its share of the tokens' output lines (32 rows of f32 from
 * out + t * stride: two lines) fetched for writing, so that the stores at the end hit the cache. They are a line or
 * two per token, a page apart, which missed all the way to memory: one core, 2560 x 2560 rows from DRAM, 128
 * tokens, the outputs at the engine's stride ran the AMX GEMM 1.3-1.7x slower than into a small hot buffer. */
static inline void prefetch_out(float *out, size_t stride, int nt, int step, int steps) {
    for (int t = nt * step / steps; t < nt * (step + 1) / steps; t++) {
        _mm_prefetch((const char *)(out + (size_t)t * stride), _MM_HINT_ET0);
        _mm_prefetch((const char *)(out + (size_t)t * stride + 16), _MM_HINT_ET0);
    }
}

/* out[t * stride + r] = Σcq - Σq for n_rows rows and n tokens, panel block by panel block through `step`. */
static inline void codes_gemm(bg_panel_step_fn step, const panel_source *src, int n_rows, const int8_t *tiles,
                              const bg_act *acts, int n, float *out, size_t stride) {
    const int K = acts[0].n, chunks = K / 64;
    uint8_t panel[PANEL_ROWS * PANEL_COLS] __attribute__((aligned(64)));
    int32_t acc[I2S_GROUP_TOKENS / BG_GEMM_TILE_TOKENS][2][256] __attribute__((aligned(64)));
    for (int r0 = 0; r0 < n_rows; r0 += PANEL_ROWS) {
        const int nr = n_rows - r0 < PANEL_ROWS ? n_rows - r0 : PANEL_ROWS;
        for (int t0 = 0; t0 < n; t0 += I2S_GROUP_TOKENS) {
            const int nt = n - t0 < I2S_GROUP_TOKENS ? n - t0 : I2S_GROUP_TOKENS;
            const int T0 = t0 / BG_GEMM_TILE_TOKENS, n_tiles = (nt + 2 * BG_GEMM_TILE_TOKENS - 1) / 32 * 2;
            const int steps = (K + PANEL_COLS - 1) / PANEL_COLS * (n_tiles / 2);
            for (int k0 = 0, s = 0; k0 < K; k0 += PANEL_COLS) {
                const int cols = K - k0 < PANEL_COLS ? K - k0 : PANEL_COLS;
                fill_panel(src, K, r0, nr, k0, cols, panel);
                for (int T = 0; T < n_tiles; T += 2, s++) {
                    prefetch_out(out + (size_t)t0 * stride + r0, stride, nt, s, steps);
                    step(panel, cols, tiles, chunks, k0 / 64, T0 + T, live_tiles(nt, T), k0 == 0, acc + T);
                }
            }
            /* token t's column of sums: per tile of 16 tokens and half of 16 rows, a 16 x 16 transpose (16
             * gathers of 16 rows 16 ints apart had been 4% of a prompt) */
            const __mmask16 lo = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
            const __mmask16 hi = nr <= 16 ? 0 : nr >= 32 ? 0xffff : (__mmask16)((1u << (nr - 16)) - 1);
            for (int T = 0; T * BG_GEMM_TILE_TOKENS < nt; T++) {
                const int left = nt - T * BG_GEMM_TILE_TOKENS, t_end = left < BG_GEMM_TILE_TOKENS ? left : BG_GEMM_TILE_TOKENS;
                for (int h = 0; h < 2; h++) {
                    const __mmask16 rows_mask = h ? hi : lo;
                    if (!rows_mask) continue;
                    __m512i col[16];
                    for (int i = 0; i < 16; i++) col[i] = _mm512_load_si512((const void *)(acc[T][h] + 16 * i));
                    bg_transpose16_epi32(col, col);
                    for (int i = 0; i < t_end; i++) {
                        const int t = T * BG_GEMM_TILE_TOKENS + i;
                        _mm512_mask_storeu_ps(out + (size_t)(t0 + t) * stride + r0 + 16 * h, rows_mask,
                                              _mm512_cvtepi32_ps(_mm512_sub_epi32(
                                                  col[i], _mm512_set1_epi32(acts[t0 + t].sum))));
                    }
                }
            }
        }
    }
}

static inline void i2s_gemm(bg_panel_step_fn step, const uint8_t *rows, size_t row_bytes, int n_rows,
                            const int8_t *tiles, const bg_act *acts, int n, float *out, size_t stride) {
    const panel_source src = {rows, row_bytes, NULL, 0};
    codes_gemm(step, &src, n_rows, tiles, acts, n, out, stride);
}

/* TL2 read in place, M-tile mt: each 32-row sub-tile decoded into codes (bg_tl2_sub_tile_codes_avx512) once for the
 * whole batch, then multiplied as I2_S's rows are. out[t * stride + r] = Σ w q for the tile's BM rows. */
static inline void tl2_gemm(bg_panel_step_fn step, const bg_tl2 *w, int mt, uint8_t *codes, const int8_t *tiles,
                            const bg_act *acts, int n, float *out, size_t stride) {
    const panel_source src = {NULL, 0, codes, bg_tl2_codes_ld(w->cols)};
    for (int sub = 0; sub < w->BM / PANEL_ROWS; sub++) {
        bg_tl2_sub_tile_codes_avx512(w, mt, sub, codes, src.ld);
        codes_gemm(step, &src, PANEL_ROWS, tiles, acts, n, out + sub * PANEL_ROWS, stride);
    }
}

/* ---- TQ2_0 and TQ1_0: one 256-weight block at a time, each with its f16 scale ---- */

/* One row's TQ2_0 block (qs[64], f16 d) -> 256 codes in order. In half h byte m holds weights 128h + 32l + m at
 * bits 2l (LSB first): shifts (0, 2) and (4, 6) give weights in order. */
static inline void unpack_tq2(const uint8_t *blk, uint8_t *codes) {
    const __m512i mask = _mm512_set1_epi8(3);
    const __m512i sh01 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(0)), _mm256_set1_epi16(2), 1);
    const __m512i sh23 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(4)), _mm256_set1_epi16(6), 1);
    for (int h = 0; h < 2; h++) {
        const __m512i p = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(blk + 32 * h)));
        _mm512_storeu_si512((void *)(codes + 128 * h), _mm512_and_si512(_mm512_srlv_epi16(p, sh01), mask));
        _mm512_storeu_si512((void *)(codes + 128 * h + 64), _mm512_and_si512(_mm512_srlv_epi16(p, sh23), mask));
    }
}

/* One row's TQ1_0 block (qs[48], qh[4], f16 d) -> 256 codes in order (the layout in tq1_scalar.c). Its 52 digit
 * bytes in one register (a masked load: the block may end the tensor), all of them a digit at a time: with
 * q = (uint8)(b * 3^n), tq1_scalar.c's digit (q * 3) >> 8 is 1 from q = 86 and 2 from q = 171, two compares; the next
 * q is 3q by two byte adds. Digit row n then goes to its three places (qh has four digits). Before, each digit row
 * went through 16-bit lanes (widen, 3q, shift, narrow) in two pieces, and the 16 qh digits one by one: 2B4T TQ1_0
 * pp128 at 2 threads, amx 337-344 -> 485-493 tok/s, avx512 203-223 -> 236-249. */
static inline void unpack_tq1(const uint8_t *blk, uint8_t *codes) {
    const __m512i one = _mm512_set1_epi8(1), from1 = _mm512_set1_epi8((char)86), from2 = _mm512_set1_epi8((char)171);
    __m512i q = _mm512_maskz_loadu_epi8(((__mmask64)1 << 52) - 1, blk);
    for (int n = 0; n < 5; n++) {
        const __m512i d1 = _mm512_maskz_mov_epi8(_mm512_cmpge_epu8_mask(q, from1), one);
        const __m512i d = _mm512_mask_add_epi8(d1, _mm512_cmpge_epu8_mask(q, from2), d1, one);
        _mm256_storeu_si256((__m256i *)(codes + 32 * n), _mm512_castsi512_si256(d));               /* qs[0..31] */
        _mm_storeu_si128((__m128i *)(codes + 160 + 16 * n), _mm512_extracti32x4_epi32(d, 2));    /* qs[32..47] */
        if (n < 4) {                                                                             /* qh[0..3] */
            const int32_t h = _mm_cvtsi128_si32(_mm512_extracti32x4_epi32(d, 3));
            memcpy(codes + 240 + 4 * n, &h, 4);
        }
        q = _mm512_add_epi8(q, _mm512_add_epi8(q, q));
    }
}

/* Codes of block b of n_rows rows into a 32 x 256 panel (rows past n_rows zero) and their scales into d. */
static inline void tq_unpack_block(int tq1, const uint8_t *rows, size_t row_bytes, int n_rows, int b, uint8_t *panel,
                                   float *d) {
    const int block_bytes = tq1 ? BG_TQ1_BYTES : 66, d_at = block_bytes - 2;
    for (int r = 0; r < n_rows; r++) {
        const uint8_t *blk = rows + (size_t)r * row_bytes + (size_t)block_bytes * b;
        if (tq1)
            unpack_tq1(blk, panel + (size_t)r * 256);
        else
            unpack_tq2(blk, panel + (size_t)r * 256);
        d[r] = bg_f16_at(blk + d_at);
    }
    memset(panel + (size_t)n_rows * 256, 0, (size_t)(PANEL_ROWS - n_rows) * 256);
    for (int r = n_rows; r < PANEL_ROWS; r++) d[r] = 0.0f;
}

/* One panel of nr rows (panel_rows) against n tokens, block by block: a block's panel times each token pair gives
 * the exact block sums Σcq; each row's sum then gets its block's scale in double, d * (Σcq - Σq), added block by
 * block in order: the bits of the scalar kernels. The per-block scaling is vectorized over 16 tokens. */
static inline void tq_panel_by_blocks(int tq1, bg_panel_step_fn step, const uint8_t *panel_rows, size_t row_bytes,
                                      int nr, const int8_t *tiles, const bg_act *acts, int n, float *out,
                                      size_t stride) {
    const int block_bytes = tq1 ? BG_TQ1_BYTES : 66;
    const int K = acts[0].n, chunks = K / 64, n_blocks = K / 256;
    uint8_t panel[PANEL_ROWS * 256] __attribute__((aligned(64)));
    int32_t acc[TQ_GROUP_TOKENS / BG_GEMM_TILE_TOKENS][2][256] __attribute__((aligned(64)));
    double sum[PANEL_ROWS][TQ_GROUP_TOKENS];
    int32_t qsum[TQ_GROUP_TOKENS];
    float d[PANEL_ROWS];
    for (int t0 = 0; t0 < n; t0 += TQ_GROUP_TOKENS) {
        const int nt = n - t0 < TQ_GROUP_TOKENS ? n - t0 : TQ_GROUP_TOKENS;
        const int T0 = t0 / BG_GEMM_TILE_TOKENS, n_tiles = (nt + 2 * BG_GEMM_TILE_TOKENS - 1) / 32 * 2;
        const int n_live = (nt + BG_GEMM_TILE_TOKENS - 1) / BG_GEMM_TILE_TOKENS;
        memset(sum, 0, sizeof sum);
        const int steps = n_blocks * (n_tiles / 2);
        for (int b = 0, s = 0; b < n_blocks; b++) {
            tq_unpack_block(tq1, panel_rows, row_bytes, nr, b, panel, d);
            prefetch_panel(panel_rows, row_bytes, (size_t)block_bytes * (b + 1), 128);  /* the next block */
            for (int T = 0; T < n_tiles; T += 2, s++) {
                prefetch_out(out + (size_t)t0 * stride, stride, nt, s, steps);
                step(panel, 256, tiles, chunks, b * 4, T0 + T, live_tiles(nt, T), 1, acc + T);
            }
            for (int t = 0; t < n_live * BG_GEMM_TILE_TOKENS; t++) {  /* padding tokens: any value */
                const int32_t *gs = acts[t0 + (t < nt ? t : 0)].gsum + b * (256 / BG_ACT_GROUP);
                qsum[t] = gs[0] + gs[1] + gs[2] + gs[3] + gs[4] + gs[5] + gs[6] + gs[7];
            }
            /* sum += d * (Σcq - Σq) for 16 tokens at a time: the scalar kernel's double ops, lane by lane */
            for (int r = 0; r < nr; r++) {
                const __m512d dr = _mm512_set1_pd((double)d[r]);
                for (int T = 0; T < n_live; T++) {
                    const __m512i c = _mm512_sub_epi32(_mm512_load_si512((const void *)&acc[T][r / 16][(r % 16) * 16]),
                                                       _mm512_loadu_si512((const void *)&qsum[16 * T]));
                    const __m512d lo = _mm512_cvtepi32_pd(_mm512_castsi512_si256(c));
                    const __m512d hi = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(c, 1));
                    double *s = &sum[r][16 * T];
                    _mm512_storeu_pd(s, _mm512_add_pd(_mm512_loadu_pd(s), _mm512_mul_pd(dr, lo)));
                    _mm512_storeu_pd(s + 8, _mm512_add_pd(_mm512_loadu_pd(s + 8), _mm512_mul_pd(dr, hi)));
                }
            }
        }
        for (int t = 0; t < nt; t++)
            for (int r = 0; r < nr; r++) out[(size_t)(t0 + t) * stride + r] = (float)sum[r][t];
    }
}

/* The same panel when each of its rows has one scale d_r in every block (every TQ file seen so far: llama.cpp and
 * the converter give a ternary weight's blocks its one scale). Then Σ_b d_r (Σcq - Σq)_b, which the per-block path
 * adds in double exactly (every term and partial sum is d_r times an integer below 2^31: within 53 bits), equals
 * d_r (Σcq - Σq) over the whole row, so the integer sums run over all blocks, as I2_S's do, and are scaled once:
 * the same bits. 0.0 + d_r * ... keeps the per-block path's +0 for a zero sum. Returns 0, having written nothing,
 * at the first block whose scales differ from block 0's; the caller then goes block by block. */
static inline int tq_panel_uniform(int tq1, bg_panel_step_fn step, const uint8_t *panel_rows, size_t row_bytes,
                                   int nr, const int8_t *tiles, const bg_act *acts, int n, float *out, size_t stride) {
    const int block_bytes = tq1 ? BG_TQ1_BYTES : 66;
    const int K = acts[0].n, chunks = K / 64, n_blocks = K / 256;
    uint8_t panel[PANEL_ROWS * 256] __attribute__((aligned(64)));
    int32_t acc[I2S_GROUP_TOKENS / BG_GEMM_TILE_TOKENS][2][256] __attribute__((aligned(64)));
    float d0[PANEL_ROWS], d[PANEL_ROWS];
    for (int t0 = 0; t0 < n; t0 += I2S_GROUP_TOKENS) {
        const int nt = n - t0 < I2S_GROUP_TOKENS ? n - t0 : I2S_GROUP_TOKENS;
        const int T0 = t0 / BG_GEMM_TILE_TOKENS, n_tiles = (nt + 2 * BG_GEMM_TILE_TOKENS - 1) / 32 * 2;
        const int steps = n_blocks * (n_tiles / 2);
        for (int b = 0, s = 0; b < n_blocks; b++) {
            tq_unpack_block(tq1, panel_rows, row_bytes, nr, b, panel, b ? d : d0);
            if (b && memcmp(d, d0, sizeof d)) return 0;  /* (in the first token group: the scales stay) */
            prefetch_panel(panel_rows, row_bytes, (size_t)block_bytes * (b + 1), 128);  /* the next block */
            for (int T = 0; T < n_tiles; T += 2, s++) {
                prefetch_out(out + (size_t)t0 * stride, stride, nt, s, steps);
                step(panel, 256, tiles, chunks, b * 4, T0 + T, live_tiles(nt, T), b == 0, acc + T);
            }
        }
        for (int t = 0; t < nt; t++) {
            const int32_t *sums = acc[t / BG_GEMM_TILE_TOKENS][0] + t % BG_GEMM_TILE_TOKENS;
            const int32_t sum_q = acts[t0 + t].sum;
            for (int r = 0; r < nr; r++)
                out[(size_t)(t0 + t) * stride + r] =
                    (float)(0.0 + (double)d0[r] * (double)(sums[(r / 16) * 256 + (r % 16) * 16] - sum_q));
        }
    }
    return 1;
}

/* The GEMM of either type (tq1: TQ1_0, else TQ2_0); inlined into each with the type a constant. */
static inline void tq_gemm(int tq1, bg_panel_step_fn step, const uint8_t *rows, size_t row_bytes, int n_rows,
                           const int8_t *tiles, const bg_act *acts, int n, float *out, size_t stride) {
    for (int r0 = 0; r0 < n_rows; r0 += PANEL_ROWS) {
        const int nr = n_rows - r0 < PANEL_ROWS ? n_rows - r0 : PANEL_ROWS;
        const uint8_t *panel_rows = rows + (size_t)r0 * row_bytes;
        if (!tq_panel_uniform(tq1, step, panel_rows, row_bytes, nr, tiles, acts, n, out + r0, stride))
            tq_panel_by_blocks(tq1, step, panel_rows, row_bytes, nr, tiles, acts, n, out + r0, stride);
    }
}

#endif
