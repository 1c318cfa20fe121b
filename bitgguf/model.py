"""`Model`: a GGUF BitNet model run by the C engine, weights used in place from the memory map.

    with Model("ggml-model-i2_s.gguf") as m:
        ids = m.tokenize("Once upon a time")
        text = m.detokenize(list(m.generate(ids, max_tokens=32, temperature=0)))

The C engine (bitgguf/_kernels/engine.c) runs the forward pass; this class maps the file's tensors onto it,
picks the kernel ISA level, and drives tokenization and sampling.
"""
from __future__ import annotations

import os
from typing import Iterable, Iterator, Sequence

import numpy as np

from bitgguf import _core
from bitgguf.config import LAYER_LINEARS, LAYER_NORMS, ModelConfig, layer_tensor
from bitgguf.gguf import GGUFError, GGUFReader, ReaderTensor
from bitgguf.ternary_layouts import tl_scale_offset
from bitgguf.types import TYPES, tl_params

KV_TYPES = ("f16", "f32")
I2_ROWS_ID = 1036  # the engine's internal row layout for TL1/TL2 (bitgguf/_kernels/tlr.c); never in files
i2_s_block = 128


def pack_i2_rows(codes: np.ndarray, scale: float) -> np.ndarray:
    """int8 codes (rows, cols), cols % 8 == 0 -> I2_ROWS bytes: per row floor(cols/128) I2_S blocks, then the tail of
    t = cols % 128 weights laid out like a block with t/4 in place of 32; then the f32 scale (and zeros to 32 bytes)."""
    rows, cols = codes.shape
    if cols % 8:
        raise ValueError(f"I2_ROWS rows must be a multiple of 8 weights, got {cols}")
    full = cols // i2_s_block * i2_s_block
    c = (codes.astype(np.int8) + 1).astype(np.uint8)

    def pack(g):  # (rows, n, 4, m) -> (rows, n * m): group k of 4 in bits 7-6, 5-4, 3-2, 1-0
        return ((g[:, :, 0] << 6) | (g[:, :, 1] << 4) | (g[:, :, 2] << 2) | g[:, :, 3]).reshape(rows, -1)

    out = np.zeros(rows * cols // 4 + 32, dtype=np.uint8)
    body = out[:rows * cols // 4].reshape(rows, cols // 4)
    body[:, :full // 4] = pack(c[:, :full].reshape(rows, -1, 4, 32))
    if cols > full:
        body[:, full // 4:] = pack(c[:, full:].reshape(rows, 1, 4, (cols - full) // 4))
    out[rows * cols // 4:rows * cols // 4 + 4] = np.frombuffer(np.float32(scale).tobytes(), dtype=np.uint8)
    return out


def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _pick_isa(isa: str | None) -> str:
    """The ISA level: the argument, else $BITGGUF_ISA, else the best this CPU runs; ValueError if unsupported."""
    if isa is None:
        isa = os.environ.get("BITGGUF_ISA") or None
    if isa is None:
        return _core.best_isa()
    _core.isa_by_name(isa)  # raises with the levels this CPU can run
    return isa


class Model:
    """A BitNet GGUF (archs bitnet, bitnet-25, bitnet-b1.58) ready to run.

    n_threads: threads for the matmuls and attention (default: the CPUs this process may use); results do not
    depend on it. n_ctx: context length (default: the model's training context). kv_type: "f16" (default, half
    the memory) or "f32". isa: force a kernel level ("scalar", "avx2", "avx512", "amx", "neon", "neon_dotprod");
    default $BITGGUF_ISA, else the best this CPU supports.

    I2_S, TQ1_0 and TQ2_0 weights are used in place. TL2 (bitnet.cpp's 1.67-bit tile layout) is read in place by a
    lookup-table kernel where the ISA level has one (x86, and the scalar level); tl2_in_place=False (or an ISA level
    without one: NEON) repacks it at load instead, as TL1 always is, into row-major 2-bit rows: those are listed in
    `repacked` and counted in `repacked_bytes`; `load_info` says which.
    The file is mapped through 2 MiB pages where the OS can give them (pagecache.py: decode reads a third faster
    than through 4 KiB pages). mmap=False (llama.cpp's --no-mmap) reads it into memory, huge pages advised, instead.
    """

    def __init__(self, path: str | os.PathLike, n_threads: int | None = None, n_ctx: int | None = None,
                 kv_type: str = "f16", isa: str | None = None, mmap: bool = True, tl2_in_place: bool | None = None):
        self.path = os.fspath(path)
        if kv_type not in KV_TYPES:
            raise ValueError(f"kv_type must be one of {KV_TYPES}, got {kv_type!r}")
        if n_threads is not None and n_threads < 1:
            raise ValueError(f"n_threads must be >= 1, got {n_threads}")
        if n_ctx is not None and n_ctx < 1:
            raise ValueError(f"n_ctx must be >= 1, got {n_ctx}")
        self.isa = _pick_isa(isa)
        self.tl2_in_place = _core.tl2_in_place(self.isa) if tl2_in_place is None else bool(tl2_in_place)
        self._reader = GGUFReader(self.path, use_mmap=mmap, huge_pages=True)
        self.mmap = mmap
        self._engine = None
        self._tokenizer = None
        self.repacked: list[str] = []  # tensors the engine could not use in place (see _linear)
        self.repacked_bytes = 0        # memory those copies take
        self._repacked_types: dict[str, int] = {}
        self._tl2_read = False         # a TL2 tensor is read in place
        try:
            self.config = ModelConfig.from_reader(self._reader)
            self.kv_type = kv_type
            self._engine = self._build(n_threads or _default_threads(), n_ctx or self.config.n_ctx_train)
        except BaseException:
            self._reader.close()
            raise

    # ---- mapping the file onto the engine -------------------------------------------------------------------

    def _build(self, n_threads: int, n_ctx: int):
        self._load_threads = n_threads  # for the TL repack
        self._read_once: list[ReaderTensor] = []  # tensors repacked into copies
        c, r = self.config, self._reader
        kernel_types = _core.kernel_types()
        embd = r.tensor("token_embd.weight")
        if embd.type.type_id not in kernel_types or embd.type.ternary:
            raise GGUFError(f"{self.path}: tensor 'token_embd.weight' has type {embd.type.name}; the engine reads "
                            f"embeddings of type {', '.join(n for n, t in kernel_types.values() if not t)}")
        head = self._plain(embd)
        layers = []
        for i in range(c.n_layer):
            spec = {name: self._norm(layer_tensor(i, name)) for name in LAYER_NORMS}
            spec.update({name: self._linear(r.tensor(layer_tensor(i, name)), kernel_types) for name in LAYER_LINEARS})
            layers.append(spec)
        # Once everything is read, again: a file map maps whole 2 MiB page-cache folios where the kernel has them,
        # so reading a neighbour may have mapped a repacked tensor's pages again (the norms are copies for the same
        # reason: decode would keep mapping them).
        for t in self._read_once:
            r.drop_pages(t)
        config = dict(n_vocab=c.n_vocab, n_embd=c.n_embd, n_layer=c.n_layer, n_head=c.n_head,
                      n_head_kv=c.n_head_kv, head_dim=c.head_dim, n_ff=c.n_ff, rope_theta=c.rope_theta,
                      rms_eps=c.rms_eps, ffn_act=c.ffn_act)
        try:
            # the BitNet graphs always use the tied embedding as the head (spec 6.5), as the reference does
            return _core.Engine(config, head, head, self._norm("output_norm.weight"), layers, n_ctx, self.kv_type,
                                self.isa, n_threads)
        except ValueError as e:
            raise GGUFError(f"{self.path}: {e}") from None

    @staticmethod
    def _plain(t: ReaderTensor):
        rows, cols = (int(t.shape[0]), int(t.shape[1])) if len(t.shape) == 2 else (1, int(t.shape[0]))
        return (t.data, t.type.type_id, rows, cols)

    def _norm(self, name: str) -> np.ndarray:
        t = self._reader.tensor(name)
        if t.type.name == "F32":
            # a copy (a few KiB): reading it in place would keep its file page mapped, and with 2 MiB page-cache
            # folios the pages around it, which may be a repacked tensor's (_build)
            return t.data.view(np.float32).copy()
        return np.ascontiguousarray(t.type.dequantize(t.data, t.shape), dtype=np.float32).reshape(-1)

    def _linear(self, t: ReaderTensor, kernel_types: dict):
        if t.type.type_id in kernel_types and kernel_types[t.type.type_id][1]:
            return self._plain(t)  # I2_S, TQ1_0, TQ2_0: in place
        i2_s = TYPES["I2_S"]
        rows, cols = int(t.shape[0]), int(t.shape[1])
        if t.type.name == "TL2" and self.tl2_in_place:
            p = tl_params("TL2", rows, cols)
            if not _core.tl2_valid(t.data, rows, cols, p.BM, p.BK):
                raise GGUFError(f"{self.path}: tensor {t.name!r} (TL2) is not a valid ternary tensor: a magnitude or "
                                f"pair index is out of range")
            self._tl2_read = True
            return (t.data, t.type.type_id, rows, cols, p.BM, p.BK)
        if t.type.name in ("TL1", "TL2"):
            # bitnet.cpp's tile-permuted layouts: repacked once into row-major 2-bit rows the per-row kernels read
            # (I2_S itself when the rows are whole 128-weight blocks; else I2_ROWS, I2_S blocks plus a tail)
            data = self._tl_rows(t, rows, cols)
            type_id = i2_s.type_id if cols % i2_s_block == 0 else I2_ROWS_ID  # whole blocks: the same bytes
            # the engine reads only the copy: the file's pages may go now (bounding the load's peak) and once more
            # at the end of _build
            self._reader.drop_pages(t)
            self._read_once.append(t)
        elif t.type.ternary:
            raise GGUFError(f"{self.path}: tensor {t.name!r} has type {t.type.name}, which the engine has no kernels "
                            f"for")
        else:
            # a float file holding alpha-scaled ternary values: read it the way the reference does (as I2_S)
            data, type_id = i2_s.quantize(t.type.dequantize(t.data, t.shape)), i2_s.type_id
        data = np.ascontiguousarray(data, dtype=np.uint8)
        self.repacked.append(t.name)
        self.repacked_bytes += data.nbytes
        self._repacked_types[t.type.name] = self._repacked_types.get(t.type.name, 0) + 1
        return (data, type_id, rows, cols)

    def _tl_rows(self, t: ReaderTensor, rows: int, cols: int) -> np.ndarray:
        """I2_ROWS bytes of a TL1 / TL2 tensor: by the C repack (one pass, threaded) when the core has it, else
        through the type table's exact numpy unpack."""
        repack = getattr(_core, "tl_to_i2_rows", None)
        if repack is None:
            codes, scale = t.type.unpack_ternary(t.data, t.shape)
            return pack_i2_rows(codes, scale)
        p = tl_params(t.type.name, rows, cols)
        at = tl_scale_offset(t.type.name, rows, cols)
        scale = np.frombuffer(t.data[at:at + 4].tobytes(), dtype="<f4")[0]
        try:
            return repack(t.type.name, t.data, rows, cols, p.BM, p.BK, p.bm, scale, self._load_threads)
        except ValueError as e:
            raise GGUFError(f"{self.path}: tensor {t.name!r}: {e}") from None

    @property
    def load_info(self) -> str:
        """How the file's weights are used: in place, or repacked at load (which tensors' types, extra memory)."""
        share = self._reader.huge_page_share
        where = "the memory map" if self.mmap else "memory (read at load, huge pages advised)"
        if share is not None:
            where += f" ({share:.0%} in 2 MiB pages)"
        if not self.repacked:
            return f"weights used in place from {where}" + (" (TL2 by lookup tables)" if self._tl2_read else "")
        kinds = ", ".join(f"{n} {name}" for name, n in sorted(self._repacked_types.items()))
        return (f"repacked {len(self.repacked)} linear weights at load ({kinds}) into row-major 2-bit rows "
                f"(I2_S / I2_ROWS): {self.repacked_bytes / 2**20:.1f} MiB extra memory")

    # ---- running ---------------------------------------------------------------------------------------------

    def _live(self):
        if self._engine is None:
            raise ValueError(f"{self.path}: the model is closed")
        return self._engine

    @property
    def n_past(self) -> int:
        """Tokens in the context (the KV cache)."""
        return self._live().n_past

    @property
    def n_ctx(self) -> int:
        return self._live().n_ctx

    @property
    def n_vocab(self) -> int:
        return self.config.n_vocab

    @property
    def n_threads(self) -> int:
        return self._live().n_threads

    @n_threads.setter
    def n_threads(self, n: int) -> None:
        self._live().n_threads = n

    @property
    def metadata(self) -> dict:
        return self._reader.metadata

    def reset(self) -> None:
        """Empty the context."""
        self._live().reset()

    def eval(self, tokens: Sequence[int]) -> np.ndarray:
        """Append tokens to the context; returns the last token's logits (n_vocab,) float32."""
        return self._live().eval(self._ids(tokens))

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """Logits (len(ids), n_vocab) float32 of every position, computed from an empty context (the context
        then holds ids)."""
        engine = self._live()
        engine.reset()
        return engine.eval(self._ids(ids), True)

    def _ids(self, ids) -> np.ndarray:
        arr = np.asarray(ids)
        if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"token ids must be a non-empty 1-D sequence of ints, got {ids!r:.80}")
        return arr.astype(np.int32)

    # ---- text ------------------------------------------------------------------------------------------------

    @property
    def tokenizer(self):
        """The vocabulary's tokenizer (bitgguf.tokenizer.Tokenizer), built on first use."""
        if self._tokenizer is None:
            from bitgguf.tokenizer import Tokenizer
            self._tokenizer = Tokenizer.from_metadata(self._reader.metadata)
        return self._tokenizer

    def tokenize(self, text: str, add_bos: bool = True) -> list[int]:
        return self.tokenizer.encode(text, add_bos=add_bos)

    def detokenize(self, ids: Iterable[int]) -> str:
        return self.tokenizer.decode(list(ids))

    def _is_stop(self, token: int) -> bool:
        try:
            return self.tokenizer.is_stop(token)
        except (ImportError, ValueError):  # no usable vocabulary in the file: only the metadata ids stop
            md = self._reader.metadata
            return token in {md.get(k) for k in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id")}

    def generate(self, prompt_or_ids: str | Sequence[int], max_tokens: int = 128, temperature: float = 0.8,
                 top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05, repeat_penalty: float = 1.0,
                 seed: int | None = None, stop: Iterable[str | int] | None = None) -> Iterator[int]:
        """Generated token ids, from an empty context: ends at EOS/EOT, at max_tokens, when the context is full,
        or before the token that completes a `stop` string (or is a `stop` id). temperature <= 0 is greedy."""
        ids = self.tokenize(prompt_or_ids) if isinstance(prompt_or_ids, str) else list(prompt_or_ids)
        stop_ids = {s for s in (stop or ()) if isinstance(s, int)}
        stop_texts = [s for s in (stop or ()) if isinstance(s, str) and s]
        sampler = _core.Sampler(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                                repeat_penalty=repeat_penalty, seed=seed)
        return self._generate(ids, max_tokens, sampler, stop_ids, stop_texts)

    def _generate(self, ids, max_tokens, sampler, stop_ids, stop_texts) -> Iterator[int]:
        engine = self._live()
        engine.reset()
        logits = engine.eval(self._ids(ids))
        for t in ids:
            sampler.accept(int(t))
        out: list[int] = []
        for _ in range(max_tokens):
            tok = sampler.sample(logits)
            if tok in stop_ids or self._is_stop(tok):
                return
            if stop_texts:
                text = self.detokenize(out + [tok])
                if any(s in text for s in stop_texts):
                    return
            out.append(tok)
            yield tok
            sampler.accept(tok)
            if engine.n_past >= engine.n_ctx:
                return
            logits = engine.eval([tok])

    # ---- lifetime --------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Free the engine and unmap the file (idempotent)."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        self._reader.close()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        c = self.config
        return (f"Model({self.path!r}, arch={c.arch}, n_layer={c.n_layer}, n_embd={c.n_embd}, "
                f"n_vocab={c.n_vocab}, isa={self.isa}, kv_type={self.kv_type})")
