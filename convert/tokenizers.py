"""Hugging Face tokenizer files -> GGUF `tokenizer.ggml.*` metadata.

Two forms, as llama.cpp's converters write them:
- `tokenizer.model` (SentencePiece): `tokenizer.ggml.model = llama`, pieces, scores, piece types;
- `tokenizer.json` (byte-level BPE): `tokenizer.ggml.model = gpt2`, tokens, merges, types (added tokens CONTROL
  when special), `tokenizer.ggml.pre = llama-bpe` when the pre-tokenizer is Llama-3's split regex.
Special token ids come from tokenizer_config.json, config.json and generation_config.json; the chat template
from tokenizer_config.json (or chat_template.jinja). The vocabulary is padded to the model's n_vocab.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from bitgguf.gguf import GGUFValueType
from convert.hf import ConvertError, read_json

# llama.cpp's token types; SentencePiece's piece-type enum uses the same numbers
TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED, TOKEN_BYTE = 1, 2, 3, 4, 5, 6

# the Llama-3 pre-tokenizer split pattern (tokenizer.json "Split" regex); llama.cpp calls it "llama-bpe"
LLAMA3_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)

_SPECIAL_KEYS = ("bos", "eos", "unk", "pad")


@dataclass
class TokenizerMeta:
    """The GGUF metadata of a tokenizer, in the order it should be written."""
    items: list = field(default_factory=list)  # (key, value, vtype | None, element_type | None)
    notes: list = field(default_factory=list)  # choices worth telling the user

    def add(self, key, value, vtype=None, element_type=None) -> None:
        self.items.append((key, value, vtype, element_type))

    def as_dict(self) -> dict:
        return {k: v for k, v, _, _ in self.items}


# ---- a minimal protobuf wire reader (for the two SentencePiece facts the python package does not expose) -----

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def _proto_fields(buf: bytes):
    """Yield (field number, wire type, value) of one message; LEN values as bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        fnum, wtype = key >> 3, key & 7
        if wtype == 0:
            value, pos = _varint(buf, pos)
        elif wtype == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wtype == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise ValueError("truncated length-delimited field")
            value, pos = buf[pos:pos + n], pos + n
        elif wtype == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wtype}")
        yield fnum, wtype, value


def _spm_proto_facts(raw: bytes) -> tuple[list[int], bool | None]:
    """Piece types (ModelProto.pieces[].type, default NORMAL) and normalizer_spec.add_dummy_prefix."""
    types: list[int] = []
    add_dummy_prefix = None
    for fnum, wtype, value in _proto_fields(raw):
        if fnum == 1 and wtype == 2:
            ptype = TOKEN_NORMAL
            for f2, w2, v2 in _proto_fields(value):
                if f2 == 3 and w2 == 0:
                    ptype = v2
            types.append(ptype)
        elif fnum == 3 and wtype == 2:
            add_dummy_prefix = True  # the proto default
            for f2, w2, v2 in _proto_fields(value):
                if f2 == 3 and w2 == 0:
                    add_dummy_prefix = bool(v2)
    return types, add_dummy_prefix


# ---- SentencePiece -----------------------------------------------------------------------------------------

def _sentencepiece_vocab(path: str, meta: TokenizerMeta):
    import sentencepiece

    with open(path, "rb") as f:
        raw = f.read()
    sp = sentencepiece.SentencePieceProcessor()
    try:
        sp.LoadFromSerializedProto(raw)
    except Exception as e:  # sentencepiece raises RuntimeError/OSError with its own message
        raise ConvertError(f"{path}: cannot load SentencePiece model: {e}") from None
    n = sp.get_piece_size()
    tokens = [sp.id_to_piece(i) for i in range(n)]
    scores = np.array([sp.get_score(i) for i in range(n)], dtype=np.float32)
    try:
        proto_types, add_dummy_prefix = _spm_proto_facts(raw)
    except ValueError:
        proto_types, add_dummy_prefix = [], None
    if len(proto_types) == n:
        types = np.array(proto_types, dtype=np.int32)
    else:  # fall back to what the package tells (it cannot tell user-defined pieces)
        types = np.full(n, TOKEN_NORMAL, dtype=np.int32)
        for i in range(n):
            if sp.is_unknown(i):
                types[i] = TOKEN_UNKNOWN
            elif sp.is_control(i):
                types[i] = TOKEN_CONTROL
            elif sp.is_unused(i):
                types[i] = TOKEN_UNUSED
            elif sp.is_byte(i):
                types[i] = TOKEN_BYTE
    if np.any((types < 1) | (types > 6)):
        raise ConvertError(f"{path}: SentencePiece piece types {sorted(set(types.tolist()))}, expected 1..6")

    # added_tokens.json: extra tokens appended after the SentencePiece pieces
    added_path = os.path.join(os.path.dirname(path), "added_tokens.json")
    added = read_json(added_path) or {}
    if added:
        extra = sorted((int(i), str(t)) for t, i in added.items())
        for i, t in extra:
            if i < n and tokens[i] != t:
                raise ConvertError(f"{added_path}: token {t!r} has id {i}, which is the piece {tokens[i]!r}")
        extra = [(i, t) for i, t in extra if i >= n]
        if [i for i, _ in extra] != list(range(n, n + len(extra))):
            raise ConvertError(f"{added_path}: added token ids {[i for i, _ in extra]} must continue the "
                               f"SentencePiece vocab ({n} pieces) without gaps")
        tokens += [t for _, t in extra]
        scores = np.concatenate([scores, np.full(len(extra), -1000.0, np.float32)])
        types = np.concatenate([types, np.full(len(extra), TOKEN_USER_DEFINED, np.int32)])

    base_ids = {"bos": sp.bos_id(), "eos": sp.eos_id(), "unk": sp.unk_id(), "pad": sp.pad_id()}
    return tokens, scores, types, None, add_dummy_prefix, {k: v for k, v in base_ids.items() if v >= 0}


# ---- byte-level BPE (tokenizer.json) -----------------------------------------------------------------------

def _iter_pretokenizers(node):
    if not isinstance(node, dict):
        return
    if node.get("type") == "Sequence":
        for sub in node.get("pretokenizers", []):
            yield from _iter_pretokenizers(sub)
    else:
        yield node


def _bpe_pre(tj: dict) -> str | None:
    """llama.cpp's pre-tokenizer name for the tokenizer.json pre_tokenizer, None when unknown."""
    pres = list(_iter_pretokenizers(tj.get("pre_tokenizer")))
    splits = [p.get("pattern", {}).get("Regex") for p in pres if p.get("type") == "Split"]
    bytelevel = [p for p in pres if p.get("type") == "ByteLevel"]
    if splits == [LLAMA3_SPLIT_REGEX] and bytelevel:
        return "llama-bpe"
    if not splits and len(bytelevel) == 1 and bytelevel[0].get("use_regex", True):
        return "gpt2"
    return None


def _bpe_vocab(path: str, meta: TokenizerMeta):
    tj = read_json(path, required=True)
    model = tj.get("model") if isinstance(tj, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE":
        kind = model.get("type") if isinstance(model, dict) else None
        raise ConvertError(f"{path}: tokenizer model is {kind!r}; only byte-level BPE is supported here "
                           f"(a SentencePiece tokenizer needs tokenizer.model)")
    pres = list(_iter_pretokenizers(tj.get("pre_tokenizer")))
    decoder = tj.get("decoder") or {}
    if not any(p.get("type") == "ByteLevel" for p in pres) and decoder.get("type") != "ByteLevel":
        raise ConvertError(f"{path}: BPE tokenizer without a ByteLevel pre-tokenizer/decoder (SentencePiece-"
                           f"style BPE); provide tokenizer.model instead")
    vocab = model.get("vocab")
    if not isinstance(vocab, dict):
        raise ConvertError(f"{path}: model.vocab is missing or not an object")
    added = tj.get("added_tokens") or []

    ids = list(vocab.values()) + [a.get("id") for a in added if isinstance(a, dict)]
    if not all(isinstance(i, int) and 0 <= i < 1 << 24 for i in ids):
        raise ConvertError(f"{path}: token ids must be integers in 0..2^24")
    n = max(ids) + 1 if ids else 0
    tokens: list = [None] * n
    types = np.full(n, TOKEN_NORMAL, dtype=np.int32)
    scores = np.zeros(n, dtype=np.float32)
    for tok, i in vocab.items():
        tokens[i] = tok
    for a in added:
        i, content = a.get("id"), a.get("content")
        if not isinstance(content, str):
            raise ConvertError(f"{path}: added token {i} has no string content")
        if tokens[i] is not None and tokens[i] != content:
            raise ConvertError(f"{path}: id {i} is {tokens[i]!r} in the vocab but {content!r} in added_tokens")
        tokens[i] = content
        types[i] = TOKEN_CONTROL if a.get("special", False) else TOKEN_USER_DEFINED
        scores[i] = -1000.0
    for i, t in enumerate(tokens):
        if t is None:  # a hole in the id range
            tokens[i] = f"[PAD{i}]"
            types[i] = TOKEN_UNUSED

    merges = []
    for j, m in enumerate(model.get("merges") or []):
        if isinstance(m, str):
            if m.count(" ") != 1:
                raise ConvertError(f"{path}: merge #{j} {m!r} is not two tokens separated by one space")
            merges.append(m)
        elif isinstance(m, list) and len(m) == 2 and all(isinstance(x, str) for x in m):
            if " " in m[0] or " " in m[1]:
                raise ConvertError(f"{path}: merge #{j} {m!r} contains a space, which GGUF merges cannot hold")
            merges.append(f"{m[0]} {m[1]}")
        else:
            raise ConvertError(f"{path}: merge #{j} is {m!r}, expected 'a b' or ['a', 'b']")

    pre = _bpe_pre(tj)
    if pre is None:
        meta.notes.append(f"{path}: pre-tokenizer not recognised; no tokenizer.ggml.pre written (runtime default)")

    # ids a TemplateProcessing post-processor puts first: that is how tokenizer.json says "add BOS"
    post = tj.get("post_processor") or {}
    lead = None
    for p in ([post] + list(post.get("processors", []))) if isinstance(post, dict) else []:
        if isinstance(p, dict) and p.get("type") == "TemplateProcessing":
            single = p.get("single") or []
            if single and "SpecialToken" in single[0]:
                lead = single[0]["SpecialToken"].get("id")
            else:
                lead = False
    return tokens, scores, types, (merges, pre, lead), None, {}


# ---- special tokens, flags, chat template ------------------------------------------------------------------

def _token_content(value):
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _first_id(value):
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def tokenizer_metadata(folder: str, n_vocab: int | None = None, config: dict | None = None) -> TokenizerMeta:
    """The tokenizer metadata for the checkpoint in `folder`, padded to n_vocab tokens when given."""
    meta = TokenizerMeta()
    spm_path = os.path.join(folder, "tokenizer.model")
    json_path = os.path.join(folder, "tokenizer.json")
    if os.path.exists(spm_path):
        tokens, scores, types, bpe, add_space_prefix, ids = _sentencepiece_vocab(spm_path, meta)
        source = spm_path
    elif os.path.exists(json_path):
        tokens, scores, types, bpe, add_space_prefix, ids = _bpe_vocab(json_path, meta)
        source = json_path
    else:
        raise ConvertError(f"{folder}: no tokenizer.model (SentencePiece) or tokenizer.json (BPE) to embed")

    n = len(tokens)
    if n_vocab is not None:
        if n > n_vocab:
            raise ConvertError(f"{source}: the tokenizer has {n} tokens but the model's vocab_size is {n_vocab}")
        if n < n_vocab:
            pad = n_vocab - n
            tokens = tokens + [f"[PAD{i}]" for i in range(n, n_vocab)]
            scores = np.concatenate([scores, np.full(pad, -1000.0, np.float32)])
            types = np.concatenate([types, np.full(pad, TOKEN_UNUSED, np.int32)])
            meta.notes.append(f"vocab padded from {n} to {n_vocab} tokens with [PADi] (UNUSED)")
    index = {}
    for i, t in enumerate(tokens):
        index.setdefault(t, i)

    tok_config = read_json(os.path.join(folder, "tokenizer_config.json")) or {}
    gen_config = read_json(os.path.join(folder, "generation_config.json")) or {}
    config = config if config is not None else (read_json(os.path.join(folder, "config.json")) or {})

    # lowest priority first: the tokenizer's own ids, generation_config, config.json, tokenizer_config names
    for source_dict in (gen_config, config):
        for k in _SPECIAL_KEYS:
            v = _first_id(source_dict.get(f"{k}_token_id"))
            if v is not None and v >= 0:
                ids[k] = v
    for k in _SPECIAL_KEYS:
        content = _token_content(tok_config.get(f"{k}_token"))
        if content is not None:
            if content not in index:
                raise ConvertError(f"{folder}/tokenizer_config.json: {k}_token {content!r} is not in the vocab")
            ids[k] = index[content]
    for k, v in ids.items():
        if v >= len(tokens):
            raise ConvertError(f"{folder}: {k} token id {v} is outside the vocab (0..{len(tokens) - 1})")

    if bpe is None:
        meta.add("tokenizer.ggml.model", "llama")
        meta.add("tokenizer.ggml.pre", "default")
    else:
        merges, pre, lead = bpe
        meta.add("tokenizer.ggml.model", "gpt2")
        if pre is not None:
            meta.add("tokenizer.ggml.pre", pre)
    meta.add("tokenizer.ggml.tokens", tokens, GGUFValueType.ARRAY, GGUFValueType.STRING)
    meta.add("tokenizer.ggml.scores", scores.astype(np.float32), GGUFValueType.ARRAY, GGUFValueType.FLOAT32)
    meta.add("tokenizer.ggml.token_type", types.astype(np.int32), GGUFValueType.ARRAY, GGUFValueType.INT32)
    if bpe is not None:
        meta.add("tokenizer.ggml.merges", merges, GGUFValueType.ARRAY, GGUFValueType.STRING)
    key_names = {"bos": "bos_token_id", "eos": "eos_token_id", "unk": "unknown_token_id",
                 "pad": "padding_token_id"}
    for k in _SPECIAL_KEYS:
        if k in ids:
            meta.add(f"tokenizer.ggml.{key_names[k]}", int(ids[k]), GGUFValueType.UINT32)
    if "<|eot_id|>" in index:
        meta.add("tokenizer.ggml.eot_token_id", index["<|eot_id|>"], GGUFValueType.UINT32)

    add_bos = tok_config.get("add_bos_token")
    if not isinstance(add_bos, bool):
        add_bos = None
        if bpe is None:
            add_bos = True  # LlamaTokenizer's default
        elif bpe[2] is False:
            add_bos = False  # a template processor that starts with the sequence itself
        elif bpe[2] is not None and "bos" in ids:
            add_bos = bpe[2] == tokens[ids["bos"]]
    if add_bos is not None:
        meta.add("tokenizer.ggml.add_bos_token", bool(add_bos), GGUFValueType.BOOL)
    add_eos = tok_config.get("add_eos_token")
    if isinstance(add_eos, bool):
        meta.add("tokenizer.ggml.add_eos_token", add_eos, GGUFValueType.BOOL)
    if add_space_prefix is not None:
        meta.add("tokenizer.ggml.add_space_prefix", bool(add_space_prefix), GGUFValueType.BOOL)

    template = tok_config.get("chat_template")
    jinja = os.path.join(folder, "chat_template.jinja")
    if template is None and os.path.exists(jinja):
        with open(jinja, encoding="utf-8") as f:
            template = f.read()
    if isinstance(template, str):
        meta.add("tokenizer.chat_template", template, GGUFValueType.STRING)
    elif isinstance(template, list):
        for t in template:
            if not (isinstance(t, dict) and isinstance(t.get("name"), str) and isinstance(t.get("template"), str)):
                raise ConvertError(f"{folder}/tokenizer_config.json: chat_template entries need 'name' and "
                                   f"'template' strings")
            key = "tokenizer.chat_template" if t["name"] == "default" else f"tokenizer.chat_template.{t['name']}"
            meta.add(key, t["template"], GGUFValueType.STRING)
    return meta
