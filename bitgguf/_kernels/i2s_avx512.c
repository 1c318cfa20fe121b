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

/* Several tokens against one row (prompt processing), 4 at a time. A block's 32 code bytes are broadcast to both
 * halves of a zmm and shifted by (6, 4) and (2, 0): the two registers then hold the codes of weights 0-63 and
 * 64-127 in order, so each matches 64 contiguous activations (one load, no insert) and a block's codes are unpacked
 * once for the 4 tokens. vpdpbusd sums exactly in int32: the same integers as every other level. */
void bg_i2s_dot_multi_avx512(const uint8_t *row, const bg_act *acts, int n, float *out, size_t stride) {
    const __m512i mask = _mm512_set1_epi8(3);
    const __m512i sh01 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(6)), _mm256_set1_epi16(4), 1);
    const __m512i sh23 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(2)), _mm256_set1_epi16(0), 1);
    const int nb = acts[0].n / BG_I2S_BLOCK;
    int t = 0;
    for (; t + 4 <= n; t += 4) {
        const int8_t *q0 = acts[t].q, *q1 = acts[t + 1].q, *q2 = acts[t + 2].q, *q3 = acts[t + 3].q;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
        for (int b = 0; b < nb; b++) {
            const __m512i p = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(row + 32 * b)));
            const __m512i lo = _mm512_and_si512(_mm512_srlv_epi16(p, sh01), mask);  /* weights 0-63 */
            const __m512i hi = _mm512_and_si512(_mm512_srlv_epi16(p, sh23), mask);  /* weights 64-127 */
            const size_t o = (size_t)128 * b;
            a0 = _mm512_dpbusd_epi32(a0, lo, _mm512_loadu_si512((const void *)(q0 + o)));
            a1 = _mm512_dpbusd_epi32(a1, lo, _mm512_loadu_si512((const void *)(q1 + o)));
            a2 = _mm512_dpbusd_epi32(a2, lo, _mm512_loadu_si512((const void *)(q2 + o)));
            a3 = _mm512_dpbusd_epi32(a3, lo, _mm512_loadu_si512((const void *)(q3 + o)));
            a0 = _mm512_dpbusd_epi32(a0, hi, _mm512_loadu_si512((const void *)(q0 + o + 64)));
            a1 = _mm512_dpbusd_epi32(a1, hi, _mm512_loadu_si512((const void *)(q1 + o + 64)));
            a2 = _mm512_dpbusd_epi32(a2, hi, _mm512_loadu_si512((const void *)(q2 + o + 64)));
            a3 = _mm512_dpbusd_epi32(a3, hi, _mm512_loadu_si512((const void *)(q3 + o + 64)));
        }
        out[(size_t)t * stride] = (float)(_mm512_reduce_add_epi32(a0) - acts[t].sum);
        out[(size_t)(t + 1) * stride] = (float)(_mm512_reduce_add_epi32(a1) - acts[t + 1].sum);
        out[(size_t)(t + 2) * stride] = (float)(_mm512_reduce_add_epi32(a2) - acts[t + 2].sum);
        out[(size_t)(t + 3) * stride] = (float)(_mm512_reduce_add_epi32(a3) - acts[t + 3].sum);
    }
    for (; t < n; t++) out[(size_t)t * stride] = bg_i2s_dot_avx512(row, &acts[t]);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
