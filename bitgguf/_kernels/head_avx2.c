/* Float-activation dot products for the output head, AVX2 + FMA + F16C: four 8-wide accumulators, reduced in a
 * fixed order. Results differ from head_scalar.c only by float summation order. */
#include "kernels.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif
#include "x86_avx2.h"

static inline __m256 load_f16x8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

static inline __m256 load_bf16x8(const uint16_t *p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

/* Prefetch distance in the weight stream (bytes). Float rows take little compute per byte, and a short distance
 * serves them best: F16 head from DRAM on one Zen 3 core, 12-13 GB/s at 8 KiB (the I2_S kernel's distance),
 * 13.5 with no prefetch, 16-18 at 1 KiB, against a 17-21 GB/s read probe (python -m bench.kernels). */
#ifndef BG_HEAD_PREFETCH
#define BG_HEAD_PREFETCH 1024
#endif

#define DOT32(LOAD, TAIL)                                                                           \
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(),            \
           s3 = _mm256_setzero_ps();                                                                \
    int i = 0;                                                                                      \
    for (; i + 32 <= n; i += 32) {                                                                  \
        bg_prefetch((const char *)(w + i) + BG_HEAD_PREFETCH);                                      \
        s0 = _mm256_fmadd_ps(LOAD(w + i), _mm256_loadu_ps(x + i), s0);                              \
        s1 = _mm256_fmadd_ps(LOAD(w + i + 8), _mm256_loadu_ps(x + i + 8), s1);                      \
        s2 = _mm256_fmadd_ps(LOAD(w + i + 16), _mm256_loadu_ps(x + i + 16), s2);                    \
        s3 = _mm256_fmadd_ps(LOAD(w + i + 24), _mm256_loadu_ps(x + i + 24), s3);                    \
    }                                                                                               \
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(LOAD(w + i), _mm256_loadu_ps(x + i), s0);     \
    float sum = bg_hsum_f32x8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));        \
    for (; i < n; i++) sum += TAIL(w[i]) * x[i];                                                    \
    return sum;

static inline float id_f32(float v) { return v; }

float bg_f32_dot_avx2(const void *row, const float *x, int n) {
    const float *w = row;
    DOT32(_mm256_loadu_ps, id_f32)
}

float bg_f16_dot_avx2(const void *row, const float *x, int n) {
    const uint16_t *w = row;
    DOT32(load_f16x8, bg_f16_to_f32)
}

float bg_bf16_dot_avx2(const void *row, const float *x, int n) {
    const uint16_t *w = row;
    DOT32(load_bf16x8, bg_bf16_to_f32)
}

static inline __m256 load_i8x8(const int8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

float bg_q8_0_dot_avx2(const void *row, const float *x, int n) {
    const uint8_t *p = row;
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / BG_Q8_0_BLOCK; b++, p += 34, x += BG_Q8_0_BLOCK) {
        bg_prefetch(p + BG_HEAD_PREFETCH);
        const int8_t *qs = (const int8_t *)(p + 2);
        __m256 s = _mm256_mul_ps(load_i8x8(qs), _mm256_loadu_ps(x));
        s = _mm256_fmadd_ps(load_i8x8(qs + 8), _mm256_loadu_ps(x + 8), s);
        s = _mm256_fmadd_ps(load_i8x8(qs + 16), _mm256_loadu_ps(x + 16), s);
        s = _mm256_fmadd_ps(load_i8x8(qs + 24), _mm256_loadu_ps(x + 24), s);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(bg_f16c_at(p)), s, acc);
    }
    return bg_hsum_f32x8(acc);
}

/* y += a * row: attention's weighted sum over the V cache */
void bg_f32_axpy_avx2(const void *row, float a, float *y, int n) {
    const float *w = row;
    const __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(w + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * w[i];
}

void bg_f16_axpy_avx2(const void *row, float a, float *y, int n) {
    const uint16_t *w = row;
    const __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, load_f16x8(w + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * bg_f16_to_f32(w[i]);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
