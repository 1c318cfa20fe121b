/* Load-time repack of bitnet.cpp's TL1 / TL2 tile layouts into I2_ROWS rows (tlr.c), in one pass per block of BM
 * rows. The tilings are those of bitgguf/ternary_layouts.py (the tiling parameters come from its tl_params): this
 * file is the same index arithmetic written as loops, checked byte for byte against the numpy unpack in the tests.
 * Each row block is decoded into 2-bit codes (0..2, c = t + 1) in a small buffer, then packed as I2_ROWS. */
#include <stdlib.h>
#include <string.h>

#include "repack.h"

/* 8-byte groups inside a 32-byte run of TL2 nibble bytes are stored in the order [0, 2, 1, 3] (its own inverse) */
static const int GROUP_ORDER[4] = {0, 2, 1, 3};

/* One row of codes (0..2) -> I2_ROWS bytes: I2_S blocks, then the tail of t = K % 128 with t/4 in place of 32. */
static void pack_row(const uint8_t *c, int K, uint8_t *out) {
    const int full = K / 128 * 128;
    for (int b = 0; b < full / 128; b++, c += 128, out += 32)
        for (int j = 0; j < 32; j++)
            out[j] = (uint8_t)(c[j] << 6 | c[j + 32] << 4 | c[j + 64] << 2 | c[j + 96]);
    const int g = (K - full) / 4;
    for (int j = 0; j < g; j++)
        out[j] = (uint8_t)(c[j] << 6 | c[j + g] << 4 | c[j + 2 * g] << 2 | c[j + 3 * g]);
}

/* Pair index idx = 3*w0 + w1 + 4 -> codes w0 + 1, w1 + 1; 0 when idx is out of range (8 < idx). */
static inline int put_pair(uint8_t *c, int idx) {
    c[0] = (uint8_t)(idx / 3);
    c[1] = (uint8_t)(idx % 3);
    return idx <= 8;
}

/* TL1: nibble stream of the (M, K/2) pair indices tiled (M/BM, BM/bm, bm/16, 16, K/BK, BK/by, by/4, 2) and
 * transposed to (0, 4, 1, 5, 2, 6, 3, 7); by = 256/bm; first index of a byte in the high nibble. */
static int tl1_block(const uint8_t *src, int M, int K, int BM, int BK, int bm, int i0, uint8_t *codes) {
    const int by = 256 / bm;
    int ok = 1;
    /* nibble position of (i0, i4, i1, i5, i2, i6, i3, i7) in the stream, i0 fixed */
    size_t p = (size_t)i0 * BM * (K / 2);
    (void)M;
    for (int i4 = 0; i4 < K / BK; i4++)
        for (int i1 = 0; i1 < BM / bm; i1++)
            for (int i5 = 0; i5 < BK / by; i5++)
                for (int i2 = 0; i2 < bm / 16; i2++)
                    for (int i6 = 0; i6 < by / 4; i6++)
                        for (int i3 = 0; i3 < 16; i3++, p += 2) {
                            const int r = i1 * bm + i2 * 16 + i3;              /* row inside the block */
                            const int j = i4 * (BK / 2) + i5 * (by / 2) + i6 * 2;  /* first of two pairs */
                            const uint8_t byte = src[p / 2];
                            uint8_t *c = codes + (size_t)r * K + 2 * j;
                            ok &= put_pair(c, byte >> 4);
                            ok &= put_pair(c + 2, byte & 15);
                        }
    return ok;
}

/* TL2 nibble streams (magnitudes of Kv = K3/3 triples, or the tail's Kv = K2/2 pair indices) of one row block:
 * tiled (BM/32, 32, Kv/per_tile, per_tile/2, 2) -> transpose (2, 0, 3, 1, 4), nibble pairs (high first), and the
 * 8-byte groups of each 32-byte run reordered. Writes the nibbles row-major: nib[r * Kv + v]. */
static void tl2_nibbles(const uint8_t *run, int Kv, int per_tile, int BM, uint8_t *nib) {
    for (int i3 = 0; i3 < Kv / per_tile; i3++)
        for (int i1 = 0; i1 < BM / 32; i1++)
            for (int i4 = 0; i4 < per_tile / 2; i4++, run += 32)
                for (int i2 = 0; i2 < 32; i2++) {
                    const uint8_t byte = run[GROUP_ORDER[i2 / 8] * 8 + i2 % 8];
                    uint8_t *o = nib + (size_t)(i1 * 32 + i2) * Kv + i3 * per_tile + i4 * 2;
                    o[0] = byte >> 4;
                    o[1] = byte & 15;
                }
}

static int tl2_block(const uint8_t *src, int M, int K, int BM, int BK, int i0, uint8_t *codes, uint8_t *nib) {
    const int K3 = K - K % BK, K2 = K % BK;
    const size_t n_mag = (size_t)M * K3 / 6, n_sign = (size_t)M * K3 / 24;
    int ok = 1;
    if (K3) {
        const int T = K3 / 3;
        const uint8_t *sign = src + n_mag + (size_t)i0 * BM * K3 / 24;
        tl2_nibbles(src + (size_t)i0 * BM * K3 / 6, T, BK / 3, BM, nib);
        for (int r = 0; r < BM; r++) {
            /* sign bits: (BM/32 (s1), 2 (s2), 16 (s3), K3/BK (s4), BK/24 (s5), 8 (s6)) -> (s4, s1, s5, s6, s2, s3);
             * runs of 16 little-endian uint16: word s3 of run (s4, s1, s5) has bit i = s6 * 2 + s2 at 15 - i */
            const int s1 = r / 32, s2 = (r % 32) / 16, s3 = r % 16;
            for (int tj = 0; tj < T; tj++) {
                const int s4 = tj / (BK / 3), s5 = (tj % (BK / 3)) / 8, s6 = tj % 8;
                const uint8_t *w = sign + (((size_t)s4 * (BM / 32) + s1) * (BK / 24) + s5) * 32 + 2 * s3;
                const int neg = ((w[0] | w[1] << 8) >> (15 - (s6 * 2 + s2))) & 1;
                const int mag = nib[(size_t)r * T + tj];
                ok &= mag <= 13;
                const int u = (neg ? -mag : mag) + 13;  /* 9 c0 + 3 c1 + c2 */
                uint8_t *c = codes + (size_t)r * K + 3 * tj;
                c[0] = (uint8_t)(u / 9), c[1] = (uint8_t)(u / 3 % 3), c[2] = (uint8_t)(u % 3);
            }
        }
    }
    if (K2) {
        const int P = K2 / 2;
        tl2_nibbles(src + n_mag + n_sign + (size_t)i0 * BM * K2 / 4, P, 16, BM, nib);
        for (int r = 0; r < BM; r++)
            for (int j = 0; j < P; j++) ok &= put_pair(codes + (size_t)r * K + K3 + 2 * j, nib[(size_t)r * P + j]);
    }
    return ok;
}

int bg_tl_to_i2_rows(int tl_type, const uint8_t *src, int M, int K, int BM, int BK, int bm, uint8_t *dst,
                     int n_threads) {
    if (M <= 0 || K <= 0 || K % 8 || BM <= 0 || M % BM || BM % 32 || BK <= 0 || bm <= 0) return -2;
    if (tl_type == 1 && (K % BK || BM % bm || bm % 16 || 256 % bm || BK % (256 / bm))) return -2;
    if (tl_type == 2 && (bm != 32 || BK % 24 || (K % BK) % 32)) return -2;
    int bad = 0, oom = 0;
    (void)n_threads;
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic) num_threads(n_threads > 0 ? n_threads : 1) reduction(| : bad, oom)
#endif
    for (int i0 = 0; i0 < M / BM; i0++) {
        uint8_t *codes = malloc((size_t)BM * K), *nib = tl_type == 2 ? malloc((size_t)BM * K / 2) : NULL;
        if (!codes || (tl_type == 2 && !nib)) {
            oom = 1;
        } else {
            int ok = tl_type == 1 ? tl1_block(src, M, K, BM, BK, bm, i0, codes)
                                  : tl2_block(src, M, K, BM, BK, i0, codes, nib);
            bad |= !ok;
            for (int r = 0; r < BM; r++) pack_row(codes + (size_t)r * K, K, dst + ((size_t)i0 * BM + r) * (K / 4));
        }
        free(codes);
        free(nib);
    }
    return oom ? -3 : bad ? -1 : 0;
}
