/* Standalone check of the C kernels without Python: every ISA level this CPU runs must give the scalar kernel's
 * ternary results exactly, and the float head kernels must agree with scalar to float-order accuracy.
 * Built and run by tests/run_kernel_check.sh (natively, or for aarch64 under qemu-aarch64). Exit status 0 = pass. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "kernels.h"
#include "engine_avx2.h"
#include "repack.h"
#include "tl2.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static float rnd_float(void) { return ((float)(rnd() % 20001) - 10000.0f) / 1000.0f; }

/* codes c in {0,1,2} -> I2_S rows (MSB-first groups of 32 in 128-weight blocks) */
static void pack_i2s(const uint8_t *c, int rows, int cols, uint8_t *out) {
    memset(out, 0, (size_t)rows * cols / 4);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) {
            int blk = j / 128, grp = (j % 128) / 32, pos = j % 32;
            out[(size_t)r * cols / 4 + blk * 32 + pos] |= (uint8_t)(c[(size_t)r * cols + j] << (6 - 2 * grp));
        }
}

/* codes -> TQ2_0 rows (66-byte blocks: LSB-first qs[64], f16 d) with per-block scales */
static void pack_tq2(const uint8_t *c, int rows, int cols, uint8_t *out) {
    int nb = cols / 256;
    memset(out, 0, (size_t)rows * nb * 66);
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < nb; b++) {
            uint8_t *blk = out + ((size_t)r * nb + b) * 66;
            for (int j = 0; j < 256; j++) {
                int h = j / 128, l = (j % 128) / 32, m = j % 32;
                blk[32 * h + m] |= (uint8_t)(c[(size_t)r * cols + b * 256 + j] << (2 * l));
            }
            uint16_t d = bg_f32_to_f16(0.01f + (float)(rnd() % 1000) / 997.0f);
            memcpy(blk + 64, &d, 2);
        }
}

/* codes -> TQ1_0 rows (54-byte blocks: base-3 qs[48], qh[4], f16 d): byte = ceil(Σ digit_n 3^(4-n) * 256 / 243) */
static uint8_t tq1_byte(const uint8_t *digits, int n, int stride) {
    int v = 0;
    for (int i = 0; i < 5; i++) v = v * 3 + (i < n ? digits[i * stride] : 0);
    return (uint8_t)((v * 256 + 242) / 243);
}

static void pack_tq1(const uint8_t *c, int rows, int cols, uint8_t *out) {
    int nb = cols / 256;
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < nb; b++) {
            const uint8_t *w = c + (size_t)r * cols + b * 256;
            uint8_t *blk = out + ((size_t)r * nb + b) * BG_TQ1_BYTES;
            for (int m = 0; m < 32; m++) blk[m] = tq1_byte(w + m, 5, 32);
            for (int m = 0; m < 16; m++) blk[32 + m] = tq1_byte(w + 160 + m, 5, 16);
            for (int j = 0; j < 4; j++) blk[48 + j] = tq1_byte(w + 240 + j, 4, 4);
            uint16_t d = bg_f32_to_f16(0.01f + (float)(rnd() % 1000) / 997.0f);
            memcpy(blk + 52, &d, 2);
        }
}

/* codes -> I2_ROWS rows (I2_S blocks, then the tail of t = cols % 128 weights with t/4 in place of 32) */
static void pack_i2r(const uint8_t *c, int rows, int cols, uint8_t *out) {
    const int full = cols / 128 * 128, t = cols - full;
    memset(out, 0, (size_t)rows * cols / 4);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) {
            int byte, shift;
            if (j < full) {
                byte = j / 128 * 32 + j % 32, shift = 6 - 2 * ((j % 128) / 32);
            } else {
                int k = j - full;
                byte = full / 4 + k % (t / 4), shift = 6 - 2 * (k / (t / 4));
            }
            out[(size_t)r * cols / 4 + byte] |= (uint8_t)(c[(size_t)r * cols + j] << shift);
        }
}

/* I2_ROWS (the TL1/TL2 runtime layout) at row lengths with and without a tail: exact at every level */
static int check_i2r(int *checks) {
    const int shapes[][2] = {{3, 8}, {2, 40}, {4, 128}, {3, 136}, {3, 160}, {5, 200}, {2, 224}, {2, 296},
                              {3, 1728}, {3, 2568}, {4, 2656}, {2, 6912}};
    int failures = 0;
    const bg_type_traits *t = bg_type_traits_of(BG_TYPE_I2_ROWS);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int rows = shapes[si][0], cols = shapes[si][1];
        uint8_t *codes = malloc((size_t)rows * cols), *w = malloc((size_t)rows * cols / 4);
        float *x = malloc((size_t)cols * sizeof(float));
        bg_act acts[5] = {0};
        for (int i = 0; i < rows * cols; i++) codes[i] = (uint8_t)(rnd() % 3);
        pack_i2r(codes, rows, cols, w);
        for (int k = 0; k < 5; k++) {
            acts[k].q = malloc((size_t)cols);
            acts[k].gsum = malloc((size_t)(cols / 32 + 1) * sizeof(int32_t));
            for (int i = 0; i < cols; i++) x[i] = rnd_float();
            bg_quantize_act(x, cols, &acts[k]);
        }
        for (int isa = 0; isa < BG_ISA_COUNT; isa++) {
            if (!bg_cpu_supports((bg_isa)isa)) continue;
            bg_dot_i8_multi_fn multi = bg_kernel_dot_i8_multi(t, (bg_isa)isa);
            for (int r = 0; r < rows; r++) {
                const uint8_t *row = w + (size_t)r * bg_row_bytes(t, cols);
                float many[5];
                if (multi) multi(row, acts, 5, many, 1);
                for (int k = 0; k < 5; k++) {
                    int32_t direct = 0;
                    for (int j = 0; j < cols; j++) direct += ((int)codes[(size_t)r * cols + j] - 1) * acts[k].q[j];
                    float got = bg_kernel_dot_i8(t, (bg_isa)isa)(row, &acts[k]);
                    *checks += 1;
                    if (got != (float)direct || (multi && many[k] != (float)direct)) {
                        printf("FAIL %s I2_ROWS (%d, %d) row %d token %d: %.1f (multi %.1f), expected %d\n",
                               bg_isa_name((bg_isa)isa), rows, cols, r, k, got, multi ? many[k] : 0.0f, direct);
                        failures++;
                    }
                }
            }
        }
        for (int k = 0; k < 5; k++) free(acts[k].q), free(acts[k].gsum);
        free(codes), free(w), free(x);
    }
    return failures;
}

/* TL2 read in place (tl2.c): random valid TL2 bytes (magnitudes 0..13, any signs, tail pair indices 0..8), decoded
 * independently by the load-time repack (repack.c) into 2-bit rows; each level's tables and tile kernel, for 1, 3,
 * 5 and 6 tokens at once, and its prompt GEMM where it has one, must give the direct integer sums of those rows. */
static int check_tl2(int *checks) {
    enum { NT = 6 };  /* tokens */
    const int shapes[][4] = {{64, 160, 64, 96},    {96, 288, 96, 96},     {256, 2560, 256, 96},
                             {128, 1536, 128, 192}, {512, 640, 256, 96}};  /* the last: two M-tiles */
    int failures = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int M = shapes[si][0], K = shapes[si][1], BM = shapes[si][2], BK = shapes[si][3];
        const int K3 = K - K % BK;
        const size_t n_mag = (size_t)M * K3 / 6, n_sign = (size_t)M * K3 / 24, n_tail = (size_t)M * (K - K3) / 4;
        uint8_t *data = malloc(n_mag + n_sign + n_tail), *rows = malloc((size_t)M * K / 4);
        for (size_t i = 0; i < n_mag; i++) data[i] = (uint8_t)((rnd() % 14) << 4 | rnd() % 14);
        for (size_t i = 0; i < n_sign; i++) data[n_mag + i] = (uint8_t)rnd();
        for (size_t i = 0; i < n_tail; i++) data[n_mag + n_sign + i] = (uint8_t)((rnd() % 9) << 4 | rnd() % 9);
        bg_tl2 w;
        if (bg_tl2_init(&w, data, M, K, BM, BK) || !bg_tl2_valid(&w) ||
            bg_tl_to_i2_rows(2, data, M, K, BM, BK, 32, rows, 1)) {
            printf("FAIL TL2 (%d, %d): the layout or the repack refused valid data\n", M, K);
            failures++;
            continue;
        }
        const size_t stride = bg_tl2_table_bytes(BG_ISA_AVX512, K, BK) + 64  /* the largest format */;
        int8_t *q = malloc((size_t)NT * K);
        uint8_t *tables = malloc(NT * stride);
        int32_t *want = malloc((size_t)NT * M * sizeof(int32_t)), *got = malloc((size_t)NT * M * sizeof(int32_t));
        for (int i = 0; i < NT * K; i++) q[i] = (int8_t)(i < K ? -128 : (int)(rnd() % 256) - 128);
        for (int t = 0; t < NT; t++)
            for (int r = 0; r < M; r++) {
                int32_t sum = 0;
                for (int j = 0; j < K; j++) {  /* I2_ROWS: I2_S blocks of 128, then a tail of t = K % 128 */
                    const int full = K / 128 * 128, g = j < full ? 32 : (K - full) / 4, base = j < full ? j / 128 * 128 : full;
                    const int jj = j - base, byte = rows[(size_t)r * K / 4 + base / 4 + jj % g];
                    sum += (((byte >> (6 - 2 * (jj / g))) & 3) - 1) * q[t * K + j];
                }
                want[t * M + r] = sum;
            }
        for (int isa = 0; isa < BG_ISA_COUNT; isa++) {
            if (!bg_cpu_supports((bg_isa)isa)) continue;
            for (int t = 0; t < NT; t++) bg_tl2_tables_kernel((bg_isa)isa)(q + t * K, K, BK, tables + t * stride);
            for (int n = 1; n <= NT; n += n < 4 ? 2 : 1) {  /* 1, 3, 5, 6: the AVX-512 kernel takes 4 at a time */
                for (int mt = 0; mt < M / BM; mt++) {
                    int32_t tile[NT * BG_TL2_MAX_BM];
                    bg_tl2_tile_kernel((bg_isa)isa)(&w, mt, tables, stride, n, tile);
                    for (int t = 0; t < n; t++) memcpy(got + t * M + mt * BM, tile + t * BM, (size_t)BM * sizeof(int32_t));
                }
                for (int t = 0; t < n; t++)
                    for (int r = 0; r < M; r++) {
                        *checks += 1;
                        if (got[t * M + r] != want[t * M + r]) {
                            printf("FAIL %s TL2 (%d, %d) BK %d, %d tokens: row %d token %d: %d, expected %d\n",
                                   bg_isa_name((bg_isa)isa), M, K, BK, n, r, t, got[t * M + r], want[t * M + r]);
                            failures++;
                            r = M, t = n;
                        }
                    }
            }
        }
#if defined(__x86_64__)
        /* the GEMMs' vector decoder writes the portable one's codes */
        if (bg_cpu_supports(BG_ISA_AVX512)) {
            const size_t ld = bg_tl2_codes_ld(K);
            uint8_t *c0 = malloc(32 * ld), *c1 = malloc(32 * ld);
            for (int mt = 0; mt < M / BM; mt++)
                for (int sub = 0; sub < BM / 32; sub++) {
                    bg_tl2_sub_tile_codes(&w, mt, sub, c0, ld);
                    bg_tl2_sub_tile_codes_avx512(&w, mt, sub, c1, ld);
                    for (int r = 0; r < 32; r++) {
                        *checks += 1;
                        if (memcmp(c0 + r * ld, c1 + r * ld, (size_t)K)) {
                            printf("FAIL TL2 (%d, %d) BK %d: the AVX-512 decoder's codes of row %d of sub-tile %d of "
                                   "M-tile %d differ\n", M, K, BK, r, sub, mt);
                            failures++;
                            r = 32, sub = BM, mt = M;
                        }
                    }
                }
            free(c0), free(c1);
        }
#endif
        /* the prompt GEMM (AMX, AVX-512): each sub-tile decoded into codes, then I2_S's panels; 20 tokens (two token
         * tiles), token k with the activations of token k % 3 */
        for (int isa = 0; isa < BG_ISA_COUNT; isa++) {
            const bg_tl2_gemm_fn gemm = bg_tl2_gemm_kernel((bg_isa)isa, K);
            if (!gemm || !bg_cpu_supports((bg_isa)isa)) continue;
            enum { N = 20 };
            bg_act acts[N] = {0};
            int8_t *gtiles = calloc(bg_gemm_tiles_bytes(K, N), 1);
            uint8_t *codes = malloc(32 * bg_tl2_codes_ld(K));
            float *y = malloc((size_t)N * M * sizeof(float));
            for (int k = 0; k < N; k++) {
                acts[k].n = K, acts[k].q = q + (k % 3) * K, acts[k].sum = 0;
                for (int i = 0; i < K; i++) acts[k].sum += acts[k].q[i];
                bg_gemm_put_token(acts[k].q, K, k, gtiles);
            }
            for (int mt = 0; mt < M / BM; mt++) gemm(&w, mt, codes, gtiles, acts, N, y + mt * BM, (size_t)M);
            for (int k = 0; k < N; k++)
                for (int r = 0; r < M; r++) {
                    *checks += 1;
                    if (y[(size_t)k * M + r] != (float)want[(k % 3) * M + r]) {
                        printf("FAIL %s TL2 GEMM (%d, %d) BK %d: row %d token %d: %g, expected %d\n",
                               bg_isa_name((bg_isa)isa), M, K, BK, r, k, y[(size_t)k * M + r], want[(k % 3) * M + r]);
                        failures++;
                        r = M, k = N;
                    }
                }
            free(gtiles), free(codes), free(y);
        }
        free(data), free(rows), free(q), free(tables), free(want), free(got);
    }
    return failures;
}

/* I2_S multi-token kernels (the prompt path) at every level that has one: exact per token against a direct integer
 * sum, tiles and tails of tokens, odd block counts, and the extremes of the 16-bit partial sums (all codes 2 with
 * all activations -128 or 127: the AVX2 kernel's int16 lanes reach exactly -32768 and 32512 over 16 blocks). */
static int check_i2s_multi(int *checks) {
    const int cols_list[] = {128, 384, 2560, 6912}, rows = 3, n = 7;
    int failures = 0;
    const bg_type_traits *t = bg_type_traits_of(BG_TYPE_I2_S);
    for (size_t ci = 0; ci < sizeof cols_list / sizeof cols_list[0]; ci++) {
        const int cols = cols_list[ci];
        uint8_t *codes = malloc((size_t)rows * cols), *w = malloc((size_t)rows * cols / 4);
        bg_act acts[7] = {0};
        for (int i = 0; i < rows * cols; i++) codes[i] = (uint8_t)(rnd() % 3);
        for (int i = 0; i < cols; i++) codes[i] = 2;  /* row 0: all +1 */
        pack_i2s(codes, rows, cols, w);
        for (int k = 0; k < n; k++) {
            acts[k].q = malloc((size_t)cols);
            acts[k].gsum = malloc((size_t)(cols / 32 + 1) * sizeof(int32_t));
            int32_t sum = 0;
            for (int i = 0; i < cols; i++) {
                int v = k == 1 ? -128 : k == 5 ? 127 : (int)(rnd() % 256) - 128;
                acts[k].q[i] = (int8_t)v;
                sum += v;
            }
            for (int g = 0; g * 32 < cols; g++) {
                int32_t gs = 0;
                for (int i = g * 32; i < g * 32 + 32 && i < cols; i++) gs += acts[k].q[i];
                acts[k].gsum[g] = gs;
            }
            acts[k].n = cols;
            acts[k].scale = 1.0f;
            acts[k].sum = sum;
        }
        for (int isa = 0; isa < BG_ISA_COUNT; isa++) {
            bg_dot_i8_multi_fn multi = bg_kernel_dot_i8_multi(t, (bg_isa)isa);
            if (!bg_cpu_supports((bg_isa)isa) || !multi) continue;
            for (int r = 0; r < rows; r++) {
                const uint8_t *row = w + (size_t)r * bg_row_bytes(t, cols);
                float many[2 * 7];
                multi(row, acts, n, many, 2);
                for (int k = 0; k < n; k++) {
                    int32_t direct = 0;
                    for (int j = 0; j < cols; j++) direct += ((int)codes[(size_t)r * cols + j] - 1) * acts[k].q[j];
                    float one = bg_kernel_dot_i8(t, (bg_isa)isa)(row, &acts[k]);
                    *checks += 1;
                    if (many[2 * k] != (float)direct || one != (float)direct) {
                        printf("FAIL %s I2_S multi (%d, %d) row %d token %d: %.1f (single %.1f), expected %d\n",
                               bg_isa_name((bg_isa)isa), rows, cols, r, k, many[2 * k], one, direct);
                        failures++;
                    }
                }
            }
        }
        for (int k = 0; k < n; k++) free(acts[k].q), free(acts[k].gsum);
        free(codes), free(w);
    }
    return failures;
}

/* The engine's AVX2 and AVX-512 activation quantization: bit for bit bg_quantize_act (values, scale, sums), on
 * lengths with and without a partial group, ties at .5, the clamp, and all zeros. */
static int check_quantize(int *checks) {
    int failures = 0;
#if defined(__x86_64__)
    if (!bg_cpu_supports(BG_ISA_AVX2)) return 0;
    const int lens[] = {8, 32, 100, 2560, 6912, 6913};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const int n = lens[li];
        float *x = malloc((size_t)n * sizeof(float));
        bg_act a = {0}, b = {0};
        a.q = malloc((size_t)n), b.q = malloc((size_t)n);
        a.gsum = malloc((size_t)(n / 32 + 1) * sizeof(int32_t)), b.gsum = malloc((size_t)(n / 32 + 1) * sizeof(int32_t));
        for (int mode = 0; mode < 3; mode++) {
            for (int i = 0; i < n; i++)
                x[i] = mode == 0 ? rnd_float() : mode == 1 ? ((float)(i % 255) - 127.0f) + 0.5f : 0.0f;
            bg_quantize_act(x, n, &a);
            for (int wide = 0; wide < 2; wide++) {
                if (wide && !bg_cpu_supports(BG_ISA_AVX512)) break;
                memset(b.q, 0x55, (size_t)n);
                if (wide)
                    bg_quantize_act_avx512(x, n, &b);
                else
                    bg_quantize_act_avx2(x, n, &b);
                *checks += 1;
                int bad = a.n != b.n || a.scale != b.scale || a.sum != b.sum || memcmp(a.q, b.q, (size_t)n) != 0;
                for (int g = 0; g * 32 < n; g++) bad |= a.gsum[g] != b.gsum[g];
                if (bad) {
                    printf("FAIL %s quantize n %d mode %d: scale %.9g / %.9g, sum %d / %d\n", wide ? "avx512" : "avx2",
                           n, mode, b.scale, a.scale, b.sum, a.sum);
                    failures++;
                }
            }
        }
        free(x), free(a.q), free(b.q), free(a.gsum), free(b.gsum);
    }
#else
    (void)checks;
#endif
    return failures;
}

/* The engine's other per-token helpers at the x86 levels, on lengths around their 16- and 8-wide steps: RMSNorm
 * (AVX2 and AVX-512, in place and not) bit for bit bg_rmsnorm; AVX-512's SiLU-times-up and dot scaling bit for bit
 * AVX2's. */
static int check_token_helpers(int *checks) {
    int failures = 0;
#if defined(__x86_64__)
    if (!bg_cpu_supports(BG_ISA_AVX2)) return 0;
    const int wide = bg_cpu_supports(BG_ISA_AVX512);
    const int lens[] = {1, 7, 8, 15, 16, 17, 24, 31, 40, 2560, 6912, 6919};
    enum { MAX_N = 6919 };
    float *x = malloc(MAX_N * sizeof(float)), *w = malloc(MAX_N * sizeof(float)), *u = malloc(MAX_N * sizeof(float));
    float *want = malloc(MAX_N * sizeof(float)), *got = malloc(MAX_N * sizeof(float));
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const int n = lens[li];
        /* magnitudes 2^-12 .. 2^12, so that the double sums round (a few float squares of one size add exactly);
         * the sums' order still rarely shows in the float result */
        for (int i = 0; i < n; i++)
            x[i] = ldexpf(rnd_float(), (int)(rnd() % 25) - 12), w[i] = rnd_float() / 8.0f, u[i] = rnd_float();
        bg_rmsnorm(want, x, w, n, 1e-5f);
        for (int level = 0; level < 2 + 2 * wide; level++) {  /* avx2, avx2 in place, avx512, avx512 in place */
            const int in_place = level & 1;
            memcpy(got, x, (size_t)n * sizeof(float));
            if (level < 2)
                bg_rmsnorm_avx2(got, in_place ? got : x, w, n, 1e-5f);
            else
                bg_rmsnorm_avx512(got, in_place ? got : x, w, n, 1e-5f);
            *checks += 1;
            if (memcmp(got, want, (size_t)n * sizeof(float)) != 0) {
                printf("FAIL rmsnorm %s%s n %d differs from bg_rmsnorm\n", level < 2 ? "avx2" : "avx512",
                       in_place ? " in place" : "", n);
                failures++;
            }
        }
        if (!wide) continue;
        for (int i = 0; i < n; i++) x[i] = i % 5 == 0 ? -95.0f + (float)(i % 11) : rnd_float() * 3.0f;
        memcpy(want, x, (size_t)n * sizeof(float)), memcpy(got, x, (size_t)n * sizeof(float));
        bg_silu_mul_avx2(want, u, n);
        bg_silu_mul_avx512(got, u, n);
        *checks += 1;
        if (memcmp(got, want, (size_t)n * sizeof(float)) != 0) {
            printf("FAIL silu avx512 n %d differs from avx2\n", n);
            failures++;
        }
        memcpy(want, x, (size_t)n * sizeof(float)), memcpy(got, x, (size_t)n * sizeof(float));
        bg_scale_dots_avx2(want, n, 41.3f, 0.37f);
        bg_scale_dots_avx512(got, n, 41.3f, 0.37f);
        *checks += 1;
        if (memcmp(got, want, (size_t)n * sizeof(float)) != 0) {
            printf("FAIL scale_dots avx512 n %d differs from avx2\n", n);
            failures++;
        }
    }
    free(x), free(w), free(u), free(want), free(got);
#else
    (void)checks;
#endif
    return failures;
}

/* The attention blocks (attn_avx2.c, with AVX2's and AVX-512's row kernels) against attention in double over the
 * same cache values, for F16 and F32 caches, GQA groups of 1, 2 and 3, heads of 16, 48 and 128, and keys across
 * several V chunks and K tiles and not whole 16-key vectors; and a block of tokens bitwise equal to the same tokens
 * one at a time. Also SiLU with bg_exp_f32x8 against double. */
static int check_attention(int *checks) {
    int failures = 0;
#if defined(__x86_64__)
    if (!bg_cpu_supports(BG_ISA_AVX2)) return 0;
    enum { MAX_POS = 160, MAX_TOK = 9, MAX_G = 3, MAX_HD = 128 };
    enum { K_POS = (MAX_POS + BG_K_TILE - 1) / BG_K_TILE * BG_K_TILE };  /* K is padded to whole tiles */
    /* the last three are decode-like: one or two rows, where the AVX-512 kernel takes up to 8 column vectors at once */
    const int cases[][5] = {/* kv_f16, group, hd, first_keys, n_tokens */
                            {1, 3, 48, 1, 9},    {0, 1, 16, 60, 9},   {1, 1, 16, 130, 7}, {0, 3, 48, 57, 1},
                            {1, 3, 16, 64, 5},   {1, 2, 128, 150, 1}, {0, 1, 128, 139, 2}, {1, 1, 48, 131, 1}};
    const size_t stride_s = MAX_POS;
    float *scores = malloc((size_t)MAX_TOK * MAX_G * stride_s * sizeof(float));
    float *kf = malloc((size_t)MAX_POS * MAX_HD * sizeof(float)), *vf = malloc((size_t)MAX_POS * MAX_HD * sizeof(float));
    /* blocks of BG_K_TILE positions with a gap between them, as the engine's blocks hold other layers' and heads' */
    enum { GAP = 192 };
    uint8_t *kc = calloc((size_t)K_POS * MAX_HD * 4 + K_POS / BG_K_TILE * GAP, 1);
    uint8_t *vc = malloc((size_t)K_POS * 2 * MAX_HD * 4 + K_POS / BG_K_TILE * GAP);
    float q[MAX_TOK * MAX_G * MAX_HD], out[MAX_TOK * MAX_G * MAX_HD], one[MAX_G * MAX_HD];
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int f16 = cases[ci][0], group = cases[ci][1], hd = cases[ci][2], first = cases[ci][3];
        const int nt = cases[ci][4], npos = first + nt - 1;
        const size_t esz = f16 ? 2 : 4, v_stride = (size_t)2 * hd * esz; /* V: two KV heads per row, ours 2nd */
        const size_t k_tile_stride = (size_t)hd * BG_K_TILE * esz + GAP, v_tile_stride = BG_K_TILE * v_stride + GAP;
        for (int i = 0; i < npos; i++)
            for (int d = 0; d < hd; d++) {
                const size_t kat =
                    (size_t)i / BG_K_TILE * k_tile_stride + ((size_t)d * BG_K_TILE + i % BG_K_TILE) * esz;
                const size_t vat = (size_t)i / BG_K_TILE * v_tile_stride + (size_t)(i % BG_K_TILE) * v_stride +
                                   (size_t)(hd + d) * esz;
                const float kx = rnd_float() / 4.0f, vx = rnd_float();
                if (f16) {
                    const uint16_t hk = bg_f32_to_f16(kx), hv = bg_f32_to_f16(vx);
                    memcpy(kc + kat, &hk, 2), memcpy(vc + vat, &hv, 2);
                    kf[i * hd + d] = bg_f16_to_f32(hk), vf[i * hd + d] = bg_f16_to_f32(hv);
                } else {
                    memcpy(kc + kat, &kx, 4), memcpy(vc + vat, &vx, 4);
                    kf[i * hd + d] = kx, vf[i * hd + d] = vx;
                }
            }
        for (int i = 0; i < nt * group * hd; i++) q[i] = rnd_float() / 4.0f;
        bg_attn_block b = {.k = kc, .v = vc + hd * esz, .v_stride = v_stride, .kv_f16 = f16, .hd = hd,
                           .k_tile_stride = k_tile_stride, .v_tile_stride = v_tile_stride,
                           .group = group, .n_tokens = nt, .first_keys = first, .q = q,
                           .q_stride = (size_t)group * hd, .out = out, .out_stride = (size_t)group * hd,
                           .div = sqrtf((float)hd), .scores = scores, .scores_stride = stride_s};
        bg_attention_block_avx2(&b);
        double worst = 0.0;
        for (int r = 0; r < nt * group; r++) {
            const int keys = first + r / group;
            double s[MAX_POS], mx = -1e300, sum = 0.0;
            for (int i = 0; i < keys; i++) {
                s[i] = 0.0;
                for (int d = 0; d < hd; d++) s[i] += (double)q[r * hd + d] * kf[i * hd + d];
                s[i] /= sqrt((double)hd);
                mx = s[i] > mx ? s[i] : mx;
            }
            for (int i = 0; i < keys; i++) sum += (s[i] = exp(s[i] - mx));
            for (int d = 0; d < hd; d++) {
                double o = 0.0;
                for (int i = 0; i < keys; i++) o += s[i] / sum * vf[i * hd + d];
                worst = fmax(worst, fabs(o - out[r * hd + d]));
            }
        }
        *checks += 2;
        if (worst > 2e-5 * 10.0) { /* values up to 10: float order over <= 150 keys */
            printf("FAIL attention block case %zu: off by %.3g from double\n", ci, worst);
            failures++;
        }
        if (bg_cpu_supports(BG_ISA_AVX512)) {  /* the 512-bit row kernel: bitwise the same outputs */
            float wide[MAX_TOK * MAX_G * MAX_HD];
            bg_attn_block bw = b;
            bw.out = wide, bw.avx512 = 1;
            bg_attention_block_avx2(&bw);
            *checks += 1;
            if (memcmp(wide, out, (size_t)nt * group * hd * sizeof(float)) != 0) {
                printf("FAIL attention block case %zu: the AVX-512 row kernel differs from AVX2's\n", ci);
                failures++;
            }
        }
        for (int t = 0; t < nt; t++) {  /* token t alone */
            bg_attn_block b1 = b;
            b1.n_tokens = 1, b1.first_keys = first + t, b1.q = q + (size_t)t * group * hd, b1.out = one;
            bg_attention_block_avx2(&b1);
            if (memcmp(one, out + (size_t)t * group * hd, (size_t)group * hd * sizeof(float)) != 0) {
                printf("FAIL attention block case %zu: token %d alone differs from the block\n", ci, t);
                failures++;
                break;
            }
        }
    }
    free(scores), free(kf), free(vf), free(kc), free(vc);
    float g[40], u[40], want[40];
    for (int i = 0; i < 40; i++) {
        g[i] = i < 4 ? (float[]){-100.0f, -88.5f, 90.0f, 0.0f}[i] : rnd_float() * 3.0f;
        u[i] = 1.0f + (float)i / 8.0f;
        want[i] = (float)(g[i] / (1.0 + exp(-(double)g[i])) * u[i]);
    }
    bg_silu_mul_avx2(g, u, 40);
    for (int i = 0; i < 40; i++) {
        *checks += 1;
        if (fabsf(g[i] - want[i]) > 5e-7f * fabsf(want[i]) + 1e-30f) {
            printf("FAIL silu (bg_exp_f32x8) at %d: %.9g, double %.9g\n", i, g[i], want[i]);
            failures++;
        }
    }
#else
    (void)checks;
#endif
    return failures;
}

/* A per-block-scale type's multi-token kernels (where a level has one): bitwise the same as the single-token kernel
 * per token, which is bitwise the scalar kernel's result */
typedef void (*pack_fn)(const uint8_t *codes, int rows, int cols, uint8_t *out);

static int check_block_multi(int type_id, int cols, int n, pack_fn pack, int *checks) {
    enum { ROWS = 3, MAX_TOKENS = 8 };
    int failures = 0;
    const bg_type_traits *t = bg_type_traits_of(type_id);
    uint8_t *codes = malloc((size_t)ROWS * cols), *w = malloc((size_t)ROWS * bg_row_bytes(t, cols));
    float *x = malloc((size_t)cols * sizeof(float));
    bg_act acts[MAX_TOKENS] = {0};
    for (int i = 0; i < ROWS * cols; i++) codes[i] = (uint8_t)(rnd() % 3);
    pack(codes, ROWS, cols, w);
    for (int k = 0; k < n; k++) {
        acts[k].q = malloc((size_t)cols);
        acts[k].gsum = malloc((size_t)(cols / 32 + 1) * sizeof(int32_t));
        for (int i = 0; i < cols; i++) x[i] = rnd_float();
        bg_quantize_act(x, cols, &acts[k]);
    }
    bg_dot_i8_fn scalar = bg_kernel_dot_i8(t, BG_ISA_SCALAR);
    for (int isa = 0; isa < BG_ISA_COUNT; isa++) {
        bg_dot_i8_multi_fn multi = bg_kernel_dot_i8_multi(t, (bg_isa)isa);
        if (!bg_cpu_supports((bg_isa)isa) || !multi) continue;
        for (int r = 0; r < ROWS; r++) {
            const uint8_t *row = w + (size_t)r * bg_row_bytes(t, cols);
            float many[2 * MAX_TOKENS];
            multi(row, acts, n, many, 2);  /* stride 2: every other slot */
            for (int k = 0; k < n; k++) {
                float one = bg_kernel_dot_i8(t, (bg_isa)isa)(row, &acts[k]), ref = scalar(row, &acts[k]);
                *checks += 1;
                if (many[2 * k] != one || one != ref) {
                    printf("FAIL %s %s multi row %d token %d: %.9g, single %.9g, scalar %.9g\n",
                           bg_isa_name((bg_isa)isa), t->name, r, k, many[2 * k], one, ref);
                    failures++;
                }
            }
        }
    }
    for (int k = 0; k < n; k++) free(acts[k].q), free(acts[k].gsum);
    free(codes), free(w), free(x);
    return failures;
}

/* Q6_K, Q5_K, Q4_K and Q4_0 heads: random blocks (every code and scale; finite f16 scales), every level against the
 * direct sum of the scalar row -> f32 conversion in double, to float-order accuracy. The K-quants take the input as
 * Q8_K (its d * q is the exact input they see) and must equal their scalar kernel bitwise. */
static int check_small_heads(int *checks) {
    int failures = 0;
    const int cols = 768, rows = 9;
    /* where each type keeps its f16 scales (the K types: d then dmin) */
    const int ids[4] = {BG_TYPE_Q6_K, BG_TYPE_Q4_0, BG_TYPE_Q5_K, BG_TYPE_Q4_K}, d_at[4] = {208, 0, 0, 0};
    const int n_half[4] = {1, 1, 2, 2};
    float *x = malloc(cols * sizeof(float)), *xk = malloc(cols * sizeof(float)), *w = malloc(cols * sizeof(float));
    int8_t q8[768];
    float d8[768 / BG_QK_K];
    int16_t bsum8[768 / 16];
    bg_q8k xq = {0, q8, d8, bsum8};
    for (int i = 0; i < cols; i++) x[i] = rnd_float();
    bg_quantize_q8k(x, cols, &xq);
    for (int i = 0; i < cols; i++) xk[i] = d8[i / BG_QK_K] * (float)q8[i];
    for (int k = 0; k < 4; k++) {
        const bg_type_traits *t = bg_type_traits_of(ids[k]);
        const int kquant = t->dot_q8k[0] != NULL;
        const float *xin = kquant ? xk : x;
        const size_t rb = bg_row_bytes(t, cols);
        uint8_t *data = malloc(rb * rows);
        for (size_t i = 0; i < rb * rows; i++) data[i] = (uint8_t)(rnd() & 0xff);
        for (size_t b = 0; b < rb * rows / t->block_bytes; b++) {
            for (int h = 0; h < n_half[k]; h++) {
                uint16_t d = bg_f32_to_f16(rnd_float() / 64.0f);
                memcpy(data + b * t->block_bytes + d_at[k] + 2 * h, &d, 2);
            }
        }
        for (int r = 0; r < rows; r++) {
            const uint8_t *row = data + r * rb;
            t->to_float(row, w, cols);
            double want = 0.0, mag = 0.0;
            for (int i = 0; i < cols; i++) want += (double)w[i] * xin[i], mag += fabs((double)w[i] * xin[i]);
            const float scalar = kquant ? t->dot_q8k[0](row, &xq) : t->dot_f32[0](row, x, cols);
            for (int isa = 0; isa < BG_ISA_COUNT; isa++) {
                if (!bg_cpu_supports((bg_isa)isa)) continue;
                float got = kquant ? bg_kernel_dot_q8k(t, (bg_isa)isa)(row, &xq)
                                   : bg_kernel_dot_f32(t, (bg_isa)isa)(row, x, cols);
                *checks += 1;
                if (fabs(got - want) > 1e-5 * mag + 1e-6 || (kquant && got != scalar)) {
                    printf("FAIL %s %s dot row %d: %.9g, expected %.9g (scalar %.9g)\n", bg_isa_name((bg_isa)isa),
                           t->name, r, got, want, scalar);
                    failures++;
                }
            }
        }
        free(data);
    }
    free(x), free(xk), free(w);
    return failures;
}

/* The GEMMs (AMX: I2_S, TQ2_0, TQ1_0) at row counts around their 32-row panels, token counts around their 16-token tiles
 * and row lengths past their panel blocks: the scalar one-row kernel's values, where this CPU runs the level. */
/* The float heads' F16 and BF16 kernels at every level against a double sum, on lengths with every kind of tail
 * (the AVX-512 kernels step 64 and 16 values, AVX2's 32 and 8, then one by one). */
static int check_float_tails(int *checks) {
    int failures = 0;
    const int lengths[] = {1, 7, 15, 16, 17, 33, 63, 64, 65, 100, 257};
    uint16_t w[257];
    float x[257], wf[257];
    const int ids[2] = {BG_TYPE_F16, BG_TYPE_BF16};
    for (int k = 0; k < 2; k++) {
        const bg_type_traits *t = bg_type_traits_of(ids[k]);
        for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
            const int n = lengths[li];
            for (int i = 0; i < n; i++) {
                const float v = rnd_float();
                uint32_t bits;
                memcpy(&bits, &v, 4);
                w[i] = ids[k] == BG_TYPE_F16 ? bg_f32_to_f16(v) : (uint16_t)(bits >> 16);
                x[i] = rnd_float();
            }
            t->to_float(w, wf, n);
            double want = 0.0, mag = 0.0;
            for (int i = 0; i < n; i++) want += (double)wf[i] * x[i], mag += fabs((double)wf[i] * x[i]);
            for (int isa = 0; isa < BG_ISA_COUNT; isa++) {
                if (!bg_cpu_supports((bg_isa)isa)) continue;
                const float got = bg_kernel_dot_f32(t, (bg_isa)isa)(w, x, n);
                *checks += 1;
                if (fabs(got - want) > 1e-5 * mag + 1e-6) {
                    printf("FAIL %s %s dot of %d values: %.9g, expected %.9g\n", bg_isa_name((bg_isa)isa), t->name,
                           n, got, want);
                    failures++;
                }
            }
        }
    }
    return failures;
}

/* The AVX-512 tile put against bg_gemm_put_token, byte for byte: whole tiles, a tail tile, one token. */
static int check_put_tile(int *checks) {
    int failures = 0;
#if defined(__x86_64__)
    if (!bg_cpu_supports(BG_ISA_AVX512)) return 0;
    const int shapes[4][2] = {{64, 1}, {192, 16}, {2560, 17}, {6912, 40}};
    for (int si = 0; si < 4; si++) {
        const int cols = shapes[si][0], n = shapes[si][1];
        const size_t bytes = bg_gemm_tiles_bytes(cols, n);
        int8_t *want = calloc(bytes, 1), *got = malloc(bytes);
        memset(got, 0x5a, bytes);  /* the put must write every byte of its tiles: zero where no token is */
        bg_act *acts = calloc((size_t)n, sizeof *acts);
        for (int k = 0; k < n; k++) {
            acts[k].n = cols;
            acts[k].q = malloc((size_t)cols);
            for (int i = 0; i < cols; i++) acts[k].q[i] = (int8_t)(rnd() & 0xff);
            bg_gemm_put_token(acts[k].q, cols, k, want);
        }
        const int n_tiles = (n + BG_GEMM_TILE_TOKENS - 1) / BG_GEMM_TILE_TOKENS;
        for (int tile = 0; tile < n_tiles; tile++) {
            const int first = tile * BG_GEMM_TILE_TOKENS, k = n - first < 16 ? n - first : 16;
            bg_gemm_put_tile_avx512(acts + first, k, tile, got);
        }
        const size_t live = (size_t)n_tiles * BG_GEMM_TILE_TOKENS * cols;
        *checks += 1;
        if (memcmp(want, got, live)) {
            printf("FAIL put_tile_avx512 (%d values, %d tokens) differs from put_token\n", cols, n);
            failures++;
        }
        for (int k = 0; k < n; k++) free(acts[k].q);
        free(acts), free(want), free(got);
    }
#else
    (void)checks;
#endif
    return failures;
}

static int check_gemm(int *checks) {
    const struct {
        int type_id;
        pack_fn pack;
        float (*ref)(const uint8_t *, const bg_act *);
        int shapes[5][3];  /* rows, cols, tokens */
    } cases[] = {
        {BG_TYPE_I2_S, pack_i2s, bg_i2s_dot_scalar,
         {{32, 128, 16}, {7, 256, 1}, {45, 768, 33}, {64, 2560, 64}, {33, 4224, 20}}},
        {BG_TYPE_TQ2_0, pack_tq2, bg_tq2_dot_scalar,
         {{32, 256, 16}, {7, 512, 1}, {45, 768, 33}, {64, 2560, 64}, {33, 4352, 20}}},
        {BG_TYPE_TQ1_0, pack_tq1, bg_tq1_dot_scalar,
         {{32, 256, 16}, {7, 512, 1}, {45, 768, 33}, {64, 2560, 64}, {33, 4352, 20}}},
    };
    int failures = 0;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const bg_type_traits *t = bg_type_traits_of(cases[ci].type_id);
        for (int isa = 0; isa < BG_ISA_COUNT; isa++) {
            if (!bg_kernel_gemm_i8(t, (bg_isa)isa, 256) || !bg_cpu_supports((bg_isa)isa)) continue;
            /* TQ types twice: a scale per block, then one per row (the GEMMs' integer path over whole rows) with
             * row 5's last block off it (that row's panel goes block by block after all) */
            const int n_modes = t->block_bytes == 32 ? 1 : 2;
            for (size_t si = 0; si < 5 * (size_t)n_modes; si++) {
                const int rows = cases[ci].shapes[si % 5][0], cols = cases[ci].shapes[si % 5][1];
                const int n = cases[ci].shapes[si % 5][2], row_scales = si >= 5;
                const size_t row_bytes = bg_row_bytes(t, cols);
                bg_gemm_i8_fn gemm = bg_kernel_gemm_i8(t, (bg_isa)isa, cols);
                uint8_t *codes = malloc((size_t)rows * cols), *w = malloc((size_t)rows * row_bytes);
                int8_t *tiles = calloc(bg_gemm_tiles_bytes(cols, n), 1);
                float *x = malloc((size_t)cols * sizeof(float)), *y = malloc((size_t)rows * n * sizeof(float));
                bg_act *acts = calloc((size_t)n, sizeof *acts);
                for (int i = 0; i < rows * cols; i++) codes[i] = (uint8_t)(rnd() % 3);
                cases[ci].pack(codes, rows, cols, w);
                if (row_scales) {
                    const int nb = cols / 256, bb = t->block_bytes;
                    for (int r = 0; r < rows; r++)
                        for (int b = 1; b < nb; b++)
                            memcpy(w + (size_t)r * row_bytes + (size_t)b * bb + bb - 2, w + (size_t)r * row_bytes + bb - 2,
                                   2);
                    if (rows > 5 && nb > 1) w[5 * row_bytes + (size_t)nb * bb - 2] ^= 1;
                }
                for (int k = 0; k < n; k++) {
                    acts[k].q = malloc((size_t)cols);
                    acts[k].gsum = malloc((size_t)(cols / 32 + 1) * sizeof(int32_t));
                    for (int i = 0; i < cols; i++) x[i] = rnd_float();
                    bg_quantize_act(x, cols, &acts[k]);
                    bg_gemm_put_token(acts[k].q, cols, k, tiles);
                }
                gemm(w, row_bytes, rows, tiles, acts, n, y, rows);
                for (int k = 0; k < n; k++)
                    for (int r = 0; r < rows; r++) {
                        *checks += 1;
                        float want = cases[ci].ref(w + (size_t)r * row_bytes, &acts[k]);
                        if (y[(size_t)k * rows + r] != want) {
                            if (failures < 10)
                                printf("FAIL %s %s GEMM (%d, %d) x %d tokens: row %d token %d: %g, expected %g\n",
                                       bg_isa_name((bg_isa)isa), t->name, rows, cols, n, r, k, y[(size_t)k * rows + r],
                                       want);
                            failures++;
                        }
                    }
                for (int k = 0; k < n; k++) free(acts[k].q), free(acts[k].gsum);
                free(acts), free(codes), free(w), free(tiles), free(x), free(y);
            }
        }
    }
    return failures;
}

/* The four-row kernels follow the one-row kernel's level (a table lookup: no CPU support needed). On x86, an AVX-512
 * machine keeps I2_S's one-row VNNI kernel (no four-row AVX2 kernel beside it) and runs the K-quant head's one-row
 * and four-row kernels of its own level. */
static int check_x4_levels(int *checks) {
    int failures = 0;
    const bg_type_traits *ti = bg_type_traits_of(BG_TYPE_I2_S), *t5 = bg_type_traits_of(BG_TYPE_Q5_K),
                         *tf = bg_type_traits_of(BG_TYPE_F16);
    static const char *names[3] = {"I2_S", "Q5_K", "F16"};
    for (int isa = 0; isa < BG_ISA_COUNT; isa++)
        for (int k = 0; k < 3; k++) {
            (*checks)++;
            int lvl = isa;  /* where the one-row lookup lands */
            while (lvl > 0 && !(k == 2 ? (void *)tf->dot_f32[lvl]
                                : k    ? (void *)t5->dot_q8k[lvl]
                                       : (void *)ti->dot_i8[lvl]))
                lvl = lvl == BG_ISA_AMX         ? BG_ISA_AVX512
                      : lvl == BG_ISA_AVX512        ? BG_ISA_AVX2
                      : lvl == BG_ISA_NEON_DOTPROD ? BG_ISA_NEON
                                                    : BG_ISA_SCALAR;
            void *got = k == 2 ? (void *)bg_kernel_dot_f32_x4(tf, (bg_isa)isa)
                        : k    ? (void *)bg_kernel_dot_q8k_x4(t5, (bg_isa)isa)
                               : (void *)bg_kernel_dot_i8_x4(ti, (bg_isa)isa);
            void *want = k == 2 ? (void *)tf->dot_f32_x4[lvl]
                         : k    ? (void *)t5->dot_q8k_x4[lvl]
                                : (void *)ti->dot_i8_x4[lvl];
            if (got != want) {
                printf("FAIL %s four-row kernel of %s: not the one of level %s\n", bg_isa_name((bg_isa)isa), names[k],
                       bg_isa_name((bg_isa)lvl));
                failures++;
            }
        }
#if defined(__x86_64__)
    *checks += 2;
    if (bg_kernel_dot_i8_x4(ti, BG_ISA_AVX512) != NULL || bg_kernel_dot_q8k_x4(t5, BG_ISA_AVX512) == NULL ||
        bg_kernel_dot_q8k_x4(t5, BG_ISA_AVX512) == bg_kernel_dot_q8k_x4(t5, BG_ISA_AVX2)) {
        printf("FAIL avx512: I2_S must keep its one-row kernel, Q5_K must get its AVX-512 four-row one\n");
        failures++;
    }
#endif
    return failures;
}

/* TQ2_0 and TQ1_0 rows with one scale in every block (as llama.cpp writes them: the kernels sum such rows whole in
 * int32) and, in row 1, the last block's scale off it: every level bitwise equal to scalar. */
static int check_row_scales(const uint8_t *tq2, const uint8_t *tq1, int rows, int cols, const bg_act *a, int *checks) {
    int failures = 0;
    const int ids[2] = {BG_TYPE_TQ2_0, BG_TYPE_TQ1_0};
    for (int k = 0; k < 2; k++) {
        const bg_type_traits *t = bg_type_traits_of(ids[k]);
        const size_t rb = bg_row_bytes(t, cols), bb = (size_t)t->block_bytes, nb = (size_t)cols / 256;
        uint8_t *w = malloc((size_t)rows * rb);
        memcpy(w, k ? tq1 : tq2, (size_t)rows * rb);
        for (int r = 0; r < rows; r++)
            for (size_t b = 1; b < nb; b++) memcpy(w + r * rb + b * bb + bb - 2, w + r * rb + bb - 2, 2);
        if (rows > 1 && nb > 1) w[rb + nb * bb - 2] ^= 1;
        for (int isa = 0; isa < BG_ISA_COUNT; isa++) {
            if (!bg_cpu_supports((bg_isa)isa)) continue;
            for (int r = 0; r < rows; r++) {
                float got = bg_kernel_dot_i8(t, (bg_isa)isa)(w + r * rb, a), want = t->dot_i8[0](w + r * rb, a);
                *checks += 1;
                if (got != want) {
                    printf("FAIL %s %s (%d, %d) one scale per row, row %d: %.9g, scalar %.9g\n",
                           bg_isa_name((bg_isa)isa), t->name, rows, cols, r, got, want);
                    failures++;
                }
            }
        }
        free(w);
    }
    return failures;
}

int main(void) {
    const int shapes[][2] = {{1, 256}, {7, 768}, {3, 1280}, {5, 2560}, {2, 6912}};
    int failures = 0, checks = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int rows = shapes[si][0], cols = shapes[si][1];
        uint8_t *codes = malloc((size_t)rows * cols);
        uint8_t *i2s = malloc((size_t)rows * cols / 4);
        uint8_t *tq2 = malloc((size_t)rows * (cols / 256) * 66);
        uint8_t *tq1 = malloc((size_t)rows * (cols / 256) * BG_TQ1_BYTES);
        uint16_t *f16 = malloc((size_t)rows * cols * 2);
        uint8_t *q8 = malloc((size_t)rows * (cols / 32) * 34);
        float *x = malloc((size_t)cols * sizeof(float));
        bg_act a = {0};
        a.q = malloc((size_t)cols);
        a.gsum = malloc((size_t)(cols / 32 + 1) * sizeof(int32_t));
        for (int i = 0; i < rows * cols; i++) codes[i] = (uint8_t)(rnd() % 3);
        for (int i = 0; i < rows * cols; i++) f16[i] = bg_f32_to_f16(rnd_float());
        for (int b = 0; b < rows * cols / 32; b++) {
            uint16_t d = bg_f32_to_f16((float)(rnd() % 100 + 1) / 1000.0f);
            memcpy(q8 + b * 34, &d, 2);
            for (int i = 0; i < 32; i++) q8[b * 34 + 2 + i] = (uint8_t)(rnd() & 0xff);
        }
        pack_i2s(codes, rows, cols, i2s);
        pack_tq2(codes, rows, cols, tq2);
        pack_tq1(codes, rows, cols, tq1);
        for (int i = 0; i < cols; i++) x[i] = rnd_float();
        bg_quantize_act(x, cols, &a);

        const bg_type_traits *ti = bg_type_traits_of(BG_TYPE_I2_S), *tt = bg_type_traits_of(BG_TYPE_TQ2_0);
        const bg_type_traits *t1 = bg_type_traits_of(BG_TYPE_TQ1_0);
        const bg_type_traits *th = bg_type_traits_of(BG_TYPE_F16), *tq = bg_type_traits_of(BG_TYPE_Q8_0);
        for (int isa = 0; isa < BG_ISA_COUNT; isa++) {
            if (!bg_cpu_supports((bg_isa)isa)) continue;
            for (int r = 0; r < rows; r++) {
                /* ternary: exact against scalar (and I2_S against a direct integer sum) */
                int32_t direct = 0;
                for (int j = 0; j < cols; j++) direct += ((int)codes[(size_t)r * cols + j] - 1) * a.q[j];
                float gi = bg_kernel_dot_i8(ti, (bg_isa)isa)(i2s + (size_t)r * bg_row_bytes(ti, cols), &a);
                float gt = bg_kernel_dot_i8(tt, (bg_isa)isa)(tq2 + (size_t)r * bg_row_bytes(tt, cols), &a);
                float wt = bg_tq2_dot_scalar(tq2 + (size_t)r * bg_row_bytes(tt, cols), &a);
                checks += 2;
                if (gi != (float)direct) {
                    printf("FAIL %s I2_S (%d, %d) row %d: %.1f, expected %d\n", bg_isa_name((bg_isa)isa), rows, cols,
                           r, gi, direct);
                    failures++;
                }
                /* TQ1_0: every level bitwise equal to scalar, and scalar's block sums equal the direct sums */
                const uint8_t *r1 = tq1 + (size_t)r * bg_row_bytes(t1, cols);
                float g1 = bg_kernel_dot_i8(t1, (bg_isa)isa)(r1, &a), w1 = bg_tq1_dot_scalar(r1, &a);
                double want1 = 0.0;
                for (int b = 0; b < cols / 256; b++) {
                    int32_t isum = 0;
                    for (int j = 0; j < 256; j++)
                        isum += ((int)codes[(size_t)r * cols + b * 256 + j] - 1) * a.q[b * 256 + j];
                    uint16_t d;
                    memcpy(&d, r1 + b * BG_TQ1_BYTES + 52, 2);
                    want1 += (double)bg_f16_to_f32(d) * isum;
                }
                checks += 1;
                if (g1 != w1 || w1 != (float)want1) {
                    printf("FAIL %s TQ1_0 (%d, %d) row %d: %.9g, scalar %.9g, direct %.9g\n", bg_isa_name((bg_isa)isa),
                           rows, cols, r, g1, w1, (float)want1);
                    failures++;
                }
                if (gt != wt) {
                    printf("FAIL %s TQ2_0 (%d, %d) row %d: %.9g, scalar %.9g\n", bg_isa_name((bg_isa)isa), rows,
                           cols, r, gt, wt);
                    failures++;
                }
                /* float head kernels: float order only */
                const void *rh = f16 + (size_t)r * cols, *rq = q8 + (size_t)r * bg_row_bytes(tq, cols);
                float hs = bg_f16_dot_scalar(rh, x, cols), hg = bg_kernel_dot_f32(th, (bg_isa)isa)(rh, x, cols);
                float qs = bg_q8_0_dot_scalar(rq, x, cols), qg = bg_kernel_dot_f32(tq, (bg_isa)isa)(rq, x, cols);
                /* attention's y += a * v over f16 and f32 rows */
                float y0[64] = {0}, y1[64] = {0};
                const bg_type_traits *tf = bg_type_traits_of(BG_TYPE_F32);
                for (int k = 0; k < 3; k++) {
                    th->axpy[0](rh, 0.5f + k, y0, 61);
                    bg_kernel_axpy(th, (bg_isa)isa)(rh, 0.5f + k, y1, 61);
                    tf->axpy[0](x, -0.25f * k, y0, 63);
                    bg_kernel_axpy(tf, (bg_isa)isa)(x, -0.25f * k, y1, 63);
                }
                for (int k = 0; k < 64; k++) {
                    if (fabsf(y0[k] - y1[k]) > 1e-5f * (1.0f + fabsf(y0[k]))) {
                        printf("FAIL %s axpy at %d: %.7g, scalar %.7g\n", bg_isa_name((bg_isa)isa), k, y1[k], y0[k]);
                        failures++;
                        break;
                    }
                }
                checks += 3;
                if (fabsf(hs - hg) > 1e-4f * (1.0f + fabsf(hs)) * sqrtf((float)cols)) {
                    printf("FAIL %s F16 dot (%d, %d) row %d: %.6g, scalar %.6g\n", bg_isa_name((bg_isa)isa), rows,
                           cols, r, hg, hs);
                    failures++;
                }
                if (fabsf(qs - qg) > 1e-4f * (1.0f + fabsf(qs)) * sqrtf((float)cols)) {
                    printf("FAIL %s Q8_0 dot (%d, %d) row %d: %.6g, scalar %.6g\n", bg_isa_name((bg_isa)isa), rows,
                           cols, r, qg, qs);
                    failures++;
                }
            }
        }
        failures += check_row_scales(tq2, tq1, rows, cols, &a, &checks);
        /* again with the activations in TQ1_0's digit order too (the engine's decode input at the AVX-512 levels):
         * the one-scale rows then go through the kernel that reads them */
        bg_act ordered = a;
        ordered.tq1 = malloc((size_t)cols / 256 * BG_TQ1_ORDER_BYTES);
        bg_quantize_act(x, cols, &ordered);
        failures += check_row_scales(tq2, tq1, rows, cols, &ordered, &checks);
        free(ordered.tq1);
        free(codes), free(i2s), free(tq2), free(tq1), free(f16), free(q8), free(x), free(a.q), free(a.gsum);
    }
    failures += check_i2r(&checks);
    failures += check_tl2(&checks);
    failures += check_small_heads(&checks);
    failures += check_float_tails(&checks);
    failures += check_block_multi(BG_TYPE_TQ1_0, 768, 6, pack_tq1, &checks);
    failures += check_i2s_multi(&checks);
    failures += check_quantize(&checks);
    failures += check_token_helpers(&checks);
    failures += check_attention(&checks);
    failures += check_x4_levels(&checks);
    failures += check_gemm(&checks);
    failures += check_put_tile(&checks);
    failures += check_block_multi(BG_TYPE_TQ2_0, 1280, 7, pack_tq2, &checks);
    printf("kernel_check: levels");
    for (int isa = 0; isa < BG_ISA_COUNT; isa++)
        if (bg_cpu_supports((bg_isa)isa)) printf(" %s", bg_isa_name((bg_isa)isa));
    printf("; %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
