cdef extern from "cpu.h" nogil:
    ctypedef enum bg_isa:
        BG_ISA_SCALAR
        BG_ISA_COUNT
    const char *bg_isa_name(bg_isa isa)
    int bg_cpu_supports(bg_isa isa)
    bg_isa bg_cpu_best_isa()
    int bg_cpu_one_stream()


def isa_levels():
    """The kernel ISA levels this CPU can run, lowest first ('scalar' is always there)."""
    cdef int i
    return [bg_isa_name(<bg_isa>i).decode() for i in range(<int>BG_ISA_COUNT) if bg_cpu_supports(<bg_isa>i)]


def best_isa():
    """The ISA level the runtime picks by default on this CPU."""
    return bg_isa_name(bg_cpu_best_isa()).decode()


def one_stream():
    """True when decode matvecs read a thread's rows front to back on this CPU, False when as parts side by side."""
    return bool(bg_cpu_one_stream())
