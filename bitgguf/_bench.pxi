from libc.stdint cimport uint64_t


cdef extern from "membw.h" nogil:
    uint64_t bg_membw_read(const uint64_t *buf, size_t n_words, int n_threads, int two_streams)

cdef extern from "int8_peak.h" nogil:
    double bg_int8_peak(bg_isa isa, double seconds)


def int8_peak(str isa, double seconds=0.5):
    """One core's int8 multiply-accumulate peak in MAC/s at ISA level `isa` (the instruction its prompt kernels are
    built on: vpmaddubsw for avx2, vpdpbusd for avx512, tdpbusd for amx, smlal for neon, sdot for neon_dotprod); 0.0
    for scalar, ValueError for a level this CPU lacks (bench only)."""
    cdef int level_id = isa_by_name(isa)
    cdef bg_isa level = <bg_isa>level_id
    cdef double macs
    with nogil:
        macs = bg_int8_peak(level, seconds)
    return macs


cdef double _best_pass(const uint64_t *buf, size_t n, int n_threads, int repeats):
    """Bytes/s of the fastest of `repeats` timed passes over n words in each of the two read patterns (one stream
    per thread, or two with a prefetch: bg_membw_read), alternated (the pages already faulted in). On a Sapphire
    Rapids VM the two streams read 30% more than one, as the decode kernels do; a plain loop alone had decode at
    "110%" of the limit."""
    import time
    cdef int two_streams
    best = 0.0
    for _ in range(repeats):
        for two_streams in (0, 1):
            start = time.perf_counter()
            with nogil:
                bg_membw_read(buf, n, n_threads, two_streams)
            best = max(best, n * 8 / (time.perf_counter() - start))
    return best


def read_bandwidth(size_t n_bytes=1 << 30, int n_threads=1, int repeats=5):
    """Measured read bandwidth in bytes/s: the best of `repeats` passes over a buffer of `n_bytes` (bench only)."""
    import numpy as np
    cdef uint64_t[::1] buf = np.ones(n_bytes // 8, dtype=np.uint64)
    cdef size_t n = buf.shape[0]
    cdef uint64_t one, two
    with nogil:
        one = bg_membw_read(&buf[0], n, n_threads, 0)  # warm: fault the pages in
        two = bg_membw_read(&buf[0], n, n_threads, 1)
    if one != n or two != n:
        raise RuntimeError(f"bandwidth probe summed {one} (one stream) and {two} (two streams), expected {n}")
    return _best_pass(&buf[0], n, n_threads, repeats)


def read_bandwidth_buffer(buf, int n_threads=1, int repeats=1, bint warm=False):
    """Read bandwidth in bytes/s over the memory behind an object with the buffer protocol (bench only): the best of
    `repeats` passes in each pattern (_best_pass), after one untimed pass that faults the pages in when `warm`. Given
    a model's own map (GGUFReader's), it reads the very pages decode reads, without a second mapping of them in this
    process's RSS."""
    import numpy as np
    words = np.frombuffer(buf, dtype=np.uint64, count=len(buf) // 8)
    cdef const uint64_t[::1] view = words
    cdef size_t n = view.shape[0]
    try:
        if warm:
            with nogil:
                bg_membw_read(&view[0], n, n_threads, 0)
        return _best_pass(&view[0], n, n_threads, repeats)
    finally:
        del view, words


def read_bandwidth_file(path, int n_threads=1, int repeats=3):
    """Read bandwidth in bytes/s over a file's memory map, mapped as the runtime maps a model (pagecache.py: through
    2 MiB pages where the OS gives them): its page cache pages, which on some machines read slower than fresh
    anonymous memory (bench only; the first pass faults the pages in)."""
    import os
    from bitgguf.pagecache import map_model_file
    with open(path, "rb") as f:
        mm, _ = map_model_file(f.fileno(), os.fstat(f.fileno()).st_size)
    try:
        return read_bandwidth_buffer(mm, n_threads, repeats, warm=True)
    finally:
        mm.close()
