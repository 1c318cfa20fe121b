/* attn_avx2.c's row kernel in 512-bit registers, for the AVX-512 levels: one register holds 16 columns of a row, and
 * the core has two 512-bit FMA ports (a plain FMA loop: 118 G MAC/s on one core here, against 56 with 256-bit
 * registers). Every lane runs the same fused multiply-adds in the same order as the AVX2 kernel, so the results are
 * bitwise those of the AVX2 level. */
#include "engine_avx2.h"

#include <math.h>

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f")
#endif
#include <immintrin.h>

#include "x86_avx2.h"
#include "x86_avx512.h"

/* c[r][16v..16v+16) = (accumulate ? c[r][16v..16v+16) : 0) + Σ_k a[r][k] * B_kv for r < R, v < NV, where B_kv is 16
 * cache elements at b + v * vstride bytes + k * ldb elements. NV column vectors at once give R x NV independent
 * chains of fused multiply-adds: a decode step has few rows (2B4T: 2-4 query heads per KV head), and one vector
 * of columns left it bound by the FMA latency. Each lane's chain is the same whatever NV. */
static inline __attribute__((always_inline)) void rows_cols(const int R, const int NV, const int f16,
                                                            const float *const *a, int K, const uint8_t *b, size_t ldb,
                                                            size_t vstride, float *const *c, int accumulate) {
    const size_t step = ldb * (f16 ? 2 : 4);
    __m512 acc[BG_ATT_ROWS_AVX512][8];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = accumulate ? _mm512_loadu_ps(c[r] + 16 * v) : _mm512_setzero_ps();
    for (int k = 0; k < K; k++, b += step) {
        if (NV == 8 && f16)  /* whole 256-byte rows of the cache, a decode step's: they come from memory */
            for (int l = 0; l < 4; l++)
                _mm_prefetch((const char *)(b + BG_ATT_PREFETCH_ROWS * step + 64 * l), _MM_HINT_T0);
        __m512 col[8];
        for (int v = 0; v < NV; v++)
            col[v] = f16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(b + v * vstride)))
                         : _mm512_loadu_ps(b + v * vstride);
        for (int r = 0; r < R; r++) {
            const __m512 x = _mm512_set1_ps(a[r][k]);
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(x, col[v], acc[r][v]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) _mm512_storeu_ps(c[r] + 16 * v, acc[r][v]);
}

typedef void (*cols_fn)(const float *const *a, int K, const uint8_t *b, size_t ldb, size_t vstride,
                        float *const *c, int accumulate);
#define COLS_FN(R, NV, F)                                                                                              \
    static void cols_##F##_##R##_##NV(const float *const *a, int K, const uint8_t *b, size_t ldb, size_t vstride,    \
                                      float *const *c, int accumulate) {                                             \
        rows_cols(R, NV, F, a, K, b, ldb, vstride, c, accumulate);                                                   \
    }
/* every R with NV = 1, 2, ... up to what its sums and columns leave of the 32 zmm: 8 for 1-2 rows, 4 for 3-6, 2 */
#define COLS_UP_TO_8(R, F) COLS_FN(R, 1, F) COLS_FN(R, 2, F) COLS_FN(R, 4, F) COLS_FN(R, 8, F)
#define COLS_UP_TO_4(R, F) COLS_FN(R, 1, F) COLS_FN(R, 2, F) COLS_FN(R, 4, F)
#define COLS_UP_TO_2(R, F) COLS_FN(R, 1, F) COLS_FN(R, 2, F)
#define COLS_FNS(F)                                                                                                    \
    COLS_UP_TO_8(1, F) COLS_UP_TO_8(2, F) COLS_UP_TO_4(3, F) COLS_UP_TO_4(4, F) COLS_UP_TO_4(5, F)                   \
    COLS_UP_TO_4(6, F) COLS_UP_TO_2(7, F) COLS_UP_TO_2(8, F)
COLS_FNS(0)
COLS_FNS(1)
#define ROW8(R, F) {cols_##F##_##R##_1, cols_##F##_##R##_2, cols_##F##_##R##_4, cols_##F##_##R##_8}
#define ROW4(R, F) {cols_##F##_##R##_1, cols_##F##_##R##_2, cols_##F##_##R##_4, NULL}
#define ROW2(R, F) {cols_##F##_##R##_1, cols_##F##_##R##_2, NULL, NULL}
#define TABLE(F) {ROW8(1, F), ROW8(2, F), ROW4(3, F), ROW4(4, F), ROW4(5, F), ROW4(6, F), ROW2(7, F), ROW2(8, F)}
/* [f16][R - 1][log2 NV] */
static const cols_fn cols_table[2][BG_ATT_ROWS_AVX512][4] = {TABLE(0), TABLE(1)};
#undef TABLE
#undef ROW2
#undef ROW4
#undef ROW8
#undef COLS_FNS
#undef COLS_UP_TO_2
#undef COLS_UP_TO_4
#undef COLS_UP_TO_8
#undef COLS_FN

int bg_attn_cols_avx512(int R, int nv, int f16, const float *const *a, int K, const uint8_t *b, size_t ldb,
                        size_t vstride, float *const *c, int accumulate) {
    const int most = R <= 2 ? 8 : R <= 6 ? 4 : 2;
    const int NV = nv >= most ? most : nv >= 4 ? 4 : nv >= 2 ? 2 : 1;
    cols_table[f16 != 0][R - 1][NV == 8 ? 3 : NV / 2](a, K, b, ldb, vstride, c, accumulate);
    return NV;
}

/* attn_avx2.c's softmax row 16 lanes at a time: x[0..n) = softmax(x[0..n) / div), x[n..n_zero) = 0. Bitwise its
 * values: the lanes' operations are the same, the max takes any order, and the sum goes into the AVX2 row's 8 lane
 * sums in its order (the low 8 values, then the high 8; past the AVX2 row's last vector those are exp(-inf) = +0,
 * which leaves a sum as it is). Lanes up to n rounded up to 16 are written (rows are padded to 16 floats). */
void bg_attn_softmax_row_avx512(float *x, int n, int n_zero, float div) {
    const __m512 vdiv = _mm512_set1_ps(div), ninf = _mm512_set1_ps(-INFINITY);
    __m512 vmax = ninf;
    for (int i = 0; i < n; i += 16) {
        const __mmask16 valid = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        const __m512 s = _mm512_mask_div_ps(ninf, valid, _mm512_loadu_ps(x + i), vdiv);
        _mm512_storeu_ps(x + i, s);
        vmax = _mm512_max_ps(vmax, s);
    }
    const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
    __m256 vsum = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        const __m512 e = bg_exp_f32x16(_mm512_sub_ps(_mm512_loadu_ps(x + i), mx));
        _mm512_storeu_ps(x + i, e);
        const __m256 e_hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1));
        vsum = _mm256_add_ps(_mm256_add_ps(vsum, _mm512_castps512_ps256(e)), e_hi);
    }
    const __m512 sum = _mm512_set1_ps(bg_hsum_f32x8(vsum));
    for (int i = 0; i < n; i += 16) _mm512_storeu_ps(x + i, _mm512_div_ps(_mm512_loadu_ps(x + i), sum));
    for (int i = n; i < n_zero; i++) x[i] = 0.0f;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
