"""bitgguf.Model (the C engine) against the numpy reference on tiny random models, at every ISA level this CPU runs.

Tolerance. The ternary dot products are exact integers in both, so with an f32 KV cache the logits differ only by
float summation order (norms, attention, the f32 head): below ORDER_TOL = 1e-6 of max|logit|. Such a 1-ulp
difference can, rarely, move an int8 activation across a rounding boundary; that flip changes the logits by up to
~1e-2 of max|logit| at that position and, through its K/V, at every later one (the reference itself does the same
when its RMSNorm merely sums in float64 instead of float32). So: every position within FLIP_TOL = 3e-2, the argmax
equal wherever the reference's top-2 gap is clear, and on the random models (built so flips are rare) the median
position within ORDER_TOL.
"""
import json
import os

import numpy as np
import pytest
from conftest import (FIXTURES, TINYSTORIES, assert_free_greedy, assert_teacher_forced, expected_greedy,
                      run_convert)

from bitgguf import GGUFError, isa_levels
from bitgguf.model import Model
from bitgguf.reference import ReferenceModel
from gguf_models import make_random_gguf

ISAS = isa_levels()
ORDER_TOL = 1e-6   # float order only, relative to max|logit|
FLIP_TOL = 3e-2    # after an int8 rounding flip upstream
N_TOKENS = 132     # past the engine's 128-token batches

CONFIGS = {
    # name: make_random_gguf arguments (GQA ratios 1, 2, 4; relu2 and silu; odd vocabularies; each head type)
    "mha-relu2-f16": dict(n_head=4, n_head_kv=4, arch="bitnet-b1.58", n_vocab=301, head_type="F16"),
    "gqa2-silu-f32": dict(n_head=4, n_head_kv=2, arch="bitnet", n_vocab=257, head_type="F32", seed=1),
    "gqa4-relu2-tq2-q8": dict(n_embd=256, n_ff=512, n_head=8, n_head_kv=2, arch="bitnet-25", n_vocab=509,
                              head_type="Q8_0", ternary_type="TQ2_0", seed=2),
    "gqa4-relu2-bf16": dict(n_head=4, n_head_kv=1, n_layer=3, arch="bitnet-b1.58", n_vocab=263, head_type="BF16",
                            seed=3),
    "float-linears": dict(n_head=4, n_head_kv=2, arch="bitnet", n_vocab=263, ternary_type="F32", seed=4),
    # heads of 8: not a multiple of 16, so the x86 levels run the per-head attention path, not the blocks
    "small-heads": dict(n_head=16, n_head_kv=8, arch="bitnet", n_vocab=263, seed=5),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> (path, token ids, reference logits)"""
    root = tmp_path_factory.mktemp("engine")
    out = {}
    for name, cfg in CONFIGS.items():
        path = make_random_gguf(root / f"{name}.gguf", **cfg)
        ids = np.random.default_rng(len(name)).integers(0, cfg["n_vocab"], N_TOKENS).tolist()
        out[name] = (path, ids, ReferenceModel(path).logits(ids))
    return out


def assert_logits_match(got, ref, label="", flips_rare=True):
    assert got.shape == ref.shape and got.dtype == np.float32
    err = np.abs(got - ref).max(axis=1) / np.abs(ref).max()
    assert err.max() <= FLIP_TOL, f"{label}: worst position {err.argmax()} differs by {err.max():.2e} of max|logit|"
    assert err[0] <= ORDER_TOL, f"{label}: the first position differs by {err[0]:.2e}"
    if flips_rare:
        assert np.median(err) <= ORDER_TOL, f"{label}: median position differs by {np.median(err):.2e}"
    top2 = np.sort(ref, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 0.05 * np.abs(ref).max()
    np.testing.assert_array_equal(got.argmax(axis=1)[clear], ref.argmax(axis=1)[clear])


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", CONFIGS)
def test_logits_match_reference(models, name, isa):
    path, ids, ref = models[name]
    with Model(path, kv_type="f32", isa=isa, n_threads=1) as m:
        assert m.isa == isa
        got = m.logits(ids)
        assert m.n_past == len(ids)
    assert_logits_match(got, ref, f"{name} on {isa}")


@pytest.mark.parametrize("name", ["mha-relu2-f16", "gqa4-relu2-tq2-q8"])
def test_thread_count_does_not_change_logits(models, name):
    path, ids, _ = models[name]
    results = []
    for n_threads in (1, 2, 3):
        with Model(path, kv_type="f16", n_threads=n_threads) as m:
            results.append(m.logits(ids))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_no_mmap_gives_the_same_logits(models):
    """mmap=False (--no-mmap) reads the weights into memory: same bytes, same logits."""
    path, ids, _ = models["gqa4-relu2-tq2-q8"]
    with Model(path, n_threads=2) as mapped, Model(path, n_threads=2, mmap=False) as read:
        assert "memory map" in mapped.load_info and "read at load" in read.load_info
        np.testing.assert_array_equal(read.logits(ids), mapped.logits(ids))


def test_batched_prompt_equals_token_by_token(models):
    path, ids, _ = models["gqa2-silu-f32"]
    with Model(path, n_threads=2) as m:
        batched = m.logits(ids)
        m.reset()
        assert m.n_past == 0
        one_by_one = np.stack([m.eval([t]) for t in ids])
        assert m.n_past == len(ids)
        m.reset()
        starts = range(0, len(ids), 7)
        chunks = [m.eval(ids[i:i + 7]) for i in starts]  # each returns its last token's logits
    np.testing.assert_array_equal(batched, one_by_one)
    for i, got in zip(starts, chunks):
        np.testing.assert_array_equal(got, batched[min(i + 6, len(ids) - 1)])


@pytest.mark.parametrize("isa", [i for i in ISAS if i not in ("scalar", "neon", "neon_dotprod")])
@pytest.mark.parametrize("kv_type", ["f16", "f32"])
def test_long_decode_in_three_passes_equals_the_batch(models, isa, kv_type):
    """With 2+ threads, a decode step's attention at the x86 levels runs in three passes on the pool (scores by K
    tile, softmax by KV head, outputs by KV head and range of values): the same operations per value as the
    prompt's blocks, so token by token gives bitwise the batch's logits (300 tokens: three K tiles)."""
    path, _, _ = models["gqa4-relu2-bf16"]
    ids = np.random.default_rng(11).integers(0, 263, 300).tolist()
    with Model(path, n_threads=2, isa=isa, kv_type=kv_type, n_ctx=320) as m:
        batched = m.logits(ids)
        m.reset()
        one_by_one = np.stack([m.eval([t]) for t in ids])
    np.testing.assert_array_equal(one_by_one, batched)


@pytest.mark.parametrize("name", ["gqa2-silu-f32", "gqa4-relu2-bf16"])
def test_long_context_gives_the_same_logits(models, name):
    """A long n_ctx shrinks the attention blocks (fewer tokens per block, to bound the score scratch): each output is
    the same operations whatever the block, so the logits are bitwise those of a short context."""
    path, ids, _ = models[name]
    with Model(path, n_threads=2, n_ctx=40000) as long, Model(path, n_threads=2, n_ctx=256) as short:
        np.testing.assert_array_equal(long.logits(ids), short.logits(ids))


@pytest.mark.parametrize("name", ["mha-relu2-f16", "gqa4-relu2-bf16"])
def test_f16_kv_cache_is_close_to_f32(models, name):
    path, ids, ref = models[name]
    with Model(path, kv_type="f16", n_threads=1) as m16, Model(path, kv_type="f32", n_threads=1) as m32:
        a, b = m16.logits(ids), m32.logits(ids)
    err = np.abs(a - b).max(axis=1) / np.abs(b).max()
    assert err.max() <= 5e-2  # f16 rounding of K/V (5e-4) flips some int8 activations downstream
    assert (a.argmax(axis=1) == b.argmax(axis=1)).mean() >= 0.95


def test_weights_are_used_in_place(models):
    path, _, _ = models["mha-relu2-f16"]
    with Model(path) as m:
        assert m.repacked == []
    path, ids, ref = models["float-linears"]
    with Model(path) as m:  # float linears are repacked to I2_S, as the reference reads them
        assert len(m.repacked) == 7 * 2


def test_greedy_generation_follows_the_logits(models):
    path, ids, _ = models["gqa2-silu-f32"]
    prompt = ids[:10]
    with Model(path, kv_type="f32") as m:
        out = list(m.generate(prompt, max_tokens=12, temperature=0))
        assert len(out) == 12
        full = m.logits(prompt + out)
    np.testing.assert_array_equal(full[len(prompt) - 1:-1].argmax(axis=1), out)


def test_sampling_with_a_seed_is_repeatable_and_stops(models):
    path, ids, _ = models["mha-relu2-f16"]
    with Model(path) as m:
        a = list(m.generate(ids[:5], max_tokens=20, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=42))
        b = list(m.generate(ids[:5], max_tokens=20, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=42))
        assert a == b and len(a) == 20
        greedy = list(m.generate(ids[:5], max_tokens=8, temperature=0))
        stopped = list(m.generate(ids[:5], max_tokens=8, temperature=0, stop=[greedy[3]]))
        assert stopped == greedy[:greedy.index(greedy[3])]
        eos = 1  # the test vocabulary's EOS
        assert eos not in list(m.generate(ids[:5], max_tokens=30, temperature=5.0, top_k=0, top_p=1.0, min_p=0,
                                          seed=1))


def test_context_limit_and_bad_input(models):
    path, ids, _ = models["mha-relu2-f16"]
    with Model(path, n_ctx=16) as m:
        assert m.n_ctx == 16
        m.eval(ids[:10])
        with pytest.raises(ValueError, match="context full"):
            m.eval(ids[:7])
        assert m.n_past == 10
        with pytest.raises(ValueError, match="out of range"):
            m.logits([0, 301])
        with pytest.raises(ValueError, match="non-empty"):
            m.logits([])
        out = list(m.generate(ids[:10], max_tokens=100, temperature=0))
        assert len(out) == 7  # 6 fill the context; the 7th is sampled from the last logits, then it stops
    with pytest.raises(ValueError, match="closed"):
        m.eval([1])


def test_isa_choice_and_errors(models, monkeypatch):
    path, ids, _ = models["mha-relu2-f16"]
    monkeypatch.setenv("BITGGUF_ISA", "scalar")
    with Model(path) as m:
        assert m.isa == "scalar"
    monkeypatch.setenv("BITGGUF_ISA", "sse9")
    with pytest.raises(ValueError, match="unknown ISA level 'sse9'"):
        Model(path)
    monkeypatch.delenv("BITGGUF_ISA")
    unsupported = [i for i in ("avx2", "avx512", "neon", "neon_dotprod") if i not in ISAS]
    with pytest.raises(ValueError, match="not supported by this CPU"):
        Model(path, isa=unsupported[0])
    with pytest.raises(ValueError, match="kv_type"):
        Model(path, kv_type="q8")


def test_bad_files_name_the_problem(tmp_path):
    bad = tmp_path / "nothing.gguf"
    bad.write_bytes(b"GGUF")
    with pytest.raises(GGUFError, match="nothing.gguf"):
        Model(bad)
    with pytest.raises(GGUFError, match="cannot open"):
        Model(tmp_path / "missing.gguf")
    assert not os.path.exists(tmp_path / "missing.gguf")


# ---- real models: tinystories-ternary-3m converted by bitgguf, and the files bitnet.cpp / llama.cpp wrote ----------

FIXTURE_FILES = [
    "bitnet-cpp/tinystories-ternary-3m-bitnetcpp-i2_s.gguf",
    "bitnet-cpp/tiny-2b4t-bitnetcpp-i2_s.gguf",
    "llama-cpp/tinystories-ternary-3m-llamacpp-tq2_0.gguf",
    "llama-cpp/tinystories-ternary-3m-llamacpp-tq1_0.gguf",
]


@pytest.fixture(scope="module")
def tinystories_i2s(tmp_path_factory, shared):
    path = tmp_path_factory.mktemp("ts") / "ts-i2_s.gguf"
    result = run_convert("hf-to-gguf", TINYSTORIES, "--outfile", path, "--outtype", "i2_s", "--head-type", "f32")
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def tinystories_reference(tinystories_i2s):
    """[(ids, reference logits)] for each recorded prompt + greedy path."""
    ref = ReferenceModel(tinystories_i2s)
    return [(ids, ref.logits(ids)) for ids in (r["prompt_ids"] + r["greedy_ids"] for r in expected_greedy().values())]


@pytest.mark.parametrize("isa", ISAS)
def test_tinystories_logits_match_reference(tinystories_i2s, tinystories_reference, isa):
    with Model(tinystories_i2s, kv_type="f32", isa=isa) as m:
        for ids, ref in tinystories_reference:
            assert_logits_match(m.logits(ids), ref, f"tinystories {isa}", flips_rare=False)


@pytest.mark.parametrize("kv_type", ["f16", "f32"])
def test_tinystories_greedy_follows_transformers(tinystories_i2s, kv_type):
    with Model(tinystories_i2s, kv_type=kv_type) as m:
        for prompt, rec in expected_greedy().items():
            assert m.tokenize(prompt) == rec["prompt_ids"]
            assert_teacher_forced(m.logits, rec["prompt_ids"], rec["greedy_ids"], rec["reference_top2_gaps"],
                                  f"{kv_type} {prompt!r}")
            generated = list(m.generate(prompt, max_tokens=len(rec["greedy_ids"]), temperature=0))
            assert_free_greedy(generated, rec["greedy_ids"], rec["reference_top2_gaps"], f"{kv_type} {prompt!r}")


@pytest.mark.parametrize("fixture", FIXTURE_FILES)
def test_files_from_other_tools_reproduce_their_recorded_tokens(shared, fixture):
    path = FIXTURES / fixture
    recorded = json.loads(path.with_name(path.name + ".expected.json").read_text())
    with Model(path, kv_type="f16") as m:
        for rec in recorded["prompts"]:
            label = f"{fixture} {rec['prompt']!r}"
            assert_teacher_forced(m.logits, rec["prompt_ids"], rec["greedy_ids"], rec["reference_top2_gaps"], label)
            generated = list(m.generate(rec["prompt_ids"], max_tokens=len(rec["greedy_ids"]), temperature=0))
            assert_free_greedy(generated, rec["greedy_ids"], rec["reference_top2_gaps"], label)


def test_api_surface(models):
    path, ids, _ = models["gqa2-silu-f32"]
    with Model(path, n_threads=1, n_ctx=64) as m:
        assert m.metadata["general.architecture"] == "bitnet"
        assert m.config.ffn_act == "silu" and m.config.n_head_kv == 2
        assert m.n_vocab == 257 and m.n_ctx == 64 and m.n_threads == 1
        m.n_threads = 2
        assert m.n_threads == 2
        last = m.eval(ids[:5])
        assert last.shape == (257,) and last.dtype == np.float32 and m.n_past == 5
        np.testing.assert_array_equal(last, m.logits(ids[:5])[-1])
        assert "bitnet" in repr(m)
    m.close()  # closing twice is fine
