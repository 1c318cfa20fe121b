"""The numpy forward pass of a BitNet b1.58 model: the oracle every kernel is tested against.

Plain float32 math, read top to bottom. BitLinear is: per-token absmax int8 activations, ternary weights,
an exact integer dot product, then one rescale `isum / act_scale * weight_scale`. Layer (spec section 7.1):

    n = rmsnorm(x, attn_norm);  a = attention(rope(q(n)), rope(k(n)), v(n))
    x = x + o(rmsnorm(a, attn_sub_norm))
    m = rmsnorm(x, ffn_norm);   h = act(gate(m)) * up(m)          act = relu^2 (2B4T) or silu (1bitLLM)
    x = x + down(rmsnorm(h, ffn_sub_norm))
    logits = token_embd @ rmsnorm(x, output_norm)                  (tied head; a K-quant head takes its input
                                                                    rounded to Q8_K, kquants.q8_k_round_trip)
"""
from __future__ import annotations

import os

import numpy as np

from bitgguf.config import LAYER_LINEARS, LAYER_NORMS, ModelConfig, layer_tensor
from bitgguf.gguf import GGUFReader, ReaderTensor
from bitgguf.kquants import q8_k_round_trip
from bitgguf.types import TYPES

ACT_QUANT_MIN_ABSMAX = np.float32(1e-5)


def quantize_activations(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row absmax int8: q = round_half_even(x * s) clamped to [-128, 127], s = 127 / max(max|x|, 1e-5).

    This is the rounding rule of transformers' BitNet and of bitnet.cpp (nearest_int); the C kernels use the
    same (lrintf in the default rounding mode). Returns (q as int32, s as float32 per row).
    """
    x = np.asarray(x, dtype=np.float32)
    absmax = np.maximum(np.abs(x).max(axis=-1), ACT_QUANT_MIN_ABSMAX)
    scale = (np.float32(127.0) / absmax).astype(np.float32)
    q = np.clip(np.rint(x * scale[..., None]), -128, 127).astype(np.int32)
    return q, scale


def ternary_of(tensor: ReaderTensor) -> tuple[np.ndarray, np.float32]:
    """(int8 codes in {-1,0,1}, per-tensor scale) of a linear weight of any type the table knows."""
    if tensor.type.ternary:
        codes, scale = tensor.type.unpack_ternary(tensor.data, tensor.shape)
        return codes, np.float32(scale)
    # a float file (--outtype f16/f32) holds alpha-scaled ternary values: read them the way llama-quantize does
    i2_s = TYPES["I2_S"]
    weights = tensor.type.dequantize(tensor.data, tensor.shape)
    codes, scale = i2_s.unpack_ternary(i2_s.quantize(weights), tensor.shape)
    return codes, np.float32(scale)


def bitlinear(x: np.ndarray, codes: np.ndarray, scale: np.float32) -> np.ndarray:
    q, act_scale = quantize_activations(x)
    isum = q @ codes.astype(np.int32).T  # exact integer dot products
    return (isum.astype(np.float32) / act_scale[:, None] * scale).astype(np.float32)


def rmsnorm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    mean_sq = np.mean(x * x, axis=-1, keepdims=True, dtype=np.float32)
    return (x * (np.float32(1.0) / np.sqrt(mean_sq + np.float32(eps))) * weight).astype(np.float32)


def rope_neox(x: np.ndarray, positions: np.ndarray, theta: float) -> np.ndarray:
    """Rotate-half RoPE on x of shape (n_tokens, n_heads, head_dim): pairs (i, i + head_dim/2)."""
    head_dim = x.shape[-1]
    half = head_dim // 2
    inv_freq = (np.float32(1.0) / np.float32(theta) ** (np.arange(0, head_dim, 2, dtype=np.float32)
                                                        / np.float32(head_dim))).astype(np.float32)
    angles = positions.astype(np.float32)[:, None] * inv_freq[None, :]
    cos, sin = np.cos(angles)[:, None, :], np.sin(angles)[:, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(np.float32)


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Causal GQA attention. q: (n, n_head, d); k, v: (n, n_head_kv, d). Returns (n, n_head * d)."""
    n, n_head, head_dim = q.shape
    group = n_head // k.shape[1]
    k = np.repeat(k, group, axis=1)  # query head h reads kv head h // group
    v = np.repeat(v, group, axis=1)
    scores = np.einsum("qhd,khd->hqk", q, k) / np.float32(np.sqrt(head_dim))
    scores = scores + np.triu(np.full((n, n), -np.inf, dtype=np.float32), k=1)
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    probs = scores / scores.sum(axis=-1, keepdims=True)
    return np.einsum("hqk,khd->qhd", probs, v).reshape(n, n_head * head_dim).astype(np.float32)


def relu2(x: np.ndarray) -> np.ndarray:
    return np.square(np.maximum(x, np.float32(0)))


def silu(x: np.ndarray) -> np.ndarray:
    return (x / (np.float32(1.0) + np.exp(-x))).astype(np.float32)


class ReferenceModel:
    """A GGUF model evaluated in numpy. Weights are unpacked once, at construction."""

    def __init__(self, source: GGUFReader | str | os.PathLike):
        reader = source if isinstance(source, GGUFReader) else GGUFReader(source)
        self.config = config = ModelConfig.from_reader(reader)

        def floats(name):
            t = reader.tensor(name)
            return t.type.dequantize(t.data, t.shape)

        self.token_embd = floats("token_embd.weight")
        # a K-quant head sees its input as Q8_K (types.py: head_input), as the runtime and ggml compute it
        self.head_input = reader.tensor("token_embd.weight").type.head_input
        self.output_norm = floats("output_norm.weight")
        self.layers = []
        for i in range(config.n_layer):
            layer = {name: floats(layer_tensor(i, name)) for name in LAYER_NORMS}
            layer.update({name: ternary_of(reader.tensor(layer_tensor(i, name))) for name in LAYER_LINEARS})
            self.layers.append(layer)

    def logits(self, ids) -> np.ndarray:
        """Logits (len(ids), n_vocab) of every position, from an empty context."""
        c = self.config
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 1 or len(ids) == 0 or ids.min() < 0 or ids.max() >= c.n_vocab:
            raise ValueError(f"token ids must be a non-empty list of ids in 0..{c.n_vocab - 1}")
        n = len(ids)
        positions = np.arange(n)
        act = relu2 if c.ffn_act == "relu2" else silu
        x = self.token_embd[ids]
        for layer in self.layers:
            h = rmsnorm(x, layer["attn_norm"], c.rms_eps)
            q = bitlinear(h, *layer["attn_q"]).reshape(n, c.n_head, c.head_dim)
            k = bitlinear(h, *layer["attn_k"]).reshape(n, c.n_head_kv, c.head_dim)
            v = bitlinear(h, *layer["attn_v"]).reshape(n, c.n_head_kv, c.head_dim)
            a = attention(rope_neox(q, positions, c.rope_theta), rope_neox(k, positions, c.rope_theta), v)
            x = x + bitlinear(rmsnorm(a, layer["attn_sub_norm"], c.rms_eps), *layer["attn_output"])

            h = rmsnorm(x, layer["ffn_norm"], c.rms_eps)
            ff = act(bitlinear(h, *layer["ffn_gate"])) * bitlinear(h, *layer["ffn_up"])
            x = x + bitlinear(rmsnorm(ff, layer["ffn_sub_norm"], c.rms_eps), *layer["ffn_down"])
        h = rmsnorm(x, self.output_norm, c.rms_eps)
        if self.head_input == "q8_k":
            h = q8_k_round_trip(h)
        return (h @ self.token_embd.T).astype(np.float32)

    def greedy(self, ids, n_tokens: int) -> list[int]:
        """Greedy continuation (recomputes the whole sequence each step: fine for tiny models)."""
        ids = list(ids)
        out = []
        for _ in range(n_tokens):
            next_id = int(np.argmax(self.logits(ids)[-1]))
            out.append(next_id)
            ids.append(next_id)
        return out
