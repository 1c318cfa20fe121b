/* BitNet b1.58's absmean weight rule over a whole tensor, for the converter (types.absmean_ternarize is the numpy
 * statement of it, and this code's test oracle): alpha = mean|W| (at least 1e-5), codes = clamp(round(W / alpha),
 * -1, 1), in float32, half to even, as torch.round in the reference converters.
 *
 * Straight from the checkpoint's bf16 bits, or from f32: numpy took 15 s of temporaries (abs, multiply, round,
 * clip, cast) and a widened float32 copy for 2B4T's 2.4 G weights. The mean is a double sum in 16 fixed lanes, the
 * same bits whatever the vector width; for bf16 weights (8 significant bits) every partial sum is exact in double
 * unless the tensor's magnitudes span more than about 2^40, so numpy's pairwise sum agrees to the bit. */
#include <math.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kernels.h"
#include "v4.h"

enum { LANES = 16 };

static inline float weight_at(const void *w, int bf16, int64_t i) {
    return bf16 ? bg_bf16_to_f32(((const uint16_t *)w)[i]) : ((const float *)w)[i];
}

/* four weights from i on */
static inline v4 weights4(const void *w, int bf16, int64_t i) {
    if (bf16) {
        const uint16_t *b = (const uint16_t *)w + i;
        return (v4)((v4i){b[0], b[1], b[2], b[3]} << 16);
    }
    const float *f = (const float *)w + i;
    return (v4){f[0], f[1], f[2], f[3]};
}

/* Σ |w| in double over 16 lanes (lane k takes i = k mod 16, in order), then the lanes in order. Not finite when a
 * weight is not: finite weights cannot overflow it. */
static double sum_abs(const void *w, int bf16, int64_t n) {
    double lane[LANES] = {0};
    int64_t i = 0;
    if (bf16) {
        for (; i + LANES <= n; i += LANES)
            for (int k = 0; k < LANES; k++)
                lane[k] += (double)bg_bits_to_f32((uint32_t)(((const uint16_t *)w)[i + k] & 0x7FFF) << 16);
    } else {
        for (; i + LANES <= n; i += LANES)
            for (int k = 0; k < LANES; k++) lane[k] += (double)fabsf(((const float *)w)[i + k]);
    }
    for (int k = 0; i < n; i++, k++) lane[k] += (double)fabsf(weight_at(w, bf16, i));
    double sum = 0.0;
    for (int k = 0; k < LANES; k++) sum += lane[k];
    return sum;
}

/* clamp(round(v * s), -1, 1) of 16 weights, half to even, into codes */
static inline void put_codes16(const v4 *v, float s, int8_t *codes) {
    v4i c[4];
    for (int k = 0; k < 4; k++) c[k] = __builtin_convertvector(v4_round_clamp(v[k] * v4_splat(s), -1.0f, 1.0f), v4i);
#if defined(__SSE2__)
    const __m128i lo = _mm_packs_epi32((__m128i)c[0], (__m128i)c[1]), hi = _mm_packs_epi32((__m128i)c[2], (__m128i)c[3]);
    _mm_storeu_si128((__m128i *)codes, _mm_packs_epi16(lo, hi));
#else
    for (int k = 0; k < 16; k++) codes[k] = (int8_t)c[k / 4][k % 4];
#endif
}

int64_t bg_absmean_ternarize(const void *w, int bf16, int64_t n, int8_t *codes, float *alpha) {
    const double sum = sum_abs(w, bf16, n);
    if (!isfinite(sum)) {
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(weight_at(w, bf16, i))) return i;
    }
    const float mean = n > 0 ? (float)(sum / (double)n) : 0.0f;
    const float s = 1.0f / (mean > 1e-5f ? mean : 1e-5f);
    v4 v[4];
    int64_t i = 0;
    if (bf16) {
        for (; i + 16 <= n; i += 16) {
            for (int k = 0; k < 4; k++) v[k] = weights4(w, 1, i + 4 * k);
            put_codes16(v, s, codes + i);
        }
    } else {
        for (; i + 16 <= n; i += 16) {
            for (int k = 0; k < 4; k++) v[k] = weights4(w, 0, i + 4 * k);
            put_codes16(v, s, codes + i);
        }
    }
    if (i < n) {  /* the last 1-15 weights, padded with zeros */
        float tail[16] = {0};
        int8_t c[16];
        for (int k = 0; i + k < n; k++) tail[k] = weight_at(w, bf16, i + k);
        for (int k = 0; k < 4; k++) v[k] = (v4){tail[4 * k], tail[4 * k + 1], tail[4 * k + 2], tail[4 * k + 3]};
        put_codes16(v, s, c);
        memcpy(codes + i, c, (size_t)(n - i));
    }
    *alpha = 1.0f / s;
    return -1;
}
