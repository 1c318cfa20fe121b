/* AVX2 versions of the engine's per-token helpers (engine_avx2.c); the engine uses them at the AVX2 and AVX-512
 * levels. Same results as the portable code: bitwise for the quantization, float order only for attention. */
#ifndef BITGGUF_ENGINE_AVX2_H
#define BITGGUF_ENGINE_AVX2_H

#include "kernels.h"

#if defined(__x86_64__)
/* bg_quantize_act, bit for bit (the same f32 products, round half to even, clamp, exact sums). */
void bg_quantize_act_avx2(const float *x, int n, bg_act *a);

/* out[0..hd) = Σ_i att[i] * V_i over npos F16 rows V_i = v + i * stride (hd % 8 == 0, hd <= 256): attention's
 * weighted sum with the output in registers instead of one load and store of out per row. Per element the sum
 * runs over i in order with one fused multiply-add each, as bg_f16_axpy_avx2 would. */
void bg_attn_sum_f16_avx2(const uint8_t *v, size_t stride, const float *att, int npos, int hd, float *out);
#endif

#endif
