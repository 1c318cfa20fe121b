"""The tensor-type table: one row per ggml type that bitgguf reads or writes.

Each row knows its ggml id, its byte size for a given shape, and a numpy `quantize` / `dequantize` pair.
The numpy functions are the reference that every C kernel is tested against.
Shapes here are numpy order `(rows, cols)` = `(out_features, in_features)`; GGUF stores them reversed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


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


def _n_elements(shape: tuple) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _rows_of(shape: tuple) -> tuple[int, int]:
    """(rows, cols) of a shape, with every leading dimension folded into rows."""
    cols = int(shape[-1]) if shape else 1
    return _n_elements(shape) // max(cols, 1), cols


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
    scaled = blocks * inv[:, None]
    out["qs"] = (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(np.int8)  # C roundf: half away from 0
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

# Ternary rows (I2_S 36, TL1 38, TL2 39, TQ1_0 34, TQ2_0 35) are registered below.

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
