/* AVX-512 versions of the engine's per-token helpers (engine_avx2.c), for the AVX-512 levels: the same operations
 * lane by lane in 16-wide registers, and the same vector / scalar split of a row's values (16-wide while 16 are
 * left, then one 8-wide step where AVX2 would take it, then AVX2's scalar tail), so every result is bitwise the
 * AVX2 helper's. In a prompt they were 6% of the time at 8 lanes. */
#include "engine_avx2.h"

#include <math.h>

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")
#endif
#include "x86_avx2.h"
#include "x86_avx512.h"

void bg_quantize_act_avx512(const float *x, int n, bg_act *a) {
    __m512 vmax = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
    float amax = _mm512_reduce_max_ps(vmax);  /* a max: any order gives the same value */
    for (; i < n; i++) amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
    const float s = bg_act_scale(amax);
    const __m512 vs = _mm512_set1_ps(s), lo = _mm512_set1_ps(-128.0f), hi = _mm512_set1_ps(127.0f);
    int32_t total = 0;
    int g = 0;
    for (; (g + 1) * BG_ACT_GROUP <= n; g++) {  /* whole groups of 32: round, clamp, narrow to int8, sum */
        const float *xg = x + g * BG_ACT_GROUP;
        __m512i v[2];
        for (int k = 0; k < 2; k++) {
            const __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(xg + 16 * k), vs),
                                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            v[k] = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(r, lo), hi));
            _mm_storeu_si128((__m128i *)(a->q + g * BG_ACT_GROUP + 16 * k), _mm512_cvtepi32_epi8(v[k]));
        }
        a->gsum[g] = _mm512_reduce_add_epi32(_mm512_add_epi32(v[0], v[1]));  /* integers: exact in any order */
        total += a->gsum[g];
    }
    bg_quantize_act_rest(x, n, s, g, total, a);  /* the last partial group as the portable code does it */
}

void bg_rmsnorm_avx512(float *o, const float *x, const float *w, int n, float eps) {
    /* lane l of s[j]: bg_rmsnorm's s[8j + l]; the combination below is bg_rmsnorm_avx2's */
    __m512d s[2] = {_mm512_setzero_pd(), _mm512_setzero_pd()};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 2; j++) {
            const __m512d v = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8 * j));
            s[j] = _mm512_add_pd(s[j], _mm512_mul_pd(v, v));
        }
    double lanes[8];
    _mm512_storeu_pd(lanes, s[0]);
    for (; i < n; i++) lanes[0] += (double)x[i] * x[i];
    const __m512d b = _mm512_add_pd(_mm512_loadu_pd(lanes), s[1]);  /* lane l: s[l] + s[l + 8] */
    const __m256d t = _mm256_add_pd(_mm512_castpd512_pd256(b), _mm512_extractf64x4_pd(b, 1));
    _mm256_storeu_pd(lanes, t);
    const double ss = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    const float inv = 1.0f / sqrtf((float)(ss / n) + eps);
    const __m512 vinv = _mm512_set1_ps(inv);
    for (i = 0; i + 16 <= n; i += 16)
        _mm512_storeu_ps(o + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), vinv), _mm512_loadu_ps(w + i)));
    for (; i < n; i++) o[i] = x[i] * inv * w[i];
}

void bg_silu_mul_avx512(float *g, const float *u, int n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 x = _mm512_loadu_ps(g + i);
        const __m512 e = bg_exp_f32x16(_mm512_castsi512_ps(
            _mm512_xor_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u))));
        _mm512_storeu_ps(g + i, _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, e)), _mm512_loadu_ps(u + i)));
    }
    bg_silu_mul_avx2(g + i, u + i, n - i);  /* the rest: AVX2's 8-wide step and scalar tail */
}

void bg_scale_dots_avx512(float *y, int n, float div, float mul) {
    const __m512 vd = _mm512_set1_ps(div), vm = _mm512_set1_ps(mul);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_div_ps(_mm512_loadu_ps(y + i), vd), vm));
    bg_scale_dots_avx2(y + i, n - i, div, mul);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
