/* TL2 in place with AVX-512BW (tl2.h). The AVX2 kernel looks each nibble up twice (the low and the high bytes of
 * its int16 entry, two pshufb and two unpacks per 32 rows) and applies the sign in a third pass (psign). Here a
 * table is 32 int16 words: the 16 entries of the triple, then the same negated, so vpermw, which indexes words by
 * their low 5 bits, looks up 32 rows' signed int16 entries at once when the index word holds the magnitude in bits
 * 0-3 and the sign in bit 4. One ternlog merges the two. The index words depend on the weights only, so a batch of
 * up to four tokens shares them: per run of 32 rows and 2 triples, six index operations, then per token two vpermw
 * and two adds (the AVX2 kernel: about 23 operations per run and token, on 256-bit vectors).
 *
 * The words stay in the run's byte order (rows 0-7, 16-23, 8-15, 24-31); the signs are moved into that order once
 * per sign run, and the sums into row order once per block. Sums stay in int16 for one K-tile (|entry| <= 381, at
 * most 64 triples) and are then widened into the tile's int32 outputs: the same exact integers as every level. */
#include <string.h>

#include "tl2.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")
#endif
#include <immintrin.h>

#include "x86_avx2.h"

/* Word i of a run's 32 bytes belongs to row bg_tl2_row_of_byte(i) (an involution: it swaps bits 3 and 4), so the
 * same permutation takes byte order to row order and back. */
static inline __m512i byte_order(void) {
    return _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 15, 14, 13, 12, 11, 10, 9, 8,
                            23, 22, 21, 20, 19, 18, 17, 16, 7, 6, 5, 4, 3, 2, 1, 0);
}

/* Sign words of one sign run (16 uint16: word r holds row r's sign of triple e at bit 15 - 2e and row 16 + r's at
 * bit 14 - 2e) as 32 words in byte order, row 16 + r's shifted up by one: triple e's sign at bit 15 - 2e for all. */
static inline __m512i sign_words(const uint8_t *run) {
    const __m512i s = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)run));
    const __m512i r16 = _mm512_set_epi16(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0,
                                         1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    /* word i <- s[row_of_byte(i) & 15] << (row_of_byte(i) >> 4) */
    return _mm512_sllv_epi16(_mm512_permutexvar_epi16(_mm512_and_si512(byte_order(), _mm512_set1_epi16(15)), s), r16);
}

/* Triple e's sign bit (15 - 2e of sign_words) moved to bit 4, the index's sign bit */
static inline __m512i sign_at_4(__m512i z, int e) {
    return e <= 5 ? _mm512_srli_epi16(z, 11 - 2 * e) : _mm512_slli_epi16(z, 2 * e - 11);
}

/* index word: bits 0-3 from m (a magnitude nibble in place), bit 4 (and above, unused) from s */
static inline __m512i merge_index(__m512i m, __m512i s) {
    return _mm512_ternarylogic_epi32(m, s, _mm512_set1_epi16(15), 0xe4);  /* c ? a : b, bit by bit */
}

static inline __m512i table(const uint8_t *t) { return _mm512_loadu_si512((const void *)t); }

/* out[0..31] (row order) += acc (byte order), widened */
static inline void widen_add(int32_t *out, __m512i acc) {
    const __m512i rows = _mm512_permutexvar_epi16(byte_order(), acc);
    __m512i *o = (__m512i *)out;
    const __m512i r0 = _mm512_cvtepi16_epi32(_mm512_castsi512_si256(rows));
    const __m512i r16 = _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(rows, 1));
    _mm512_storeu_si512(o, _mm512_add_epi32(_mm512_loadu_si512(o), r0));
    _mm512_storeu_si512(o + 1, _mm512_add_epi32(_mm512_loadu_si512(o + 1), r16));
}

/* out_t[0..31] += rows of one (K-tile, sub-tile) block for nt (<= 4) tokens, token t's tables of the K-tile at
 * tab + t * stride */
static inline __attribute__((always_inline)) void mag_block(const uint8_t *mag, const uint8_t *sign, int n_sign,
                                                            const uint8_t *tab, size_t stride, int nt, int32_t *out,
                                                            int BM) {
    __m512i acc[4][2];
    for (int t = 0; t < nt; t++) acc[t][0] = acc[t][1] = _mm512_setzero_si512();
    for (int q = 0; q < n_sign; q++) {
        const __m512i z = sign_words(sign + q * 32);
#pragma GCC unroll 4  /* constant shifts in sign_at_4 */
        for (int pp = 0; pp < 4; pp++) {
            const __m512i w = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(mag + (4 * q + pp) * 32)));
            const __m512i hi = merge_index(_mm512_srli_epi16(w, 4), sign_at_4(z, 2 * pp));  /* triple 8q + 2pp */
            const __m512i lo = merge_index(w, sign_at_4(z, 2 * pp + 1));                    /* and the next */
            const uint8_t *t0 = tab + (size_t)(8 * q + 2 * pp) * BG_TL2_TABLE_AVX512, *t1 = t0 + BG_TL2_TABLE_AVX512;
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) {
                acc[t][0] = _mm512_add_epi16(acc[t][0], _mm512_permutexvar_epi16(hi, table(t0 + t * stride)));
                acc[t][1] = _mm512_add_epi16(acc[t][1], _mm512_permutexvar_epi16(lo, table(t1 + t * stride)));
            }
        }
    }
    for (int t = 0; t < nt; t++) widen_add(out + (size_t)t * BM, _mm512_add_epi16(acc[t][0], acc[t][1]));
}

/* out_t[0..31] += rows of one tail block: 8 runs of pair indices, no signs (a pair table's words 16-31 repeat 0-15,
 * so the high nibble's low bit, left in bit 4 of the low nibble's index, does not matter) */
static inline __attribute__((always_inline)) void tail_block(const uint8_t *tail, const uint8_t *tab, size_t stride,
                                                             int nt, int32_t *out, int BM) {
    __m512i acc[4][2];
    for (int t = 0; t < nt; t++) acc[t][0] = acc[t][1] = _mm512_setzero_si512();
    for (int p = 0; p < 8; p++) {
        const __m512i w = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(tail + p * 32)));
        const __m512i hi = _mm512_srli_epi16(w, 4);
        const uint8_t *t0 = tab + (size_t)(2 * p) * BG_TL2_TABLE_AVX512, *t1 = t0 + BG_TL2_TABLE_AVX512;
        for (int t = 0; t < nt; t++) {
            acc[t][0] = _mm512_add_epi16(acc[t][0], _mm512_permutexvar_epi16(hi, table(t0 + t * stride)));
            acc[t][1] = _mm512_add_epi16(acc[t][1], _mm512_permutexvar_epi16(w, table(t1 + t * stride)));
        }
    }
    for (int t = 0; t < nt; t++) widen_add(out + (size_t)t * BM, _mm512_add_epi16(acc[t][0], acc[t][1]));
}

static inline __attribute__((always_inline)) void tile_tokens(const bg_tl2 *w, int mt, const uint8_t *tables,
                                                              size_t stride, int nt, int32_t *out) {
    const int BM = w->BM, n_sub = BM / 32, n_pos = w->BK / 6, n_sign = w->BK / 24;
    const uint8_t *mag = w->mag + (size_t)mt * BM * w->K3 / 6;
    const uint8_t *sign = w->sign + (size_t)mt * BM * w->K3 / 24;
    const uint8_t *tail = w->tail + (size_t)mt * BM * w->K2 / 4;
    const size_t tab_kt = (size_t)(w->BK / 3) * BG_TL2_TABLE_AVX512;
    for (int kt = 0; kt < w->K3 / w->BK; kt++)
        for (int sub = 0; sub < n_sub; sub++, mag += n_pos * 32, sign += n_sign * 32) {
            for (int i = 0; i < n_pos * 32; i += 64) bg_prefetch(mag + BG_TL2_PREFETCH + i);
            for (int i = 0; i < n_sign * 32; i += 64) bg_prefetch(sign + BG_TL2_PREFETCH / 4 + i);
            mag_block(mag, sign, n_sign, tables + kt * tab_kt, stride, nt, out + sub * 32, BM);
        }
    const uint8_t *pair_tab = tables + (size_t)(w->K3 / 3) * BG_TL2_TABLE_AVX512;
    for (int kt = 0; kt < w->K2 / 32; kt++)
        for (int sub = 0; sub < n_sub; sub++, tail += 8 * 32)
            tail_block(tail, pair_tab + (size_t)kt * 16 * BG_TL2_TABLE_AVX512, stride, nt, out + sub * 32, BM);
}

void bg_tl2_tile_avx512(const bg_tl2 *w, int mt, const uint8_t *tables, size_t table_stride, int n, int32_t *out) {
    memset(out, 0, (size_t)n * w->BM * sizeof *out);
    for (int t = 0; t < n; t += 4, tables += 4 * table_stride, out += (size_t)4 * w->BM) {
        switch (n - t < 4 ? n - t : 4) {  /* each count its own copy, the token loops unrolled */
        case 1: tile_tokens(w, mt, tables, table_stride, 1, out); break;
        case 2: tile_tokens(w, mt, tables, table_stride, 2, out); break;
        case 3: tile_tokens(w, mt, tables, table_stride, 3, out); break;
        default: tile_tokens(w, mt, tables, table_stride, 4, out); break;
        }
    }
}

/* Per triple, the 32 words [T, -T] with T[m] = w . (q[3j], q[3j+1], q[3j+2]) for magnitude m = 9 w0 + 3 w1 + w2
 * (0..13; 14, 15 zero) as products with constant digit vectors; per tail pair, [P, P] with P[idx] = w . (q[2j],
 * q[2j+1]) for idx = 3 w0 + w1 + 4 (0..8). */
void bg_tl2_tables_avx512(const int8_t *q, int cols, int BK, uint8_t *tables) {
    const int K3 = cols - cols % BK;
#define DIGITS(d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, d12, d13) \
    _mm512_set_epi16(0, 0, -(d13), -(d12), -(d11), -(d10), -(d9), -(d8), -(d7), -(d6), -(d5), -(d4), -(d3), -(d2), \
                     -(d1), -(d0), 0, 0, d13, d12, d11, d10, d9, d8, d7, d6, d5, d4, d3, d2, d1, d0)
    /* digits of m = 9 w0 + 3 w1 + w2, m = 0..13 */
    const __m512i d0 = DIGITS(0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m512i d1 = DIGITS(0, 0, 1, 1, 1, -1, -1, -1, 0, 0, 0, 1, 1, 1);
    const __m512i d2 = DIGITS(0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1);
#undef DIGITS
#define PAIR(d0, d1, d2, d3, d4, d5, d6, d7, d8) \
    _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, d8, d7, d6, d5, d4, d3, d2, d1, d0, \
                     0, 0, 0, 0, 0, 0, 0, d8, d7, d6, d5, d4, d3, d2, d1, d0)
    /* digits of idx = 3 w0 + w1 + 4, idx = 0..8 */
    const __m512i p0 = PAIR(-1, -1, -1, 0, 0, 0, 1, 1, 1);
    const __m512i p1 = PAIR(-1, 0, 1, -1, 0, 1, -1, 0, 1);
#undef PAIR
    for (int j = 0; j < K3 / 3; j++, tables += BG_TL2_TABLE_AVX512) {
        __m512i v = _mm512_mullo_epi16(d0, _mm512_set1_epi16(q[3 * j]));
        v = _mm512_add_epi16(v, _mm512_mullo_epi16(d1, _mm512_set1_epi16(q[3 * j + 1])));
        v = _mm512_add_epi16(v, _mm512_mullo_epi16(d2, _mm512_set1_epi16(q[3 * j + 2])));
        _mm512_storeu_si512((void *)tables, v);
    }
    for (int j = 0; j < (cols - K3) / 2; j++, tables += BG_TL2_TABLE_AVX512) {
        __m512i v = _mm512_mullo_epi16(p0, _mm512_set1_epi16(q[K3 + 2 * j]));
        v = _mm512_add_epi16(v, _mm512_mullo_epi16(p1, _mm512_set1_epi16(q[K3 + 2 * j + 1])));
        _mm512_storeu_si512((void *)tables, v);
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
