/* The kernel table (one row per tensor type) and activation quantization. */
#include <math.h>
#include <stdio.h>

#include "kernels.h"

#if defined(__x86_64__)
#define X86(f) f
#else
#define X86(f) NULL
#endif
#if BG_BUILD_AMX
#define AMX(f) f
#else
#define AMX(f) NULL
#endif
#if defined(__aarch64__)
#define ARM(f) f
#else
#define ARM(f) NULL
#endif

/* slots: scalar, avx2, avx512, neon, neon_dotprod, amx (the bg_isa order; an empty slot falls to a lower level) */
static const bg_type_traits TYPE_TRAITS[] = {
    /* name, id, block, bytes, ternary, tensor_scale, to_float, dot_f32[isa], axpy[isa], dot_i8[isa],
     * dot_i8_multi[isa], dot_q8k[isa], dot_i8_x4[isa], dot_q8k_x4[isa], gemm_i8[isa], dot_f32_x4[isa] */
    {"F32", BG_TYPE_F32, 1, 4, 0, 0, bg_f32_to_float,
     {bg_f32_dot_scalar, X86(bg_f32_dot_avx2), NULL, ARM(bg_f32_dot_neon), NULL},
     {bg_f32_axpy, X86(bg_f32_axpy_avx2), NULL, ARM(bg_f32_axpy_neon), NULL}, {NULL}, {NULL}, {NULL}, {NULL}, {NULL},
     {NULL}, {NULL}},
    {"F16", BG_TYPE_F16, 1, 2, 0, 0, bg_f16_to_float,
     {bg_f16_dot_scalar, X86(bg_f16_dot_avx2), X86(bg_f16_dot_avx512), ARM(bg_f16_dot_neon), NULL},
     {bg_f16_axpy, X86(bg_f16_axpy_avx2), NULL, ARM(bg_f16_axpy_neon), NULL}, {NULL}, {NULL}, {NULL}, {NULL}, {NULL},
     {NULL}, {[BG_ISA_AVX512] = X86(bg_f16_dot_x4_avx512)}},
    {"BF16", BG_TYPE_BF16, 1, 2, 0, 0, bg_bf16_to_float,
     {bg_bf16_dot_scalar, X86(bg_bf16_dot_avx2), X86(bg_bf16_dot_avx512), NULL, NULL}, {NULL}, {NULL}, {NULL}, {NULL},
     {NULL}, {NULL}, {NULL}, {[BG_ISA_AVX512] = X86(bg_bf16_dot_x4_avx512)}},
    {"Q8_0", BG_TYPE_Q8_0, BG_Q8_0_BLOCK, 34, 0, 0, bg_q8_0_to_float,
     {bg_q8_0_dot_scalar, X86(bg_q8_0_dot_avx2), NULL, ARM(bg_q8_0_dot_neon), NULL}, {NULL}, {NULL}, {NULL}, {NULL},
     {NULL}, {NULL}, {NULL}, {NULL}},
    /* smaller heads (head_q6k_*.c); the K-quants take Q8_K activations, as in ggml */
    {"Q6_K", BG_TYPE_Q6_K, BG_Q6_K_BLOCK, BG_Q6_K_BYTES, 0, 0, bg_q6_k_to_float, {NULL}, {NULL}, {NULL}, {NULL},
     {bg_q6_k_dot_q8k_scalar, X86(bg_q6_k_dot_q8k_avx2), NULL, ARM(bg_q6_k_dot_q8k_neon), NULL}, {NULL}, {NULL}, {NULL},
     {NULL}},
    {"Q4_0", BG_TYPE_Q4_0, BG_Q4_0_BLOCK, BG_Q4_0_BYTES, 0, 0, bg_q4_0_to_float,
     {bg_q4_0_dot_scalar, X86(bg_q4_0_dot_avx2), NULL, ARM(bg_q4_0_dot_neon), NULL}, {NULL}, {NULL}, {NULL}, {NULL},
     {NULL}, {NULL}, {NULL}, {NULL}},
    {"Q5_K", BG_TYPE_Q5_K, BG_QK_K, BG_Q5_K_BYTES, 0, 0, bg_q5_k_to_float, {NULL}, {NULL}, {NULL}, {NULL},
     {bg_q5_k_dot_q8k_scalar, X86(bg_q5_k_dot_q8k_avx2), X86(bg_q5_k_dot_q8k_avx512), ARM(bg_q5_k_dot_q8k_neon), NULL},
     {NULL}, {NULL, X86(bg_q5_k_dot_q8k_x4_avx2), X86(bg_q5_k_dot_q8k_x4_avx512), NULL, NULL}, {NULL}, {NULL}},
    {"Q4_K", BG_TYPE_Q4_K, BG_QK_K, BG_Q4_K_BYTES, 0, 0, bg_q4_k_to_float, {NULL}, {NULL}, {NULL}, {NULL},
     {bg_q4_k_dot_q8k_scalar, X86(bg_q4_k_dot_q8k_avx2), X86(bg_q4_k_dot_q8k_avx512), ARM(bg_q4_k_dot_q8k_neon), NULL},
     {NULL}, {NULL, X86(bg_q4_k_dot_q8k_x4_avx2), X86(bg_q4_k_dot_q8k_x4_avx512), NULL, NULL}, {NULL}, {NULL}},
    {"I2_S", BG_TYPE_I2_S, BG_I2S_BLOCK, 32, 1, 1, NULL, {NULL}, {NULL},
     {bg_i2s_dot_scalar, X86(bg_i2s_dot_avx2), X86(bg_i2s_dot_avx512), ARM(bg_i2s_dot_neon),
      ARM(bg_i2s_dot_neon_dotprod)},
     {NULL, X86(bg_i2s_dot_multi_avx2), X86(bg_i2s_dot_multi_avx512), NULL, ARM(bg_i2s_dot_multi_neon_dotprod)},
     {NULL}, {NULL, X86(bg_i2s_dot_x4_avx2), NULL, NULL, NULL}, {NULL},
     {[BG_ISA_AVX512] = X86(bg_i2s_gemm_avx512), [BG_ISA_AMX] = AMX(bg_i2s_gemm_amx)}, {NULL}},
    {"TQ2_0", BG_TYPE_TQ2_0, BG_TQ2_BLOCK, 66, 1, 0, NULL, {NULL}, {NULL},
     {bg_tq2_dot_scalar, X86(bg_tq2_dot_avx2), X86(bg_tq2_dot_avx512), ARM(bg_tq2_dot_neon),
      ARM(bg_tq2_dot_neon_dotprod)},
     {NULL, X86(bg_tq2_dot_multi_avx2), NULL, NULL, NULL}, {NULL}, {NULL, X86(bg_tq2_dot_x4_avx2), NULL, NULL, NULL},
     {NULL}, {[BG_ISA_AVX512] = X86(bg_tq2_gemm_avx512), [BG_ISA_AMX] = AMX(bg_tq2_gemm_amx)}, {NULL}},
    {"TQ1_0", BG_TYPE_TQ1_0, BG_TQ1_BLOCK, BG_TQ1_BYTES, 1, 0, NULL, {NULL}, {NULL},
     {bg_tq1_dot_scalar, X86(bg_tq1_dot_avx2), X86(bg_tq1_dot_avx512), ARM(bg_tq1_dot_neon),
      ARM(bg_tq1_dot_neon_dotprod)},
     {NULL, X86(bg_tq1_dot_multi_avx2), X86(bg_tq1_dot_multi_avx512), NULL, NULL}, {NULL}, {NULL}, {NULL},
     {[BG_ISA_AVX512] = X86(bg_tq1_gemm_avx512), [BG_ISA_AMX] = AMX(bg_tq1_gemm_amx)}, {NULL}},
    /* TL1 / TL2 after the load-time repack (tlr.c): I2_S blocks plus a short tail, 2 bits per weight */
    {"I2_ROWS", BG_TYPE_I2_ROWS, BG_I2R_GRAIN, BG_I2R_GRAIN / 4, 1, 1, NULL, {NULL}, {NULL},
     {bg_i2r_dot_scalar, X86(bg_i2r_dot_avx2), X86(bg_i2r_dot_avx512), ARM(bg_i2r_dot_neon),
      ARM(bg_i2r_dot_neon_dotprod)},
     {NULL, X86(bg_i2r_dot_multi_avx2), X86(bg_i2r_dot_multi_avx512), NULL, NULL}, {NULL},
     {NULL, X86(bg_i2r_dot_x4_avx2), NULL, NULL, NULL},
     {NULL},
     /* the I2_S GEMM: rows of whole blocks (bg_kernel_gemm_i8) */
     {[BG_ISA_AVX512] = X86(bg_i2s_gemm_avx512), [BG_ISA_AMX] = AMX(bg_i2s_gemm_amx)}, {NULL}},
};

const bg_type_traits *bg_type_traits_of(int type_id) {
    for (size_t i = 0; i < sizeof TYPE_TRAITS / sizeof TYPE_TRAITS[0]; i++)
        if (TYPE_TRAITS[i].type_id == type_id) return &TYPE_TRAITS[i];
    return NULL;
}

void bg_type_names(char *out, size_t cap) {
    size_t used = 0;
    out[0] = 0;
    for (size_t i = 0; i < sizeof TYPE_TRAITS / sizeof TYPE_TRAITS[0] && used < cap; i++) {
        if (TYPE_TRAITS[i].type_id >= 1000) continue;  /* internal layouts are never in files */
        int n = snprintf(out + used, cap - used, "%s%s", used ? ", " : "", TYPE_TRAITS[i].name);
        if (n < 0) break;
        used += (size_t)n;
    }
}

size_t bg_row_bytes(const bg_type_traits *t, int cols) {
    return (size_t)(cols / t->block_size) * (size_t)t->block_bytes;
}

/* The next lower level to try when a slot is empty. */
static int lower_isa(int isa) {
    switch (isa) {
    case BG_ISA_AMX: return BG_ISA_AVX512;
    case BG_ISA_AVX512: return BG_ISA_AVX2;
    case BG_ISA_NEON_DOTPROD: return BG_ISA_NEON;
    case BG_ISA_SCALAR: return -1;
    default: return BG_ISA_SCALAR;
    }
}

bg_dot_i8_fn bg_kernel_dot_i8(const bg_type_traits *t, bg_isa isa) {
    for (int i = (int)isa; i >= 0; i = lower_isa(i))
        if (t->dot_i8[i]) return t->dot_i8[i];
    return NULL;
}

bg_dot_f32_fn bg_kernel_dot_f32(const bg_type_traits *t, bg_isa isa) {
    for (int i = (int)isa; i >= 0; i = lower_isa(i))
        if (t->dot_f32[i]) return t->dot_f32[i];
    return NULL;
}

bg_axpy_fn bg_kernel_axpy(const bg_type_traits *t, bg_isa isa) {
    for (int i = (int)isa; i >= 0; i = lower_isa(i))
        if (t->axpy[i]) return t->axpy[i];
    return NULL;
}

bg_dot_q8k_fn bg_kernel_dot_q8k(const bg_type_traits *t, bg_isa isa) {
    for (int i = (int)isa; i >= 0; i = lower_isa(i))
        if (t->dot_q8k[i]) return t->dot_q8k[i];
    return NULL;
}

bg_dot_i8_multi_fn bg_kernel_dot_i8_multi(const bg_type_traits *t, bg_isa isa) {
    for (int i = (int)isa; i >= 0; i = lower_isa(i))
        if (t->dot_i8[i]) return t->dot_i8_multi[i];
    return NULL;
}

bg_gemm_i8_fn bg_kernel_gemm_i8(const bg_type_traits *t, bg_isa isa, int cols) {
    if (t->type_id == BG_TYPE_I2_ROWS && cols % BG_I2S_BLOCK) return NULL;
    return t->gemm_i8[isa];
}

void bg_gemm_put_token(const int8_t *q, int cols, int t, int8_t *tiles) {
    const int chunks = cols / 64, tile = t / BG_GEMM_TILE_TOKENS, col = t % BG_GEMM_TILE_TOKENS;
    for (int kc = 0; kc < chunks; kc++) {
        int8_t *dst = tiles + ((size_t)tile * chunks + kc) * 1024 + 4 * col;
        for (int i = 0; i < 16; i++) memcpy(dst + 64 * i, q + 64 * kc + 4 * i, 4);
    }
}

/* A four-row kernel comes from the level whose one-row kernel runs: a lower level's could be slower than this
 * level's one-row kernel (AVX2's four-row I2_S against AVX-512 VNNI's one row), and a K-quant head that runs AVX2's
 * one-row kernel on an AVX-512 machine gets AVX2's four-row kernel too. */
bg_dot_i8_x4_fn bg_kernel_dot_i8_x4(const bg_type_traits *t, bg_isa isa) {
    for (int i = (int)isa; i >= 0; i = lower_isa(i))
        if (t->dot_i8[i]) return t->dot_i8_x4[i];
    return NULL;
}

bg_dot_q8k_x4_fn bg_kernel_dot_q8k_x4(const bg_type_traits *t, bg_isa isa) {
    for (int i = (int)isa; i >= 0; i = lower_isa(i))
        if (t->dot_q8k[i]) return t->dot_q8k_x4[i];
    return NULL;
}

bg_dot_f32_x4_fn bg_kernel_dot_f32_x4(const bg_type_traits *t, bg_isa isa) {
    for (int i = (int)isa; i >= 0; i = lower_isa(i))
        if (t->dot_f32[i]) return t->dot_f32_x4[i];
    return NULL;
}

void bg_dot_i8_rows(bg_dot_i8_fn dot, bg_dot_i8_x4_fn dot4, const uint8_t *rows, size_t row_bytes, int n_rows,
                    const bg_act *a, float *out, int one_stream) {
    /* two halves side by side unless one_stream: two sequential streams keep more of memory's latency covered than
     * one on Intel (one AVX-512 core, I2_S rows from DRAM: 12.3 -> 15.6 GB/s, about what plain vector loads get) */
    const int g = dot4 ? 4 : 1, half = one_stream ? 0 : n_rows / (2 * g) * g;
    const uint8_t *second = rows + (size_t)half * row_bytes;
    for (int r = 0; r < half; r += g) {
        if (dot4) {
            dot4(rows + (size_t)r * row_bytes, row_bytes, a, out + r);
            dot4(second + (size_t)r * row_bytes, row_bytes, a, out + half + r);
        } else {
            out[r] = dot(rows + (size_t)r * row_bytes, a);
            out[half + r] = dot(second + (size_t)r * row_bytes, a);
        }
    }
    int r = 2 * half;
    if (dot4)
        for (; r + 4 <= n_rows; r += 4) dot4(rows + (size_t)r * row_bytes, row_bytes, a, out + r);
    for (; r < n_rows; r++) out[r] = dot(rows + (size_t)r * row_bytes, a);
}

void bg_dot_f32_rows(bg_dot_f32_fn dot, bg_dot_f32_x4_fn dot4, const uint8_t *rows, size_t row_bytes, int n_rows,
                     const float *x, int cols, float *out, int one_stream) {
    if (dot4 && !one_stream) {
        /* Quarters, four streams interleaved 128 bytes at a time: a head row is 5 KiB (2B4T, F16), so two halves
         * read a row after a row were one stream at a time for 5 KiB. Sapphire Rapids VM, F16 rows of 1 GiB from
         * DRAM: one core 13.4-14.2 -> 15.0-15.8 GB/s, two 28.2-28.9 -> 31.9-34.4; in 2B4T's decode at 2 threads
         * the head 25.1 -> 28.6-28.8 GB/s. one_stream (AMD) keeps reading a row at a time. */
        const int q = n_rows / 4;
        const size_t stride = (size_t)q * row_bytes;
        float o[4];
        for (int r = 0; r < q; r++) {
            dot4(rows + (size_t)r * row_bytes, stride, x, cols, o);
            for (int k = 0; k < 4; k++) out[k * q + r] = o[k];
        }
        for (int r = 4 * q; r < n_rows; r++) out[r] = dot(rows + (size_t)r * row_bytes, x, cols);
        return;
    }
    const int half = one_stream ? 0 : n_rows / 2;  /* two halves side by side, as bg_dot_i8_rows */
    for (int r = 0; r < half; r++) {
        out[r] = dot(rows + (size_t)r * row_bytes, x, cols);
        out[half + r] = dot(rows + (size_t)(half + r) * row_bytes, x, cols);
    }
    for (int r = 2 * half; r < n_rows; r++) out[r] = dot(rows + (size_t)r * row_bytes, x, cols);
}

void bg_dot_q8k_rows(bg_dot_q8k_fn dot, bg_dot_q8k_x4_fn dot4, const uint8_t *rows, size_t row_bytes, int n_rows,
                     const bg_q8k *x, float *out, int one_stream) {
    int r = 0;
    if (dot4 && one_stream) {
        for (; r + 4 <= n_rows; r += 4) dot4(rows + (size_t)r * row_bytes, row_bytes, x, out + r);
    } else if (dot4 && n_rows >= 4) {
        /* Quarters, not four adjacent rows: adjacent head rows (1.7 KiB for Q5_K at 2B4T's width) would be four
         * short streams, which Intel's hardware prefetcher does not follow (5-7 GB/s from DRAM against 11 for one
         * row at a time); four quarters are four long sequential streams (11-12 GB/s, one core). */
        const int q = n_rows / 4;
        const size_t stride = (size_t)q * row_bytes;
        float o[4];
        for (; r < q; r++) {
            dot4(rows + (size_t)r * row_bytes, stride, x, o);
            for (int k = 0; k < 4; k++) out[k * q + r] = o[k];
        }
        r = 4 * q;
    }
    for (; r < n_rows; r++) out[r] = dot(rows + (size_t)r * row_bytes, x);
}

/* o = x / sqrt(mean(x^2) + eps) * w (the sum of squares in double: long rows, and o may alias x). */
void bg_rmsnorm(float *o, const float *x, const float *w, int n, float eps) {
    /* sixteen running sums (s[k]: values k, k + 16, ...; the rest into s[0]), combined in a fixed order, so every
     * run and level gives the same value: one chain of dependent double adds was ~4 cycles per value, four chains
     * ~0.75 (the norms were 2% of a prompt); sixteen are four chains of AVX2 vectors */
    double s[16] = {0.0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) s[k] += (double)x[i + k] * x[i + k];
    for (; i < n; i++) s[0] += (double)x[i] * x[i];
    double t[4];
    for (int k = 0; k < 4; k++) t[k] = (s[k] + s[k + 8]) + (s[k + 4] + s[k + 12]);
    const double ss = (t[0] + t[1]) + (t[2] + t[3]);
    float inv = 1.0f / sqrtf((float)(ss / n) + eps);
    if (o == x)  /* in place through one pointer: otherwise the overlap check sends the loop to its scalar copy */
        for (i = 0; i < n; i++) o[i] = o[i] * inv * w[i];
    else
        for (i = 0; i < n; i++) o[i] = x[i] * inv * w[i];
}

void bg_quantize_act(const float *x, int n, bg_act *a) {
    float amax = 0.0f;
    for (int i = 0; i < n; i++) {
        float v = fabsf(x[i]);
        if (v > amax) amax = v;
    }
    bg_quantize_act_rest(x, n, bg_act_scale(amax), 0, 0, a);
}

void bg_quantize_act_rest(const float *x, int n, float s, int g, int32_t total, bg_act *a) {
    for (; g * BG_ACT_GROUP < n; g++) {
        int end = (g + 1) * BG_ACT_GROUP < n ? (g + 1) * BG_ACT_GROUP : n;
        int32_t gs = 0;
        for (int i = g * BG_ACT_GROUP; i < end; i++) {
            float r = nearbyintf(x[i] * s);  /* round half to even (the default rounding mode) */
            int v = r > 127.0f ? 127 : r < -128.0f ? -128 : (int)r;
            a->q[i] = (int8_t)v;
            gs += v;
        }
        a->gsum[g] = gs;
        total += gs;
    }
    a->n = n;
    a->scale = s;
    a->sum = total;
    if (a->tq1) bg_tq1_order_act(a->q, n, a->tq1);
}

void bg_quantize_q8k(const float *x, int n, bg_q8k *out) {
    for (int b = 0; b < n / BG_QK_K; b++) {
        const float *xb = x + (size_t)b * BG_QK_K;
        int8_t *q = out->q + (size_t)b * BG_QK_K;
        float amax = 0.0f, max = 0.0f;
        for (int i = 0; i < BG_QK_K; i++) {
            float ax = fabsf(xb[i]);
            if (ax > amax) amax = ax, max = xb[i];
        }
        if (amax == 0.0f) {
            out->d[b] = 0.0f;
            memset(q, 0, BG_QK_K);
            memset(out->bsum + (size_t)b * (BG_QK_K / 16), 0, BG_QK_K / 16 * sizeof(int16_t));
            continue;
        }
        /* ggml's rule: the extreme value maps to -128, so the rest of the range is [-128, 127] */
        const float iscale = -128.0f / max;
        for (int g = 0; g < BG_QK_K / 16; g++) {
            int sum = 0;
            for (int i = 16 * g; i < 16 * g + 16; i++) {
                float r = nearbyintf(iscale * xb[i]);
                int v = r > 127.0f ? 127 : (int)r;
                q[i] = (int8_t)v;
                sum += v;
            }
            out->bsum[(size_t)b * (BG_QK_K / 16) + g] = (int16_t)sum;
        }
        out->d[b] = 1.0f / iscale;
    }
    out->n = n;
}
