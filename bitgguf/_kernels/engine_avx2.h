/* AVX2 versions of the engine's per-token helpers (engine_avx2.c) and its attention (attn_avx2.c); the engine uses
 * them at every x86 level with AVX2 (avx2, avx512, amx). Same results as the portable code: bitwise for the
 * quantization and RMSNorm; float order and the exponential's last bits for attention and SiLU. */
#ifndef BITGGUF_ENGINE_AVX2_H
#define BITGGUF_ENGINE_AVX2_H

#include "kernels.h"

/* Positions per tile of the K cache at the x86 levels (engine.c): one KV head's keys, BG_K_TILE x head_dim, as
 * head_dim rows of BG_K_TILE positions. A decode step reads a tile as one sequential stream, 16 keys per vector. */
#define BG_K_TILE 128

#if defined(__x86_64__)
/* bg_quantize_act, bit for bit (the same f32 products, round half to even, clamp, exact sums). */
void bg_quantize_act_avx2(const float *x, int n, bg_act *a);

/* bg_rmsnorm (kernels.c), bit for bit: the same sixteen double sums (one per lane of four vectors), the same float
 * scaling (o may be x). */
void bg_rmsnorm_avx2(float *o, const float *x, const float *w, int n, float eps);

/* g[i] = silu(g[i]) * u[i] = g[i] / (1 + e^-g[i]) * u[i] for i < n, with bg_exp_f32x8 (within 2 ulp of expf). */
void bg_silu_mul_avx2(float *g, const float *u, int n);

/* y[i] = y[i] / div * mul for i < n: the ternary matmuls' raw dots to outputs, the same two roundings as in C. */
void bg_scale_dots_avx2(float *y, int n, float div, float mul);

/* The AVX-512 levels' versions of the helpers above (engine_avx512.c): bitwise the same results. */
void bg_quantize_act_avx512(const float *x, int n, bg_act *a);
void bg_rmsnorm_avx512(float *o, const float *x, const float *w, int n, float eps);
void bg_silu_mul_avx512(float *g, const float *u, int n);
void bg_scale_dots_avx512(float *y, int n, float div, float mul);

/* h[i] = x[i] as f16 (round to nearest even), bg_f32_to_f16's value for every number (NaN payloads may differ). */
void bg_f32_to_f16_avx2(const float *x, uint16_t *h, int n);

/* V positions per pass of bg_attention_block_avx2 (a chunk of 128-value F16 rows is 16 KiB: it stays in L1) */
#define BG_ATT_CHUNK 64

/* Causal attention of a block of tokens for query heads of one KV head. Row r of the block is token r / group,
 * query head r % group; token i sees the keys 0..first_keys + i - 1. */
typedef struct {
    const uint8_t *k;          /* this layer's K at this KV head, positions 0..BG_K_TILE-1: [hd][BG_K_TILE] */
    const uint8_t *v;          /* this layer's V at this KV head, position 0; v_stride bytes per position */
    size_t v_stride;
    size_t k_tile_stride;      /* bytes from the K of BG_K_TILE positions to the next BG_K_TILE's */
    size_t v_tile_stride;      /* the same for V */
    int kv_f16;                /* cache elements: 1 for F16, 0 for F32 */
    int hd, group;             /* head size (a multiple of 16), query heads per token in the block */
    int n_tokens, first_keys;
    const float *q;            /* token i's head j: q + i * q_stride + j * hd */
    size_t q_stride;
    float *out;                /* the same layout: out + i * out_stride + j * hd */
    size_t out_stride;
    float div;                 /* scores are q·k / div */
    float *scores;             /* scratch: n_tokens * group rows, scores_stride floats apart (>= keys rounded up to
                                * 16) */
    size_t scores_stride;
    int avx512;                /* 1: the row kernel in 512-bit registers (attn_avx512.c; bitwise the same results) */
} bg_attn_block;

/* The kernel of the blocks: c[r][16v..16v+16) = (accumulate ? the same : 0) + Σ_k a[r][k] * B_kv for r < R and
 * column vectors v < nv, B_kv being 16 cache elements (F16 if f16, else F32) at b + v * vstride bytes + k * ldb
 * elements; per lane one fused multiply-add per k, in order. The AVX-512 one takes up to BG_ATT_ROWS_AVX512 rows
 * (attn_avx2.c's: 6) and does as many of the nv vectors as its registers hold at once (a power of two, up to 8 for
 * 1-2 rows): it returns how many. */
#define BG_ATT_ROWS_AVX512 8
/* Rows of the F16 cache ahead that AVX-512's row kernel prefetches in a decode step (8 KiB of 256-byte rows): the K
 * tiles and V chunks are 32 KiB streams far apart, which the hardware prefetchers pick up late. 2B4T at 2048
 * positions, Zen 5: 38.0 -> 40.1 tok/s at 1 thread, 63.9 -> 66.8 at 2 (16 rows ahead: 39.9, 64: 40.0). AVX2's
 * kernel, which reads a row's 64-byte slices in four passes, measured no faster with it (20.9 -> 21.2). */
#define BG_ATT_PREFETCH_ROWS 32
int bg_attn_cols_avx512(int R, int nv, int f16, const float *const *a, int K, const uint8_t *b, size_t ldb,
                        size_t vstride, float *const *c, int accumulate);

/* attn_avx2.c's softmax of one row of scores in 16 lanes, bitwise its values (attn_avx512.c) */
void bg_attn_softmax_row_avx512(float *x, int n, int n_zero, float div);

/* out = softmax(Q Kᵀ / div) V for the block (attn_avx2.c). Each output is the same operations for any block size,
 * so a prompt gives bitwise the results of its tokens fed one by one. */
void bg_attention_block_avx2(const bg_attn_block *b);

/* The same in three parts, which threads can share: the scores against the keys of K tiles tile0..tile_end-1;
 * softmax of rows row0..row_end-1 (once all their scores are in); the outputs' values d0..d_end-1 (multiples of
 * 16). Each value is the same operations as in bg_attention_block_avx2. */
void bg_attention_scores_avx2(const bg_attn_block *b, int tile0, int tile_end);
void bg_attention_softmax_avx2(const bg_attn_block *b, int row0, int row_end);
void bg_attention_values_avx2(const bg_attn_block *b, int d0, int d_end);
#endif

#endif
