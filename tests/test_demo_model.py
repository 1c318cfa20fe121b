"""The demo model shipped in the package (bitgguf/data/demo-shakespeare.gguf, made by tools/train_demo.py).

It must load, carry the architecture and vocabulary it was trained with, and run: the numpy reference follows the
greedy path transformers took on the HF checkpoint (recorded below by tools/check_demo.py), and the engine
(bitgguf.Model) follows the reference's, both by the tie-aware rule of conftest.py.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TIE_GAP, assert_free_greedy, assert_teacher_forced

import bitgguf
from bitgguf.gguf import GGUFReader
from bitgguf.reference import ReferenceModel

DEMO = Path(bitgguf.__file__).resolve().parent / "data" / "demo-shakespeare.gguf"
PROMPT = "ROMEO:\nBut soft, what light"
N_GEN = 24

# Recorded with tools/check_demo.py from the HF checkpoint that tools/train_demo.py writes: the prompt's ids from
# the `tokenizers` library, and transformers' greedy path (BitNetForCausalLM, projections as online AutoBitLinear)
# with its top-2 logit gaps.
HF_PROMPT_IDS = [3069, 2067, 269, 507, 2564, 11, 462, 1303]
HF_GREEDY_IDS = [
    11, 296, 469, 308, 258, 448, 329, 83, 282, 338, 296, 364, 855, 258, 448, 329, 83, 11, 294, 296, 469, 198, 40,
    469
]
HF_GAPS = [
    0.140244, 0.087928, 0.007384, 0.464257, 0.421708, 0.897242, 0.098774, 0.950263, 0.241043, 1.036119, 0.394546,
    0.12166, 0.090111, 0.9175, 0.206624, 0.326596, 1.156939, 0.523901, 1.232899, 0.651387, 0.470497, 0.098086,
    0.053396, 0.42798
]

N_LAYER, N_EMBD, N_HEAD, N_HEAD_KV, N_FF, N_VOCAB, N_CTX = 6, 256, 8, 2, 768, 3072, 256
PROJECTIONS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


@pytest.fixture(scope="module")
def reader():
    assert DEMO.is_file(), f"the shipped demo model is missing: {DEMO}"
    with GGUFReader(DEMO) as r:
        yield r


@pytest.fixture(scope="module")
def ref(reader):
    return ReferenceModel(reader)


@pytest.fixture(scope="module")
def tok(reader):
    from bitgguf.tokenizer import Tokenizer
    return Tokenizer.from_gguf(reader)


@pytest.fixture(scope="module")
def ref_path(ref, tok):
    """The reference's greedy continuation of PROMPT and its top-2 gaps, teacher-forced on that path."""
    prompt_ids = tok.encode(PROMPT)
    greedy = ref.greedy(prompt_ids, N_GEN)
    logits = ref.logits(prompt_ids + greedy[:-1])[len(prompt_ids) - 1:]
    top = np.sort(logits.astype(np.float64), axis=1)
    return prompt_ids, greedy, list(top[:, -1] - top[:, -2])


def test_shipped_file_is_small_and_ternary(reader):
    assert DEMO.stat().st_size < 10 * 2**20, f"{DEMO} is {DEMO.stat().st_size} bytes: keep the package small"
    md = reader.metadata
    assert reader.arch == "bitnet-b1.58"
    arch = reader.arch
    assert md[f"{arch}.block_count"] == N_LAYER
    assert md[f"{arch}.embedding_length"] == N_EMBD
    assert md[f"{arch}.attention.head_count"] == N_HEAD
    assert md[f"{arch}.attention.head_count_kv"] == N_HEAD_KV
    assert md[f"{arch}.feed_forward_length"] == N_FF
    assert md[f"{arch}.context_length"] == N_CTX
    assert md[f"{arch}.rope.freq_base"] == pytest.approx(10000.0)
    assert md["general.file_type"] == 40  # MOSTLY_I2_S
    assert "output.weight" not in reader.tensors  # tied head
    assert reader.tensors["token_embd.weight"].shape == (N_VOCAB, N_EMBD)
    for i in range(N_LAYER):
        for name in PROJECTIONS:
            t = reader.tensors[f"blk.{i}.{name}.weight"]
            assert t.type.name == "I2_S", f"blk.{i}.{name}: {t.type.name}"
    q = reader.tensors["blk.0.attn_q.weight"]
    codes, scale = q.type.unpack_ternary(q.data, q.shape)
    assert set(np.unique(codes)) == {-1, 0, 1} and 0 < scale < 1


def test_vocabulary(reader, tok):
    md = reader.metadata
    assert md["tokenizer.ggml.model"] == "gpt2"
    assert md["tokenizer.ggml.pre"] == "llama-bpe"
    tokens = md["tokenizer.ggml.tokens"]
    assert len(tokens) == N_VOCAB
    # Llama-3 style: the special tokens close the vocabulary
    assert tokens[-3:] == ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
    assert md["tokenizer.ggml.bos_token_id"] == N_VOCAB - 3
    assert md["tokenizer.ggml.eos_token_id"] == N_VOCAB - 2
    assert "<|eot_id|>" in md["tokenizer.chat_template"]
    ids = tok.encode(PROMPT)
    assert ids == HF_PROMPT_IDS, "bitgguf's tokenizer disagrees with the HF tokenizer the model was trained with"
    assert tok.decode(ids) == PROMPT


def test_reference_follows_transformers(ref):
    """Teacher-forced on transformers' recorded path, then free: the reference keeps to it except at near-ties."""
    assert_teacher_forced(ref.logits, HF_PROMPT_IDS, HF_GREEDY_IDS, HF_GAPS, "reference vs transformers")
    got = ref.greedy(HF_PROMPT_IDS, len(HF_GREEDY_IDS))
    assert_free_greedy(got, HF_GREEDY_IDS, HF_GAPS, "reference vs transformers")


def test_reference_greedy_makes_text(ref_path, tok):
    prompt_ids, greedy, _ = ref_path
    text = tok.decode(greedy)
    assert len(text) > 20 and sum(c.isalpha() for c in text) > len(text) / 2, repr(text)
    assert len(set(greedy)) > 3, greedy  # not stuck on one token


def test_reference_predicts_shakespeare(ref, tok):
    """A trained model, not noise: on a famous line its per-token perplexity is far below chance (n_vocab)."""
    ids = tok.encode("HAMLET:\nTo be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer")
    logits = ref.logits(ids)[:-1].astype(np.float64)
    logp = logits - logits.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    nll = -logp[np.arange(len(ids) - 1), ids[1:]].mean()
    assert np.exp(nll) < 100, f"perplexity {np.exp(nll):.1f} on a line of Hamlet"


def test_engine_agrees_with_reference(ref_path):
    import bitgguf.model as model_mod
    prompt_ids, greedy, gaps = ref_path
    assert sum(g >= TIE_GAP for g in gaps) >= len(gaps) // 2, "too many near-ties for a meaningful check"
    with model_mod.Model(DEMO, n_threads=1) as m:
        assert_teacher_forced(m.logits, prompt_ids, greedy, gaps, "engine vs reference")
        got = list(m.generate(prompt_ids, max_tokens=N_GEN, temperature=0.0))
    assert_free_greedy(got, greedy, gaps, "engine vs reference")


def test_cli_runs_the_shipped_model_by_default():
    """The README's first command: no model argument, the demo model answers."""
    r = subprocess.run([sys.executable, "-m", "bitgguf", "-p", PROMPT, "-n", "16", "--temp", "0", "-t", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(PROMPT) and len(r.stdout) > len(PROMPT) + 10, repr(r.stdout)
