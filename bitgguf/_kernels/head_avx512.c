/* Float-activation dot products for the output head, AVX-512: as head_avx2.c, 16 wide, so a 64-byte line of F16
 * weights is two conversions and two FMAs instead of four of each. Results differ from head_scalar.c only by float
 * summation order. */
#include "kernels.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")
#endif
#include "x86_avx2.h"

static inline __m512 load_f16x16(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

static inline __m512 load_bf16x16(const uint16_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

/* Prefetch distance in the weight stream (bytes). Zen 5, 2B4T F16 head decode: 1-4 KiB alike at one thread; at two
 * threads (memory's latency higher under load) 2 -> 4 KiB gave about +3%, 8 KiB no more. Sapphire Rapids VM, 2
 * threads, four-row kernel: 2 and 4 KiB alike, 1 KiB -1%, 8 KiB -7%. */
#define BG_HEAD512_PREFETCH 4096

/* One 64-value step of a row into its four sums, and the sums' end: the one-row and four-row kernels share them, so
 * each row gets the same value from both. */
#define STEP64(LOAD, w, i, s)                                                                       \
    do {                                                                                            \
        bg_prefetch((const char *)((w) + (i)) + BG_HEAD512_PREFETCH);                               \
        bg_prefetch((const char *)((w) + (i)) + BG_HEAD512_PREFETCH + 64);                          \
        for (int k_ = 0; k_ < 4; k_++)                                                              \
            s[k_] = _mm512_fmadd_ps(LOAD((w) + (i) + 16 * k_), _mm512_loadu_ps(x + (i) + 16 * k_), s[k_]); \
    } while (0)

#define FINISH(LOAD, TAIL, w, i, s, out)                                                            \
    do {                                                                                            \
        int j_ = (i);                                                                               \
        for (; j_ + 16 <= n; j_ += 16) s[0] = _mm512_fmadd_ps(LOAD((w) + j_), _mm512_loadu_ps(x + j_), s[0]); \
        float sum_ = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s[0], s[1]), _mm512_add_ps(s[2], s[3]))); \
        for (; j_ < n; j_++) sum_ += TAIL((w)[j_]) * x[j_];                                        \
        out = sum_;                                                                                 \
    } while (0)

#define DOT64(LOAD, TAIL)                                                                           \
    __m512 s[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()}; \
    int i = 0;                                                                                      \
    for (; i + 64 <= n; i += 64) STEP64(LOAD, w, i, s);                                             \
    float sum;                                                                                      \
    FINISH(LOAD, TAIL, w, i, s, sum);                                                               \
    return sum;

/* Four rows a step at a time: four streams interleaved 128 bytes apart keep more of memory's latency covered than
 * one row of 5 KiB after another (bg_dot_f32_rows). */
#define DOT64_X4(LOAD, TAIL)                                                                        \
    const uint16_t *w[4];                                                                           \
    __m512 s[4][4];                                                                                 \
    for (int r = 0; r < 4; r++) {                                                                   \
        w[r] = (const uint16_t *)((const uint8_t *)row + r * stride);                               \
        for (int k = 0; k < 4; k++) s[r][k] = _mm512_setzero_ps();                                  \
    }                                                                                               \
    int i = 0;                                                                                      \
    for (; i + 64 <= n; i += 64)                                                                    \
        for (int r = 0; r < 4; r++) STEP64(LOAD, w[r], i, s[r]);                                    \
    for (int r = 0; r < 4; r++) FINISH(LOAD, TAIL, w[r], i, s[r], out[r]);

float bg_f16_dot_avx512(const void *row, const float *x, int n) {
    const uint16_t *w = row;
    DOT64(load_f16x16, bg_f16_to_f32)
}

float bg_bf16_dot_avx512(const void *row, const float *x, int n) {
    const uint16_t *w = row;
    DOT64(load_bf16x16, bg_bf16_to_f32)
}

void bg_f16_dot_x4_avx512(const void *row, size_t stride, const float *x, int n, float *out) {
    DOT64_X4(load_f16x16, bg_f16_to_f32)
}

void bg_bf16_dot_x4_avx512(const void *row, size_t stride, const float *x, int n, float *out) {
    DOT64_X4(load_bf16x16, bg_bf16_to_f32)
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
