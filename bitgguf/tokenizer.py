"""Tokenizer from GGUF metadata: SentencePiece ("llama") and byte-level BPE ("gpt2"), as llama.cpp does them.

The work happens in C (bitgguf/_kernels/tokenizer.c); this module reads the metadata keys, applies llama.cpp's
defaults, and turns bytes into text (including a streaming decoder that holds back partial UTF-8).

    tok = Tokenizer.from_gguf("model.gguf")
    ids = tok.encode("Once upon a time")          # BOS first when the vocabulary asks for it
    text = tok.decode(ids)
"""
from __future__ import annotations

import os

import numpy as np

from bitgguf._core import _CTokenizer, _tokenizer_defaults
from bitgguf.gguf import StringArray

# bitgguf/_kernels/tokenizer.h
KIND_SPM, KIND_BPE = 1, 2
PRE_DEFAULT, PRE_LLAMA3 = 0, 1
FLAG_ADD_BOS, FLAG_ADD_EOS, FLAG_ADD_SPACE_PREFIX, FLAG_IGNORE_MERGES = 1, 2, 4, 8
TOKTYPE_NORMAL, TOKTYPE_UNKNOWN, TOKTYPE_CONTROL, TOKTYPE_USER_DEFINED, TOKTYPE_UNUSED, TOKTYPE_BYTE = 1, 2, 3, 4, 5, 6

def _as_bool(value, key: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and int(value) in (0, 1):
        return bool(value)
    raise ValueError(f"tokenizer metadata: {key} is {value!r}, expected a bool")


def _as_id(value, key: str) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    raise ValueError(f"tokenizer metadata: {key} is {value!r}, expected an integer token id")


def _strings(value, key: str) -> list[bytes]:
    if not isinstance(value, (list, tuple, StringArray)):
        raise ValueError(f"tokenizer metadata: {key} is {type(value).__name__}, expected an array of strings")
    out = []
    for s in value:
        if isinstance(s, str):
            out.append(s.encode("utf-8", "surrogatepass"))
        elif isinstance(s, (bytes, bytearray)):
            out.append(bytes(s))
        else:
            raise ValueError(f"tokenizer metadata: {key} holds {type(s).__name__}, expected strings")
    return out


class StreamDecoder:
    """Turns token ids into text one at a time; bytes of a UTF-8 character split across tokens (byte-fallback
    tokens, byte-level BPE pieces) are held back until the character is complete."""

    def __init__(self, tokenizer: "Tokenizer", special: bool = False, strip_leading_space: bool = False):
        self._tok = tokenizer
        self._special = special
        self._strip = strip_leading_space
        self._pending = b""

    def feed(self, token_id: int) -> str:
        """Text that became complete with this token ('' when it is still waiting for more bytes)."""
        piece = self._tok.token_to_piece(token_id, special=self._special)
        if self._strip and piece:
            self._strip = False
            if piece[:1] == b" ":
                piece = piece[1:]
        buf = self._pending + piece
        keep = _incomplete_tail(buf)
        self._pending = buf[len(buf) - keep:] if keep else b""
        return buf[:len(buf) - keep].decode("utf-8", "replace")

    def flush(self) -> str:
        """Whatever is held back (an unfinished character comes out as U+FFFD)."""
        buf, self._pending = self._pending, b""
        return buf.decode("utf-8", "replace")


def _incomplete_tail(buf: bytes) -> int:
    """Length of a UTF-8 sequence at the end of buf that has begun but not finished (0 if none)."""
    n = len(buf)
    i = n - 1
    while i >= 0 and n - i <= 4 and (buf[i] & 0xC0) == 0x80:
        i -= 1
    if i < 0 or n - i > 4:
        return 0
    lead = buf[i]
    need = 2 if 0xC0 <= lead < 0xE0 else 3 if 0xE0 <= lead < 0xF0 else 4 if 0xF0 <= lead < 0xF8 else 1
    return n - i if n - i < need else 0


class Tokenizer:
    """A vocabulary's tokenizer. Build with `from_metadata(dict)` or `from_gguf(reader_or_path)`."""

    def __init__(self, ctok: _CTokenizer, kind: int, pre: int):
        self._c = ctok
        self.kind = "spm" if kind == KIND_SPM else "bpe"
        self.pre = "llama3" if pre == PRE_LLAMA3 else "default"
        flags = ctok.flags
        self.add_bos = bool(flags & FLAG_ADD_BOS)
        self.add_eos = bool(flags & FLAG_ADD_EOS)
        self.add_space_prefix = bool(flags & FLAG_ADD_SPACE_PREFIX)

    @classmethod
    def from_metadata(cls, metadata: dict) -> "Tokenizer":
        """Build from GGUF metadata keys (tokenizer.ggml.*), with llama.cpp's defaults for missing ones."""
        def get(key, default=None):
            return metadata.get(key, default)

        model, pre_name = get("tokenizer.ggml.model"), get("tokenizer.ggml.pre")
        if not isinstance(model, str) or not (pre_name is None or isinstance(pre_name, str)):
            raise ValueError(f"tokenizer metadata: tokenizer.ggml.model is {model!r} and tokenizer.ggml.pre "
                             f"{pre_name!r}, expected strings")
        kind, pre, flags, bos, eos, unk = _tokenizer_defaults(model, pre_name)
        if "tokenizer.ggml.tokens" not in metadata:
            raise ValueError("tokenizer metadata: tokenizer.ggml.tokens is missing")
        tokens = _strings(get("tokenizer.ggml.tokens"), "tokenizer.ggml.tokens")
        n = len(tokens)
        scores = get("tokenizer.ggml.scores")
        types = get("tokenizer.ggml.token_type")
        for key, arr in (("tokenizer.ggml.scores", scores), ("tokenizer.ggml.token_type", types)):
            if arr is not None and len(arr) != n:
                raise ValueError(f"tokenizer metadata: {key} has {len(arr)} entries for {n} tokens")
        merges = _strings(get("tokenizer.ggml.merges", []), "tokenizer.ggml.merges") if kind == KIND_BPE else []
        for key, bit in (("tokenizer.ggml.add_bos_token", FLAG_ADD_BOS), ("tokenizer.ggml.add_eos_token",
                         FLAG_ADD_EOS), ("tokenizer.ggml.add_space_prefix", FLAG_ADD_SPACE_PREFIX)):
            if key in metadata:
                flags = (flags | bit) if _as_bool(metadata[key], key) else (flags & ~bit)

        def tid(key, default):
            return _as_id(metadata[key], key) if key in metadata else default

        ctok = _CTokenizer(kind, pre, tokens,
                           None if scores is None else np.asarray(scores, dtype=np.float32),
                           None if types is None else np.asarray(types, dtype=np.int32),
                           merges, flags,
                           tid("tokenizer.ggml.bos_token_id", bos), tid("tokenizer.ggml.eos_token_id", eos),
                           tid("tokenizer.ggml.eot_token_id", -1), tid("tokenizer.ggml.eom_token_id", -1),
                           tid("tokenizer.ggml.unknown_token_id", unk), tid("tokenizer.ggml.padding_token_id", -1))
        return cls(ctok, kind, pre)

    @classmethod
    def from_gguf(cls, reader_or_path) -> "Tokenizer":
        """Build from a GGUF file (a path, or an open bitgguf.gguf.GGUFReader)."""
        if isinstance(reader_or_path, (str, os.PathLike)):
            from bitgguf.gguf import GGUFReader
            with GGUFReader(reader_or_path) as reader:
                return cls.from_metadata(reader.metadata)
        return cls.from_metadata(reader_or_path.metadata)

    # -- encoding
    def encode(self, text: str, add_bos: bool = True, parse_special: bool = False) -> list[int]:
        """Token ids of text. add_bos: add BOS (and EOS) as the vocabulary's add_bos_token/add_eos_token say.
        parse_special: text like "<|eot_id|>" becomes that control token (user-defined tokens always do)."""
        return self.encode_bytes(text.encode("utf-8", "surrogatepass"), add_bos, parse_special).tolist()

    def encode_bytes(self, data: bytes, add_bos: bool = True, parse_special: bool = False) -> np.ndarray:
        """Like encode, for UTF-8 bytes, returning an int32 array (invalid UTF-8 acts as U+FFFD)."""
        return self._c.tokenize(bytes(data), add_bos, parse_special)

    # -- decoding
    def token_to_piece(self, token_id: int, special: bool = True) -> bytes:
        """The bytes a token stands for. special=False gives control tokens (BOS, EOS, ...) as b''."""
        token_id = int(token_id)
        if not 0 <= token_id < self.n_vocab:
            raise ValueError(f"token id {token_id} is outside the vocabulary (0..{self.n_vocab - 1})")
        return self._c.piece(token_id, special)

    def decode(self, ids, special: bool = False) -> str:
        """Text of a whole sequence. Control tokens are left out unless special=True. With a SentencePiece
        vocabulary the space that add_space_prefix put in front is dropped again, as SentencePiece does."""
        arr = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids), dtype=np.int64).reshape(-1)
        bad = (arr < 0) | (arr >= self.n_vocab)
        if bad.any():
            raise ValueError(f"token id {int(arr[bad][0])} is outside the vocabulary (0..{self.n_vocab - 1})")
        data = self._c.detokenize(arr.astype(np.int32), special, self.add_space_prefix)
        return data.decode("utf-8", "replace")

    def stream(self, special: bool = False, strip_leading_space: bool = False) -> StreamDecoder:
        """A decoder for generated tokens: `.feed(id) -> str`, `.flush() -> str`."""
        return StreamDecoder(self, special, strip_leading_space)

    # -- facts
    @property
    def n_vocab(self) -> int:
        return self._c.n_vocab

    @property
    def bos_id(self) -> int | None:
        return self._c.bos if self._c.bos >= 0 else None

    @property
    def eos_id(self) -> int | None:
        return self._c.eos if self._c.eos >= 0 else None

    @property
    def eot_id(self) -> int | None:
        return self._c.eot if self._c.eot >= 0 else None

    def is_stop(self, token_id: int) -> bool:
        """True for end-of-generation tokens: EOS, EOT, EOM and llama.cpp's known end-of-turn texts."""
        return self._c.is_eog(int(token_id))

    def token_type(self, token_id: int) -> int:
        """GGUF token type (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte); -1 out of range."""
        return self._c.token_type(int(token_id))

    def token_id(self, text: str) -> int | None:
        """Id of the token whose stored text is exactly `text`."""
        i = self._c.lookup(text.encode("utf-8"))
        return i if i >= 0 else None

    def __len__(self) -> int:
        return self.n_vocab

    def __repr__(self) -> str:
        return (f"Tokenizer({self.kind}, pre={self.pre}, n_vocab={self.n_vocab}, bos={self.bos_id}, "
                f"eos={self.eos_id}, eot={self.eot_id})")
