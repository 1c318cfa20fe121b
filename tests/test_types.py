"""The tensor-type table: exact ternary round trips, byte compatibility with bitnet.cpp / llama.cpp files,
shape checks, and the float types against gguf-py."""
import hashlib
import zlib

import numpy as np
import pytest
from gguf import GGMLQuantizationType as GQ
from gguf import quants as gq

from bitgguf import ternary_layouts as L
from bitgguf.types import BY_ID, TYPES, absmean_ternarize, layout_metadata, tl_params, type_by_name

from conftest import FIXTURES, require_shared

TERNARY = ["I2_S", "TQ1_0", "TQ2_0", "TL1", "TL2"]

# shapes each type can hold, odd ones included (rows not a power of two, K % BK tails, folded leading dims)
SHAPES = {
    "I2_S": [(1, 128), (7, 384), (64, 640), (2, 3, 128)],
    "TQ1_0": [(1, 256), (3, 768), (5, 512), (2, 3, 256)],
    "TQ2_0": [(1, 256), (3, 768), (5, 512), (2, 3, 256)],
    "TL1": [(32, 8), (96, 40), (64, 72), (160, 200), (1536, 1536)],
    "TL2": [(32, 32), (32, 64), (64, 96), (96, 352), (224, 288), (1536, 1536)],
}
BAD_SHAPES = {
    "I2_S": [(4, 100), (2, 64)],
    "TQ1_0": [(4, 128), (1, 300)],
    "TQ2_0": [(4, 128), (1, 300)],
    "TL1": [(33, 64), (32, 12), (2, 32, 64), (64,)],
    "TL2": [(32, 48), (40, 64), (2, 32, 96)],
}


def _codes(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return rng.integers(-1, 2, size=shape).astype(np.int8)


def _stored_scale(name: str, scale: float) -> float:
    # TQ keeps one f16 d per block; the bitnet.cpp types keep an f32
    return float(np.float16(scale)) if name.startswith("TQ") else float(np.float32(scale))


@pytest.mark.parametrize("name,shape", [(n, s) for n in TERNARY for s in SHAPES[n]])
def test_ternary_round_trip(name, shape):
    t = TYPES[name]
    rng = np.random.default_rng(zlib.crc32(repr((name, shape)).encode()))
    codes = _codes(rng, shape)
    scale = float(rng.uniform(0.01, 0.3))
    assert t.ternary and t.check_shape(shape) is None

    packed = t.pack_ternary(codes, scale)
    assert packed.dtype == np.uint8 and packed.size == t.nbytes(shape)
    back, back_scale = t.unpack_ternary(packed, shape)
    np.testing.assert_array_equal(back, codes)
    assert back.dtype == np.int8 and back.shape == codes.shape
    assert back_scale == _stored_scale(name, scale)

    # quantize takes alpha-scaled ternary floats, as the converters hand them over, and gives the same bytes
    x = codes.astype(np.float32) * np.float32(scale)
    q = t.quantize(x)
    assert q.size == t.nbytes(shape)
    np.testing.assert_array_equal(q, packed)
    np.testing.assert_array_equal(t.dequantize(q, shape), codes.astype(np.float32) * np.float32(back_scale))


@pytest.mark.parametrize("name", TERNARY)
def test_all_zero_tensor(name):
    shape = SHAPES[name][1]
    t = TYPES[name]
    packed = t.pack_ternary(np.zeros(shape, np.int8), 0.5)
    codes, _ = t.unpack_ternary(packed, shape)
    assert not codes.any()
    if name.startswith("TQ"):   # llama.cpp writes d = 0 for an all-zero block (max|x| = 0)
        np.testing.assert_array_equal(t.quantize(np.zeros(shape, np.float32)), packed)
    assert not t.dequantize(packed, shape).any()


@pytest.mark.parametrize("name", TERNARY)
def test_bad_shapes_rejected(name):
    t = TYPES[name]
    for shape in BAD_SHAPES[name]:
        why = t.check_shape(shape)
        assert isinstance(why, str) and why, f"{name} accepted {shape}"
        with pytest.raises(ValueError):
            t.pack_ternary(np.zeros(shape, np.int8), 1.0)
    with pytest.raises(ValueError, match="ternary codes"):
        t.pack_ternary(np.full(SHAPES[name][0], 2, np.int8), 1.0)


def test_tq_unpack_refuses_mixed_block_scales():
    t = TYPES["TQ2_0"]
    codes = np.ones((2, 256), np.int8)
    raw = np.concatenate([t.pack_ternary(codes[:1], 0.5), t.pack_ternary(codes[1:], 0.25)])
    with pytest.raises(ValueError, match="different scales"):
        t.unpack_ternary(raw, (2, 256))
    # dequantize still honours each block's own d
    np.testing.assert_array_equal(t.dequantize(raw, (2, 256))[:, 0], [0.5, 0.25])


def test_i2s_layout_and_unused_code():
    t = TYPES["I2_S"]
    codes = np.zeros((1, 128), np.int8)
    codes[0, 1], codes[0, 33], codes[0, 127] = 1, -1, 1
    raw = t.pack_ternary(codes, 2.0)
    assert raw.size == 128 // 4 + 32
    # byte b holds weights b, b+32, b+64, b+96, MSB first; code = t + 1
    assert raw[1] == (2 << 6) | (0 << 4) | (1 << 2) | 1
    assert raw[31] == (1 << 6) | (1 << 4) | (1 << 2) | 2
    assert raw[0] == 0x55
    assert raw[32:36].view(np.float32)[0] == 2.0 and not raw[36:].any()
    raw[0] = 0xFF                                   # code 3 is unused: 0 in dequantize, an error when unpacking
    assert not t.dequantize(raw, (1, 128))[0, [0, 32, 64, 96]].any()
    with pytest.raises(ValueError, match="code 3"):
        t.unpack_ternary(raw, (1, 128))


def test_tq_layouts_match_gguf_py():
    """gguf-py's numpy quantizers are an independent implementation of ggml's TQ1_0 / TQ2_0."""
    rng = np.random.default_rng(3)
    codes = _codes(rng, (6, 512))
    codes[0, :256] = 0
    x = codes.astype(np.float32) * np.float32(0.0123)
    for name in ("TQ1_0", "TQ2_0"):
        ours = TYPES[name].quantize(x)
        np.testing.assert_array_equal(ours, gq.quantize(x, GQ[name]).reshape(-1))
        np.testing.assert_array_equal(TYPES[name].dequantize(ours, x.shape),
                                      gq.dequantize(ours.reshape(6, -1), GQ[name]))


# sha256 of the TL data for codes ((7i + 13j + ij) % 3) - 1, as bitnet.cpp's convert-hf-to-gguf-bitnet.py
# (preprocess_weights_tl1/tl2 @ microsoft/BitNet 16da220) writes them with the same (BM, BK, bm) in kernel_config.ini
TL_GOLDEN = {
    ("TL1", 1536, 1536): "ad082f352675b77cb129549eed9cca3eee95d7a773e79816509958f6c1d303cb",
    ("TL1", 64, 72): "978323b40f1cab45a58a21a7bba89d170f10d45cba4b7670841f028e98da8e54",
    ("TL2", 1536, 1536): "2725323bab43a5b7213cc922db1be6a81e641fc99143274c52aeb5ac2604a1f1",
    ("TL2", 96, 352): "681b7691aeb3c4fd401ceb27b9ce9e364e79c3199491e8827a746a3206befd66",
    ("TL2", 128, 4096): "d35e946b293c61d83573c9f71baa8cc9ab1f791536a14efb7a4170c9f092d0df",
}


@pytest.mark.parametrize("name,M,K", list(TL_GOLDEN))
def test_tl_bytes_match_bitnet_cpp_converter(name, M, K):
    i, j = np.arange(M)[:, None], np.arange(K)[None, :]
    codes = (((i * 7 + j * 13 + i * j) % 3) - 1).astype(np.int8)
    raw = TYPES[name].pack_ternary(codes, 0.25)
    data = L.tl1_data_bytes(M, K) if name == "TL1" else L.tl2_data_bytes(M, K)
    assert hashlib.sha256(raw[:data].tobytes()).hexdigest() == TL_GOLDEN[(name, M, K)]
    at = L.tl_scale_offset(name, M, K)
    assert not raw[data:at].any() and raw[at:at + 4].view(np.float32)[0] == 0.25 and not raw[at + 4:].any()


def test_tl_sizes_and_params():
    # ggml_nbytes in bitnet.cpp's ggml: TL1 M*K/4 + 32, TL2 roundup32((K-256)*M/3*5/8 + 256*M/2/2) + 32
    assert TYPES["TL1"].nbytes((1536, 4096)) == 1536 * 4096 // 4 + 32
    P = (4096 - 256) * 1536 // 3 * 5 // 8 + 256 * 1536 // 2 // 2
    assert TYPES["TL2"].nbytes((1536, 4096)) == (P + 31) // 32 * 32 + 32
    # setup_env presets (spec 4.4) are reproduced; other shapes follow the generic rule
    assert tl_params("TL1", 1536, 1536) == (128, 64, 64)
    assert tl_params("TL1", 8640, 3200) == (320, 64, 32)
    assert tl_params("TL2", 1536, 1536) == (128, 192, 32)
    assert tl_params("TL2", 3200, 8640) == (160, 96, 32)
    assert tl_params("TL1", 2560, 6912) == (256, 128, 32)
    assert tl_params("TL1", 96, 40) == (96, 8, 32)
    assert tl_params("TL2", 640, 2560) == (160, 96, 32)     # largest multiple of 32 <= 256 dividing 640
    with pytest.raises(ValueError, match="multiple of 32"):
        tl_params("TL2", 40, 64)
    assert layout_metadata("TL1") == layout_metadata("tl2") == {"bitgguf.tl_rule": 1}
    assert layout_metadata("I2_S") == {} and layout_metadata("F16") == {}


def test_table_ids():
    assert {n: TYPES[n].type_id for n in TERNARY} == {"I2_S": 36, "TQ1_0": 34, "TQ2_0": 35, "TL1": 38, "TL2": 39}
    assert all(BY_ID[t.type_id] is t for t in TYPES.values())
    assert type_by_name("tq2_0") is TYPES["TQ2_0"]


def test_absmean_ternarize():
    # mean|W| = 2, s = 0.5: W*s = 0.5, 1.5, -0.5, -1.5 -> numpy round half to even (torch.round), then clamp
    codes, alpha = absmean_ternarize(np.array([[1.0, 3.0, -1.0, -3.0]], np.float32))
    np.testing.assert_array_equal(codes, [[0, 1, 0, -1]])
    assert codes.dtype == np.int8 and alpha == np.float32(2.0) and alpha.dtype == np.float32
    codes, alpha = absmean_ternarize(np.zeros((2, 4), np.float32))     # the 1e-5 floor on mean|W|
    assert not codes.any() and alpha == np.float32(1) / (np.float32(1) / np.float32(1e-5))
    rng = np.random.default_rng(5)
    w = rng.normal(0, 0.02, (64, 96)).astype(np.float32)
    codes, alpha = absmean_ternarize(w)
    assert np.isclose(alpha, np.abs(w).mean(), rtol=1e-6)
    np.testing.assert_array_equal(codes, np.clip(np.round(w / alpha), -1, 1))


@pytest.mark.parametrize("bf16", [False, True])
def test_c_absmean_ternarize_matches_numpy(bf16):
    """_core.absmean_ternarize (the converter's, ternarize.c) gives the numpy rule's codes and alpha: on sizes with a
    tail of 1-15, on exact ties at +-0.5 and +-1.5, on zeros, on magnitudes from 1e-30 to 1e4, and from bf16 bits."""
    from bitgguf import _core
    rng = np.random.default_rng(23)
    cases = [rng.normal(0, 0.02, n).astype(np.float32) for n in (1, 15, 16, 17, 33, 1000)]
    cases.append(rng.normal(0, 0.02, (96, 80)).astype(np.float32))
    cases.append(np.array([1.0, 3.0, -1.0, -3.0, 0.0, -0.0, 2.0, -2.0, 5.0, 1.0, 1.0, -1.0, 3.0, 0.5, -0.5, 4.0,
                           6.0, -6.0], np.float32))                          # W * s exactly on .5 ties
    cases.append(np.zeros((3, 16), np.float32))
    cases.append((rng.normal(0, 1, 4096) * 10.0 ** rng.uniform(-30, 4, 4096)).astype(np.float32))
    for w in cases:
        if bf16:
            bits = (w.view(np.uint32) >> 16).astype(np.uint16)            # truncated to bf16: the values it holds
            want = absmean_ternarize((bits.astype(np.uint32) << 16).view(np.float32))
            got = _core.absmean_ternarize(bits, True)
        else:
            want, got = absmean_ternarize(w), _core.absmean_ternarize(w)
        np.testing.assert_array_equal(got[0], want[0])
        assert got[0].shape == w.shape and got[0].dtype == np.int8
        assert got[1] == want[1] and got[1].dtype == np.float32


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_c_absmean_ternarize_names_a_non_finite_weight(bad):
    from bitgguf import _core
    w = np.full((5, 40), 0.01, np.float32)
    w[3, 17] = bad
    with pytest.raises(ValueError, match=r"weight \(3, 17\) is .*not a finite number"):
        _core.absmean_ternarize(w)
    with pytest.raises(ValueError, match=r"weight \(3, 17\)"):
        _core.absmean_ternarize((w.view(np.uint32) >> 16).astype(np.uint16), True)


# ---- files written by bitnet.cpp and llama.cpp -------------------------------------------------------------

FIXTURE_FILES = [
    "bitnet-cpp/tinystories-ternary-3m-bitnetcpp-i2_s.gguf",
    "bitnet-cpp/tiny-2b4t-bitnetcpp-i2_s.gguf",
    "llama-cpp/tinystories-ternary-3m-llamacpp-tq1_0.gguf",
    "llama-cpp/tinystories-ternary-3m-llamacpp-tq2_0.gguf",
]


def _ternary_tensors(rel: str) -> dict:
    """name -> (type name, codes, scale, raw bytes) for every ternary tensor of a fixture."""
    from bitgguf.gguf import GGUFReader

    require_shared()
    out = {}
    with GGUFReader(FIXTURES / rel) as r:
        for t in r.tensors.values():
            if t.type.ternary:
                codes, scale = t.type.unpack_ternary(t.data, t.shape)
                out[t.name] = (t.type.name, codes, scale, np.array(t.data), tuple(t.shape))
    return out


@pytest.mark.parametrize("rel", FIXTURE_FILES)
def test_fixture_bytes_repack_exactly(rel):
    tensors = _ternary_tensors(rel)
    assert len(tensors) in (21, 56)
    for name, (tname, codes, scale, raw, shape) in tensors.items():
        t = TYPES[tname]
        again = t.pack_ternary(codes, scale)
        assert again.size == raw.size == t.nbytes(shape)
        # I2_S: llama-quantize leaves the 28 bytes after the scale unspecified
        n = raw.size - 28 if tname == "I2_S" else raw.size
        mismatch = np.flatnonzero(again[:n] != raw[:n])
        assert mismatch.size == 0, f"{rel}: {name} ({tname}) re-packs differently at bytes {mismatch[:8]}"
        assert codes.any() and scale > 0


def test_fixture_formats_hold_the_same_ternary_model():
    i2s = _ternary_tensors(FIXTURE_FILES[0])
    tq1 = _ternary_tensors(FIXTURE_FILES[2])
    tq2 = _ternary_tensors(FIXTURE_FILES[3])
    assert i2s.keys() == tq1.keys() == tq2.keys()
    for name in i2s:
        np.testing.assert_array_equal(tq1[name][1], i2s[name][1], err_msg=name)
        np.testing.assert_array_equal(tq2[name][1], i2s[name][1], err_msg=name)
        # I2_S keeps alpha in f32, the TQ types f16(alpha) in every non-zero block
        assert tq1[name][2] == tq2[name][2] == float(np.float16(i2s[name][2])), name


def test_writer_reader_round_trip_ternary(tmp_path):
    from bitgguf.gguf import GGUFReader, GGUFWriter

    rng = np.random.default_rng(9)
    items = {"a": ("I2_S", (8, 256)), "b": ("TL2", (64, 352)), "c": ("TQ1_0", (3, 256)), "d": ("TL1", (32, 24))}
    codes = {k: _codes(rng, s) for k, (_, s) in items.items()}
    path = tmp_path / "t.gguf"
    with GGUFWriter(path) as w:
        for key, value in layout_metadata("TL2").items():
            w.add(key, value)
        for k, (tname, shape) in items.items():
            w.add_tensor(k, shape, TYPES[tname], lambda k=k, tname=tname: TYPES[tname].pack_ternary(codes[k], 0.5))
    with GGUFReader(path) as r:
        assert r.metadata["bitgguf.tl_rule"] == 1
        for k, (tname, shape) in items.items():
            t = r.tensors[k]
            got, scale = t.type.unpack_ternary(t.data, t.shape)
            assert t.type.name == tname and tuple(t.shape) == shape and scale == 0.5
            np.testing.assert_array_equal(got, codes[k])


# ---- float types -------------------------------------------------------------------------------------------

def test_q8_0_matches_gguf_py_and_error_bound():
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((16, 256)) * rng.uniform(0.01, 10, (16, 1))).astype(np.float32)
    x[3, :32] = 0                                     # an all-zero block: d = 0
    t = TYPES["Q8_0"]
    q = t.quantize(x)
    assert q.size == t.nbytes(x.shape) == 16 * 256 // 32 * 34
    np.testing.assert_array_equal(q, gq.quantize(x, GQ.Q8_0).reshape(-1))
    y = t.dequantize(q, x.shape)
    d = np.abs(x.reshape(-1, 32)).max(axis=1, keepdims=True) / 127
    # half a step, plus f16 rounding of d times the largest code
    bound = d * (0.5 + 127 * 2.0**-11) + 1e-12
    assert (np.abs(y - x).reshape(-1, 32) <= bound).all()
    assert not y[3, :32].any()
    assert t.check_shape((2, 48))


def test_bf16_round_trip_and_gguf_py():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((4, 100)).astype(np.float32) * 3
    t = TYPES["BF16"]
    q = t.quantize(x)
    assert q.size == t.nbytes(x.shape) == 800
    np.testing.assert_array_equal(q, gq.quantize(x, GQ.BF16).reshape(-1).view(np.uint8))
    y = t.dequantize(q, x.shape)
    assert (np.abs(y - x) <= np.abs(x) * 2.0**-8).all()
    exact = np.array([1.0, -2.5, 0.0, 65536.0], np.float32)
    np.testing.assert_array_equal(t.dequantize(t.quantize(exact), exact.shape), exact)
