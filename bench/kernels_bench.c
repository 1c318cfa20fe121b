/* Kernel micro-benchmark (built and run by `python -m bench.kernels`): every matvec / matmul kernel of the type
 * table, and TL2's, at the 2B4T shapes, one thread, at every ISA level this CPU runs. Prints one JSON object per line:
 *   gemv_dram:  one token, weights streamed from memory (copies cycled through >= 256 MiB): GB/s of weights
 *   gemv_cache: one token, a 256-row slice that stays in L2: the kernel's compute ceiling
 *   gemm:       the prompt path, rows from L2/L3: BG_BENCH_TOKENS tokens per row through dot_i8_multi, or where the
 *               level has a GEMM (gemm_i8: AMX, AVX-512), BG_BENCH_GEMM_TOKENS tokens (the engine's batch) through it
 *   int8_peak:  the core's int8 multiply-accumulate peak at each level (bg_int8_peak, int8_peak.c)
 * each with GMAC/s, timed in this thread's CPU time (a busy machine's preemption does not count). Usage:
 * kernels_bench [seconds per measurement] [type filter, e.g. I2_S, or int8 for the peaks alone] [MiB the gemv_dram copies span, default 256]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu.h"
#include "int8_peak.h"
#include "kernels.h"
#include "tl2.h"

#define BG_BENCH_TOKENS 16
#define BG_BENCH_GEMM_TOKENS 64

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);  /* time on the CPU: preemption by other jobs does not count */
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Random but valid rows: 2-bit fields in {0,1,2}, finite f16 scales where the type has them. */
static void fill(const bg_type_traits *t, uint8_t *p, size_t rows, size_t row_bytes, int cols) {
    size_t n = rows * row_bytes;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = 0;
        for (int k = 0; k < 4; k++) b = (uint8_t)(b << 2 | rnd() % 3);
        p[i] = b;
    }
    int d_at = -1;
    switch (t->type_id) {
    case BG_TYPE_TQ2_0: d_at = 64; break;
    case BG_TYPE_TQ1_0: d_at = 52; break;
    case BG_TYPE_Q8_0: case BG_TYPE_Q4_0: case BG_TYPE_Q5_K: case BG_TYPE_Q4_K: d_at = 0; break;
    case BG_TYPE_Q6_K: d_at = 208; break;
    case BG_TYPE_F16: case BG_TYPE_BF16: case BG_TYPE_F32: {
        float *f = malloc((size_t)cols * sizeof(float));
        for (size_t r = 0; r < rows; r++) {
            for (int i = 0; i < cols; i++) f[i] = ((float)(rnd() % 2001) - 1000.0f) / 4000.0f;
            uint8_t *row = p + r * row_bytes;
            for (int i = 0; i < cols; i++) {
                if (t->type_id == BG_TYPE_F32) memcpy(row + 4 * i, &f[i], 4);
                else {
                    uint16_t h = t->type_id == BG_TYPE_F16 ? bg_f32_to_f16(f[i]) : (uint16_t)(bg_f32_to_bits(f[i]) >> 16);
                    memcpy(row + 2 * i, &h, 2);
                }
            }
        }
        free(f);
        return;
    }
    default: break;
    }
    /* TQ2_0 / TQ1_0 rows get one scale in every block, as llama.cpp and the converter write ternary weights (the
     * kernels take a faster path for such rows) */
    const size_t blocks_per_row = row_bytes / (size_t)t->block_bytes, same_row = t->ternary ? blocks_per_row : 1;
    uint16_t d = 0;
    if (d_at >= 0)
        for (size_t b = 0; b < n / (size_t)t->block_bytes; b++) {
            if (b % same_row == 0) d = bg_f32_to_f16(0.01f + (float)(rnd() % 100) / 1000.0f);
            memcpy(p + b * t->block_bytes + d_at, &d, 2);
            if (t->type_id == BG_TYPE_Q5_K || t->type_id == BG_TYPE_Q4_K) memcpy(p + b * t->block_bytes + 2, &d, 2);
        }
}

typedef struct {
    const bg_type_traits *t;
    bg_isa isa;
    int rows, cols;
    const uint8_t *w;
    size_t row_bytes, copies;
    bg_act *acts;          /* BG_BENCH_GEMM_TOKENS tokens */
    int8_t *tiles;         /* their activations laid out for gemm_i8 */
    bg_q8k xq;  /* x as Q8_K, for the K-quant heads */
    float *x, *y;
} ctx;

/* rows [0, nrows) of copy c: one token */
static void gemv(const ctx *c, size_t copy, int nrows) {
    const uint8_t *base = c->w + copy * (size_t)c->rows * c->row_bytes;
    const int one_stream = bg_cpu_one_stream();  /* the rows read as the engine reads them on this CPU */
    if (c->t->ternary) {
        /* as the engine: four rows at a time where the level has a kernel for it */
        bg_dot_i8_rows(bg_kernel_dot_i8(c->t, c->isa), bg_kernel_dot_i8_x4(c->t, c->isa), base, c->row_bytes, nrows,
                       &c->acts[0], c->y, one_stream);
    } else if (c->t->dot_q8k[0]) {
        /* in chunks of ~128 KiB, four rows at a time where the level has a kernel for it, as the engine decodes */
        const int chunk = (int)(BG_Q8K_ROWS_CHUNK_BYTES / c->row_bytes) & ~3;
        for (int r = 0; r < nrows; r += chunk)
            bg_dot_q8k_rows(bg_kernel_dot_q8k(c->t, c->isa), bg_kernel_dot_q8k_x4(c->t, c->isa),
                            base + (size_t)r * c->row_bytes, c->row_bytes, nrows - r < chunk ? nrows - r : chunk,
                            &c->xq, c->y + r, one_stream);
    } else {
        /* in chunks of ~128 KiB, four rows at a time where the level has a kernel for it, as the engine decodes */
        const int chunk = (int)(BG_Q8K_ROWS_CHUNK_BYTES / c->row_bytes) & ~3;
        for (int r = 0; r < nrows; r += chunk)
            bg_dot_f32_rows(bg_kernel_dot_f32(c->t, c->isa), bg_kernel_dot_f32_x4(c->t, c->isa),
                            base + (size_t)r * c->row_bytes, c->row_bytes, nrows - r < chunk ? nrows - r : chunk, c->x,
                            c->cols, c->y + r, one_stream);
    }
}

/* returns the tokens per row */
static int gemm(const ctx *c, int nrows) {
    bg_gemm_i8_fn gemm_i8 = bg_kernel_gemm_i8(c->t, c->isa, c->cols);
    if (gemm_i8) {
        gemm_i8(c->w, c->row_bytes, nrows, c->tiles, c->acts, BG_BENCH_GEMM_TOKENS, c->y, (size_t)c->rows);
        return BG_BENCH_GEMM_TOKENS;
    }
    bg_dot_i8_multi_fn multi = bg_kernel_dot_i8_multi(c->t, c->isa);
    bg_dot_i8_fn dot = bg_kernel_dot_i8(c->t, c->isa);
    for (int r = 0; r < nrows; r++) {
        const uint8_t *row = c->w + (size_t)r * c->row_bytes;
        if (multi) multi(row, c->acts, BG_BENCH_TOKENS, c->y + r, (size_t)c->rows);
        else
            for (int k = 0; k < BG_BENCH_TOKENS; k++) c->y[(size_t)k * c->rows + r] = dot(row, &c->acts[k]);
    }
    return BG_BENCH_TOKENS;
}

static void report(const char *kind, const ctx *c, const char *shape, double macs, double bytes, double secs) {
    printf("{\"kind\": \"%s\", \"type\": \"%s\", \"isa\": \"%s\", \"shape\": \"%s\", \"rows\": %d, \"cols\": %d, "
           "\"gmac_s\": %.2f, \"gb_s\": %.2f, \"secs\": %.3f}\n", kind, c->t->name, bg_isa_name(c->isa), shape, c->rows, c->cols,
           macs / secs * 1e-9, bytes / secs * 1e-9, secs);
    fflush(stdout);
}

/* TL2 read in place (not in the type table): valid random tiles (BK 96 and BM the largest multiple of 32 up to 256
 * that divides M: the converter's rule), the tile kernel for one token (tables built per token, as the engine does:
 * outside the timing), and the prompt GEMM where the level has one (else the tile kernel, BG_TL2_TOKENS tokens per
 * call). */
static void bench_tl2(double budget, const char *name, int M, int K, size_t dram_bytes) {
    int BM = 256;
    while (BM > 32 && M % BM) BM -= 32;
    const int BK = 96, K3 = K - K % BK;
    const size_t n_mag = (size_t)M * K3 / 6, n_sign = (size_t)M * K3 / 24, n_tail = (size_t)M * (K - K3) / 4;
    const size_t mat = n_mag + n_sign + n_tail;
    const size_t copies = mat >= dram_bytes ? 1 : (dram_bytes + mat - 1) / mat;
    uint8_t *data = malloc(copies * mat);
    for (size_t i = 0; i < n_mag; i++) data[i] = (uint8_t)((rnd() % 14) << 4 | rnd() % 14);
    for (size_t i = 0; i < n_sign; i++) data[n_mag + i] = (uint8_t)rnd();
    for (size_t i = 0; i < n_tail; i++) data[n_mag + n_sign + i] = (uint8_t)((rnd() % 9) << 4 | rnd() % 9);
    for (size_t k = 1; k < copies; k++) memcpy(data + k * mat, data, mat);
    bg_act acts[BG_BENCH_GEMM_TOKENS] = {0};
    int8_t *tiles = aligned_alloc(64, bg_gemm_tiles_bytes(K, BG_BENCH_GEMM_TOKENS));
    float *x = malloc((size_t)K * sizeof(float)), *y = malloc((size_t)M * BG_BENCH_GEMM_TOKENS * sizeof(float));
    int32_t *dots = malloc((size_t)BG_TL2_TOKENS * BM * sizeof(int32_t));
    uint8_t *codes = malloc(32 * bg_tl2_codes_ld(K));
    for (int k = 0; k < BG_BENCH_GEMM_TOKENS; k++) {
        for (int i = 0; i < K; i++) x[i] = ((float)(rnd() % 2001) - 1000.0f) / 100.0f;
        acts[k].q = aligned_alloc(64, ((size_t)K + 63) / 64 * 64);
        acts[k].gsum = malloc(((size_t)K / 32 + 1) * sizeof(int32_t));
        bg_quantize_act(x, K, &acts[k]);
        if (K % 64 == 0) bg_gemm_put_token(acts[k].q, K, k, tiles);
    }
    bg_tl2 w;
    for (int isa = 0; isa < BG_ISA_COUNT && M % BM == 0 && !bg_tl2_init(&w, data, M, K, BM, BK); isa++) {
        if (!bg_cpu_supports((bg_isa)isa) || !bg_tl2_in_place((bg_isa)isa)) continue;
        const size_t stride = bg_tl2_table_bytes((bg_isa)isa, K, BK);
        uint8_t *tables = malloc(BG_TL2_TOKENS * stride);
        for (int k = 0; k < BG_TL2_TOKENS; k++) bg_tl2_tables_kernel((bg_isa)isa)(acts[k].q, K, BK, tables + k * stride);
        const bg_tl2_tile_fn tile = bg_tl2_tile_kernel((bg_isa)isa);
        const bg_tl2_gemm_fn gemm = bg_tl2_gemm_kernel((bg_isa)isa, K);
        const char *kinds[3] = {"gemv_dram", "gemv_cache", "gemm"};
        for (int kind = 0; kind < 3; kind++) {
            const int tiles_per_pass = kind == 1 ? 1 : M / BM, tokens = kind < 2 ? 1 : gemm ? BG_BENCH_GEMM_TOKENS
                                                                                         : BG_TL2_TOKENS;
            size_t copy = 0, done = 0;
            double t0 = now(), t1;
            do {
                if (kind == 0) copy = (copy + 1) % copies;
                bg_tl2_init(&w, data + copy * mat, M, K, BM, BK);
                for (int mt = 0; mt < tiles_per_pass; mt++) {
                    if (kind == 2 && gemm)
                        gemm(&w, mt, codes, tiles, acts, tokens, y + (size_t)mt * BM, (size_t)M);
                    else
                        tile(&w, mt, tables, stride, tokens, dots);
                }
                done++;
            } while ((t1 = now()) - t0 < budget);
            const double rows = (double)done * tiles_per_pass * BM;
            printf("{\"kind\": \"%s\", \"type\": \"TL2\", \"isa\": \"%s\", \"shape\": \"%s\", \"rows\": %d, "
                   "\"cols\": %d, \"gmac_s\": %.2f, \"gb_s\": %.2f, \"secs\": %.3f}\n", kinds[kind],
                   bg_isa_name((bg_isa)isa), name, M, K, rows * K * tokens / (t1 - t0) * 1e-9,
                   rows / M * (double)mat / (t1 - t0) * 1e-9, t1 - t0);
            fflush(stdout);
        }
        free(tables);
    }
    for (int k = 0; k < BG_BENCH_GEMM_TOKENS; k++) free(acts[k].q), free(acts[k].gsum);
    free(data), free(tiles), free(x), free(y), free(dots), free(codes);
}

int main(int argc, char **argv) {
    double budget = argc > 1 ? atof(argv[1]) : 0.5;
    const char *only = argc > 2 ? argv[2] : NULL;
    const struct { const char *name; int rows, cols, head; } shapes[] = {
        {"attn_q/attn_output", 2560, 2560, 0}, {"attn_k/attn_v", 640, 2560, 0}, {"ffn_gate/ffn_up", 6912, 2560, 0},
        {"ffn_down", 2560, 6912, 0}, {"head (tied token_embd)", 128256, 2560, 1},
    };
    const int ids[] = {BG_TYPE_I2_S, BG_TYPE_TQ2_0, BG_TYPE_TQ1_0, BG_TYPE_I2_ROWS,
                       BG_TYPE_F16, BG_TYPE_BF16, BG_TYPE_Q8_0, BG_TYPE_Q6_K, BG_TYPE_Q5_K, BG_TYPE_Q4_K, BG_TYPE_Q4_0, BG_TYPE_F32};
    const size_t dram_bytes = (size_t)(argc > 3 ? atoi(argv[3]) : 256) << 20;
    for (size_t ti = 0; ti < sizeof ids / sizeof ids[0]; ti++) {
        const bg_type_traits *t = bg_type_traits_of(ids[ti]);
        if (!t || (only && strcmp(only, t->name))) continue;
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            if (shapes[si].head == t->ternary) continue;  /* ternary types for the linears, float for the head */
            ctx c = {0};
            c.t = t;
            c.rows = shapes[si].rows;
            c.cols = shapes[si].cols;
            c.row_bytes = bg_row_bytes(t, c.cols);
            size_t mat = (size_t)c.rows * c.row_bytes;
            c.copies = mat >= dram_bytes ? 1 : (dram_bytes + mat - 1) / mat;
            uint8_t *w = malloc(c.copies * mat + 64);
            if (!w) return 1;
            fill(t, w, (size_t)c.rows, c.row_bytes, c.cols);
            for (size_t k = 1; k < c.copies; k++) memcpy(w + k * mat, w, mat);
            c.w = w;
            c.acts = calloc(BG_BENCH_GEMM_TOKENS, sizeof(bg_act));
            c.tiles = aligned_alloc(64, bg_gemm_tiles_bytes(c.cols, BG_BENCH_GEMM_TOKENS));
            c.x = malloc((size_t)c.cols * sizeof(float));
            c.y = malloc((size_t)c.rows * BG_BENCH_GEMM_TOKENS * sizeof(float));
            for (int k = 0; k < BG_BENCH_GEMM_TOKENS; k++) {
                for (int i = 0; i < c.cols; i++) c.x[i] = ((float)(rnd() % 2001) - 1000.0f) / 100.0f;
                c.acts[k].q = aligned_alloc(64, ((size_t)c.cols + 63) / 64 * 64);
                c.acts[k].gsum = malloc(((size_t)c.cols / 32 + 1) * sizeof(int32_t));
                if (t->type_id == BG_TYPE_TQ1_0)  /* as the engine gives TQ1_0's kernels their input */
                    c.acts[k].tq1 = aligned_alloc(64, (size_t)c.cols / 256 * BG_TQ1_ORDER_BYTES);
                bg_quantize_act(c.x, c.cols, &c.acts[k]);
                if (c.cols % 64 == 0) bg_gemm_put_token(c.acts[k].q, c.cols, k, c.tiles);
            }
            c.xq.q = malloc((size_t)c.cols);
            c.xq.d = malloc(((size_t)c.cols / BG_QK_K + 1) * sizeof(float));
            c.xq.bsum = malloc(((size_t)c.cols / 16 + 1) * sizeof(int16_t));
            if (c.cols % BG_QK_K == 0) bg_quantize_q8k(c.x, c.cols, &c.xq);
            for (int isa = 0; isa < BG_ISA_COUNT; isa++) {
                if (!bg_cpu_supports((bg_isa)isa)) continue;
                c.isa = (bg_isa)isa;
                /* one token, streaming from memory */
                size_t copy = 0, done = 0;
                gemv(&c, 0, c.rows);
                double t0 = now(), t1;
                do {
                    copy = (copy + 1) % c.copies;
                    gemv(&c, copy, c.rows);
                    done++;
                } while ((t1 = now()) - t0 < budget);
                report("gemv_dram", &c, shapes[si].name, (double)done * c.rows * c.cols, (double)done * mat, t1 - t0);
                /* one token, 256 rows in cache */
                int hot = c.rows < 256 ? c.rows : 256;
                done = 0;
                gemv(&c, 0, hot);
                t0 = now();
                do {
                    for (int k = 0; k < 16; k++) gemv(&c, 0, hot);
                    done += 16;
                } while ((t1 = now()) - t0 < budget);
                report("gemv_cache", &c, shapes[si].name, (double)done * hot * c.cols, (double)done * hot * c.row_bytes,
                       t1 - t0);
                /* a batch of tokens per row (prompt processing) */
                if (t->ternary) {
                    done = 0;
                    const int tokens = gemm(&c, hot);
                    t0 = now();
                    do {
                        gemm(&c, hot);
                        done++;
                    } while ((t1 = now()) - t0 < budget);
                    report("gemm", &c, shapes[si].name, (double)done * hot * c.cols * tokens,
                           (double)done * hot * c.row_bytes, t1 - t0);
                }
            }
            for (int k = 0; k < BG_BENCH_GEMM_TOKENS; k++) free(c.acts[k].q), free(c.acts[k].gsum), free(c.acts[k].tq1);
            free(c.acts), free(c.tiles), free(c.x), free(c.y), free(w), free(c.xq.q), free(c.xq.d), free(c.xq.bsum);
        }
    }
    if (!only || !strcmp(only, "int8"))
        for (int isa = 0; isa < BG_ISA_COUNT; isa++) {
            const double peak = bg_int8_peak((bg_isa)isa, budget);
            if (peak > 0)
                printf("{\"kind\": \"int8_peak\", \"type\": \"int8\", \"isa\": \"%s\", \"shape\": \"-\", "
                       "\"gmac_s\": %.1f, \"gb_s\": 0, \"secs\": %.3f}\n", bg_isa_name((bg_isa)isa), peak * 1e-9, budget);
            fflush(stdout);  /* as report(): python -m bench.kernels shows rows as they come */
        }
    if (!only || !strcmp(only, "TL2"))
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            if (!shapes[si].head) bench_tl2(budget, shapes[si].name, shapes[si].rows, shapes[si].cols, dram_bytes);
    return 0;
}
