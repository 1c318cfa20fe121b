/* bg_tl2_sub_tile_codes with vector instructions, for the prompt GEMMs (the AMX and AVX-512 levels; 256-bit
 * registers, with AVX-512VL for their 32 names). A TL2 block holds 32 rows side by side: byte b of a magnitude run
 * is row bg_tl2_row_of_byte(b). So the codes are first made by column: per triple, its magnitudes and signs give
 * each of its three columns as 32 bytes in that row order (a byte shuffle per digit, the digits of a negative triple
 * being 2 - those of its magnitude), then 32 columns at a time are transposed into rows. The same bytes as tl2.c's loop
 * (kernel_check compares them). */
#include <string.h>

#include "tl2.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), \
                             apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif
#include <immintrin.h>

/* The 16 x 16 byte transpose in each 128-bit lane of v[0..15]: four rounds of interleaving v[i] with v[i + 8] (each
 * round rotates an element's 8-bit address (vector, byte) left by one bit; after four, vector and byte have traded
 * places). */
static inline void transpose16_lanes(__m256i v[16]) {
    for (int round = 0; round < 4; round++) {
        __m256i t[16];
        for (int i = 0; i < 8; i++) {
            t[2 * i] = _mm256_unpacklo_epi8(v[i], v[i + 8]);
            t[2 * i + 1] = _mm256_unpackhi_epi8(v[i], v[i + 8]);
        }
        for (int i = 0; i < 16; i++) v[i] = t[i];
    }
}

/* Columns col[0..31] (32 bytes each, byte b of row bg_tl2_row_of_byte(b)) into those rows: 32 bytes at out + r * ld. */
static inline void columns_to_rows(const __m256i col[32], uint8_t *out, size_t ld) {
    __m256i lo[16], hi[16];
    for (int i = 0; i < 16; i++) lo[i] = col[i], hi[i] = col[16 + i];
    transpose16_lanes(lo);  /* lo[j], lane L: columns 0-15 at byte 16L + j */
    transpose16_lanes(hi);  /* hi[j], lane L: columns 16-31 there */
    for (int j = 0; j < 16; j++) {
        _mm256_storeu_si256((__m256i *)(out + (size_t)bg_tl2_row_of_byte(j) * ld),
                            _mm256_permute2x128_si256(lo[j], hi[j], 0x20));
        _mm256_storeu_si256((__m256i *)(out + (size_t)bg_tl2_row_of_byte(16 + j) * ld),
                            _mm256_permute2x128_si256(lo[j], hi[j], 0x31));
    }
}

/* digit i of the code of each triple magnitude m = 9 w0 + 3 w1 + w2 (u = 13 + m), and of each pair index 3 c0 + c1 */
#define DIGITS(i) _mm256_broadcastsi128_si256(_mm_setr_epi8(DIG(i, 0), DIG(i, 1), DIG(i, 2), DIG(i, 3), DIG(i, 4), \
        DIG(i, 5), DIG(i, 6), DIG(i, 7), DIG(i, 8), DIG(i, 9), DIG(i, 10), DIG(i, 11), DIG(i, 12), DIG(i, 13), 0, 0))
#define DIG(i, m) (char)((i) == 0 ? (13 + (m)) / 9 : (i) == 1 ? (13 + (m)) / 3 % 3 : (13 + (m)) % 3)

void bg_tl2_sub_tile_codes_avx512(const bg_tl2 *w, int mt, int sub, uint8_t *codes, size_t ld) {
    if (w->BK % 32 || w->BK > 192) {  /* K-tiles of whole 32-column groups, as the presets' 96 and 192 */
        bg_tl2_sub_tile_codes(w, mt, sub, codes, ld);
        return;
    }
    const int BM = w->BM, n_sub = BM / 32, n_pos = w->BK / 6, n_sign = w->BK / 24;
    const __m256i nib = _mm256_set1_epi8(0x0f), two = _mm256_set1_epi8(2);
    const __m256i dig[3] = {DIGITS(0), DIGITS(1), DIGITS(2)};
    const uint8_t *mag0 = w->mag + (size_t)mt * BM * w->K3 / 6, *sign0 = w->sign + (size_t)mt * BM * w->K3 / 24;
    __m256i col[192];  /* a K-tile's columns */
    for (int kt = 0; kt < w->K3 / w->BK; kt++) {
        const uint8_t *mag = mag0 + ((size_t)kt * n_sub + sub) * n_pos * 32;
        const uint8_t *sign = sign0 + ((size_t)kt * n_sub + sub) * n_sign * 32;
        for (int q = 0; q < n_sign; q++) {
            const __m256i S = _mm256_loadu_si256((const __m256i *)(sign + q * 32)), S2 = _mm256_slli_epi16(S, 1);
            for (int pp = 0; pp < 4; pp++) {
                const __m256i z = _mm256_loadu_si256((const __m256i *)(mag + (4 * q + pp) * 32));
                const __m256i m[2] = {_mm256_and_si256(_mm256_srli_epi16(z, 4), nib), _mm256_and_si256(z, nib)};
                for (int half = 0; half < 2; half++) {
                    const int e = 2 * pp + half, t = 8 * q + e;
                    /* 0xff where the row's triple is negative: sign bit 15 - 2e (rows 0-15), 14 - 2e (16-31);
                     * the pack puts the rows in the runs' byte order */
                    const __m128i by = _mm_cvtsi32_si128(2 * e);
                    const __m256i neg = _mm256_packs_epi16(_mm256_srai_epi16(_mm256_sll_epi16(S, by), 15),
                                                           _mm256_srai_epi16(_mm256_sll_epi16(S2, by), 15));
                    for (int i = 0; i < 3; i++) {
                        const __m256i c = _mm256_shuffle_epi8(dig[i], m[half]);
                        col[3 * t + i] = _mm256_blendv_epi8(c, _mm256_sub_epi8(two, c), neg);
                    }
                }
            }
        }
        for (int c0 = 0; c0 < w->BK; c0 += 32) columns_to_rows(col + c0, codes + (size_t)kt * w->BK + c0, ld);
    }
    /* the tail: pair indices 3 c0 + c1 (0..8), no signs; run p holds pairs 2p (high nibbles) and 2p + 1 */
    const __m256i pair0 = _mm256_broadcastsi128_si256(_mm_setr_epi8(0, 0, 0, 1, 1, 1, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0));
    const __m256i pair1 = _mm256_broadcastsi128_si256(_mm_setr_epi8(0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0));
    const uint8_t *tail0 = w->tail + (size_t)mt * BM * w->K2 / 4;
    for (int kt = 0; kt < w->K2 / 32; kt++) {
        const uint8_t *tail = tail0 + ((size_t)kt * n_sub + sub) * 8 * 32;
        for (int p = 0; p < 8; p++) {
            const __m256i z = _mm256_loadu_si256((const __m256i *)(tail + p * 32));
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(z, 4), nib), lo = _mm256_and_si256(z, nib);
            col[4 * p] = _mm256_shuffle_epi8(pair0, hi);
            col[4 * p + 1] = _mm256_shuffle_epi8(pair1, hi);
            col[4 * p + 2] = _mm256_shuffle_epi8(pair0, lo);
            col[4 * p + 3] = _mm256_shuffle_epi8(pair1, lo);
        }
        columns_to_rows(col, codes + w->K3 + (size_t)kt * 32, ld);
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
