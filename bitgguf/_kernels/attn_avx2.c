/* Attention at the x86 AVX2 levels, for a block of query rows that share one KV head (see engine_avx2.h).
 *
 * The scores Q·Kᵀ and the weighted sums P·V are small register-blocked matrix products: up to 6 rows (query heads
 * of one or more tokens) x 16 columns (AVX-512: up to 8 rows, and up to 8 vectors of 16 columns for few rows), one
 * broadcast of a row value and one fused multiply-add per column vector. The K cache is kept in tiles of BG_K_TILE
 * positions per dimension (dimension-major), so that 16 keys' values of one dimension are one vector load; V rows
 * are read as they are (one KV head's one after the other), a chunk of positions at a time from L1 for all rows.
 *
 * Each output is the same chain of operations whatever the block: a score is one fused multiply-add per dimension
 * in order, a softmax depends only on its row, and an output element adds its weighted V rows in position order.
 * So a prompt gives bitwise the logits of the same tokens fed one at a time.
 */
#include "engine_avx2.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif
#include "x86_avx2.h"

#define CHUNK BG_ATT_CHUNK
#define MAX_R 6 /* rows per register block: 6 x 2 accumulators + 2 loads + 1 broadcast of 16 registers */
#define KEY_VECTORS (BG_K_TILE / 16) /* vectors of 16 keys in a tile of the K cache */
_Static_assert(BG_K_TILE % CHUNK == 0, "a chunk of V positions lies in one block of the cache");
#define MIN_INT(a, b) ((a) < (b) ? (a) : (b))

/* 16 consecutive cache elements (F16 or F32) as two f32 vectors */
static inline __attribute__((always_inline)) void load16(const uint8_t *p, int f16, __m256 *lo, __m256 *hi) {
    if (f16) {
        const __m256i h = _mm256_loadu_si256((const __m256i *)p);
        *lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
        *hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
    } else {
        *lo = _mm256_loadu_ps((const float *)p);
        *hi = _mm256_loadu_ps((const float *)p + 8);
    }
}

/* c[r][0..16) = (accumulate ? c[r][0..16) : 0) + Σ_k a[r][k] * B_k[0..16), for r < R, where B_k is 16 cache
 * elements at b + k * ldb elements: the one kernel of both products. R and f16 are constants in each inlined copy,
 * so the accumulators stay in registers. */
static inline __attribute__((always_inline)) void rows_x16(const int R, const int f16, const float *const *a, int K,
                                                           const uint8_t *b, size_t ldb, float *const *c,
                                                           int accumulate) {
    const size_t step = ldb * (f16 ? 2 : 4);
    __m256 acc[MAX_R][2];
    for (int r = 0; r < R; r++) {
        acc[r][0] = accumulate ? _mm256_loadu_ps(c[r]) : _mm256_setzero_ps();
        acc[r][1] = accumulate ? _mm256_loadu_ps(c[r] + 8) : _mm256_setzero_ps();
    }
    for (int k = 0; k < K; k++, b += step) {
        __m256 b0, b1;
        load16(b, f16, &b0, &b1);
        for (int r = 0; r < R; r++) {
            const __m256 x = _mm256_broadcast_ss(a[r] + k);
            acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
        }
    }
    for (int r = 0; r < R; r++) {
        _mm256_storeu_ps(c[r], acc[r][0]);
        _mm256_storeu_ps(c[r] + 8, acc[r][1]);
    }
}

/* The same for 32 columns (two vectors of 16, vstride bytes apart) and one or two rows: 8 independent sums where
 * rows_x16 has 4 per row pair, and a pass reads a whole 64-byte line of each F16 row. The sums are named variables:
 * as an array GCC 12 stored all eight back to the stack on every k. */
static inline __attribute__((always_inline)) void rows_x32(const int R, const int f16, const float *const *a, int K,
                                                           const uint8_t *b, size_t ldb, size_t vstride,
                                                           float *const *c, int accumulate) {
    const size_t step = ldb * (f16 ? 2 : 4);
    const float *c0 = c[0], *c1 = c[R - 1];
    __m256 s0 = accumulate ? _mm256_loadu_ps(c0) : _mm256_setzero_ps();
    __m256 s1 = accumulate ? _mm256_loadu_ps(c0 + 8) : _mm256_setzero_ps();
    __m256 s2 = accumulate ? _mm256_loadu_ps(c0 + 16) : _mm256_setzero_ps();
    __m256 s3 = accumulate ? _mm256_loadu_ps(c0 + 24) : _mm256_setzero_ps();
    __m256 t0 = accumulate ? _mm256_loadu_ps(c1) : _mm256_setzero_ps();
    __m256 t1 = accumulate ? _mm256_loadu_ps(c1 + 8) : _mm256_setzero_ps();
    __m256 t2 = accumulate ? _mm256_loadu_ps(c1 + 16) : _mm256_setzero_ps();
    __m256 t3 = accumulate ? _mm256_loadu_ps(c1 + 24) : _mm256_setzero_ps();
    for (int k = 0; k < K; k++, b += step) {
        __m256 v0, v1, v2, v3;
        load16(b, f16, &v0, &v1);
        load16(b + vstride, f16, &v2, &v3);
        const __m256 x = _mm256_broadcast_ss(a[0] + k);
        s0 = _mm256_fmadd_ps(x, v0, s0), s1 = _mm256_fmadd_ps(x, v1, s1);
        s2 = _mm256_fmadd_ps(x, v2, s2), s3 = _mm256_fmadd_ps(x, v3, s3);
        if (R == 2) {
            const __m256 y = _mm256_broadcast_ss(a[1] + k);
            t0 = _mm256_fmadd_ps(y, v0, t0), t1 = _mm256_fmadd_ps(y, v1, t1);
            t2 = _mm256_fmadd_ps(y, v2, t2), t3 = _mm256_fmadd_ps(y, v3, t3);
        }
    }
    _mm256_storeu_ps(c[0], s0), _mm256_storeu_ps(c[0] + 8, s1);
    _mm256_storeu_ps(c[0] + 16, s2), _mm256_storeu_ps(c[0] + 24, s3);
    if (R == 2) {
        _mm256_storeu_ps(c[1], t0), _mm256_storeu_ps(c[1] + 8, t1);
        _mm256_storeu_ps(c[1] + 16, t2), _mm256_storeu_ps(c[1] + 24, t3);
    }
}

#define ROWS_CASES(F)                                                                                                  \
    if (R <= 2 && nv >= 2) {                                                                                          \
        if (R == 1)                                                                                                   \
            rows_x32(1, F, a, K, b, ldb, vstride, c, accumulate);                                                     \
        else                                                                                                          \
            rows_x32(2, F, a, K, b, ldb, vstride, c, accumulate);                                                     \
        return 2;                                                                                                     \
    }                                                                                                                 \
    switch (R) {                                                                                                      \
    case 1: rows_x16(1, F, a, K, b, ldb, c, accumulate); break;                                                       \
    case 2: rows_x16(2, F, a, K, b, ldb, c, accumulate); break;                                                       \
    case 3: rows_x16(3, F, a, K, b, ldb, c, accumulate); break;                                                       \
    case 4: rows_x16(4, F, a, K, b, ldb, c, accumulate); break;                                                       \
    case 5: rows_x16(5, F, a, K, b, ldb, c, accumulate); break;                                                       \
    default: rows_x16(6, F, a, K, b, ldb, c, accumulate); break;                                                      \
    }

/* One register block of rows against nv column vectors, vstride bytes apart (c[r] + 16 v for vector v): AVX-512's
 * kernel where the block asks for it (as many vectors at once as its registers hold), else AVX2's, one vector (two
 * at once measured slower: 2B4T decode at 2048 positions, 17.8 -> 16.0 tok/s). Returns how many vectors it did. */
static int row_block(const bg_attn_block *blk, int R, int nv, const float *const *a, int K, const uint8_t *b,
                     size_t ldb, size_t vstride, float *const *c, int accumulate) {
    if (blk->avx512) return bg_attn_cols_avx512(R, nv, blk->kv_f16, a, K, b, ldb, vstride, c, accumulate);
    if (blk->kv_f16) {
        ROWS_CASES(1)
    } else {
        ROWS_CASES(0)
    }
    return 1;
}
#undef ROWS_CASES

/* x[0..n) = softmax(x[0..n) / div), and x[n..n_zero) = 0. Lanes past n in the last vector read -inf, so the max,
 * the exponentials and the 8 lane sums depend on n and the row only. */
static void softmax_row(float *x, int n, int n_zero, float div) {
    const __m256 vdiv = _mm256_set1_ps(div), ninf = _mm256_set1_ps(-INFINITY);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 vmax = ninf;
    for (int i = 0; i < n; i += 8) {
        const __m256 valid = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n - i), lane));
        const __m256 s = _mm256_blendv_ps(ninf, _mm256_div_ps(_mm256_loadu_ps(x + i), vdiv), valid);
        _mm256_storeu_ps(x + i, s);  /* x's rows are padded to 16 floats */
        vmax = _mm256_max_ps(vmax, s);
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const __m256 mx = _mm256_set1_ps(_mm_cvtss_f32(m4));
    __m256 vsum = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) {
        const __m256 e = bg_exp_f32x8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mx));  /* exp(-inf) = 0 */
        _mm256_storeu_ps(x + i, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    const __m256 sum = _mm256_set1_ps(bg_hsum_f32x8(vsum));
    for (int i = 0; i < n; i += 8) _mm256_storeu_ps(x + i, _mm256_div_ps(_mm256_loadu_ps(x + i), sum));
    for (int i = n; i < n_zero; i++) x[i] = 0.0f;
}

/* What the three parts below share: the block's rows (row r: token r / group, query head r % group), where they
 * live, and their split into register blocks of at most max_r rows, as even as can be (AVX2, 32 rows: 6 6 5 5 5 5,
 * not 6 6 6 6 6 2: a block of two rows has too few independent sums to fill the FMA units). Up to 4 rows (a decode
 * step) go in blocks of 2, which take several column vectors at once (AVX-512: 8, whole 256-byte rows of K and V;
 * blocks of 4 took half rows in two passes, which streams badly from DRAM: 2048 keys, one core, 8.1 GB/s against
 * 12.6. AVX2: 2, rows_x32). */
#define BLOCK_SETUP                                                                                                    \
    const int hd = b->hd, rows = b->n_tokens * b->group;                                                             \
    const size_t esz = b->kv_f16 ? 2 : 4;                                                                             \
    const int n_keys = b->first_keys + b->n_tokens - 1; /* keys the block's last token sees */                       \
    const int max_r = rows <= 4 ? 2 : b->avx512 ? BG_ATT_ROWS_AVX512 : MAX_R;                                       \
    const int blocks = (rows + max_r - 1) / max_r;                                                                    \
    const float *a[MAX_R > BG_ATT_ROWS_AVX512 ? MAX_R : BG_ATT_ROWS_AVX512];                                         \
    float *c[MAX_R > BG_ATT_ROWS_AVX512 ? MAX_R : BG_ATT_ROWS_AVX512];                                               \
    (void)hd, (void)n_keys, (void)a, (void)c, (void)esz
#define Q_ROW(r) (b->q + (size_t)((r) / b->group) * b->q_stride + (size_t)((r) % b->group) * hd)
#define OUT_ROW(r) (b->out + (size_t)((r) / b->group) * b->out_stride + (size_t)((r) % b->group) * hd)
#define SCORES(r) (b->scores + (size_t)(r) * b->scores_stride)
#define KEYS(r) (b->first_keys + (r) / b->group) /* keys row r sees */
#define BLOCK_ROWS(bi) (rows / blocks + ((bi) < rows % blocks))

/* scores: S[r][i] = q_r · K_i for the keys of tiles tile0..tile_end-1, a tile of the cache (BG_K_TILE keys, 16 per
 * column vector, its rows one after the other) at a time for every row block (from L1); a row block stops at the
 * last 16 keys its last row sees */
void bg_attention_scores_avx2(const bg_attn_block *b, int tile0, int tile_end) {
    BLOCK_SETUP;
    for (int tile = tile0; tile < tile_end && tile * BG_K_TILE < n_keys; tile++) {
        for (int bi = 0, r0 = 0, R; bi < blocks; bi++, r0 += R) {
            R = BLOCK_ROWS(bi);
            const int v0 = tile * KEY_VECTORS, v_end = MIN_INT((KEYS(r0 + R - 1) + 15) / 16, v0 + KEY_VECTORS);
            for (int v = v0; v < v_end;) {
                for (int r = 0; r < R; r++) {
                    a[r] = Q_ROW(r0 + r);
                    c[r] = SCORES(r0 + r) + 16 * v;
                }
                v += row_block(b, R, v_end - v, a, hd, b->k + tile * b->k_tile_stride + (size_t)(v - v0) * 16 * esz,
                               BG_K_TILE, 16 * esz, c, 0);
            }
        }
    }
}

/* the scores of rows row0..row_end-1 turned into weights, in place */
void bg_attention_softmax_avx2(const bg_attn_block *b, int row0, int row_end) {
    BLOCK_SETUP;
    (void)blocks;
    for (int r = row0; r < row_end && r < rows; r++) {
        if (b->avx512)
            bg_attn_softmax_row_avx512(SCORES(r), KEYS(r), n_keys, b->div);
        else
            softmax_row(SCORES(r), KEYS(r), n_keys, b->div);
    }
}

/* outputs: O[r][d0..d_end) = Σ_i P[r][i] V_i[d0..d_end) in position order, a chunk of V rows at a time (from L1)
 * for all the rows; d0 and d_end multiples of 16 */
void bg_attention_values_avx2(const bg_attn_block *b, int d0, int d_end) {
    BLOCK_SETUP;
    const size_t v_ld = b->v_stride / esz;
    for (int r = 0; r < rows; r++) memset(OUT_ROW(r) + d0, 0, (size_t)(d_end - d0) * sizeof(float));
    for (int c0 = 0; c0 < n_keys; c0 += CHUNK) {
        const int cn = n_keys - c0 < CHUNK ? n_keys - c0 : CHUNK;
        const uint8_t *chunk =
            b->v + (size_t)(c0 / BG_K_TILE) * b->v_tile_stride + (size_t)(c0 % BG_K_TILE) * b->v_stride;
        for (int bi = 0, r0 = 0, R; bi < blocks; bi++, r0 += R) {
            R = BLOCK_ROWS(bi);
            if (KEYS(r0 + R - 1) <= c0) continue;
            for (int d = d0; d < d_end;) {
                for (int r = 0; r < R; r++) {
                    a[r] = SCORES(r0 + r) + c0;
                    c[r] = OUT_ROW(r0 + r) + d;
                }
                d += 16 * row_block(b, R, (d_end - d) / 16, a, cn, chunk + d * esz, v_ld, 16 * esz, c, 1);
            }
        }
    }
}
#undef BLOCK_SETUP
#undef Q_ROW
#undef OUT_ROW
#undef SCORES
#undef KEYS
#undef BLOCK_ROWS

void bg_attention_block_avx2(const bg_attn_block *b) {
    bg_attention_scores_avx2(b, 0, (b->first_keys + b->n_tokens - 1 + BG_K_TILE - 1) / BG_K_TILE);
    bg_attention_softmax_avx2(b, 0, b->n_tokens * b->group);
    bg_attention_values_avx2(b, 0, b->hd);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
