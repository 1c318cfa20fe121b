/* Q5_K and Q4_K output heads, AVX-512 VNNI (layouts in head_q6k_scalar.c). A zmm holds 64 codes: the low (or high)
 * nibbles of two 32-byte pairs of qs, that is two sub-blocks; vpdpbusd sums each 4 codes times their activations into
 * an int32 lane (at most 4 * 31 * 128: it fits int16), and vpdpwssd multiplies each lane's low int16 by its
 * sub-block's scale (the high int16, its sign, by 0) and adds. Per block the exact integers of head_q6k_avx2.c,
 * and its f32 combine (bg_k_combine4, or the one-row form), so every row gets the scalar kernel's bits. Compared with
 * AVX2's maddubs + madd + shuffles per 32 codes, about half the vector instructions per block. */
#include "kernels.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), \
                             apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif
#include "x86_avx2.h"
#include "x86_avx512.h"

/* A block's activations in the order of its code vectors: for m = 0, 1, the low nibbles of qs[64m..64m+63] are
 * sub-blocks 4m and 4m + 2, the high nibbles 4m + 1 and 4m + 3 (32 values each). */
typedef struct {
    __m512i lo[2], hi[2];
} k_acts;

static inline k_acts block_acts(const int8_t *xq) {
    k_acts a;
    for (int m = 0; m < 2; m++) {
        const __m512i x0 = _mm512_loadu_si512((const void *)(xq + 128 * m));       /* sub-blocks 4m, 4m + 1 */
        const __m512i x1 = _mm512_loadu_si512((const void *)(xq + 128 * m + 64));  /* 4m + 2, 4m + 3 */
        a.lo[m] = _mm512_shuffle_i64x2(x0, x1, 0x44);
        a.hi[m] = _mm512_shuffle_i64x2(x0, x1, 0xee);
    }
    return a;
}

/* int16 (scale, 0) pairs in every int32 lane: scale j in lanes 0-7, scale k in lanes 8-15 (bytes of scm) */
static inline __m512i scale_pairs(__m512i scm4, int j, int k) {
    const __m512i pick = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32((int)(0x80808000u | (unsigned)j))),
                                            _mm256_set1_epi32((int)(0x80808000u | (unsigned)k)), 1);
    return _mm512_shuffle_epi8(scm4, pick);
}

/* One Q5_K / Q4_K block at p: the int32 lane sums of Σ_j scale_j Σ code·x (16 lanes), and in *mins those of
 * Σ_j min_j Σx_j (4 lanes). Both exact. */
static inline __m512i k_block(const uint8_t *p, const k_acts *a, __m128i bsum32, int five_bit, __m128i *mins) {
    const __m512i m4 = _mm512_set1_epi8(0x0f), b4 = _mm512_set1_epi8(0x10);
    const __m128i scm = bg_k_scales_mins(p);
    *mins = _mm_madd_epi16(_mm_unpackhi_epi8(scm, _mm_setzero_si128()), bsum32);
    const __m512i scm4 = _mm512_broadcast_i32x4(scm);
    const uint8_t *qs = p + (five_bit ? 48 : 16);
    const __m512i qh = five_bit ? _mm512_broadcast_i64x4(bg_load256(p + 16)) : _mm512_setzero_si512();
    __m512i acc = _mm512_setzero_si512();
    for (int m = 0; m < 2; m++) {
        const __m512i v = _mm512_loadu_si512((const void *)(qs + 64 * m));
        __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        if (five_bit) {  /* sub-block j's fifth bits are bit j of qh[0..31] */
            const __mmask64 lo5 = _mm512_test_epi8_mask(qh, bg_mask_pair(1 << (4 * m), 1 << (4 * m + 2)));
            const __mmask64 hi5 = _mm512_test_epi8_mask(qh, bg_mask_pair(2 << (4 * m), 2 << (4 * m + 2)));
            lo = _mm512_mask_add_epi8(lo, lo5, lo, b4);
            hi = _mm512_mask_add_epi8(hi, hi5, hi, b4);
        }
        const __m512i dlo = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, a->lo[m]);
        const __m512i dhi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi, a->hi[m]);
        acc = _mm512_dpwssd_epi32(acc, dlo, scale_pairs(scm4, 4 * m, 4 * m + 2));
        acc = _mm512_dpwssd_epi32(acc, dhi, scale_pairs(scm4, 4 * m + 1, 4 * m + 3));
    }
    return acc;
}

static inline __m256i halves_added(__m512i v) {
    return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

/* Prefetch distance: bg_cpu_decode_prefetch's, 8 KiB on AMD (Zen 5, 2B4T decode at 2 threads: 4 KiB 33.1, 8 KiB
 * 36.1, 16 KiB 36.8, 24 KiB 33.7 GB/s from DRAM), 2 KiB elsewhere (Sapphire Rapids VM, the Q5_K head at 2 threads
 * 22.7-25.2 GB/s at 8 KiB, 27.5-29.4 at 4, 30.7 at 2 and 30.4-30.8 at 1; one thread 12.7-12.9 -> 15.7-16.2). */

static inline float k_dot_q8k(const uint8_t *p, const bg_q8k *x, int five_bit) {
    const int ahead = bg_cpu_decode_prefetch();
    const int bytes = five_bit ? BG_Q5_K_BYTES : BG_Q4_K_BYTES;
    float sum = 0.0f;
    for (int b = 0; b < x->n / BG_QK_K; b++, p += bytes) {
        bg_k_prefetch(p, ahead);
        const k_acts a = block_acts(x->q + (size_t)b * BG_QK_K);
        __m128i mins;
        const __m512i acc = k_block(p, &a, bg_k_bsum32(x, b), five_bit, &mins);
        sum += bg_k_combine1(p, x->d[b], bg_hsum_i32x8(halves_added(acc)), mins);
    }
    return sum;
}

/* Four rows (row + k * stride, far apart: bg_dot_q8k_rows' quarters) against one token: the block's activations in
 * code order, Σx and the f32 combine are shared by the four rows. */
static inline void k_dot_q8k_x4(const uint8_t *row, size_t stride, const bg_q8k *x, float *out, int five_bit) {
    const int ahead = bg_cpu_decode_prefetch();
    const int bytes = five_bit ? BG_Q5_K_BYTES : BG_Q4_K_BYTES;
    __m128 sum = _mm_setzero_ps();
    for (int b = 0; b < x->n / BG_QK_K; b++) {
        const k_acts a = block_acts(x->q + (size_t)b * BG_QK_K);
        const __m128i bsum32 = bg_k_bsum32(x, b);
        __m256i acc[4];
        __m128i mins[4];
        uint32_t d_dmin[4];  /* each row's f16 (d, dmin) pair */
        for (int k = 0; k < 4; k++) {
            const uint8_t *p = row + k * stride + (size_t)b * bytes;
            bg_k_prefetch(p, ahead);
            memcpy(&d_dmin[k], p, 4);
            acc[k] = halves_added(k_block(p, &a, bsum32, five_bit, &mins[k]));
        }
        sum = bg_k_combine4(sum, d_dmin, x->d[b], bg_hsum4_i32x8(acc[0], acc[1], acc[2], acc[3]), mins);
    }
    _mm_storeu_ps(out, sum);
}

float bg_q5_k_dot_q8k_avx512(const void *row, const bg_q8k *x) { return k_dot_q8k(row, x, 1); }
float bg_q4_k_dot_q8k_avx512(const void *row, const bg_q8k *x) { return k_dot_q8k(row, x, 0); }
void bg_q5_k_dot_q8k_x4_avx512(const void *row, size_t stride, const bg_q8k *x, float *out) {
    k_dot_q8k_x4(row, stride, x, out, 1);
}
void bg_q4_k_dot_q8k_x4_avx512(const void *row, size_t stride, const bg_q8k *x, float *out) {
    k_dot_q8k_x4(row, stride, x, out, 0);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
