# The converter's absmean ternarization of float master weights (C in _kernels/ternarize.c).
from libc.stdint cimport uint16_t, int8_t, int64_t

cdef extern from "kernels.h" nogil:
    int64_t bg_absmean_ternarize(const void *w, int bf16, int64_t n, int8_t *codes, float *alpha)


def absmean_ternarize(w, bint bf16=False):
    """(int8 codes of w's shape, float32 alpha) by BitNet's absmean rule: the same as bitgguf.types'
    absmean_ternarize (its numpy statement), without its temporaries. w is float32, or bf16 bits as uint16 when
    bf16. Raises ValueError at the first NaN or infinity."""
    arr = _np.asarray(w)
    shape = arr.shape
    cdef const uint16_t[::1] bits
    cdef const float[::1] floats
    cdef const void *src = NULL
    if bf16:
        if arr.dtype != _np.uint16:
            raise TypeError(f"absmean_ternarize: bf16 weights come as uint16 bits, got {arr.dtype}")
        bits = _np.ascontiguousarray(arr).reshape(-1)
        if bits.shape[0]:
            src = &bits[0]
    else:
        floats = _np.ascontiguousarray(arr, dtype=_np.float32).reshape(-1)
        if floats.shape[0]:
            src = &floats[0]
    cdef int64_t n = arr.size
    codes = _np.empty(n, dtype=_np.int8)
    cdef int8_t[::1] cv = codes
    cdef float alpha = 0
    cdef int64_t bad
    with nogil:
        bad = bg_absmean_ternarize(src, bf16, n, &cv[0] if n else NULL, &alpha)
    if bad >= 0:
        index = _np.unravel_index(bad, shape) if shape else ()
        value = _np.ascontiguousarray(arr.reshape(-1)[bad:bad + 1])
        if bf16:
            from bitgguf.types import TYPES
            value = TYPES["BF16"].dequantize(value, (1,))
        shown = float(value[0])
        raise ValueError(f"weight {tuple(int(i) for i in index)} is {shown}: not a finite number")
    return codes.reshape(shape), _np.float32(alpha)
