"""Q6_K, Q5_K, Q4_K and Q4_0 in numpy: ggml's smaller float-weight types, for the output head / tied embedding; and
Q8_K, the K-quant heads' activations.

`q{6,5,4}_k_quantize` run the C quantizer (_kernels/quant_k.c); the `*_numpy` functions are the readable oracle it
is tested against, byte for byte. All are byte-compatible with ggml (the file's bytes are what llama.cpp's reference
quantizers write for the same float32 input) and registered in the type table (`types.py`). Q6_K is the head type
bitnet.cpp's README recommends.

Q6_K (ggml id 14): super-blocks of 256 weights, 210 bytes each:
    ql[128]      low 4 bits of the 6-bit codes q + 32
    qh[64]       high 2 bits
    scales[16]   int8 scale of each 16-weight sub-block
    d            f16 super-block scale
  weight j (0..255) sits in half h = j // 128, at l = j % 32 and quarter k = (j % 128) // 32:
    low nibble of ql[64h + l + 32(k & 1)] (k < 2) or its high nibble (k >= 2); bits 2k..2k+1 of qh[32h + l].
  value = d * scales[j // 16] * (q - 32)
  Quantization is ggml's quantize_row_q6_K_ref: per sub-block the weighted (w = x^2) least-squares scale search of
  make_qx_quants (nmax 32, 19 trial scales), then the 16 scales quantized to int8 against the largest, then the
  codes recomputed against the rounded scales. Every step is done in float32 in ggml's order (sums run
  sequentially over the 16 values, products not fused), so the bytes match a reference build without FMA
  contraction (ggml-base is built for the baseline ISA on x86-64).
Q4_0 (ggml id 2): blocks of 32 weights, 18 bytes: f16 d, then qs[16] with weight j in the low nibble of qs[j]
  and weight j + 16 in its high nibble; value = d * (q - 8), d = (signed max-|x| value) / -8.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

QK_K = 256
Q6_K_BYTES = 210
_Q6_K_DTYPE = np.dtype([("ql", "u1", (128,)), ("qh", "u1", (64,)), ("scales", "i1", (16,)), ("d", "<f2")])
assert _Q6_K_DTYPE.itemsize == Q6_K_BYTES

Q4_0_BLOCK = 32
_Q4_0_DTYPE = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])

GROUP_MAX_EPS = np.float32(1e-15)
_CHUNK = 1 << 16  # sub-blocks per numpy pass: bounds the temporaries (~30 MB) for big embeddings


def _seq_sum(a: np.ndarray) -> np.ndarray:
    """Column sums of a (n, rows) array accumulated top to bottom in float32, as a C loop `s += a[i]` does
    (rows along the contiguous axis, so each step is one vector add)."""
    s = a[0].copy()
    for i in range(1, len(a)):
        s += a[i]
    return s


def _first_absmax(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(max |x|, the signed value there) per row, the first one on ties (ggml's `if (ax > amax)` scan)."""
    ax = np.abs(x)
    idx = ax.argmax(axis=1)
    rows = np.arange(len(x))
    return ax[rows, idx], x[rows, idx]


def _make_qx_quants_rmse1(x: np.ndarray, nmax: int) -> tuple[np.ndarray, np.ndarray]:
    """ggml's make_qx_quants(n, nmax, x, L, rmse_type=1, qw=NULL) on every row of x (n = row length):
    returns (L as uint8 codes l + nmax, scale) with scale ~ x / l (negative where the row's extreme is positive)."""
    f32 = np.float32
    amax, mx = _first_absmax(x)
    zero = amax < GROUP_MAX_EPS
    mx = np.where(zero, f32(1), mx)
    xt = np.ascontiguousarray(x.T)          # (n, rows): the sequential sums run over the first axis
    wx = (xt * xt) * xt                     # w * x with w = x * x (rmse_type 1)
    w = xt * xt

    tmp = np.empty_like(xt)

    def trial(iscale):
        lq = np.multiply(iscale, xt)
        np.rint(lq, out=lq)
        np.clip(lq, -nmax, nmax - 1, out=lq)
        sumlx = _seq_sum(np.multiply(wx, lq, out=tmp))
        np.multiply(w, lq, out=tmp)
        return lq, sumlx, _seq_sum(np.multiply(tmp, lq, out=tmp))

    with np.errstate(divide="ignore", invalid="ignore"):
        lq, sumlx, suml2 = trial(f32(-nmax) / mx)
        scale = np.where(suml2 != 0, sumlx / suml2, f32(0)).astype(f32)
        best = scale * sumlx
        for step in range(-9, 10):
            if step == 0:
                continue
            iscale = -(f32(nmax) + f32(0.1) * f32(step)) / mx
            lt, sumlx, suml2 = trial(iscale)
            better = (suml2 > 0) & (sumlx * sumlx > best * suml2)
            if better.any():
                lq[:, better] = lt[:, better]
                scale = np.where(better, sumlx / suml2, scale).astype(f32)
                best = np.where(better, scale * sumlx, best).astype(f32)
    codes = (lq.T + nmax).astype(np.uint8)
    codes[zero] = 0
    scale[zero] = 0
    return codes, scale


def _q6_k_blocks(x: np.ndarray) -> np.ndarray:
    """float32 (n_blocks, 256) -> structured Q6_K blocks."""
    f32 = np.float32
    nb = len(x)
    codes, scales = _make_qx_quants_rmse1(x.reshape(nb * 16, 16), 32)
    codes, scales = codes.reshape(nb, 16, 16), scales.reshape(nb, 16)
    max_abs, max_scale = _first_absmax(scales)
    live = max_abs >= GROUP_MAX_EPS
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        iscale = np.where(live, f32(-128) / np.where(live, max_scale, f32(1)), f32(0)).astype(f32)
        d16 = np.where(live, f32(1) / iscale, f32(0)).astype(np.float16)
        sc = np.minimum(127, np.rint(iscale[:, None] * scales)).astype(np.int8)
        sc[~live] = 0
        d = d16.astype(f32)[:, None] * sc.astype(f32)                       # (nb, 16)
        requant = np.clip(np.rint(x.reshape(nb, 16, 16) / d[:, :, None]), -32, 31) + 32
    use = (d != 0)[:, :, None]
    codes = np.where(use, requant, codes).astype(np.uint8).reshape(nb, 256)
    codes[~live] = 0

    out = np.zeros(nb, dtype=_Q6_K_DTYPE)
    for h in range(2):
        q = codes[:, 128 * h:128 * (h + 1)].reshape(nb, 4, 32)
        out["ql"][:, 64 * h:64 * h + 32] = (q[:, 0] & 0xF) | ((q[:, 2] & 0xF) << 4)
        out["ql"][:, 64 * h + 32:64 * h + 64] = (q[:, 1] & 0xF) | ((q[:, 3] & 0xF) << 4)
        out["qh"][:, 32 * h:32 * h + 32] = ((q[:, 0] >> 4) | ((q[:, 1] >> 4) << 2) | ((q[:, 2] >> 4) << 4)
                                            | ((q[:, 3] >> 4) << 6))
    out["scales"] = sc
    out["d"] = np.where(live, d16, np.float16(0))
    return out


def _in_chunks(x: np.ndarray, dtype: np.dtype, blocks_fn) -> np.ndarray:
    """blocks_fn over chunks of 4096 blocks of 256 floats, on every core (numpy and the C quantizer release the GIL
    in their loops), into one array of `dtype` blocks, returned as bytes."""
    blocks = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, QK_K)
    step = _CHUNK // 16
    out = np.empty(len(blocks), dtype=dtype)

    def run(i):
        out[i:i + step] = blocks_fn(blocks[i:i + step])

    starts = range(0, len(blocks), step)
    if len(starts) > 1:
        with ThreadPoolExecutor(min(len(starts), os.cpu_count() or 1)) as pool:
            list(pool.map(run, starts))
    else:
        for i in starts:
            run(i)
    return out.view(np.uint8)


def _c_quantize(name: str, x: np.ndarray) -> np.ndarray:
    """Q6_K / Q5_K / Q4_K bytes by the C quantizer (_kernels/quant_k.c, the same bytes as the numpy code here, which
    is its test oracle): a 2B4T head in seconds."""
    from bitgguf import _core
    dtype = {"Q6_K": _Q6_K_DTYPE, "Q5_K": _Q5_K_DTYPE, "Q4_K": _Q4_K_DTYPE}[name]
    return _in_chunks(x, dtype, lambda b: _core.quantize_k(name, b).view(dtype))


def q6_k_quantize(x: np.ndarray) -> np.ndarray:
    return _c_quantize("Q6_K", x)


def q6_k_quantize_numpy(x: np.ndarray) -> np.ndarray:
    return _in_chunks(x, _Q6_K_DTYPE, _q6_k_blocks)


def q6_k_codes(raw: np.ndarray, n_blocks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q6_K bytes -> (signed codes q - 32 as int8 (n_blocks, 256), int8 scales (n_blocks, 16), f16 d (n_blocks,))."""
    b = np.frombuffer(raw, dtype=_Q6_K_DTYPE, count=n_blocks)
    codes = np.empty((n_blocks, 2, 4, 32), dtype=np.int8)
    for h in range(2):
        ql0, ql1 = b["ql"][:, 64 * h:64 * h + 32], b["ql"][:, 64 * h + 32:64 * h + 64]
        qh = b["qh"][:, 32 * h:32 * h + 32]
        low = (ql0 & 0xF, ql1 & 0xF, ql0 >> 4, ql1 >> 4)
        for k in range(4):
            codes[:, h, k] = (low[k] | (((qh >> (2 * k)) & 3) << 4)).astype(np.int8) - 32
    return codes.reshape(n_blocks, QK_K), b["scales"], b["d"]


def q6_k_dequantize(raw: np.ndarray, n: int) -> np.ndarray:
    """As ggml's dequantize_row_q6_K: (d * scale) * q in float32."""
    codes, scales, d = q6_k_codes(raw, n // QK_K)
    ds = d.astype(np.float32)[:, None] * scales.astype(np.float32)             # exact (11 x 8 bits)
    return (np.repeat(ds, 16, axis=1) * codes.astype(np.float32)).reshape(-1)


def q8_k_quantize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ggml's quantize_row_q8_K, the K-quant heads' activations, on float32 (..., n) with n % 256 == 0:
    (int8 codes (..., n), f32 scales (..., n / 256)); per 256 values d = m / -128 for m the value of largest |x|
    (the first on ties), q = min(127, round_half_even(x * (-128 / m)))."""
    f32 = np.float32
    x = np.asarray(x, dtype=f32)
    blocks = x.reshape(-1, QK_K)
    amax, mx = _first_absmax(blocks)
    live = amax > 0
    with np.errstate(divide="ignore"):
        iscale = np.where(live, f32(-128) / np.where(live, mx, f32(1)), f32(0)).astype(f32)
        d = np.where(live, f32(1) / np.where(live, iscale, f32(1)), f32(0)).astype(f32)
    q = np.minimum(127, np.rint(blocks * iscale[:, None])).astype(np.int8)
    return q.reshape(x.shape), d.reshape(x.shape[:-1] + (x.shape[-1] // QK_K,))


def q8_k_round_trip(x: np.ndarray) -> np.ndarray:
    """x as the K-quant heads see it: d * q of q8_k_quantize, float32."""
    q, d = q8_k_quantize(x)
    shape = q.shape
    return (q.reshape(-1, QK_K).astype(np.float32) * d.reshape(-1, 1)).reshape(shape)


def q4_0_quantize(x: np.ndarray) -> np.ndarray:
    f32 = np.float32
    blocks = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, Q4_0_BLOCK)
    _, mx = _first_absmax(blocks)
    d = mx / f32(-8)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, f32(1) / d, f32(0)).astype(f32)
    # ggml: MIN(15, (int8_t)(x * id + 8.5f)); the sum is in [0.5, 16.5], so the cast truncates toward zero
    q = np.minimum(15, np.trunc(blocks * inv[:, None] + f32(8.5))).astype(np.uint8)
    out = np.empty(len(blocks), dtype=_Q4_0_DTYPE)
    out["d"] = d.astype(np.float16)
    out["qs"] = q[:, :16] | (q[:, 16:] << 4)
    return out.view(np.uint8)


def q4_0_dequantize(raw: np.ndarray, n: int) -> np.ndarray:
    b = np.frombuffer(raw, dtype=_Q4_0_DTYPE, count=n // Q4_0_BLOCK)
    q = np.concatenate([b["qs"] & 0xF, b["qs"] >> 4], axis=1).astype(np.float32) - 8
    return (q * b["d"].astype(np.float32)[:, None]).reshape(-1)


# ---- Q5_K / Q4_K: 256-weight super-blocks of eight 32-weight sub-blocks, each with a 6-bit scale and min --------
# Q5_K (ggml id 13, 176 bytes): f16 d, f16 dmin, scales[12], qh[32], qs[128]
# Q4_K (ggml id 12, 144 bytes): f16 d, f16 dmin, scales[12], qs[128]
# value = d * sc_j * q - dmin * m_j for weight j in sub-block j // 32, q in 0..31 (Q5_K) or 0..15 (Q4_K).
# scales[12] packs the eight 6-bit (sc, m) pairs: j < 4: sc = s[j] & 63, m = s[j + 4] & 63; j >= 4:
# sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4, m = (s[j + 4] >> 4) | (s[j] >> 6) << 4  (ggml's get_scale_min_k4).
# Codes: pair p = 0..3 of sub-blocks (2p, 2p + 1) sits in qs[32p .. 32p + 31], low nibble = sub-block 2p; Q5_K's fifth
# bit of weight 64p + l is bit 2p of qh[l], of weight 64p + 32 + l bit 2p + 1.
# Quantization is ggml's quantize_row_q{5,4}_K_ref (make_qkx2_quants: weighted least squares over trial scales
# with a free min), float32 in ggml's order, as Q6_K above.

_Q5_K_DTYPE = np.dtype([("d", "<f2"), ("dmin", "<f2"), ("scales", "u1", (12,)), ("qh", "u1", (32,)),
                        ("qs", "u1", (128,))])
_Q4_K_DTYPE = np.dtype([("d", "<f2"), ("dmin", "<f2"), ("scales", "u1", (12,)), ("qs", "u1", (128,))])
Q5_K_BYTES, Q4_K_BYTES = _Q5_K_DTYPE.itemsize, _Q4_K_DTYPE.itemsize
assert (Q5_K_BYTES, Q4_K_BYTES) == (176, 144)


def _make_qkx2_quants(x: np.ndarray, w: np.ndarray, nmax: int, rmin: float, rdelta: float, nstep: int):
    """ggml's make_qkx2_quants(n, nmax, x, weights, L, &the_min, Laux, rmin, rdelta, nstep, use_mad=false) on every
    row of x: returns (L uint8, scale, the_min) with x ~ scale * L - the_min."""
    f32 = np.float32
    xt, wt = np.ascontiguousarray(x.T), np.ascontiguousarray(w.T)     # (n, rows): sums run over axis 0
    mn = np.minimum(xt.min(axis=0), f32(0))
    mx = xt.max(axis=0)
    flat = mx == mn
    mn0 = mn
    rng = np.where(flat, f32(1), mx - mn)
    sum_w = _seq_sum(wt)
    sum_x = _seq_sum(wt * xt)
    d = xt - mn                                                        # x[i] - min, as the C loops compute it
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        iscale = f32(nmax) / rng
        scale = f32(1) / iscale
        L = np.clip(np.rint(iscale * d), 0, nmax)
        diff = (scale * L + mn) - xt
        best = _seq_sum(wt * (diff * diff))
        for step in range(nstep + 1):
            # ggml keeps using `min` after an improvement replaced it (in the range and the offset)
            iscale = (f32(rmin) + f32(rdelta) * f32(step) + f32(nmax)) / np.where(flat, f32(1), mx - mn)
            la = np.clip(np.rint(iscale * (xt - mn)), 0, nmax)
            wl = wt * la
            sum_l, sum_l2, sum_xl = _seq_sum(wl), _seq_sum(wl * la), _seq_sum(wl * xt)
            D = sum_w * sum_l2 - sum_l * sum_l
            this_scale = (sum_w * sum_xl - sum_x * sum_l) / D
            this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D
            pos = this_min > 0
            this_min = np.where(pos, f32(0), this_min)
            this_scale = np.where(pos, sum_xl / sum_l2, this_scale)
            diff = (this_scale * la + this_min) - xt
            cur = _seq_sum(wt * (diff * diff))
            better = (D > 0) & (cur < best)
            if better.any():
                L[:, better] = la[:, better]
                best = np.where(better, cur, best)
                scale = np.where(better, this_scale, scale)
                mn = np.where(better, this_min, mn)
    L[:, flat] = 0
    scale = np.where(flat, f32(0), scale).astype(f32)
    return L.T.astype(np.uint8), scale, (-np.where(flat, mn0, mn)).astype(f32)


def _k_blocks(x: np.ndarray, nmax: int, rmin: float, nstep: int):
    """The shared part of quantize_row_q{4,5}_K_ref on (nb, 256) floats: (d f16, dmin f16, scales (nb, 12) uint8,
    codes (nb, 256) uint8 in 0..nmax)."""
    f32 = np.float32
    nb = len(x)
    sub = x.reshape(nb * 8, 32)
    av_x = np.sqrt(_seq_sum(np.ascontiguousarray((sub * sub).T)) / f32(32))
    w = av_x[:, None] + np.abs(sub)
    L, scales, mins = _make_qkx2_quants(sub, w, nmax, rmin, 0.1, nstep)
    L, scales, mins = L.reshape(nb, 256), scales.reshape(nb, 8), mins.reshape(nb, 8)
    max_scale = np.maximum(scales.max(axis=1), f32(0))
    max_min = np.maximum(mins.max(axis=1), f32(0))
    with np.errstate(divide="ignore"):
        inv_scale = np.where(max_scale > 0, f32(63) / max_scale, f32(0)).astype(f32)
        inv_min = np.where(max_min > 0, f32(63) / max_min, f32(0)).astype(f32)
    # uint8_t ls = nearest_int(...) keeps the low byte, then MIN(63, ls)
    ls = np.minimum(np.rint(inv_scale[:, None] * scales).astype(np.int64) & 0xFF, 63).astype(np.uint8)
    lm = np.minimum(np.rint(inv_min[:, None] * mins).astype(np.int64) & 0xFF, 63).astype(np.uint8)
    packed = np.zeros((nb, 12), dtype=np.uint8)
    packed[:, 0:4] = ls[:, :4] | ((ls[:, 4:] >> 4) << 6)
    packed[:, 4:8] = lm[:, :4] | ((lm[:, 4:] >> 4) << 6)
    packed[:, 8:12] = (ls[:, 4:] & 0xF) | ((lm[:, 4:] & 0xF) << 4)
    d16 = (max_scale / f32(63)).astype(np.float16)
    dmin16 = (max_min / f32(63)).astype(np.float16)
    dd = d16.astype(f32)[:, None] * ls.astype(f32)                    # (nb, 8)
    dm = dmin16.astype(f32)[:, None] * lm.astype(f32)
    with np.errstate(divide="ignore", invalid="ignore"):
        req = np.clip(np.rint((x.reshape(nb, 8, 32) + dm[:, :, None]) / dd[:, :, None]), 0, nmax)
    L = np.where((dd != 0)[:, :, None], req, L.reshape(nb, 8, 32)).astype(np.uint8).reshape(nb, 256)
    return d16, dmin16, packed, L


def _q5_k_blocks(x: np.ndarray) -> np.ndarray:
    d16, dmin16, packed, L = _k_blocks(x, 31, -0.5, 15)
    out = np.zeros(len(x), dtype=_Q5_K_DTYPE)
    out["d"], out["dmin"], out["scales"] = d16, dmin16, packed
    q = L.reshape(len(x), 4, 2, 32)
    out["qs"] = ((q[:, :, 0] & 0xF) | ((q[:, :, 1] & 0xF) << 4)).reshape(len(x), 128)
    qh = np.zeros((len(x), 32), dtype=np.uint8)
    for p in range(4):
        qh |= ((q[:, p, 0] >> 4) << (2 * p)) | ((q[:, p, 1] >> 4) << (2 * p + 1))
    out["qh"] = qh
    return out


def _q4_k_blocks(x: np.ndarray) -> np.ndarray:
    d16, dmin16, packed, L = _k_blocks(x, 15, -1.0, 20)
    out = np.zeros(len(x), dtype=_Q4_K_DTYPE)
    out["d"], out["dmin"], out["scales"] = d16, dmin16, packed
    q = L.reshape(len(x), 4, 2, 32)
    out["qs"] = (q[:, :, 0] | (q[:, :, 1] << 4)).reshape(len(x), 128)
    return out


def q5_k_quantize(x: np.ndarray) -> np.ndarray:
    return _c_quantize("Q5_K", x)


def q4_k_quantize(x: np.ndarray) -> np.ndarray:
    return _c_quantize("Q4_K", x)


def q5_k_quantize_numpy(x: np.ndarray) -> np.ndarray:
    return _in_chunks(x, _Q5_K_DTYPE, _q5_k_blocks)


def q4_k_quantize_numpy(x: np.ndarray) -> np.ndarray:
    return _in_chunks(x, _Q4_K_DTYPE, _q4_k_blocks)


def _k_scale_min(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scales[12] -> (sc, m), each (nb, 8) in 0..63."""
    s = packed.astype(np.uint8)
    sc = np.concatenate([s[:, 0:4] & 63, (s[:, 8:12] & 0xF) | ((s[:, 0:4] >> 6) << 4)], axis=1)
    m = np.concatenate([s[:, 4:8] & 63, (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)], axis=1)
    return sc, m


def _k_dequantize(b: np.ndarray, q: np.ndarray) -> np.ndarray:
    """As ggml's dequantize_row_q{4,5}_K: (d * sc) * q - dmin * m, in float32."""
    sc, m = _k_scale_min(b["scales"])
    d1 = b["d"].astype(np.float32)[:, None] * sc.astype(np.float32)
    m1 = b["dmin"].astype(np.float32)[:, None] * m.astype(np.float32)
    return (d1[:, :, None] * q.reshape(len(b), 8, 32).astype(np.float32) - m1[:, :, None]).reshape(-1)


def q5_k_codes(raw: np.ndarray, n_blocks: int) -> np.ndarray:
    b = np.frombuffer(raw, dtype=_Q5_K_DTYPE, count=n_blocks)
    qs = b["qs"].reshape(n_blocks, 4, 32)
    q = np.empty((n_blocks, 4, 2, 32), dtype=np.uint8)
    for p in range(4):
        q[:, p, 0] = (qs[:, p] & 0xF) | (((b["qh"] >> (2 * p)) & 1) << 4)
        q[:, p, 1] = (qs[:, p] >> 4) | (((b["qh"] >> (2 * p + 1)) & 1) << 4)
    return q.reshape(n_blocks, 256)


def q5_k_dequantize(raw: np.ndarray, n: int) -> np.ndarray:
    b = np.frombuffer(raw, dtype=_Q5_K_DTYPE, count=n // QK_K)
    return _k_dequantize(b, q5_k_codes(raw, n // QK_K))


def q4_k_dequantize(raw: np.ndarray, n: int) -> np.ndarray:
    b = np.frombuffer(raw, dtype=_Q4_K_DTYPE, count=n // QK_K)
    qs = b["qs"].reshape(len(b), 4, 32)
    q = np.stack([qs & 0xF, qs >> 4], axis=2)                          # (nb, 4, 2, 32)
    return _k_dequantize(b, q.reshape(len(b), 256))
