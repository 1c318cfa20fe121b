/* The BitNet forward pass, llama2.c style: read bg_forward_batch top to bottom.
 *
 * Per layer (spec §7.1), for each token:
 *   n = RMSNorm_attn(x);  q, k, v = Wq n, Wk n, Wv n;  RoPE(q, k);  append k, v to the cache
 *   x = x + Wo · RMSNorm_attn_sub(Attn(q, K, V))
 *   m = RMSNorm_ffn(x);   x = x + Wdown · RMSNorm_ffn_sub(act(Wgate m) * (Wup m))
 * logits = head · RMSNorm_out(x).
 * Ternary matmuls quantize each token's input to int8 once (bg_quantize_act), then y = dot / act_scale * w_scale.
 * A batch of tokens goes through each matmul together: every weight row is read once and applied to all of them.
 * Each output is computed by one call of one kernel on the same inputs, so the result does not depend on the batch
 * size or the thread count.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "engine_avx2.h"
#include "gguf_c.h"
#include "threadpool.h"

#if defined(__linux__)
#include <stdint.h>
#include <sys/mman.h>
#endif

#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
/* Below this much work (bytes of weights, or KV entries), one thread is faster than waking the others. */
#define BG_PARALLEL_MIN (1 << 16)
/* Tokens per multi-token kernel call in a batched matmul (their int8 activations, <= 4 x n_ff bytes, fit L1). */
#define BG_TOKEN_TILE 4

/* Query heads per attention work item (heads of one KV head, sharing its K rows) */
#define BG_ATT_HEADS 2
/* Fewest tokens for which a type's GEMM (in tiles of 16 tokens) runs instead of its multi-token kernel: 2B4T I2_S at
 * 2 threads, AMX: 4 tokens 55 tok/s against AVX-512's 67, 8 tokens 106 against 88, 16 tokens 187 against 104;
 * AVX-512 VNNI: 8 tokens 72-75 against 79-81, 10 tokens 88-93 against 72-76 (the multi-token kernel's) */
#define BG_GEMM_MIN 8

/* ---- the building blocks ---------------------------------------------------------------------------------- */

/* Zeroed memory at a 64-byte boundary, for the state's vectors and scratch: a 64-byte load, or an AMX tile row,
 * that crosses two cache lines costs two, and glibc's large blocks start 16 bytes past a page (every activation
 * tile row of the prompt GEMM crossed a line: one core, 2560 x 2560 rows from DRAM, 128 tokens, alternating in
 * one process: AMX 1.18-1.34x, AVX-512 1.10x aligned). calloc still leaves a large block's pages untouched until
 * they are used. The block's own address sits just before the aligned one; free with free64. */
static void *calloc64(size_t n, size_t size) {
    if (size && n > (SIZE_MAX - 64 - sizeof(void *)) / size) return NULL;
    uint8_t *raw = calloc(n * size + 64 + sizeof(void *), 1);
    if (!raw) return NULL;
    uint8_t *p = (uint8_t *)(((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63);
    memcpy(p - sizeof(void *), &raw, sizeof raw);
    return p;
}

static void free64(void *p) {
    if (!p) return;
    void *raw;
    memcpy(&raw, (uint8_t *)p - sizeof raw, sizeof raw);
    free(raw);
}

/* Zeroed memory for one of the K and V caches (*mapped: its mapping's bytes, 0 for calloc's). On Linux, an anonymous
 * map advised for 2 MiB pages: decode reads the whole cache every token, and through 4 KiB pages a long context cost
 * a TLB walk every 4 KiB (2B4T at 2048 positions, Zen 5, both in one process: 36.4 -> 37.8 tok/s at 1 thread, 57.7
 * -> 60.0 at 2; with THP "madvise", the common default, calloc's memory gets small pages; on the Sapphire Rapids VM
 * the advice had measured no faster, 25.6-26.1 against 25.7-26.7). Pages are still faulted in as the context fills,
 * 2 MiB at a time. */
static void *kv_alloc(size_t bytes, size_t *mapped) {
    *mapped = 0;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const size_t huge = (size_t)2 << 20, len = (bytes + huge - 1) / huge * huge;
    uint8_t *map = mmap(NULL, len + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map != MAP_FAILED) {
        /* keep the 2 MiB-aligned len bytes, unmap the rest */
        uint8_t *p = (uint8_t *)(((uintptr_t)map + huge - 1) & ~(uintptr_t)(huge - 1));
        if (p > map) munmap(map, (size_t)(p - map));
        if (p + len < map + len + huge) munmap(p + len, (size_t)(map + len + huge - (p + len)));
        madvise(p, len, MADV_HUGEPAGE);  /* advice: without it, the same memory in small pages */
        *mapped = len;
        return p;
    }
#endif
    return calloc64(bytes, 1);
}

static void kv_free(void *p, size_t mapped) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (mapped) {
        munmap(p, mapped);
        return;
    }
#endif
    (void)mapped;
    free64(p);
}

/* v > 0 ? v : 0, bit for bit (checked over all 2^32 inputs), as integer ops: the float compare's select is not
 * vectorized without -fno-trapping-math, and as a branch it mispredicts on random signs (relu2 was ~4% of prefill) */
static inline float relu(float v) {
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    b &= 0u - (uint32_t)(b - 1u < 0x7f800000u);  /* +denormals .. +inf; zeros, negatives and NaNs -> +0 */
    memcpy(&v, &b, sizeof v);
    return v;
}

/* NEOX RoPE: rotate the pairs (i, i + d/2) of every head by pos * theta^(-2i/d). */
static void rope(const bg_state *s, float *v, int n_heads, int head_dim, int pos) {
    const int half = head_dim / 2;
    const float *cs = s->rope_cos + (size_t)pos * half, *sn = s->rope_sin + (size_t)pos * half;
    for (int h = 0; h < n_heads; h++) {
        float *x = v + h * head_dim;
        for (int i = 0; i < half; i++) {
            float x0 = x[i], x1 = x[i + half];
            x[i] = x0 * cs[i] - x1 * sn[i];
            x[i + half] = x0 * sn[i] + x1 * cs[i];
        }
    }
}

/* In place: exp(x - max) / Σ. */
static void softmax(float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    for (int i = 0; i < n; i++) x[i] /= sum;
}

/* 1 when the engine runs at an x86 level with AVX2 (avx2, avx512, amx): engine_avx2.c's helpers apply. */
static inline int x86_avx2(const bg_model *m) { return bg_isa_x86_avx2(m->isa); }

static void silu_mul_portable(float *g, const float *u, int n) {
    for (int i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void scale_dots_portable(float *y, int n, float div, float mul) {
    for (int i = 0; i < n; i++) y[i] = y[i] / div * mul;
}

/* The per-token helpers of a level, picked once (bg_model_init) as the type table picks kernels: activation
 * quantization and RMSNorm bit for bit the same at every level; SiLU x up and the dots' scaling the same at the x86
 * levels (engine_avx2.h). */
typedef struct bg_helpers {
    void (*quantize)(const float *x, int n, bg_act *a);
    void (*rmsnorm)(float *o, const float *x, const float *w, int n, float eps);
    void (*silu_mul)(float *g, const float *u, int n);  /* g = g / (1 + e^-g) * u */
    void (*scale_dots)(float *y, int n, float div, float mul);  /* y = y / div * mul */
} bg_helpers;

static const bg_helpers *helpers_for(bg_isa isa) {
    static const bg_helpers portable = {bg_quantize_act, bg_rmsnorm, silu_mul_portable, scale_dots_portable};
#if defined(__x86_64__)
    static const bg_helpers avx2 = {bg_quantize_act_avx2, bg_rmsnorm_avx2, bg_silu_mul_avx2, bg_scale_dots_avx2};
    static const bg_helpers avx512 = {bg_quantize_act_avx512, bg_rmsnorm_avx512, bg_silu_mul_avx512,
                                      bg_scale_dots_avx512};
    if (bg_isa_x86_avx512(isa)) return &avx512;
    if (bg_isa_x86_avx2(isa)) return &avx2;
#endif
    (void)isa;
    return &portable;
}

static inline int ternary(const bg_tensor *w) { return w->dot_i8 || w->tl2_tile; }

/* 1 when a batch of n tokens goes through the tensor's GEMM (bg_gemm_put_token's tiles, no TL2 tables) */
static inline int uses_gemm(const bg_tensor *w, int n) { return (w->gemm_i8 || w->tl2_gemm) && n >= BG_GEMM_MIN; }

/* ---- parallel jobs (threadpool.c): rows (or heads) handed out in chunks; every output is computed by one kernel
 * call on the same inputs whichever thread runs it, so results do not depend on the thread count. */

/* One ternary or float matmul over the batch: y[t][r] = W[r] · x[t]. */
typedef struct {
    const bg_tensor *w;
    const float *x;
    int xstride;
    float *y;
    int ystride;
    const bg_q8k *xq;  /* K-quant weights: x as Q8_K, one per token */
} mm_part;

/* Up to three matmuls on the same input (q/k/v, gate/up) as one job, their rows concatenated. */
#define BG_MM_RANGES 64

/* Up to three matmuls on the same input (q/k/v, gate/up) as one job, their rows concatenated. The rows are split
 * into one contiguous range per thread (each thread streams its own range, which the hardware prefetchers follow
 * well); a thread done with its range takes chunks from the others' (a preempted thread delays one chunk). */
typedef struct {
    const bg_model *m;
    mm_part part[3];
    int n_parts, n, total_rows, chunk, n_ranges;
    int range_end[BG_MM_RANGES];
    /* next unclaimed row of each range, a cache line each: two threads' claims on one line made each claim wait
     * for the line (3% of a 2-thread decode, on the claims' atomic add) */
    struct {
        _Alignas(64) atomic_int next;
    } cursor[BG_MM_RANGES];
} mm_job;

/* y[t][r] = dot / act_t.scale * tensor_scale over rows r0..r1 of token t: the ternary kernels' raw dots to outputs,
 * as one vectorizable pass (the division is off the kernel calls' path: ~4% of a decode step when done per row) */
static void scale_dots(const bg_model *m, float *y, size_t ys, int t, int r0, int r1, const bg_act *act,
                       float scale) {
    m->helpers->scale_dots(y + t * ys + r0, r1 - r0, act[t].scale, scale);
}

static void matmul_rows(const bg_model *m, const mm_part *p, int n, int r0, int r1, int ith) {
    const bg_tensor *w = p->w;
    const bg_act *act = m->s.act;
    float *y = p->y;
    const size_t ys = (size_t)p->ystride;
    if (w->gemm_i8 && n >= BG_GEMM_MIN) {
        w->gemm_i8(w->data + (size_t)r0 * w->row_bytes, w->row_bytes, r1 - r0, m->s.gemm_tiles, act, n, y + r0, ys);
        for (int t = 0; t < n; t++) scale_dots(m, y, ys, t, r0, r1, act, w->scale);
        return;
    }
    if (w->tl2_tile && uses_gemm(w, n)) {  /* whole tiles of BM rows, as below */
        const int BM = w->tl2.BM;
        uint8_t *codes = m->s.tl2_codes + (size_t)ith * m->s.tl2_codes_bytes;
        for (int mt = (r0 + BM - 1) / BM; mt * BM < r1; mt++) {
            w->tl2_gemm(&w->tl2, mt, codes, m->s.gemm_tiles, act, n, y + (size_t)mt * BM, ys);
            for (int t = 0; t < n; t++) scale_dots(m, y, ys, t, mt * BM, (mt + 1) * BM, act, w->scale);
        }
        return;
    }
    if (w->tl2_tile) {
        /* whole tiles of BM rows: the span computes the tiles that start in it (which may end past r1: the span
         * that holds those rows skips them, as it holds no tile start there) */
        int32_t dot[BG_TL2_TOKENS * BG_TL2_MAX_BM];
        const int BM = w->tl2.BM;
        for (int mt = (r0 + BM - 1) / BM; mt * BM < r1; mt++)
            for (int t0 = 0; t0 < n; t0 += BG_TL2_TOKENS) {
                const int nt = MIN(BG_TL2_TOKENS, n - t0);
                w->tl2_tile(&w->tl2, mt, m->s.tl2_tables + (size_t)t0 * m->s.tl2_stride, m->s.tl2_stride, nt, dot);
                for (int t = t0; t < t0 + nt; t++) {
                    float *yt = y + t * ys + (size_t)mt * BM;
                    const int32_t *d = dot + (size_t)(t - t0) * BM;
                    for (int i = 0; i < BM; i++) yt[i] = (float)d[i] / act[t].scale * w->scale;
                }
            }
        return;
    }
    if (w->dot_i8_multi && n > 1) {
        /* tiles of BG_TOKEN_TILE tokens, all rows of the chunk each: the tile's activations stay in L1 while the
         * chunk's rows (~32 KiB) come from L2 */
        for (int t0 = 0; t0 < n; t0 += BG_TOKEN_TILE) {
            const int nt = MIN(BG_TOKEN_TILE, n - t0);
            for (int r = r0; r < r1; r++)
                w->dot_i8_multi(w->data + (size_t)r * w->row_bytes, act + t0, nt, y + t0 * ys + r, ys);
        }
        for (int t = 0; t < n; t++) scale_dots(m, y, ys, t, r0, r1, act, w->scale);
        return;
    }
    if (w->dot_i8) {  /* the raw dots first, then the scaling */
        for (int t = 0; t < n; t++) {
            bg_dot_i8_rows(w->dot_i8, w->dot_i8_x4, w->data + (size_t)r0 * w->row_bytes, w->row_bytes, r1 - r0,
                           &act[t], y + t * ys + r0, bg_cpu_one_stream());
            scale_dots(m, y, ys, t, r0, r1, act, w->scale);
        }
        return;
    }
    if (w->dot_q8k) {
        for (int t = 0; t < n; t++)
            bg_dot_q8k_rows(w->dot_q8k, w->dot_q8k_x4, w->data + (size_t)r0 * w->row_bytes, w->row_bytes, r1 - r0,
                            &p->xq[t], y + t * ys + r0, bg_cpu_one_stream());
        return;
    }
    if (n == 1) {  /* float weights, one token */
        bg_dot_f32_rows(w->dot_f32, w->dot_f32_x4, w->data + (size_t)r0 * w->row_bytes, w->row_bytes, r1 - r0, p->x,
                        w->cols, y + r0, bg_cpu_one_stream());
        return;
    }
    for (int r = r0; r < r1; r++) {  /* float weights: f32 activations */
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        for (int t = 0; t < n; t++) y[t * ys + r] = w->dot_f32(row, p->x + (size_t)t * p->xstride, w->cols);
    }
}

/* Rows [b, e) of the concatenated parts. */
static void matmul_span(const mm_job *j, int b, int e, int ith) {
    int base = 0;
    for (int i = 0; i < j->n_parts && b < e; i++) {  /* a span may straddle two parts */
        int rows = j->part[i].w->rows;
        if (b < base + rows) {
            int hi = MIN(e, base + rows);
            matmul_rows(j->m, &j->part[i], j->n, b - base, hi - base, ith);
            b = hi;
        }
        base += rows;
    }
}

static void matmul_task(void *ctx, int ith, int nth) {
    mm_job *j = ctx;
    (void)nth;
    for (int k = 0; k < j->n_ranges; k++) {  /* its own range first, then the others' leftovers */
        const int r = (ith + k) % j->n_ranges, end = j->range_end[r];
        int b, e;
        while (bg_pool_chunk(&j->cursor[r].next, end, j->chunk, &b, &e)) matmul_span(j, b, e, ith);
    }
}

/* Run the matmuls of `parts` over n tokens on the pool (one thread when the work is small). */
static void matmuls(const bg_model *m, const mm_part *parts, int n_parts, int n) {
    mm_job j;
    j.m = m;
    j.n = n;
    j.n_parts = n_parts;
    j.total_rows = 0;
    size_t bytes = 0, row_bytes = 0;
    for (int i = 0; i < n_parts; i++) {
        j.part[i] = parts[i];
        j.total_rows += parts[i].w->rows;
        bytes += (size_t)parts[i].w->rows * parts[i].w->row_bytes;
        row_bytes = MAX(row_bytes, parts[i].w->row_bytes);
    }
    /* chunks of ~32 KiB of weights (a few microseconds per token; they stay in L2 across a batch's token tiles),
     * a multiple of 4 rows. For one token, the ternary and float rows and a K-quant head with a four-row kernel
     * read each chunk as two halves or four quarters side by side (bg_dot_i8_rows, bg_dot_q8k_rows, the float
     * loop; unless bg_cpu_one_stream), which needs longer chunks (BG_Q8K_ROWS_CHUNK_BYTES) */
    int quartered = 0, grain = 4;
    for (int i = 0; i < n_parts; i++) {
        quartered |= n == 1 && (parts[i].w->dot_q8k_x4 || parts[i].w->dot_i8 || parts[i].w->dot_f32);
        if (parts[i].w->gemm_i8 && n >= BG_GEMM_MIN) grain = 32;  /* the GEMM's panels are 32 rows */
    }
    int chunk = (int)((quartered ? BG_Q8K_ROWS_CHUNK_BYTES : 32u << 10) / row_bytes);
    j.chunk = MAX(grain, chunk / grain * grain);
    int nth = bytes * (size_t)n >= BG_PARALLEL_MIN ? m->n_threads : 1;
    /* one token on one thread: the whole job is one piece, as every piece starts its streams afresh with their first
     * lines missed (2B4T Q5_K head, alternating in one process: 128 KiB pieces 5% slower for I2_S, 8% for TQ2_0).
     * Several threads keep the short pieces: they balance cores that run at different speeds (a busy neighbour on
     * one of them), and pieces that halved what was left of a range measured no faster there. */
    if (n == 1 && nth == 1) j.chunk = j.total_rows;
    j.n_ranges = MIN(nth, BG_MM_RANGES);
    for (int r = 0; r < j.n_ranges; r++) {
        int lo = r == 0 ? 0 : (int)((int64_t)j.total_rows * r / j.n_ranges) / grain * grain;
        atomic_init(&j.cursor[r].next, lo);
        if (r > 0) j.range_end[r - 1] = lo;
    }
    j.range_end[j.n_ranges - 1] = j.total_rows;
    /* a batch's chunk takes up to ~200 us (32 KiB of weights x 128 tokens by a multi-token kernel; the GEMM's are
     * shorter): wait about that long before sleeping */
    bg_pool_run_wait(m->pool, matmul_task, &j, nth, n > 1 ? 200 : 30);
}

static void matmul(const bg_model *m, const bg_tensor *w, const float *x, int xstride, int n, float *y,
                   int ystride) {
    mm_part p = {w, x, xstride, y, ystride, NULL};
    matmuls(m, &p, 1, n);
}

/* Causal attention of token t of the batch (at position n_past + t) for query heads h0..h0+n_q of one KV head
 * (GQA: query head h reads KV head h / (n_head / n_head_kv)); att is this thread's scratch of n_q x n_ctx floats.
 * The portable path: one dot per score, one axpy per V row. */
static void attention_heads(const bg_model *m, int layer, int t, int h0, int n_q, float *att) {
    const bg_config *c = &m->w.c;
    const bg_state *s = &m->s;
    const int hd = c->head_dim, group = c->n_head / c->n_head_kv, pos = s->n_past + t;
    const int QD = c->n_head * hd, W = MAX(c->n_embd, QD);
    const size_t layer_off = (size_t)layer * s->n_ctx * s->kv_pos_bytes;
    const size_t head_off = (size_t)(h0 / group) * hd * s->kv->block_bytes;
    const uint8_t *kl = s->k_cache + layer_off + head_off, *vl = s->v_cache + layer_off + head_off;
    const float sqrt_hd = sqrtf((float)hd);
    for (int j = 0; j < n_q; j++) {
        const float *q = s->q + (size_t)t * QD + (size_t)(h0 + j) * hd;
        float *aj = att + (size_t)j * s->n_ctx;
        for (int i = 0; i <= pos; i++) aj[i] = s->kv_dot(kl + i * s->kv_pos_bytes, q, hd) / sqrt_hd;
        softmax(aj, pos + 1);
        float *o = s->xb2 + (size_t)t * W + (size_t)(h0 + j) * hd;
        memset(o, 0, (size_t)hd * sizeof(float));
        for (int i = 0; i <= pos; i++) s->kv_axpy(vl + i * s->kv_pos_bytes, aj[i], o, hd);
    }
}

static size_t k_tiles_offset(const bg_state *s, int layer, int g, int pos);
static size_t v_heads_offset(const bg_state *s, int layer, int g, int pos);

#if defined(__x86_64__)
/* The x86 AVX2 levels' path: tokens t0..t0+n_tok-1 of the batch with query heads h0..h0+n_h-1 of KV head g, as
 * one block (engine_avx2.h), its scores in scratch. */
static bg_attn_block block_of(const bg_model *m, int layer, int g, int h0, int n_h, int t0, int n_tok, float *scratch) {
    const bg_config *c = &m->w.c;
    const bg_state *s = &m->s;
    const int hd = c->head_dim, group = c->n_head / c->n_head_kv, QD = c->n_head * hd, W = MAX(c->n_embd, QD);
    const size_t head = ((size_t)g * group + h0) * hd;
    const bg_attn_block b = {
        .k = s->k_cache + k_tiles_offset(s, layer, g, 0), .v = s->v_cache + v_heads_offset(s, layer, g, 0),
        .v_stride = (size_t)hd * s->kv->block_bytes, .k_tile_stride = s->kv_block_bytes,
        .v_tile_stride = s->kv_block_bytes,
        .kv_f16 = s->kv->type_id == BG_TYPE_F16, .hd = hd, .group = n_h,
        .n_tokens = n_tok, .first_keys = s->n_past + t0 + 1,
        .q = s->q + (size_t)t0 * QD + head, .q_stride = (size_t)QD,
        .out = s->xb2 + (size_t)t0 * W + head, .out_stride = (size_t)W,
        .div = sqrtf((float)hd), .scores = scratch, .scores_stride = s->att_stride,
        .avx512 = bg_isa_x86_avx512(m->isa),
    };
    return b;
}

static void attention_block(const bg_model *m, int layer, int g, int h0, int n_h, int t0, int n_tok, float *scratch) {
    const bg_attn_block b = block_of(m, layer, g, h0, n_h, t0, n_tok, scratch);
    bg_attention_block_avx2(&b);
}

/* One decode step's attention in three passes on the pool, so that each K and V element is read by one thread, in
 * whole rows: the scores of every query head by runs of K tiles, the softmax by KV head, the outputs by KV head
 * (by ranges of values too where KV heads are fewer than threads). The blocks of attention_task read a KV head's
 * cache once per part of its query heads, which is what spread a decode step over the threads; 2B4T, 2 threads:
 * 23.7-24.0 -> 25.8 tok/s at 2048 positions, 31.0-31.1 -> 32.1-32.8 at 512, 35.5-36.8 -> 36.1-36.7 from an empty
 * context. The same operations per value as a block. */
typedef struct {
    const bg_model *m;
    int layer, tiles, d_parts;
    atomic_int next;
} dec_att_job;

static bg_attn_block decode_block(const dec_att_job *j, int g) {
    const int group = j->m->w.c.n_head / j->m->w.c.n_head_kv;
    return block_of(j->m, j->layer, g, 0, group, 0, 1, j->m->s.head_scores + (size_t)g * group * j->m->s.att_stride);
}

static void decode_scores_task(void *ctx, int ith, int nth) {
    dec_att_job *j = ctx;
    const int items = j->m->w.c.n_head_kv * j->tiles;
    int b, e;
    /* runs of tiles, so that a thread's reads stay sequential */
    while (bg_pool_chunk(&j->next, items, MAX(1, items / (4 * nth)), &b, &e))
        for (int i = b; i < e;) {
            const int g = i / j->tiles, end = MIN(e, (g + 1) * j->tiles);
            const bg_attn_block blk = decode_block(j, g);
            bg_attention_scores_avx2(&blk, i % j->tiles, i % j->tiles + (end - i));
            i = end;
        }
    (void)ith;
}

static void decode_softmax_task(void *ctx, int ith, int nth) {
    dec_att_job *j = ctx;
    int b, e;
    while (bg_pool_chunk(&j->next, j->m->w.c.n_head_kv, 1, &b, &e)) {
        const bg_attn_block blk = decode_block(j, b);
        bg_attention_softmax_avx2(&blk, 0, blk.group);
    }
    (void)ith, (void)nth;
}

static void decode_values_task(void *ctx, int ith, int nth) {
    dec_att_job *j = ctx;
    const int vectors = j->m->w.c.head_dim / 16;
    int b, e;
    while (bg_pool_chunk(&j->next, j->m->w.c.n_head_kv * j->d_parts, 1, &b, &e)) {
        const bg_attn_block blk = decode_block(j, b / j->d_parts);
        const int p = b % j->d_parts;
        bg_attention_values_avx2(&blk, 16 * (vectors * p / j->d_parts), 16 * (vectors * (p + 1) / j->d_parts));
    }
    (void)ith, (void)nth;
}

static void attention_decode(const bg_model *m, int layer) {
    const bg_config *c = &m->w.c;
    const int keys = m->s.n_past + 1;
    /* values by whole KV heads, unless there are fewer than threads: parts of a row stream from DRAM at half the
     * speed of whole rows */
    const int d_parts = MAX(1, MIN(c->head_dim / 16, m->n_threads / c->n_head_kv));
    dec_att_job j = {m, layer, (keys + BG_K_TILE - 1) / BG_K_TILE, d_parts, 0};
    atomic_init(&j.next, 0);
    bg_pool_run(m->pool, decode_scores_task, &j, m->n_threads);
    atomic_store(&j.next, 0);
    bg_pool_run(m->pool, decode_softmax_task, &j, m->n_threads);
    atomic_store(&j.next, 0);
    bg_pool_run(m->pool, decode_values_task, &j, m->n_threads);
}
#endif

/* 1 when attention runs as blocks of tokens x query heads (attention_block) */
static inline int attention_blocked(const bg_model *m) { return x86_avx2(m) && m->w.c.head_dim % 16 == 0; }

typedef struct {
    const bg_model *m;
    int layer, n, parts;
    atomic_int next;
} att_job;

/* Work items: (token, pair of query heads of one KV head), so that the heads share K rows and the pairs still
 * spread over the threads. Blocked: (block of att_tokens tokens, KV head, part of its query heads), the last
 * tokens (the most keys) first; the heads are split in parts only where there would be few items per thread
 * otherwise (a short prompt is one block: 2B4T's 5 KV heads alone would leave most cores of a bigger machine
 * idle). A decode step on 2+ threads goes through attention_decode instead. */
static void attention_task(void *ctx, int ith, int nth) {
    att_job *j = ctx;
    const bg_model *m = j->m;
    const bg_config *c = &m->w.c;
    const int group = c->n_head / c->n_head_kv;
    float *att = m->s.att + (size_t)ith * m->s.att_floats;
    int b, e;
    (void)nth;
#if defined(__x86_64__)
    if (m->s.k_tiles) {
        const int tb = m->s.att_tokens, blocks = (j->n + tb - 1) / tb, per_block = c->n_head_kv * j->parts;
        const int part_heads = (group + j->parts - 1) / j->parts;
        while (bg_pool_chunk(&j->next, blocks * per_block, 1, &b, &e)) {
            const int t0 = (blocks - 1 - b / per_block) * tb, g = b % per_block / j->parts;
            const int h0 = b % j->parts * part_heads;
            if (h0 < group)
                attention_block(m, j->layer, g, h0, MIN(part_heads, group - h0), t0, MIN(tb, j->n - t0), att);
        }
        return;
    }
#endif
    const int pairs = (group + 1) / 2, items = c->n_head_kv * pairs;
    while (bg_pool_chunk(&j->next, j->n * items, 1, &b, &e)) {
        const int item = b % items, h0 = item / pairs * group + item % pairs * 2;
        attention_heads(m, j->layer, b / items, h0, MIN(BG_ATT_HEADS, group - item % pairs * 2), att);
    }
}

/* Attention of the batch's n tokens on the pool: out in s->xb2. */
static void attention(const bg_model *m, int layer, int n) {
    const bg_config *c = &m->w.c;
#if defined(__x86_64__)
    if (n == 1 && m->s.head_scores && m->n_threads > 1) {
        attention_decode(m, layer);
        return;
    }
#endif
    const int blocks = (n + m->s.att_tokens - 1) / m->s.att_tokens, group = c->n_head / c->n_head_kv;
    /* blocked: at least 4 items per thread where the heads allow */
    const int parts = MIN(group, MAX(1, (4 * m->n_threads + blocks * c->n_head_kv - 1) / (blocks * c->n_head_kv)));
    att_job j = {m, layer, n, parts, 0};
    atomic_init(&j.next, 0);
    size_t work = (size_t)n * (m->s.n_past + n) * c->n_head * c->head_dim;
    bg_pool_run(m->pool, attention_task, &j, work >= BG_PARALLEL_MIN ? m->n_threads : 1);
}

/* The K and V caches at the x86 levels (s->k_tiles) are blocks of BG_K_TILE positions, each holding those positions
 * of every layer and KV head (kv_block_bytes), so that memory is touched block by block as the context fills and
 * RSS grows with it. In a block, K is [layer][KV head][head_dim][BG_K_TILE] (16 keys'
 * values of one dimension are one vector load, a head's tile one sequential stream) and V [layer][KV head]
 * [BG_K_TILE][head_dim] (a head's values one stream). */
static size_t k_tiles_offset(const bg_state *s, int layer, int g, int pos) {
    const size_t hd = s->kv_pos_bytes / s->kv->block_bytes / s->n_head_kv;
    const size_t head = ((size_t)layer * s->n_head_kv + g) * BG_K_TILE * hd;
    return (size_t)pos / BG_K_TILE * s->kv_block_bytes + (head + pos % BG_K_TILE) * s->kv->block_bytes;
}

static size_t v_heads_offset(const bg_state *s, int layer, int g, int pos) {
    const size_t head_bytes = s->kv_pos_bytes / s->n_head_kv;
    return (size_t)pos / BG_K_TILE * s->kv_block_bytes +
           (((size_t)layer * s->n_head_kv + g) * BG_K_TILE + pos % BG_K_TILE) * head_bytes;
}

/* n elements of v into the cache at dst, step elements apart */
static void kv_put(const bg_model *m, uint8_t *dst, const float *v, int n, size_t step) {
    if (m->s.kv->type_id == BG_TYPE_F32) {
        for (int i = 0; i < n; i++) memcpy(dst + (size_t)i * step * 4, &v[i], 4);
        return;
    }
    /* F16: converted 256 at a time (F16C at the x86 levels: the scalar rounding was ~2% of a prompt) */
    uint16_t h[256];
    for (int i0 = 0; i0 < n; i0 += 256) {
        const int k = MIN(256, n - i0);
#if defined(__x86_64__)
        if (x86_avx2(m))
            bg_f32_to_f16_avx2(v + i0, h, k);
        else
#endif
            for (int i = 0; i < k; i++) h[i] = bg_f32_to_f16(v[i0 + i]);
        if (step == 1)
            memcpy(dst + (size_t)i0 * 2, h, (size_t)k * 2);
        else
            for (int i = 0; i < k; i++) memcpy(dst + (size_t)(i0 + i) * step * 2, &h[i], 2);
    }
}

static void kv_store(const bg_model *m, uint8_t *cache, int layer, int pos, const float *v, int kv_dim) {
    const bg_state *s = &m->s;
    if (!s->k_tiles) {
        kv_put(m, cache + ((size_t)layer * s->n_ctx + pos) * s->kv_pos_bytes, v, kv_dim, 1);
        return;
    }
    const int hd = kv_dim / s->n_head_kv;
    for (int g = 0; g < s->n_head_kv; g++) {
        if (cache == s->k_cache)  /* element d of head g at BG_K_TILE elements' distance from d - 1 */
            kv_put(m, cache + k_tiles_offset(s, layer, g, pos), v + (size_t)g * hd, hd, BG_K_TILE);
        else
            kv_put(m, cache + v_heads_offset(s, layer, g, pos), v + (size_t)g * hd, hd, 1);
    }
}

/* Ask for the lines that position pos's K will be stored into (kv_store, one token). A tile holds a head's K as
 * [hd][BG_K_TILE], so a position's K is one element in each of hd lines per KV head, and the weights streamed since
 * the last token have evicted them all: those stores were 1.4% of a two-thread decode step (2B4T). Asked for before
 * the QKV matmuls, the lines arrive while those stream (the stores 0.4-0.9% of a step). */
static void kv_prefetch_k(const bg_model *m, int layer, int pos) {
    const bg_state *s = &m->s;
    const size_t line_step = (size_t)BG_K_TILE * s->kv->block_bytes;  /* element d to d + 1 */
    for (int g = 0; g < s->n_head_kv; g++) {
        const uint8_t *k = s->k_cache + k_tiles_offset(s, layer, g, pos);
        for (int d = 0; d < m->w.c.head_dim; d++) __builtin_prefetch(k + d * line_step, 1, 3);
    }
}

#define BG_K_RUN_MAX_HD 256 /* put_k_tokens' buffer, on the stack, holds heads up to this size */

/* 1 when a batch's K goes into the cache's tiles a run of tokens at a time (put_k_tokens) */
static inline int k_by_tokens(const bg_state *s, int hd) {
    return s->k_tiles && s->batch_n > 1 && hd <= BG_K_RUN_MAX_HD;
}

/* The batch's K of tokens tb..te-1 (after RoPE) into the cache. A tile holds a head's K as [hd][BG_K_TILE], so
 * one token's values are hd elements BG_K_TILE apart: token by token that was a store into each of hd lines (1.25%
 * of a prompt, the lines leaving L1 between tokens). Here, per dimension, the run's tokens are neighbours in one
 * line. The same elements as kv_store's. */
static void put_k_tokens(const bg_model *m, int l, int tb, int te) {
    const bg_state *s = &m->s;
    const int hd = m->w.c.head_dim, KVD = s->n_head_kv * hd;
    const int f16 = s->kv->type_id == BG_TYPE_F16;
    const size_t esz = f16 ? 2 : 4;
    enum { RUN = 16 };
    uint8_t buf[RUN * BG_K_RUN_MAX_HD * 4];  /* the run's converted K of one head, [token][hd] */
    for (int t0 = tb; t0 < te;) {
        const int p0 = s->n_past + t0, t1 = MIN(MIN(te, t0 + RUN), t0 + BG_K_TILE - p0 % BG_K_TILE);
        for (int g = 0; g < s->n_head_kv; g++) {
            for (int t = t0; t < t1; t++)
                kv_put(m, buf + (size_t)(t - t0) * hd * esz, s->k + (size_t)t * KVD + (size_t)g * hd, hd, 1);
            uint8_t *dst = s->k_cache + k_tiles_offset(s, l, g, p0);
            for (int d = 0; d < hd; d++)
                for (int t = 0; t < t1 - t0; t++) {
                    if (f16)
                        memcpy(dst + ((size_t)d * BG_K_TILE + t) * 2, buf + ((size_t)t * hd + d) * 2, 2);
                    else
                        memcpy(dst + ((size_t)d * BG_K_TILE + t) * 4, buf + ((size_t)t * hd + d) * 4, 4);
                }
        }
        t0 = t1;
    }
}

/* ---- the forward pass ------------------------------------------------------------------------------------- */

/* The per-token work between the matmuls, in stages (each token's vectors are its own, so tokens run in parallel
 * for a batch). */
enum {
    ST_ATTN_IN,   /* (x += previous layer's FFN output); xb = RMSNorm_attn(x); quantize xb */
    ST_ROPE,      /* RoPE on q and k; append k, v to the cache */
    ST_ATTN_OUT,  /* xb2 = RMSNorm_attn_sub(attention output); quantize xb2 */
    ST_FFN_IN,    /* x += Wo output; xb = RMSNorm_ffn(x); quantize xb */
    ST_FFN_MID,   /* hb = RMSNorm_ffn_sub(act(gate) * up); quantize hb */
    ST_OUT,       /* x += last FFN output; xb = RMSNorm_out(x) (as Q8_K for a K-quant head) */
};

typedef struct {
    bg_model *m;
    int layer, stage, n, t0, chunk;
    atomic_int next;
} stage_job;

/* The ternary matmuls whose input a stage quantizes (n_w of them, consecutive in bg_layer), or NULL. */
static const bg_tensor *stage_matmuls(const bg_model *m, int l, int stage, int *n_w) {
    const bg_layer *L = l < m->w.c.n_layer ? &m->w.layers[l] : NULL;
    const bg_tensor *w = NULL;
    *n_w = 1;
    if (!L) return NULL;
    switch (stage) {
    case ST_ATTN_IN: w = &L->wq, *n_w = 3; break;
    case ST_ATTN_OUT: w = &L->wo; break;
    case ST_FFN_IN: w = &L->ffn_gate, *n_w = 2; break;
    case ST_FFN_MID: w = &L->ffn_down; break;
    }
    return w && ternary(w) ? w : NULL;
}

/* Token t's input x (n values) to the stage's matmuls (stage_matmuls), when they are ternary: int8 activations,
 * and the TL2 tables when one of them is TL2 (bg_model_init checks they agree on the tables). The GEMMs' tiles are
 * filled after a stage's tokens (put_gemm_tokens). */
static void quantize_for(bg_model *m, int l, int stage, const float *x, int n, int t) {
    bg_state *s = &m->s;
    int n_w;
    const bg_tensor *w = stage_matmuls(m, l, stage, &n_w);
    if (!w) return;
    m->helpers->quantize(x, n, &s->act[t]);
    for (int i = 0; i < n_w; i++)
        if (w[i].tl2_tile && !uses_gemm(&w[i], s->batch_n)) {
            s->tl2_build(s->act[t].q, n, w[i].tl2.BK, s->tl2_tables + (size_t)t * s->tl2_stride);
            return;
        }
}

static void token_stage(bg_model *m, int l, int stage, int t) {
    const bg_config *c = &m->w.c;
    bg_state *s = &m->s;
    const bg_layer *L = l < c->n_layer ? &m->w.layers[l] : NULL;
    const int D = c->n_embd, hd = c->head_dim, F = c->n_ff;
    const int QD = c->n_head * hd, KVD = c->n_head_kv * hd, W = MAX(D, QD);
    float *x = s->x + (size_t)t * W, *xb = s->xb + (size_t)t * W, *xb2 = s->xb2 + (size_t)t * W;
    switch (stage) {
    case ST_ATTN_IN:
    case ST_FFN_IN:
    case ST_OUT: {
        if (stage != ST_ATTN_IN || l > 0)
            for (int i = 0; i < D; i++) x[i] += xb[i];
        const float *norm = stage == ST_OUT ? m->w.output_norm : stage == ST_ATTN_IN ? L->attn_norm : L->ffn_norm;
        m->helpers->rmsnorm(xb, x, norm, D, c->rms_eps);
        if (stage != ST_OUT)
            quantize_for(m, l, stage, xb, D, t);
        else if (m->w.output.dot_q8k)
            bg_quantize_q8k(xb, D, &s->q8k[t]);
        break;
    }
    case ST_ROPE: {
        const int pos = s->n_past + t;
        rope(s, s->q + (size_t)t * QD, c->n_head, hd, pos);
        rope(s, s->k + (size_t)t * KVD, c->n_head_kv, hd, pos);
        if (!k_by_tokens(s, hd))  /* else put_k_tokens, after the stage's tokens */
            kv_store(m, s->k_cache, l, pos, s->k + (size_t)t * KVD, KVD);
        kv_store(m, s->v_cache, l, pos, s->v + (size_t)t * KVD, KVD);
        break;
    }
    case ST_ATTN_OUT:
        if (L->attn_sub_norm) m->helpers->rmsnorm(xb2, xb2, L->attn_sub_norm, QD, c->rms_eps);
        quantize_for(m, l, stage, xb2, QD, t);
        break;
    case ST_FFN_MID: {
        float *g = s->hb + (size_t)t * F, *u = s->hb2 + (size_t)t * F;
        if (c->ffn_act == BG_FFN_RELU2) {
            for (int i = 0; i < F; i++) {
                const float r = relu(g[i]);
                g[i] = r * r * u[i];
            }
        } else
            m->helpers->silu_mul(g, u, F);
        if (L->ffn_sub_norm) m->helpers->rmsnorm(g, g, L->ffn_sub_norm, F, c->rms_eps);
        quantize_for(m, l, stage, g, F, t);
        break;
    }
    }
}

/* Tokens t0..t1-1's activations into the GEMM's tiles when the stage's matmuls take the batch through a GEMM:
 * a whole tile at a time where the range holds it (a partial last tile of the batch counts), else token by token.
 * Per token, 4 bytes into each of 16 tile lines per 64 values missed L1 at the FFN's width (3.5% of a prompt). */
static void put_gemm_tokens(bg_model *m, int l, int stage, int t0, int t1) {
    bg_state *s = &m->s;
    int n_w, gemm = 0;
    const bg_tensor *w = stage_matmuls(m, l, stage, &n_w);
    for (int i = 0; w && i < n_w; i++) gemm |= uses_gemm(&w[i], s->batch_n);
    if (!gemm) return;
    for (int t = t0; t < t1;) {
#if defined(__x86_64__)
        const int tile_end = MIN(t + BG_GEMM_TILE_TOKENS, s->batch_n);
        if (t % BG_GEMM_TILE_TOKENS == 0 && tile_end <= t1 && bg_isa_x86_avx512(m->isa)) {  /* the GEMM levels */
            bg_gemm_put_tile_avx512(&s->act[t], tile_end - t, t / BG_GEMM_TILE_TOKENS, s->gemm_tiles);
            t = tile_end;
            continue;
        }
#endif
        bg_gemm_put_token(s->act[t].q, s->act[t].n, t, s->gemm_tiles);
        t++;
    }
}

/* What a stage writes for a run of tokens at once, after their token_stage: the GEMM's tiles, the K cache's. */
static void stage_tokens_done(bg_model *m, int l, int stage, int tb, int te) {
    put_gemm_tokens(m, l, stage, tb, te);
    if (stage == ST_ROPE && k_by_tokens(&m->s, m->w.c.head_dim)) put_k_tokens(m, l, tb, te);
}

static void stage_task(void *ctx, int ith, int nth) {
    stage_job *j = ctx;
    int b, e;
    (void)ith;
    (void)nth;
    while (bg_pool_chunk(&j->next, j->n, j->chunk, &b, &e)) {
        for (int t = b; t < e; t++) token_stage(j->m, j->layer, j->stage, j->t0 + t);
        stage_tokens_done(j->m, j->layer, j->stage, j->t0 + b, j->t0 + e);
    }
}

/* A stage for tokens t0..n-1 of the batch: on the pool for a batch, inline for one token. */
static void stage(bg_model *m, int layer, int st, int t0, int n) {
    if (n - t0 <= 1 || m->n_threads == 1) {
        for (int t = t0; t < n; t++) token_stage(m, layer, st, t);
        stage_tokens_done(m, layer, st, t0, n);
        return;
    }
    /* with a GEMM, whole tiles of tokens per thread: threads writing neighbouring tokens' activations into the
     * same tile lines were 10% of a 2-thread prompt (false sharing) */
    const int chunk = m->s.gemm_tiles && t0 % BG_GEMM_TILE_TOKENS == 0 ? BG_GEMM_TILE_TOKENS : 1;
    stage_job j = {m, layer, st, n - t0, t0, chunk, 0};
    atomic_init(&j.next, 0);
    bg_pool_run(m->pool, stage_task, &j, MIN(m->n_threads, n - t0));
}

/* n <= BG_MAX_BATCH tokens at positions n_past..; logits (if not NULL) of tokens head_from..n-1. */
static void bg_forward_batch(bg_model *m, const int32_t *tokens, int n, float *logits, int head_from) {
    const bg_config *c = &m->w.c;
    bg_state *s = &m->s;
    const int D = c->n_embd, hd = c->head_dim, F = c->n_ff;
    const int QD = c->n_head * hd, KVD = c->n_head_kv * hd;
    const int W = MAX(D, QD);  /* stride of x, xb, xb2 */
    const bg_tensor *e = &m->w.tok_embd;

    for (int t = 0; t < n; t++) e->traits->to_float(e->data + (size_t)tokens[t] * e->row_bytes, s->x + t * W, D);
    s->batch_n = n;

    for (int l = 0; l < c->n_layer; l++) {
        const bg_layer *L = &m->w.layers[l];

        /* attention */
        stage(m, l, ST_ATTN_IN, 0, n);
        if (n == 1 && s->k_tiles) kv_prefetch_k(m, l, s->n_past);
        const mm_part qkv[3] = {{&L->wq, s->xb, W, s->q, QD, NULL}, {&L->wk, s->xb, W, s->k, KVD, NULL},
                                {&L->wv, s->xb, W, s->v, KVD, NULL}};
        matmuls(m, qkv, 3, n);
        stage(m, l, ST_ROPE, 0, n);
        attention(m, l, n);
        stage(m, l, ST_ATTN_OUT, 0, n);
        matmul(m, &L->wo, s->xb2, W, n, s->xb, W);

        /* feed-forward */
        stage(m, l, ST_FFN_IN, 0, n);
        const mm_part gate_up[2] = {{&L->ffn_gate, s->xb, W, s->hb, F, NULL},
                                    {&L->ffn_up, s->xb, W, s->hb2, F, NULL}};
        matmuls(m, gate_up, 2, n);
        stage(m, l, ST_FFN_MID, 0, n);
        matmul(m, &L->ffn_down, s->hb, F, n, s->xb, W);
    }

    if (logits) {
        stage(m, c->n_layer, ST_OUT, head_from, n);
        const mm_part head = {&m->w.output, s->xb + head_from * W, W, logits, c->n_vocab, s->q8k + head_from};
        matmuls(m, &head, 1, n - head_from);
    }
    s->n_past += n;
}

/* (Re)start the pool when n_threads changed, with n_threads attention scratch rows (and TL2 GEMM scratches). 0, or
 * -1 with m->error. */
static int ensure_pool(bg_model *m) {
    if (m->n_threads < 1) m->n_threads = 1;
    if (m->pool && bg_pool_size(m->pool) == m->n_threads) return 0;
    bg_pool_destroy(m->pool);
    free64(m->s.att);
    free64(m->s.tl2_codes);
    m->s.att = calloc64((size_t)m->n_threads * m->s.att_floats, sizeof(float));
    m->s.tl2_codes = m->s.tl2_codes_bytes ? calloc64((size_t)m->n_threads, m->s.tl2_codes_bytes) : NULL;
    m->pool = bg_pool_create(m->n_threads);
    if (!m->pool || !m->s.att || (m->s.tl2_codes_bytes && !m->s.tl2_codes)) {
        snprintf(m->error, sizeof m->error, "could not start %d threads", m->n_threads);
        return -1;
    }
    return 0;
}

int bg_model_eval(bg_model *m, const int32_t *tokens, int n, float *logits, int all) {
    const bg_config *c = &m->w.c;
    if (n <= 0) {
        snprintf(m->error, sizeof m->error, "eval: no tokens given");
        return -1;
    }
    if (n > m->s.n_ctx - m->s.n_past) {
        snprintf(m->error, sizeof m->error, "context full: %d tokens in the context + %d new > n_ctx %d",
                 m->s.n_past, n, m->s.n_ctx);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= c->n_vocab) {
            snprintf(m->error, sizeof m->error, "token id %d at index %d is out of range [0, %d)", (int)tokens[i], i,
                     c->n_vocab);
            return -1;
        }
    }
    if (ensure_pool(m)) return -1;
    for (int i = 0; i < n; i += BG_MAX_BATCH) {
        int nb = MIN(BG_MAX_BATCH, n - i);
        if (all)
            bg_forward_batch(m, tokens + i, nb, logits + (size_t)i * c->n_vocab, 0);
        else
            bg_forward_batch(m, tokens + i, nb, i + nb == n ? logits : NULL, nb - 1);
    }
    return 0;
}

void bg_model_reset(bg_model *m) { m->s.n_past = 0; }

/* ---- setup ------------------------------------------------------------------------------------------------ */

static int init_fail(bg_model *m, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->error, sizeof m->error, fmt, ap);
    va_end(ap);
    bg_model_free(m);
    return -1;
}

/* TL2 in place: the streams of its tiling, the scale after the padded data, the tile kernel. */
static int setup_tl2(bg_model *m, bg_tensor *t, const char *name) {
    if (bg_tl2_init(&t->tl2, t->data, t->rows, t->cols, t->tl_bm, t->tl_bk) || t->tl_bm > BG_TL2_MAX_BM)
        return init_fail(m, "tensor %s: TL2 tiling BM %d, BK %d does not fit its shape (%d, %d)", name, t->tl_bm,
                         t->tl_bk, t->rows, t->cols);
    t->traits = NULL;
    t->dot_i8 = NULL, t->dot_i8_multi = NULL, t->dot_i8_x4 = NULL;
    t->dot_f32 = NULL, t->dot_f32_x4 = NULL, t->dot_q8k = NULL, t->dot_q8k_x4 = NULL;
    t->row_bytes = (size_t)t->cols * 5 / 24 + 1;  /* about: for the matmul's chunk size only */
    memcpy(&t->scale, t->data + bg_gguf_tl_scale_offset(1, t->rows, t->cols), sizeof(float));
    t->tl2_tile = bg_tl2_tile_kernel(m->isa);
    t->tl2_gemm = bg_tl2_gemm_kernel(m->isa, t->cols);
    t->gemm_i8 = NULL;
    return 0;
}

/* Check a weight's shape and type and pick its kernel; 0 or -1 with m->error. */
static int setup_tensor(bg_model *m, bg_tensor *t, const char *name, int rows, int cols) {
    if (!t->data) return init_fail(m, "tensor %s is missing", name);
    if (t->rows != rows || t->cols != cols)
        return init_fail(m, "tensor %s has shape (%d, %d), expected (%d, %d)", name, t->rows, t->cols, rows, cols);
    t->tl2_tile = NULL;
    t->tl2_gemm = NULL;
    if (t->type == BG_TYPE_TL2) return setup_tl2(m, t, name);
    t->traits = bg_type_traits_of(t->type);
    if (!t->traits) {
        char known[160];
        bg_type_names(known, sizeof known);
        return init_fail(m, "tensor %s has ggml type %d, which the engine has no kernels for (it runs %s)", name,
                         t->type, known);
    }
    if (cols % t->traits->block_size)
        return init_fail(m, "tensor %s: %s rows must be a multiple of %d weights, found %d", name, t->traits->name,
                         t->traits->block_size, cols);
    t->row_bytes = bg_row_bytes(t->traits, cols);
    t->scale = 1.0f;
    if (t->traits->tensor_scale) memcpy(&t->scale, t->data + (size_t)rows * t->row_bytes, sizeof(float));
    t->dot_i8 = t->traits->ternary ? bg_kernel_dot_i8(t->traits, m->isa) : NULL;
    t->dot_i8_multi = t->traits->ternary ? bg_kernel_dot_i8_multi(t->traits, m->isa) : NULL;
    t->dot_i8_x4 = t->traits->ternary ? bg_kernel_dot_i8_x4(t->traits, m->isa) : NULL;
    t->gemm_i8 = t->traits->ternary ? bg_kernel_gemm_i8(t->traits, m->isa, cols) : NULL;
    t->dot_f32 = t->traits->ternary ? NULL : bg_kernel_dot_f32(t->traits, m->isa);
    t->dot_f32_x4 = t->traits->ternary ? NULL : bg_kernel_dot_f32_x4(t->traits, m->isa);
    t->dot_q8k = t->traits->ternary ? NULL : bg_kernel_dot_q8k(t->traits, m->isa);
    t->dot_q8k_x4 = t->traits->ternary ? NULL : bg_kernel_dot_q8k_x4(t->traits, m->isa);
    return 0;
}

int bg_model_init(bg_model *m, bg_isa isa, int n_ctx, int kv_type, int n_threads) {
    bg_config *c = &m->w.c;
    bg_state *s = &m->s;
    memset(s, 0, sizeof *s);
    m->pool = NULL;  /* started by the first eval (ensure_pool) */
    m->error[0] = 0;
    m->isa = isa;
    m->helpers = helpers_for(isa);
    m->n_threads = n_threads > 0 ? n_threads : 1;
    if ((int)isa < 0 || isa >= BG_ISA_COUNT || !bg_cpu_supports(isa))
        return init_fail(m, "ISA level %s is not supported by this CPU", bg_isa_name(isa));
    if (c->n_vocab <= 0 || c->n_embd <= 0 || c->n_layer <= 0 || c->n_head <= 0 || c->n_head_kv <= 0 ||
        c->head_dim <= 0 || c->n_ff <= 0 || c->head_dim % 2 || c->n_head % c->n_head_kv)
        return init_fail(m, "bad model dimensions: n_vocab %d n_embd %d n_layer %d n_head %d n_head_kv %d "
                         "head_dim %d n_ff %d", c->n_vocab, c->n_embd, c->n_layer, c->n_head, c->n_head_kv,
                         c->head_dim, c->n_ff);
    if (n_ctx <= 0) return init_fail(m, "n_ctx must be positive, got %d", n_ctx);
    const int D = c->n_embd, QD = c->n_head * c->head_dim, KVD = c->n_head_kv * c->head_dim, F = c->n_ff;
    int gemm = 0, tq1_order = 0;

    if (setup_tensor(m, &m->w.tok_embd, "token_embd.weight", c->n_vocab, D)) return -1;
    if (!m->w.tok_embd.traits || !m->w.tok_embd.traits->to_float)
        return init_fail(m, "tensor token_embd.weight has type %s; embeddings must be a float type "
                         "(F32, F16, BF16, Q8_0)", m->w.tok_embd.traits ? m->w.tok_embd.traits->name : "TL2");
    if (setup_tensor(m, &m->w.output, "output (head)", c->n_vocab, D)) return -1;
    if (!m->w.output.traits || m->w.output.traits->ternary)
        return init_fail(m, "the output head has type %s; it must be a float type",
                         m->w.output.traits ? m->w.output.traits->name : "TL2");
    if (!m->w.output_norm) return init_fail(m, "tensor output_norm.weight is missing");
    for (int l = 0; l < c->n_layer; l++) {
        bg_layer *L = &m->w.layers[l];
        char name[64];
        if (!L->attn_norm || !L->ffn_norm) return init_fail(m, "layer %d: attn_norm or ffn_norm is missing", l);
        struct { bg_tensor *t; const char *what; int rows, cols; } lin[] = {
            {&L->wq, "attn_q", QD, D}, {&L->wk, "attn_k", KVD, D}, {&L->wv, "attn_v", KVD, D},
            {&L->wo, "attn_output", D, QD}, {&L->ffn_gate, "ffn_gate", F, D}, {&L->ffn_up, "ffn_up", F, D},
            {&L->ffn_down, "ffn_down", D, F},
        };
        for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, lin[i].what);
            if (setup_tensor(m, lin[i].t, name, lin[i].rows, lin[i].cols)) return -1;
            if (lin[i].t->dot_q8k)
                return init_fail(m, "tensor %s has type %s, which the engine runs only as the output head", name,
                                 lin[i].t->traits->name);
        }
        /* inputs shared by several matmuls are quantized once, so those weights must agree on being ternary, and
         * their TL2 tensors on the tables (the columns read as triples, K3) */
        if (ternary(&L->wq) != ternary(&L->wk) || ternary(&L->wq) != ternary(&L->wv) ||
            ternary(&L->ffn_gate) != ternary(&L->ffn_up))
            return init_fail(m, "layer %d mixes ternary and float types among q/k/v or gate/up", l);
        const bg_tensor *groups[2][3] = {{&L->wq, &L->wk, &L->wv}, {&L->ffn_gate, &L->ffn_up, NULL}};
        for (int g = 0; g < 2; g++) {
            int k3 = -1;
            for (int i = 0; i < 3 && groups[g][i]; i++) {
                const bg_tensor *w = groups[g][i];
                if (!w->tl2_tile) continue;
                if (k3 >= 0 && w->tl2.K3 != k3)
                    return init_fail(m, "layer %d: the TL2 tensors of %s have different tilings (BK)", l,
                                     g ? "gate/up" : "q/k/v");
                k3 = w->tl2.K3;
            }
        }
        for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) {
            const bg_tensor *t = lin[i].t;
            gemm = gemm || t->gemm_i8 || t->tl2_gemm;
            /* TQ1_0's AVX-512 kernel reads the activations in digit order too (bg_act.tq1) */
            tq1_order = tq1_order || (t->traits && t->traits->type_id == BG_TYPE_TQ1_0 && bg_isa_x86_avx512(isa));
            if (t->tl2_tile) s->tl2_stride = MAX(s->tl2_stride, bg_tl2_table_bytes(isa, lin[i].cols, t->tl2.BK));
            if (t->tl2_gemm) s->tl2_codes_bytes = MAX(s->tl2_codes_bytes, 32 * bg_tl2_codes_ld(lin[i].cols));
        }
    }
    /* tokens' tables 4 KiB + 1088 bytes apart: a tile call reads the same K-tile's tables (1 KiB) of 8 tokens, which
     * at a multiple of 4 KiB apart would fall in the same L1 sets */
    if (s->tl2_stride) s->tl2_stride = (s->tl2_stride + 4095) / 4096 * 4096 + 1088;

    s->kv = bg_type_traits_of(kv_type);
    if (kv_type != BG_TYPE_F16 && kv_type != BG_TYPE_F32)
        return init_fail(m, "kv_type must be F16 (1) or F32 (0), got ggml type %d", kv_type);
    s->kv_dot = bg_kernel_dot_f32(s->kv, isa);
    s->kv_axpy = bg_kernel_axpy(s->kv, isa);
    s->n_ctx = n_ctx;
    s->kv_pos_bytes = (size_t)KVD * s->kv->block_bytes;
    /* attention scratch per thread: BG_ATT_HEADS score rows, or for blocks a score row per token and query head
     * (padded to the 16-key kernel width); blocks of 32 rows, fewer tokens where that would pass
     * 1 MiB of scores (long contexts) */
    const int group = c->n_head / c->n_head_kv;
    s->att_stride = ((size_t)n_ctx + 15) / 16 * 16;
    s->att_tokens = MAX(1, 32 / group);
    while (s->att_tokens > 1 && (size_t)s->att_tokens * group * s->att_stride * sizeof(float) > (1u << 20))
        s->att_tokens /= 2;
    s->att_floats = MAX((size_t)BG_ATT_HEADS * n_ctx, (size_t)s->att_tokens * group * s->att_stride);
    s->n_head_kv = c->n_head_kv;
    s->k_tiles = attention_blocked(m);
    s->kv_block_bytes = (size_t)c->n_layer * BG_K_TILE * s->kv_pos_bytes;

    const int W = MAX(D, QD), A = MAX(MAX(D, QD), F);
    const size_t B = BG_MAX_BATCH;
    s->x = calloc64(B * W, sizeof(float));
    s->xb = calloc64(B * W, sizeof(float));
    s->xb2 = calloc64(B * W, sizeof(float));
    s->q = calloc64(B * QD, sizeof(float));
    s->k = calloc64(B * KVD, sizeof(float));
    s->v = calloc64(B * KVD, sizeof(float));
    s->hb = calloc64(B * F, sizeof(float));
    s->hb2 = calloc64(B * F, sizeof(float));
    const size_t kv_bytes = s->k_tiles ? ((size_t)n_ctx + BG_K_TILE - 1) / BG_K_TILE * s->kv_block_bytes
                                       : (size_t)c->n_layer * n_ctx * s->kv_pos_bytes;  /* each of K and V */
    /* the cache's pages are only touched (and counted in RSS) as the context fills */
    s->k_cache = kv_alloc(kv_bytes, &s->k_mapped);
    s->v_cache = kv_alloc(kv_bytes, &s->v_mapped);
    s->head_scores = s->k_tiles ? calloc64((size_t)c->n_head * s->att_stride, sizeof(float)) : NULL;
    s->rope_cos = calloc64((size_t)n_ctx * (c->head_dim / 2), sizeof(float));
    s->rope_sin = calloc64((size_t)n_ctx * (c->head_dim / 2), sizeof(float));
    s->tl2_build = bg_tl2_tables_kernel(isa);
    s->tl2_tables = s->tl2_stride ? calloc64(B, s->tl2_stride) : NULL;
    /* calloc: the padding tokens of the last tile are read (their sums are never used) */
    s->gemm_tiles = gemm ? calloc64(bg_gemm_tiles_bytes(A, BG_MAX_BATCH), 1) : NULL;
    int ok = s->x && s->xb && s->xb2 && s->q && s->k && s->v && s->hb && s->hb2 && s->k_cache &&
             (s->head_scores || !s->k_tiles) &&
             s->v_cache && s->rope_cos && s->rope_sin && (s->tl2_tables || !s->tl2_stride) &&
             (s->gemm_tiles || !gemm);
    for (size_t t = 0; t < B; t++) {
        /* (aligned: TQ1_0 decode at 1 thread, Zen 5, ran 20 or 39 tok/s by where malloc happened to put the order) */
        s->act[t].q = calloc64((size_t)A, 1);
        s->act[t].gsum = calloc64((size_t)(A + BG_ACT_GROUP - 1) / BG_ACT_GROUP, sizeof(int32_t));
        ok = ok && s->act[t].q && s->act[t].gsum;
        if (tq1_order) {
            s->act[t].tq1 = calloc64((size_t)A / BG_TQ1_BLOCK, BG_TQ1_ORDER_BYTES);
            ok = ok && s->act[t].tq1;
        }
        if (m->w.output.dot_q8k) {
            s->q8k[t].q = calloc64((size_t)D, 1);
            s->q8k[t].d = calloc64((size_t)D / BG_QK_K, sizeof(float));
            s->q8k[t].bsum = calloc64((size_t)D / 16, sizeof(int16_t));
            ok = ok && s->q8k[t].q && s->q8k[t].d && s->q8k[t].bsum;
        }
    }
    if (!ok) return init_fail(m, "out of memory allocating the state for n_ctx %d", n_ctx);

    /* RoPE tables: inv_freq_i = 1 / theta^(2i/d) and angle = pos * inv_freq_i in f32, as the reference (and HF)
     * compute them, so the rounding of long angles matches; cos and sin of that f32 angle in double. */
    const int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        float inv_freq = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->head_dim);
        for (int pos = 0; pos < n_ctx; pos++) {
            float angle = (float)pos * inv_freq;
            s->rope_cos[(size_t)pos * half + i] = (float)cos((double)angle);
            s->rope_sin[(size_t)pos * half + i] = (float)sin((double)angle);
        }
    }
    return 0;
}

void bg_model_free(bg_model *m) {
    bg_state *s = &m->s;
    bg_pool_destroy(m->pool);
    m->pool = NULL;
    float **bufs[] = {&s->x, &s->xb, &s->xb2, &s->q, &s->k, &s->v, &s->hb, &s->hb2, &s->att, &s->head_scores,
                      &s->rope_cos, &s->rope_sin};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        free64(*bufs[i]);
        *bufs[i] = NULL;
    }
    if (s->k_cache) kv_free(s->k_cache, s->k_mapped);
    if (s->v_cache) kv_free(s->v_cache, s->v_mapped);
    s->k_cache = s->v_cache = NULL;
    free64(s->tl2_tables);
    free64(s->tl2_codes);
    s->tl2_codes = NULL;
    s->tl2_tables = NULL;
    free64(s->gemm_tiles);
    s->gemm_tiles = NULL;
    for (int t = 0; t < BG_MAX_BATCH; t++) {
        free64(s->act[t].q);
        free64(s->act[t].gsum);
        free64(s->act[t].tq1);
        s->act[t].q = NULL;
        s->act[t].gsum = NULL;
        s->act[t].tq1 = NULL;
        free64(s->q8k[t].q);
        free64(s->q8k[t].d);
        free64(s->q8k[t].bsum);
        memset(&s->q8k[t], 0, sizeof s->q8k[t]);
    }
}
