/* Float-activation kernels in portable C: the output head (token_embd times the final hidden state, dequantized on
 * the fly, activations stay f32), embedding rows, and the KV-cache helpers. Eight partial sums break the add
 * dependency chain; they are combined in a fixed order so results do not depend on anything but the inputs. */
#include "kernels.h"

#define DOT8(load)                                                                  \
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                          \
    int i = 0;                                                                      \
    for (; i + 8 <= n; i += 8)                                                      \
        for (int k = 0; k < 8; k++) s[k] += load(i + k) * x[i + k];                 \
    float tail = 0.0f;                                                              \
    for (; i < n; i++) tail += load(i) * x[i];                                      \
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + tail;

float bg_f32_dot_scalar(const void *row, const float *x, int n) {
    const float *w = row;
#define LOAD(j) w[j]
    DOT8(LOAD)
#undef LOAD
}

float bg_f16_dot_scalar(const void *row, const float *x, int n) {
    const uint16_t *w = row;
#define LOAD(j) bg_f16_to_f32(w[j])
    DOT8(LOAD)
#undef LOAD
}

float bg_bf16_dot_scalar(const void *row, const float *x, int n) {
    const uint16_t *w = row;
#define LOAD(j) bg_bf16_to_f32(w[j])
    DOT8(LOAD)
#undef LOAD
}

/* Q8_0 block: f16 d, then 32 int8. Σ_b d_b * Σ_i q_i x_i. */
float bg_q8_0_dot_scalar(const void *row, const float *x, int n) {
    const uint8_t *p = row;
    float sum = 0.0f;
    for (int b = 0; b < n / BG_Q8_0_BLOCK; b++, p += 34, x += BG_Q8_0_BLOCK) {
        uint16_t d;
        memcpy(&d, p, 2);
        const int8_t *qs = (const int8_t *)(p + 2);
        float s[4] = {0, 0, 0, 0};
        for (int i = 0; i < BG_Q8_0_BLOCK; i += 4)
            for (int k = 0; k < 4; k++) s[k] += (float)qs[i + k] * x[i + k];
        sum += bg_f16_to_f32(d) * ((s[0] + s[1]) + (s[2] + s[3]));
    }
    return sum;
}

void bg_f32_to_float(const void *row, float *y, int n) { memcpy(y, row, (size_t)n * sizeof(float)); }

void bg_f16_to_float(const void *row, float *y, int n) {
    const uint16_t *w = row;
    for (int i = 0; i < n; i++) y[i] = bg_f16_to_f32(w[i]);
}

void bg_bf16_to_float(const void *row, float *y, int n) {
    const uint16_t *w = row;
    for (int i = 0; i < n; i++) y[i] = bg_bf16_to_f32(w[i]);
}

void bg_q8_0_to_float(const void *row, float *y, int n) {
    const uint8_t *p = row;
    for (int b = 0; b < n / BG_Q8_0_BLOCK; b++, p += 34) {
        uint16_t d;
        memcpy(&d, p, 2);
        float df = bg_f16_to_f32(d);
        for (int i = 0; i < BG_Q8_0_BLOCK; i++) y[b * BG_Q8_0_BLOCK + i] = df * (float)((const int8_t *)(p + 2))[i];
    }
}

void bg_f32_axpy(const void *row, float a, float *y, int n) {
    const float *w = row;
    for (int i = 0; i < n; i++) y[i] += a * w[i];
}

void bg_f16_axpy(const void *row, float a, float *y, int n) {
    const uint16_t *w = row;
    for (int i = 0; i < n; i++) y[i] += a * bg_f16_to_f32(w[i]);
}
