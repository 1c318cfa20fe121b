/* Q6_K, Q5_K and Q4_K quantization (ggml's quantize_row_q{6,5,4}_K_ref), byte for byte what kquants.py's numpy
 * code writes, about 50x faster: the converter's head (328 M weights for 2B4T) in seconds.
 *
 * Why the odd loop shape: ggml's trial-scale searches sum over the 16 or 32 weights of a sub-block in order, in
 * float32. Here the sub-blocks of a super-block sit side by side in lanes (xt[i][s] = weight i of sub-block s), so
 * each step is one loop over the lanes that the compiler vectorizes, while every lane still adds its terms in
 * ggml's order: the same floats as the one-at-a-time C loop and as numpy. Built with -ffp-contract=off (no fused
 * multiply-adds), and rounding is round-half-even like ggml's nearest_int and numpy's rint. */
#include <math.h>

#include "kernels.h"

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

enum { Q6_SUB = 16, Q6_N = 16 };

/* sums over i of the trial codes round(iscale * x) (clamped to [-32, 31]) for every lane */
static void q6_trial(const float xt[Q6_N][Q6_SUB], const float w[Q6_N][Q6_SUB], const float wx[Q6_N][Q6_SUB],
                     const float *iscale, float lq[Q6_N][Q6_SUB], float *sumlx, float *suml2) {
    for (int i = 0; i < Q6_N; i++)
        for (int s = 0; s < Q6_SUB; s++) {
            const float l = round_clamp(iscale[s] * xt[i][s], -32.0f, 31.0f);
            lq[i][s] = l;
            const float a = wx[i][s] * l, b = (w[i][s] * l) * l;
            sumlx[s] = i ? sumlx[s] + a : a;
            suml2[s] = i ? suml2[s] + b : b;
        }
}

static void q6_k_block(const float *x, uint8_t *out) {
    float xt[Q6_N][Q6_SUB], w[Q6_N][Q6_SUB], wx[Q6_N][Q6_SUB], lq[Q6_N][Q6_SUB], lt[Q6_N][Q6_SUB];
    float mx[Q6_SUB], scale[Q6_SUB], best[Q6_SUB], iscale[Q6_SUB], sumlx[Q6_SUB], suml2[Q6_SUB];
    int zero[Q6_SUB];
    for (int s = 0; s < Q6_SUB; s++) {
        float amax;
        mx[s] = first_absmax(x + 16 * s, 16, 1, &amax);
        zero[s] = amax < GROUP_MAX_EPS;
        if (zero[s]) mx[s] = 1.0f;
        for (int i = 0; i < Q6_N; i++) {
            xt[i][s] = x[16 * s + i];
            w[i][s] = xt[i][s] * xt[i][s];
            wx[i][s] = w[i][s] * xt[i][s];
        }
        iscale[s] = -32.0f / mx[s];
    }
    q6_trial(xt, w, wx, iscale, lq, sumlx, suml2);
    for (int s = 0; s < Q6_SUB; s++) {
        scale[s] = suml2[s] != 0.0f ? sumlx[s] / suml2[s] : 0.0f;
        best[s] = scale[s] * sumlx[s];
    }
    for (int step = -9; step <= 9; step++) {
        if (step == 0) continue;
        for (int s = 0; s < Q6_SUB; s++) iscale[s] = -(32.0f + 0.1f * (float)step) / mx[s];
        q6_trial(xt, w, wx, iscale, lt, sumlx, suml2);
        for (int s = 0; s < Q6_SUB; s++) {
            if (!(suml2[s] > 0.0f && sumlx[s] * sumlx[s] > best[s] * suml2[s])) continue;
            for (int i = 0; i < Q6_N; i++) lq[i][s] = lt[i][s];
            scale[s] = sumlx[s] / suml2[s];
            best[s] = scale[s] * sumlx[s];
        }
    }
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

/* Σ_i v[i][s] in order, per lane */
static void lane_sum(const float v[K_N][K_SUB], float *out) {
    for (int s = 0; s < K_SUB; s++) out[s] = v[0][s];
    for (int i = 1; i < K_N; i++)
        for (int s = 0; s < K_SUB; s++) out[s] += v[i][s];
}

/* make_qkx2_quants(32, nmax, x, weights, L, &min, Laux, rmin, 0.1, nstep, use_mad 0) on the 8 lanes: codes in L,
 * scale and -min (the amount the block later subtracts) per lane */
static void qkx2_lanes(const float xt[K_N][K_SUB], const float w[K_N][K_SUB], float nmax, float rmin, int nstep,
                       float L[K_N][K_SUB], float *scale, float *neg_min) {
    float mn[K_SUB], mx[K_SUB], mn0[K_SUB], sum_w[K_SUB], sum_x[K_SUB], best[K_SUB], iscale[K_SUB];
    float sum_l[K_SUB], sum_l2[K_SUB], sum_xl[K_SUB], cur[K_SUB];
    float t[K_N][K_SUB], la[K_N][K_SUB], wl[K_N][K_SUB];
    int flat[K_SUB];
    for (int s = 0; s < K_SUB; s++) {
        mn[s] = mx[s] = xt[0][s];
        for (int i = 1; i < K_N; i++) {
            mn[s] = xt[i][s] < mn[s] ? xt[i][s] : mn[s];
            mx[s] = xt[i][s] > mx[s] ? xt[i][s] : mx[s];
        }
        if (mn[s] > 0.0f) mn[s] = 0.0f;
        flat[s] = mx[s] == mn[s];
        mn0[s] = mn[s];
        iscale[s] = nmax / (flat[s] ? 1.0f : mx[s] - mn[s]);
        scale[s] = 1.0f / iscale[s];
    }
    lane_sum(w, sum_w);
    for (int i = 0; i < K_N; i++)
        for (int s = 0; s < K_SUB; s++) t[i][s] = w[i][s] * xt[i][s];
    lane_sum(t, sum_x);
    for (int i = 0; i < K_N; i++)
        for (int s = 0; s < K_SUB; s++) {
            L[i][s] = round_clamp(iscale[s] * (xt[i][s] - mn[s]), 0.0f, nmax);
            const float diff = (scale[s] * L[i][s] + mn[s]) - xt[i][s];
            t[i][s] = w[i][s] * (diff * diff);
        }
    lane_sum(t, best);
    for (int step = 0; step <= nstep; step++) {
        for (int s = 0; s < K_SUB; s++)  /* the range uses the min as improved so far, as ggml does */
            iscale[s] = (rmin + 0.1f * (float)step + nmax) / (flat[s] ? 1.0f : mx[s] - mn[s]);
        for (int i = 0; i < K_N; i++)
            for (int s = 0; s < K_SUB; s++) {
                la[i][s] = round_clamp(iscale[s] * (xt[i][s] - mn[s]), 0.0f, nmax);
                wl[i][s] = w[i][s] * la[i][s];
            }
        lane_sum(wl, sum_l);
        for (int i = 0; i < K_N; i++)
            for (int s = 0; s < K_SUB; s++) t[i][s] = wl[i][s] * la[i][s];
        lane_sum(t, sum_l2);
        for (int i = 0; i < K_N; i++)
            for (int s = 0; s < K_SUB; s++) t[i][s] = wl[i][s] * xt[i][s];
        lane_sum(t, sum_xl);
        float this_scale[K_SUB], this_min[K_SUB], D[K_SUB];
        for (int s = 0; s < K_SUB; s++) {
            D[s] = sum_w[s] * sum_l2[s] - sum_l[s] * sum_l[s];
            this_scale[s] = (sum_w[s] * sum_xl[s] - sum_x[s] * sum_l[s]) / D[s];
            this_min[s] = (sum_l2[s] * sum_x[s] - sum_l[s] * sum_xl[s]) / D[s];
            if (this_min[s] > 0.0f) {
                this_min[s] = 0.0f;
                this_scale[s] = sum_xl[s] / sum_l2[s];
            }
        }
        for (int i = 0; i < K_N; i++)
            for (int s = 0; s < K_SUB; s++) {
                const float diff = (this_scale[s] * la[i][s] + this_min[s]) - xt[i][s];
                t[i][s] = w[i][s] * (diff * diff);
            }
        lane_sum(t, cur);
        for (int s = 0; s < K_SUB; s++) {
            if (!(D[s] > 0.0f && cur[s] < best[s])) continue;
            for (int i = 0; i < K_N; i++) L[i][s] = la[i][s];
            best[s] = cur[s];
            scale[s] = this_scale[s];
            mn[s] = this_min[s];
        }
    }
    for (int s = 0; s < K_SUB; s++) {
        if (flat[s]) {
            for (int i = 0; i < K_N; i++) L[i][s] = 0.0f;
            scale[s] = 0.0f;
        }
        neg_min[s] = -(flat[s] ? mn0[s] : mn[s]);
    }
}

/* one Q5_K (five_bit) or Q4_K block */
static void k_block(const float *x, uint8_t *out, int five_bit) {
    const float nmax = five_bit ? 31.0f : 15.0f, rmin = five_bit ? -0.5f : -1.0f;
    const int nstep = five_bit ? 15 : 20;
    float xt[K_N][K_SUB], w[K_N][K_SUB], sq[K_N][K_SUB], L[K_N][K_SUB];
    float sum_x2[K_SUB], scales[K_SUB], mins[K_SUB];
    for (int s = 0; s < K_SUB; s++)
        for (int i = 0; i < K_N; i++) {
            xt[i][s] = x[32 * s + i];
            sq[i][s] = xt[i][s] * xt[i][s];
        }
    lane_sum(sq, sum_x2);
    for (int s = 0; s < K_SUB; s++) {
        const float av_x = sqrtf(sum_x2[s] / 32.0f);
        for (int i = 0; i < K_N; i++) w[i][s] = av_x + fabsf(xt[i][s]);
    }
    qkx2_lanes(xt, w, nmax, rmin, nstep, L, scales, mins);
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
            codes[32 * s + i] = (uint8_t)(dd != 0.0f ? round_clamp((x[32 * s + i] + dm) / dd, 0.0f, nmax) : L[i][s]);
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
