"""Writing the GGUF: metadata keys and tensor names as bitnet.cpp / llama.cpp write them (spec sections 6.3-6.5).

Tensors are produced lazily, one at a time, while the writer streams them to disk, so peak memory is about the
largest tensor. The writer is atomic: any error leaves no output file.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np

from bitgguf import types
from bitgguf.gguf import GGUFReader, GGUFValueType, GGUFWriter, StringArray
from convert.hf import (LAYER_LINEAR_SOURCES, Checkpoint, ConvertError, HParams, packed_scale_mode,
                        plan_tensors, read_hparams, ternary_weight)
from convert.tokenizers import tokenizer_metadata

# general.file_type (llama_ftype) per output type: bitnet.cpp's MOSTLY_I2_S = 40 and TL1/TL2 = 38/39,
# upstream's MOSTLY_TQ1_0 = 36 and MOSTLY_TQ2_0 = 37
FILE_TYPES = {"F32": 0, "F16": 1, "TQ1_0": 36, "TQ2_0": 37, "TL1": 38, "TL2": 39, "I2_S": 40}
OUTTYPES = ("i2_s", "tl1", "tl2", "tq1_0", "tq2_0", "f16", "f32")
HEAD_TYPES = ("auto", "f16", "q8_0", "q6_k", "q5_k", "q4_k", "q4_0", "f32")  # token_embd / tied head (kquants.py)
# "auto": the smallest head within 0.5% perplexity of f16 (measured on tinystories and the demo model, README
# "Head type"), falling back to the next type whose blocks fit the embedding width
AUTO_HEAD_TYPES = ("q5_k", "q8_0", "f16")
QUANTIZATION_VERSION = 2


def model_metadata(hp: HParams, name: str, file_type: int) -> list[tuple]:
    """(key, value, vtype) of the model keys, in the order bitnet.cpp's converter writes them."""
    a = hp.arch
    u32, f32 = GGUFValueType.UINT32, GGUFValueType.FLOAT32
    items = [
        ("general.architecture", a, GGUFValueType.STRING),
        ("general.name", name, GGUFValueType.STRING),
        (f"{a}.vocab_size", hp.n_vocab, u32),
        (f"{a}.context_length", hp.n_ctx, u32),
        (f"{a}.embedding_length", hp.n_embd, u32),
        (f"{a}.block_count", hp.n_layer, u32),
        (f"{a}.feed_forward_length", hp.n_ff, u32),
        (f"{a}.rope.dimension_count", hp.head_dim, u32),
        (f"{a}.attention.head_count", hp.n_head, u32),
        (f"{a}.attention.head_count_kv", hp.n_head_kv, u32),
        (f"{a}.attention.layer_norm_rms_epsilon", hp.rms_eps, f32),
        (f"{a}.rope.freq_base", hp.rope_theta, f32),
        ("general.file_type", file_type, u32),
    ]
    if hp.head_dim * hp.n_head != hp.n_embd:  # llama.cpp assumes n_embd / n_head unless told
        items += [(f"{a}.attention.key_length", hp.head_dim, u32), (f"{a}.attention.value_length", hp.head_dim, u32)]
    return items


@dataclass
class ConvertResult:
    outfile: str
    arch: str
    n_tensors: int
    notes: list


def _progress_bar(total: int, enabled: bool | None):
    """A tqdm bar on stderr (shown only on a terminal unless asked); returns (update(name), close())."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return (lambda name: None), (lambda: None)
    from tqdm import tqdm
    bar = tqdm(total=total, unit="tensor", file=sys.stderr, leave=False)

    def update(name: str) -> None:
        bar.set_postfix_str(name, refresh=False)
        bar.update(1)
    return update, bar.close


def _check_type(tensor_type: types.TensorType, gguf_name: str, hf_name: str, shape: tuple, what: str) -> None:
    reason = tensor_type.check_shape(shape)
    if reason is not None:
        raise ConvertError(f"tensor {gguf_name} (from {hf_name}) of shape {list(shape)} cannot be stored as "
                           f"{tensor_type.name} ({what}): {reason}")


def _rowwise(tensor_type: types.TensorType, ckpt: Checkpoint, hf_name: str, shape: tuple) -> np.ndarray:
    """Quantize a 2-D float tensor a slab of rows at a time (every head type is row-local): the largest tensor,
    the embedding, then never exists as a whole float32 copy."""
    rows, cols = shape
    out = np.empty(tensor_type.nbytes(shape), dtype=np.uint8)
    row_bytes = tensor_type.nbytes((1, cols))
    step = max(1, (16 << 20) // (4 * cols))
    for r in range(0, rows, step):
        stop = min(rows, r + step)
        out[r * row_bytes:stop * row_bytes] = tensor_type.quantize(ckpt.f32_rows(hf_name, r, stop))
    return out


def convert_hf_to_gguf(model_dir: str, outfile: str, outtype: str = "i2_s", head_type: str = "auto",
                       name: str | None = None, progress: bool | None = None) -> ConvertResult:
    """Convert the checkpoint folder `model_dir` to `outfile`. Raises ConvertError; leaves no file on failure."""
    outtype, head_type = outtype.lower(), head_type.lower()
    if outtype not in OUTTYPES:
        raise ConvertError(f"--outtype {outtype!r}: expected one of {', '.join(OUTTYPES)}")
    if head_type not in HEAD_TYPES:
        raise ConvertError(f"--head-type {head_type!r}: expected one of {', '.join(HEAD_TYPES)}")
    out_t = types.type_by_name(outtype)
    norm_t = types.TYPES["F32"]
    notes: list[str] = []

    with Checkpoint(model_dir) as ckpt:
        hp = read_hparams(ckpt.config, os.path.join(ckpt.folder, "config.json"))
        plan = plan_tensors(ckpt, hp)
        if head_type == "auto":
            embd_shape = next(t.shape for t in plan if t.kind == "embd")
            head_type = next(h for h in AUTO_HEAD_TYPES if types.type_by_name(h).check_shape(embd_shape) is None)
            notes.append(f"head type {head_type} (--head-type auto; an embedding of width {embd_shape[-1]})")
        head_t = types.type_by_name(head_type)
        scale_mode, why = packed_scale_mode(ckpt, plan)
        notes.append(why)
        for t in plan:
            if t.kind == "linear":
                _check_type(out_t, t.gguf_name, t.hf_name, t.shape, "--outtype")
            elif t.kind == "embd":
                _check_type(head_t, t.gguf_name, t.hf_name, t.shape, "--head-type")
        tok = tokenizer_metadata(ckpt.folder, n_vocab=hp.n_vocab, config=ckpt.config)
        notes += tok.notes

        if name is None:
            name = os.path.basename(os.path.normpath(os.path.abspath(ckpt.folder)))
            # a hub cache snapshot folder is a commit hash: name the model after its repo instead
            parts = os.path.normpath(os.path.abspath(ckpt.folder)).split(os.sep)
            if len(parts) >= 3 and parts[-2] == "snapshots" and parts[-3].startswith("models--"):
                name = parts[-3].split("--")[-1]

        w = GGUFWriter(outfile)
        for key, value, vtype in model_metadata(hp, name, FILE_TYPES[out_t.name]):
            w.add(key, value, vtype)
        for key, value, vtype, etype in tok.items:
            w.add(key, value, vtype, etype)
        w.add("general.quantization_version", QUANTIZATION_VERSION, GGUFValueType.UINT32)
        for key, value in types.layout_metadata(out_t.name).items():
            w.add(key, value, GGUFValueType.UINT32)

        def producer(t):
            if t.kind == "linear":
                def make():
                    codes, scale = ternary_weight(ckpt, t, scale_mode)
                    if out_t.ternary:
                        return out_t.pack_ternary(codes, scale)
                    return out_t.quantize(codes.astype(np.float32) * np.float32(scale))
                tensor_type, sources = out_t, (t.hf_name, t.hf_name + "_scale")
            elif t.kind == "embd":
                def make():
                    return _rowwise(head_t, ckpt, t.hf_name, t.shape)
                tensor_type, sources = head_t, (t.hf_name,)
            else:
                def make():
                    return norm_t.quantize(ckpt.f32(t.hf_name))
                tensor_type, sources = norm_t, (t.hf_name,)

            def produce():
                data = make()  # always a fresh array, never a view of the map
                ckpt.release(*sources)
                return data
            return tensor_type, produce

        for t in plan:
            tensor_type, produce = producer(t)
            w.add_tensor(t.gguf_name, t.shape, tensor_type, produce)

        update, close = _progress_bar(len(plan), progress)
        try:
            w.write(progress=update)
        finally:
            close()
    return ConvertResult(outfile, hp.arch, len(plan), notes)


# ---- GGUF -> GGUF: re-type the ternary tensors losslessly ---------------------------------------------------

_LINEAR_SUFFIXES = tuple(f".{name}.weight" for name in LAYER_LINEAR_SOURCES)


def _is_float_linear(t) -> bool:
    return t.name.startswith("blk.") and t.name.endswith(_LINEAR_SUFFIXES) and t.type.name in ("F32", "F16", "BF16")


def _float_ternary(t) -> tuple[np.ndarray, float]:
    """(codes, alpha) of a float tensor that must hold exactly {-alpha, 0, +alpha}."""
    x = t.type.dequantize(t.data, t.shape)
    mag = np.abs(x)
    alpha = float(mag.max()) if x.size else 0.0
    off = (mag != 0) & (mag != alpha)
    if off.any():
        i = tuple(int(v[0]) for v in np.nonzero(off))
        raise ValueError(f"not alpha-scaled ternary: |w| at {i} is {float(mag[i])}, alpha is {alpha}")
    return np.sign(x).astype(np.int8), alpha

def convert_gguf_to_gguf(infile: str, outfile: str, outtype: str, progress: bool | None = None) -> ConvertResult:
    """Rewrite every ternary tensor of `infile` as `outtype` (exact codes and scale); other tensors are copied."""
    outtype = outtype.lower()
    if outtype not in OUTTYPES:
        raise ConvertError(f"--outtype {outtype!r}: expected one of {', '.join(OUTTYPES)}")
    out_t = types.type_by_name(outtype)
    if os.path.abspath(infile) == os.path.abspath(outfile):
        raise ConvertError(f"{outfile}: the output must differ from the input")
    notes: list[str] = []
    try:
        reader = GGUFReader(infile)
    except Exception as e:
        raise ConvertError(str(e)) from None
    with reader:
        # ternary-typed tensors, and float linear weights (an f16/f32 file holds alpha-scaled ternary values)
        ternary = [t for t in reader.tensors.values() if t.type.ternary or _is_float_linear(t)]
        if not ternary:
            raise ConvertError(f"{infile}: no ternary tensors to re-type")
        retype = {t.name for t in ternary}
        for t in ternary:
            _check_type(out_t, t.name, infile, t.shape, "--outtype")
        notes += reader.assumptions
        w = GGUFWriter(outfile, alignment=reader.alignment)  # it writes general.alignment itself if not 32
        skip_keys = {"general.alignment"}
        for t in ternary:
            skip_keys |= set(types.layout_metadata(t.type.name))
        for key, value in reader.metadata.items():
            if key in skip_keys:
                continue  # re-added below for the new type, if it needs them
            if key == "general.file_type":
                value = FILE_TYPES[out_t.name]
            vtype = reader.metadata_types[key]
            etype = None
            if vtype == GGUFValueType.ARRAY and isinstance(value, (list, StringArray)):
                etype = GGUFValueType.STRING if (not value or isinstance(value[0], str)) else None
            w.add(key, value, vtype, etype)
        for key, value in types.layout_metadata(out_t.name).items():
            if key not in reader.metadata or key in skip_keys:
                w.add(key, value, GGUFValueType.UINT32)

        def producer(t):
            if t.name not in retype:
                return t.type, lambda: t.data

            def produce():
                try:
                    if t.type.ternary:
                        codes, scale = t.type.unpack_ternary(t.data, t.shape)
                    else:
                        codes, scale = _float_ternary(t)
                except ValueError as e:
                    raise ConvertError(f"{infile}: tensor {t.name!r}: {e}") from None
                if out_t.ternary:
                    return out_t.pack_ternary(codes, scale)
                return out_t.quantize(codes.astype(np.float32) * np.float32(scale))
            return out_t, produce

        for t in reader.tensors.values():
            tensor_type, produce = producer(t)
            w.add_tensor(t.name, t.shape, tensor_type, produce)
        update, close = _progress_bar(len(reader.tensors), progress)
        try:
            w.write(progress=update)
        finally:
            close()
        return ConvertResult(outfile, reader.arch, len(reader.tensors), notes)
