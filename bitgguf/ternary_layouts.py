"""Byte layouts of the ternary tensor types: exact conversion between packed bytes and int8 codes in {-1, 0, 1}.

Every function here is lossless: `unpack(pack(codes, ...)) == codes`. The float-facing rules (how a scale is
chosen from float input, what dequantize returns) live in `types.py`; this module only knows where each trit goes.
Shapes are numpy order `(rows, cols)` = `(out_features, in_features)`; `M = rows`, `K = cols` as in bitnet.cpp.
See /work/shared/spec/ternary-gguf.md sections 2-4 for the sources of these layouts.

I2_S (bitnet.cpp, id 36)
    Flat row-major trits, 2-bit codes `c = t + 1`, blocks of 128 weights in 32 bytes, MSB first: byte b of a block
    holds weights b, b+32, b+64, b+96 in bits 7-6, 5-4, 3-2, 1-0 (the x86 / pre-Nov-2025 layout, the one in the
    official GGUF). Then one f32 scale at byte n/4, then 28 bytes we write as zero. nbytes = n/4 + 32.

TQ2_0 / TQ1_0 (upstream ggml, ids 35 / 34)
    Blocks of 256 weights with one f16 `d` each; see `tq2_0_*` / `tq1_0_*`.

TL1 / TL2 (bitnet.cpp lookup-table kernels, ids 38 / 39)
    Tile-permuted index streams whose tiling (BM, BK, bm) bitnet.cpp generates per (M, K) at build time; nothing
    in its files records them. bitgguf picks them with a deterministic rule, `tl_params` (rule 1):

    1. If (M, K) is one of bitnet.cpp's setup_env codegen presets (bitnet_b1_58-large, bitnet_b1_58-3B,
       Llama3-8B-1.58 shapes, table `_TL1_PRESETS` / `_TL2_PRESETS`), use the preset, so files written by
       bitnet.cpp's converter for those models read correctly and ours match them byte for byte.
    2. Otherwise bm = 32 and BM = the largest multiple of 32 that divides M and is at most 256 (needs M % 32 == 0);
       TL1: BK = the largest power of two dividing K, capped at 128 (needs K % 8 == 0, as by = 256/bm = 8);
       TL2: BK = 96, so threeK = K - K % 96 and twoK = K % 96 (needs K % 32 == 0 for the TL1-style tail).

    Files written by bitgguf carry the metadata key `bitgguf.tl_rule` (u32, = TL_RULE = 1) when they hold TL1/TL2
    tensors (see `layout_metadata`). A reader that finds a TL tensor without the key can still use rule 1: for
    shapes outside the presets bitnet.cpp's converter refuses to write TL at all.

    TL1: pairs (w[2j], w[2j+1]) along K become idx = 3*w0 + w1 + 4 in 0..8; the (M, K/2) index matrix is tiled as
        (M/BM, BM/bm, bm/16, 16, K/BK, BK/by, by/4, 2) and transposed to (0, 4, 1, 5, 2, 6, 3, 7); consecutive
        pairs of the result form one byte, first index in the high nibble. by = 256/bm. Data M*K/4 bytes, f32
        scale at byte M*K/4, nbytes = M*K/4 + 32.
    TL2 (bm = 32): K = threeK + twoK.
        threeK part: triples (w0, w1, w2) along K give v = 9*w0 + 3*w1 + w2; |v| (0..13) is tiled as
        (M/BM, BM/32, 32, threeK/BK, BK/6, 2) -> transpose (0, 3, 1, 4, 2, 5), a nibble pair per byte (high first),
        and inside each run of 32 bytes the 8-byte groups are reordered [0, 2, 1, 3].
        Then the sign stream: bit (v < 0), tiled (M/BM, BM/32, 2, 16, threeK/BK, BK/24, 8) -> transpose
        (0, 4, 1, 5, 6, 2, 3) -> 16 x 16 (i, j); uint16 j of each 32-byte run has sign i in bit 15 - i, stored
        little-endian.
        twoK part: TL1 indices tiled like the magnitudes with BK = 32, by = 4: (M/BM, BM/32, 32, twoK/32, 8, 2)
        -> transpose (0, 3, 1, 4, 2, 5), nibble pairs, same [0, 2, 1, 3] group reorder.
        The data are zero-padded to P = (K-256)*M/3*5/8 + 256*M/2*4/8 bytes (C integer arithmetic, left to right,
        truncating toward zero as ggml_nbytes does), the f32 scale sits at roundup32(P), nbytes = roundup32(P) + 32.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

# ---- shared helpers ----------------------------------------------------------------------------------------


def _codes_2d(codes: np.ndarray, shape: tuple) -> np.ndarray:
    c = np.asarray(codes)
    if c.shape != tuple(shape):
        c = c.reshape(shape)
    if c.dtype != np.int8:
        c = c.astype(np.int8)
    if c.size and (c.min() < -1 or c.max() > 1):
        raise ValueError(f"ternary codes must be in {{-1, 0, 1}}, found values in [{c.min()}, {c.max()}]")
    return c


def _raw_bytes(raw, nbytes: int, what: str) -> np.ndarray:
    r = np.frombuffer(raw, dtype=np.uint8) if not isinstance(raw, np.ndarray) else raw.reshape(-1).view(np.uint8)
    if r.size < nbytes:
        raise ValueError(f"{what}: {r.size} bytes of data, expected {nbytes}")
    return r[:nbytes]


def _roundup32(n: int) -> int:
    return (n + 31) // 32 * 32


def _c_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero), for the TL2 size formula that ggml_nbytes evaluates in C."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _scale_bytes(scale: float) -> np.ndarray:
    return np.frombuffer(np.float32(scale).tobytes(), dtype=np.uint8)


def _read_scale(raw: np.ndarray, at: int) -> float:
    return float(raw[at:at + 4].view(np.float32)[0])


# ---- I2_S --------------------------------------------------------------------------------------------------

I2S_BLOCK = 128          # weights per block (x86 layout); 32 bytes per block


def i2s_nbytes(n: int) -> int:
    return n // 4 + 32


def i2s_pack(codes: np.ndarray, scale: float) -> np.ndarray:
    c = _codes_2d(codes, np.shape(codes)).reshape(-1)
    n = c.size
    if n % I2S_BLOCK:
        raise ValueError(f"I2_S: {n} weights is not a multiple of the block size {I2S_BLOCK}")
    q = (c + 1).astype(np.uint8).reshape(-1, 4, 32)      # q[block, group, pos] = weight block*128 + group*32 + pos
    packed = (q[:, 0] << 6) | (q[:, 1] << 4) | (q[:, 2] << 2) | q[:, 3]
    out = np.zeros(i2s_nbytes(n), dtype=np.uint8)
    out[:n // 4] = packed.reshape(-1)
    out[n // 4:n // 4 + 4] = _scale_bytes(scale)
    return out


def i2s_unpack_codes(raw, n: int) -> tuple[np.ndarray, float]:
    """2-bit codes (uint8 0..3, flat, code 3 left in) and the f32 scale."""
    r = _raw_bytes(raw, i2s_nbytes(n), "I2_S")
    b = r[:n // 4].reshape(-1, 1, 32)
    q = (b >> np.array([6, 4, 2, 0], dtype=np.uint8).reshape(1, 4, 1)) & 3
    return q.reshape(-1), _read_scale(r, n // 4)


# ---- TQ2_0 / TQ1_0 (upstream ggml) -------------------------------------------------------------------------

QK_K = 256
TQ2_0_BYTES = 66         # qs[64], f16 d
TQ1_0_BYTES = 54         # qs[48], qh[4], f16 d
_POW3 = np.array([1, 3, 9, 27, 81], dtype=np.uint8)


def _tq_d(codes_blocks: np.ndarray, scale: float) -> np.ndarray:
    """One f16 d per block: f16(scale), or 0 for an all-zero block (what ggml's max|x| rule gives there)."""
    d = np.full(len(codes_blocks), np.float16(scale), dtype=np.float16)
    d[~codes_blocks.any(axis=1)] = 0
    return d


def tq2_0_pack_q(q: np.ndarray, d: np.ndarray) -> np.ndarray:
    """q: (nblk, 256) uint8 codes 0..2 (t + 1); d: (nblk,) f16. In each 128-weight half, byte m holds weights
    m, m+32, m+64, m+96 in bits 1-0, 3-2, 5-4, 7-6 (LSB first)."""
    nblk = len(q)
    g = q.reshape(nblk, 2, 4, 32)
    qs = g[:, :, 0] | (g[:, :, 1] << 2) | (g[:, :, 2] << 4) | (g[:, :, 3] << 6)
    out = np.empty((nblk, TQ2_0_BYTES), dtype=np.uint8)
    out[:, :64] = qs.reshape(nblk, 64)
    out[:, 64:] = d.astype("<f2").view(np.uint8).reshape(nblk, 2)
    return out.reshape(-1)


def tq2_0_unpack_q(raw, nblk: int) -> tuple[np.ndarray, np.ndarray]:
    r = _raw_bytes(raw, nblk * TQ2_0_BYTES, "TQ2_0").reshape(nblk, TQ2_0_BYTES)
    qs = r[:, :64].reshape(nblk, 2, 1, 32)
    q = (qs >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)) & 3
    d = np.ascontiguousarray(r[:, 64:]).view("<f2").reshape(nblk)
    return q.reshape(nblk, QK_K), d


_TRITS_TO_BYTE = ((np.arange(243) * 256 + 242) // 243).astype(np.uint8)   # v (5 trits) -> ceil(v * 256 / 243)


def _pack_trits(t: np.ndarray, ntrits: int) -> np.ndarray:
    """t: (..., ntrits, m) trits 0..2, first most significant -> (..., m) bytes ceil(v * 256 / 243), v the trits as
    a 5-digit base-3 number (a 4-trit group is its first 4 digits). Horner over contiguous slices: a weighted sum over
    the trit axis was 2.4x slower (TQ1_0 conversion of 2B4T: 16 s of packing)."""
    v = t[..., 0, :].astype(np.uint16)
    for n in range(1, ntrits):
        v *= 3
        v += t[..., n, :]
    if ntrits < 5:
        v *= 3 ** (5 - ntrits)
    return _TRITS_TO_BYTE[v]


def _unpack_trits(b: np.ndarray, ntrits: int) -> np.ndarray:
    """(..., m) bytes -> (..., ntrits, m) trits: trit n = ((uint8)(b * 3^n) * 3) >> 8."""
    p = _POW3[:ntrits].reshape(ntrits, 1)
    shifted = (b[..., None, :].astype(np.uint16) * p) & 0xFF
    return ((shifted * 3) >> 8).astype(np.uint8)


def tq1_0_pack_q(q: np.ndarray, d: np.ndarray) -> np.ndarray:
    """q: (nblk, 256) codes 0..2. qs[0:32] hold weights m + 32n (n = 0..4), qs[32:48] hold 160 + m + 16n,
    qh[j] holds 240 + j + 4m (m = 0..3, fifth trit zero)."""
    nblk = len(q)
    out = np.empty((nblk, TQ1_0_BYTES), dtype=np.uint8)
    out[:, 0:32] = _pack_trits(q[:, :160].reshape(nblk, 5, 32), 5)
    out[:, 32:48] = _pack_trits(q[:, 160:240].reshape(nblk, 5, 16), 5)
    out[:, 48:52] = _pack_trits(q[:, 240:].reshape(nblk, 4, 4), 4)
    out[:, 52:] = d.astype("<f2").view(np.uint8).reshape(nblk, 2)
    return out.reshape(-1)


def tq1_0_unpack_q(raw, nblk: int) -> tuple[np.ndarray, np.ndarray]:
    r = _raw_bytes(raw, nblk * TQ1_0_BYTES, "TQ1_0").reshape(nblk, TQ1_0_BYTES)
    q = np.empty((nblk, QK_K), dtype=np.uint8)
    q[:, :160] = _unpack_trits(r[:, 0:32], 5).reshape(nblk, 160)
    q[:, 160:240] = _unpack_trits(r[:, 32:48], 5).reshape(nblk, 80)
    q[:, 240:] = _unpack_trits(r[:, 48:52], 4).reshape(nblk, 16)
    d = np.ascontiguousarray(r[:, 52:]).view("<f2").reshape(nblk)
    return q, d


# ---- TL1 / TL2 ---------------------------------------------------------------------------------------------

TL_RULE = 1


class TLParams(NamedTuple):
    BM: int      # rows per tile
    BK: int      # columns (weights) per tile
    bm: int      # rows per SIMD sub-tile


# setup_env.py codegen presets, (M, K) -> (BM, BK, bm). Last writer wins in bitnet.cpp; no (M, K) repeats here.
_TL1_PRESETS = {
    (1536, 4096): (256, 128, 32), (1536, 1536): (128, 64, 64), (4096, 1536): (256, 128, 32),            # large
    (3200, 8640): (160, 64, 32), (3200, 3200): (320, 128, 64), (8640, 3200): (320, 64, 32),             # 3B
    (14336, 4096): (256, 128, 32), (4096, 14336): (128, 64, 64), (1024, 4096): (256, 128, 32),          # Llama3-8B
    (4096, 4096): (128, 64, 64),
}
_TL2_PRESETS = {
    (1536, 4096): (256, 96, 32), (1536, 1536): (128, 192, 32), (4096, 1536): (256, 96, 32),
    (3200, 8640): (160, 96, 32), (3200, 3200): (320, 96, 32), (8640, 3200): (320, 96, 32),
    (14336, 4096): (256, 96, 32), (4096, 14336): (128, 96, 32), (1024, 4096): (256, 96, 32),
    (4096, 4096): (128, 96, 32),
}


_TL2_BK = 96     # generic rule's TL2 tile width (the presets' usual value)


def _tl2_packed_bytes(M: int, K: int, BK: int) -> int:
    """Unpadded TL2 data: K3/6 magnitude bytes + K3/24 sign bytes per row, then K2/4 tail bytes per row."""
    K3 = K - K % BK
    return M * K3 // 6 + M * K3 // 24 + M * (K - K3) // 4


def _largest_bm(M: int) -> int:
    return max(b for b in range(32, 257, 32) if M % b == 0)


def tl_check(type_name: str, rows: int, cols: int) -> str | None:
    """None when the TL layout can hold (rows, cols), else the reason."""
    if (rows, cols) in (_TL1_PRESETS if type_name == "TL1" else _TL2_PRESETS):
        return None
    if rows <= 0 or cols <= 0:
        return f"{type_name} needs a non-empty matrix, got ({rows}, {cols})"
    if rows % 32:
        return f"{type_name} needs the row count (out_features, {rows}) to be a multiple of 32"
    if type_name == "TL1" and cols % 8:
        return f"TL1 needs the row length (in_features, {cols}) to be a multiple of 8"
    if type_name == "TL2" and cols % 32:
        return f"TL2 needs the row length (in_features, {cols}) to be a multiple of 32 (the K % 96 tail is TL1-coded)"
    if type_name == "TL2" and _tl2_packed_bytes(rows, cols, _TL2_BK) > tl2_data_bytes(rows, cols):
        return f"TL2 data of ({rows}, {cols}) would not fit the size formula of ggml_nbytes"
    return None


def tl_params(type_name: str, rows: int, cols: int) -> TLParams:
    """Tiling of a TL1/TL2 matrix under rule 1 (module docstring). Raises ValueError for shapes it cannot hold."""
    why = tl_check(type_name, rows, cols)
    if why:
        raise ValueError(why)
    preset = (_TL1_PRESETS if type_name == "TL1" else _TL2_PRESETS).get((rows, cols))
    if preset:
        return TLParams(*preset)
    if type_name == "TL1":
        return TLParams(_largest_bm(rows), min(128, cols & -cols), 32)
    return TLParams(_largest_bm(rows), _TL2_BK, 32)


def tl1_data_bytes(M: int, K: int) -> int:
    return M * K // 4


def tl2_data_bytes(M: int, K: int) -> int:
    """The padded TL2 data size P (before the scale), ggml_nbytes' formula in C integer arithmetic."""
    return _c_div(_c_div((K - 256) * M, 3) * 5, 8) + 256 * M // 2 * 4 // 8


def tl_scale_offset(type_name: str, M: int, K: int) -> int:
    return tl1_data_bytes(M, K) if type_name == "TL1" else _roundup32(tl2_data_bytes(M, K))


def tl_nbytes(type_name: str, M: int, K: int) -> int:
    return tl_scale_offset(type_name, M, K) + 32


# TL1 tile order as a single transpose of the index matrix (M, K/2).
_TL1_AXES = (0, 4, 1, 5, 2, 6, 3, 7)
# TL2: magnitude / two-weight nibble streams, and the sign stream.
_TL2_NIB_AXES = (0, 3, 1, 4, 2, 5)
_TL2_SIGN_AXES = (0, 4, 1, 5, 6, 2, 3)
_GROUP_ORDER = np.array([0, 2, 1, 3])    # 8-byte groups inside a 32-byte run; its own inverse


def _tl1_tile_shape(M: int, K: int, p: TLParams) -> tuple:
    by = 256 // p.bm
    return (M // p.BM, p.BM // p.bm, p.bm // 16, 16, K // p.BK, p.BK // by, by // 4, 2)


def _nibbles_to_bytes(idx: np.ndarray) -> np.ndarray:
    pairs = idx.reshape(-1, 2)
    return ((pairs[:, 0] << 4) | pairs[:, 1]).astype(np.uint8)


def _bytes_to_nibbles(b: np.ndarray) -> np.ndarray:
    return np.stack([b >> 4, b & 15], axis=-1).reshape(-1)


def _tl1_tiles(idx: np.ndarray, p: TLParams) -> np.ndarray:
    """(M, K/2) indices -> TL1 bytes (M*K/4)."""
    M, K = idx.shape[0], idx.shape[1] * 2
    t = idx.reshape(_tl1_tile_shape(M, K, p)).transpose(_TL1_AXES)
    return _nibbles_to_bytes(t)


def _tl1_untiles(b: np.ndarray, M: int, K: int, p: TLParams) -> np.ndarray:
    shape = _tl1_tile_shape(M, K, p)
    t = _bytes_to_nibbles(b).reshape([shape[a] for a in _TL1_AXES])
    return t.transpose(np.argsort(_TL1_AXES)).reshape(M, K // 2)


def _tl2_nib_shape(M: int, Kv: int, BM: int, per_tile: int) -> tuple:
    """Kv values per row (K/3 magnitudes or K/2 indices), per_tile values per BK tile, 2 values per byte."""
    return (M // BM, BM // 32, 32, Kv // per_tile, per_tile // 2, 2)


def _tl2_nib_tiles(v: np.ndarray, BM: int, per_tile: int) -> np.ndarray:
    M, Kv = v.shape
    t = v.reshape(_tl2_nib_shape(M, Kv, BM, per_tile)).transpose(_TL2_NIB_AXES)   # (..., rr=32, 2)
    b = _nibbles_to_bytes(t).reshape(-1, 4, 8)
    return b[:, _GROUP_ORDER].reshape(-1)


def _tl2_nib_untiles(b: np.ndarray, M: int, Kv: int, BM: int, per_tile: int) -> np.ndarray:
    shape = _tl2_nib_shape(M, Kv, BM, per_tile)
    b = b.reshape(-1, 4, 8)[:, _GROUP_ORDER].reshape(-1)
    t = _bytes_to_nibbles(b).reshape([shape[a] for a in _TL2_NIB_AXES])
    return t.transpose(np.argsort(_TL2_NIB_AXES)).reshape(M, Kv)


def _tl2_sign_shape(M: int, K3: int, p: TLParams) -> tuple:
    return (M // p.BM, p.BM // 32, 2, 16, K3 // p.BK, p.BK // 24, 8)


def _tl2_sign_tiles(s: np.ndarray, p: TLParams) -> np.ndarray:
    """(M, K3/3) sign bits -> 32-byte runs of 16 little-endian uint16, sign i of column j in bit 15 - i."""
    M, K3 = s.shape[0], s.shape[1] * 3
    t = s.reshape(_tl2_sign_shape(M, K3, p)).transpose(_TL2_SIGN_AXES).reshape(-1, 16, 16).astype(np.uint16)
    words = (t << np.arange(15, -1, -1, dtype=np.uint16).reshape(1, 16, 1)).sum(axis=1, dtype=np.uint16)
    return words.astype("<u2").view(np.uint8).reshape(-1)


def _tl2_sign_untiles(b: np.ndarray, M: int, K3: int, p: TLParams) -> np.ndarray:
    shape = _tl2_sign_shape(M, K3, p)
    words = np.ascontiguousarray(b).view("<u2").reshape(-1, 1, 16)
    bits = ((words >> np.arange(15, -1, -1, dtype=np.uint16).reshape(1, 16, 1)) & 1).astype(np.uint8)
    t = bits.reshape([shape[a] for a in _TL2_SIGN_AXES])
    return t.transpose(np.argsort(_TL2_SIGN_AXES)).reshape(M, K3 // 3)


def _tl2_split(K: int, p: TLParams) -> tuple[int, int]:
    two_k = K % p.BK
    return K - two_k, two_k


def tl_pack(type_name: str, codes: np.ndarray, scale: float) -> np.ndarray:
    c = _codes_2d(codes, np.shape(codes))
    if c.ndim != 2:
        raise ValueError(f"{type_name} packs a 2-D matrix, got shape {c.shape}")
    M, K = c.shape
    p = tl_params(type_name, M, K)
    out = np.zeros(tl_nbytes(type_name, M, K), dtype=np.uint8)
    if type_name == "TL1":
        idx = (3 * c[:, 0::2] + c[:, 1::2] + 4).astype(np.uint8)
        data = _tl1_tiles(idx, p)
    else:
        K3, K2 = _tl2_split(K, p)
        parts = []
        if K3:
            t = c[:, :K3].reshape(M, K3 // 3, 3).astype(np.int8)
            v = 9 * t[..., 0] + 3 * t[..., 1] + t[..., 2]
            parts.append(_tl2_nib_tiles(np.abs(v).astype(np.uint8), p.BM, p.BK // 3))
            parts.append(_tl2_sign_tiles((v < 0).astype(np.uint8), p))
        if K2:
            tail = c[:, K3:]
            idx = (3 * tail[:, 0::2] + tail[:, 1::2] + 4).astype(np.uint8)
            parts.append(_tl2_nib_tiles(idx, p.BM, 16))
        data = np.concatenate(parts)
    out[:data.size] = data
    at = tl_scale_offset(type_name, M, K)
    out[at:at + 4] = _scale_bytes(scale)
    return out


def _trits_from_index(idx: np.ndarray, what: str) -> np.ndarray:
    """TL1-style idx = 3*w0 + w1 + 4 -> (..., 2) int8."""
    if idx.size and idx.max() > 8:
        raise ValueError(f"{what}: pair index {int(idx.max())} out of range 0..8")
    idx = idx.astype(np.int8)
    return np.stack([idx // 3 - 1, idx % 3 - 1], axis=-1)


def tl_unpack(type_name: str, raw, shape: tuple) -> tuple[np.ndarray, float]:
    if len(shape) != 2:
        raise ValueError(f"{type_name} holds a 2-D matrix, got shape {tuple(shape)}")
    M, K = int(shape[0]), int(shape[1])
    p = tl_params(type_name, M, K)
    r = _raw_bytes(raw, tl_nbytes(type_name, M, K), type_name)
    scale = _read_scale(r, tl_scale_offset(type_name, M, K))
    if type_name == "TL1":
        idx = _tl1_untiles(r[:tl1_data_bytes(M, K)], M, K, p)
        return _trits_from_index(idx, "TL1").reshape(M, K), scale
    K3, K2 = _tl2_split(K, p)
    codes = np.empty((M, K), dtype=np.int8)
    pos = 0
    if K3:
        n_mag, n_sign = M * K3 // 6, M * K3 // 24
        mag = _tl2_nib_untiles(r[pos:pos + n_mag], M, K3 // 3, p.BM, p.BK // 3)
        sign = _tl2_sign_untiles(r[pos + n_mag:pos + n_mag + n_sign], M, K3, p)
        pos += n_mag + n_sign
        if mag.max() > 13:
            raise ValueError(f"TL2: magnitude {int(mag.max())} out of range 0..13")
        u = np.where(sign == 1, -mag.astype(np.int8), mag.astype(np.int8)) + 13     # 9(w0+1) + 3(w1+1) + (w2+1)
        codes[:, :K3] = np.stack([u // 9 - 1, u // 3 % 3 - 1, u % 3 - 1], axis=-1).reshape(M, K3)
    if K2:
        idx = _tl2_nib_untiles(r[pos:pos + M * K2 // 4], M, K2 // 2, p.BM, 16)
        codes[:, K3:] = _trits_from_index(idx, "TL2").reshape(M, K2)
    return codes, scale
