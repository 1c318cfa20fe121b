/* The C kernel table: one row per tensor type, with one function pointer per ISA level (like ggml's type_traits).
 *
 * Two kinds of matvec kernels:
 *  - dot_i8 (ternary types): the row times activations quantized once per token to int8 (bg_act). It returns the
 *    row's sum in "weight code units": for per-tensor-scale types (I2_S) the exact integer Σ(c−1)q as a float; for
 *    per-block-scale types (TQ2_0) Σ_b d_b·Σ_{i∈b}(c_i−1)q_i summed in double (exact), rounded once.
 *    The caller ends with y = dot / act.scale * tensor_scale (that order, f32, as the reference does).
 *  - dot_f32 (float types: F32, F16, BF16, Q8_0, Q4_0): the row dequantized on the fly times f32 activations.
 *  - dot_q8k (the K-quant heads Q6_K, Q5_K, Q4_K): the row's integer codes times activations quantized per 256 values
 *    to int8 (bg_q8k, ggml's Q8_K), as ggml computes these types: exact integer sums per block, then
 *    sum += (d_w * d_x) * isum [- (dmin_w * d_x) * isum_min] in block order in f32 (built with -ffp-contract=off), so
 *    every level gives bitwise the same value.
 * A NULL slot means "no kernel for this level": bg_kernel_* walks down to the nearest lower level of the same family
 * (avx512 -> avx2 -> scalar, neon_dotprod -> neon -> scalar). Every kernel must give the same result for the same
 * inputs regardless of threads; integer kernels give the same result at every level. The optional four-row kernels
 * (dot_i8_x4, dot_q8k_x4, dot_f32_x4: decode) give each row the one-row kernel's value and come from that kernel's
 * level.
 */
#ifndef BITGGUF_KERNELS_H
#define BITGGUF_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpu.h"

/* ggml type ids (the file's numbers) */
enum {
    BG_TYPE_F32 = 0,
    BG_TYPE_F16 = 1,
    BG_TYPE_Q4_0 = 2,
    BG_TYPE_Q8_0 = 8,
    BG_TYPE_Q4_K = 12,
    BG_TYPE_Q5_K = 13,
    BG_TYPE_Q6_K = 14,
    BG_TYPE_BF16 = 30,
    BG_TYPE_TQ1_0 = 34,
    BG_TYPE_TQ2_0 = 35,
    BG_TYPE_I2_S = 36,
    /* bitgguf-internal (never in files): the row-major layout TL1/TL2 tensors are repacked into at load time,
     * I2_S blocks then a tail of cols % 128 weights (see tlr_scalar.c) */
    BG_TYPE_I2_ROWS = 1036,
};

#define BG_I2S_BLOCK 128   /* weights per I2_S block: 32 bytes, byte b holds weights b, b+32, b+64, b+96 (MSB first) */
#define BG_TQ2_BLOCK 256   /* weights per TQ2_0 block: qs[64] then f16 d (66 bytes) */
#define BG_TQ1_BLOCK 256   /* weights per TQ1_0 block: qs[48], qh[4] (base-3 digits), then f16 d */
#define BG_TQ1_BYTES 54
#define BG_I2R_GRAIN 8     /* I2_ROWS rows are a multiple of 8 weights (2 bytes) long */
#define BG_Q8_0_BLOCK 32   /* weights per Q8_0 block: f16 d then int8 qs[32] (34 bytes) */
#define BG_Q6_K_BLOCK 256  /* weights per Q6_K block: ql[128], qh[64], int8 scales[16], f16 d (head_q6k_scalar.c) */
#define BG_Q6_K_BYTES 210
#define BG_Q4_0_BLOCK 32   /* weights per Q4_0 block: f16 d then qs[16] (two 4-bit codes per byte) */
#define BG_Q4_0_BYTES 18
#define BG_Q5_K_BYTES 176 /* Q5_K / Q4_K: 256 weights, f16 d, f16 dmin, scales[12], (qh[32]), qs[128] */
#define BG_Q4_K_BYTES 144
#define BG_ACT_GROUP 32    /* activation sums are kept per group of 32 values */

/* Activations of one token quantized to int8 (per-token absmax), shared by every ternary matvec on that input. */
typedef struct {
    int n;             /* number of values */
    float scale;       /* s = 127 / max(max|x|, 1e-5); q = round_half_even(x*s) clamped to [-128, 127] */
    int32_t sum;       /* Σq: I2_S kernels compute Σcq and subtract it (Σ(c−1)q = Σcq − Σq) */
    int8_t *q;         /* n values (the caller allocates, 64-byte aligned) */
    int32_t *gsum;     /* Σq per group of BG_ACT_GROUP values: ceil(n/32) values (per-block kernels add theirs) */
    int8_t *tq1;       /* NULL, or n / 256 * BG_TQ1_ORDER_BYTES bytes that the quantizers fill with q in TQ1_0's
                        * digit order (bg_tq1_order_act), which TQ1_0's AVX-512 one-row kernel then reads */
} bg_act;

/* TQ1_0's digit order: per block of 256 values, five 64-byte rows, row n holding the values that digit n of the
 * block's 52 bytes encodes, in byte order: values 32n..32n+31, 160+16n..160+16n+15, 240+4n..240+4n+3 (n < 4),
 * then zeros (tq1_scalar.c's layout). */
#define BG_TQ1_ORDER_BYTES 320
void bg_tq1_order_act(const int8_t *q, int n, int8_t *out);

/* Activations of one token for the K-quant heads (ggml's Q8_K): per 256 values x ~= d * q with d = m / -128, m the
 * value of largest |x| (the first on ties), q = min(127, round_half_even(x / d)); Σq per 16 values. */
#define BG_QK_K 256
typedef struct {
    int n;             /* number of values, a multiple of 256 */
    int8_t *q;         /* n values */
    float *d;          /* n / 256 scales */
    int16_t *bsum;     /* n / 16 sums of q */
} bg_q8k;

typedef float (*bg_dot_i8_fn)(const uint8_t *row, const bg_act *a);
/* dot_i8 of one row against n tokens' activations, out[t * stride] for t < n: the row is unpacked once per block
 * for several tokens (prompt processing). Same values as n calls of dot_i8. */
typedef void (*bg_dot_i8_multi_fn)(const uint8_t *row, const bg_act *acts, int n, float *out, size_t stride);
/* dot_i8 of 4 consecutive rows (row, row + row_bytes, ...) against one token, out[k] for k < 4 (decode): the
 * token's activations are loaded once for the 4 rows. Same values as 4 calls of dot_i8. */
typedef void (*bg_dot_i8_x4_fn)(const uint8_t *row, size_t row_bytes, const bg_act *a, float *out);
/* The prompt path's GEMM (AMX, AVX-512 VNNI): n_rows consecutive rows against n tokens whose activations
 * bg_gemm_put_token laid out as int8 tiles in `tiles`, out[t * stride + r] for r < n_rows, t < n. Same values as
 * dot_i8. The I2_S one serves I2_ROWS rows of whole blocks too (the same bytes). */
typedef void (*bg_gemm_i8_fn)(const uint8_t *rows, size_t row_bytes, int n_rows, const int8_t *tiles,
                              const bg_act *acts, int n, float *out, size_t stride);
typedef float (*bg_dot_f32_fn)(const void *row, const float *x, int n);
/* dot_f32 of 4 rows (row + k * stride bytes, k < 4) against one x, out[k], read side by side. Same values as 4 calls
 * of dot_f32. */
typedef void (*bg_dot_f32_x4_fn)(const void *row, size_t stride, const float *x, int n, float *out);
typedef void (*bg_to_float_fn)(const void *row, float *y, int n);
typedef void (*bg_axpy_fn)(const void *row, float a, float *y, int n);   /* y += a * row */
typedef float (*bg_dot_q8k_fn)(const void *row, const bg_q8k *x);
/* dot_q8k of 4 rows (row + k * stride, k < 4) against one token, out[k]: Σx, the lane sums and the f32 combine are
 * shared by the 4 rows. Same values as 4 calls of dot_q8k. */
typedef void (*bg_dot_q8k_x4_fn)(const void *row, size_t stride, const bg_q8k *x, float *out);

typedef struct {
    const char *name;
    int type_id;
    int block_size;           /* weights per block along a row */
    int block_bytes;          /* bytes per block */
    int ternary;              /* 1: dot_i8 over quantized activations; 0: dot_f32 or dot_q8k */
    int tensor_scale;         /* 1: one f32 scale stored after the packed data (I2_S) */
    bg_to_float_fn to_float;  /* row -> f32 (NULL for ternary types; the engine never needs it) */
    bg_dot_f32_fn dot_f32[BG_ISA_COUNT];
    bg_axpy_fn axpy[BG_ISA_COUNT];  /* KV-cache types only (F32, F16): attention's weighted sum of V rows */
    bg_dot_i8_fn dot_i8[BG_ISA_COUNT];
    bg_dot_i8_multi_fn dot_i8_multi[BG_ISA_COUNT];  /* optional: NULL = call dot_i8 per token */
    bg_dot_q8k_fn dot_q8k[BG_ISA_COUNT];            /* K-quant heads: instead of dot_f32 */
    bg_dot_i8_x4_fn dot_i8_x4[BG_ISA_COUNT];        /* optional: NULL = call dot_i8 row by row */
    bg_dot_q8k_x4_fn dot_q8k_x4[BG_ISA_COUNT];      /* optional: NULL = call dot_q8k row by row */
    bg_gemm_i8_fn gemm_i8[BG_ISA_COUNT];            /* optional: NULL = dot_i8_multi for a batch */
    bg_dot_f32_x4_fn dot_f32_x4[BG_ISA_COUNT];      /* optional: NULL = call dot_f32 row by row */
} bg_type_traits;

/* The row for a ggml type id, or NULL when bitgguf has no kernels for it. */
const bg_type_traits *bg_type_traits_of(int type_id);

/* The file types the table has kernels for, as "F32, F16, ..." (truncated to cap bytes). */
void bg_type_names(char *out, size_t cap);

/* Bytes of one row of `cols` weights (cols must be a multiple of the block size). */
size_t bg_row_bytes(const bg_type_traits *t, int cols);

/* The kernel for `isa`, or the nearest lower level of the same family that has one (NULL if none). */
bg_dot_i8_fn bg_kernel_dot_i8(const bg_type_traits *t, bg_isa isa);
bg_dot_f32_fn bg_kernel_dot_f32(const bg_type_traits *t, bg_isa isa);
bg_axpy_fn bg_kernel_axpy(const bg_type_traits *t, bg_isa isa);
bg_dot_q8k_fn bg_kernel_dot_q8k(const bg_type_traits *t, bg_isa isa);
/* The multi-token kernel of the level whose one-row kernel bg_kernel_dot_i8 returns (a lower level's would be slower
 * than this level's dot_i8); the AMX level, which has only GEMMs of its own, gets AVX-512's. */
bg_dot_i8_multi_fn bg_kernel_dot_i8_multi(const bg_type_traits *t, bg_isa isa);
/* The GEMM of exactly this level for rows of `cols` weights (NULL if none; I2_ROWS rows with a tail, cols % 128, are
 * not whole I2_S blocks and have none). */
bg_gemm_i8_fn bg_kernel_gemm_i8(const bg_type_traits *t, bg_isa isa, int cols);
/* The four-row kernel of the level whose one-row kernel bg_kernel_dot_i8 / bg_kernel_dot_q8k returns (or NULL). */
bg_dot_i8_x4_fn bg_kernel_dot_i8_x4(const bg_type_traits *t, bg_isa isa);
bg_dot_q8k_x4_fn bg_kernel_dot_q8k_x4(const bg_type_traits *t, bg_isa isa);
bg_dot_f32_x4_fn bg_kernel_dot_f32_x4(const bg_type_traits *t, bg_isa isa);
/* out[r] = dot_i8(row r, a) for r < n_rows consecutive rows of row_bytes: groups of four through dot4 where there is
 * one (the decode path), the rest through dot. one_stream (bg_cpu_one_stream): the rows front to back; else as two
 * halves read side by side. The outputs are the same either way. */
void bg_dot_i8_rows(bg_dot_i8_fn dot, bg_dot_i8_x4_fn dot4, const uint8_t *rows, size_t row_bytes, int n_rows,
                    const bg_act *a, float *out, int one_stream);
/* out[r] = dot_f32(row r, x) for r < n_rows consecutive rows of row_bytes (cols values each), one token: front to
 * back (one_stream), or as four quarters read side by side by dot4 (rows r, r + q, r + 2q, r + 3q for
 * q = n_rows / 4, the rest through dot), or without dot4 as two halves side by side. */
void bg_dot_f32_rows(bg_dot_f32_fn dot, bg_dot_f32_x4_fn dot4, const uint8_t *rows, size_t row_bytes, int n_rows,
                     const float *x, int cols, float *out, int one_stream);
/* out[r] = dot_q8k(row r, x) for r < n_rows consecutive rows of row_bytes: with dot4, four adjacent rows at a time
 * (one_stream) or the rows as four quarters read side by side (row r with rows r + q, r + 2q, r + 3q for
 * q = n_rows / 4); the rest through dot. */
void bg_dot_q8k_rows(bg_dot_q8k_fn dot, bg_dot_q8k_x4_fn dot4, const uint8_t *rows, size_t row_bytes, int n_rows,
                     const bg_q8k *x, float *out, int one_stream);
/* Weight bytes per call of bg_dot_q8k_rows for one token when dot4 is set: four quarters of 8 KiB are too short for
 * the hardware prefetcher (8 GB/s from DRAM, one core, against 11-12 at 128 KiB). */
#define BG_Q8K_ROWS_CHUNK_BYTES (128u << 10)

/* The GEMM's activation layout: tokens in tiles of 16, each tile's K values in chunks of 64 as 16 rows of 64 bytes,
 * row i holding values 4i..4i+3 of each of the 16 tokens (the 4-byte-interleaved "B" operand of AMX's
 * TDPBUSD): chunk kc of tile T at byte (T * K/64 + kc) * 1024. Buffers hold a whole number of tile pairs. */
#define BG_GEMM_TILE_TOKENS 16
static inline size_t bg_gemm_tiles_bytes(int cols, int n_tokens) {
    return (size_t)((n_tokens + 2 * BG_GEMM_TILE_TOKENS - 1) / (2 * BG_GEMM_TILE_TOKENS)) * 2 * BG_GEMM_TILE_TOKENS *
           (size_t)cols;
}
/* Token t's int8 activations q (cols values, a multiple of 64) into its place in the tiles. */
void bg_gemm_put_token(const int8_t *q, int cols, int t, int8_t *tiles);
/* The same for the n <= 16 tokens of tile `tile` (acts[0] is its first token; the rest of the tile is left zero),
 * AVX-512 (the levels with GEMMs): 16 x 16 transposes of 4-byte groups, each tile line written once, where one
 * token at a time writes 4 bytes into each of 16 lines per 64 values. */
void bg_gemm_put_tile_avx512(const bg_act *acts, int n, int tile, int8_t *tiles);

/* o = x / sqrt(mean(x^2) + eps) * w, the engine's RMSNorm: the sum of squares in double, in a fixed order (the
 * x86 helpers give the same bits); o may be x. */
void bg_rmsnorm(float *o, const float *x, const float *w, int n, float eps);

/* Quantize n activations to int8 (the reference's quantize_activations rule); fills a->scale, sum, q, gsum. */
void bg_quantize_act(const float *x, int n, bg_act *a);
/* The reference's scale for activations whose largest magnitude is amax, in f32: 127 / max(amax, 1e-5). */
static inline float bg_act_scale(float amax) { return 127.0f / (amax > 1e-5f ? amax : 1e-5f); }
/* bg_quantize_act from group g on, with scale s, the groups before it done (their sum: total); then a's n, scale,
 * sum and TQ1_0 digit order. The vector quantizers end with it. */
void bg_quantize_act_rest(const float *x, int n, float s, int g, int32_t total, bg_act *a);
/* Quantize n values (n % 256 == 0) to Q8_K; x->q, d, bsum must hold n, n / 256, n / 16 values. */
void bg_quantize_q8k(const float *x, int n, bg_q8k *out);

/* ---- converter-side quantizers (quant_k.c): n_blocks blocks of 256 floats, byte for byte ggml's reference ---- */
void bg_quantize_q6_k(const float *x, int64_t n_blocks, uint8_t *out);
void bg_quantize_q5_k(const float *x, int64_t n_blocks, uint8_t *out);
void bg_quantize_q4_k(const float *x, int64_t n_blocks, uint8_t *out);
/* BitNet's absmean rule on n weights (bf16 bits when bf16, else f32; ternarize.c): codes in {-1, 0, 1} and alpha =
 * mean|W| (W ~ codes * alpha). Returns -1, or the index of the first NaN or infinity (then nothing is written). */
int64_t bg_absmean_ternarize(const void *w, int bf16, int64_t n, int8_t *codes, float *alpha);

/* ---- f16 / bf16 <-> f32 (exact bit manipulation; f32 -> f16 rounds to nearest even, like numpy) ---- */

static inline float bg_bits_to_f32(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint32_t bg_f32_to_bits(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

static inline float bg_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0) {  /* zero or subnormal: mant * 2^-24 is exact in f32 */
        float v = (float)mant * 5.9604644775390625e-08f;
        return bg_bits_to_f32(bg_f32_to_bits(v) | sign);
    }
    if (exp == 31) return bg_bits_to_f32(sign | 0x7f800000u | (mant << 13));
    return bg_bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

static inline uint16_t bg_f32_to_f16(float f) {
    uint32_t x = bg_f32_to_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0); /* inf, nan */
    if (ax >= 0x477ff000u) return sign | 0x7c00;                                  /* rounds past 65504 */
    if (ax < 0x38800000u) {  /* below 2^-14: f16 subnormal (or the smallest normal when it rounds up) */
        float scaled = bg_bits_to_f32(ax) * 16777216.0f;  /* * 2^24, exact */
        uint32_t m = (uint32_t)scaled, frac_half = 0;
        float rem = scaled - (float)m;
        if (rem > 0.5f || (rem == 0.5f && (m & 1))) frac_half = 1;
        return sign | (uint16_t)(m + frac_half);
    }
    ax += 0xfffu + ((ax >> 13) & 1);  /* round to nearest even on the 13 dropped bits */
    return sign | (uint16_t)((ax - 0x38000000u) >> 13);
}

/* the f16 stored at p (block scales sit at unaligned offsets) */
static inline float bg_f16_at(const void *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return bg_f16_to_f32(h);
}

/* 1 when each of a row's nb blocks (TQ2_0, TQ1_0: the f16 scale in its last 2 bytes) has block 0's scale, bitwise:
 * the rows llama.cpp and the converter write. Σ_b d isum_b, which the scalar kernels add exactly in double (every
 * partial sum is d times an integer below 2^31: within 53 bits), is then d (Σcq - Σq) over the row, and the SIMD
 * kernels keep the whole row's sums in int32 lanes. */
static inline int bg_row_one_scale(const uint8_t *row, int nb, int block_bytes) {
    for (int b = 1; b < nb; b++)
        if (memcmp(row + (size_t)b * block_bytes + block_bytes - 2, row + block_bytes - 2, 2)) return 0;
    return 1;
}

static inline float bg_bf16_to_f32(uint16_t h) { return bg_bits_to_f32((uint32_t)h << 16); }

/* ---- kernels, one file per family x ISA (declared here, listed in the table in kernels.c) ---- */

float bg_i2s_dot_scalar(const uint8_t *row, const bg_act *a);
float bg_tq2_dot_scalar(const uint8_t *row, const bg_act *a);
float bg_tq1_dot_scalar(const uint8_t *row, const bg_act *a);
int32_t bg_tq1_block_isum(const uint8_t *blk, const int8_t *q, const int32_t *gsum);
float bg_i2r_dot_scalar(const uint8_t *row, const bg_act *a);
/* Σcq and Σq over an I2_ROWS row's tail of t weights (t % 8 == 0, t < 128); shared by every level */
void bg_i2r_tail(const uint8_t *tail, const int8_t *q, int t, int32_t *cq, int32_t *qsum);
float bg_f32_dot_scalar(const void *row, const float *x, int n);
float bg_f16_dot_scalar(const void *row, const float *x, int n);
float bg_bf16_dot_scalar(const void *row, const float *x, int n);
float bg_q8_0_dot_scalar(const void *row, const float *x, int n);
void bg_f32_to_float(const void *row, float *y, int n);
void bg_f16_to_float(const void *row, float *y, int n);
void bg_bf16_to_float(const void *row, float *y, int n);
void bg_q8_0_to_float(const void *row, float *y, int n);
float bg_q6_k_dot_q8k_scalar(const void *row, const bg_q8k *x);
void bg_q6_k_to_float(const void *row, float *y, int n);
void bg_q6_k_unpack(const uint8_t *blk, int8_t *q);  /* one block's 256 codes q - 32, in weight order */
float bg_q4_0_dot_scalar(const void *row, const float *x, int n);
void bg_q4_0_to_float(const void *row, float *y, int n);
float bg_q5_k_dot_q8k_scalar(const void *row, const bg_q8k *x);
float bg_q4_k_dot_q8k_scalar(const void *row, const bg_q8k *x);
void bg_q5_k_to_float(const void *row, float *y, int n);
void bg_q4_k_to_float(const void *row, float *y, int n);
void bg_k_scale_min(int j, const uint8_t *scales, int *sc, int *m);  /* Q4_K / Q5_K sub-block j's 6-bit pair */
void bg_f32_axpy(const void *row, float a, float *y, int n);
void bg_f16_axpy(const void *row, float a, float *y, int n);

#if defined(__x86_64__)
float bg_i2s_dot_avx2(const uint8_t *row, const bg_act *a);
void bg_i2s_dot_multi_avx2(const uint8_t *row, const bg_act *acts, int n, float *out, size_t stride);
void bg_i2s_dot_x4_avx2(const uint8_t *row, size_t row_bytes, const bg_act *a, float *out);
float bg_tq2_dot_avx2(const uint8_t *row, const bg_act *a);
void bg_tq2_dot_x4_avx2(const uint8_t *row, size_t row_bytes, const bg_act *a, float *out);
void bg_tq2_dot_multi_avx2(const uint8_t *row, const bg_act *acts, int n, float *out, size_t stride);
float bg_tq2_dot_avx512(const uint8_t *row, const bg_act *a);
float bg_tq1_dot_avx2(const uint8_t *row, const bg_act *a);
void bg_tq1_dot_multi_avx2(const uint8_t *row, const bg_act *acts, int n, float *out, size_t stride);
float bg_tq1_dot_avx512(const uint8_t *row, const bg_act *a);
void bg_tq1_dot_multi_avx512(const uint8_t *row, const bg_act *acts, int n, float *out, size_t stride);
float bg_i2r_dot_avx2(const uint8_t *row, const bg_act *a);
void bg_i2r_dot_x4_avx2(const uint8_t *row, size_t row_bytes, const bg_act *a, float *out);
void bg_i2r_dot_multi_avx2(const uint8_t *row, const bg_act *acts, int n, float *out, size_t stride);
float bg_i2r_dot_avx512(const uint8_t *row, const bg_act *a);
void bg_i2r_dot_multi_avx512(const uint8_t *row, const bg_act *acts, int n, float *out, size_t stride);
int32_t bg_i2r_tail_cq_avx2(const uint8_t *tail, const int8_t *q, int t);  /* t % 32 == 0 */
float bg_i2s_dot_avx512(const uint8_t *row, const bg_act *a);
void bg_i2s_dot_multi_avx512(const uint8_t *row, const bg_act *acts, int n, float *out, size_t stride);
void bg_tq1_gemm_amx(const uint8_t *rows, size_t row_bytes, int n_rows, const int8_t *tiles, const bg_act *acts,
                     int n, float *out, size_t stride);
void bg_tq2_gemm_amx(const uint8_t *rows, size_t row_bytes, int n_rows, const int8_t *tiles, const bg_act *acts,
                     int n, float *out, size_t stride);
void bg_i2s_gemm_amx(const uint8_t *rows, size_t row_bytes, int n_rows, const int8_t *tiles, const bg_act *acts,
                     int n, float *out, size_t stride);
void bg_i2s_gemm_avx512(const uint8_t *rows, size_t row_bytes, int n_rows, const int8_t *tiles, const bg_act *acts,
                        int n, float *out, size_t stride);
void bg_tq2_gemm_avx512(const uint8_t *rows, size_t row_bytes, int n_rows, const int8_t *tiles, const bg_act *acts,
                        int n, float *out, size_t stride);
void bg_tq1_gemm_avx512(const uint8_t *rows, size_t row_bytes, int n_rows, const int8_t *tiles, const bg_act *acts,
                        int n, float *out, size_t stride);
float bg_f32_dot_avx2(const void *row, const float *x, int n);
float bg_f16_dot_avx2(const void *row, const float *x, int n);
float bg_bf16_dot_avx2(const void *row, const float *x, int n);
float bg_f16_dot_avx512(const void *row, const float *x, int n);
float bg_bf16_dot_avx512(const void *row, const float *x, int n);
void bg_f16_dot_x4_avx512(const void *row, size_t stride, const float *x, int n, float *out);
void bg_bf16_dot_x4_avx512(const void *row, size_t stride, const float *x, int n, float *out);
float bg_q8_0_dot_avx2(const void *row, const float *x, int n);
float bg_q6_k_dot_q8k_avx2(const void *row, const bg_q8k *x);
float bg_q4_0_dot_avx2(const void *row, const float *x, int n);
float bg_q5_k_dot_q8k_avx2(const void *row, const bg_q8k *x);
float bg_q4_k_dot_q8k_avx2(const void *row, const bg_q8k *x);
void bg_q5_k_dot_q8k_x4_avx2(const void *row, size_t stride, const bg_q8k *x, float *out);
void bg_q4_k_dot_q8k_x4_avx2(const void *row, size_t stride, const bg_q8k *x, float *out);
float bg_q5_k_dot_q8k_avx512(const void *row, const bg_q8k *x);
float bg_q4_k_dot_q8k_avx512(const void *row, const bg_q8k *x);
void bg_q5_k_dot_q8k_x4_avx512(const void *row, size_t stride, const bg_q8k *x, float *out);
void bg_q4_k_dot_q8k_x4_avx512(const void *row, size_t stride, const bg_q8k *x, float *out);
void bg_f32_axpy_avx2(const void *row, float a, float *y, int n);
void bg_f16_axpy_avx2(const void *row, float a, float *y, int n);
#endif

#if defined(__aarch64__)
float bg_i2s_dot_neon(const uint8_t *row, const bg_act *a);
float bg_tq2_dot_neon(const uint8_t *row, const bg_act *a);
float bg_i2s_dot_neon_dotprod(const uint8_t *row, const bg_act *a);
void bg_i2s_dot_multi_neon_dotprod(const uint8_t *row, const bg_act *acts, int n, float *out, size_t stride);
float bg_tq2_dot_neon_dotprod(const uint8_t *row, const bg_act *a);
float bg_tq1_dot_neon(const uint8_t *row, const bg_act *a);
float bg_tq1_dot_neon_dotprod(const uint8_t *row, const bg_act *a);
float bg_i2r_dot_neon(const uint8_t *row, const bg_act *a);
float bg_i2r_dot_neon_dotprod(const uint8_t *row, const bg_act *a);
int32_t bg_i2r_tail_cq_neon(const uint8_t *tail, const int8_t *q, int t);  /* t % 32 == 0 */
float bg_f32_dot_neon(const void *row, const float *x, int n);
float bg_f16_dot_neon(const void *row, const float *x, int n);
float bg_q8_0_dot_neon(const void *row, const float *x, int n);
float bg_q6_k_dot_q8k_neon(const void *row, const bg_q8k *x);
float bg_q4_0_dot_neon(const void *row, const float *x, int n);
float bg_q5_k_dot_q8k_neon(const void *row, const bg_q8k *x);
float bg_q4_k_dot_q8k_neon(const void *row, const bg_q8k *x);
void bg_f32_axpy_neon(const void *row, float a, float *y, int n);
void bg_f16_axpy_neon(const void *row, float a, float *y, int n);
#endif

#endif
