/* Q6_K, Q5_K and Q4_K quantization (ggml's quantize_row_q{6,5,4}_K_ref), byte for byte what kquants.py's numpy
 * code writes: the converter's head (328 M weights for 2B4T) in seconds.
 *
 * Why the odd loop shape: ggml's trial-scale searches sum over the 16 or 32 weights of a sub-block in order, in
 * float32. Here four sub-blocks of a super-block sit side by side in the lanes of a vector (xt[i][g] = weight i of
 * sub-blocks 4g..4g+3), so each step of a sum is one vector add, while every lane still adds its terms in ggml's
 * order: the same floats as a one-at-a-time C loop and as numpy. A search remembers the scale its best trial used
 * and takes that trial's codes again at the end, rather than copying codes at every better trial. Built with
 * -ffp-contract=off (no fused multiply-adds), and rounding is round-half-even like ggml's nearest_int and numpy's
 * rint. One core, Sapphire Rapids VM: Q5_K 76-89 -> 30-31 ns per weight, Q6_K 110 -> 29 (the lanes had been
 * arrays that the compiler left as scalar code). */
#include <math.h>

#include "kernels.h"
#include "v4.h"

#define GROUP_MAX_EPS 1e-15f

/* round half to even, for |v| < 2^22 (the callers clamp first): the add rounds at the units place */
static inline float round_even(float v) { return (v + 12582912.0f) - 12582912.0f; }

/* round_even(v) clamped to [lo, hi]; clamping to [lo - 1, hi + 1] first gives the same result for any v */
static inline float round_clamp(float v, float lo, float hi) {
    v = v < lo - 1.0f ? lo - 1.0f : v > hi + 1.0f ? hi + 1.0f : v;
    v = round_even(v);
    return v < lo ? lo : v > hi ? hi : v;
}

/* the value of largest |v| among n (the first on ties) and that |v| */
static float first_absmax(const float *v, int n, int stride, float *amax_out) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; i++) {
        const float a = fabsf(v[i * stride]);
        if (a > amax) amax = a, max = v[i * stride];
    }
    *amax_out = amax;
    return max;
}

/* ---- Q6_K: 16 sub-blocks of 16, make_qx_quants(16, nmax 32, rmse_type 1) per sub-block -------------------- */

enum { Q6_SUB = 16, Q6_N = 16, Q6_G = Q6_SUB / 4 };

/* Σ_i wx l and Σ_i (w l) l over i in order, l = round(iscale x) clamped to [-32, 31], for every lane */
static inline void q6_trial(const v4 xt[Q6_N][Q6_G], const v4 w[Q6_N][Q6_G], const v4 wx[Q6_N][Q6_G], const v4 *iscale,
                            v4 *sumlx, v4 *suml2) {
    for (int g = 0; g < Q6_G; g++) {
        const v4 l = v4_round_clamp(iscale[g] * xt[0][g], -32.0f, 31.0f);
        sumlx[g] = wx[0][g] * l, suml2[g] = (w[0][g] * l) * l;
    }
    for (int i = 1; i < Q6_N; i++)
        for (int g = 0; g < Q6_G; g++) {
            const v4 l = v4_round_clamp(iscale[g] * xt[i][g], -32.0f, 31.0f);
            sumlx[g] += wx[i][g] * l, suml2[g] += (w[i][g] * l) * l;
        }
}

static void q6_k_block(const float *x, uint8_t *out) {
    const v4 vzero = v4_splat(0.0f);
    v4 xt[Q6_N][Q6_G], w[Q6_N][Q6_G], wx[Q6_N][Q6_G], mx[Q6_G], iscale[Q6_G], best_iscale[Q6_G], best[Q6_G];
    v4 scale_v[Q6_G], sumlx[Q6_G], suml2[Q6_G];
    float scale[Q6_SUB];
    int zero[Q6_SUB];
    for (int s = 0; s < Q6_SUB; s++) {
        float amax;
        float m = first_absmax(x + 16 * s, 16, 1, &amax);
        zero[s] = amax < GROUP_MAX_EPS;
        if (zero[s]) m = 1.0f;
        mx[s / 4][s % 4] = m;
        for (int i = 0; i < Q6_N; i++) xt[i][s / 4][s % 4] = x[16 * s + i];
    }
    for (int g = 0; g < Q6_G; g++) {
        for (int i = 0; i < Q6_N; i++) w[i][g] = xt[i][g] * xt[i][g], wx[i][g] = w[i][g] * xt[i][g];
        iscale[g] = v4_splat(-32.0f) / mx[g];
    }
    q6_trial(xt, w, wx, iscale, sumlx, suml2);
    for (int g = 0; g < Q6_G; g++) {
        scale_v[g] = v4_sel(suml2[g] != vzero, sumlx[g] / suml2[g], vzero);
        best[g] = scale_v[g] * sumlx[g];
        best_iscale[g] = iscale[g];
    }
    for (int step = -9; step <= 9; step++) {
        if (step == 0) continue;
        for (int g = 0; g < Q6_G; g++) iscale[g] = v4_splat(-(32.0f + 0.1f * (float)step)) / mx[g];
        q6_trial(xt, w, wx, iscale, sumlx, suml2);
        for (int g = 0; g < Q6_G; g++) {
            const v4i better = (suml2[g] > vzero) & (sumlx[g] * sumlx[g] > best[g] * suml2[g]);
            const v4 this_scale = sumlx[g] / suml2[g];
            best[g] = v4_sel(better, this_scale * sumlx[g], best[g]);
            scale_v[g] = v4_sel(better, this_scale, scale_v[g]);
            best_iscale[g] = v4_sel(better, iscale[g], best_iscale[g]);
        }
    }
    float lq[Q6_N][Q6_SUB];  /* the best trial's codes again, from the same floats */
    for (int i = 0; i < Q6_N; i++)
        for (int g = 0; g < Q6_G; g++) {
            const v4 l = v4_round_clamp(best_iscale[g] * xt[i][g], -32.0f, 31.0f);
            for (int k = 0; k < 4; k++) lq[i][4 * g + k] = l[k];
        }
    for (int s = 0; s < Q6_SUB; s++) scale[s] = scale_v[s / 4][s % 4];
    uint8_t codes[256];
    for (int s = 0; s < Q6_SUB; s++) {
        if (zero[s]) scale[s] = 0.0f;
        for (int i = 0; i < Q6_N; i++) codes[16 * s + i] = zero[s] ? 0 : (uint8_t)(lq[i][s] + 32.0f);
    }
    /* the 16 scales as int8 against the largest, then the codes again against the rounded scales */
    float max_abs;
    const float max_scale = first_absmax(scale, Q6_SUB, 1, &max_abs);
    memset(out, 0, BG_Q6_K_BYTES);
    if (max_abs < GROUP_MAX_EPS) return;  /* an all-zero block is all-zero bytes */
    const float isc = -128.0f / max_scale;
    const uint16_t d16 = bg_f32_to_f16(1.0f / isc);
    const float d = bg_f16_to_f32(d16);
    int8_t *sc = (int8_t *)(out + 192);
    for (int s = 0; s < Q6_SUB; s++) {
        const float r = round_clamp(isc * scale[s], -128.0f, 127.0f);
        sc[s] = (int8_t)r;
        const float ds = d * (float)sc[s];
        if (ds == 0.0f) continue;
        for (int i = 0; i < 16; i++) codes[16 * s + i] = (uint8_t)(round_clamp(x[16 * s + i] / ds, -32.0f, 31.0f) + 32.0f);
    }
    for (int h = 0; h < 2; h++) {
        const uint8_t *q = codes + 128 * h;
        uint8_t *ql = out + 64 * h, *qh = out + 128 + 32 * h;
        for (int l = 0; l < 32; l++) {
            ql[l] = (uint8_t)((q[l] & 0xF) | ((q[l + 64] & 0xF) << 4));
            ql[l + 32] = (uint8_t)((q[l + 32] & 0xF) | ((q[l + 96] & 0xF) << 4));
            qh[l] = (uint8_t)((q[l] >> 4) | ((q[l + 32] >> 4) << 2) | ((q[l + 64] >> 4) << 4) | ((q[l + 96] >> 4) << 6));
        }
    }
    memcpy(out + 208, &d16, 2);
}

/* ---- Q5_K / Q4_K: 8 sub-blocks of 32, make_qkx2_quants (weighted least squares with a free min) ------------ */

enum { K_SUB = 8, K_N = 32 };

/* The 8 sub-blocks as K_G groups of 4 lanes, interleaved (xt[i][g] = weight i of sub-blocks 4g..4g+3): a sum
 * over i is a chain of dependent adds, and two chains side by side keep the adder busy. */
enum { K_G = K_SUB / 4 };

/* Σ_i w (scale l + min - x)^2, over i in order */
static inline void qkx2_error(const v4 xt[K_N][K_G], const v4 w[K_N][K_G], const v4 l[K_N][K_G], const v4 *scale,
                              const v4 *min, v4 *e) {
    for (int g = 0; g < K_G; g++) {
        const v4 diff = (scale[g] * l[0][g] + min[g]) - xt[0][g];
        e[g] = w[0][g] * (diff * diff);
    }
    for (int i = 1; i < K_N; i++)
        for (int g = 0; g < K_G; g++) {
            const v4 diff = (scale[g] * l[i][g] + min[g]) - xt[i][g];
            e[g] += w[i][g] * (diff * diff);
        }
}

/* make_qkx2_quants(32, nmax, x, weights, L, &min, Laux, rmin, 0.1, nstep, use_mad 0) on the 8 sub-blocks: codes in
 * L, scale and -min (the amount the block later subtracts). A trial's three sums stay in registers over one pass. */
static void qkx2_lanes(const v4 xt[K_N][K_G], const v4 w[K_N][K_G], float nmax, float rmin, int nstep,
                       v4 L[K_N][K_G], v4 *scale, v4 *neg_min) {
    const v4 zero = v4_splat(0.0f), one = v4_splat(1.0f);
    v4 mn[K_G], mx[K_G], mn0[K_G], sum_w[K_G], sum_x[K_G], best[K_G], best_iscale[K_G], best_mn[K_G];
    v4i flat[K_G];
    for (int g = 0; g < K_G; g++) {
        mn[g] = mx[g] = xt[0][g];
        for (int i = 1; i < K_N; i++) {
            mn[g] = v4_sel(xt[i][g] < mn[g], xt[i][g], mn[g]);
            mx[g] = v4_sel(xt[i][g] > mx[g], xt[i][g], mx[g]);
        }
        mn[g] = v4_sel(mn[g] > zero, zero, mn[g]);
        flat[g] = mx[g] == mn[g];
        mn0[g] = mn[g];
        const v4 iscale = v4_splat(nmax) / v4_sel(flat[g], one, mx[g] - mn[g]);
        scale[g] = one / iscale;
        best_iscale[g] = iscale, best_mn[g] = mn[g];
        sum_w[g] = w[0][g], sum_x[g] = w[0][g] * xt[0][g];
        for (int i = 1; i < K_N; i++) sum_w[g] += w[i][g], sum_x[g] += w[i][g] * xt[i][g];
        for (int i = 0; i < K_N; i++) L[i][g] = v4_round_clamp(iscale * (xt[i][g] - mn[g]), 0.0f, nmax);
    }
    qkx2_error(xt, w, L, scale, mn, best);
    for (int step = 0; step <= nstep; step++) {
        const v4 top = v4_splat(rmin + 0.1f * (float)step + nmax);
        v4 la[K_N][K_G], sum_l[K_G], sum_l2[K_G], sum_xl[K_G], iscale[K_G], this_scale[K_G], this_min[K_G];
        v4 D[K_G], cur[K_G];
        for (int g = 0; g < K_G; g++)  /* the range uses the min as improved so far, as ggml does */
            iscale[g] = top / v4_sel(flat[g], one, mx[g] - mn[g]);
        for (int i = 0; i < K_N; i++)
            for (int g = 0; g < K_G; g++) {
                la[i][g] = v4_round_clamp(iscale[g] * (xt[i][g] - mn[g]), 0.0f, nmax);
                const v4 wl = w[i][g] * la[i][g];
                if (i == 0)
                    sum_l[g] = wl, sum_l2[g] = wl * la[i][g], sum_xl[g] = wl * xt[i][g];
                else
                    sum_l[g] += wl, sum_l2[g] += wl * la[i][g], sum_xl[g] += wl * xt[i][g];
            }
        for (int g = 0; g < K_G; g++) {
            D[g] = sum_w[g] * sum_l2[g] - sum_l[g] * sum_l[g];
            this_scale[g] = (sum_w[g] * sum_xl[g] - sum_x[g] * sum_l[g]) / D[g];
            this_min[g] = (sum_l2[g] * sum_x[g] - sum_l[g] * sum_xl[g]) / D[g];
            const v4i pos = this_min[g] > zero;
            this_min[g] = v4_sel(pos, zero, this_min[g]);
            this_scale[g] = v4_sel(pos, sum_xl[g] / sum_l2[g], this_scale[g]);
        }
        qkx2_error(xt, w, la, this_scale, this_min, cur);
        for (int g = 0; g < K_G; g++) {
            const v4i better = (D[g] > zero) & (cur[g] < best[g]);
            best[g] = v4_sel(better, cur[g], best[g]);
            scale[g] = v4_sel(better, this_scale[g], scale[g]);
            best_iscale[g] = v4_sel(better, iscale[g], best_iscale[g]);
            best_mn[g] = v4_sel(better, mn[g], best_mn[g]);  /* the min this trial's codes were taken from */
            mn[g] = v4_sel(better, this_min[g], mn[g]);
        }
    }
    for (int g = 0; g < K_G; g++) {
        /* the best trial's codes again, from the same floats */
        for (int i = 0; i < K_N; i++)
            L[i][g] = v4_sel(flat[g], zero, v4_round_clamp(best_iscale[g] * (xt[i][g] - best_mn[g]), 0.0f, nmax));
        scale[g] = v4_sel(flat[g], zero, scale[g]);
        neg_min[g] = -v4_sel(flat[g], mn0[g], mn[g]);
    }
}

/* one Q5_K (five_bit) or Q4_K block */
static void k_block(const float *x, uint8_t *out, int five_bit) {
    const float nmax = five_bit ? 31.0f : 15.0f, rmin = five_bit ? -0.5f : -1.0f;
    const int nstep = five_bit ? 15 : 20;
    const v4i sign = (v4i)v4_splat(-0.0f);
    v4 xt[K_N][K_G], w[K_N][K_G], L[K_N][K_G], scale_v[K_G], min_v[K_G];
    for (int i = 0; i < K_N; i++)
        for (int s = 0; s < K_SUB; s++) xt[i][s / 4][s % 4] = x[32 * s + i];
    for (int g = 0; g < K_G; g++) {
        v4 sum_x2 = xt[0][g] * xt[0][g], av_x;
        for (int i = 1; i < K_N; i++) sum_x2 += xt[i][g] * xt[i][g];
        for (int k = 0; k < 4; k++) av_x[k] = sqrtf(sum_x2[k] / 32.0f);
        for (int i = 0; i < K_N; i++) w[i][g] = av_x + (v4)((v4i)xt[i][g] & ~sign);  /* + fabsf */
    }
    qkx2_lanes(xt, w, nmax, rmin, nstep, L, scale_v, min_v);
    float scales[K_SUB], mins[K_SUB];
    for (int s = 0; s < K_SUB; s++) scales[s] = scale_v[s / 4][s % 4], mins[s] = min_v[s / 4][s % 4];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int s = 0; s < K_SUB; s++) {
        if (scales[s] > max_scale) max_scale = scales[s];
        if (mins[s] > max_min) max_min = mins[s];
    }
    const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
    uint8_t ls[K_SUB], lm[K_SUB];
    for (int s = 0; s < K_SUB; s++) {  /* uint8_t l = nearest_int(...) keeps the low byte, then MIN(63, l) */
        const int a = (int)round_even(inv_scale * scales[s]) & 0xFF, b = (int)round_even(inv_min * mins[s]) & 0xFF;
        ls[s] = (uint8_t)(a < 63 ? a : 63);
        lm[s] = (uint8_t)(b < 63 ? b : 63);
    }
    memset(out, 0, five_bit ? BG_Q5_K_BYTES : BG_Q4_K_BYTES);
    const uint16_t d16 = bg_f32_to_f16(max_scale / 63.0f), dmin16 = bg_f32_to_f16(max_min / 63.0f);
    memcpy(out, &d16, 2);
    memcpy(out + 2, &dmin16, 2);
    uint8_t *packed = out + 4;
    for (int j = 0; j < 4; j++) {
        packed[j] = (uint8_t)(ls[j] | ((ls[j + 4] >> 4) << 6));
        packed[j + 4] = (uint8_t)(lm[j] | ((lm[j + 4] >> 4) << 6));
        packed[j + 8] = (uint8_t)((ls[j + 4] & 0xF) | ((lm[j + 4] & 0xF) << 4));
    }
    uint8_t codes[256];
    const float d = bg_f16_to_f32(d16), dmin = bg_f16_to_f32(dmin16);
    for (int s = 0; s < K_SUB; s++) {
        const float dd = d * (float)ls[s], dm = dmin * (float)lm[s];
        for (int i = 0; i < K_N; i++)
            codes[32 * s + i] = (uint8_t)(dd != 0.0f ? round_clamp((x[32 * s + i] + dm) / dd, 0.0f, nmax) : L[i][s / 4][s % 4]);
    }
    uint8_t *qs = out + (five_bit ? 48 : 16), *qh = out + 16;
    for (int p = 0; p < 4; p++)
        for (int l = 0; l < 32; l++) {
            const uint8_t lo = codes[64 * p + l], hi = codes[64 * p + 32 + l];
            qs[32 * p + l] = (uint8_t)((lo & 0xF) | ((hi & 0xF) << 4));
            if (five_bit) qh[l] |= (uint8_t)(((lo >> 4) << (2 * p)) | ((hi >> 4) << (2 * p + 1)));
        }
}

void bg_quantize_q6_k(const float *x, int64_t n_blocks, uint8_t *out) {
    for (int64_t b = 0; b < n_blocks; b++) q6_k_block(x + b * 256, out + b * BG_Q6_K_BYTES);
}

void bg_quantize_q5_k(const float *x, int64_t n_blocks, uint8_t *out) {
    for (int64_t b = 0; b < n_blocks; b++) k_block(x + b * 256, out + b * BG_Q5_K_BYTES, 1);
}

void bg_quantize_q4_k(const float *x, int64_t n_blocks, uint8_t *out) {
    for (int64_t b = 0; b < n_blocks; b++) k_block(x + b * 256, out + b * BG_Q4_K_BYTES, 0);
}
