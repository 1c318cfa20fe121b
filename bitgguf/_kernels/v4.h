/* Four float lanes as a GCC / clang vector (SSE2 or NEON; scalar code elsewhere), for C loops that must give the
 * same floats at every level: each lane does exactly what the scalar code would, and comparisons select rather than
 * branch (left to themselves, the compilers keep float compares in loops as branches). */
#ifndef BG_V4_H
#define BG_V4_H

#include <stdint.h>

typedef float v4 __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4 v4_splat(float a) { return (v4){a, a, a, a}; }
static inline v4 v4_sel(v4i m, v4 a, v4 b) { return (v4)((m & (v4i)a) | (~m & (v4i)b)); }

/* a < b ? a : b and a > b ? a : b, lane by lane: minps and maxps are exactly that (signed zeros and NaNs too) */
#if defined(__SSE__)
#include <xmmintrin.h>
static inline v4 v4_min(v4 a, v4 b) { return (v4)_mm_min_ps((__m128)a, (__m128)b); }
static inline v4 v4_max(v4 a, v4 b) { return (v4)_mm_max_ps((__m128)a, (__m128)b); }
#else
static inline v4 v4_min(v4 a, v4 b) { return v4_sel(a < b, a, b); }
static inline v4 v4_max(v4 a, v4 b) { return v4_sel(a > b, a, b); }
#endif

/* round half to even, then clamp to [lo, hi], lane by lane; clamping to [lo - 1, hi + 1] first keeps |v| < 2^22,
 * where adding 1.5 * 2^23 rounds at the units place. v < lo ? lo : v is max(lo, v), v > hi ? hi : v is min(hi, v). */
static inline v4 v4_round_clamp(v4 v, float lo, float hi) {
    const v4 magic = v4_splat(12582912.0f);
    v = v4_min(v4_splat(hi + 1.0f), v4_max(v4_splat(lo - 1.0f), v));
    v = (v + magic) - magic;
    return v4_min(v4_splat(hi), v4_max(v4_splat(lo), v));
}

#endif
