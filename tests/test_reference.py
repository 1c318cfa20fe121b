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


def _logits_from_hf_tensors(ck, ids):
    """The forward pass straight from a checkpoint's HF tensors (names, config keys), with the reference's math
    primitives: checks that converter + GGUF + config loading lose nothing on the way."""
    from hf_fixtures import ternary_of

    from bitgguf.reference import attention, bitlinear, relu2, rmsnorm, rope_neox, silu
    cfg, t = ck.config, ck.tensors
    n_head, n_head_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_head
    theta = cfg.get("rope_theta") or cfg["rope_parameters"]["rope_theta"]
    eps, act = cfg["rms_norm_eps"], relu2 if cfg["hidden_act"] == "relu2" else silu
    bitnet = cfg["architectures"][0] == "BitNetForCausalLM"
    attn_sub, ffn_sub = ("self_attn.attn_sub_norm", "mlp.ffn_sub_norm") if bitnet else \
        ("self_attn.inner_attn_ln", "mlp.ffn_layernorm")
    n, pos = len(ids), np.arange(len(ids))
    x = t["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."

        def lin(h, name, p=p):
            return bitlinear(h, *ternary_of(ck, p + name + ".weight"))
        h = rmsnorm(x, t[p + "input_layernorm.weight"], eps)
        q = lin(h, "self_attn.q_proj").reshape(n, n_head, head_dim)
        k = lin(h, "self_attn.k_proj").reshape(n, n_head_kv, head_dim)
        v = lin(h, "self_attn.v_proj").reshape(n, n_head_kv, head_dim)
        a = attention(rope_neox(q, pos, theta), rope_neox(k, pos, theta), v)
        x = x + lin(rmsnorm(a, t[p + attn_sub + ".weight"], eps), "self_attn.o_proj")
        h = rmsnorm(x, t[p + "post_attention_layernorm.weight"], eps)
        ff = act(lin(h, "mlp.gate_proj")) * lin(h, "mlp.up_proj")
        x = x + lin(rmsnorm(ff, t[p + ffn_sub + ".weight"], eps), "mlp.down_proj")
    return rmsnorm(x, t["model.norm.weight"], eps) @ t["model.embed_tokens.weight"].T


@pytest.mark.parametrize("kind,packed,linear_class", [
    ("2b4t", False, None), ("2b4t", True, "autobitlinear"), ("2b4t", True, "bitlinear"), ("2b4t", True, None),
    ("1bitllm", False, None)])
def test_reference_on_converted_checkpoints_equals_numpy_from_hf_tensors(tmp_path, kind, packed, linear_class):
    from hf_fixtures import make_1bitllm_checkpoint, make_2b4t_checkpoint
    if kind == "1bitllm":
        ck = make_1bitllm_checkpoint(tmp_path / "hf")
    else:  # GQA 4:1; packed with linear_class None: the converter decides by the scales' magnitude
        ck = make_2b4t_checkpoint(tmp_path / "hf", n_head=8, n_head_kv=2, packed=packed, linear_class=linear_class)
    out = tmp_path / "m.gguf"
    result = run_convert("hf-to-gguf", ck.path, "--outfile", out, "--outtype", "i2_s", "--head-type", "f32")
    assert result.returncode == 0, result.stderr
    ids = list(np.random.default_rng(0).integers(0, ck.config["vocab_size"], size=70))
    got, want = ReferenceModel(out).logits(ids), _logits_from_hf_tensors(ck, ids)
    err = np.abs(got - want).max(axis=1) / np.abs(want).max()
    # same math, same weights: equal up to float order, except where a 1-ulp difference moves an int8 activation
    # across a rounding boundary (then that position differs by about one activation step)
    assert err[0] < 1e-6 and np.median(err) < 1e-6, err
    assert err.max() < 3e-2, err
