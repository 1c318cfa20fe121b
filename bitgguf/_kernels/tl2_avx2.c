/* TL2 in place with AVX2 (tl2.h). A 32-byte magnitude run is 64 nibbles: two triples of 32 rows. Per triple, two
 * pshufb (the low and the high bytes of its int16 table) and two unpacks give rows 0-15 and 16-31 as int16 (the run's
 * 0, 2, 1, 3 byte order is what makes the unpacks come out in row order). The sign of row r is bit 15 of its sign
 * word shifted left by 2e (+1 for rows 16-31): psign negates by it, and a 1 or-ed in below keeps the word from being
 * 0 (which would zero the entry). Sums stay in int16 for one K-tile (|entry| <= 381, at most 64 triples) and are
 * then widened into the tile's int32 outputs. */
#include <string.h>

#include "tl2.h"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif
#include "x86_avx2.h"

static inline __m256i table_lo(const uint8_t *t) { return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)t)); }
static inline __m256i table_hi(const uint8_t *t) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(t + 16)));
}

/* int16 entries of 32 rows (rows 0-15 in *a, 16-31 in *b) for the nibbles idx under table t */
static inline void lookup(const uint8_t *t, __m256i idx, __m256i *a, __m256i *b) {
    const __m256i lo = _mm256_shuffle_epi8(table_lo(t), idx), hi = _mm256_shuffle_epi8(table_hi(t), idx);
    *a = _mm256_unpacklo_epi8(lo, hi);
    *b = _mm256_unpackhi_epi8(lo, hi);
}

/* out[0..31] += the int16 sums of rows 0-15 (a) and 16-31 (b) */
static inline void widen_add(int32_t *out, __m256i a, __m256i b) {
    __m256i *o = (__m256i *)out;
    _mm256_storeu_si256(o + 0, _mm256_add_epi32(_mm256_loadu_si256(o + 0), _mm256_cvtepi16_epi32(_mm256_castsi256_si128(a))));
    _mm256_storeu_si256(o + 1, _mm256_add_epi32(_mm256_loadu_si256(o + 1), _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a, 1))));
    _mm256_storeu_si256(o + 2, _mm256_add_epi32(_mm256_loadu_si256(o + 2), _mm256_cvtepi16_epi32(_mm256_castsi256_si128(b))));
    _mm256_storeu_si256(o + 3, _mm256_add_epi32(_mm256_loadu_si256(o + 3), _mm256_cvtepi16_epi32(_mm256_extracti128_si256(b, 1))));
}

/* acc += v, kept in order: left to itself gcc reassociates the run's eight adds into a tree and spills */
#define ACC(acc, v)                                  \
    do {                                             \
        acc = _mm256_add_epi16(acc, v);              \
        __asm__("" : "+x"(acc));                     \
    } while (0)

/* One magnitude run p = 4q + pp (triples 8q + 2pp, 8q + 2pp + 1) with the sign words S of run q (S1 = S | 1). */
#define MAG_RUN(pp)                                                                                               \
    do {                                                                                                          \
        const __m256i wv = _mm256_loadu_si256((const __m256i *)(mag + (4 * q + (pp)) * 32));                     \
        const __m256i hi_nib = _mm256_and_si256(_mm256_srli_epi16(wv, 4), nib), lo_nib = _mm256_and_si256(wv, nib); \
        const uint8_t *t0 = tab + (size_t)(8 * q + 2 * (pp)) * BG_TL2_TABLE;                                       \
        __m256i va, vb;                                                                                           \
        lookup(t0, hi_nib, &va, &vb);                                                                             \
        ACC(acc_a, _mm256_sign_epi16(va, _mm256_slli_epi16(S1, 4 * (pp))));                  \
        ACC(acc_b, _mm256_sign_epi16(vb, _mm256_slli_epi16(S1, 4 * (pp) + 1)));              \
        lookup(t0 + BG_TL2_TABLE, lo_nib, &va, &vb);                                                              \
        ACC(acc_a, _mm256_sign_epi16(va, _mm256_slli_epi16(S1, 4 * (pp) + 2)));              \
        ACC(acc_b, _mm256_sign_epi16(vb, (pp) == 3 ? S15 : _mm256_slli_epi16(S1, 4 * (pp) + 3))); \
    } while (0)

/* out[0..31] += rows of one (K-tile, sub-tile) block: BK/6 magnitude runs, BK/24 sign runs, tables of its triples */
static inline void mag_block(const uint8_t *mag, const uint8_t *sign, int n_sign, const uint8_t *tab, int32_t *out) {
    const __m256i nib = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi16(1);
    __m256i acc_a = _mm256_setzero_si256(), acc_b = _mm256_setzero_si256();
    for (int q = 0; q < n_sign; q++) {
        const __m256i S = _mm256_loadu_si256((const __m256i *)(sign + q * 32));
        const __m256i S1 = _mm256_or_si256(S, one);
        const __m256i S15 = _mm256_or_si256(_mm256_slli_epi16(S, 15), one);  /* bit 0 is the last sign */
        MAG_RUN(0);
        MAG_RUN(1);
        MAG_RUN(2);
        MAG_RUN(3);
    }
    widen_add(out, acc_a, acc_b);
}

/* out[0..31] += rows of one tail block: 8 runs of pair indices (no signs) */
static inline void tail_block(const uint8_t *tail, const uint8_t *tab, int32_t *out) {
    const __m256i nib = _mm256_set1_epi8(0x0f);
    __m256i acc_a = _mm256_setzero_si256(), acc_b = _mm256_setzero_si256();
    for (int p = 0; p < 8; p++) {
        const __m256i wv = _mm256_loadu_si256((const __m256i *)(tail + p * 32));
        __m256i va, vb;
        lookup(tab + (size_t)(2 * p) * BG_TL2_TABLE, _mm256_and_si256(_mm256_srli_epi16(wv, 4), nib), &va, &vb);
        acc_a = _mm256_add_epi16(acc_a, va);
        acc_b = _mm256_add_epi16(acc_b, vb);
        lookup(tab + (size_t)(2 * p + 1) * BG_TL2_TABLE, _mm256_and_si256(wv, nib), &va, &vb);
        acc_a = _mm256_add_epi16(acc_a, va);
        acc_b = _mm256_add_epi16(acc_b, vb);
    }
    widen_add(out, acc_a, acc_b);
}

void bg_tl2_tile_avx2(const bg_tl2 *w, int mt, const uint8_t *tables, size_t table_stride, int n, int32_t *out) {
    const int BM = w->BM, n_sub = BM / 32, n_pos = w->BK / 6, n_sign = w->BK / 24;
    const uint8_t *mag = w->mag + (size_t)mt * BM * w->K3 / 6;
    const uint8_t *sign = w->sign + (size_t)mt * BM * w->K3 / 24;
    const uint8_t *tail = w->tail + (size_t)mt * BM * w->K2 / 4;
    const size_t tab_kt = (size_t)(w->BK / 3) * BG_TL2_TABLE;
    memset(out, 0, (size_t)n * BM * sizeof *out);
    for (int kt = 0; kt < w->K3 / w->BK; kt++)
        for (int sub = 0; sub < n_sub; sub++, mag += n_pos * 32, sign += n_sign * 32) {
            for (int i = 0; i < n_pos * 32; i += 64) bg_prefetch(mag + BG_TL2_PREFETCH + i);
            for (int i = 0; i < n_sign * 32; i += 64) bg_prefetch(sign + BG_TL2_PREFETCH / 4 + i);
            for (int t = 0; t < n; t++)  /* the block (640 bytes) stays in L1 for the tokens */
                mag_block(mag, sign, n_sign, tables + t * table_stride + kt * tab_kt, out + (size_t)t * BM + sub * 32);
        }
    const uint8_t *pair_tab = tables + (size_t)(w->K3 / 3) * BG_TL2_TABLE;
    for (int kt = 0; kt < w->K2 / 32; kt++)
        for (int sub = 0; sub < n_sub; sub++, tail += 8 * 32)
            for (int t = 0; t < n; t++)
                tail_block(tail, pair_tab + t * table_stride + (size_t)kt * 16 * BG_TL2_TABLE,
                           out + (size_t)t * BM + sub * 32);
}

/* The tables of 16 triples at a time are not worth it: one triple's 14 entries are three int16 products with
 * constant digit vectors, then a byte shuffle splits low and high bytes. */
void bg_tl2_tables_avx2(const int8_t *q, int cols, int BK, uint8_t *tables) {
    const int K3 = cols - cols % BK;
    /* digits of m = 9 w0 + 3 w1 + w2 (m = 0..13; lanes 14, 15 zero) and of idx = 3 w0 + w1 + 4 (0..8) */
    const __m256i d0 = _mm256_setr_epi16(0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0);
    const __m256i d1 = _mm256_setr_epi16(0, 0, 1, 1, 1, -1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0);
    const __m256i d2 = _mm256_setr_epi16(0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0);
    const __m256i p0 = _mm256_setr_epi16(-1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0);
    const __m256i p1 = _mm256_setr_epi16(-1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0, 0, 0, 0, 0, 0);
    /* int16 lanes -> 8 low bytes | 8 high bytes in each 128-bit half */
    const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
                                           0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    for (int j = 0; j < K3 / 3; j++, tables += BG_TL2_TABLE) {
        __m256i v = _mm256_mullo_epi16(d0, _mm256_set1_epi16(q[3 * j]));
        v = _mm256_add_epi16(v, _mm256_mullo_epi16(d1, _mm256_set1_epi16(q[3 * j + 1])));
        v = _mm256_add_epi16(v, _mm256_mullo_epi16(d2, _mm256_set1_epi16(q[3 * j + 2])));
        v = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, split), 0xd8);  /* lo 0-7, lo 8-15, hi 0-7, hi 8-15 */
        _mm256_storeu_si256((__m256i *)tables, v);
    }
    for (int j = 0; j < (cols - K3) / 2; j++, tables += BG_TL2_TABLE) {
        __m256i v = _mm256_mullo_epi16(p0, _mm256_set1_epi16(q[K3 + 2 * j]));
        v = _mm256_add_epi16(v, _mm256_mullo_epi16(p1, _mm256_set1_epi16(q[K3 + 2 * j + 1])));
        v = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, split), 0xd8);
        _mm256_storeu_si256((__m256i *)tables, v);
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
