"""Every ternary type in the runtime (I2_S, TQ1_0, TQ2_0, TL1, TL2), at every ISA level this CPU runs.

TQ1_0 and TQ2_0 run in place (per-block f16 d). TL1 and TL2 keep bitnet.cpp's tile-permuted file layouts. TL2 is
read in place by lookup-table tile kernels (_kernels/tl2*.c) where the ISA level has them, or when asked; otherwise,
and TL1 always, the runtime unpacks them once at load into row-major 2-bit rows (I2_S when the row is whole
128-weight blocks, else the internal I2_ROWS layout: I2_S blocks plus a tail) and runs them through the per-row
kernels. Shapes include 2B4T's
2560 / 640 / 6912 proportions scaled down and row lengths that are not a multiple of 128 or 256, which bitnet.cpp has
no kernels for. Tolerances are test_engine.py's (see its docstring): the ternary sums are exact integers.
"""
import numpy as np
import pytest

from bitgguf import _core, isa_levels
from bitgguf.gguf import GGUFReader
from bitgguf.model import I2_ROWS_ID, Model, pack_i2_rows
from bitgguf.reference import ReferenceModel, quantize_activations
from bitgguf.types import TYPES
from gguf_models import make_random_gguf
from test_engine import assert_logits_match

ISAS = isa_levels()
N_TOKENS = 40  # one batch: the multi-token kernels and the GEMMs where the level has them

# 2B4T: n_embd 2560, kv_dim 640 (5 of 20 heads), n_ff 6912 -> scaled to what each type can hold
SHAPES = {
    # n_embd 640 / kv 160 / n_ff 1728 = 2B4T / 4: rows of 1728 are 13.5 I2_S blocks (a 64-weight tail); TL2 splits
    # 640 into 576 (three-weight groups) + 64 (its two-weight tail)
    "2b4t-quarter": dict(n_embd=640, n_head=20, n_head_kv=5, n_ff=1728, n_layer=1, arch="bitnet-b1.58"),
    # 224 / 608: tails of 96 weights everywhere, MHA-free GQA 7:1, SiLU
    "odd": dict(n_embd=224, n_head=7, n_head_kv=1, n_ff=608, arch="bitnet", n_vocab=263),
    # 256 / 64 / 768 = 2B4T / 10 rounded to whole 256-weight blocks (TQ types need them; I2_S too)
    "2b4t-tenth": dict(n_embd=256, n_head=8, n_head_kv=2, n_ff=768, arch="bitnet-25"),
}
# which shapes each type can hold (I2_S: rows of 128-multiples, TQ: 256, TL1 / TL2: every dimension a multiple of 32)
TYPE_SHAPES = {
    "I2_S": ["2b4t-tenth"],
    "TQ2_0": ["2b4t-tenth"],
    "TQ1_0": ["2b4t-tenth"],
    "TL1": ["2b4t-quarter", "odd", "2b4t-tenth"],
    "TL2": ["2b4t-quarter", "odd", "2b4t-tenth"],
}
CASES = [(t, s) for t, shapes in TYPE_SHAPES.items() for s in shapes]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("types")
    cache = {}

    def get(type_name, shape):
        if (type_name, shape) not in cache:
            cfg = dict(SHAPES[shape])
            path = make_random_gguf(root / f"{type_name}-{shape}.gguf", ternary_type=type_name, seed=len(shape),
                                    **cfg)
            ids = np.random.default_rng(len(type_name)).integers(0, cfg.get("n_vocab", 301), N_TOKENS).tolist()
            cache[type_name, shape] = (path, ids, ReferenceModel(path).logits(ids))
        return cache[type_name, shape]
    return get


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("type_name,shape", CASES)
def test_logits_match_reference(models, type_name, shape, isa):
    """TL2 both ways: read in place by the lookup-table kernels, and repacked into 2-bit rows."""
    path, ids, ref = models(type_name, shape)
    for in_place in (True, False) if type_name == "TL2" else (None,):
        with Model(path, kv_type="f32", isa=isa, n_threads=1, tl2_in_place=in_place) as m:
            got = m.logits(ids)
            repacked = type_name == "TL1" or (type_name == "TL2" and not in_place)
            assert len(m.repacked) == (7 * m.config.n_layer if repacked else 0)
        assert_logits_match(got, ref, f"{type_name} {shape} on {isa}, in place: {in_place}")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("type_name,shape", [("TL2", "2b4t-quarter"), ("TQ1_0", "2b4t-tenth")])
def test_batches_and_threads_do_not_change_logits(models, type_name, shape, isa):
    path, ids, _ = models(type_name, shape)
    with Model(path, n_threads=2, isa=isa) as m:
        # one batch: the multi-token kernels and the GEMMs where the level has them (TL2 at avx512 / amx: its tiles
        # decoded into codes for the batch, against the lookup-table tile kernel token by token)
        batched = m.logits(ids)
        m.reset()
        one_by_one = np.stack([m.eval([t]) for t in ids])
        m.n_threads = 1
        single = m.logits(ids)
    np.testing.assert_array_equal(batched, one_by_one)
    np.testing.assert_array_equal(batched, single)


def test_tl_repack_is_reported_and_counted(models):
    path, _, _ = models("TL1", "odd")
    with Model(path) as m:
        n = 7 * m.config.n_layer
        # the repacked rows are 2 bits per weight plus the scale, whatever the file layout was
        with GGUFReader(path) as r:
            weights = sum(int(np.prod(t.shape)) for t in r.tensors.values() if t.type.name == "TL1")
        assert m.repacked_bytes == weights // 4 + 32 * n
        assert f"{n} TL1" in m.load_info and "MiB extra memory" in m.load_info
    path, _, _ = models("TQ1_0", "2b4t-tenth")
    with Model(path) as m:
        assert m.repacked_bytes == 0 and "in place" in m.load_info


# ---- kernels: exact integers at every level ---------------------------------------------------------------------

def _codes(rng, rows, cols):
    return rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=(rows, cols), p=[0.35, 0.3, 0.35])


def _x(rng, n):
    x = (rng.standard_normal(n) * rng.uniform(0.01, 10)).astype(np.float32)
    x[rng.integers(0, n)] *= 8
    return x


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("rows,cols", [(1, 256), (7, 768), (33, 1280), (3, 2560), (2, 6912)])
def test_tq1_0_matvec_is_exact(isa, rows, cols):
    rng = np.random.default_rng(rows * 1000 + cols + 5)
    codes = _codes(rng, rows, cols)
    codes[0, :256] = 0  # an all-zero block (d = 0)
    codes[-1, -256:] = 1  # every digit 2: the largest bytes (242) and qh values
    data = TYPES["TQ1_0"].quantize(codes.astype(np.float32) *
                                   rng.uniform(0.5, 2, size=(rows, cols // 256)).repeat(256, 1))
    x = _x(rng, cols)
    dots, _ = _core.ternary_matvec(data, 34, rows, cols, x, isa)
    q, _ = quantize_activations(x[None, :])
    blocks = np.frombuffer(np.asarray(data).tobytes(), dtype=np.dtype([("qs", "u1", 52), ("d", "<f2")]))
    d = blocks["d"].astype(np.float64).reshape(rows, cols // 256)
    isum = (codes.astype(np.int64).reshape(rows, -1, 256) * q[0].astype(np.int64).reshape(-1, 256)).sum(axis=2)
    # Σ_b d_b * isum_b, each product exact in float64, summed in block order and rounded once
    want = np.zeros(rows)
    for b in range(cols // 256):
        want = want + d[:, b] * isum[:, b]
    np.testing.assert_array_equal(dots, want.astype(np.float32))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("rows,cols", [(3, 8), (2, 40), (4, 128), (3, 136), (3, 160), (5, 200), (2, 224), (2, 296),
                                       (5, 1728), (7, 2568), (4, 2656), (2, 6912)])
def test_i2_rows_matvec_is_exact(isa, rows, cols):
    rng = np.random.default_rng(rows * 1000 + cols + 9)
    codes = _codes(rng, rows, cols)
    scale = np.float32(0.0371)
    data = pack_i2_rows(codes, scale)
    if cols % 128 == 0:  # whole blocks: byte for byte an I2_S tensor
        np.testing.assert_array_equal(data, TYPES["I2_S"].pack_ternary(codes, scale))
    x = _x(rng, cols)
    dots, y = _core.ternary_matvec(data, I2_ROWS_ID, rows, cols, x, isa)
    q, s = quantize_activations(x[None, :])
    isum = codes.astype(np.int64) @ q[0].astype(np.int64)
    np.testing.assert_array_equal(dots, isum.astype(np.float32))
    np.testing.assert_array_equal(y, (isum.astype(np.float32) / s[0] * scale).astype(np.float32))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("rows,cols,n", [(40, 2560, 20), (33, 640, 64), (9, 2568, 17), (5, 200, 33)])
def test_i2_rows_batch_path_is_exact(isa, rows, cols, n):
    # TL1 / TL2 after the repack in a prompt: the I2_S GEMM (AMX, AVX-512) where the rows are whole 128-weight
    # blocks, the multi-token or one-token kernels where they have a tail
    rng = np.random.default_rng(rows + cols + n)
    codes = _codes(rng, rows, cols)
    data = pack_i2_rows(codes, np.float32(0.25))
    x = np.stack([_x(rng, cols) for _ in range(n)])
    dots, path = _core.ternary_matmul(data, I2_ROWS_ID, rows, cols, x, isa)
    assert (path == "gemm") == (isa in ("avx512", "amx") and cols % 128 == 0)
    q, _ = quantize_activations(x)
    np.testing.assert_array_equal(dots, (q.astype(np.int64) @ codes.T.astype(np.int64)).astype(np.float32))


def _tl_cases(shapes):
    """(type, rows, cols) for the shapes each TL type can hold (TL2 needs cols % 32 == 0, TL1 cols % 8 == 0)."""
    return [(name, r, c) for name in ("TL1", "TL2") for r, c in shapes if TYPES[name].check_shape((r, c)) is None]


@pytest.mark.parametrize("type_name,rows,cols",
                         _tl_cases([(32, 8), (64, 96), (32, 200), (96, 640), (64, 1728), (128, 1536)]))
def test_tl_files_run_exactly_after_the_repack(type_name, rows, cols):
    """A TL file's bytes -> the codes (the type table's exact unpack) -> I2_ROWS: the kernels give codes @ q."""
    t = TYPES[type_name]
    rng = np.random.default_rng(rows + cols)
    codes = _codes(rng, rows, cols)
    file_bytes = t.pack_ternary(codes, np.float32(0.5))
    got_codes, scale = t.unpack_ternary(file_bytes, (rows, cols))
    data = pack_i2_rows(got_codes, scale)
    x = _x(rng, cols)
    q, _ = quantize_activations(x[None, :])
    want = (codes.astype(np.int64) @ q[0].astype(np.int64)).astype(np.float32)
    for isa in ISAS:
        dots, _ = _core.ternary_matvec(data, I2_ROWS_ID, rows, cols, x, isa)
        np.testing.assert_array_equal(dots, want)


@pytest.mark.parametrize("isa", ISAS)
def test_new_kernels_agree_across_levels_bitwise(isa):
    rng = np.random.default_rng(12)
    codes = _codes(rng, 9, 2560)
    x = _x(rng, 2560)
    cases = [(TYPES["TQ1_0"].pack_ternary(codes, np.float32(0.37)), 34, 2560),
             (pack_i2_rows(codes[:, :2536], np.float32(0.37)), I2_ROWS_ID, 2536)]
    for data, type_id, cols in cases:
        want = _core.ternary_matvec(data, type_id, 9, cols, x[:cols], "scalar")
        got = _core.ternary_matvec(data, type_id, 9, cols, x[:cols], isa)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


# ---- TL2 read in place (bitgguf/_kernels/tl2.c, tl2_avx2.c) ---------------------------------------------------

@pytest.mark.parametrize("rows,cols", [(32, 96), (64, 128), (96, 288), (160, 640), (256, 2560), (1536, 1536),
                                       (640, 1728)])
def test_tl2_in_place_kernels_give_codes_at_q(rows, cols):
    """Exact Σ w q from the file's bytes at every level: the generic tiling (BM 32..256, K % 96 tails of 32 and
    64 columns), bitnet.cpp's (1536, 1536) preset (BK 192), and activations at the int8 extremes (|entry| up to 381
    in the int16 sums)."""
    from bitgguf.types import tl_params
    rng = np.random.default_rng(rows + 3 * cols)
    codes = _codes(rng, rows, cols)
    data = TYPES["TL2"].pack_ternary(codes, np.float32(0.5))
    p = tl_params("TL2", rows, cols)
    for q in (rng.integers(-128, 128, cols, dtype=np.int8), np.full(cols, -128, np.int8),
              np.where(np.arange(cols) % 2, 127, -128).astype(np.int8)):
        want = codes.astype(np.int64) @ q.astype(np.int64)
        for isa in ISAS:
            np.testing.assert_array_equal(_core.tl2_matvec(data, rows, cols, p.BM, p.BK, q, isa), want, err_msg=isa)


def test_tl2_in_place_refuses_out_of_range_nibbles(tmp_path):
    """A magnitude above 13 (or a tail pair index above 8) is not TL2 data: refused at load, as the repack does."""
    from bitgguf.types import tl_params
    rows, cols = 64, 160  # K3 = 96, a 64-column tail
    p = tl_params("TL2", rows, cols)
    good = TYPES["TL2"].pack_ternary(np.zeros((rows, cols), np.int8), np.float32(1))
    assert _core.tl2_valid(good, rows, cols, p.BM, p.BK)
    n_mag, n_sign = rows * 96 // 6, rows * 96 // 24
    for at, byte in ((0, 0xE0), (n_mag - 1, 0x0F), (n_mag + n_sign, 0x90), (n_mag + n_sign + rows * 16 - 1, 0x09)):
        bad = good.copy()
        bad[at] = byte
        assert not _core.tl2_valid(bad, rows, cols, p.BM, p.BK), (at, hex(byte))
    with pytest.raises(ValueError, match="too short"):
        _core.tl2_valid(good[:100], rows, cols, p.BM, p.BK)
    with pytest.raises(ValueError, match="does not fit"):
        _core.tl2_valid(good, rows, cols, 48, p.BK)
    path = make_random_gguf(tmp_path / "tl2.gguf", ternary_type="TL2", **SHAPES["odd"])
    with GGUFReader(path) as r:
        t = r.tensor("blk.0.ffn_up.weight")
        offset = t.offset  # absolute: the data section's start plus the tensor's offset
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff")
    from bitgguf.gguf import GGUFError
    with pytest.raises(GGUFError, match="blk.0.ffn_up.weight.*not a valid ternary tensor"):
        Model(path, tl2_in_place=True)


def test_i2_rows_packing_refuses_bad_rows():
    with pytest.raises(ValueError, match="multiple of 8"):
        pack_i2_rows(np.zeros((2, 12), np.int8), 1.0)


# ---- the C repack (bitgguf/_kernels/repack.c) against the numpy unpack ------------------------------------------

def _c_repack():
    return _core.tl_to_i2_rows


@pytest.mark.parametrize("type_name,rows,cols", _tl_cases([(32, 8), (32, 24), (64, 200), (96, 640), (224, 608),
                                                           (160, 1728), (1536, 1536), (256, 4096)]))
def test_c_repack_equals_the_numpy_unpack(type_name, rows, cols):
    """Byte for byte, for the generic rule's tilings and bitnet.cpp presets ((1536, 1536): TL1 bm 64, TL2 BK 192)."""
    repack = _c_repack()
    t = TYPES[type_name]
    from bitgguf.types import tl_params
    rng = np.random.default_rng(rows * 7 + cols)
    codes = _codes(rng, rows, cols)
    data = t.pack_ternary(codes, np.float32(0.75))
    p = tl_params(type_name, rows, cols)
    for n_threads in (1, 2):
        got = repack(type_name, data, rows, cols, p.BM, p.BK, p.bm, np.float32(0.75), n_threads)
        np.testing.assert_array_equal(got, pack_i2_rows(codes, np.float32(0.75)))


def test_c_repack_refuses_non_ternary_bytes():
    repack = _c_repack()
    data = np.full(64 * 32 // 4, 0xFF, dtype=np.uint8)  # pair index 15: not 3*w0 + w1 + 4
    with pytest.raises(ValueError, match="out of range"):
        repack("TL1", data, 64, 32, 64, 32, 32, 1.0)
    with pytest.raises(ValueError, match="does not fit"):
        repack("TL1", data, 64, 32, 48, 32, 32, 1.0)


def test_numpy_repack_fallback_gives_the_same_logits(models, monkeypatch):
    path, ids, _ = models("TL2", "odd")
    with Model(path, n_threads=1) as m:
        fast = m.logits(ids)
    monkeypatch.delattr(_core, "tl_to_i2_rows", raising=False)
    with Model(path, n_threads=1) as m:
        np.testing.assert_array_equal(m.logits(ids), fast)
