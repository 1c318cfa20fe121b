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
    const float s = bg_act_scale(amax);
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
    bg_quantize_act_rest(x, n, s, g, total, a);  /* the last partial group as the portable code does it */
}

void bg_rmsnorm_avx2(float *o, const float *x, const float *w, int n, float eps) {
    /* lane l of s[j]: bg_rmsnorm's s[4j + l], the same products and adds in the same order */
    __m256d s[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 4; j++) {
            const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4 * j));
            s[j] = _mm256_add_pd(s[j], _mm256_mul_pd(v, v));
        }
    double lanes[4];
    _mm256_storeu_pd(lanes, s[0]);
    for (; i < n; i++) lanes[0] += (double)x[i] * x[i];
    s[0] = _mm256_loadu_pd(lanes);
    const __m256d t = _mm256_add_pd(_mm256_add_pd(s[0], s[2]), _mm256_add_pd(s[1], s[3]));
    _mm256_storeu_pd(lanes, t);
    const double ss = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    const float inv = 1.0f / sqrtf((float)(ss / n) + eps);
    const __m256 vinv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vinv), _mm256_loadu_ps(w + i)));
    for (; i < n; i++) o[i] = x[i] * inv * w[i];
}

void bg_silu_mul_avx2(float *g, const float *u, int n) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 e = bg_exp_f32x8(_mm256_xor_ps(x, sign));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void bg_scale_dots_avx2(float *y, int n, float div, float mul) {
    const __m256 vd = _mm256_set1_ps(div), vm = _mm256_set1_ps(mul);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_div_ps(_mm256_loadu_ps(y + i), vd), vm));
    for (; i < n; i++) y[i] = y[i] / div * mul;
}

void bg_f32_to_f16_avx2(const float *x, uint16_t *h, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) h[i] = bg_f32_to_f16(x[i]);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
