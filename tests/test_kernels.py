"""C kernels against numpy, at every ISA level this CPU runs (scalar always), on odd shapes.

Ternary kernels must be exact: integer dot products (I2_S), or exact per-block integers scaled by f16 d and summed
exactly (TQ2_0). Float head kernels differ from numpy only by summation order.
"""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bitgguf import _core, isa_levels
from bitgguf.reference import quantize_activations
from bitgguf.types import TYPES

ISAS = isa_levels()
# rows and cols with odd block counts (I2_S blocks are 128 weights, TQ2_0 blocks 256)
SHAPES = [(1, 128), (7, 384), (33, 640), (5, 1152), (64, 2560)]


def _codes(rng, rows, cols):
    return rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=(rows, cols), p=[0.35, 0.3, 0.35])


def _x(rng, n):
    x = (rng.standard_normal(n) * rng.uniform(0.01, 10)).astype(np.float32)
    x[rng.integers(0, n)] *= 8  # an outlier sets the absmax
    return x


def test_every_level_is_listed_and_scalar_always():
    assert ISAS[0] == "scalar"
    assert _core.best_isa() in ISAS
    with pytest.raises(ValueError, match="unknown ISA level"):
        _core.isa_by_name("sse9")


@pytest.mark.parametrize("seed", range(6))
def test_activation_quantization_matches_the_reference(seed):
    rng = np.random.default_rng(seed)
    x = _x(rng, 1000)
    if seed == 0:
        x[:] = 0  # the 1e-5 floor
    if seed == 1:  # exact halves after scaling: round half to even
        x = (np.arange(-300, 300, dtype=np.float32) + np.float32(0.5)) / np.float32(2.0)
        x[0] = np.float32(-127.0 * 2)
    q, s, total = _core.quantize_activations(x)
    q_ref, s_ref = quantize_activations(x[None, :])
    assert s == s_ref[0]
    np.testing.assert_array_equal(q.astype(np.int32), q_ref[0])
    assert total == int(q_ref.sum())


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("rows,cols", SHAPES)
def test_i2s_matvec_is_exact(isa, rows, cols):
    rng = np.random.default_rng(rows * 1000 + cols)
    codes = _codes(rng, rows, cols)
    scale = np.float32(0.0123)
    data = TYPES["I2_S"].pack_ternary(codes, scale)
    x = _x(rng, cols)
    dots, y = _core.ternary_matvec(data, 36, rows, cols, x, isa)
    q, s = quantize_activations(x[None, :])
    isum = codes.astype(np.int64) @ q[0].astype(np.int64)
    np.testing.assert_array_equal(dots, isum.astype(np.float32))
    np.testing.assert_array_equal(y, (isum.astype(np.float32) / s[0] * scale).astype(np.float32))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("code,sign", [(1, 1.0), (1, -1.0), (-1, 1.0), (0, -1.0)])
def test_i2s_matvec_extremes_fit_the_int16_sums(isa, code, sign):
    # every code and activation at its limit (c = 2, |q| = 127 in every lane) over 20 blocks: the 16-bit partial sums
    # of the one-row and four-row kernels reach +-32512 and must neither wrap nor saturate
    rows, cols = 9, 2560
    codes = np.full((rows, cols), code, dtype=np.int8)
    x = np.full(cols, sign, dtype=np.float32)
    data = TYPES["I2_S"].pack_ternary(codes, np.float32(1.0))
    dots, _ = _core.ternary_matvec(data, 36, rows, cols, x, isa)
    q, _ = quantize_activations(x[None, :])
    assert abs(int(q[0, 0])) == 127
    np.testing.assert_array_equal(dots, (codes.astype(np.int64) @ q[0].astype(np.int64)).astype(np.float32))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("rows,cols,n", [(32, 128, 16), (7, 384, 1), (45, 768, 33), (64, 2560, 64), (33, 4224, 20),
                                         (40, 256, 70)])
def test_i2s_batch_path_is_exact(isa, rows, cols, n):
    # the prompt path: the GEMM of AMX and of AVX-512 VNNI over 32-row panels, 16-token tiles and 256-column blocks
    # (rows, tokens and columns that do not fill them), the multi-token kernels elsewhere; every path the exact
    # integers
    rng = np.random.default_rng(rows * 7 + cols + n)
    codes = _codes(rng, rows, cols)
    data = TYPES["I2_S"].pack_ternary(codes, np.float32(0.5))
    x = np.stack([_x(rng, cols) for _ in range(n)])
    dots, path = _core.ternary_matmul(data, 36, rows, cols, x, isa)
    assert path == {"scalar": "dot", "avx512": "gemm", "amx": "gemm"}.get(isa, "multi" if isa != "neon" else "dot")
    q, _ = quantize_activations(x)
    np.testing.assert_array_equal(dots, (q.astype(np.int64) @ codes.T.astype(np.int64)).astype(np.float32))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("type_name,type_id", [("TQ2_0", 35), ("TQ1_0", 34)])
@pytest.mark.parametrize("rows,cols,n", [(32, 256, 16), (7, 512, 1), (45, 768, 33), (64, 2560, 64), (40, 256, 70)])
@pytest.mark.parametrize("row_scales", [False, True])
def test_tq_batch_path_is_exact(isa, type_name, type_id, rows, cols, n, row_scales):
    # the TQ2_0 / TQ1_0 GEMMs (per-block f16 scales applied in double, block by block) against the one-token kernel
    # at scalar, which test_tq2_0_matvec_is_exact / test_tq1_0_matvec_is_exact check against numpy. Scales differ
    # per block, or are one per row as in llama.cpp's files (the GEMMs then sum whole rows in int32); the last row's
    # weights are all +1 (every base-3 digit at 2: the largest TQ1_0 bytes)
    rng = np.random.default_rng(rows * 5 + cols + n)
    codes = _codes(rng, rows, cols)
    codes[-1] = 1
    scales = rng.uniform(0.5, 2, size=(rows, 1 if row_scales else cols // 256))
    data = TYPES[type_name].quantize(codes.astype(np.float32) * scales.repeat(cols // scales.shape[1], 1))
    x = np.stack([_x(rng, cols) for _ in range(n)])
    dots, path = _core.ternary_matmul(data, type_id, rows, cols, x, isa)
    assert path == {"scalar": "dot", "amx": "gemm", "avx2": "multi", "avx512": "gemm"}.get(isa, "dot")
    want = np.stack([_core.ternary_matvec(data, type_id, rows, cols, xt, "scalar")[0] for xt in x])
    np.testing.assert_array_equal(dots, want)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("one_stream", [False, True])
def test_four_row_kernels_equal_the_one_row_kernels(isa, one_stream):
    # the decode path takes four rows at a time where the level has a kernel for it, in one stream or as two halves
    # side by side: bitwise the same results
    rng = np.random.default_rng(12)
    rows, cols = 11, 1280
    codes = _codes(rng, rows, cols)
    x = _x(rng, cols)
    for name, type_id in (("I2_S", 36), ("TQ2_0", 35), ("TQ1_0", 34)):
        data = TYPES[name].pack_ternary(codes, np.float32(0.37))
        one = _core.ternary_matvec(data, type_id, rows, cols, x, isa, rows4=False, one_stream=True)
        four = _core.ternary_matvec(data, type_id, rows, cols, x, isa, rows4=True, one_stream=one_stream)
        np.testing.assert_array_equal(four[0], one[0])
        np.testing.assert_array_equal(four[1], one[1])
    # I2_ROWS (TL1/TL2 repacked at load) rows of whole 128-weight blocks are I2_S rows byte for byte
    data = TYPES["I2_S"].pack_ternary(codes, np.float32(0.37))
    one = _core.ternary_matvec(data, 1036, rows, cols, x, isa, rows4=False, one_stream=True)
    four = _core.ternary_matvec(data, 1036, rows, cols, x, isa, rows4=True, one_stream=one_stream)
    np.testing.assert_array_equal(four[0], one[0])
    np.testing.assert_array_equal(one[0], _core.ternary_matvec(data, 36, rows, cols, x, isa)[0])


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("rows,cols", [(1, 256), (7, 768), (33, 1280), (3, 2560)])
def test_tq2_0_matvec_is_exact(isa, rows, cols):
    rng = np.random.default_rng(rows * 1000 + cols + 7)
    codes = _codes(rng, rows, cols)
    codes[0, :256] = 0  # an all-zero block (d = 0)
    tq2 = TYPES["TQ2_0"]
    data = tq2.quantize(codes.astype(np.float32) * rng.uniform(0.5, 2, size=(rows, cols // 256)).repeat(256, 1))
    x = _x(rng, cols)
    dots, _ = _core.ternary_matvec(data, 35, rows, cols, x, isa)
    q, _ = quantize_activations(x[None, :])
    # block d values from the file; Σ_b d_b * isum_b is exact in float64
    blocks = np.frombuffer(np.asarray(data).tobytes(), dtype=np.dtype([("qs", "u1", 64), ("d", "<f2")]))
    d = blocks["d"].astype(np.float64).reshape(rows, cols // 256)
    isum = (codes.astype(np.int64).reshape(rows, -1, 256) * q[0].astype(np.int64).reshape(-1, 256)).sum(axis=2)
    np.testing.assert_array_equal(dots, (d * isum).sum(axis=1).astype(np.float32))


@pytest.mark.parametrize("isa", ISAS)
def test_ternary_kernels_agree_across_levels_bitwise(isa):
    # one tensor scale: the TQ types' blocks all get it (the kernels' whole-row integer path)
    rng = np.random.default_rng(11)
    codes = _codes(rng, 9, 2560)
    x = _x(rng, 2560)
    for name, type_id in (("I2_S", 36), ("TQ2_0", 35), ("TQ1_0", 34)):
        data = TYPES[name].pack_ternary(codes, np.float32(0.37))
        want = _core.ternary_matvec(data, type_id, 9, 2560, x, "scalar")
        got = _core.ternary_matvec(data, type_id, 9, 2560, x, isa)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("type_name,type_id", [("F32", 0), ("F16", 1), ("BF16", 30), ("Q8_0", 8)])
@pytest.mark.parametrize("rows,cols", [(3, 32), (17, 96), (5, 2560), (2, 200)])
def test_float_head_matvec(isa, type_name, type_id, rows, cols):
    if type_name == "Q8_0" and cols % 32:
        pytest.skip("Q8_0 rows are whole blocks")
    rng = np.random.default_rng(rows + cols)
    t = TYPES[type_name]
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    data = t.quantize(w)
    x = rng.standard_normal(cols).astype(np.float32)
    y = _core.float_matvec(data, type_id, rows, cols, x, isa)
    want = t.dequantize(data, (rows, cols)).astype(np.float64) @ x.astype(np.float64)
    bound = 1e-5 * (np.abs(t.dequantize(data, (rows, cols))) @ np.abs(x)) + 1e-6
    assert np.all(np.abs(y - want) <= bound), np.abs(y - want).max()


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_f16_conversion_matches_numpy():
    rng = np.random.default_rng(3)
    x = np.concatenate([
        (rng.standard_normal(4000) * 10.0 ** rng.integers(-9, 5, 4000)).astype(np.float32),
        np.array([0.0, -0.0, 65504, 65519.99, 65520, 1e9, -1e9, 6e-8, 3e-8, 2.98e-8, 6.1e-5, np.inf, -np.inf],
                 dtype=np.float32),
        # halfway cases between f16 neighbours round to even
        (np.arange(1, 2000, dtype=np.float32) + np.float32(0.5)) * np.float32(2.0 ** -10),
    ])
    np.testing.assert_array_equal(_core.f32_to_f16(x), x.astype(np.float16).view(np.uint16))
    nan = _core.f32_to_f16(np.array([np.nan], dtype=np.float32))
    assert np.isnan(nan.view(np.float16)[0])


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="no C kernels"):
        _core.ternary_matvec(np.zeros(64, np.uint8), 38, 1, 128, np.zeros(128, np.float32), "scalar")
    with pytest.raises(ValueError, match="too short"):
        _core.ternary_matvec(np.zeros(10, np.uint8), 36, 1, 128, np.zeros(128, np.float32), "scalar")
    if "avx512" not in ISAS:
        with pytest.raises(ValueError, match="not supported by this CPU"):
            _core.ternary_matvec(np.zeros(64, np.uint8), 36, 1, 128, np.zeros(128, np.float32), "avx512")


@pytest.mark.parametrize("target", ["native", "aarch64"])
def test_standalone_c_kernel_check(target):
    """tests/kernel_check.c: every level against scalar in C; aarch64 (NEON, dotprod) runs under qemu-aarch64."""
    tools = ["cc"] if target == "native" else ["aarch64-linux-gnu-gcc", "qemu-aarch64"]
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    script = Path(__file__).with_name("run_kernel_check.sh")
    result = subprocess.run(["sh", str(script)] + ([] if target == "native" else ["aarch64"]), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failures" in result.stdout
