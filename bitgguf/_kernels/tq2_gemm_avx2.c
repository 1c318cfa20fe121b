/* TQ2_0 against several tokens at once, AVX2 (the prompt path): a block's 8 code vectors are unpacked once for 4
 * tokens, the 4 tokens' exact block integers are reduced together (hadd), then each token adds d * isum in block
 * order in double, exactly as bg_tq2_dot_avx2 / tq2_scalar.c do: bitwise the same result per token. */
#include "kernels.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif
#include "x86_avx2.h"

void bg_tq2_dot_multi_avx2(const uint8_t *row, const bg_act *acts, int n, float *out, size_t stride) {
    const __m256i mask = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    const int nb = acts[0].n / BG_TQ2_BLOCK;
    int t = 0;
    for (; t + 4 <= n; t += 4) {
        double sum[4] = {0.0, 0.0, 0.0, 0.0};
        const uint8_t *blk = row;
        for (int b = 0; b < nb; b++, blk += 66) {
            /* LSB-first codes: half h, plane l holds weights 128h + 32l .. +31 */
            const __m256i p0 = bg_load256(blk), p1 = bg_load256(blk + 32);
            const __m256i c[8] = {
                _mm256_and_si256(p0, mask), _mm256_and_si256(_mm256_srli_epi16(p0, 2), mask),
                _mm256_and_si256(_mm256_srli_epi16(p0, 4), mask), _mm256_and_si256(_mm256_srli_epi16(p0, 6), mask),
                _mm256_and_si256(p1, mask), _mm256_and_si256(_mm256_srli_epi16(p1, 2), mask),
                _mm256_and_si256(_mm256_srli_epi16(p1, 4), mask), _mm256_and_si256(_mm256_srli_epi16(p1, 6), mask),
            };
            __m256i v[4];
            for (int k = 0; k < 4; k++) {
                const int8_t *q = acts[t + k].q + (size_t)BG_TQ2_BLOCK * b;
                /* 8 maddubs of <= 512 per lane: within int16 */
                __m256i s0 = _mm256_add_epi16(_mm256_maddubs_epi16(c[0], bg_load256(q)),
                                              _mm256_maddubs_epi16(c[1], bg_load256(q + 32)));
                __m256i s1 = _mm256_add_epi16(_mm256_maddubs_epi16(c[2], bg_load256(q + 64)),
                                              _mm256_maddubs_epi16(c[3], bg_load256(q + 96)));
                __m256i s2 = _mm256_add_epi16(_mm256_maddubs_epi16(c[4], bg_load256(q + 128)),
                                              _mm256_maddubs_epi16(c[5], bg_load256(q + 160)));
                __m256i s3 = _mm256_add_epi16(_mm256_maddubs_epi16(c[6], bg_load256(q + 192)),
                                              _mm256_maddubs_epi16(c[7], bg_load256(q + 224)));
                v[k] = _mm256_madd_epi16(_mm256_add_epi16(_mm256_add_epi16(s0, s1), _mm256_add_epi16(s2, s3)), ones);
            }
            int32_t isum[4];  /* the 4 tokens' 8-lane sums at once */
            _mm_storeu_si128((__m128i *)isum, bg_hsum4_i32x8(v[0], v[1], v[2], v[3]));
            const double d = (double)bg_f16c_at(blk + 64);
            for (int k = 0; k < 4; k++) {
                const int32_t *gs = acts[t + k].gsum + b * (BG_TQ2_BLOCK / BG_ACT_GROUP);
                int32_t qsum = gs[0] + gs[1] + gs[2] + gs[3] + gs[4] + gs[5] + gs[6] + gs[7];
                sum[k] += d * (isum[k] - qsum);
            }
        }
        for (int k = 0; k < 4; k++) out[(size_t)(t + k) * stride] = (float)sum[k];
    }
    for (; t < n; t++) out[(size_t)t * stride] = bg_tq2_dot_avx2(row, &acts[t]);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
