"""GGUF reader and writer: round trips, compatibility with gguf-py, and every kind of malformed file."""
import os
import struct

import numpy as np
import pytest

from bitgguf.gguf import GGUFError, GGUFReader, GGUFValueType, GGUFWriter, StringArray
from bitgguf.types import TYPES

F32, F16 = TYPES["F32"], TYPES["F16"]


def _write_sample(path, alignment=32, extra=None, arch="bitnet"):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 5)).astype(np.float32)
    b = rng.standard_normal((7,)).astype(np.float32)
    with GGUFWriter(path, alignment=alignment) as w:
        w.add("general.architecture", arch)
        w.add("u8", 200, GGUFValueType.UINT8)
        w.add("i8", -100, GGUFValueType.INT8)
        w.add("u16", 60000, GGUFValueType.UINT16)
        w.add("i16", -30000, GGUFValueType.INT16)
        w.add("u32", 4000000000)
        w.add("i32", -2000000000, GGUFValueType.INT32)
        w.add("f32", 1e-10)
        w.add("bool", True)
        w.add("str", "héllo ▁world")
        w.add("u64", 1 << 40, GGUFValueType.UINT64)
        w.add("i64", -(1 << 40), GGUFValueType.INT64)
        w.add("f64", 0.1, GGUFValueType.FLOAT64)
        w.add("arr_str", ["a", "", "ü"])
        w.add("arr_f32", [0.5, -1.0])
        w.add("arr_i32", np.array([1, -2, 3], dtype=np.int32))
        w.add("arr_nested", [[1, 2], [3]], element_type=GGUFValueType.ARRAY)
        for key, value in (extra or {}).items():
            w.add(key, value)
        w.add_tensor("a", a.shape, F32, lambda: F32.quantize(a))
        w.add_tensor("b", b.shape, F16, lambda: F16.quantize(b))
    return a, b


def test_round_trip_all_value_types(tmp_path):
    path = tmp_path / "m.gguf"
    a, b = _write_sample(path)
    with GGUFReader(path) as r:
        m = r.metadata
        assert r.version == 3 and r.arch == "bitnet"
        assert (m["u8"], m["i8"], m["u16"], m["i16"]) == (200, -100, 60000, -30000)
        assert (m["u32"], m["i32"], m["u64"], m["i64"]) == (4000000000, -2000000000, 1 << 40, -(1 << 40))
        assert m["f32"] == pytest.approx(1e-10, rel=1e-7) and m["f64"] == 0.1
        assert m["bool"] is True and m["str"] == "héllo ▁world"
        assert m["arr_str"] == ["a", "", "ü"] and m["arr_str"] != ["a", "", "u"] and m["arr_str"] != ["a", ""]
        assert isinstance(m["arr_str"], StringArray)  # bytes and offsets, not 128k Python strings
        assert (m["arr_str"][2], m["arr_str"][-1], m["arr_str"][1], m["arr_str"][1:]) == ("ü", "ü", "", ["", "ü"])
        assert list(m["arr_str"]) == ["a", "", "ü"] and len(m["arr_str"]) == 3 and "ü" in m["arr_str"]
        with pytest.raises(IndexError):
            m["arr_str"][3]
        assert m["arr_f32"].tolist() == [0.5, -1.0] and m["arr_i32"].tolist() == [1, -2, 3]
        assert [x.tolist() for x in m["arr_nested"]] == [[1, 2], [3]]
        assert r.metadata_types["u16"] == GGUFValueType.UINT16
        ta, tb = r.tensor("a"), r.tensor("b")
        assert ta.shape == (3, 5) and ta.ne == (5, 3) and ta.type is F32
        assert np.array_equal(F32.dequantize(ta.data, ta.shape), a)
        assert np.array_equal(F16.dequantize(tb.data, tb.shape), b.astype(np.float16).astype(np.float32))
        assert ta.offset % 32 == 0 and tb.offset % 32 == 0
        assert not ta.data.flags.owndata  # a view of the map, not a copy
        with pytest.raises(GGUFError, match="missing tensor 'c'"):
            r.tensor("c")


def test_gguf_py_reads_our_files(tmp_path):
    gguf = pytest.importorskip("gguf")
    path = tmp_path / "m.gguf"
    a, _ = _write_sample(path)
    r = gguf.GGUFReader(str(path))
    assert str(bytes(r.fields["str"].parts[-1]), "utf-8") == "héllo ▁world"
    t = {t.name: t for t in r.tensors}["a"]
    assert np.array_equal(np.asarray(t.data).reshape(3, 5), a)


def test_alignment_and_version_2(tmp_path):
    path = tmp_path / "m.gguf"
    a, _ = _write_sample(path, alignment=64)
    with GGUFReader(path) as r:
        assert r.alignment == 64 and all(t.offset % 64 == 0 for t in r.tensors.values())
    raw = bytearray(path.read_bytes())
    raw[4:8] = struct.pack("<I", 2)  # v2 has v3's layout
    path.write_bytes(raw)
    with GGUFReader(path) as r:
        assert r.version == 2
        assert np.array_equal(F32.dequantize(r.tensor("a").data, (3, 5)), a)


def test_writer_is_atomic(tmp_path):
    path = tmp_path / "out.gguf"

    def boom():
        raise RuntimeError("producer failed")

    with pytest.raises(RuntimeError, match="producer failed"):
        with GGUFWriter(path) as w:
            w.add("general.architecture", "bitnet")
            w.add_tensor("x", (4,), F32, lambda: np.zeros(4, np.float32).view(np.uint8))
            w.add_tensor("y", (4,), F32, boom)
    assert os.listdir(tmp_path) == []

    with pytest.raises(ValueError, match="produced 8 bytes, expected 16"):
        with GGUFWriter(path) as w:
            w.add_tensor("x", (4,), F32, lambda: np.zeros(2, np.float32).view(np.uint8))
    assert os.listdir(tmp_path) == []

    with pytest.raises(KeyboardInterrupt):  # an interrupt mid-write leaves nothing either
        with GGUFWriter(path) as w:
            w.add_tensor("x", (4,), F32, lambda: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert os.listdir(tmp_path) == []


def test_writer_streams_chunks_and_sets_a_normal_mode(tmp_path):
    path = tmp_path / "chunks.gguf"
    x = np.arange(12, dtype=np.float32)
    with GGUFWriter(path) as w:
        w.add_tensor("x", (3, 4), F32, lambda: (F32.quantize(x[i:i + 4]) for i in range(0, 12, 4)))
    with GGUFReader(path) as r:
        assert np.array_equal(F32.dequantize(r.tensor("x").data, (3, 4)), x.reshape(3, 4))
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(ValueError, match="produced more than 64 bytes, expected 48"):
        with GGUFWriter(tmp_path / "y.gguf") as w:
            w.add_tensor("x", (3, 4), F32, lambda: (F32.quantize(x[:8]) for _ in range(2)))
    assert not (tmp_path / "y.gguf").exists()


def test_writer_rejects_bad_declarations(tmp_path):
    w = GGUFWriter(tmp_path / "x.gguf")
    w.add("k", 1)
    with pytest.raises(ValueError, match="added twice"):
        w.add("k", 2)
    with pytest.raises(ValueError, match="cannot be Q8_0"):
        w.add_tensor("t", (2, 33), TYPES["Q8_0"], lambda: None)


def _header_end(path):
    with GGUFReader(path) as r:
        return r.data_offset


def test_truncated_anywhere_is_a_clean_error(tmp_path):
    path = tmp_path / "m.gguf"
    _write_sample(path)
    raw = path.read_bytes()
    cut = tmp_path / "cut.gguf"
    with GGUFReader(path) as r:
        data_end = max(t.offset + t.nbytes for t in r.tensors.values())
    # every prefix of the header, and a few of the data section (the padding after the last tensor is optional)
    lengths = list(range(0, _header_end(path) + 1)) + list(range(_header_end(path), data_end, 7))
    for n in lengths:
        cut.write_bytes(raw[:n])
        with pytest.raises(GGUFError, match="cut.gguf"):
            GGUFReader(cut)
        if n % 5 == 0:   # read into memory instead of mapped (--no-mmap): the same checks
            with pytest.raises(GGUFError, match="cut.gguf"):
                GGUFReader(cut, use_mmap=False)
    cut.write_bytes(raw[:data_end])
    GGUFReader(cut).close()
    with GGUFReader(cut, use_mmap=False) as r, GGUFReader(cut) as m:
        for name, t in m.tensors.items():
            np.testing.assert_array_equal(r.tensors[name].data, t.data)


def _patch(path, offset, fmt, value, out):
    raw = bytearray(path.read_bytes())
    struct.pack_into(fmt, raw, offset, value)
    out.write_bytes(raw)
    return out


def _tensor_info_offsets(path):
    """Byte offsets of each field of the first tensor info (name length, n_dims, ne0, type, offset)."""
    raw = path.read_bytes()
    idx = raw.index(struct.pack("<Q", 1) + b"a" + struct.pack("<I", 2))  # the writer's layout of tensor "a"
    return {"name_len": idx, "n_dims": idx + 9, "ne0": idx + 13, "ne1": idx + 21, "type": idx + 29,
            "offset": idx + 33}


@pytest.mark.parametrize("field,fmt,value,message", [
    ("n_dims", "<I", 5, "n_dims 5"),
    ("n_dims", "<I", 0xFFFFFFFF, "n_dims"),
    ("n_dims", "<I", 0, "n_dims 0"),
    ("ne0", "<Q", 0, "dimension 0"),
    ("ne0", "<Q", 1 << 62, "dimension"),
    ("ne1", "<Q", 1 << 39, "needs bytes"),
    ("type", "<I", 99, "unsupported ggml type 99"),
    ("type", "<I", 39, "MXFP4"),
    ("offset", "<Q", 1 << 50, "needs bytes"),
    ("offset", "<Q", 3, "not a multiple of the alignment"),
    ("name_len", "<Q", 1 << 60, "truncated"),
])
def test_lying_tensor_infos(tmp_path, field, fmt, value, message):
    path = tmp_path / "m.gguf"
    # under a BitNet arch id 39 is TL2; elsewhere it is upstream's MXFP4, which we refuse
    _write_sample(path, arch="llama" if value == 39 else "bitnet")
    where = _tensor_info_offsets(path)[field]
    bad = _patch(path, where, fmt, value, tmp_path / "bad.gguf")
    with pytest.raises(GGUFError, match=message):
        GGUFReader(bad)


@pytest.mark.parametrize("offset,fmt,value,message", [
    (0, "<I", 0x46554746, "not a GGUF file"),
    (4, "<I", 1, "unsupported GGUF version 1"),
    (4, "<I", 4, "unsupported GGUF version 4"),
    (8, "<Q", 1 << 40, "too small"),
    (16, "<Q", 1 << 40, "too small"),
    (24, "<Q", 1 << 62, "truncated"),          # first key's length
])
def test_lying_header(tmp_path, offset, fmt, value, message):
    path = tmp_path / "m.gguf"
    _write_sample(path)
    bad = _patch(path, offset, fmt, value, tmp_path / "bad.gguf")
    with pytest.raises(GGUFError, match=message):
        GGUFReader(bad)


def _kv_file(tmp_path, key, vtype, payload, n_kv=1):
    raw = b"GGUF" + struct.pack("<IQQ", 3, 0, n_kv)
    raw += struct.pack("<Q", len(key)) + key + struct.pack("<I", vtype) + payload
    p = tmp_path / "kv.gguf"
    p.write_bytes(raw)
    return p


@pytest.mark.parametrize("vtype,payload,message", [
    (13, b"", "unknown value type 13"),
    (9, struct.pack("<IQ", 4, 1 << 61), "claims"),          # u32 array, absurd count
    (9, struct.pack("<IQ", 8, 1 << 40), "claims"),          # string array, absurd count
    (9, struct.pack("<IQ", 8, 1) + struct.pack("<Q", 1 << 62), "truncated"),
    (9, struct.pack("<IQ", 77, 1), "unknown value type 77"),
    (8, struct.pack("<Q", 3) + b"\xff\xfe\xfd", "not valid UTF-8"),
    (6, b"\x00\x00", "truncated"),
])
def test_lying_metadata(tmp_path, vtype, payload, message):
    with pytest.raises(GGUFError, match=message):
        GGUFReader(_kv_file(tmp_path, b"k", vtype, payload))


def test_deep_nesting_and_bad_alignment(tmp_path):
    nested = struct.pack("<IQ", 9, 1) * 6 + struct.pack("<IQ", 4, 0)
    with pytest.raises(GGUFError, match="deeper"):
        GGUFReader(_kv_file(tmp_path, b"k", 9, nested))
    with pytest.raises(GGUFError, match="general.alignment"):
        GGUFReader(_kv_file(tmp_path, b"general.alignment", 4, struct.pack("<I", 3)))
    with pytest.raises(GGUFError, match="cannot open"):
        GGUFReader(tmp_path / "missing.gguf")
    (tmp_path / "empty.gguf").write_bytes(b"")
    with pytest.raises(GGUFError, match="empty file"):
        GGUFReader(tmp_path / "empty.gguf")


def test_random_corruption_never_crashes(tmp_path):
    """Flip random header bytes: the reader either loads or raises GGUFError, nothing else."""
    path = tmp_path / "m.gguf"
    _write_sample(path)
    raw = path.read_bytes()
    end = _header_end(path)
    rng = np.random.default_rng(1)
    bad = tmp_path / "bad.gguf"
    for _ in range(300):
        mutated = bytearray(raw)
        for pos in rng.integers(0, end, size=rng.integers(1, 4)):
            mutated[pos] = rng.integers(0, 256)
        bad.write_bytes(mutated)
        try:
            GGUFReader(bad).close()
        except GGUFError:
            pass


def _rss_file_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssFile:"):
                return int(line.split()[1])
    return None


@pytest.mark.parametrize("use_mmap", [True, False])
def test_drop_pages_keeps_the_bytes_and_frees_the_map(tmp_path, use_mmap):
    """A repacked tensor's pages are let go after load (GGUFReader.drop_pages): the bytes must read back the same
    (a file map re-reads them; a --no-mmap copy keeps them), and on Linux a file map's resident pages must go."""
    path = tmp_path / "big.gguf"
    big = np.random.default_rng(1).standard_normal(4 << 20).astype(np.float32).view(np.uint8)  # 16 MiB
    small = np.arange(1000, dtype=np.float32)
    with GGUFWriter(path) as w:
        w.add("general.architecture", "bitnet")
        w.add_tensor("small", small.shape, F32, lambda: small.view(np.uint8))
        w.add_tensor("big", (4 << 20,), F32, lambda: big)
        w.write()
    r = GGUFReader(path, use_mmap=use_mmap)
    try:
        t = r.tensor("big")
        assert int(t.data.sum(dtype=np.int64)) == int(big.sum(dtype=np.int64))  # every page touched
        before = _rss_file_kib()
        assert not r.pages_dropped
        r.drop_pages(t)
        after = _rss_file_kib()
        assert r.pages_dropped is use_mmap  # what the bench's probe of the map checks
        np.testing.assert_array_equal(r.tensor("small").data.view(np.float32), small)
        if use_mmap and before is not None:
            assert before - after >= (16 << 10) - 64, (before, after)  # KiB: all but the partial edge pages
        np.testing.assert_array_equal(t.data, big)
    finally:
        r.close()
