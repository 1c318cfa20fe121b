/* AVX2 per-token helpers for the engine (see engine_avx2.h). */
#include "engine_avx2.h"

#include <math.h>

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif
#include "x86_avx2.h"

void bg_quantize_act_avx2(const float *x, int n, bg_act *a) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 vmax = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
    float lanes[8], amax = 0.0f;
    _mm256_storeu_ps(lanes, vmax);
    for (int k = 0; k < 8; k++) amax = lanes[k] > amax ? lanes[k] : amax;
    for (; i < n; i++) amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
    const float s = 127.0f / (amax > 1e-5f ? amax : 1e-5f);  /* as bg_quantize_act */
    const __m256 vs = _mm256_set1_ps(s), lo = _mm256_set1_ps(-128.0f), hi = _mm256_set1_ps(127.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int32_t total = 0;
    int g = 0;
    for (; (g + 1) * BG_ACT_GROUP <= n; g++) {  /* whole groups of 32: round, clamp, pack to int8, sum */
        const float *xg = x + g * BG_ACT_GROUP;
        __m256i v[4];
        for (int k = 0; k < 4; k++) {
            __m256 r = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(xg + 8 * k), vs),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            v[k] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi));
        }
        __m256i s32 = _mm256_add_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3]));
        /* packs work within 128-bit lanes: the permute puts the 32 bytes back in order */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
        _mm256_storeu_si256((__m256i *)(a->q + g * BG_ACT_GROUP), _mm256_permutevar8x32_epi32(p, order));
        a->gsum[g] = bg_hsum_i32x8(s32);
        total += a->gsum[g];
    }
    if (g * BG_ACT_GROUP < n) {  /* the last partial group, as the portable code does it */
        int32_t gs = 0;
        for (int j = g * BG_ACT_GROUP; j < n; j++) {
            float r = nearbyintf(x[j] * s);
            int q = r > 127.0f ? 127 : r < -128.0f ? -128 : (int)r;
            a->q[j] = (int8_t)q;
            gs += q;
        }
        a->gsum[g] = gs;
        total += gs;
    }
    a->n = n;
    a->scale = s;
    a->sum = total;
}

void bg_attn_sum_f16_avx2(const uint8_t *v, size_t stride, const float *att, int npos, int hd, float *out) {
    /* 64 outputs (8 registers) at a time over all rows */
    for (int d0 = 0; d0 < hd; d0 += 64) {
        const int nr = (hd - d0) / 8 < 8 ? (hd - d0) / 8 : 8;
        __m256 acc[8];
        for (int k = 0; k < 8; k++) acc[k] = _mm256_setzero_ps();
        const uint8_t *row = v + (size_t)d0 * 2;
        if (nr == 8) {
            for (int i = 0; i < npos; i++, row += stride) {
                const __m256 w = _mm256_set1_ps(att[i]);
                const __m128i *h = (const __m128i *)row;
                for (int k = 0; k < 8; k++) acc[k] = _mm256_fmadd_ps(w, _mm256_cvtph_ps(_mm_loadu_si128(h + k)), acc[k]);
            }
        } else {
            for (int i = 0; i < npos; i++, row += stride) {
                const __m256 w = _mm256_set1_ps(att[i]);
                const __m128i *h = (const __m128i *)row;
                for (int k = 0; k < nr; k++) acc[k] = _mm256_fmadd_ps(w, _mm256_cvtph_ps(_mm_loadu_si128(h + k)), acc[k]);
            }
        }
        for (int k = 0; k < nr; k++) _mm256_storeu_ps(out + d0 + 8 * k, acc[k]);
    }
}

void bg_attn_scores_f16_avx2(const uint8_t *k, size_t stride, int npos, const float *q, int n_q, int hd, float div,
                             float *att, size_t att_stride) {
    for (int j = 0; j < n_q; j += 2) {
        const int two = j + 1 < n_q;
        const float *qa = q + (size_t)j * hd, *qb = two ? qa + hd : qa;
        float *out_a = att + (size_t)j * att_stride, *out_b = two ? out_a + att_stride : out_a;
        const uint8_t *row = k;
        for (int i = 0; i < npos; i++, row += stride) {
            const uint16_t *w = (const uint16_t *)row;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            for (int d = 0; d < hd; d += 32) {
                const __m256 k0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + d)));
                const __m256 k1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + d + 8)));
                const __m256 k2 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + d + 16)));
                const __m256 k3 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + d + 24)));
                a0 = _mm256_fmadd_ps(k0, _mm256_loadu_ps(qa + d), a0);
                a1 = _mm256_fmadd_ps(k1, _mm256_loadu_ps(qa + d + 8), a1);
                a2 = _mm256_fmadd_ps(k2, _mm256_loadu_ps(qa + d + 16), a2);
                a3 = _mm256_fmadd_ps(k3, _mm256_loadu_ps(qa + d + 24), a3);
                b0 = _mm256_fmadd_ps(k0, _mm256_loadu_ps(qb + d), b0);
                b1 = _mm256_fmadd_ps(k1, _mm256_loadu_ps(qb + d + 8), b1);
                b2 = _mm256_fmadd_ps(k2, _mm256_loadu_ps(qb + d + 16), b2);
                b3 = _mm256_fmadd_ps(k3, _mm256_loadu_ps(qb + d + 24), b3);
            }
            out_a[i] = bg_hsum_f32x8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))) / div;
            out_b[i] = bg_hsum_f32x8(_mm256_add_ps(_mm256_add_ps(b0, b1), _mm256_add_ps(b2, b3))) / div;
        }
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
