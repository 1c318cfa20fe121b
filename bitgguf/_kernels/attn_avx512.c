/* attn_avx2.c's row kernel in 512-bit registers, for the AVX-512 levels: one register holds a row's 16 columns, and
 * the core has two 512-bit FMA ports (a plain FMA loop: 118 G MAC/s on one core here, against 56 with 256-bit
 * registers). Every lane runs the same fused multiply-adds in the same order as the AVX2 kernel, so the results are
 * bitwise those of the AVX2 level. */
#include "engine_avx2.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f")
#endif
#include <immintrin.h>

static inline __attribute__((always_inline)) void rows_x16(const int R, const int f16, const float *const *a, int K,
                                                           const uint8_t *b, size_t ldb, float *const *c,
                                                           int accumulate) {
    const size_t step = ldb * (f16 ? 2 : 4);
    __m512 acc[BG_ATT_ROWS_AVX512];
    for (int r = 0; r < R; r++) acc[r] = accumulate ? _mm512_loadu_ps(c[r]) : _mm512_setzero_ps();
    for (int k = 0; k < K; k++, b += step) {
        const __m512 col = f16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)b)) : _mm512_loadu_ps(b);
        for (int r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[r][k]), col, acc[r]);
    }
    for (int r = 0; r < R; r++) _mm512_storeu_ps(c[r], acc[r]);
}

#define ROWS_CASES(F)                                                                                                  \
    switch (R) {                                                                                                      \
    case 1: rows_x16(1, F, a, K, b, ldb, c, accumulate); break;                                                       \
    case 2: rows_x16(2, F, a, K, b, ldb, c, accumulate); break;                                                       \
    case 3: rows_x16(3, F, a, K, b, ldb, c, accumulate); break;                                                       \
    case 4: rows_x16(4, F, a, K, b, ldb, c, accumulate); break;                                                       \
    case 5: rows_x16(5, F, a, K, b, ldb, c, accumulate); break;                                                       \
    case 6: rows_x16(6, F, a, K, b, ldb, c, accumulate); break;                                                       \
    case 7: rows_x16(7, F, a, K, b, ldb, c, accumulate); break;                                                       \
    default: rows_x16(8, F, a, K, b, ldb, c, accumulate); break;                                                     \
    }

void bg_attn_rows_avx512(int R, int f16, const float *const *a, int K, const uint8_t *b, size_t ldb, float *const *c,
                         int accumulate) {
    if (f16) {
        ROWS_CASES(1)
    } else {
        ROWS_CASES(0)
    }
}
#undef ROWS_CASES

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
