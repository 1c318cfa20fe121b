/* CPU feature detection (cpuid + xgetbv on x86, hwcaps on aarch64). */
#include "cpu.h"

#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <stdint.h>

static uint64_t read_xcr0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

static int x86_has_avx2(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!(osxsave && avx && fma && f16c)) return 0;
    if ((read_xcr0() & 0x6) != 0x6) return 0; /* OS saves XMM and YMM state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 5) & 1;
}

static int x86_has_avx512_vnni(void) {
    unsigned a, b, c, d;
    if (!x86_has_avx2()) return 0;
    if ((read_xcr0() & 0xe6) != 0xe6) return 0; /* OS saves opmask and ZMM state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int f = (b >> 16) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1, vnni = (c >> 11) & 1;
    return f && bw && vl && vnni;
}

#if BG_BUILD_AMX
#include <sys/syscall.h>
#include <unistd.h>
#define BG_ARCH_REQ_XCOMP_PERM 0x1023
#define BG_XFEATURE_XTILEDATA 18
#endif

/* AMX-TILE + AMX-INT8 with the tile state enabled in XCR0, and (Linux) this process granted the 8 KiB tile data
 * state: without that grant the first tile instruction raises SIGILL. Asked once; the grant is for the process. */
static int x86_has_amx_int8(void) {
#if BG_BUILD_AMX
    static int cached = -1;
    if (cached >= 0) return cached;
    unsigned a, b, c, d;
    int ok = x86_has_avx512_vnni() && __get_cpuid_count(7, 0, &a, &b, &c, &d) && ((d >> 24) & 1) &&
             ((d >> 25) & 1) && (read_xcr0() & 0x60000) == 0x60000 &&
             syscall(SYS_arch_prctl, BG_ARCH_REQ_XCOMP_PERM, BG_XFEATURE_XTILEDATA) == 0;
    cached = ok;
    return ok;
#else
    return 0;
#endif
}
#endif

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif
#if defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

static int aarch64_has_dotprod(void) {
#if defined(__aarch64__) && defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__aarch64__) && defined(__APPLE__)
    int value = 0;
    size_t size = sizeof(value);
    if (sysctlbyname("hw.optional.arm.FEAT_DotProd", &value, &size, 0, 0) != 0) return 0;
    return value != 0;
#else
    return 0;
#endif
}

const char *bg_isa_name(bg_isa isa) {
    switch (isa) {
    case BG_ISA_SCALAR: return "scalar";
    case BG_ISA_AVX2: return "avx2";
    case BG_ISA_AVX512: return "avx512";
    case BG_ISA_NEON: return "neon";
    case BG_ISA_NEON_DOTPROD: return "neon_dotprod";
    case BG_ISA_AMX: return "amx";
    default: return "unknown";
    }
}

int bg_cpu_supports(bg_isa isa) {
    switch (isa) {
    case BG_ISA_SCALAR: return 1;
#if defined(__x86_64__) || defined(__i386__)
    case BG_ISA_AVX2: return x86_has_avx2();
    case BG_ISA_AVX512: return x86_has_avx512_vnni();
    case BG_ISA_AMX: return x86_has_amx_int8();
#endif
#if defined(__aarch64__)
    case BG_ISA_NEON: return 1;
    case BG_ISA_NEON_DOTPROD: return aarch64_has_dotprod();
#endif
    default: return 0;
    }
}

int bg_cpu_amd(void) {
#if defined(__x86_64__) || defined(__i386__)
    static int cached = -1;  /* CPUID traps to the hypervisor in a VM: ask once (a benign race) */
    if (cached < 0) {
        unsigned a, b, c, d;
        cached = __get_cpuid(0, &a, &b, &c, &d) && b == 0x68747541u && d == 0x69746e65u &&
                 c == 0x444d4163u; /* "AuthenticAMD" */
    }
    return cached;
#else
    return 0;
#endif
}

int bg_decode_prefetch_bytes;

int bg_cpu_decode_prefetch_init(void) {
    bg_decode_prefetch_bytes = bg_cpu_amd() ? 8192 : 2048;  /* a benign race: every thread stores the same value */
    return bg_decode_prefetch_bytes;
}

int bg_cpu_one_stream(void) {
    static int cached = -1;  /* a benign race: every thread computes the same value */
    if (cached < 0) {
        const char *env = getenv("BITGGUF_ONE_STREAM");
        cached = env && (env[0] == '0' || env[0] == '1') ? env[0] == '1' : bg_cpu_amd();
    }
    return cached;
}

bg_isa bg_cpu_best_isa(void) {
    for (int isa = BG_ISA_COUNT - 1; isa > BG_ISA_SCALAR; isa--)
        if (bg_cpu_supports((bg_isa)isa)) return (bg_isa)isa;
    return BG_ISA_SCALAR;
}
