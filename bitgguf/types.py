"""The tensor-type table: one row per ggml type that bitgguf reads or writes.

Each row knows its ggml id, its byte size for a given shape, and a numpy `quantize` / `dequantize` pair.
The numpy functions are the reference that every C kernel is tested against.
Shapes here are numpy order `(rows, cols)` = `(out_features, in_features)`; GGUF stores them reversed.

Ternary rows (I2_S 36, TQ1_0 34, TQ2_0 35, TL1 38, TL2 39) also carry `pack_ternary` / `unpack_ternary`, an exact
map between the file bytes and (int8 codes in {-1, 0, 1}, one scale per tensor); their byte layouts, and the rule
that picks TL1/TL2 tilings (`tl_params`, recorded in files via `layout_metadata`), are in `ternary_layouts.py`.
Rounding: C `roundf` (halves away from zero, `roundf` below) wherever ggml / gguf-py round (Q8_0, TQ quantize);
numpy's half-to-even in `absmean_ternarize`, as torch.round in the converters.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import kquants as K
from . import ternary_layouts as L


@dataclass(frozen=True)
class TensorType:
    name: str
    type_id: int
    block_size: int          # weights per block along a row (1 for per-tensor layouts)
    ternary: bool            # a {-1, 0, +1} x scale type
    nbytes: Callable[[tuple], int]                       # bytes of a tensor of numpy shape
    quantize: Callable[[np.ndarray], np.ndarray]         # float32 array -> uint8 bytes (len nbytes)
    dequantize: Callable[[np.ndarray, tuple], np.ndarray]  # uint8 bytes, shape -> float32 array
    check_shape: Callable[[tuple], str | None]           # None when the type can hold the shape, else why not
    # ternary rows only: exact conversion between the packed bytes and (int8 codes in {-1,0,1}, f32 scale)
    pack_ternary: Callable[[np.ndarray, float], np.ndarray] | None = None
    unpack_ternary: Callable[[np.ndarray, tuple], tuple[np.ndarray, float]] | None = None
    # float rows: what the head's input is when this type is the head: "f32", or "q8_k" (the K-quants, as in ggml:
    # activations quantized per 256 values to int8, kquants.q8_k_round_trip)
    head_input: str = "f32"


def _n_elements(shape: tuple) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _rows_of(shape: tuple) -> tuple[int, int]:
    """(rows, cols) of a shape, with every leading dimension folded into rows."""
    cols = int(shape[-1]) if shape else 1
    return _n_elements(shape) // max(cols, 1), cols


def roundf(x: np.ndarray) -> np.ndarray:
    """C roundf (halves away from zero), exactly: floor(|x| + 0.5) would round 0.49999997 up."""
    a = np.abs(x)
    f = np.floor(a)
    return np.copysign(f + (a - f >= 0.5), x)


def _any_shape(shape: tuple) -> str | None:
    return None


def _cols_multiple_of(k: int) -> Callable[[tuple], str | None]:
    def check(shape: tuple) -> str | None:
        cols = int(shape[-1]) if shape else 1
        return None if cols % k == 0 else f"the row length ({cols}) must be a multiple of {k}"
    return check


# ---- plain float types -------------------------------------------------------------------------------------

def _plain(dtype):
    itemsize = np.dtype(dtype).itemsize

    def nbytes(shape):
        return _n_elements(shape) * itemsize

    def quantize(x):
        return np.ascontiguousarray(x, dtype=np.float32).astype(dtype).reshape(-1).view(np.uint8)

    def dequantize(raw, shape):
        return np.frombuffer(raw, dtype=dtype, count=_n_elements(shape)).astype(np.float32).reshape(shape)
    return nbytes, quantize, dequantize


def _bf16_quantize(x: np.ndarray) -> np.ndarray:
    bits = np.ascontiguousarray(x, dtype=np.float32).reshape(-1).view(np.uint32)
    # round to nearest even, as torch and ggml do; NaN stays NaN
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(bits.view(np.float32))
    rounded[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded.view(np.uint8)


def _bf16_dequantize(raw: np.ndarray, shape: tuple) -> np.ndarray:
    halves = np.frombuffer(raw, dtype=np.uint16, count=_n_elements(shape))
    return (halves.astype(np.uint32) << 16).view(np.float32).reshape(shape)


# ---- Q8_0: blocks of 32 int8 with one f16 scale (ggml's layout: f16 d, then 32 x int8) -------------------

Q8_0_BLOCK = 32
_Q8_0_DTYPE = np.dtype([("d", "<f2"), ("qs", "i1", (Q8_0_BLOCK,))])


def _q8_0_nbytes(shape):
    return _n_elements(shape) // Q8_0_BLOCK * _Q8_0_DTYPE.itemsize


def _q8_0_quantize(x: np.ndarray) -> np.ndarray:
    blocks = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, Q8_0_BLOCK)
    amax = np.abs(blocks).max(axis=1)
    d = amax / 127.0
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    out = np.empty(len(blocks), dtype=_Q8_0_DTYPE)
    out["d"] = d.astype(np.float16)
    out["qs"] = roundf(blocks * inv[:, None]).astype(np.int8)    # ggml: x * (1/d), then roundf
    return out.view(np.uint8)


def _q8_0_dequantize(raw: np.ndarray, shape: tuple) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=_Q8_0_DTYPE, count=_n_elements(shape) // Q8_0_BLOCK)
    return (blocks["d"].astype(np.float32)[:, None] * blocks["qs"].astype(np.float32)).reshape(shape)


_f32 = _plain(np.float32)
_f16 = _plain(np.float16)

TYPES: dict[str, TensorType] = {}


def register(row: TensorType) -> TensorType:
    """Add a row to the table (ids and names are unique)."""
    if row.name in TYPES or any(t.type_id == row.type_id for t in TYPES.values()):
        raise ValueError(f"tensor type {row.name} (id {row.type_id}) is already registered")
    TYPES[row.name] = row
    return row


register(TensorType("F32", 0, 1, False, _f32[0], _f32[1], _f32[2], _any_shape))
register(TensorType("F16", 1, 1, False, _f16[0], _f16[1], _f16[2], _any_shape))
register(TensorType("Q8_0", 8, Q8_0_BLOCK, False, _q8_0_nbytes, _q8_0_quantize, _q8_0_dequantize,
                    _cols_multiple_of(Q8_0_BLOCK)))
register(TensorType("BF16", 30, 1, False, lambda s: _n_elements(s) * 2, _bf16_quantize, _bf16_dequantize,
                    _any_shape))

# ---- Q6_K / Q5_K / Q4_K / Q4_0: ggml's smaller float-weight types for the head (numpy code in kquants.py) -----

def _kquant_row(name: str, type_id: int, block: int, block_bytes: int, quantize, dequantize,
                head_input: str = "f32") -> TensorType:
    check = _cols_multiple_of(block)

    def nbytes(shape):
        return _n_elements(shape) // block * block_bytes

    def quant(x):
        _require_shape(name, check, np.shape(x))
        return quantize(x)

    def dequant(raw, shape):
        return dequantize(raw, _n_elements(shape)).reshape(shape)
    return TensorType(name, type_id, block, False, nbytes, quant, dequant, check, head_input=head_input)


register(_kquant_row("Q6_K", 14, K.QK_K, K.Q6_K_BYTES, K.q6_k_quantize, K.q6_k_dequantize, "q8_k"))
register(_kquant_row("Q4_0", 2, K.Q4_0_BLOCK, 18, K.q4_0_quantize, K.q4_0_dequantize))
register(_kquant_row("Q5_K", 13, K.QK_K, K.Q5_K_BYTES, K.q5_k_quantize, K.q5_k_dequantize, "q8_k"))
register(_kquant_row("Q4_K", 12, K.QK_K, K.Q4_K_BYTES, K.q4_k_quantize, K.q4_k_dequantize, "q8_k"))

# ---- ternary types -----------------------------------------------------------------------------------------
# Their `quantize` takes alpha-scaled ternary floats ({-a, 0, +a}, what the converters hand llama-quantize) and
# keeps only what the tool that defined the type keeps: the sign (I2_S, TL1, TL2) or round(x / max|x|) per block
# (TQ1_0, TQ2_0), with the scale computed the way that tool computes it. The byte layouts are in ternary_layouts.


def absmean_ternarize(w: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """BitNet b1.58's weight rule (spec section 5), in float32 like the converters:
    s = 1 / max(mean|W|, 1e-5), codes = clamp(round(W * s), -1, 1), alpha = 1 / s (so W ~ codes * alpha).

    Rounding is numpy's half-to-even, which is what the reference converters get from torch.round
    (bitnet.cpp's preprocess-huggingface-bitnet.py, upstream convert_hf_to_gguf.py, transformers' BitNet);
    C roundf would differ only where W * s is exactly +-0.5. The mean is accumulated in float64 and rounded to
    float32 (the converters' float32 reductions agree with it to the last bit in all but rare ties)."""
    w32 = np.asarray(w, dtype=np.float32)
    mean = np.float32(np.abs(w32).mean(dtype=np.float64))
    s = np.float32(1.0) / np.maximum(mean, np.float32(1e-5))
    codes = np.clip(np.round(w32 * s), -1, 1).astype(np.int8)
    return codes, np.float32(np.float32(1.0) / s)


def _sign_codes(x: np.ndarray) -> np.ndarray:
    """bitnet.cpp's rule (quantize_i2_s, preprocess_weights_tl1/2): |x| < 1e-6 is 0, otherwise the sign."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(np.abs(x) < 1e-6, 0, np.sign(x)).astype(np.int8)


def _require_shape(name: str, check: Callable[[tuple], str | None], shape: tuple) -> None:
    why = check(tuple(int(d) for d in shape))
    if why:
        raise ValueError(f"{name}: cannot hold shape {tuple(shape)}: {why}")


# I2_S: one f32 scale per tensor after the packed codes.

def _i2s_check(shape: tuple) -> str | None:
    cols = int(shape[-1]) if shape else 1
    if cols % L.I2S_BLOCK:
        return f"the row length ({cols}) must be a multiple of {L.I2S_BLOCK} (bitnet.cpp kernels run whole blocks)"
    return None


def _i2s_nbytes(shape: tuple) -> int:
    return L.i2s_nbytes(_n_elements(shape))


def _i2s_pack(codes: np.ndarray, scale: float) -> np.ndarray:
    _require_shape("I2_S", _i2s_check, np.shape(codes))
    return L.i2s_pack(codes, scale)


def _i2s_quantize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    # quantize_i2_s: scale = max|x| over the whole tensor (= alpha for ternary input)
    scale = np.float32(np.abs(x).max()) if x.size else np.float32(0)
    return _i2s_pack(_sign_codes(x), scale)


def _i2s_dequantize(raw: np.ndarray, shape: tuple) -> np.ndarray:
    q, scale = L.i2s_unpack_codes(raw, _n_elements(shape))
    t = q.astype(np.int8) - 1
    t[q == 3] = 0                     # unused code; ggml's dequantizer maps it to 0
    return (t.astype(np.float32) * np.float32(scale)).reshape(shape)


def _i2s_unpack(raw: np.ndarray, shape: tuple) -> tuple[np.ndarray, float]:
    q, scale = L.i2s_unpack_codes(raw, _n_elements(shape))
    if (q == 3).any():
        raise ValueError(f"I2_S: {int((q == 3).sum())} weights carry the unused code 3")
    return (q.astype(np.int8) - 1).reshape(shape), scale


# TQ2_0 / TQ1_0: blocks of 256 with one f16 d each (upstream ggml).

def _tq_row(name: str, type_id: int, block_bytes: int, pack_q, unpack_q) -> TensorType:
    def check(shape: tuple) -> str | None:
        cols = int(shape[-1]) if shape else 1
        return None if cols % L.QK_K == 0 else f"the row length ({cols}) must be a multiple of {L.QK_K}"

    def nbytes(shape: tuple) -> int:
        return _n_elements(shape) // L.QK_K * block_bytes

    def quantize(x: np.ndarray) -> np.ndarray:
        _require_shape(name, check, np.shape(x))
        blocks = np.asarray(x, dtype=np.float32).reshape(-1, L.QK_K)
        d = np.abs(blocks).max(axis=1)                              # ggml / gguf-py: d = max|x| per block
        inv = np.divide(np.float32(1), d, out=np.zeros_like(d), where=d != 0)
        q = (roundf(blocks * inv[:, None]) + 1).astype(np.uint8)
        return pack_q(q, d.astype(np.float16))

    def dequantize(raw: np.ndarray, shape: tuple) -> np.ndarray:
        q, d = unpack_q(raw, _n_elements(shape) // L.QK_K)
        return ((q.astype(np.float32) - 1) * d.astype(np.float32)[:, None]).reshape(shape)

    def pack_ternary(codes: np.ndarray, scale: float) -> np.ndarray:
        _require_shape(name, check, np.shape(codes))
        blocks = L._codes_2d(codes, np.shape(codes)).reshape(-1, L.QK_K)
        return pack_q((blocks + 1).astype(np.uint8), L._tq_d(blocks, scale))

    def unpack_ternary(raw: np.ndarray, shape: tuple) -> tuple[np.ndarray, float]:
        q, d = unpack_q(raw, _n_elements(shape) // L.QK_K)
        if (q > 2).any():
            raise ValueError(f"{name}: a 2-bit code 3 is not ternary")
        codes = q.astype(np.int8) - 1
        live = np.unique(d[codes.any(axis=1)].astype(np.float32))
        if live.size > 1:
            raise ValueError(f"{name}: blocks carry {live.size} different scales ({live[:4].tolist()}...), "
                             "expected one per tensor")
        return codes.reshape(shape), float(live[0]) if live.size else 0.0

    return TensorType(name, type_id, L.QK_K, True, nbytes, quantize, dequantize, check, pack_ternary,
                      unpack_ternary)


# TL1 / TL2: bitnet.cpp's LUT layouts for 2-D matrices, tiling chosen by ternary_layouts.tl_params (rule 1).

def _tl_row(name: str, type_id: int) -> TensorType:
    def check(shape: tuple) -> str | None:
        if len(shape) != 2:
            return f"{name} holds 2-D matrices only, got {len(shape)} dimensions"
        return L.tl_check(name, int(shape[0]), int(shape[1]))

    def nbytes(shape: tuple) -> int:
        _require_shape(name, check, shape)
        return L.tl_nbytes(name, int(shape[0]), int(shape[1]))

    def pack_ternary(codes: np.ndarray, scale: float) -> np.ndarray:
        _require_shape(name, check, np.shape(codes))
        return L.tl_pack(name, codes, scale)

    def unpack_ternary(raw: np.ndarray, shape: tuple) -> tuple[np.ndarray, float]:
        _require_shape(name, check, shape)
        return L.tl_unpack(name, raw, tuple(int(d) for d in shape))

    def quantize(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        # transform_to_tl1/2: scale = max|x| over the tensor, codes = sign
        return pack_ternary(_sign_codes(x), np.float32(np.abs(x).max()) if x.size else np.float32(0))

    def dequantize(raw: np.ndarray, shape: tuple) -> np.ndarray:
        codes, scale = unpack_ternary(raw, shape)
        return codes.astype(np.float32) * np.float32(scale)

    return TensorType(name, type_id, 1, True, nbytes, quantize, dequantize, check, pack_ternary, unpack_ternary)


register(TensorType("I2_S", 36, 1, True, _i2s_nbytes, _i2s_quantize, _i2s_dequantize, _i2s_check,
                    _i2s_pack, _i2s_unpack))
register(_tq_row("TQ1_0", 34, L.TQ1_0_BYTES, L.tq1_0_pack_q, L.tq1_0_unpack_q))
register(_tq_row("TQ2_0", 35, L.TQ2_0_BYTES, L.tq2_0_pack_q, L.tq2_0_unpack_q))
register(_tl_row("TL1", 38))
register(_tl_row("TL2", 39))

tl_params = L.tl_params
TL_RULE = L.TL_RULE


def layout_metadata(type_name: str) -> dict[str, int]:
    """GGUF metadata a writer must add to a file that holds tensors of this type, so a reader can find its layout.

    `bitgguf.tl_rule` (u32): the rule that maps a TL1/TL2 matrix shape to its tiling (ternary_layouts.tl_params);
    1 = bitnet.cpp's setup_env presets where they exist, else the generic rule. Other types need no key (I2_S is
    always the 128-weight x86 layout)."""
    if type_by_name(type_name).name in ("TL1", "TL2"):
        return {"bitgguf.tl_rule": TL_RULE}
    return {}

BY_ID: dict[int, TensorType] = {}


def _rebuild_index() -> None:
    BY_ID.clear()
    BY_ID.update({t.type_id: t for t in TYPES.values()})


_rebuild_index()


def type_by_name(name: str) -> TensorType:
    try:
        return TYPES[name.upper()]
    except KeyError:
        raise ValueError(f"unknown tensor type {name!r}; known: {', '.join(TYPES)}") from None
