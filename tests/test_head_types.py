"""The smaller output-head types Q6_K, Q5_K, Q4_K and Q4_0: numpy bytes against ggml, C kernels against numpy, and
the engine with such a head against the reference, at every ISA level this CPU runs.

Byte compatibility: the K-quant digests below were recorded from ggml's own quantize_row_q{6,5,4}_K_ref
(ggml-quants.c built standalone for x86-64 without FMA contraction, the way ggml-base is built) on `golden_input()`;
Q4_0 is checked against the gguf package's quantizer directly, and every dequantizer against the gguf package's.
"""
import hashlib

import numpy as np
import pytest

from conftest import TINYSTORIES, require_shared, run_convert

from bitgguf import _core, isa_levels
from bitgguf import kquants as K
from bitgguf.gguf import GGUFReader
from bitgguf.model import Model
from bitgguf.reference import ReferenceModel
from bitgguf.types import BY_ID, TYPES
from gguf_models import make_random_gguf
from test_engine import assert_logits_match

ISAS = isa_levels()
HEADS = ("Q6_K", "Q5_K", "Q4_K", "Q4_0")
GGML_SHA256 = {
    "Q6_K": "3e4bc80efafa1da19713e0d1004adde7ec5c5f2e9b7915ea515bc73355679a40",
    "Q5_K": "c3042c77dc9caf1a558fccaaae2a80592e470337f9f030e36b82a03a5c832513",
    "Q4_K": "93e18e7b112eb83cb3d03b597a9ce416262a2fb3cce76997f4ac888f7ddaeefb",
}
GGML_Q4_0_SHA256 = "3bf0962d83de526f5941651453122abfcb410928866ac031cdec366cd1463997"


def golden_input() -> np.ndarray:
    """(24, 512) float32 from integers (no platform-dependent float RNG): plain, heavy-tailed, tiny, all-zero,
    sparse, one-weight-per-sub-block, ternary-like and integer-valued rows."""
    rng = np.random.default_rng(20260)
    base = rng.integers(-2**20, 2**20, size=(24, 512)).astype(np.float32) / np.float32(2**19)
    x = base.copy()
    x[4:8] = base[4:8] ** 3
    x[8:12] = base[8:12] * np.float32(1e-4)
    x[12] = 0
    x[13, ::16] = 0
    x[13, 1::16] = 0
    x[14] = np.where(np.arange(512) % 16 == 0, 1.0, 0.0)
    x[15] = np.sign(base[15]) * np.float32(0.03) * (np.abs(base[15]) > 0.5)
    x[16:18] = np.round(base[16:18] * 40)
    return x


def test_table_rows():
    q6, q4 = TYPES["Q6_K"], TYPES["Q4_0"]
    assert (q6.type_id, q6.block_size, q6.ternary, q6.nbytes((3, 512))) == (14, 256, False, 3 * 2 * 210)
    assert (q4.type_id, q4.block_size, q4.ternary, q4.nbytes((3, 64))) == (2, 32, False, 3 * 2 * 18)
    assert BY_ID[14] is q6 and BY_ID[2] is q4
    assert q6.check_shape((4, 300)) is not None and q6.check_shape((4, 768)) is None
    with pytest.raises(ValueError, match="Q6_K.*multiple of 256"):
        q6.quantize(np.zeros((2, 128), np.float32))
    kernels = _core.kernel_types()
    assert kernels[14] == ("Q6_K", False) and kernels[2] == ("Q4_0", False)
    assert kernels[13] == ("Q5_K", False) and kernels[12] == ("Q4_K", False)
    assert (TYPES["Q5_K"].nbytes((1, 256)), TYPES["Q4_K"].nbytes((1, 256))) == (176, 144)


@pytest.mark.parametrize("name, block_bytes", [("Q6_K", 210), ("Q5_K", 176), ("Q4_K", 144)])
def test_k_quant_bytes_match_ggml(name, block_bytes):
    raw = TYPES[name].quantize(golden_input())
    assert raw.dtype == np.uint8 and raw.size == 24 * 2 * block_bytes
    assert hashlib.sha256(raw.tobytes()).hexdigest() == GGML_SHA256[name]
    if name == "Q6_K":   # an all-zero row is all-zero bytes, as ggml writes it
        assert not raw[12 * 420:13 * 420].any()


@pytest.mark.parametrize("name", ["Q6_K", "Q5_K", "Q4_K"])
def test_c_quantizer_matches_numpy(name):
    """quant_k.c (what the converter runs) writes the numpy oracle's bytes, on the golden input and on awkward blocks:
    zero, constant, one-signed, huge outliers, tiny and huge scales, one flat sub-block among live ones."""
    numpy_quantize = getattr(K, name.lower() + "_quantize_numpy")
    assert hashlib.sha256(numpy_quantize(golden_input()).tobytes()).hexdigest() == GGML_SHA256[name]
    rng = np.random.default_rng(17)
    x = (rng.standard_normal((40, 1024)) * rng.uniform(1e-4, 30, (40, 1))).astype(np.float32)
    x[0] = 0
    x[1, :256] = 1.5
    x[2] = np.abs(x[2])
    x[3] = -np.abs(x[3])
    x[4, ::37] *= 1e4
    x[5] *= np.float32(1e-12)
    x[6, 100:140] = 0
    x[7, 32:64] = -0.75        # one flat sub-block among live ones (each lane of the C search on its own)
    x[8, 16:32] = 2.0
    got = _core.quantize_k(name, x)
    np.testing.assert_array_equal(got, numpy_quantize(x))
    np.testing.assert_array_equal(TYPES[name].quantize(x), got)


def test_q4_0_bytes_match_gguf_package():
    gq = pytest.importorskip("gguf.quants")
    from gguf import GGMLQuantizationType
    x = golden_input()
    raw = TYPES["Q4_0"].quantize(x)
    assert hashlib.sha256(raw.tobytes()).hexdigest() == GGML_Q4_0_SHA256
    np.testing.assert_array_equal(raw, np.asarray(gq.quantize(x, GGMLQuantizationType.Q4_0)).reshape(-1))


@pytest.mark.parametrize("name", HEADS)
def test_dequantize_matches_gguf_package(name):
    gq = pytest.importorskip("gguf.quants")
    from gguf import GGMLQuantizationType
    t = TYPES[name]
    rng = np.random.default_rng(5)
    quantized = t.quantize(golden_input())
    # arbitrary bytes too (every code and scale value), with finite f16 scales
    noise = rng.integers(0, 256, size=t.nbytes((16, 512)), dtype=np.uint8)
    # block bytes, where the f16 scales are, how many (the K types with a min: d then dmin)
    block, d_at, n_half = {"Q6_K": (210, 208, 1), "Q5_K": (176, 0, 2), "Q4_K": (144, 0, 2),
                           "Q4_0": (18, 0, 1)}[name]
    blocks = noise.reshape(-1, block)
    blocks[:, d_at:d_at + 2 * n_half] = np.frombuffer(
        rng.uniform(-2, 2, len(blocks) * n_half).astype(np.float16).tobytes(), np.uint8).reshape(-1, 2 * n_half)
    for raw, rows in ((quantized, 24), (noise, 16)):
        got = t.dequantize(raw, (rows, 512))
        want = gq.dequantize(raw.reshape(rows, -1), getattr(GGMLQuantizationType, name))
        assert got.dtype == np.float32 and got.shape == (rows, 512)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name, tol", [("Q6_K", 0.02), ("Q5_K", 0.04), ("Q4_K", 0.08), ("Q4_0", 0.12)])
def test_round_trip_error(name, tol):
    t = TYPES[name]
    x = np.random.default_rng(7).standard_normal((64, 768)).astype(np.float32)
    err = t.dequantize(t.quantize(x), x.shape) - x
    rel = np.sqrt((err ** 2).mean()) / np.sqrt((x ** 2).mean())
    assert 0 < rel < tol, rel
    # on values already on the grid: exact for the symmetric types; the K types with a min may pick another grid
    y = t.dequantize(t.quantize(x), x.shape)
    again = t.dequantize(t.quantize(y), y.shape)
    if name in ("Q6_K", "Q4_0"):
        np.testing.assert_array_equal(again, y)
    else:
        assert np.sqrt(((again - y) ** 2).mean()) < 0.5 * np.sqrt((err ** 2).mean())


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", HEADS)
@pytest.mark.parametrize("rows, cols", [(1, 256), (7, 768), (33, 2560)])
def test_head_kernel_matches_numpy(name, rows, cols, isa):
    t = TYPES[name]
    rng = np.random.default_rng(rows * cols)
    data = t.quantize((rng.standard_normal((rows, cols)) * rng.uniform(0.01, 3)).astype(np.float32))
    x = (rng.standard_normal(cols) * 4).astype(np.float32)
    y = _core.float_matvec(data, t.type_id, rows, cols, x, isa)
    w = t.dequantize(data, (rows, cols)).astype(np.float64)
    xin = K.q8_k_round_trip(x) if t.head_input == "q8_k" else x     # what the kernel sees
    want = w @ xin.astype(np.float64)
    bound = 1e-5 * (np.abs(w) @ np.abs(xin)) + 1e-6   # float summation order only
    assert np.all(np.abs(y - want) <= bound), np.abs(y - want).max()
    if t.head_input == "q8_k":   # exact integers per block, one f32 combine: every level is bitwise scalar
        np.testing.assert_array_equal(y, _core.float_matvec(data, t.type_id, rows, cols, x, "scalar"))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", ["Q5_K", "Q4_K"])
@pytest.mark.parametrize("one_stream", [False, True])
def test_four_row_head_kernels_equal_the_one_row_kernels(name, isa, one_stream):
    """The decode path reads a chunk's rows four adjacent rows at a time or as four quarters side by side
    (bg_dot_q8k_rows); each output must be the one-row kernel's value, bit for bit, whatever the row count (quarters
    of 1 to 18 rows, tails of 0 to 3)."""
    t = TYPES[name]
    rng = np.random.default_rng(11)
    for rows in (4, 7, 13, 74):
        w = rng.standard_normal((rows, 1024)) * rng.uniform(0.01, 3, size=(rows, 1))
        data = t.quantize(w.astype(np.float32))
        x = (rng.standard_normal(1024) * 4).astype(np.float32)
        one = _core.float_matvec(data, t.type_id, rows, 1024, x, isa, rows4=False)
        four = _core.float_matvec(data, t.type_id, rows, 1024, x, isa, rows4=True, one_stream=one_stream)
        np.testing.assert_array_equal(four, one)
        np.testing.assert_array_equal(four, _core.float_matvec(data, t.type_id, rows, 1024, x, "scalar"))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", ["F16", "BF16"])
@pytest.mark.parametrize("one_stream", [False, True])
def test_four_row_float_head_kernels_equal_the_one_row_kernels(name, isa, one_stream):
    """F16 / BF16 heads read a chunk's rows as four quarters side by side where the level has a four-row kernel
    (bg_dot_f32_rows): each output must be the one-row kernel's value, bit for bit, for any row count and for rows
    with a 16-value and a shorter tail after the 64-value steps."""
    t = TYPES[name]
    rng = np.random.default_rng(12)
    for rows, cols in ((4, 1024), (7, 1104), (13, 1110), (74, 256), (9, 40)):
        w = rng.standard_normal((rows, cols)) * rng.uniform(0.01, 3, size=(rows, 1))
        data = t.quantize(w.astype(np.float32))
        x = (rng.standard_normal(cols) * 4).astype(np.float32)
        one = _core.float_matvec(data, t.type_id, rows, cols, x, isa, rows4=False, one_stream=True)
        four = _core.float_matvec(data, t.type_id, rows, cols, x, isa, rows4=True, one_stream=one_stream)
        np.testing.assert_array_equal(four, one)


def test_q8_k_activations_match_numpy():
    """The C Q8_K quantizer against numpy's (ggml's rule): codes, scales and 16-value sums."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((6, 512)) * rng.uniform(0.01, 50, (6, 1))).astype(np.float32)
    x[1, 7] = -40 * np.abs(x[1]).max()     # a negative extreme (every extreme maps to -128, whatever its sign)
    x[2, :256] = 0                         # an all-zero block
    x[3, 300] = x[3, 301] = np.abs(x[3]).max() * 2   # ties: the first one is the extreme
    for row in x:
        q, d, bsum = _core.quantize_q8k(row)
        qn, dn = K.q8_k_quantize(row)
        np.testing.assert_array_equal(q, qn)
        np.testing.assert_array_equal(d, dn)
        np.testing.assert_array_equal(bsum, q.reshape(-1, 16).astype(np.int16).sum(axis=1))
        assert q.min() >= -128 and q.max() <= 127
        live = np.abs(row.reshape(-1, 256)).max(axis=1) > 0
        assert ((q.reshape(-1, 256) == -128).any(axis=1) == live).all()   # the extreme value is -128 in each block
        err = np.abs(K.q8_k_round_trip(row) - row).reshape(-1, 256)
        assert (err <= 0.5 * np.abs(dn)[:, None] * (1 + 1e-6)).all()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("heads")
    out = {}
    for i, name in enumerate(HEADS):
        path = make_random_gguf(root / f"{name}.gguf", n_embd=256, n_ff=512, n_head=8, n_head_kv=2, n_vocab=389,
                                arch="bitnet-b1.58" if i % 2 == 0 else "bitnet", head_type=name, seed=11 + i)
        ids = np.random.default_rng(i).integers(0, 389, 40).tolist()
        out[name] = (path, ids, ReferenceModel(path).logits(ids))
    return out


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", HEADS)
def test_model_with_small_head_matches_reference(models, name, isa):
    path, ids, ref = models[name]
    with GGUFReader(path) as r:
        assert r.tensors["token_embd.weight"].type.name == name
    with Model(path, kv_type="f32", isa=isa, n_threads=2) as m:
        got = m.logits(ids)
    assert_logits_match(got, ref, f"{name} head on {isa}")


@pytest.mark.parametrize("head", ["q6_k", "q5_k", "q4_k", "q4_0"])
def test_convert_head_type(tmp_path, head):
    """`--head-type q6_k|q5_k|q4_k|q4_0` on the real checkpoint: the tied embedding is written in that type, every
    other tensor is as in the f16 file, and the engine runs it as the reference does."""
    require_shared()
    out, f16 = tmp_path / f"ts-{head}.gguf", tmp_path / "ts-f16.gguf"
    for path, h in ((out, head), (f16, "f16")):
        r = run_convert("hf-to-gguf", TINYSTORIES, "--outfile", path, "--head-type", h, "--no-progress")
        assert r.returncode == 0, r.stderr
    t = TYPES[head.upper()]
    with GGUFReader(out) as a, GGUFReader(f16) as b:
        emb = a.tensors["token_embd.weight"]
        assert emb.type is t and tuple(emb.shape) == (512, 256) and emb.nbytes == t.nbytes((512, 256))
        if head == "q6_k":
            assert emb.nbytes == 512 * 210
        # every other tensor is unchanged
        for name, other in b.tensors.items():
            if name != "token_embd.weight":
                np.testing.assert_array_equal(a.tensors[name].data, other.data)
    ids = [1, 403, 407, 261, 378, 432, 383, 286, 261]
    with Model(out, kv_type="f32", n_threads=1) as m:
        got = m.logits(ids)
    assert_logits_match(got, ReferenceModel(str(out)).logits(ids), f"tinystories {head} head", flips_rare=False)


def test_convert_rejects_unknown_head_type(tmp_path):
    r = run_convert("hf-to-gguf", TINYSTORIES, "--outfile", tmp_path / "x.gguf", "--head-type", "q3_k")
    assert r.returncode != 0 and "--head-type" in r.stderr and not (tmp_path / "x.gguf").exists()
