"""The numpy reference model against transformers' recorded logits and greedy outputs, and against the GGUF files
bitnet.cpp and llama.cpp wrote (tie-aware: see conftest.assert_teacher_forced)."""
import json

import numpy as np
import pytest
from conftest import (FIXTURES, TINYSTORIES, assert_free_greedy, assert_teacher_forced, expected_greedy,
                      run_convert)

from bitgguf.reference import ReferenceModel, quantize_activations

OUTTYPES = ["i2_s", "tl1", "tl2", "tq1_0", "tq2_0", "f16", "f32"]
LOGIT_FILES = {"Once upon a time": "logits_once.npy", "The little dog": "logits_the.npy",
               "Tom and Lily went to the park. They": "logits_tom.npy"}


@pytest.fixture(scope="module")
def converted(tmp_path_factory, shared):
    """tinystories-ternary-3m converted to every outtype (f32 head), once per module."""
    out = tmp_path_factory.mktemp("tinystories")
    paths = {}
    for outtype in OUTTYPES:
        path = out / f"ts-{outtype}.gguf"
        result = run_convert("hf-to-gguf", TINYSTORIES, "--outfile", path, "--outtype", outtype, "--head-type", "f32")
        assert result.returncode == 0, result.stderr
        paths[outtype] = path
    return paths


def test_activation_rounding_is_half_to_even():
    x = np.array([[127.0, 0.5, 1.5, -0.5, -2.5, 0.0]], np.float32)  # scale 1 exactly: x*s is x
    q, s = quantize_activations(x)
    assert s[0] == 1.0 and q.tolist() == [[127, 0, 2, 0, -2, 0]]
    q, s = quantize_activations(np.zeros((1, 4), np.float32))
    assert s[0] == np.float32(127.0) / np.float32(1e-5) and not q.any()


def test_f32_logits_match_transformers(converted):
    model = ReferenceModel(converted["f32"])
    for prompt, fname in LOGIT_FILES.items():
        ids = expected_greedy()[prompt]["prompt_ids"]
        expected = np.load(TINYSTORIES / fname)
        err = np.abs(model.logits(ids) - expected).max(axis=1)
        assert np.median(err) < 2e-5, f"{prompt!r}: max |diff| per position {err}"


@pytest.mark.parametrize("outtype", OUTTYPES)
def test_every_outtype_follows_transformers_greedy(converted, outtype):
    model = ReferenceModel(converted[outtype])
    for prompt, rec in expected_greedy().items():
        assert_teacher_forced(model.logits, rec["prompt_ids"], rec["greedy_ids"], rec["reference_top2_gaps"],
                              f"{outtype} {prompt!r}")


def test_free_greedy_run_leaves_the_path_only_at_near_ties(converted):
    model = ReferenceModel(converted["i2_s"])
    for prompt, rec in expected_greedy().items():
        generated = model.greedy(rec["prompt_ids"], len(rec["greedy_ids"]))
        assert_free_greedy(generated, rec["greedy_ids"], rec["reference_top2_gaps"], prompt)


@pytest.mark.parametrize("fixture", [
    "bitnet-cpp/tinystories-ternary-3m-bitnetcpp-i2_s.gguf",
    "bitnet-cpp/tiny-2b4t-bitnetcpp-i2_s.gguf",
    "llama-cpp/tinystories-ternary-3m-llamacpp-tq2_0.gguf",
    "llama-cpp/tinystories-ternary-3m-llamacpp-tq1_0.gguf",
])
def test_files_from_other_tools_reproduce_their_recorded_tokens(shared, fixture):
    path = FIXTURES / fixture
    recorded = json.loads(path.with_name(path.name + ".expected.json").read_text())
    model = ReferenceModel(path)
    for rec in recorded["prompts"]:
        assert_teacher_forced(model.logits, rec["prompt_ids"], rec["greedy_ids"], rec["reference_top2_gaps"],
                              f"{fixture} {rec['prompt']!r}")
