# Load-time repack of TL1 / TL2 tensors into the engine's I2_ROWS rows (C in _kernels/repack.c), for bitgguf.Model.
from libc.stdint cimport uint8_t

cdef extern from "repack.h" nogil:
    int bg_tl_to_i2_rows(int tl_type, const uint8_t *src, int M, int K, int BM, int BK, int bm, uint8_t *dst,
                         int n_threads)


def tl_to_i2_rows(str type_name, data, int rows, int cols, int BM, int BK, int bm, scale, int n_threads=1):
    """I2_ROWS bytes (rows * cols / 4 codes, the f32 scale, zeros to 32 bytes) of a TL1 / TL2 tensor's data."""
    if type_name not in ("TL1", "TL2"):
        raise ValueError(f"tl_to_i2_rows: {type_name} is not TL1 or TL2")
    cdef const uint8_t[::1] src = _np.ascontiguousarray(data, dtype=_np.uint8).reshape(-1)
    out = _np.zeros(rows * cols // 4 + 32, dtype=_np.uint8)
    cdef uint8_t[::1] dst = out
    cdef int kind = 1 if type_name == "TL1" else 2
    cdef int rc
    with nogil:
        rc = bg_tl_to_i2_rows(kind, &src[0], rows, cols, BM, BK, bm, &dst[0], n_threads)
    if rc == -1:
        raise ValueError(f"{type_name}: a pair index or magnitude is out of range (not a ternary tensor)")
    if rc == -2:
        raise ValueError(f"{type_name}: tiling (BM {BM}, BK {BK}, bm {bm}) does not fit shape ({rows}, {cols})")
    if rc == -3:
        raise MemoryError()
    out[rows * cols // 4:rows * cols // 4 + 4] = _np.frombuffer(_np.float32(scale).tobytes(), dtype=_np.uint8)
    return out
