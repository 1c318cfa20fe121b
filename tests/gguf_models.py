"""Tiny random BitNet models written as GGUF, for tests of anything that reads models (shared helper).

Weights are random ternary codes times a per-tensor scale, norms random around 1, the tied embedding random
normal: deterministic from `seed`. The file has a tiny byte-level vocabulary (token i is the i-th string of
`_vocab(n_vocab)`) so tokenizer-facing code can load it, but its merges are empty: it is for numbers, not text.
"""
from __future__ import annotations

import os

import numpy as np

from bitgguf.gguf import GGUFValueType, GGUFWriter
from bitgguf.types import TYPES

ARCHS = ("bitnet", "bitnet-25", "bitnet-b1.58")


def _vocab(n_vocab: int) -> list[str]:
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
    tokens = specials + [f"t{i}" for i in range(n_vocab - len(specials))]
    return tokens[:n_vocab]


def make_random_gguf(path: str | os.PathLike, *, n_embd: int = 128, n_layer: int = 2, n_head: int = 4,
                     n_head_kv: int = 2, n_ff: int = 256, n_vocab: int = 301, arch: str = "bitnet-b1.58",
                     ternary_type: str = "I2_S", head_type: str = "F16", seed: int = 0,
                     rope_theta: float = 10000.0, rms_eps: float = 1e-5, n_ctx_train: int = 512,
                     zero_fraction: float = 0.3) -> str:
    """Write a random model to `path` and return the path as a str.

    ternary_type: the 7 linear weights' type (I2_S, TQ2_0, TQ1_0, TL1, TL2, or a float type: then the file holds
    alpha-scaled ternary floats, as `--outtype f32` converters write). head_type: token_embd's type (F16, F32,
    BF16, Q8_0). Shapes must suit the types (I2_S rows: multiples of 128; TQ*: 256).
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    rng = np.random.default_rng(seed)
    head_dim = n_embd // n_head
    q_dim, kv_dim = n_head * head_dim, n_head_kv * head_dim
    wtype, htype, f32 = TYPES[ternary_type], TYPES[head_type], TYPES["F32"]

    def ternary(rows: int, cols: int):
        p = (1.0 - zero_fraction) / 2
        codes = rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=(rows, cols), p=[p, zero_fraction, p])
        scale = np.float32(rng.uniform(0.5, 1.5) / np.sqrt(cols * (1.0 - zero_fraction)))
        if wtype.ternary:
            data = wtype.pack_ternary(codes, scale)
        else:
            data = wtype.quantize(codes.astype(np.float32) * scale)
        return data

    def norm(n: int):
        return f32.quantize(rng.uniform(0.8, 1.2, size=n).astype(np.float32))

    tensors: list[tuple[str, tuple, object, np.ndarray]] = []
    embd = rng.standard_normal((n_vocab, n_embd)).astype(np.float32)
    tensors.append(("token_embd.weight", (n_vocab, n_embd), htype, htype.quantize(embd)))
    tensors.append(("output_norm.weight", (n_embd,), f32, norm(n_embd)))
    for i in range(n_layer):
        p = f"blk.{i}."
        tensors += [
            (p + "attn_norm.weight", (n_embd,), f32, norm(n_embd)),
            (p + "attn_q.weight", (q_dim, n_embd), wtype, ternary(q_dim, n_embd)),
            (p + "attn_k.weight", (kv_dim, n_embd), wtype, ternary(kv_dim, n_embd)),
            (p + "attn_v.weight", (kv_dim, n_embd), wtype, ternary(kv_dim, n_embd)),
            (p + "attn_sub_norm.weight", (q_dim,), f32, norm(q_dim)),
            (p + "attn_output.weight", (n_embd, q_dim), wtype, ternary(n_embd, q_dim)),
            (p + "ffn_norm.weight", (n_embd,), f32, norm(n_embd)),
            (p + "ffn_gate.weight", (n_ff, n_embd), wtype, ternary(n_ff, n_embd)),
            (p + "ffn_up.weight", (n_ff, n_embd), wtype, ternary(n_ff, n_embd)),
            (p + "ffn_sub_norm.weight", (n_ff,), f32, norm(n_ff)),
            (p + "ffn_down.weight", (n_embd, n_ff), wtype, ternary(n_embd, n_ff)),
        ]

    with GGUFWriter(path) as w:
        w.add("general.architecture", arch)
        w.add("general.name", f"random-{arch}-{seed}")
        w.add(f"{arch}.vocab_size", n_vocab)
        w.add(f"{arch}.context_length", n_ctx_train)
        w.add(f"{arch}.embedding_length", n_embd)
        w.add(f"{arch}.block_count", n_layer)
        w.add(f"{arch}.feed_forward_length", n_ff)
        w.add(f"{arch}.rope.dimension_count", head_dim)
        w.add(f"{arch}.attention.head_count", n_head)
        w.add(f"{arch}.attention.head_count_kv", n_head_kv)
        w.add(f"{arch}.attention.layer_norm_rms_epsilon", float(rms_eps))
        w.add(f"{arch}.rope.freq_base", float(rope_theta))
        tokens = _vocab(n_vocab)
        w.add("tokenizer.ggml.model", "gpt2")
        w.add("tokenizer.ggml.tokens", tokens)
        w.add("tokenizer.ggml.token_type", [3 if t.startswith("<|") else 1 for t in tokens],
              element_type=GGUFValueType.INT32)
        w.add("tokenizer.ggml.merges", ["t 0"] if n_vocab > 3 else ["a b"])
        w.add("tokenizer.ggml.bos_token_id", 0)
        w.add("tokenizer.ggml.eos_token_id", 1)
        w.add("tokenizer.ggml.eot_token_id", 2)
        for name, shape, ttype, data in tensors:
            w.add_tensor(name, shape, ttype, lambda data=data: data)
    return os.fspath(path)
