/* TQ1_0 ternary dot product, AVX-512 VNNI (layout in tq1_scalar.c). The digits are unpacked as in tq1_avx2.c, two
 * 32-byte vectors per zmm register, and vpdpbusd sums digit * q straight into int32. Per block: exact integer
 * Σ(c-1)q, then sum += d * isum in block order, bitwise the same as tq1_scalar.c. */
#include "kernels.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), \
                             apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif
#include "x86_avx512.h"

/* Digits of the 64 bytes b, byte k multiplied by the 16-bit lane k/2's entry of p (3^n <= 81). */
static inline __m512i tq1_digits512(__m512i b, __m512i p) {
    const __m512i three = _mm512_set1_epi16(3), hi_mask = _mm512_set1_epi16((short)0xff00);
    __m512i lo = _mm512_mulhi_epu16(_mm512_mullo_epi16(_mm512_slli_epi16(b, 8), p), three);
    __m512i hi = _mm512_mulhi_epu16(_mm512_mullo_epi16(_mm512_and_si512(b, hi_mask), p), three);
    return _mm512_or_si512(lo, _mm512_slli_epi16(hi, 8));
}

/* Prefetch distance in the weight stream, as tq1_avx2.c's: from DRAM 3.3 -> 6.1 GB/s, as fast as from cache */
#define BG_TQ1_PREFETCH 4096

static inline __m512i pair256(__m256i lo, __m256i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

float bg_tq1_dot_avx512(const uint8_t *row, const bg_act *a) {
    /* 16-bit lane multipliers; each zmm holds two 32-byte digit vectors (lanes 0-15 and 16-31) */
    const __m512i p01 = pair256(_mm256_set1_epi16(1), _mm256_set1_epi16(3));
    const __m512i p23 = pair256(_mm256_set1_epi16(9), _mm256_set1_epi16(27));
    const __m512i p4b = pair256(_mm256_set1_epi16(81),
                                _mm256_setr_epi16(1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3));
    /* qs[32..47] digits 2 | 3, then digit 4 | qh (byte k = qh[k % 4] times 3^(k / 4)) */
    const __m512i pbc = pair256(_mm256_setr_epi16(9, 9, 9, 9, 9, 9, 9, 9, 27, 27, 27, 27, 27, 27, 27, 27),
                                _mm256_setr_epi16(81, 81, 81, 81, 81, 81, 81, 81, 1, 1, 3, 3, 9, 9, 27, 27));
    double sum = 0.0;  /* d * isum is exact in double, so FMA contraction cannot change it */
    for (int b = 0; b < a->n / BG_TQ1_BLOCK; b++, row += BG_TQ1_BYTES) {
        const int8_t *q = a->q + b * BG_TQ1_BLOCK;
        _mm_prefetch((const char *)(row + BG_TQ1_PREFETCH), _MM_HINT_T0);  /* a line per 54-byte block covers it */
        __m256i a32 = _mm256_loadu_si256((const __m256i *)row);
        __m256i a2 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(row + 32)));
        uint32_t qh;
        memcpy(&qh, row + 48, 4);
        __m256i c = _mm256_inserti128_si256(a2, _mm_set1_epi32((int)qh), 1);
        __m512i aa = pair256(a32, a32);
        __m512i acc = _mm512_setzero_si512();
        /* weights 0..63, 64..127, then 128..159 (digit 4 of qs[0..31]) with 160..191 (digits 0 | 1 of qs[32..47]) */
        acc = _mm512_dpbusd_epi32(acc, tq1_digits512(aa, p01), _mm512_loadu_si512((const void *)q));
        acc = _mm512_dpbusd_epi32(acc, tq1_digits512(aa, p23), _mm512_loadu_si512((const void *)(q + 64)));
        acc = _mm512_dpbusd_epi32(acc, tq1_digits512(pair256(a32, a2), p4b), _mm512_loadu_si512((const void *)(q + 128)));
        /* weights 192..223 (digits 2 | 3 of qs[32..47]) and 224..255 (digit 4 | qh) */
        acc = _mm512_dpbusd_epi32(acc, tq1_digits512(pair256(a2, c), pbc), _mm512_loadu_si512((const void *)(q + 192)));
        const int32_t *gs = a->gsum + b * (BG_TQ1_BLOCK / BG_ACT_GROUP);
        int32_t qsum = gs[0] + gs[1] + gs[2] + gs[3] + gs[4] + gs[5] + gs[6] + gs[7];
        uint16_t d;
        memcpy(&d, row + 52, 2);
        sum += (double)bg_f16_to_f32(d) * (_mm512_reduce_add_epi32(acc) - qsum);
    }
    return (float)sum;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
