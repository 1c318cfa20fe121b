/* Q6_K, Q5_K, Q4_K and Q4_0 output heads, AVX2.
 * The K-quants against Q8_K activations: codes unpacked 32 at a time with byte masks and shifts (as unsigned bytes),
 * vpmaddubsw with the int8 activations, vpmaddwd with the sub-block scales (broadcast per lane by vpshufb), exact
 * int32 sums per block; the Q6_K offset 32 and the Q5_K/Q4_K mins come from the activations' 16-value sums. The
 * per-block f32 combine is the scalar kernel's, so the result is bitwise the same.
 * Q4_0 keeps f32 activations (FMA; differs from scalar by float summation order only). */
#include "kernels.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif
#include "x86_avx2.h"


float bg_q6_k_dot_q8k_avx2(const void *row, const bg_q8k *x) {
    const uint8_t *p = row;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x03);
    /* quarter k of a half uses int16 scale 2k in its low lane (weights 0..15) and 2k + 1 in its high lane */
    __m256i pick[4];
    for (int k = 0; k < 4; k++)
        pick[k] = _mm256_setr_epi8(4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k,
                                   4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k + 2,
                                   4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3,
                                   4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2,
                                   4 * k + 3);
    float sum = 0.0f;
    for (int b = 0; b < x->n / BG_QK_K; b++, p += BG_Q6_K_BYTES) {
        bg_prefetch(p + BG_KQ_PREFETCH);
        bg_prefetch(p + BG_KQ_PREFETCH + 64);
        bg_prefetch(p + BG_KQ_PREFETCH + 128);
        bg_prefetch(p + BG_KQ_PREFETCH + 192);
        const int8_t *xq = x->q + (size_t)b * BG_QK_K;
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 192)));
        __m256i acc = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i sch = h ? _mm256_permute4x64_epi64(sc16, 0xEE) : _mm256_permute4x64_epi64(sc16, 0x44);
            const __m256i ql0 = bg_load256(p + 64 * h), ql1 = bg_load256(p + 64 * h + 32);
            const __m256i qh = bg_load256(p + 128 + 32 * h);
            /* the four 32-weight quarters of this half (codes 0..63); shifts are 16-bit, masks keep each byte's bits */
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4));
            for (int k = 0; k < 4; k++) {
                /* pairs of code * x fit int16: 2 * 63 * 128 */
                const __m256i prod = _mm256_maddubs_epi16(q[k], bg_load256(xq + 128 * h + 32 * k));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(prod, _mm256_shuffle_epi8(sch, pick[k])));
            }
        }
        /* the codes are q - 32: subtract 32 * Σ_j scale_j * Σx_j */
        const __m256i offset = _mm256_madd_epi16(sc16, bg_load256(x->bsum + (size_t)b * 16));
        const int32_t isum = bg_hsum_i32x8(acc) - 32 * bg_hsum_i32x8(offset);
        sum += (bg_f16c_at(p + 208) * x->d[b]) * (float)isum;
    }
    return sum;
}

float bg_q4_0_dot_avx2(const void *row, const float *x, int n) {
    const uint8_t *p = row;
    const __m128i m4 = _mm_set1_epi8(0x0F), k8 = _mm_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / BG_Q4_0_BLOCK; b++, p += BG_Q4_0_BYTES, x += BG_Q4_0_BLOCK) {
        bg_prefetch(p + BG_KQ_PREFETCH);
        const __m128i qs = _mm_loadu_si128((const __m128i *)(p + 2));
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(qs, m4), k8);
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(qs, 4), m4), k8);
        __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), _mm256_loadu_ps(x));
        s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), _mm256_loadu_ps(x + 8),
                            s);
        s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), _mm256_loadu_ps(x + 16), s);
        s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), _mm256_loadu_ps(x + 24),
                            s);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(bg_f16c_at(p)), s, acc);
    }
    return bg_hsum_f32x8(acc);
}

/* ---- Q5_K / Q4_K (layouts in head_q6k_scalar.c) ---- */

/* v shifted so that bit b of each byte lands on bit 4 of the same byte (the caller keeps only bit 4: a 16-bit shift
 * by at most 4 never moves a bit of the other byte onto it) */
static inline __m256i shift_bit_to_4(__m256i v, int b) {
    switch (b) {
    case 0: return _mm256_slli_epi16(v, 4);
    case 1: return _mm256_slli_epi16(v, 3);
    case 2: return _mm256_slli_epi16(v, 2);
    case 3: return _mm256_slli_epi16(v, 1);
    case 4: return v;
    case 5: return _mm256_srli_epi16(v, 1);
    case 6: return _mm256_srli_epi16(v, 2);
    default: return _mm256_srli_epi16(v, 3);
    }
}

/* One Q5_K / Q4_K block at p against activations xq: the int32 partial sums of Σ_j scale_j Σ code·x (8 lanes),
 * and in *mins those of Σ_j min_j Σx_j (4 lanes). Both are exact; the callers add the lanes up. */
static inline __m256i k_block(const uint8_t *p, const int8_t *xq, __m128i bsum32, int five_bit, __m128i *mins) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m16 = _mm256_set1_epi8(0x10);
    const __m128i scm = bg_k_scales_mins(p);
    *mins = _mm_madd_epi16(_mm_unpackhi_epi8(scm, _mm_setzero_si128()), bsum32);
    const __m256i sc = _mm256_broadcastq_epi64(scm);  /* scale bytes 0..7 in every 8 */
    const uint8_t *qs = p + (five_bit ? 48 : 16);
    const __m256i hb = five_bit ? bg_load256(p + 16) : _mm256_setzero_si256();
    __m256i acc = _mm256_setzero_si256();
    for (int pr = 0; pr < 4; pr++) {
        const __m256i v = bg_load256(qs + 32 * pr);
        __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        if (five_bit) {  /* bit 2pr (lo) or 2pr + 1 (hi) of each qh byte, moved to bit 4 */
            lo = _mm256_or_si256(lo, _mm256_and_si256(shift_bit_to_4(hb, 2 * pr), m16));
            hi = _mm256_or_si256(hi, _mm256_and_si256(shift_bit_to_4(hb, 2 * pr + 1), m16));
        }
        const __m256i p0 = _mm256_maddubs_epi16(lo, bg_load256(xq + 64 * pr));
        const __m256i p1 = _mm256_maddubs_epi16(hi, bg_load256(xq + 64 * pr + 32));
        /* scale j as int16 in every slot: byte j, then a zero byte (index 0x80) */
        const __m256i s0 = _mm256_shuffle_epi8(sc, _mm256_set1_epi16((int16_t)(2 * pr | 0x8000)));
        const __m256i s1 = _mm256_shuffle_epi8(sc, _mm256_set1_epi16((int16_t)((2 * pr + 1) | 0x8000)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p0, s0));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p1, s1));
    }
    return acc;
}

static inline float k_dot_q8k_avx2(const uint8_t *p, const bg_q8k *x, int five_bit) {
    const int bytes = five_bit ? BG_Q5_K_BYTES : BG_Q4_K_BYTES;
    float sum = 0.0f;
    for (int b = 0; b < x->n / BG_QK_K; b++, p += bytes) {
        bg_k_prefetch(p, BG_KQ_PREFETCH);
        __m128i mins;
        const __m256i acc = k_block(p, x->q + (size_t)b * BG_QK_K, bg_k_bsum32(x, b), five_bit, &mins);
        sum += bg_k_combine1(p, x->d[b], bg_hsum_i32x8(acc), mins);
    }
    return sum;
}

/* Four rows (row + k * stride) against one token: the block's Σx, the lane sums (one hadd tree for the four rows)
 * and the f32 combine (four rows per vector op, each lane the one-row kernel's exact operations) are shared. The
 * rows are meant to be far apart (bg_dot_q8k_rows reads four quarters of a chunk side by side). From L2, one core
 * (bench.kernels): 10-11 -> 13-16 GB/s for Q5_K at 2B4T's head shape. */
static inline void k_dot_q8k_x4_avx2(const uint8_t *row, size_t stride, const bg_q8k *x, float *out, int five_bit) {
    const int bytes = five_bit ? BG_Q5_K_BYTES : BG_Q4_K_BYTES;
    __m128 sum = _mm_setzero_ps();
    for (int b = 0; b < x->n / BG_QK_K; b++) {
        const int8_t *xq = x->q + (size_t)b * BG_QK_K;
        const __m128i bsum32 = bg_k_bsum32(x, b);
        __m256i acc[4];
        __m128i mins[4];
        uint32_t d_dmin[4];  /* each row's f16 (d, dmin) pair */
        for (int k = 0; k < 4; k++) {
            const uint8_t *p = row + k * stride + (size_t)b * bytes;
            bg_k_prefetch(p, BG_KQ_PREFETCH);
            memcpy(&d_dmin[k], p, 4);
            acc[k] = k_block(p, xq, bsum32, five_bit, &mins[k]);
        }
        sum = bg_k_combine4(sum, d_dmin, x->d[b], bg_hsum4_i32x8(acc[0], acc[1], acc[2], acc[3]), mins);
    }
    _mm_storeu_ps(out, sum);
}

float bg_q5_k_dot_q8k_avx2(const void *row, const bg_q8k *x) { return k_dot_q8k_avx2(row, x, 1); }
float bg_q4_k_dot_q8k_avx2(const void *row, const bg_q8k *x) { return k_dot_q8k_avx2(row, x, 0); }
void bg_q5_k_dot_q8k_x4_avx2(const void *row, size_t stride, const bg_q8k *x, float *out) {
    k_dot_q8k_x4_avx2(row, stride, x, out, 1);
}
void bg_q4_k_dot_q8k_x4_avx2(const void *row, size_t stride, const bg_q8k *x, float *out) {
    k_dot_q8k_x4_avx2(row, stride, x, out, 0);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
