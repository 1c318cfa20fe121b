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
    BG_ISA_COUNT = 5
} bg_isa;

/* Name of an ISA level ("scalar", "avx2", ...). */
const char *bg_isa_name(bg_isa isa);

/* 1 when this CPU can run kernels of the given level. */
int bg_cpu_supports(bg_isa isa);

/* The best level this CPU supports. */
bg_isa bg_cpu_best_isa(void);

#endif
