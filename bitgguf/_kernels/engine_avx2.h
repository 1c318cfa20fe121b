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

/* att[j * att_stride + i] = (K_i · q_j) / div for i < npos and the n_q query heads q_j = q + j * hd of one KV head
 * (F16 rows K_i = k + i * stride, hd % 32 == 0): two heads per pass share each K row's conversion. Each dot is
 * bg_f16_dot_avx2's operation for operation (four 8-wide accumulators over 32-value steps, the same reduction), so
 * the scores are bitwise those of the one-head path. */
void bg_attn_scores_f16_avx2(const uint8_t *k, size_t stride, int npos, const float *q, int n_q, int hd, float div,
                             float *att, size_t att_stride);
#endif

#endif
