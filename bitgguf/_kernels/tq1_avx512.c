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

static inline uint16_t tq1_scale_bits(const uint8_t *blk) {
    uint16_t d;
    memcpy(&d, blk + 52, 2);
    return d;
}

/* A block's 256 digits (c = w + 1) as four zmm vectors, in the order of the activations they meet: weights 0..63,
 * 64..127, then 128..159 (digit 4 of qs[0..31]) with 160..191 (digits 0 | 1 of qs[32..47]), then 192..223 (digits
 * 2 | 3 of qs[32..47]) with 224..255 (digit 4 | qh). */
static inline void tq1_block_digits(const uint8_t *blk, __m512i d[4]) {
    /* 16-bit lane multipliers; each zmm holds two 32-byte digit vectors (lanes 0-15 and 16-31) */
    const __m512i p01 = pair256(_mm256_set1_epi16(1), _mm256_set1_epi16(3));
    const __m512i p23 = pair256(_mm256_set1_epi16(9), _mm256_set1_epi16(27));
    const __m512i p4b = pair256(_mm256_set1_epi16(81),
                                _mm256_setr_epi16(1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3));
    /* qs[32..47] digits 2 | 3, then digit 4 | qh (byte k = qh[k % 4] times 3^(k / 4)) */
    const __m512i pbc = pair256(_mm256_setr_epi16(9, 9, 9, 9, 9, 9, 9, 9, 27, 27, 27, 27, 27, 27, 27, 27),
                                _mm256_setr_epi16(81, 81, 81, 81, 81, 81, 81, 81, 1, 1, 3, 3, 9, 9, 27, 27));
    const __m256i a32 = _mm256_loadu_si256((const __m256i *)blk);
    const __m256i a2 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(blk + 32)));
    uint32_t qh;
    memcpy(&qh, blk + 48, 4);
    const __m256i c = _mm256_inserti128_si256(a2, _mm_set1_epi32((int)qh), 1);
    const __m512i aa = pair256(a32, a32);
    d[0] = tq1_digits512(aa, p01);
    d[1] = tq1_digits512(aa, p23);
    d[2] = tq1_digits512(pair256(a32, a2), p4b);
    d[3] = tq1_digits512(pair256(a2, c), pbc);
}

/* d * (Σcq - Σq) of one block for the activations q of its 256 weights (gs: their 8 group sums), in double: exact */
static inline double tq1_block_dot(const __m512i d[4], const int8_t *q, const int32_t *gs, double scale) {
    __m512i acc = _mm512_dpbusd_epi32(_mm512_setzero_si512(), d[0], _mm512_loadu_si512((const void *)q));
    acc = _mm512_dpbusd_epi32(acc, d[1], _mm512_loadu_si512((const void *)(q + 64)));
    acc = _mm512_dpbusd_epi32(acc, d[2], _mm512_loadu_si512((const void *)(q + 128)));
    acc = _mm512_dpbusd_epi32(acc, d[3], _mm512_loadu_si512((const void *)(q + 192)));
    const int32_t qsum = gs[0] + gs[1] + gs[2] + gs[3] + gs[4] + gs[5] + gs[6] + gs[7];
    return scale * (_mm512_reduce_add_epi32(acc) - qsum);
}

/* Σc q over a row of one scale from its bytes as they are, with the activations in digit order (a->tq1). Byte
 * b's digits: with q_0 = b and q_n+1 = (uint8)(3 q_n) (tq1_scalar.c's q), 3 q_n = 256 c_n + q_n+1 exactly, so
 * Σ_n c_n x_n = (3 Σ_n q_n x_n - Σ_n q_n+1 x_n) / 256: per digit n two vpdpbusd of the q bytes themselves and two
 * byte adds for the next q, where the digits had cost 16-bit multiplies and repacking (per block 20 zmm operations
 * against about 40). Digit row n's activations are the values its 52 bytes encode (bg_tq1_order_act); qh's fifth
 * "digit" meets zeros. The integers are exact (|lane| < 2^31 for rows below 2^16 values), so bitwise the same as
 * tq1_scalar.c after the same scaling. */
static int32_t tq1_row_sum_ordered(const uint8_t *row, int nb, const int8_t *x) {
    __m512i A[5], B[5];
    for (int n = 0; n < 5; n++) A[n] = B[n] = _mm512_setzero_si512();
    for (int b = 0; b < nb; b++, row += BG_TQ1_BYTES, x += BG_TQ1_ORDER_BYTES) {
        _mm_prefetch((const char *)(row + BG_TQ1_PREFETCH), _MM_HINT_T0);
        __m512i q = _mm512_maskz_loadu_epi8(((__mmask64)1 << 52) - 1, row);
        for (int n = 0; n < 5; n++) {
            const __m512i xn = _mm512_loadu_si512((const void *)(x + 64 * n));
            A[n] = _mm512_dpbusd_epi32(A[n], q, xn);
            q = _mm512_add_epi8(q, _mm512_add_epi8(q, q));
            B[n] = _mm512_dpbusd_epi32(B[n], q, xn);
        }
    }
    __m512i a = _mm512_add_epi32(_mm512_add_epi32(A[0], A[1]), _mm512_add_epi32(_mm512_add_epi32(A[2], A[3]), A[4]));
    __m512i c = _mm512_add_epi32(_mm512_add_epi32(B[0], B[1]), _mm512_add_epi32(_mm512_add_epi32(B[2], B[3]), B[4]));
    /* every lane of 3A - B is 256 times that lane's Σcq: the shift is exact */
    return _mm512_reduce_add_epi32(_mm512_srai_epi32(_mm512_sub_epi32(_mm512_mullo_epi32(a, _mm512_set1_epi32(3)), c), 8));
}

/* Σc q over a row of one scale by its unpacked digits (the activations in their own order). */
static int32_t tq1_row_sum_digits(const uint8_t *row, int nb, const int8_t *q) {
    __m512i acc = _mm512_setzero_si512();
    for (int b = 0; b < nb; b++, row += BG_TQ1_BYTES, q += BG_TQ1_BLOCK) {
        _mm_prefetch((const char *)(row + BG_TQ1_PREFETCH), _MM_HINT_T0);
        __m512i d[4];
        tq1_block_digits(row, d);
        acc = _mm512_dpbusd_epi32(acc, d[0], _mm512_loadu_si512((const void *)q));
        acc = _mm512_dpbusd_epi32(acc, d[1], _mm512_loadu_si512((const void *)(q + 64)));
        acc = _mm512_dpbusd_epi32(acc, d[2], _mm512_loadu_si512((const void *)(q + 128)));
        acc = _mm512_dpbusd_epi32(acc, d[3], _mm512_loadu_si512((const void *)(q + 192)));
    }
    return _mm512_reduce_add_epi32(acc);
}

float bg_tq1_dot_avx512(const uint8_t *row, const bg_act *a) {
    const int nb = a->n / BG_TQ1_BLOCK;
    if (bg_row_one_scale(row, nb, BG_TQ1_BYTES)) {  /* the row's sums in int32, scaled once (0.0 + keeps +0) */
        const int32_t cq = a->tq1 ? tq1_row_sum_ordered(row, nb, a->tq1) : tq1_row_sum_digits(row, nb, a->q);
        return (float)(0.0 + (double)bg_f16_to_f32(tq1_scale_bits(row)) * (cq - a->sum));
    }
    double sum = 0.0;  /* d * isum is exact in double, so FMA contraction cannot change it */
    for (int b = 0; b < nb; b++, row += BG_TQ1_BYTES) {
        _mm_prefetch((const char *)(row + BG_TQ1_PREFETCH), _MM_HINT_T0);  /* a line per 54-byte block covers it */
        __m512i d[4];
        tq1_block_digits(row, d);
        sum += tq1_block_dot(d, a->q + b * BG_TQ1_BLOCK, a->gsum + b * (BG_TQ1_BLOCK / BG_ACT_GROUP),
                             (double)bg_f16_to_f32(tq1_scale_bits(row)));
    }
    return (float)sum;
}

/* Up to four tokens per pass: each block's digits (the expensive part of TQ1_0) are computed once and used for all
 * of them; per token the same block integers and double sums as bg_tq1_dot_avx512, so the same floats. Without it
 * the AVX-512 levels ran the one-row kernel per token, slower than AVX2's multi-token kernel. */
void bg_tq1_dot_multi_avx512(const uint8_t *row, const bg_act *acts, int n, float *out, size_t stride) {
    const int nb = acts[0].n / BG_TQ1_BLOCK;
    for (int t = 0; t < n; t += 4) {
        const int k = n - t < 4 ? n - t : 4;
        double sum[4] = {0.0, 0.0, 0.0, 0.0};
        const uint8_t *blk = row;
        for (int b = 0; b < nb; b++, blk += BG_TQ1_BYTES) {
            __m512i d[4];
            tq1_block_digits(blk, d);
            const double scale = (double)bg_f16_to_f32(tq1_scale_bits(blk));
            for (int i = 0; i < k; i++)
                sum[i] += tq1_block_dot(d, acts[t + i].q + b * BG_TQ1_BLOCK,
                                        acts[t + i].gsum + b * (BG_TQ1_BLOCK / BG_ACT_GROUP), scale);
        }
        for (int i = 0; i < k; i++) out[(size_t)(t + i) * stride] = (float)sum[i];
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
