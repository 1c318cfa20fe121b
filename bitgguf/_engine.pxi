# Engine: thin Cython over the nogil C forward pass in _kernels/engine.c (included by _core.pyx).
# bitgguf.Model builds it from a GGUFReader; the arrays it is given are views of the memory map, kept alive here.
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t
from libc.string cimport memset
from libc.stdlib cimport calloc, free

import numpy as _np

cdef extern from "kernels.h" nogil:
    ctypedef struct bg_act:
        int n
        float scale
        int32_t sum
        int8_t *q
        int32_t *gsum
        int8_t *tq1
    ctypedef float (*bg_dot_i8_fn)(const uint8_t *row, const bg_act *a)
    ctypedef void (*bg_dot_i8_x4_fn)(const uint8_t *row, size_t row_bytes, const bg_act *a, float *out)
    ctypedef float (*bg_dot_f32_fn)(const void *row, const float *x, int n)
    ctypedef struct bg_q8k:
        int n
        int8_t *q
        float *d
        int16_t *bsum
    ctypedef float (*bg_dot_q8k_fn)(const void *row, const bg_q8k *x)
    ctypedef struct bg_type_traits:
        const char *name
        int type_id
        int block_size
        int block_bytes
        int ternary
        int tensor_scale
    const bg_type_traits *bg_type_traits_of(int type_id)
    size_t bg_row_bytes(const bg_type_traits *t, int cols)
    enum: BG_TQ1_ORDER_BYTES
    enum: BG_TYPE_TQ1_0
    bg_dot_i8_fn bg_kernel_dot_i8(const bg_type_traits *t, bg_isa isa)
    bg_dot_i8_x4_fn bg_kernel_dot_i8_x4(const bg_type_traits *t, bg_isa isa)
    ctypedef void (*bg_dot_i8_multi_fn)(const uint8_t *row, const bg_act *acts, int n, float *out, size_t stride)
    bg_dot_i8_multi_fn bg_kernel_dot_i8_multi(const bg_type_traits *t, bg_isa isa)
    ctypedef void (*bg_gemm_i8_fn)(const uint8_t *rows, size_t row_bytes, int n_rows, const int8_t *tiles,
                                   const bg_act *acts, int n, float *out, size_t stride)
    bg_gemm_i8_fn bg_kernel_gemm_i8(const bg_type_traits *t, bg_isa isa, int cols)
    size_t bg_gemm_tiles_bytes(int cols, int n_tokens)
    void bg_gemm_put_token(const int8_t *q, int cols, int t, int8_t *tiles)
    void bg_dot_i8_rows(bg_dot_i8_fn dot, bg_dot_i8_x4_fn dot4, const uint8_t *rows, size_t row_bytes, int n_rows,
                        const bg_act *a, float *out, int one_stream)
    bg_dot_f32_fn bg_kernel_dot_f32(const bg_type_traits *t, bg_isa isa)
    ctypedef void (*bg_dot_f32_x4_fn)(const void *row, size_t stride, const float *x, int n, float *out)
    bg_dot_f32_x4_fn bg_kernel_dot_f32_x4(const bg_type_traits *t, bg_isa isa)
    void bg_dot_f32_rows(bg_dot_f32_fn dot, bg_dot_f32_x4_fn dot4, const uint8_t *rows, size_t row_bytes, int n_rows,
                         const float *x, int cols, float *out, int one_stream)
    bg_dot_q8k_fn bg_kernel_dot_q8k(const bg_type_traits *t, bg_isa isa)
    ctypedef void (*bg_dot_q8k_x4_fn)(const void *row, size_t stride, const bg_q8k *x, float *out)
    bg_dot_q8k_x4_fn bg_kernel_dot_q8k_x4(const bg_type_traits *t, bg_isa isa)
    void bg_dot_q8k_rows(bg_dot_q8k_fn dot, bg_dot_q8k_x4_fn dot4, const uint8_t *rows, size_t row_bytes, int n_rows,
                         const bg_q8k *x, float *out, int one_stream)
    void bg_quantize_act(const float *x, int n, bg_act *a)
    void bg_quantize_q8k(const float *x, int n, bg_q8k *out)
    void bg_quantize_q6_k(const float *x, int64_t n_blocks, uint8_t *out)
    void bg_quantize_q5_k(const float *x, int64_t n_blocks, uint8_t *out)
    void bg_quantize_q4_k(const float *x, int64_t n_blocks, uint8_t *out)
    uint16_t bg_f32_to_f16(float f)

cdef extern from "engine.h" nogil:
    int BG_FFN_SILU
    int BG_FFN_RELU2
    ctypedef struct bg_config:
        int n_vocab
        int n_embd
        int n_layer
        int n_head
        int n_head_kv
        int head_dim
        int n_ff
        float rope_theta
        float rms_eps
        int ffn_act
    ctypedef struct bg_tensor:
        const uint8_t *data
        int type
        int rows
        int cols
        int tl_bm
        int tl_bk
        float scale
    ctypedef struct bg_layer:
        const float *attn_norm
        const float *attn_sub_norm
        const float *ffn_norm
        const float *ffn_sub_norm
        bg_tensor wq
        bg_tensor wk
        bg_tensor wv
        bg_tensor wo
        bg_tensor ffn_gate
        bg_tensor ffn_up
        bg_tensor ffn_down
    ctypedef struct bg_weights:
        bg_config c
        bg_tensor tok_embd
        bg_tensor output
        const float *output_norm
        bg_layer *layers
    ctypedef struct bg_state:
        int n_ctx
        int n_past
    ctypedef struct bg_model:
        bg_weights w
        bg_state s
        bg_isa isa
        int n_threads
        char error[256]
    int bg_model_init(bg_model *m, bg_isa isa, int n_ctx, int kv_type, int n_threads)
    void bg_model_free(bg_model *m)
    void bg_model_reset(bg_model *m)
    int bg_model_eval(bg_model *m, const int32_t *tokens, int n, float *logits, int all)


def isa_by_name(str name):
    """The ISA level for a name ('scalar', 'avx2', ...); ValueError naming the levels this CPU runs."""
    cdef int i
    for i in range(<int>BG_ISA_COUNT):
        if bg_isa_name(<bg_isa>i).decode() == name:
            if not bg_cpu_supports(<bg_isa>i):
                raise ValueError(f"ISA level {name!r} is not supported by this CPU; it runs: "
                                 f"{', '.join(isa_levels())}")
            return i
    raise ValueError(f"unknown ISA level {name!r}; known: "
                     f"{', '.join(bg_isa_name(<bg_isa>i).decode() for i in range(<int>BG_ISA_COUNT))}")


def kernel_types():
    """ggml type ids the C engine has kernels for: {id: (name, ternary)}."""
    out = {}
    cdef const bg_type_traits *t
    for type_id in range(64):
        t = bg_type_traits_of(type_id)
        if t != NULL:
            out[type_id] = (t.name.decode(), bool(t.ternary))
    return out


cdef const uint8_t *_bytes_ptr(arr, list keep) except NULL:
    cdef const uint8_t[::1] view = arr
    keep.append(arr)
    return &view[0]


cdef const float *_floats_ptr(arr, list keep) except NULL:
    cdef const float[::1] view = arr
    keep.append(arr)
    return &view[0]


cdef int _set_tensor(bg_tensor *t, spec, list keep) except -1:
    """spec: (data, type_id, rows, cols), or for TL2 in place (data, 39, rows, cols, BM, BK)."""
    data, type_id, rows, cols = spec[:4]
    t.data = _bytes_ptr(data, keep)
    t.type = type_id
    t.rows = rows
    t.cols = cols
    t.tl_bm, t.tl_bk = spec[4:6] if len(spec) == 6 else (0, 0)
    return 0


cdef class Engine:
    """The nogil C forward pass over weights used in place. Made by bitgguf.Model; not for direct use.

    config: dict with n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, rope_theta, rms_eps,
    ffn_act ('relu2' | 'silu'). tok_embd / output: (uint8 array, ggml type id, rows, cols); output_norm: float32
    array; layers: one dict per layer with the norms (float32 arrays, the sub-norms may be None) and the seven
    linear weights as (uint8 array, type id, rows, cols). kv_type: 'f16' | 'f32'. isa: a level name.
    """
    cdef bg_model m
    cdef bg_layer *layers
    cdef list _keep
    cdef bint ready
    cdef bint busy  # an eval is running with the GIL released: a second caller must not touch the state

    def __cinit__(self):
        memset(&self.m, 0, sizeof(self.m))
        self.layers = NULL
        self.ready = False

    def __init__(self, dict config, tok_embd, output, output_norm, list layers, int n_ctx, str kv_type, str isa,
                 int n_threads):
        cdef bg_config *c = &self.m.w.c
        cdef bg_layer *L
        cdef int i, rc
        cdef int isa_id = isa_by_name(isa)
        if kv_type not in ("f16", "f32"):
            raise ValueError(f"kv_type must be 'f16' or 'f32', got {kv_type!r}")
        if config["ffn_act"] not in ("relu2", "silu"):
            raise ValueError(f"ffn_act must be 'relu2' or 'silu', got {config['ffn_act']!r}")
        if len(layers) != config["n_layer"]:
            raise ValueError(f"{len(layers)} layers given, n_layer is {config['n_layer']}")
        self._keep = []
        c.n_vocab = config["n_vocab"]
        c.n_embd = config["n_embd"]
        c.n_layer = config["n_layer"]
        c.n_head = config["n_head"]
        c.n_head_kv = config["n_head_kv"]
        c.head_dim = config["head_dim"]
        c.n_ff = config["n_ff"]
        c.rope_theta = config["rope_theta"]
        c.rms_eps = config["rms_eps"]
        c.ffn_act = BG_FFN_RELU2 if config["ffn_act"] == "relu2" else BG_FFN_SILU
        _set_tensor(&self.m.w.tok_embd, tok_embd, self._keep)
        _set_tensor(&self.m.w.output, output, self._keep)
        self.m.w.output_norm = _floats_ptr(output_norm, self._keep)
        self.layers = <bg_layer *>calloc(len(layers), sizeof(bg_layer))
        if self.layers == NULL:
            raise MemoryError()
        self.m.w.layers = self.layers
        for i, spec in enumerate(layers):
            L = &self.layers[i]
            L.attn_norm = _floats_ptr(spec["attn_norm"], self._keep)
            L.ffn_norm = _floats_ptr(spec["ffn_norm"], self._keep)
            if spec.get("attn_sub_norm") is not None:
                L.attn_sub_norm = _floats_ptr(spec["attn_sub_norm"], self._keep)
            if spec.get("ffn_sub_norm") is not None:
                L.ffn_sub_norm = _floats_ptr(spec["ffn_sub_norm"], self._keep)
            _set_tensor(&L.wq, spec["attn_q"], self._keep)
            _set_tensor(&L.wk, spec["attn_k"], self._keep)
            _set_tensor(&L.wv, spec["attn_v"], self._keep)
            _set_tensor(&L.wo, spec["attn_output"], self._keep)
            _set_tensor(&L.ffn_gate, spec["ffn_gate"], self._keep)
            _set_tensor(&L.ffn_up, spec["ffn_up"], self._keep)
            _set_tensor(&L.ffn_down, spec["ffn_down"], self._keep)
        rc = bg_model_init(&self.m, <bg_isa>isa_id, n_ctx, 1 if kv_type == "f16" else 0, n_threads)
        if rc != 0:
            raise ValueError(self.m.error.decode(errors="replace"))
        self.ready = True

    def __dealloc__(self):
        bg_model_free(&self.m)
        free(self.layers)
        self.layers = NULL

    @property
    def n_past(self):
        return self.m.s.n_past

    @property
    def n_ctx(self):
        return self.m.s.n_ctx

    @property
    def n_threads(self):
        return self.m.n_threads

    @n_threads.setter
    def n_threads(self, int n):
        if n < 1:
            raise ValueError(f"n_threads must be >= 1, got {n}")
        self.m.n_threads = n

    @property
    def isa(self):
        return bg_isa_name(self.m.isa).decode()

    def reset(self):
        if self.busy:
            raise RuntimeError("Engine.reset: the model is running in another thread")
        bg_model_reset(&self.m)

    def eval(self, tokens, bint all_logits=False):
        """Append tokens to the context; logits (len(tokens), n_vocab) if all_logits else the last (n_vocab,)."""
        if not self.ready:
            raise ValueError("Engine is closed")
        cdef const int32_t[::1] toks = _np.ascontiguousarray(tokens, dtype=_np.int32).reshape(-1)
        cdef int n = toks.shape[0]
        if n == 0:
            raise ValueError("eval: no tokens given")
        cdef int n_vocab = self.m.w.c.n_vocab
        out = _np.empty((n, n_vocab), dtype=_np.float32) if all_logits else _np.empty(n_vocab, dtype=_np.float32)
        cdef float[::1] flat = out.reshape(-1)
        cdef int rc
        if self.busy:
            raise RuntimeError("Engine.eval: the model is already running in another thread")
        self.busy = True
        try:
            with nogil:
                rc = bg_model_eval(&self.m, &toks[0], n, &flat[0], all_logits)
        finally:
            self.busy = False
        if rc != 0:
            raise ValueError(self.m.error.decode(errors="replace"))
        return out

    def close(self):
        if self.busy:
            raise RuntimeError("Engine.close: the model is running in another thread")
        bg_model_free(&self.m)
        self.ready = False
        self._keep = []


# ---- single-kernel entry points for tests ---------------------------------------------------------------------

cdef const bg_type_traits *_traits(int type_id) except NULL:
    cdef const bg_type_traits *t = bg_type_traits_of(type_id)
    if t == NULL:
        raise ValueError(f"no C kernels for ggml type {type_id}")
    return t


def quantize_activations(x):
    """(q int8, scale float32, sum int) of a 1-D float32 vector, by the C rule (must equal reference.py's)."""
    cdef const float[::1] xv = _np.ascontiguousarray(x, dtype=_np.float32).reshape(-1)
    cdef int n = xv.shape[0]
    q = _np.zeros(max(n, 1), dtype=_np.int8)
    gsum = _np.zeros(max(n, 1) // 32 + 1, dtype=_np.int32)
    cdef int8_t[::1] qv = q
    cdef int32_t[::1] gv = gsum
    cdef bg_act a
    a.q = &qv[0]
    a.gsum = &gv[0]
    a.tq1 = NULL
    bg_quantize_act(&xv[0], n, &a)
    return q[:n], _np.float32(a.scale), int(a.sum)


def ternary_matvec(data, int type_id, int rows, int cols, x, str isa, bint rows4=True, one_stream=None):
    """(dots, y) of a ternary weight times x: dots are the raw kernel results (exact integers Σ(c-1)q for I2_S),
    y = dots / act_scale * tensor_scale, as the engine computes them: with rows4, groups of four rows by the type's
    four-row kernel where this ISA level has one (the engine's decode path), the rest row by row; the rows in one
    stream or as two halves side by side (one_stream; None: as this CPU's engine does)."""
    cdef const bg_type_traits *t = _traits(type_id)
    if not t.ternary:
        raise ValueError(f"{t.name.decode()} is not a ternary type")
    if cols % t.block_size:
        raise ValueError(f"cols {cols} is not a multiple of {t.block_size}")
    cdef size_t rb = bg_row_bytes(t, cols)
    flat = _np.ascontiguousarray(data, dtype=_np.uint8).reshape(-1)
    cdef const uint8_t[::1] w = flat
    if <size_t>w.shape[0] < rb * rows + (4 if t.tensor_scale else 0):
        raise ValueError(f"{w.shape[0]} bytes is too short for ({rows}, {cols}) {t.name.decode()}")
    cdef const float[::1] xv = _np.ascontiguousarray(x, dtype=_np.float32).reshape(-1)
    if xv.shape[0] != cols:
        raise ValueError(f"x has {xv.shape[0]} values, expected {cols}")
    cdef int isa_id = isa_by_name(isa)
    cdef bg_dot_i8_fn dot = bg_kernel_dot_i8(t, <bg_isa>isa_id)
    q = _np.zeros(cols, dtype=_np.int8)
    gsum = _np.zeros(cols // 32 + 1, dtype=_np.int32)
    cdef int8_t[::1] qv = q
    cdef int32_t[::1] gv = gsum
    # TQ1_0's activations also in digit order, as the engine gives them (its AVX-512 kernel reads them)
    order = _np.zeros(cols // 256 * BG_TQ1_ORDER_BYTES if type_id == BG_TYPE_TQ1_0 else 1, dtype=_np.int8)
    cdef int8_t[::1] ov = order
    cdef bg_act a
    a.q = &qv[0]
    a.gsum = &gv[0]
    a.tq1 = &ov[0] if type_id == BG_TYPE_TQ1_0 else NULL
    bg_quantize_act(&xv[0], cols, &a)
    cdef float scale = 1.0
    if t.tensor_scale:
        scale = flat[rb * rows: rb * rows + 4].view("<f4")[0]
    dots = _np.empty(rows, dtype=_np.float32)
    y = _np.empty(rows, dtype=_np.float32)
    cdef float[::1] dv = dots, yv = y
    cdef bg_dot_i8_x4_fn dot4 = bg_kernel_dot_i8_x4(t, <bg_isa>isa_id) if rows4 else NULL
    cdef int streams = bg_cpu_one_stream() if one_stream is None else bool(one_stream)
    cdef int r
    with nogil:
        bg_dot_i8_rows(dot, dot4, &w[0], rb, rows, &a, &dv[0], streams)
        for r in range(rows):
            yv[r] = dv[r] / a.scale * scale
    return dots, y


def ternary_matmul(data, int type_id, int rows, int cols, x, str isa):
    """(dots, path) for a ternary weight times n tokens x (n, cols): the raw kernel results (n, rows) of the engine's
    batch path at this level, path "gemm" (the level's GEMM over activation tiles), "multi" (its multi-token kernel)
    or "dot" (one token at a time). Every path gives dot_i8's values."""
    cdef const bg_type_traits *t = _traits(type_id)
    if not t.ternary:
        raise ValueError(f"{t.name.decode()} is not a ternary type")
    if cols % t.block_size:
        raise ValueError(f"cols {cols} is not a multiple of {t.block_size}")
    cdef size_t rb = bg_row_bytes(t, cols)
    cdef const uint8_t[::1] w = _np.ascontiguousarray(data, dtype=_np.uint8).reshape(-1)
    if <size_t>w.shape[0] < rb * rows:
        raise ValueError(f"{w.shape[0]} bytes is too short for ({rows}, {cols}) {t.name.decode()}")
    xs = _np.ascontiguousarray(x, dtype=_np.float32)
    if xs.ndim != 2 or xs.shape[1] != cols or xs.shape[0] < 1:
        raise ValueError(f"x must be (n >= 1, {cols}), got {xs.shape}")
    cdef int n = xs.shape[0], i
    cdef int isa_id = isa_by_name(isa)
    cdef bg_gemm_i8_fn gemm = bg_kernel_gemm_i8(t, <bg_isa>isa_id, cols)
    cdef bg_dot_i8_multi_fn multi = bg_kernel_dot_i8_multi(t, <bg_isa>isa_id)
    cdef bg_dot_i8_fn dot = bg_kernel_dot_i8(t, <bg_isa>isa_id)
    q = _np.zeros((n, cols), dtype=_np.int8)
    gsum = _np.zeros((n, cols // 32 + 1), dtype=_np.int32)
    tiles = _np.zeros(bg_gemm_tiles_bytes(cols, n) + 64, dtype=_np.int8)
    cdef int8_t[:, ::1] qv = q
    cdef int32_t[:, ::1] gv = gsum
    cdef const float[:, ::1] xv = xs
    cdef int8_t[::1] tv = tiles
    cdef int8_t *tp = &tv[(64 - <size_t>&tv[0] % 64) % 64]  # 64-byte aligned, as the engine's buffer
    cdef bg_act *acts = <bg_act *>calloc(n, sizeof(bg_act))
    if acts == NULL:
        raise MemoryError()
    dots = _np.empty((n, rows), dtype=_np.float32)
    cdef float[:, ::1] dv = dots
    try:
        with nogil:
            for i in range(n):
                acts[i].q = &qv[i, 0]
                acts[i].gsum = &gv[i, 0]
                bg_quantize_act(&xv[i, 0], cols, &acts[i])
                if gemm != NULL:
                    bg_gemm_put_token(acts[i].q, cols, i, tp)
            if gemm != NULL:
                gemm(&w[0], rb, rows, tp, acts, n, &dv[0, 0], rows)
            elif multi != NULL:
                for i in range(rows):
                    multi(&w[0] + <size_t>i * rb, acts, n, &dv[0, i], rows)
            else:
                for i in range(n):
                    bg_dot_i8_rows(dot, NULL, &w[0], rb, rows, &acts[i], &dv[i, 0], 1)
    finally:
        free(acts)
    return dots, "gemm" if gemm != NULL else "multi" if multi != NULL else "dot"


def quantize_k(str name, x):
    """Q6_K / Q5_K / Q4_K bytes of float32 x (a multiple of 256 values), by quant_k.c (kquants.py's numpy code is
    the oracle it is tested against). Releases the GIL: callers may run chunks on several threads."""
    cdef const float[::1] xv = _np.ascontiguousarray(x, dtype=_np.float32).reshape(-1)
    cdef int64_t nb = xv.shape[0] // 256
    if xv.shape[0] % 256:
        raise ValueError(f"{name} needs a multiple of 256 values, got {xv.shape[0]}")
    cdef int kind = {"Q6_K": 6, "Q5_K": 5, "Q4_K": 4}[name]
    out = _np.empty(nb * {6: 210, 5: 176, 4: 144}[kind], dtype=_np.uint8)
    if nb == 0:
        return out
    cdef uint8_t[::1] ov = out
    with nogil:
        if kind == 6:
            bg_quantize_q6_k(&xv[0], nb, &ov[0])
        elif kind == 5:
            bg_quantize_q5_k(&xv[0], nb, &ov[0])
        else:
            bg_quantize_q4_k(&xv[0], nb, &ov[0])
    return out


def quantize_q8k(x):
    """The K-quant heads' activation quantization (ggml's Q8_K): (q int8 (n,), d f32 (n/256,), bsum int16 (n/16,))."""
    cdef const float[::1] xv = _np.ascontiguousarray(x, dtype=_np.float32).reshape(-1)
    if xv.shape[0] == 0 or xv.shape[0] % 256:
        raise ValueError(f"Q8_K needs a multiple of 256 values, got {xv.shape[0]}")
    q = _np.empty(xv.shape[0], dtype=_np.int8)
    d = _np.empty(xv.shape[0] // 256, dtype=_np.float32)
    bsum = _np.empty(xv.shape[0] // 16, dtype=_np.int16)
    cdef int8_t[::1] qv = q
    cdef float[::1] dv = d
    cdef int16_t[::1] bv = bsum
    cdef bg_q8k out
    out.q = &qv[0]
    out.d = &dv[0]
    out.bsum = &bv[0]
    with nogil:
        bg_quantize_q8k(&xv[0], <int>xv.shape[0], &out)
    return q, d, bsum


def float_matvec(data, int type_id, int rows, int cols, x, str isa, bint rows4=True, one_stream=None):
    """y = W x for a float-type weight by the head kernels: f32 activations (F32, F16, BF16, Q8_0, Q4_0), or x as
    Q8_K for the K-quants (Q6_K, Q5_K, Q4_K), as the engine runs them (bg_dot_q8k_rows, bg_dot_f32_rows): with rows4,
    four rows at a time by the type's four-row kernel where this ISA level has one, four adjacent rows or the rows'
    four quarters side by side (the K-quants; float types read front to back with one_stream); None: as this CPU's
    engine does."""
    cdef const bg_type_traits *t = _traits(type_id)
    if t.ternary:
        raise ValueError(f"{t.name.decode()} is a ternary type")
    cdef size_t rb = bg_row_bytes(t, cols)
    cdef const uint8_t[::1] w = _np.ascontiguousarray(data, dtype=_np.uint8).reshape(-1)
    if <size_t>w.shape[0] < rb * rows:
        raise ValueError(f"{w.shape[0]} bytes is too short for ({rows}, {cols}) {t.name.decode()}")
    cdef const float[::1] xv = _np.ascontiguousarray(x, dtype=_np.float32).reshape(-1)
    if xv.shape[0] != cols:
        raise ValueError(f"x has {xv.shape[0]} values, expected {cols}")
    cdef int isa_id = isa_by_name(isa)
    cdef bg_dot_f32_fn dot = bg_kernel_dot_f32(t, <bg_isa>isa_id)
    cdef bg_dot_q8k_fn dot_q8k = bg_kernel_dot_q8k(t, <bg_isa>isa_id)
    cdef bg_dot_q8k_x4_fn dot_q8k_x4 = bg_kernel_dot_q8k_x4(t, <bg_isa>isa_id) if rows4 else NULL
    cdef bg_dot_f32_x4_fn dot_f32_x4 = bg_kernel_dot_f32_x4(t, <bg_isa>isa_id) if rows4 else NULL
    cdef int streams = bg_cpu_one_stream() if one_stream is None else bool(one_stream)
    y = _np.empty(rows, dtype=_np.float32)
    cdef float[::1] yv = y
    cdef int8_t[::1] qv
    cdef float[::1] dv
    cdef int16_t[::1] bv
    cdef bg_q8k xq
    if dot_q8k != NULL:
        q, d, bsum = quantize_q8k(x)
        qv, dv, bv = q, d, bsum
        xq.n = cols
        xq.q = &qv[0]
        xq.d = &dv[0]
        xq.bsum = &bv[0]
        with nogil:
            bg_dot_q8k_rows(dot_q8k, dot_q8k_x4, &w[0], rb, rows, &xq, &yv[0], streams)
        return y
    with nogil:
        bg_dot_f32_rows(dot, dot_f32_x4, &w[0], rb, rows, &xv[0], cols, &yv[0], streams)
    return y


def f32_to_f16(x):
    """The KV cache's f32 -> f16 conversion (round to nearest even), as uint16 bits."""
    cdef const float[::1] xv = _np.ascontiguousarray(x, dtype=_np.float32).reshape(-1)
    out = _np.empty(xv.shape[0], dtype=_np.uint16)
    cdef uint16_t[::1] ov = out
    cdef Py_ssize_t i
    for i in range(xv.shape[0]):
        ov[i] = bg_f32_to_f16(xv[i])
    return out
