/* TQ2_0 ternary dot product, AVX-512 VNNI: the block's 64 code bytes (two 128-weight halves) fill one zmm register;
 * vpdpbusd gives the exact integer block sum, then sum += d * isum in block order, as in tq2_scalar.c. */
#include "kernels.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), \
                             apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif
#include "x86_avx512.h"

float bg_tq2_dot_avx512(const uint8_t *row, const bg_act *a) {
    const __m512i mask = _mm512_set1_epi8(3);
    const int8_t *q = a->q;
    double sum = 0.0;  /* d * isum is exact in double, so FMA contraction cannot change it */
    for (int b = 0; b < a->n / BG_TQ2_BLOCK; b++, row += 66, q += BG_TQ2_BLOCK) {
        __m512i p = _mm512_loadu_si512((const void *)row);
        __m512i acc = _mm512_setzero_si512();
        acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(p, mask), bg_load_pair256(q, q + 128));
        acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16(p, 2), mask),
                                  bg_load_pair256(q + 32, q + 160));
        acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16(p, 4), mask),
                                  bg_load_pair256(q + 64, q + 192));
        acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16(p, 6), mask),
                                  bg_load_pair256(q + 96, q + 224));
        const int32_t *gs = a->gsum + b * (BG_TQ2_BLOCK / BG_ACT_GROUP);
        int32_t qsum = gs[0] + gs[1] + gs[2] + gs[3] + gs[4] + gs[5] + gs[6] + gs[7];
        uint16_t d;
        memcpy(&d, row + 64, 2);
        sum += (double)bg_f16_to_f32(d) * (_mm512_reduce_add_epi32(acc) - qsum);
    }
    return (float)sum;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
