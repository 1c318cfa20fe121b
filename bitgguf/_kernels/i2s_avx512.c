/* I2_S ternary dot product, AVX-512 VNNI: vpdpbusd multiplies 64 unsigned codes by 64 int8 activations and adds
 * each group of four products into an int32 lane, with no 16-bit intermediate. One zmm register holds two I2_S
 * blocks (2 x 32 bytes), so the matching activations are gathered as two 256-bit halves. */
#include "kernels.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), \
                             apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif
#include "x86_avx512.h"

float bg_i2s_dot_avx512(const uint8_t *row, const bg_act *a) {
    const __m512i mask = _mm512_set1_epi8(3);
    const int8_t *q = a->q;
    const int nb = a->n / BG_I2S_BLOCK;
    __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        _mm_prefetch((const char *)(row + 32 * b + 4096), _MM_HINT_T0);  /* as in i2s_avx2.c */
        __m512i p = _mm512_loadu_si512((const void *)(row + 32 * b));
        const int8_t *q0 = q + 128 * b, *q1 = q0 + 128;
        acc0 = _mm512_dpbusd_epi32(acc0, _mm512_and_si512(_mm512_srli_epi16(p, 6), mask), bg_load_pair256(q0, q1));
        acc1 = _mm512_dpbusd_epi32(acc1, _mm512_and_si512(_mm512_srli_epi16(p, 4), mask),
                                   bg_load_pair256(q0 + 32, q1 + 32));
        acc0 = _mm512_dpbusd_epi32(acc0, _mm512_and_si512(_mm512_srli_epi16(p, 2), mask),
                                   bg_load_pair256(q0 + 64, q1 + 64));
        acc1 = _mm512_dpbusd_epi32(acc1, _mm512_and_si512(p, mask), bg_load_pair256(q0 + 96, q1 + 96));
    }
    int32_t total = _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
    if (b < nb) {  /* an odd block count: the last block in a 256-bit register */
        const __m256i m = _mm256_set1_epi8(3);
        __m256i p = _mm256_loadu_si256((const __m256i *)(row + 32 * b));
        const int8_t *q0 = q + 128 * b;
        __m256i acc = _mm256_setzero_si256();
        acc = _mm256_dpbusd_epi32(acc, _mm256_and_si256(_mm256_srli_epi16(p, 6), m),
                                  _mm256_loadu_si256((const __m256i *)q0));
        acc = _mm256_dpbusd_epi32(acc, _mm256_and_si256(_mm256_srli_epi16(p, 4), m),
                                  _mm256_loadu_si256((const __m256i *)(q0 + 32)));
        acc = _mm256_dpbusd_epi32(acc, _mm256_and_si256(_mm256_srli_epi16(p, 2), m),
                                  _mm256_loadu_si256((const __m256i *)(q0 + 64)));
        acc = _mm256_dpbusd_epi32(acc, _mm256_and_si256(p, m), _mm256_loadu_si256((const __m256i *)(q0 + 96)));
        total += bg_hsum256_i32(acc);
    }
    return (float)(total - a->sum);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
