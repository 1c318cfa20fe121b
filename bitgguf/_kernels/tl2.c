/* TL2 in place (tl2.h): the stream offsets, the per-token tables, and the portable tile kernel, which walks the
 * layout byte by byte in the order the SIMD kernels read it and gives the same exact integers. */
#include <string.h>

#include "tl2.h"


int bg_tl2_init(bg_tl2 *w, const uint8_t *data, int M, int K, int BM, int BK) {
    if (M <= 0 || K <= 0 || BM <= 0 || BK <= 0 || M % BM || BM % 32 || BK % 24 || (K % BK) % 32) return -1;
    w->rows = M, w->cols = K, w->BM = BM, w->BK = BK;
    w->K3 = K - K % BK, w->K2 = K % BK;
    w->mag = data;
    w->sign = data + (size_t)M * w->K3 / 6;
    w->tail = w->sign + (size_t)M * w->K3 / 24;
    return 0;
}

/* nibbles above `max` in n bytes (a loop the compiler vectorizes: a load-time pass over the whole tensor) */
static int nibbles_above(const uint8_t *p, size_t n, int max) {
    unsigned bad = 0;
    for (size_t i = 0; i < n; i++) bad |= (unsigned)((p[i] >> 4) > max) | (unsigned)((p[i] & 15) > max);
    return bad != 0;
}

int bg_tl2_valid(const bg_tl2 *w) {
    return !nibbles_above(w->mag, (size_t)w->rows * w->K3 / 6, 13) &&
           !nibbles_above(w->tail, (size_t)w->rows * w->K2 / 4, 8);
}

size_t bg_tl2_table_bytes(bg_isa isa, int cols, int BK) {
    const int K3 = cols - cols % BK;
    const size_t per_table = bg_isa_x86_avx512(isa) ? BG_TL2_TABLE_AVX512 : BG_TL2_TABLE;  /* bg_tl2_tables_kernel's */
    return (size_t)(K3 / 3 + (cols - K3) / 2) * per_table;
}

static inline void put_entry(uint8_t *table, int i, int v) {
    table[i] = (uint8_t)(v & 0xff);
    table[16 + i] = (uint8_t)(((unsigned)v >> 8) & 0xff);
}

void bg_tl2_tables(const int8_t *q, int cols, int BK, uint8_t *tables) {
    const int K3 = cols - cols % BK;
    for (int j = 0; j < K3 / 3; j++, tables += BG_TL2_TABLE) {
        const int a0 = q[3 * j], a1 = q[3 * j + 1], a2 = q[3 * j + 2];
        memset(tables, 0, BG_TL2_TABLE);
        for (int m = 0; m <= 13; m++) {  /* m = 9 w0 + 3 w1 + w2, digits in {-1, 0, 1} */
            const int u = m + 13;
            put_entry(tables, m, (u / 9 - 1) * a0 + (u / 3 % 3 - 1) * a1 + (u % 3 - 1) * a2);
        }
    }
    for (int j = 0; j < (cols - K3) / 2; j++, tables += BG_TL2_TABLE) {
        const int b0 = q[K3 + 2 * j], b1 = q[K3 + 2 * j + 1];
        memset(tables, 0, BG_TL2_TABLE);
        for (int idx = 0; idx <= 8; idx++) put_entry(tables, idx, (idx / 3 - 1) * b0 + (idx % 3 - 1) * b1);
    }
}

static inline int entry(const uint8_t *table, int i) { return (int16_t)(table[i] | table[16 + i] << 8); }

static void tile_one(const bg_tl2 *w, int mt, const uint8_t *tables, int32_t *out) {
    const int BM = w->BM, n_sub = BM / 32, n_pos = w->BK / 6, n_sign = w->BK / 24;
    const uint8_t *mag = w->mag + (size_t)mt * BM * w->K3 / 6;
    const uint8_t *sign = w->sign + (size_t)mt * BM * w->K3 / 24;
    const uint8_t *tail = w->tail + (size_t)mt * BM * w->K2 / 4;
    memset(out, 0, (size_t)BM * sizeof *out);
    for (int kt = 0; kt < w->K3 / w->BK; kt++) {
        const uint8_t *tab = tables + (size_t)kt * (w->BK / 3) * BG_TL2_TABLE;
        for (int sub = 0; sub < n_sub; sub++, mag += n_pos * 32, sign += n_sign * 32) {
            int32_t *y = out + sub * 32;
            for (int p = 0; p < n_pos; p++)
                for (int b = 0; b < 32; b++) {
                    const int r = bg_tl2_row_of_byte(b), byte = mag[p * 32 + b];
                    for (int half = 0; half < 2; half++) {  /* high nibble: triple 2p, low: 2p + 1 */
                        const int t = 2 * p + half, e = t % 8;
                        const uint8_t *wd = sign + (t / 8) * 32 + 2 * (r % 16);
                        const int neg = ((wd[0] | wd[1] << 8) >> (15 - 2 * e - r / 16)) & 1;
                        const int v = entry(tab + (size_t)t * BG_TL2_TABLE, half ? byte & 15 : byte >> 4);
                        y[r] += neg ? -v : v;
                    }
                }
        }
    }
    const uint8_t *pair_tab = tables + (size_t)(w->K3 / 3) * BG_TL2_TABLE;
    for (int kt = 0; kt < w->K2 / 32; kt++) {
        const uint8_t *tab = pair_tab + (size_t)kt * 16 * BG_TL2_TABLE;
        for (int sub = 0; sub < n_sub; sub++, tail += 8 * 32) {
            int32_t *y = out + sub * 32;
            for (int p = 0; p < 8; p++)
                for (int b = 0; b < 32; b++) {
                    const int r = bg_tl2_row_of_byte(b), byte = tail[p * 32 + b];
                    y[r] += entry(tab + (size_t)(2 * p) * BG_TL2_TABLE, byte >> 4) +
                            entry(tab + (size_t)(2 * p + 1) * BG_TL2_TABLE, byte & 15);
                }
        }
    }
}

void bg_tl2_tile_scalar(const bg_tl2 *w, int mt, const uint8_t *tables, size_t table_stride, int n, int32_t *out) {
    for (int t = 0; t < n; t++) tile_one(w, mt, tables + t * table_stride, out + (size_t)t * w->BM);
}

bg_tl2_tile_fn bg_tl2_tile_kernel(bg_isa isa) {
#if defined(__x86_64__)
    if (bg_isa_x86_avx512(isa)) return bg_tl2_tile_avx512;
    if (bg_isa_x86_avx2(isa)) return bg_tl2_tile_avx2;
#endif
    (void)isa;
    return bg_tl2_tile_scalar;
}

bg_tl2_tables_fn bg_tl2_tables_kernel(bg_isa isa) {
#if defined(__x86_64__)
    if (bg_isa_x86_avx512(isa)) return bg_tl2_tables_avx512;
    if (bg_isa_x86_avx2(isa)) return bg_tl2_tables_avx2;
#endif
    (void)isa;
    return bg_tl2_tables;
}

int bg_tl2_in_place(bg_isa isa) { return bg_tl2_tile_kernel(isa) != bg_tl2_tile_scalar || isa == BG_ISA_SCALAR; }

/* u = 9 c0 + 3 c1 + c2 (0..26) -> its codes, and a fourth byte that the next write covers */
#define CODES_OF(u) {(u) / 9, (u) / 3 % 3, (u) % 3, 0}
static const uint8_t CODES_OF_U[27][4] = {
    CODES_OF(0),  CODES_OF(1),  CODES_OF(2),  CODES_OF(3),  CODES_OF(4),  CODES_OF(5),  CODES_OF(6),
    CODES_OF(7),  CODES_OF(8),  CODES_OF(9),  CODES_OF(10), CODES_OF(11), CODES_OF(12), CODES_OF(13),
    CODES_OF(14), CODES_OF(15), CODES_OF(16), CODES_OF(17), CODES_OF(18), CODES_OF(19), CODES_OF(20),
    CODES_OF(21), CODES_OF(22), CODES_OF(23), CODES_OF(24), CODES_OF(25), CODES_OF(26)};
#undef CODES_OF

/* The layout walk of tile_one, writing codes instead of looking entries up: a run's byte b holds row
 * bg_tl2_row_of_byte(b)'s magnitudes of two triples; the sign words give each row's signs. Columns go up within a
 * row, so each 4-byte write's last byte is covered by the next one (or lies in the row's slack). */
void bg_tl2_sub_tile_codes(const bg_tl2 *w, int mt, int sub, uint8_t *codes, size_t ld) {
    const int BM = w->BM, n_sub = BM / 32, n_pos = w->BK / 6, n_sign = w->BK / 24;
    const uint8_t *mag0 = w->mag + (size_t)mt * BM * w->K3 / 6, *sign0 = w->sign + (size_t)mt * BM * w->K3 / 24;
    for (int kt = 0; kt < w->K3 / w->BK; kt++) {
        const uint8_t *mag = mag0 + ((size_t)kt * n_sub + sub) * n_pos * 32;
        const uint8_t *sign = sign0 + ((size_t)kt * n_sub + sub) * n_sign * 32;
        for (int q = 0; q < n_sign; q++) {
            unsigned word[16];  /* row r's signs (and row 16 + r's) of triples 8q..8q+7 */
            for (int r = 0; r < 16; r++) word[r] = sign[q * 32 + 2 * r] | (unsigned)sign[q * 32 + 2 * r + 1] << 8;
            for (int pp = 0; pp < 4; pp++) {
                const uint8_t *run = mag + (size_t)(4 * q + pp) * 32;
                const int col = kt * w->BK + 3 * (8 * q + 2 * pp);  /* of triple 8q + 2pp; 8q + 2pp + 1 follows */
                for (int b = 0; b < 32; b++) {
                    const int r = bg_tl2_row_of_byte(b), h = r >> 4;
                    const int m0 = run[b] >> 4, m1 = run[b] & 15;
                    const int neg0 = (word[r & 15] >> (15 - 4 * pp - h)) & 1;
                    const int neg1 = (word[r & 15] >> (13 - 4 * pp - h)) & 1;
                    uint8_t *c = codes + (size_t)r * ld + col;
                    memcpy(c, CODES_OF_U[neg0 ? 13 - m0 : 13 + m0], 4);
                    memcpy(c + 3, CODES_OF_U[neg1 ? 13 - m1 : 13 + m1], 4);
                }
            }
        }
    }
    const uint8_t *tail0 = w->tail + (size_t)mt * BM * w->K2 / 4;
    for (int kt = 0; kt < w->K2 / 32; kt++) {
        const uint8_t *tail = tail0 + ((size_t)kt * n_sub + sub) * 8 * 32;
        for (int p = 0; p < 8; p++)  /* pairs 2p (high nibble) and 2p + 1: idx = 3 c0 + c1 */
            for (int b = 0; b < 32; b++) {
                const int idx0 = tail[p * 32 + b] >> 4, idx1 = tail[p * 32 + b] & 15;
                uint8_t *c = codes + (size_t)bg_tl2_row_of_byte(b) * ld + w->K3 + kt * 32 + 4 * p;
                c[0] = (uint8_t)(idx0 / 3), c[1] = (uint8_t)(idx0 % 3);
                c[2] = (uint8_t)(idx1 / 3), c[3] = (uint8_t)(idx1 % 3);
            }
    }
}

bg_tl2_gemm_fn bg_tl2_gemm_kernel(bg_isa isa, int cols) {
    if (cols % 64) return NULL;
#if defined(__x86_64__)
#if BG_BUILD_AMX
    if (isa == BG_ISA_AMX) return bg_tl2_gemm_amx;
#endif
    if (bg_isa_x86_avx512(isa)) return bg_tl2_gemm_avx512;
#endif
    (void)isa;
    return NULL;
}
