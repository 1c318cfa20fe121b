"""Tiny random Hugging Face checkpoints, made deterministically in a folder, for converter and runtime tests.

    from tests.hf_fixtures import make_2b4t_checkpoint, make_1bitllm_checkpoint   (or `from hf_fixtures import`)

    make_2b4t_checkpoint(path)                         BitNetForCausalLM, relu2, GQA, bf16 latent weights,
                                                       byte-level BPE tokenizer.json (Llama-3 pre-tokenizer)
    make_2b4t_checkpoint(path, packed=True, linear_class="autobitlinear" | "bitlinear" | None)
                                                       packed uint8 [out/4, in] + weight_scale (None: no
                                                       linear_class key; the scales say which form)
    make_1bitllm_checkpoint(path)                      BitnetForCausalLM, silu, inner_attn_ln / ffn_layernorm,
                                                       f32 latent weights, SentencePiece tokenizer.model

Each returns an `HFCheckpoint`: the folder, the config, and every tensor as written (`tensors[name]`: float32
values for float tensors (bf16 already rounded), uint8 for packed weights) plus, for packed linears, the
ternary codes and per-tensor alpha they encode (`ternary[name]`). Sizes default to shapes every output type can
hold (rows and columns multiples of 256 or 128 where the types need it).
"""
from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field

import numpy as np

LINEARS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")

# the Llama-3 pre-tokenizer regex, as tokenizer.json spells it
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


@dataclass
class HFCheckpoint:
    path: str
    config: dict
    tensors: dict = field(default_factory=dict)   # name -> np.ndarray as stored (floats as float32)
    dtypes: dict = field(default_factory=dict)    # name -> safetensors dtype
    ternary: dict = field(default_factory=dict)   # packed linear weight name -> (int8 codes [out, in], alpha)


# ---- safetensors writing ------------------------------------------------------------------------------------

def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even f32 -> bf16 bits (uint16), as torch does."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    bits = bits + (np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1)))  # finite values only: no overflow
    return (bits >> 16).astype(np.uint16)


def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


_NP_OF = {"F32": np.float32, "F16": np.float16, "U8": np.uint8, "I8": np.int8, "I32": np.int32, "I64": np.int64,
          "F64": np.float64}


def write_safetensors(path: str, tensors: dict, dtypes: dict) -> None:
    """tensors: name -> float32/uint8 array; dtypes: name -> "BF16" | "F32" | "F16" | "U8" | ... (stored dtype)."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, value in tensors.items():
        dtype = dtypes[name]
        raw = f32_to_bf16_bits(value) if dtype == "BF16" else np.ascontiguousarray(value, dtype=_NP_OF[dtype])
        data = raw.tobytes()
        header[name] = {"dtype": dtype, "shape": list(np.shape(value)), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)  # safetensors pads the header to 8 bytes with spaces
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head)
        for b in blobs:
            f.write(b)


def _write_json(path: str, obj) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)


def _write_weights(path: str, ckpt: HFCheckpoint, shards: int) -> None:
    names = list(ckpt.tensors)
    if shards <= 1:
        write_safetensors(os.path.join(path, "model.safetensors"), ckpt.tensors, ckpt.dtypes)
        return
    weight_map = {}
    for s in range(shards):
        part = names[s::shards]
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        write_safetensors(os.path.join(path, fname), {n: ckpt.tensors[n] for n in part},
                          {n: ckpt.dtypes[n] for n in part})
        weight_map.update({n: fname for n in part})
    _write_json(os.path.join(path, "model.safetensors.index.json"), {"metadata": {}, "weight_map": weight_map})


# ---- packed ternary form (transformers' BitNet offline layout) -------------------------------------------------

def pack_rows(codes: np.ndarray) -> np.ndarray:
    """int8 [out, in] in {-1,0,1} -> uint8 [out/4, in]: row k*(out/4) + r goes to bits 2k..2k+1 of packed row r."""
    q = (np.asarray(codes, dtype=np.int16) + 1).astype(np.uint8)
    r = q.shape[0] // 4
    return (q[:r] | (q[r:2 * r] << 2) | (q[2 * r:3 * r] << 4) | (q[3 * r:] << 6)).astype(np.uint8)


# ---- tokenizers ---------------------------------------------------------------------------------------------

def _byte_unicode() -> list[str]:
    """GPT-2's byte -> printable character table (byte-level BPE's alphabet)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


BPE_MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a"), ("e", "r"), ("o", "n"),
              ("Ġ", "s"), ("r", "e"), ("Ġa", "n"), ("Ġan", "d"), ("i", "s"), ("Ġ", "w"), ("a", "t")]
BPE_SPECIALS = ("<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>")
CHAT_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}<|eot_id|>{% endfor %}"


def write_bpe_tokenizer(path: str, merges_as_pairs: bool = True) -> int:
    """tokenizer.json (byte-level BPE, Llama-3 split regex) + tokenizer_config.json; returns the token count."""
    vocab = {ch: i for i, ch in enumerate(_byte_unicode())}
    for a, b in BPE_MERGES:
        vocab.setdefault(a + b, len(vocab))
    n = len(vocab)
    added = [{"id": n + i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, t in enumerate(BPE_SPECIALS)]
    added.append({"id": n + len(BPE_SPECIALS), "content": "<user_tok>", "single_word": False, "lstrip": False,
                  "rstrip": False, "normalized": True, "special": False})
    tj = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_REGEX}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": BPE_SPECIALS[0], "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [], "special_tokens": {}},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab,
                  "merges": [list(m) if merges_as_pairs else " ".join(m) for m in BPE_MERGES]},
    }
    _write_json(os.path.join(path, "tokenizer.json"), tj)
    _write_json(os.path.join(path, "tokenizer_config.json"), {
        "bos_token": BPE_SPECIALS[0], "eos_token": BPE_SPECIALS[1], "chat_template": CHAT_TEMPLATE,
        "tokenizer_class": "PreTrainedTokenizerFast"})
    return n + len(added)


def _pb_varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _pb_len(fnum: int, payload) -> bytes:
    payload = payload.encode() if isinstance(payload, str) else payload
    return _pb_varint(fnum << 3 | 2) + _pb_varint(len(payload)) + payload


def _pb_int(fnum: int, v: int) -> bytes:
    return _pb_varint(fnum << 3) + _pb_varint(v)


def _pb_f32(fnum: int, v: float) -> bytes:
    return _pb_varint(fnum << 3 | 5) + struct.pack("<f", v)


SPM_WORDS = ("▁", "e", "t", "a", "o", "n", "▁t", "he", "▁the", "▁a", "in", "er", "▁and", "is")
SPM_USER_DEFINED = "<tool>"


def spm_pieces() -> list[tuple[str, float, int]]:
    """(piece, score, type) of the fixture SentencePiece model: unk, bos, eos, 256 bytes, words, one user piece."""
    pieces = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)]
    pieces += [(f"<0x{b:02X}>", 0.0, 6) for b in range(256)]
    pieces += [(w, -float(i), 1) for i, w in enumerate(SPM_WORDS)]
    pieces.append((SPM_USER_DEFINED, 0.0, 4))
    return pieces


def write_spm_tokenizer(path: str, add_dummy_prefix: bool = True) -> int:
    """A SentencePiece tokenizer.model written as protobuf by hand (BPE, byte fallback); returns its size."""
    pieces = spm_pieces()
    model = b"".join(_pb_len(1, _pb_len(1, p) + _pb_f32(2, s) + _pb_int(3, t)) for p, s, t in pieces)
    model += _pb_len(2, _pb_int(3, 2) + _pb_int(4, len(pieces)) + _pb_int(35, 1))  # trainer: BPE, byte_fallback
    model += _pb_len(3, _pb_len(1, "identity") + _pb_int(3, int(add_dummy_prefix)) + _pb_int(4, 1) + _pb_int(5, 1))
    with open(os.path.join(path, "tokenizer.model"), "wb") as f:
        f.write(model)
    return len(pieces)


def absmean_ternary(w: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """BitNet b1.58's weight rule written out independently of bitgguf: alpha = mean|W| (f32),
    codes = clip(round(W / alpha), -1, 1) computed as round(W * (1 / alpha)) like the reference converters."""
    mean = np.float32(np.abs(np.asarray(w, np.float64)).mean())
    s = np.float32(1) / max(mean, np.float32(1e-5))
    return np.clip(np.round(np.asarray(w, np.float32) * s), -1, 1).astype(np.int8), np.float32(np.float32(1) / s)


def ternary_of(ck: "HFCheckpoint", name: str) -> tuple[np.ndarray, np.float32]:
    """(int8 codes, alpha) a linear weight of the checkpoint stands for: packed ones as written, float ones by
    absmean. The effective weight is codes * alpha."""
    return ck.ternary[name] if name in ck.ternary else absmean_ternary(ck.tensors[name])


# ---- checkpoints --------------------------------------------------------------------------------------------

def _linear_shapes(n_embd, n_head, n_head_kv, head_dim, n_ff) -> dict:
    q, kv = n_head * head_dim, n_head_kv * head_dim
    return {"self_attn.q_proj": (q, n_embd), "self_attn.k_proj": (kv, n_embd), "self_attn.v_proj": (kv, n_embd),
            "self_attn.o_proj": (n_embd, q), "mlp.gate_proj": (n_ff, n_embd), "mlp.up_proj": (n_ff, n_embd),
            "mlp.down_proj": (n_embd, n_ff)}


def _normal(rng, std: float, shape) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(std)


def _round_to(x: np.ndarray, dtype: str) -> np.ndarray:
    """The float32 values a tensor has once stored as dtype."""
    x = np.asarray(x, dtype=np.float32)
    if dtype == "BF16":
        return bf16_bits_to_f32(f32_to_bf16_bits(x)).reshape(x.shape)
    if dtype == "F16":
        return x.astype(np.float16).astype(np.float32)
    return x


def _build(path, *, hf_arch, sub_norms, hidden_act, n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff,
           dtype, packed, linear_class, scale_dtype, tokenizer, rope_in_parameters, shards, seed, extra_config):
    os.makedirs(path, exist_ok=True)
    rng = np.random.default_rng(seed)
    head_dim = head_dim or n_embd // n_head
    config = {
        "architectures": [hf_arch], "model_type": "bitnet" if hf_arch == "BitNetForCausalLM" else "llama",
        "vocab_size": n_vocab, "hidden_size": n_embd, "intermediate_size": n_ff, "num_hidden_layers": n_layer,
        "num_attention_heads": n_head, "num_key_value_heads": n_head_kv, "hidden_act": hidden_act,
        "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "tie_word_embeddings": True,
        "head_dim": head_dim, "bos_token_id": None, "eos_token_id": None,
    }
    if rope_in_parameters:
        config["rope_parameters"] = {"rope_theta": 500000.0, "rope_type": "default"}
    else:
        config["rope_theta"] = 10000.0
    if packed:
        qc = {"quant_method": "bitnet", "quantization_mode": "offline"}
        if linear_class is not None:
            qc["linear_class"] = linear_class
        config["quantization_config"] = qc
    config.update(extra_config or {})

    ck = HFCheckpoint(str(path), config)

    def put(name, value, dt):
        ck.tensors[name] = _round_to(value, dt) if dt in ("BF16", "F16", "F32") else value
        ck.dtypes[name] = dt

    put("model.embed_tokens.weight", _normal(rng, 0.1, (n_vocab, n_embd)), dtype)
    shapes = _linear_shapes(n_embd, n_head, n_head_kv, head_dim, n_ff)
    norm_shapes = {"input_layernorm": n_embd, sub_norms[0]: n_head * head_dim,
                   "post_attention_layernorm": n_embd, sub_norms[1]: n_ff}
    for i in range(n_layer):
        p = f"model.layers.{i}."
        for norm, size in norm_shapes.items():
            put(p + norm + ".weight", rng.uniform(0.5, 1.5, size), dtype)
        for lin in LINEARS:
            shape = shapes[lin]
            name = p + lin + ".weight"
            if packed:
                codes = rng.choice(np.array([-1, 0, 1], np.int8), size=shape, p=[0.3, 0.4, 0.3])
                alpha = float(_round_to(np.float32(rng.uniform(0.01, 0.05)), scale_dtype))
                ws = alpha if linear_class in ("autobitlinear", None) else float(np.float32(1) / np.float32(alpha))
                ws = float(_round_to(np.float32(ws), scale_dtype))
                if linear_class == "bitlinear":
                    alpha = float(np.float32(1) / np.float32(ws))
                put(name, pack_rows(codes), "U8")
                put(name + "_scale", np.array([ws], np.float32), scale_dtype)
                ck.ternary[name] = (codes, np.float32(alpha))
            else:
                put(name, _normal(rng, 0.02, shape), dtype)
    put("model.norm.weight", rng.uniform(0.5, 1.5, n_embd), dtype)
    _write_weights(str(path), ck, shards)

    n_tok = None
    if tokenizer == "bpe":
        n_tok = write_bpe_tokenizer(str(path))
        config["bos_token_id"], config["eos_token_id"] = 256 + len(BPE_MERGES), 257 + len(BPE_MERGES)
    elif tokenizer == "spm":
        n_tok = write_spm_tokenizer(str(path))
        config["bos_token_id"], config["eos_token_id"] = 1, 2
    if n_tok is not None and n_tok > n_vocab:
        raise ValueError(f"fixture: tokenizer has {n_tok} tokens, more than n_vocab {n_vocab}")
    _write_json(os.path.join(str(path), "config.json"), config)
    return ck


def make_2b4t_checkpoint(path, *, packed: bool = False, linear_class: str | None = "autobitlinear",
                         n_vocab: int = 320, n_embd: int = 256, n_layer: int = 2, n_head: int = 4,
                         n_head_kv: int = 2, head_dim: int | None = None, n_ff: int = 256, dtype: str = "BF16",
                         scale_dtype: str = "BF16", hidden_act: str = "relu2", tokenizer: str | None = "bpe",
                         rope_in_parameters: bool = True, shards: int = 1, seed: int = 0,
                         extra_config: dict | None = None) -> HFCheckpoint:
    """A BitNetForCausalLM (2B4T family) checkpoint: relu2, GQA, sub-norms attn_sub_norm / ffn_sub_norm.

    packed=False: `dtype` latent weights (the -bf16 form). packed=True: uint8 [out/4, in] + weight_scale with
    `linear_class` "autobitlinear" (scale = alpha), "bitlinear" (scale = 1/alpha) or None (no key; alpha < 1).
    """
    return _build(path, hf_arch="BitNetForCausalLM", sub_norms=("self_attn.attn_sub_norm", "mlp.ffn_sub_norm"),
                  hidden_act=hidden_act, n_vocab=n_vocab, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
                  n_head_kv=n_head_kv, head_dim=head_dim, n_ff=n_ff, dtype=dtype, packed=packed,
                  linear_class=linear_class, scale_dtype=scale_dtype, tokenizer=tokenizer,
                  rope_in_parameters=rope_in_parameters, shards=shards, seed=seed, extra_config=extra_config)


def make_1bitllm_checkpoint(path, *, n_vocab: int = 288, n_embd: int = 256, n_layer: int = 2, n_head: int = 4,
                            n_head_kv: int | None = None, n_ff: int = 512, dtype: str = "F32",
                            tokenizer: str | None = "spm", shards: int = 1, seed: int = 1,
                            extra_config: dict | None = None) -> HFCheckpoint:
    """A 1bitLLM-style BitnetForCausalLM checkpoint: llama-like, silu, MHA by default, sub-norms named
    inner_attn_ln / ffn_layernorm, float latent weights, top-level rope_theta, SentencePiece tokenizer."""
    return _build(path, hf_arch="BitnetForCausalLM", sub_norms=("self_attn.inner_attn_ln", "mlp.ffn_layernorm"),
                  hidden_act="silu", n_vocab=n_vocab, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
                  n_head_kv=n_head_kv or n_head, head_dim=None, n_ff=n_ff, dtype=dtype, packed=False,
                  linear_class=None, scale_dtype="F32", tokenizer=tokenizer, rope_in_parameters=False,
                  shards=shards, seed=seed, extra_config=extra_config)
