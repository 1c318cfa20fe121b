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
 * threads (memory's latency higher under load) 2 -> 4 KiB gave about +3%, 8 KiB no more. */
#define BG_HEAD512_PREFETCH 4096

#define DOT64(LOAD, TAIL)                                                                           \
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(),            \
           s3 = _mm512_setzero_ps();                                                                \
    int i = 0;                                                                                      \
    for (; i + 64 <= n; i += 64) {                                                                  \
        bg_prefetch((const char *)(w + i) + BG_HEAD512_PREFETCH);                                   \
        bg_prefetch((const char *)(w + i) + BG_HEAD512_PREFETCH + 64);                              \
        s0 = _mm512_fmadd_ps(LOAD(w + i), _mm512_loadu_ps(x + i), s0);                              \
        s1 = _mm512_fmadd_ps(LOAD(w + i + 16), _mm512_loadu_ps(x + i + 16), s1);                    \
        s2 = _mm512_fmadd_ps(LOAD(w + i + 32), _mm512_loadu_ps(x + i + 32), s2);                    \
        s3 = _mm512_fmadd_ps(LOAD(w + i + 48), _mm512_loadu_ps(x + i + 48), s3);                    \
    }                                                                                               \
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(LOAD(w + i), _mm512_loadu_ps(x + i), s0);   \
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));  \
    for (; i < n; i++) sum += TAIL(w[i]) * x[i];                                                    \
    return sum;

float bg_f16_dot_avx512(const void *row, const float *x, int n) {
    const uint16_t *w = row;
    DOT64(load_f16x16, bg_f16_to_f32)
}

float bg_bf16_dot_avx512(const void *row, const float *x, int n) {
    const uint16_t *w = row;
    DOT64(load_bf16x16, bg_bf16_to_f32)
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
