/* I2_S ternary dot product, AVX-512 VNNI: vpdpbusd multiplies 64 unsigned codes by 64 int8 activations and adds
 * each group of four products into an int32 lane, with no 16-bit intermediate. */
#include "kernels.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), \
                             apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif
#include "x86_avx512.h"

/* Σcq - Σq from the sums of the codes masked by 0xC0 | 0x30 and by 0x0C | 0x03 (see bg_i2s_dot_avx512) */
static inline float i2s_result(__m512i s01, __m512i s23, int32_t sum_q) {
    const __m512i cq = _mm512_add_epi32(bg_unscale_halves(s01, 6, 4), bg_unscale_halves(s23, 2, 0));
    return (float)(_mm512_reduce_add_epi32(cq) - sum_q);
}

/* A block's 32 code bytes broadcast to both halves of a zmm and masked, not shifted: byte j holds weights j, 32 + j,
 * 64 + j and 96 + j at bits 6, 4, 2 and 0, so masks (0xC0 | 0x30 in the high half) and (0x0C | 0x03) leave the codes
 * of weights 0-63 and 64-127 in order, times 64 and 16, 4 and 1 by half. A 16-byte half feeds whole int32 lanes of
 * vpdpbusd, so each lane sums products of one factor, exactly; the lanes are divided by their factor (an exact
 * shift) when reduced. One AND per 64 weights instead of a shift and an AND, and the activations are one contiguous
 * load (the shifted codes had needed two blocks' activations gathered). One core, bench.kernels gemv_cache: 17-19 ->
 * 28-31 GB/s; from DRAM in 2 MiB pages it streams at the read probe's rate. */
float bg_i2s_dot_avx512(const uint8_t *row, const bg_act *a) {
    /* bg_cpu_decode_prefetch's distance, measured at 2B4T decode, 2 threads: Zen 5 8 KiB (85 -> 89 tok/s against
     * 4 KiB; 16 KiB no more); Sapphire Rapids 2 KiB (the ternary matmuls 27.5-28.1 -> 29.5-30.0 GB/s against 8 KiB,
     * 1 KiB between) */
    const int ahead = bg_cpu_decode_prefetch();
    const __m512i m01 = bg_mask_pair(0xC0, 0x30), m23 = bg_mask_pair(0x0C, 0x03);
    const int8_t *q = a->q;
    const int nb = a->n / BG_I2S_BLOCK;
    /* four blocks per pass in eight separate sums: on Sapphire Rapids vpdpbusd takes 6 cycles at two per cycle, so
     * four sums kept it waiting (2560 x 6912 rows from L2, one core: 27-28 -> 30 GB/s; 2560-value rows, whose
     * time is mostly the per-row reduction, about the same) */
    __m512i s01a = _mm512_setzero_si512(), s23a = s01a, s01b = s01a, s23b = s01a;
    __m512i s01c = s01a, s23c = s01a, s01d = s01a, s23d = s01a;
    int b = 0;
    for (; b + 4 <= nb; b += 4) {
        _mm_prefetch((const char *)(row + 32 * b + ahead), _MM_HINT_T0);
        _mm_prefetch((const char *)(row + 32 * b + 64 + ahead), _MM_HINT_T0);
        const __m512i p = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(row + 32 * b)));
        const __m512i r = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(row + 32 * b + 32)));
        const __m512i u = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(row + 32 * b + 64)));
        const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(row + 32 * b + 96)));
        const int8_t *q0 = q + 128 * b;
        s01a = _mm512_dpbusd_epi32(s01a, _mm512_and_si512(p, m01), _mm512_loadu_si512((const void *)q0));
        s23a = _mm512_dpbusd_epi32(s23a, _mm512_and_si512(p, m23), _mm512_loadu_si512((const void *)(q0 + 64)));
        s01b = _mm512_dpbusd_epi32(s01b, _mm512_and_si512(r, m01), _mm512_loadu_si512((const void *)(q0 + 128)));
        s23b = _mm512_dpbusd_epi32(s23b, _mm512_and_si512(r, m23), _mm512_loadu_si512((const void *)(q0 + 192)));
        s01c = _mm512_dpbusd_epi32(s01c, _mm512_and_si512(u, m01), _mm512_loadu_si512((const void *)(q0 + 256)));
        s23c = _mm512_dpbusd_epi32(s23c, _mm512_and_si512(u, m23), _mm512_loadu_si512((const void *)(q0 + 320)));
        s01d = _mm512_dpbusd_epi32(s01d, _mm512_and_si512(v, m01), _mm512_loadu_si512((const void *)(q0 + 384)));
        s23d = _mm512_dpbusd_epi32(s23d, _mm512_and_si512(v, m23), _mm512_loadu_si512((const void *)(q0 + 448)));
    }
    for (; b < nb; b++) {
        const __m512i p = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(row + 32 * b)));
        const int8_t *q0 = q + 128 * b;
        s01a = _mm512_dpbusd_epi32(s01a, _mm512_and_si512(p, m01), _mm512_loadu_si512((const void *)q0));
        s23a = _mm512_dpbusd_epi32(s23a, _mm512_and_si512(p, m23), _mm512_loadu_si512((const void *)(q0 + 64)));
    }
    s01a = _mm512_add_epi32(s01a, s01c), s01b = _mm512_add_epi32(s01b, s01d);
    s23a = _mm512_add_epi32(s23a, s23c), s23b = _mm512_add_epi32(s23b, s23d);
    return i2s_result(_mm512_add_epi32(s01a, s01b), _mm512_add_epi32(s23a, s23b), a->sum);
}

/* Several tokens against one row (prompts shorter than a GEMM's batch), 4 at a time: each block is masked once for
 * the 4 tokens, as in bg_i2s_dot_avx512. Exact int32 sums: the same integers as every other level. */
void bg_i2s_dot_multi_avx512(const uint8_t *row, const bg_act *acts, int n, float *out, size_t stride) {
    const __m512i m01 = bg_mask_pair(0xC0, 0x30), m23 = bg_mask_pair(0x0C, 0x03);
    const int nb = acts[0].n / BG_I2S_BLOCK;
    int t = 0;
    for (; t + 4 <= n; t += 4) {
        const int8_t *q0 = acts[t].q, *q1 = acts[t + 1].q, *q2 = acts[t + 2].q, *q3 = acts[t + 3].q;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (int b = 0; b < nb; b++) {
            const __m512i p = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(row + 32 * b)));
            const __m512i c01 = _mm512_and_si512(p, m01), c23 = _mm512_and_si512(p, m23);
            const size_t o = (size_t)128 * b;
            a0 = _mm512_dpbusd_epi32(a0, c01, _mm512_loadu_si512((const void *)(q0 + o)));
            a1 = _mm512_dpbusd_epi32(a1, c01, _mm512_loadu_si512((const void *)(q1 + o)));
            a2 = _mm512_dpbusd_epi32(a2, c01, _mm512_loadu_si512((const void *)(q2 + o)));
            a3 = _mm512_dpbusd_epi32(a3, c01, _mm512_loadu_si512((const void *)(q3 + o)));
            b0 = _mm512_dpbusd_epi32(b0, c23, _mm512_loadu_si512((const void *)(q0 + o + 64)));
            b1 = _mm512_dpbusd_epi32(b1, c23, _mm512_loadu_si512((const void *)(q1 + o + 64)));
            b2 = _mm512_dpbusd_epi32(b2, c23, _mm512_loadu_si512((const void *)(q2 + o + 64)));
            b3 = _mm512_dpbusd_epi32(b3, c23, _mm512_loadu_si512((const void *)(q3 + o + 64)));
        }
        out[(size_t)t * stride] = i2s_result(a0, b0, acts[t].sum);
        out[(size_t)(t + 1) * stride] = i2s_result(a1, b1, acts[t + 1].sum);
        out[(size_t)(t + 2) * stride] = i2s_result(a2, b2, acts[t + 2].sum);
        out[(size_t)(t + 3) * stride] = i2s_result(a3, b3, acts[t + 3].sum);
    }
    for (; t < n; t++) out[(size_t)t * stride] = bg_i2s_dot_avx512(row, &acts[t]);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
