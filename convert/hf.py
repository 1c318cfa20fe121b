"""Reading Hugging Face checkpoints: config.json, safetensors (single or sharded), packed ternary weights.

safetensors is read here directly (an 8-byte header length, a JSON header, then raw little-endian data) so that
every offset, dtype and shape is checked before use and a tensor is a zero-copy view of a memory map: converting
touches one tensor at a time and peak memory stays near the largest tensor, not the checkpoint.
"""
from __future__ import annotations

import json
import mmap
import os
import struct
from dataclasses import dataclass

import numpy as np


class ConvertError(Exception):
    """A checkpoint cannot be converted; the message names the file, the tensor or key, found and expected."""


# safetensors dtype name -> numpy dtype (BF16 is read as its raw uint16 bits)
SAFETENSORS_DTYPES = {
    "BOOL": np.dtype("?"), "U8": np.dtype("<u1"), "I8": np.dtype("<i1"),
    "U16": np.dtype("<u2"), "I16": np.dtype("<i2"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
    "U32": np.dtype("<u4"), "I32": np.dtype("<i4"), "F32": np.dtype("<f4"),
    "U64": np.dtype("<u8"), "I64": np.dtype("<i8"), "F64": np.dtype("<f8"),
}
_FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
_MAX_HEADER = 100 << 20  # safetensors' own limit on the JSON header


def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    """bf16 is the top half of an f32: widen the raw uint16 bits exactly."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: str            # safetensors dtype name, e.g. "BF16"
    shape: tuple
    begin: int            # byte range inside the file's data section
    end: int
    path: str             # the file holding it


class SafetensorsFile:
    """One .safetensors file: a validated header and memory-mapped data."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._mmap = None
        try:
            f = open(self.path, "rb")
        except OSError as e:
            raise ConvertError(f"{self.path}: cannot open: {e.strerror or e}") from None
        with f:
            size = os.fstat(f.fileno()).st_size
            if size < 8:
                raise ConvertError(f"{self.path}: truncated safetensors file: {size} bytes, expected at least 8")
            (n_header,) = struct.unpack("<Q", f.read(8))
            if n_header > min(size - 8, _MAX_HEADER):
                raise ConvertError(f"{self.path}: safetensors header claims {n_header} bytes but the file has "
                                   f"{size - 8} after the length (truncated or not safetensors)")
            raw = f.read(n_header)
            try:
                header = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ConvertError(f"{self.path}: safetensors header is not valid JSON: {e}") from None
            if not isinstance(header, dict):
                raise ConvertError(f"{self.path}: safetensors header is a {type(header).__name__}, expected an object")
            self.data_start = 8 + n_header
            self.data_size = size - self.data_start
            self.metadata = header.pop("__metadata__", None) or {}
            self.entries: dict[str, TensorEntry] = {}
            for name, info in header.items():
                self.entries[name] = self._entry(name, info)
            if self.data_size > 0:
                self._mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)

    def _entry(self, name: str, info) -> TensorEntry:
        where = f"{self.path}: tensor {name!r}"
        if not isinstance(info, dict):
            raise ConvertError(f"{where}: header entry is {type(info).__name__}, expected an object")
        dtype = info.get("dtype")
        if dtype not in SAFETENSORS_DTYPES:
            raise ConvertError(f"{where}: unsupported dtype {dtype!r} (expected one of "
                               f"{', '.join(SAFETENSORS_DTYPES)})")
        shape = info.get("shape")
        if (not isinstance(shape, list) or len(shape) > 8
                or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 40 for d in shape)):
            raise ConvertError(f"{where}: bad shape {shape!r} (expected a list of up to 8 non-negative ints)")
        offsets = info.get("data_offsets")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise ConvertError(f"{where}: bad data_offsets {offsets!r} (expected [begin, end])")
        begin, end = offsets
        n = 1
        for d in shape:
            n *= d
        expected = n * SAFETENSORS_DTYPES[dtype].itemsize
        if not 0 <= begin <= end:
            raise ConvertError(f"{where}: data_offsets {offsets} are not an ordered non-negative range")
        if end - begin != expected:
            raise ConvertError(f"{where}: {dtype} shape {shape} needs {expected} bytes but data_offsets "
                               f"{offsets} span {end - begin}")
        if end > self.data_size:
            raise ConvertError(f"{where}: data ends at byte {end} of the data section, which has only "
                               f"{self.data_size} bytes (truncated file?)")
        return TensorEntry(name, dtype, tuple(shape), begin, end, self.path)

    def raw(self, name: str) -> np.ndarray:
        """The tensor in its stored dtype (BF16 as uint16 bits), a read-only view of the memory map."""
        e = self.entries[name]
        dtype = SAFETENSORS_DTYPES[e.dtype]
        if e.end == e.begin:
            return np.zeros(e.shape, dtype=dtype)
        return np.frombuffer(self._mmap, dtype=dtype, count=(e.end - e.begin) // dtype.itemsize,
                             offset=self.data_start + e.begin).reshape(e.shape)

    def release(self, name: str, first: int = 0, last: int | None = None) -> None:
        """Drop the tensor's pages (bytes first..last of it) from this process; touched again, they are re-read
        from the file."""
        e = self.entries[name]
        if self._mmap is None or e.end == e.begin or not hasattr(mmap, "MADV_DONTNEED"):
            return
        start = (self.data_start + e.begin + first) // mmap.PAGESIZE * mmap.PAGESIZE
        stop = self.data_start + (e.end if last is None else min(e.end, e.begin + last))
        if stop <= start:
            return
        try:
            self._mmap.madvise(mmap.MADV_DONTNEED, start, stop - start)
        except (OSError, ValueError):
            pass  # only an optimisation

    def close(self) -> None:
        m, self._mmap = self._mmap, None
        if m is not None:
            try:
                m.close()
            except BufferError:
                pass  # views still alive keep the map until they go


class Checkpoint:
    """A checkpoint folder: config.json plus its safetensors file(s), tensors read lazily by name."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = os.fspath(folder)
        if not os.path.isdir(self.folder):
            raise ConvertError(f"{self.folder}: not a folder")
        self.config = read_json(os.path.join(self.folder, "config.json"), required=True)
        self.files: dict[str, SafetensorsFile] = {}
        self.entries: dict[str, TensorEntry] = {}
        index_path = os.path.join(self.folder, "model.safetensors.index.json")
        single = os.path.join(self.folder, "model.safetensors")
        try:
            if os.path.exists(index_path):
                index = read_json(index_path, required=True)
                weight_map = index.get("weight_map")
                if not isinstance(weight_map, dict) or not weight_map:
                    raise ConvertError(f"{index_path}: 'weight_map' is missing or empty")
                for shard in sorted(set(weight_map.values())):
                    if not isinstance(shard, str) or os.path.basename(shard) != shard:
                        raise ConvertError(f"{index_path}: shard name {shard!r} is not a plain file name")
                    self._open(os.path.join(self.folder, shard))
                for name, shard in weight_map.items():
                    entry = self.entries.get(name)
                    if entry is None or os.path.basename(entry.path) != shard:
                        raise ConvertError(f"{index_path}: tensor {name!r} is listed in {shard} but that shard "
                                           f"does not hold it")
            elif os.path.exists(single):
                self._open(single)
            else:
                found = sorted(f for f in os.listdir(self.folder) if f.endswith(".safetensors"))
                if not found:
                    raise ConvertError(f"{self.folder}: no model.safetensors, model.safetensors.index.json or "
                                       f"other .safetensors file")
                for name in found:
                    self._open(os.path.join(self.folder, name))
        except BaseException:
            self.close()
            raise

    def _open(self, path: str) -> None:
        if not os.path.exists(path):
            raise ConvertError(f"{path}: shard named in the index is missing")
        st = SafetensorsFile(path)
        self.files[path] = st
        for name, entry in st.entries.items():
            if name in self.entries:
                raise ConvertError(f"{path}: tensor {name!r} is also in {self.entries[name].path}")
            self.entries[name] = entry

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def entry(self, name: str) -> TensorEntry:
        try:
            return self.entries[name]
        except KeyError:
            raise ConvertError(f"{self.folder}: missing tensor {name!r}") from None

    def raw(self, name: str) -> np.ndarray:
        e = self.entry(name)
        return self.files[e.path].raw(name)

    def f32(self, name: str) -> np.ndarray:
        """A float tensor as float32 (bf16 widened exactly; f16/f64 converted)."""
        e = self.entry(name)
        if e.dtype not in _FLOAT_DTYPES:
            raise ConvertError(f"{e.path}: tensor {name!r} has dtype {e.dtype}, expected a float "
                               f"({', '.join(_FLOAT_DTYPES)})")
        raw = self.raw(name)
        if e.dtype == "BF16":
            return bf16_bits_to_f32(raw)
        return raw.astype(np.float32)

    def f32_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows start..stop of a float tensor as float32, converting only those rows."""
        e = self.entry(name)
        if e.dtype not in _FLOAT_DTYPES:
            raise ConvertError(f"{e.path}: tensor {name!r} has dtype {e.dtype}, expected a float "
                               f"({', '.join(_FLOAT_DTYPES)})")
        raw = self.raw(name)[start:stop]
        rows = bf16_bits_to_f32(raw) if e.dtype == "BF16" else raw.astype(np.float32)
        row_bytes = raw[:1].nbytes
        self.files[e.path].release(name, start * row_bytes, stop * row_bytes)  # streamed: done with these pages
        return rows

    def release(self, *names: str) -> None:
        """Tell the OS the tensors' mapped pages are no longer needed (keeps resident memory to one tensor)."""
        for name in names:
            if name in self.entries:
                self.files[self.entries[name].path].release(name)

    def close(self) -> None:
        for st in self.files.values():
            st.close()

    def __enter__(self) -> "Checkpoint":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_json(path: str, required: bool = False):
    """A JSON file as Python data; None when absent and not required."""
    if not os.path.exists(path):
        if required:
            raise ConvertError(f"{path}: missing (expected a Hugging Face checkpoint file)")
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConvertError(f"{path}: cannot read JSON: {e}") from None


# ---- packed ternary weights (transformers' BitNet offline form) -----------------------------------------------

def unpack_ternary_rows(packed: np.ndarray, name: str) -> np.ndarray:
    """uint8 [out/4, in] -> int8 codes in {-1,0,1} of shape [out, in].

    Row k*(out/4) + r of the result comes from bits 2k..2k+1 of packed row r; value = code - 1.
    A code of 3 means the file is not what it claims to be.
    """
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.ndim != 2:
        raise ConvertError(f"tensor {name!r}: packed weights have shape {packed.shape}, expected 2-D [out/4, in]")
    planes = [(packed >> (2 * k)) & 3 for k in range(4)]
    codes = np.concatenate(planes, axis=0)
    bad = codes == 3
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        raise ConvertError(f"tensor {name!r}: packed code 3 at unpacked row {row}, column {col} "
                           f"({int(bad.sum())} in all); expected codes 0..2")
    return (codes.astype(np.int8) - 1).astype(np.int8)


def pack_ternary_rows(codes: np.ndarray) -> np.ndarray:
    """Inverse of unpack_ternary_rows (used by the test fixtures): int8 [out, in] in {-1,0,1} -> uint8 [out/4, in]."""
    q = (np.asarray(codes).astype(np.int16) + 1).astype(np.uint8)
    r = q.shape[0] // 4
    return (q[:r] | (q[r:2 * r] << 2) | (q[2 * r:3 * r] << 4) | (q[3 * r:] << 6)).astype(np.uint8)


# ---- architectures and hyper-parameters ---------------------------------------------------------------------

# HF class -> (GGUF arch by hidden_act, defaults transformers' config class uses when a key is absent)
_ARCHS = {
    # the 2B4T family (transformers' BitNetConfig): relu2 -> bitnet.cpp's "bitnet-b1.58" graph, silu -> "bitnet"
    "BitNetForCausalLM": ({"relu2": "bitnet-b1.58", "silu": "bitnet"},
                          {"rope_theta": 500000.0, "rms_norm_eps": 1e-5, "max_position_embeddings": 2048,
                           "hidden_act": "relu2"}),
    # 1bitLLM (llama-like, SiLU, sub-norms named inner_attn_ln / ffn_layernorm)
    "BitnetForCausalLM": ({"silu": "bitnet"},
                          {"rope_theta": 10000.0, "rms_norm_eps": 1e-6, "max_position_embeddings": 2048,
                           "hidden_act": "silu"}),
}


@dataclass(frozen=True)
class HParams:
    arch: str            # GGUF general.architecture
    hf_arch: str
    n_vocab: int
    n_ctx: int
    n_embd: int
    n_layer: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    rope_theta: float
    rms_eps: float
    hidden_act: str


def read_hparams(config: dict, where: str) -> HParams:
    """Hyper-parameters of a config.json; `where` names the file in errors."""
    archs = config.get("architectures")
    hf_arch = archs[0] if isinstance(archs, list) and len(archs) == 1 else archs
    if hf_arch not in _ARCHS:
        raise ConvertError(f"{where}: unknown architecture {hf_arch!r}; supported: {', '.join(_ARCHS)}")
    by_act, defaults = _ARCHS[hf_arch]

    def get(key, kind=int, default=None):
        value = config.get(key)
        if value is None:  # absent or null: the config class's default
            value = defaults.get(key, default)
        if value is None:
            raise ConvertError(f"{where}: missing {key!r}")
        if kind is int and not (isinstance(value, int) and not isinstance(value, bool) and 0 < value < 1 << 31):
            raise ConvertError(f"{where}: {key!r} is {value!r}, expected a positive integer")
        if kind is float and not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
            raise ConvertError(f"{where}: {key!r} is {value!r}, expected a positive number")
        return value

    hidden_act = config.get("hidden_act", defaults["hidden_act"])
    if hidden_act not in by_act:
        raise ConvertError(f"{where}: hidden_act {hidden_act!r} is not supported for {hf_arch} "
                           f"(expected {', '.join(by_act)})")
    n_embd, n_head = get("hidden_size"), get("num_attention_heads")
    n_head_kv = get("num_key_value_heads", default=n_head)
    head_dim = config.get("head_dim")
    if head_dim is None:
        if n_embd % n_head:
            raise ConvertError(f"{where}: hidden_size {n_embd} is not a multiple of num_attention_heads {n_head}")
        head_dim = n_embd // n_head
    head_dim = get("head_dim", default=head_dim)
    if n_head % n_head_kv:
        raise ConvertError(f"{where}: num_attention_heads {n_head} is not a multiple of num_key_value_heads "
                           f"{n_head_kv}")
    if head_dim % 2:
        raise ConvertError(f"{where}: head_dim {head_dim} must be even for RoPE")

    # transformers 5 moves RoPE settings into rope_parameters; older configs keep rope_theta at the top level
    rope = config.get("rope_parameters") or {}
    if not isinstance(rope, dict):
        raise ConvertError(f"{where}: rope_parameters is {rope!r}, expected an object")
    scaling = config.get("rope_scaling") or {}
    for src, d in (("rope_parameters", rope), ("rope_scaling", scaling)):
        kind = d.get("rope_type", d.get("type", "default")) if isinstance(d, dict) else d
        if kind == "linear" and isinstance(d, dict) and d.get("factor", 1.0) == 1.0:
            continue  # a no-op scaling some converters write
        if kind not in ("default", None):
            raise ConvertError(f"{where}: {src} asks for RoPE type {kind!r}; only plain RoPE is supported")
    theta = config.get("rope_theta", rope.get("rope_theta", defaults["rope_theta"]))
    if not (isinstance(theta, (int, float)) and not isinstance(theta, bool) and theta > 0):
        raise ConvertError(f"{where}: rope_theta is {theta!r}, expected a positive number")

    return HParams(
        arch=by_act[hidden_act], hf_arch=hf_arch,
        n_vocab=get("vocab_size"), n_ctx=get("max_position_embeddings"),
        n_embd=n_embd, n_layer=get("num_hidden_layers"), n_ff=get("intermediate_size"),
        n_head=n_head, n_head_kv=n_head_kv, head_dim=head_dim,
        rope_theta=float(theta), rms_eps=float(get("rms_norm_eps", float)),
        hidden_act=hidden_act,
    )


# ---- which HF tensor becomes which GGUF tensor ---------------------------------------------------------------

# GGUF per-layer name -> HF names under model.layers.N. (first present wins: 2B4T names, then 1bitLLM's)
LAYER_NORM_SOURCES = {
    "attn_norm": ("input_layernorm",),
    "attn_sub_norm": ("self_attn.attn_sub_norm", "self_attn.inner_attn_ln"),
    "ffn_norm": ("post_attention_layernorm",),
    "ffn_sub_norm": ("mlp.ffn_sub_norm", "mlp.ffn_layernorm"),
}
LAYER_LINEAR_SOURCES = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}
# the order tensors are written in, per layer
LAYER_ORDER = ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_sub_norm", "attn_output",
               "ffn_norm", "ffn_gate", "ffn_up", "ffn_sub_norm", "ffn_down")
# checkpoint tensors that carry nothing the GGUF needs
_IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


@dataclass(frozen=True)
class PlannedTensor:
    gguf_name: str
    hf_name: str
    shape: tuple         # numpy order of the GGUF tensor
    kind: str            # "embd", "norm" or "linear"


def expected_shapes(hp: HParams) -> dict:
    q_dim, kv_dim = hp.n_head * hp.head_dim, hp.n_head_kv * hp.head_dim
    return {
        "attn_norm": (hp.n_embd,), "attn_sub_norm": (q_dim,), "ffn_norm": (hp.n_embd,), "ffn_sub_norm": (hp.n_ff,),
        "attn_q": (q_dim, hp.n_embd), "attn_k": (kv_dim, hp.n_embd), "attn_v": (kv_dim, hp.n_embd),
        "attn_output": (hp.n_embd, q_dim), "ffn_gate": (hp.n_ff, hp.n_embd), "ffn_up": (hp.n_ff, hp.n_embd),
        "ffn_down": (hp.n_embd, hp.n_ff),
    }


def plan_tensors(ckpt: Checkpoint, hp: HParams) -> list[PlannedTensor]:
    """Every GGUF tensor with its HF source, checked for presence and shape before anything is written."""
    shapes = expected_shapes(hp)
    plan = [PlannedTensor("token_embd.weight", "model.embed_tokens.weight", (hp.n_vocab, hp.n_embd), "embd")]
    for i in range(hp.n_layer):
        prefix = f"model.layers.{i}."
        for name in LAYER_ORDER:
            if name in LAYER_LINEAR_SOURCES:
                hf = prefix + LAYER_LINEAR_SOURCES[name] + ".weight"
                kind = "linear"
            else:
                candidates = [prefix + c + ".weight" for c in LAYER_NORM_SOURCES[name]]
                hf = next((c for c in candidates if c in ckpt), candidates[0])
                kind = "norm"
            plan.append(PlannedTensor(f"blk.{i}.{name}.weight", hf, shapes[name], kind))
    plan.append(PlannedTensor("output_norm.weight", "model.norm.weight", (hp.n_embd,), "norm"))

    used = set()
    for t in plan:
        entry = ckpt.entry(t.hf_name)
        used.add(t.hf_name)
        if t.kind == "linear":
            scale_name = t.hf_name + "_scale"
            if entry.dtype in ("U8", "I8"):
                packed_shape = (t.shape[0] // 4, t.shape[1])
                if t.shape[0] % 4 or entry.shape != packed_shape:
                    raise ConvertError(f"{entry.path}: tensor {t.hf_name!r} (packed {entry.dtype}) has shape "
                                       f"{list(entry.shape)}, expected {list(packed_shape)} (= [out/4, in] for "
                                       f"out x in = {t.shape[0]} x {t.shape[1]})")
                scale = ckpt.entry(scale_name)
                if int(np.prod(scale.shape)) != 1:
                    raise ConvertError(f"{scale.path}: tensor {scale_name!r} has shape {list(scale.shape)}, "
                                       f"expected one element")
                used.add(scale_name)
                continue
        if entry.shape != t.shape:
            raise ConvertError(f"{entry.path}: tensor {t.hf_name!r} has shape {list(entry.shape)}, expected "
                               f"{list(t.shape)} (for GGUF {t.gguf_name})")
        if entry.dtype not in _FLOAT_DTYPES:
            raise ConvertError(f"{entry.path}: tensor {t.hf_name!r} has dtype {entry.dtype}, expected a float")

    for name in ckpt.entries:
        if name in used or name.endswith(_IGNORED_SUFFIXES):
            continue
        if name == "lm_head.weight":
            # the bitnet graphs always compute logits with token_embd; an untied head would be silently wrong
            if not np.array_equal(ckpt.raw(name), ckpt.raw("model.embed_tokens.weight")):
                raise ConvertError(f"{ckpt.entry(name).path}: tensor 'lm_head.weight' differs from "
                                   f"model.embed_tokens.weight; the BitNet GGUF graphs need tied embeddings")
            continue
        raise ConvertError(f"{ckpt.entry(name).path}: unexpected tensor {name!r} (not part of a "
                           f"{hp.hf_arch} checkpoint with {hp.n_layer} layers)")
    return plan


def packed_scale_mode(ckpt: Checkpoint, plan: list[PlannedTensor]) -> tuple[str | None, str]:
    """How packed weights' weight_scale relates to the per-tensor scale: "multiply", "divide", or None.

    quantization_config.linear_class decides ("autobitlinear" multiplies, "bitlinear" divides); without it the
    magnitudes do (a trained BitNet's mean|W| is well below 1): all < 1 multiply, all > 1 divide, else refuse.
    Returns (mode, a sentence saying why).
    """
    scales = {}
    for t in plan:
        if t.kind == "linear" and ckpt.entry(t.hf_name).dtype in ("U8", "I8"):
            name = t.hf_name + "_scale"
            value = float(ckpt.f32(name).reshape(-1)[0])
            if not (np.isfinite(value) and value > 0):
                raise ConvertError(f"{ckpt.entry(name).path}: tensor {name!r} is {value}, expected a finite "
                                   f"positive scale")
            scales[name] = value
    if not scales:
        return None, "float weights: absmean-ternarized per tensor"
    qc = ckpt.config.get("quantization_config") or {}
    where = os.path.join(ckpt.folder, "config.json")
    if qc and qc.get("quant_method") not in ("bitnet", None):
        raise ConvertError(f"{where}: quantization_config.quant_method is {qc.get('quant_method')!r}; packed "
                           f"uint8 weights need 'bitnet'")
    linear_class = qc.get("linear_class")
    if linear_class == "autobitlinear":
        return "multiply", "linear_class autobitlinear: weight = ternary * weight_scale"
    if linear_class == "bitlinear":
        return "divide", "linear_class bitlinear: weight = ternary / weight_scale"
    if linear_class is not None:
        raise ConvertError(f"{where}: quantization_config.linear_class is {linear_class!r}, expected "
                           f"'autobitlinear' or 'bitlinear'")
    below = [n for n, v in scales.items() if v < 1]
    above = [n for n, v in scales.items() if v > 1]
    if below and not above:
        return "multiply", "no linear_class; every weight_scale < 1, so it is mean|W|: multiplying"
    if above and not below:
        return "divide", "no linear_class; every weight_scale > 1, so it is 1/mean|W|: dividing"
    raise ConvertError(f"{where}: no quantization_config.linear_class and the weight_scale values straddle 1 "
                       f"(e.g. {below[0] if below else '-'}={scales.get(below[0]) if below else '-'}, "
                       f"{above[0] if above else '-'}={scales.get(above[0]) if above else '-'}); cannot tell "
                       f"whether to multiply or divide")


def ternary_weight(ckpt: Checkpoint, t: PlannedTensor, scale_mode: str | None) -> tuple[np.ndarray, float]:
    """(int8 codes [out, in] in {-1,0,1}, f32 per-tensor scale) of one linear weight.

    Float master weights go through the absmean rule (bitgguf.types.absmean_ternarize, here by its C twin, straight
    from bf16 bits); packed ones are unpacked with their weight_scale.
    """
    from bitgguf import _core
    entry = ckpt.entry(t.hf_name)
    if entry.dtype in ("U8", "I8"):
        codes = unpack_ternary_rows(ckpt.raw(t.hf_name).view(np.uint8), t.hf_name)
        ws = np.float32(ckpt.f32(t.hf_name + "_scale").reshape(-1)[0])
        scale = ws if scale_mode == "multiply" else np.float32(1.0) / ws
        return codes, float(scale)
    bf16 = entry.dtype == "BF16"
    try:
        codes, scale = _core.absmean_ternarize(ckpt.raw(t.hf_name) if bf16 else ckpt.f32(t.hf_name), bf16)
    except ValueError as e:
        raise ConvertError(f"{entry.path}: tensor {t.hf_name!r}: {e}") from None
    return codes, float(scale)


# ---- where the checkpoint is --------------------------------------------------------------------------------

def resolve_model(model: str, cache_dir: str | None = None, allow_download: bool = True) -> str:
    """A local folder, or a Hugging Face repo id looked up in the local hub cache (then downloaded if allowed)."""
    if os.path.isdir(model):
        return model
    if os.path.exists(model):
        raise ConvertError(f"{model}: not a folder (expected a checkpoint folder or a Hugging Face repo id)")
    if model.count("/") != 1 or model.startswith(("/", ".")):
        raise ConvertError(f"{model}: no such folder, and not a Hugging Face repo id (owner/name)")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ConvertError(f"{model}: no such folder, and huggingface_hub is not installed to look it up") from None
    try:
        return snapshot_download(model, cache_dir=cache_dir, local_files_only=True)
    except Exception as cached_error:  # huggingface_hub raises several kinds for "not in the cache"
        if not allow_download or os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
            raise ConvertError(f"{model}: no such folder and not in the Hugging Face cache (offline): "
                               f"{type(cached_error).__name__}") from None
    patterns = ["*.json", "*.safetensors", "tokenizer.model", "*.jinja"]
    try:
        return snapshot_download(model, cache_dir=cache_dir, allow_patterns=patterns)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ConvertError(f"{model}: no such folder, not in the Hugging Face cache, and the download failed "
                           f"({type(e).__name__}: {first})") from None
