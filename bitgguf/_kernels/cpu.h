/* CPU feature detection: which kernel variants this CPU can run. */
#ifndef BITGGUF_CPU_H
#define BITGGUF_CPU_H

/* ISA levels, lowest first. A level is usable only when the CPU (and the OS, for wide registers) supports it. */
typedef enum {
    BG_ISA_SCALAR = 0,
    BG_ISA_AVX2 = 1,     /* AVX2 + FMA + F16C */
    BG_ISA_AVX512 = 2,   /* AVX-512 F/BW/VL + VNNI */
    BG_ISA_NEON = 3,     /* aarch64 Advanced SIMD */
    BG_ISA_NEON_DOTPROD = 4,
    BG_ISA_AMX = 5,      /* AVX-512 VNNI + AMX-INT8 tiles (the prompt path's GEMM; the rest as avx512) */
    BG_ISA_COUNT = 6
} bg_isa;

/* The AMX kernels are built on Linux (the only OS whose tile-state grant cpu.c asks for) with a compiler that has
 * the AMX intrinsics (GCC 11, clang 12); elsewhere the level is never reported as supported. */
#if defined(__x86_64__) && defined(__linux__) && ((defined(__clang__) && __clang_major__ >= 12) || \
                                                  (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define BG_BUILD_AMX 1
#else
#define BG_BUILD_AMX 0
#endif

/* 1 for the x86 levels that include AVX-512 (avx512, amx). */
static inline int bg_isa_x86_avx512(bg_isa isa) { return isa == BG_ISA_AVX512 || isa == BG_ISA_AMX; }

/* 1 for the x86 levels that include AVX2 (avx2, avx512, amx): their AVX2 helpers apply. */
static inline int bg_isa_x86_avx2(bg_isa isa) { return isa == BG_ISA_AVX2 || bg_isa_x86_avx512(isa); }

/* Name of an ISA level ("scalar", "avx2", ...). */
const char *bg_isa_name(bg_isa isa);

/* 1 when this CPU can run kernels of the given level. */
int bg_cpu_supports(bg_isa isa);

/* The best level this CPU supports. */
bg_isa bg_cpu_best_isa(void);

/* 1 when a thread's rows of a decode matvec are best read front to back in one stream, 0 when as two (or, for the
 * four-row K-quant kernels, four) parts read side by side. Measured per vendor: one stream on AMD (Zen 5: decode
 * +10-12% at 1 and 2 threads), parts on Intel (Sapphire Rapids: I2_S rows from DRAM 12.3 -> 15.6 GB/s per core)
 * and elsewhere (not measured). BITGGUF_ONE_STREAM=0|1 overrides, read once. */
int bg_cpu_one_stream(void);

/* 1 on an AMD x86 CPU (by the CPUID vendor string). */
int bg_cpu_amd(void);

/* How far ahead (bytes) the AVX-512 decode kernels of I2_S rows and the K-quant head prefetch their weight stream, by
 * vendor: 8 KiB on AMD, 2 KiB elsewhere (measured at each kernel). Inline: the kernels ask once per row. */
extern int bg_decode_prefetch_bytes;  /* 0 until the first bg_cpu_decode_prefetch() */
int bg_cpu_decode_prefetch_init(void);
static inline int bg_cpu_decode_prefetch(void) {
    return bg_decode_prefetch_bytes ? bg_decode_prefetch_bytes : bg_cpu_decode_prefetch_init();
}

#endif
