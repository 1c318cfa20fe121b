# TL1 / TL2 at load: the repack into the engine's I2_ROWS rows (C in _kernels/repack.c), or TL2 read in place
# (_kernels/tl2.c), for bitgguf.Model.
from libc.stdint cimport uint8_t, int8_t, int32_t, int64_t, uint64_t

cdef extern from "tl2.h" nogil:
    ctypedef struct bg_tl2:
        int BM
    ctypedef void (*bg_tl2_tile_fn)(const bg_tl2 *w, int mt, const uint8_t *tables, size_t table_stride, int n,
                                   int32_t *out)
    ctypedef void (*bg_tl2_tables_fn)(const int8_t *q, int cols, int BK, uint8_t *tables)
    int bg_tl2_init(bg_tl2 *w, const uint8_t *data, int M, int K, int BM, int BK)
    size_t bg_tl2_table_bytes(bg_isa isa, int cols, int BK)
    bg_tl2_tile_fn bg_tl2_tile_kernel(bg_isa isa)
    bg_tl2_tables_fn bg_tl2_tables_kernel(bg_isa isa)
    int bg_tl2_in_place(bg_isa isa)
    int bg_tl2_valid(const bg_tl2 *w)

cdef extern from "gguf_c.h" nogil:
    uint64_t bg_gguf_tl_scale_offset(int tl2, int64_t M, int64_t K)

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


cdef int _tl2_view(bg_tl2 *w, const uint8_t[::1] src, int rows, int cols, int BM, int BK) except -1:
    if bg_tl2_init(w, &src[0], rows, cols, BM, BK):
        raise ValueError(f"TL2: tiling (BM {BM}, BK {BK}) does not fit shape ({rows}, {cols})")
    if <uint64_t>src.shape[0] < bg_gguf_tl_scale_offset(1, rows, cols) + 4:
        raise ValueError(f"TL2: {src.shape[0]} bytes is too short for ({rows}, {cols})")
    return 0


def tl2_in_place(str isa):
    """True when this ISA level reads TL2 in place (a SIMD tile kernel, or the scalar level), False when a loader
    should repack TL2 into 2-bit rows for it."""
    cdef int isa_id = isa_by_name(isa)
    return bool(bg_tl2_in_place(<bg_isa>isa_id))


def tl2_valid(data, int rows, int cols, int BM, int BK):
    """False when a TL2 tensor holds a magnitude above 13 or a tail pair index above 8 (not ternary data)."""
    cdef const uint8_t[::1] src = _np.ascontiguousarray(data, dtype=_np.uint8).reshape(-1)
    cdef bg_tl2 w
    _tl2_view(&w, src, rows, cols, BM, BK)
    cdef int ok
    with nogil:
        ok = bg_tl2_valid(&w)
    return bool(ok)


def tl2_matvec(data, int rows, int cols, int BM, int BK, q, str isa):
    """The exact integers Σ w q of every row of a TL2 tensor read in place, by the tables and tile kernel of isa."""
    cdef const uint8_t[::1] src = _np.ascontiguousarray(data, dtype=_np.uint8).reshape(-1)
    cdef const int8_t[::1] qv = _np.ascontiguousarray(q, dtype=_np.int8).reshape(-1)
    if qv.shape[0] != cols:
        raise ValueError(f"q has {qv.shape[0]} values, expected {cols}")
    cdef bg_tl2 w
    _tl2_view(&w, src, rows, cols, BM, BK)
    cdef int isa_id = isa_by_name(isa)
    tables = _np.zeros(bg_tl2_table_bytes(<bg_isa>isa_id, cols, BK), dtype=_np.uint8)
    out = _np.zeros(rows, dtype=_np.int32)
    cdef uint8_t[::1] tv = tables
    cdef int32_t[::1] ov = out
    cdef bg_tl2_tile_fn tile = bg_tl2_tile_kernel(<bg_isa>isa_id)
    cdef int mt
    with nogil:
        bg_tl2_tables_kernel(<bg_isa>isa_id)(&qv[0], cols, BK, &tv[0])
        for mt in range(rows // BM):
            tile(&w, mt, &tv[0], 0, 1, &ov[mt * BM])
    return out
