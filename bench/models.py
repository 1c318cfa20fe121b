"""Benchmark models: GGUF files with random ternary weights at the real shapes of published BitNet models.

Written straight to GGUF (no checkpoint, no conversion), one tensor at a time, and cached between runs.
Random codes stream through the type table's pack_ternary, so every ternary type gets the same weights.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from bitgguf.gguf import GGUFValueType, GGUFWriter
from bitgguf.types import TYPES


@dataclass(frozen=True)
class Shape:
    arch: str
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    n_ff: int
    n_vocab: int
    rope_theta: float = 10000.0


SHAPES = {
    # microsoft/bitnet-b1.58-2B-4T
    "2b4t": Shape("bitnet-b1.58", 2560, 30, 20, 5, 6912, 128256, 500000.0),
    # 1bitLLM/bitnet_b1_58-large (0.7B) and -3B
    "large": Shape("bitnet", 1536, 24, 16, 16, 4096, 32002),
    "3b": Shape("bitnet", 3200, 26, 32, 32, 8640, 32002),
    # HF1BitLLM/Llama3-8B-1.58 shapes in the BitNet graph
    "8b": Shape("bitnet", 4096, 32, 32, 8, 14336, 128256, 500000.0),
    # 2B4T's shapes in the 1bitLLM `bitnet` graph (SiLU FFN): the arch the bitnet.cpp fork snapshot runs, for
    # same-file comparisons (--llama-bench); the speed of either FFN activation is the same
    "2b4t-silu": Shape("bitnet", 2560, 30, 20, 5, 6912, 128256, 500000.0),
    # for smoke runs (CI): seconds, not minutes
    "tiny": Shape("bitnet-b1.58", 256, 2, 4, 2, 768, 2000),
}


def _byte_symbols() -> list[str]:
    """GPT-2's byte -> printable character map (byte-level BPE vocabularies spell bytes this way)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    extra = iter(range(256, 512))
    return [chr(b) if b in keep else chr(next(extra)) for b in range(256)]


_BYTE_SYMBOLS = _byte_symbols()


def tensor_plan(shape: Shape) -> list[tuple[str, tuple[int, int] | tuple[int], str]]:
    """(name, numpy shape, role) of every tensor; role is 'embd', 'norm' or 'linear'."""
    head_dim = shape.n_embd // shape.n_head
    q_dim, kv_dim = shape.n_head * head_dim, shape.n_head_kv * head_dim
    plan = [("token_embd.weight", (shape.n_vocab, shape.n_embd), "embd"),
            ("output_norm.weight", (shape.n_embd,), "norm")]
    for i in range(shape.n_layer):
        p = f"blk.{i}."
        plan += [
            (p + "attn_norm.weight", (shape.n_embd,), "norm"),
            (p + "attn_q.weight", (q_dim, shape.n_embd), "linear"),
            (p + "attn_k.weight", (kv_dim, shape.n_embd), "linear"),
            (p + "attn_v.weight", (kv_dim, shape.n_embd), "linear"),
            (p + "attn_sub_norm.weight", (q_dim,), "norm"),
            (p + "attn_output.weight", (shape.n_embd, q_dim), "linear"),
            (p + "ffn_norm.weight", (shape.n_embd,), "norm"),
            (p + "ffn_gate.weight", (shape.n_ff, shape.n_embd), "linear"),
            (p + "ffn_up.weight", (shape.n_ff, shape.n_embd), "linear"),
            (p + "ffn_sub_norm.weight", (shape.n_ff,), "norm"),
            (p + "ffn_down.weight", (shape.n_embd, shape.n_ff), "linear"),
        ]
    return plan


def write_random_model(path: str | os.PathLike, shape: Shape, ternary_type: str, head_type: str = "F16",
                       seed: int = 0, progress=None) -> None:
    """Write a random model; memory stays at about one tensor (the embedding is produced in slabs)."""
    wtype, htype, f32 = TYPES[ternary_type.upper()], TYPES[head_type.upper()], TYPES["F32"]
    arch = shape.arch
    rng = np.random.default_rng(seed)

    def linear(rows, cols, seed):
        def produce():
            r = np.random.default_rng(seed)
            codes = (r.integers(0, 3, size=(rows, cols), dtype=np.int8) - 1).astype(np.int8)
            alpha = np.float32(1.0 / np.sqrt(cols))
            if wtype.pack_ternary is None:   # f16 / f32: the alpha-scaled floats (another tool's quantizer input)
                return wtype.quantize(codes.astype(np.float32) * alpha)
            return wtype.pack_ternary(codes, alpha)
        return produce

    def embd(rows, cols, seed):
        def produce():
            r = np.random.default_rng(seed)
            slab = max(1, (1 << 24) // cols)  # whole rows: every head type's blocks stay inside a row
            for start in range(0, rows, slab):
                n = min(slab, rows - start)
                yield htype.quantize((r.standard_normal((n, cols), dtype=np.float32) * 0.05).astype(np.float32))
        return produce

    def norm(n, seed):
        return lambda: f32.quantize(np.random.default_rng(seed).uniform(0.8, 1.2, n).astype(np.float32))

    plan = tensor_plan(shape)
    with GGUFWriter(path) as w:
        w.add("general.architecture", arch)
        w.add("general.name", f"bench-random-{ternary_type.lower()}")
        head_dim = shape.n_embd // shape.n_head
        for key, value in (("vocab_size", shape.n_vocab), ("context_length", 4096),
                           ("embedding_length", shape.n_embd), ("block_count", shape.n_layer),
                           ("feed_forward_length", shape.n_ff), ("rope.dimension_count", head_dim),
                           ("attention.head_count", shape.n_head), ("attention.head_count_kv", shape.n_head_kv)):
            w.add(f"{arch}.{key}", value)
        w.add(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)
        w.add(f"{arch}.rope.freq_base", float(shape.rope_theta))
        # a byte-level vocabulary of placeholder pieces (the 256 byte symbols, then "<i>"): enough for the runtime
        # and llama.cpp to load (llama.cpp looks up the newline byte); the benchmark feeds ids
        tokens = [_BYTE_SYMBOLS[i] if i < 256 else f"<{i}>" for i in range(shape.n_vocab)]
        w.add("tokenizer.ggml.model", "gpt2")
        w.add("tokenizer.ggml.tokens", tokens)
        w.add("tokenizer.ggml.token_type", np.ones(shape.n_vocab, dtype=np.int32))
        w.add("tokenizer.ggml.merges", [], element_type=GGUFValueType.STRING)
        w.add("tokenizer.ggml.bos_token_id", 0)
        w.add("tokenizer.ggml.eos_token_id", 1)
        for i, (name, tshape, role) in enumerate(plan):
            tseed = int(rng.integers(1 << 62)) + i
            if role == "embd":
                w.add_tensor(name, tshape, htype, embd(*tshape, tseed))
            elif role == "norm":
                w.add_tensor(name, tshape, f32, norm(tshape[0], tseed))
            else:
                w.add_tensor(name, tshape, wtype, linear(*tshape, tseed))
        w.write(progress=progress)


def cached_model(cache_dir: str | os.PathLike, name: str, ternary_type: str, head_type: str = "F16",
                 log=print) -> str:
    """Path of the benchmark model, written on first use."""
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, f"{name}-{ternary_type.lower()}-{head_type.lower()}.gguf")
    if not os.path.exists(path):
        log(f"bench: writing {path} (random weights, once)")
        write_random_model(path, SHAPES[name], ternary_type, head_type)
    return path
