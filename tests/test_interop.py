"""Interop both ways: files written by bitnet.cpp (I2_S) and llama.cpp (TQ1_0, TQ2_0) run at every ISA level and
reproduce their recorded greedy tokens by the tie-aware rule (conftest.py); the same model converted by bitgguf to
each ternary type gives the same tokens; `python -m convert gguf-to-gguf` re-types bitnet.cpp's file losslessly.

test_engine.py already runs each fixture at the default level, teacher-forced and free; here every level runs
teacher-forced, and the converted files run free as well.

Why converted types may differ at near-ties only: the ternary codes are identical in every type, and so are the
integer dot products. I2_S, TL1 and TL2 keep the per-tensor scale in f32; TQ1_0 / TQ2_0 keep it as an f16 d per
256-weight block (alpha rounded to f16: a relative change up to 2^-11 of every weight scale), so their logits move by
~1e-3 relative, which can only swap tokens whose top-2 gap is that small.
"""
import json

import numpy as np
import pytest
from conftest import (FIXTURES, TIE_GAP, TINYSTORIES, assert_free_greedy, assert_teacher_forced, expected_greedy,
                      run_convert)

from bitgguf import isa_levels
from bitgguf.gguf import GGUFReader
from bitgguf.model import Model

ISAS = isa_levels()
FIXTURE_FILES = [
    "bitnet-cpp/tinystories-ternary-3m-bitnetcpp-i2_s.gguf",
    "bitnet-cpp/tiny-2b4t-bitnetcpp-i2_s.gguf",
    "llama-cpp/tinystories-ternary-3m-llamacpp-tq2_0.gguf",
    "llama-cpp/tinystories-ternary-3m-llamacpp-tq1_0.gguf",
]
OUTTYPES = ["i2_s", "tl1", "tl2", "tq1_0", "tq2_0"]


def _recorded(path):
    return json.loads(path.with_name(path.name + ".expected.json").read_text())


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("fixture", FIXTURE_FILES)
def test_fixtures_at_every_level(shared, fixture, isa):
    path = FIXTURES / fixture
    with Model(path, kv_type="f16", isa=isa, n_threads=1) as m:
        assert m.repacked == []  # I2_S, TQ1_0 and TQ2_0 all run in place
        for rec in _recorded(path)["prompts"]:
            assert_teacher_forced(m.logits, rec["prompt_ids"], rec["greedy_ids"], rec["reference_top2_gaps"],
                                  f"{fixture} {isa} {rec['prompt']!r}")


@pytest.fixture(scope="module")
def tinystories_types(tmp_path_factory, shared):
    """outtype -> path of tinystories-ternary-3m converted by bitgguf (f16 head, as llama.cpp's files have)."""
    root = tmp_path_factory.mktemp("ts-types")
    out = {}
    for outtype in OUTTYPES:
        path = root / f"ts-{outtype}.gguf"
        result = run_convert("hf-to-gguf", TINYSTORIES, "--outfile", path, "--outtype", outtype)
        assert result.returncode == 0, result.stderr
        out[outtype] = path
    return out


@pytest.mark.parametrize("outtype", OUTTYPES)
def test_tinystories_in_every_type_follows_transformers(tinystories_types, outtype):
    with Model(tinystories_types[outtype], kv_type="f16") as m:
        assert (len(m.repacked) > 0) == (outtype == "tl1" or (outtype == "tl2" and not m.tl2_in_place))
        for prompt, rec in expected_greedy().items():
            label = f"{outtype} {prompt!r}"
            assert_teacher_forced(m.logits, rec["prompt_ids"], rec["greedy_ids"], rec["reference_top2_gaps"], label)
            generated = list(m.generate(rec["prompt_ids"], max_tokens=len(rec["greedy_ids"]), temperature=0))
            assert_free_greedy(generated, rec["greedy_ids"], rec["reference_top2_gaps"], label)


def test_tinystories_types_agree_with_each_other(tinystories_types):
    """Same codes in every type: I2_S, TL1 and TL2 give bitwise equal logits (same f32 scale, same integers);
    TQ1_0 and TQ2_0 equal each other (same f16 d) and differ from I2_S only by the f16 scale (tiny, near-ties)."""
    logits = {}
    for outtype, path in tinystories_types.items():
        with Model(path, kv_type="f32", n_threads=1) as m:
            logits[outtype] = [m.logits(r["prompt_ids"] + r["greedy_ids"]) for r in expected_greedy().values()]
    for a, b in (("tl1", "i2_s"), ("tl2", "i2_s"), ("tq1_0", "tq2_0")):
        for x, y in zip(logits[a], logits[b]):
            np.testing.assert_array_equal(x, y, err_msg=f"{a} vs {b}")
    for x, y in zip(logits["tq2_0"], logits["i2_s"]):
        top2 = np.sort(y, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] >= TIE_GAP
        np.testing.assert_array_equal(x.argmax(axis=1)[clear], y.argmax(axis=1)[clear])
        assert np.median(np.abs(x - y).max(axis=1) / np.abs(y).max()) < 1e-2


@pytest.mark.parametrize("outtype", ["tq2_0", "tq1_0", "tl1", "tl2"])
def test_bitnet_cpp_file_retyped_runs_and_keeps_its_tokens(shared, tmp_path, outtype):
    """bitnet.cpp's 2B4T-architecture I2_S file -> another type with `python -m convert gguf-to-gguf`: the codes come
    through unchanged (the scale too, up to f16 for the TQ types), and the result reproduces the recorded tokens."""
    src = FIXTURES / "bitnet-cpp" / "tiny-2b4t-bitnetcpp-i2_s.gguf"
    dst = tmp_path / f"tiny-2b4t-{outtype}.gguf"
    result = run_convert("gguf-to-gguf", src, "--outfile", dst, "--outtype", outtype)
    assert result.returncode == 0, result.stderr
    with GGUFReader(src) as a, GGUFReader(dst) as b:
        assert b.arch == a.arch and list(b.tensors) == list(a.tensors)
        n_ternary = 0
        for name, ta in a.tensors.items():
            tb = b.tensors[name]
            if not ta.type.ternary:
                np.testing.assert_array_equal(tb.data, ta.data, err_msg=name)
                continue
            n_ternary += 1
            assert tb.type.name == outtype.upper()
            codes_a, scale_a = ta.type.unpack_ternary(ta.data, ta.shape)
            codes_b, scale_b = tb.type.unpack_ternary(tb.data, tb.shape)
            np.testing.assert_array_equal(codes_b, codes_a, err_msg=name)
            want = np.float16(scale_a) if outtype.startswith("tq") else np.float32(scale_a)
            assert np.float32(scale_b) == np.float32(want), name
        assert n_ternary > 0
    rec = _recorded(src)
    with Model(dst, kv_type="f16") as m:
        for p in rec["prompts"]:
            label = f"{outtype} {p['prompt']!r}"
            assert_teacher_forced(m.logits, p["prompt_ids"], p["greedy_ids"], p["reference_top2_gaps"], label)
            generated = list(m.generate(p["prompt_ids"], max_tokens=len(p["greedy_ids"]), temperature=0))
            assert_free_greedy(generated, p["greedy_ids"], p["reference_top2_gaps"], label)
