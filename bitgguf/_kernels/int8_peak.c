/* One core's int8 multiply-accumulate peak at a level, for the benchmarks (bench only, like membw.c): independent
 * chains of the instruction that level's prompt kernels are built on, so that a prompt's MAC/s can be put against
 * what the core can do in the same minutes (on a shared VM, AMX's rate moved 2x between windows). Per level:
 *   avx2:         vpmaddubsw + vpmaddwd + vpaddd on ymm (32 u8 x s8 products per three instructions)
 *   avx512:       vpdpbusd on zmm (64 products per instruction)
 *   amx:          tdpbusd on 16 x 64 tiles (16 x 16 x 64 = 16384 products per instruction)
 *   neon:         smlal / smlal2 into int16 lanes (8 products per instruction, as bg_mla_codes)
 *   neon_dotprod: sdot (16 products per instruction) */
#include <time.h>

#include "int8_peak.h"

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static volatile int peak_sink;  /* the loops' inputs come from it and their sums go to it: nothing is constant */

enum { PEAK_STEPS = 1 << 16 };

#if defined(__x86_64__)
#include <immintrin.h>

#define PEAK_CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* six chains, each with its own weights (one shared product would be computed once), and `a` hidden from the
 * compiler at every step (else the products, loop-invariant, would leave the loop) */
__attribute__((target("avx2"))) static double peak_avx2(void) {
    __m256i a = _mm256_set1_epi8((char)(peak_sink | 3));
    const __m256i ones = _mm256_set1_epi16(1);
#define SIX(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define DECL(i) __m256i s##i = _mm256_setzero_si256(); const __m256i b##i = _mm256_set1_epi8((char)(peak_sink + i));
#define STEP(i) s##i = _mm256_add_epi32(s##i, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b##i), ones));
#define FOLD(i) acc = _mm256_add_epi32(acc, s##i);
    SIX(DECL)
    for (int k = 0; k < PEAK_STEPS; k++) {
        __asm__ volatile("" : "+x"(a));
        SIX(STEP)
    }
    __m256i acc = _mm256_setzero_si256();
    SIX(FOLD)
    peak_sink = _mm256_extract_epi32(acc, 0);
#undef DECL
#undef STEP
#undef FOLD
#undef SIX
    return 6.0 * 32.0 * PEAK_STEPS;
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) static double peak_avx512(void) {
    const __m512i a = _mm512_set1_epi8((char)(peak_sink | 3)), b = _mm512_set1_epi8((char)(peak_sink | 5));
#define DECL(i) __m512i s##i = _mm512_setzero_si512();
#define STEP(i) s##i = _mm512_dpbusd_epi32(s##i, a, b);
#define FOLD(i) acc = _mm512_add_epi32(acc, s##i);
    PEAK_CHAINS(DECL)
    for (int k = 0; k < PEAK_STEPS; k++) {
        PEAK_CHAINS(STEP)
    }
    __m512i acc = _mm512_setzero_si512();
    PEAK_CHAINS(FOLD)
    peak_sink = _mm512_reduce_add_epi32(acc);
#undef DECL
#undef STEP
#undef FOLD
    return 12.0 * 64.0 * PEAK_STEPS;
}

#if BG_BUILD_AMX
typedef struct {
    unsigned char palette, start_row, reserved[14];
    unsigned short colsb[16];
    unsigned char rows[16];
} peak_tiles;

static const peak_tiles peak_tile_config = {.palette = 1,
                                            .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
                                            .rows = {16, 16, 16, 16, 16, 16, 16, 16}};

__attribute__((target("amx-tile,amx-int8"))) static double peak_amx(void) {
    static unsigned char in[16 * 64];
    static int out[16 * 16];
    in[0] = (unsigned char)peak_sink;
    _tile_loadconfig(&peak_tile_config);
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3); _tile_zero(4);
    _tile_loadd(5, in, 64); _tile_loadd(6, in, 64); _tile_loadd(7, in, 64);
    const int steps = PEAK_STEPS / 16;
    for (int k = 0; k < steps; k++) {  /* five sums in flight (an instruction's three tiles must differ) */
        _tile_dpbusd(0, 5, 6);
        _tile_dpbusd(1, 6, 7);
        _tile_dpbusd(2, 5, 7);
        _tile_dpbusd(3, 6, 5);
        _tile_dpbusd(4, 7, 6);
    }
    _tile_stored(0, out, 64);
    _tile_release();
    peak_sink = out[0];
    return 5.0 * 16384.0 * steps;
}
#endif
#endif

#if defined(__aarch64__)
#include "neon_common.h"

/* A peak function: eight chains of acc_t sums, each step `s = STEP(s, a, b)` with 16 products */
#define NEON_PEAK(name, acc_t, zero, STEP, add, lane0)                                                               \
    static double name(void) {                                                                                     \
        const int8x16_t a = vdupq_n_s8((int8_t)(peak_sink | 3)), b = vdupq_n_s8((int8_t)(peak_sink | 5));           \
        acc_t s[8];                                                                                                \
        for (int c = 0; c < 8; c++) s[c] = zero;                                                                   \
        for (int k = 0; k < PEAK_STEPS; k++) {                                                                     \
            _Pragma("GCC unroll 8") /* eight sums in registers, at -O2 too */                                      \
            for (int c = 0; c < 8; c++) s[c] = STEP(s[c], a, b);                                                   \
        }                                                                                                          \
        for (int c = 1; c < 8; c++) s[0] = add(s[0], s[c]);                                                        \
        peak_sink = lane0(s[0]);                                                                                   \
        return 8.0 * 16.0 * PEAK_STEPS;                                                                            \
    }

#define MLAL_STEP(s, a, b) vmlal_high_s8(vmlal_s8(s, vget_low_s8(a), vget_low_s8(b)), a, b)
#define SDOT_STEP(s, a, b) bg_vdotq_s32(s, a, b)
#define LANE0_S16(v) vgetq_lane_s16(v, 0)
#define LANE0_S32(v) vgetq_lane_s32(v, 0)

NEON_PEAK(peak_neon, int16x8_t, vdupq_n_s16(0), MLAL_STEP, vaddq_s16, LANE0_S16)

BG_DOTPROD_BEGIN
BG_DOTPROD_FN NEON_PEAK(peak_neon_dotprod, int32x4_t, vdupq_n_s32(0), SDOT_STEP, vaddq_s32, LANE0_S32)
BG_DOTPROD_END
#endif

double bg_int8_peak(bg_isa isa, double seconds) {
    double (*fn)(void) = NULL;
#if defined(__x86_64__)
    if (isa == BG_ISA_AVX2) fn = peak_avx2;
    if (isa == BG_ISA_AVX512) fn = peak_avx512;
#if BG_BUILD_AMX
    if (isa == BG_ISA_AMX) fn = peak_amx;
#endif
#elif defined(__aarch64__)
    if (isa == BG_ISA_NEON) fn = peak_neon;
    if (isa == BG_ISA_NEON_DOTPROD) fn = peak_neon_dotprod;
#endif
    if (!fn || !bg_cpu_supports(isa)) return 0.0;
    double best = 0.0;
    for (int pass = 0; pass < 5; pass++) {
        double macs = 0.0, t0 = cpu_now(), t1;
        do macs += fn();
        while ((t1 = cpu_now()) - t0 < seconds / 5);
        if (macs / (t1 - t0) > best) best = macs / (t1 - t0);
    }
    return best;
}
