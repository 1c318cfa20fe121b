/* The BitNet forward pass over plain C structs (no Python objects): weights used in place from the memory map,
 * a KV cache, and scratch buffers for a batch of tokens. The math is spec §7.1; see engine.c. */
#ifndef BITGGUF_ENGINE_H
#define BITGGUF_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "cpu.h"
#include "kernels.h"
#include "tl2.h"

#define BG_MAX_BATCH 128  /* tokens per forward pass: each weight row is read once for the whole batch (~14 MB of
                           * scratch at the 2B4T shape; 16 left prefill streaming the weights 8x for a 128-token
                           * prompt; 128 against 64: AMX prompts 8% faster, the GEMM unpacking each row once per 128
                           * tokens) */

typedef enum { BG_FFN_SILU = 0, BG_FFN_RELU2 = 1 } bg_ffn_act;

typedef struct {
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
    float rope_theta;  /* NEOX RoPE base */
    float rms_eps;
    int ffn_act;       /* bg_ffn_act: act(gate) * up */
} bg_config;

/* A 2-D weight (rows, cols) = (out_features, in_features), row-major, in place in the memory map (TL2: bitnet.cpp's
 * tiles, in place too). */
typedef struct {
    const uint8_t *data;
    int type;                        /* ggml type id */
    int rows, cols;
    int tl_bm, tl_bk;                /* TL2 only: its tiling (ternary_layouts.tl_params), set by the caller */
    /* filled by bg_model_init */
    float scale;                     /* per-tensor scale (I2_S: the f32 after the packed data), else 1 */
    const bg_type_traits *traits;
    size_t row_bytes;
    bg_dot_i8_fn dot_i8;             /* ternary types */
    bg_dot_i8_multi_fn dot_i8_multi; /* ternary types, several tokens at once (NULL: dot_i8 per token) */
    bg_dot_i8_x4_fn dot_i8_x4;       /* ternary types, four rows at once (NULL: dot_i8 per row) */
    bg_dot_f32_fn dot_f32;           /* float types */
    bg_dot_f32_x4_fn dot_f32_x4;     /* float types, four rows at once (NULL: dot_f32 per row) */
    bg_dot_q8k_fn dot_q8k;           /* K-quant heads (Q6_K, Q5_K, Q4_K): Q8_K activations instead of f32 */
    bg_dot_q8k_x4_fn dot_q8k_x4;     /* K-quant heads, four rows at once (NULL: dot_q8k per row) */
    bg_tl2 tl2;                      /* TL2: its three streams */
    bg_tl2_tile_fn tl2_tile;         /* TL2: BM rows at a time from per-token tables (NULL for other types) */
    bg_tl2_gemm_fn tl2_gemm;         /* TL2, batches of >= BG_GEMM_MIN tokens: decoded codes x the batch (AMX,
                                      * AVX-512; NULL: tl2_tile) */
    bg_gemm_i8_fn gemm_i8;           /* ternary, batches of >= BG_GEMM_MIN tokens (AMX, AVX-512; NULL: multi) */
} bg_tensor;

typedef struct {
    const float *attn_norm, *attn_sub_norm, *ffn_norm, *ffn_sub_norm;  /* f32; the sub-norms may be NULL */
    bg_tensor wq, wk, wv, wo, ffn_gate, ffn_up, ffn_down;
} bg_layer;

typedef struct {
    bg_config c;
    bg_tensor tok_embd;     /* (n_vocab, n_embd), a float type: rows are dequantized to look tokens up */
    bg_tensor output;       /* the head (n_vocab, n_embd); token_embd for the tied BitNet graphs */
    const float *output_norm;
    bg_layer *layers;       /* n_layer entries, owned by the caller */
} bg_weights;

/* Run-time state: scratch for up to BG_MAX_BATCH tokens (token t's vector at t * dim) and the KV cache. */
typedef struct {
    int n_ctx;
    int n_past;                  /* positions already in the KV cache */
    float *x, *xb, *xb2;         /* residual stream, normed input, attention output  [B][max(n_embd, q_dim)] */
    float *q, *k, *v;            /* [B][q_dim], [B][kv_dim], [B][kv_dim] */
    float *hb, *hb2;             /* FFN gate and up  [B][n_ff] */
    float *att;                  /* attention scratch, att_floats per thread */
    float *head_scores;          /* a decode step's scores of every query head, att_stride floats apart (k_tiles) */
    size_t att_floats, att_stride;  /* (engine.c's bg_model_init); score rows att_stride floats apart */
    int att_tokens;              /* tokens per attention block (x86 AVX2 levels) */
    bg_act act[BG_MAX_BATCH];    /* each token's int8 activations for the current ternary matmul */
    bg_q8k q8k[BG_MAX_BATCH];    /* each token's head input as Q8_K, for a K-quant head (else unallocated) */
    uint8_t *tl2_tables;         /* each token's TL2 lookup tables, tl2_stride bytes apart (models with TL2 only) */
    size_t tl2_stride;
    bg_tl2_tables_fn tl2_build;
    uint8_t *tl2_codes;          /* TL2 GEMM scratch, tl2_codes_bytes per thread: the decoded codes of 32 rows */
    size_t tl2_codes_bytes;
    int8_t *gemm_tiles;          /* the batch's activations in bg_gemm_put_token's layout (models with a GEMM only) */
    int batch_n;                 /* tokens in the batch being evaluated */
    const bg_type_traits *kv;    /* KV-cache element type: F16 or F32 */
    bg_dot_f32_fn kv_dot;
    bg_axpy_fn kv_axpy;
    uint8_t *k_cache, *v_cache;  /* [n_layer][n_ctx][kv_dim] elements of type kv, or if k_tiles blocks of */
    size_t k_mapped, v_mapped;   /* their mappings' bytes (engine.c's kv_alloc), 0 where calloc'd */
    int k_tiles, n_head_kv;      /* BG_K_TILE positions of every layer and KV head (engine.c's k_tiles_offset) */
    size_t kv_block_bytes;       /* bytes of such a block */
    size_t kv_pos_bytes;         /* bytes of one position of one layer */
    float *rope_cos, *rope_sin;  /* [n_ctx][head_dim/2] */
} bg_state;

typedef struct {
    bg_weights w;
    bg_state s;
    bg_isa isa;
    const struct bg_helpers *helpers;  /* isa's per-token helpers (engine.c's table) */
    int n_threads;               /* may change between evals: the pool follows */
    char error[256];
    struct bg_pool *pool;        /* threadpool.c; NULL until the first eval */
} bg_model;

/* Fill m->w first (the pointers stay owned by the caller), then call this: it checks the shapes and types, picks
 * the kernels for `isa`, and allocates the state. Returns 0, or -1 with the reason in m->error. */
int bg_model_init(bg_model *m, bg_isa isa, int n_ctx, int kv_type, int n_threads);

/* Free what bg_model_init allocated (safe to call twice, or after a failed init). */
void bg_model_free(bg_model *m);

/* Forget the context (n_past = 0). */
void bg_model_reset(bg_model *m);

/* Evaluate n tokens at positions n_past.. and append them to the KV cache. Writes n * n_vocab logits when all is
 * nonzero, else only the last token's n_vocab logits. Returns 0, or -1 with m->error (context full, bad token). */
int bg_model_eval(bg_model *m, const int32_t *tokens, int n, float *logits, int all);

#endif
