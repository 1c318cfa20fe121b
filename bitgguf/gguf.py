"""GGUF reader (memory-mapped, validated before use) and writer (streaming, atomic).

Reader: every length, count, type and offset is checked against the file before it is used, so a truncated,
corrupt or hostile file raises `GGUFError` naming the file, the field or tensor, and what was expected.
Tensors come out as zero-copy uint8 views of the memory map.

Writer: tensor infos are declared first with a lazy producer per tensor; the header is written, then each
tensor is produced and streamed in order, into a temporary file beside the target that is renamed into place
only when complete.
"""
from __future__ import annotations

import array
import mmap
import os
import struct
import tempfile
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from bitgguf.pagecache import map_model_file
from bitgguf.types import BY_ID, TensorType

GGUF_MAGIC = b"GGUF"
GGUF_DEFAULT_ALIGNMENT = 32
GGML_MAX_DIMS = 4
# ggml id 39 is TL2 in bitnet.cpp but MXFP4 in upstream ggml; see _resolve_type.
_TL2_OR_MXFP4 = 39
_BITNET_ARCHS = ("bitnet", "bitnet-25", "bitnet-b1.58")


class GGUFError(ValueError):
    """A GGUF file is malformed, truncated, or uses something bitgguf does not support."""


class GGUFValueType(IntEnum):
    UINT8 = 0
    INT8 = 1
    UINT16 = 2
    INT16 = 3
    UINT32 = 4
    INT32 = 5
    FLOAT32 = 6
    BOOL = 7
    STRING = 8
    ARRAY = 9
    UINT64 = 10
    INT64 = 11
    FLOAT64 = 12


# fixed-size value types: numpy dtype of one element
_SCALAR_DTYPES = {
    GGUFValueType.UINT8: np.dtype("<u1"), GGUFValueType.INT8: np.dtype("<i1"),
    GGUFValueType.UINT16: np.dtype("<u2"), GGUFValueType.INT16: np.dtype("<i2"),
    GGUFValueType.UINT32: np.dtype("<u4"), GGUFValueType.INT32: np.dtype("<i4"),
    GGUFValueType.FLOAT32: np.dtype("<f4"), GGUFValueType.BOOL: np.dtype("<u1"),
    GGUFValueType.UINT64: np.dtype("<u8"), GGUFValueType.INT64: np.dtype("<i8"),
    GGUFValueType.FLOAT64: np.dtype("<f8"),
}


@dataclass
class ReaderTensor:
    name: str
    type: TensorType
    shape: tuple          # numpy order: (rows, cols) for a matrix
    offset: int           # absolute offset of the data in the file
    nbytes: int
    data: np.ndarray      # uint8 zero-copy view of the tensor's bytes

    @property
    def ne(self) -> tuple:
        """ggml order (innermost first), as stored in the file."""
        return tuple(reversed(self.shape))


def _align(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment


class _Cursor:
    """Bounds-checked little-endian reads from a buffer; every failure names the file and the field."""

    def __init__(self, buf, path: str):
        self.buf = buf
        self.size = len(buf)
        self.pos = 0
        self.path = path

    def fail(self, what: str) -> GGUFError:
        return GGUFError(f"{self.path}: {what} (at byte {self.pos} of {self.size})")

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise self.fail(f"truncated file: {what} needs {n} bytes, {self.size - self.pos} left")

    def scalar(self, vtype: GGUFValueType, what: str):
        dtype = _SCALAR_DTYPES[vtype]
        self.need(dtype.itemsize, what)
        value = np.frombuffer(self.buf, dtype=dtype, count=1, offset=self.pos)[0]
        self.pos += dtype.itemsize
        if vtype == GGUFValueType.BOOL:
            return bool(value)
        return float(value) if dtype.kind == "f" else int(value)

    def u32(self, what: str) -> int:
        return self.scalar(GGUFValueType.UINT32, what)

    def u64(self, what: str) -> int:
        return self.scalar(GGUFValueType.UINT64, what)

    def string(self, what: str) -> str:
        n = self.u64(f"length of {what}")
        self.need(n, what)
        raw = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise self.fail(f"{what} is not valid UTF-8 ({e.reason})") from None


def _value_type(cur: _Cursor, what: str) -> GGUFValueType:
    raw = cur.u32(f"value type of {what}")
    try:
        return GGUFValueType(raw)
    except ValueError:
        raise cur.fail(f"{what} has unknown value type {raw} (expected 0..12)") from None


def _read_value(cur: _Cursor, vtype: GGUFValueType, what: str, depth: int = 0):
    if vtype == GGUFValueType.STRING:
        return cur.string(what)
    if vtype != GGUFValueType.ARRAY:
        return cur.scalar(vtype, what)
    if depth > 4:
        raise cur.fail(f"{what} nests arrays deeper than 4 levels")
    etype = _value_type(cur, f"elements of {what}")
    count = cur.u64(f"element count of {what}")
    if etype in _SCALAR_DTYPES:
        dtype = _SCALAR_DTYPES[etype]
        if count > cur.size:  # cheap guard before multiplying
            raise cur.fail(f"{what} claims {count} elements, more than the file's size")
        cur.need(count * dtype.itemsize, what)
        arr = np.frombuffer(cur.buf, dtype=dtype, count=count, offset=cur.pos).copy()
        cur.pos += count * dtype.itemsize
        return arr.astype(bool) if etype == GGUFValueType.BOOL else arr
    # strings and nested arrays each take at least 8 bytes, so a count beyond that is a lie
    if count > (cur.size - cur.pos) // 8:
        raise cur.fail(f"{what} claims {count} elements, more than the rest of the file can hold")
    if etype == GGUFValueType.STRING:
        return _read_string_array(cur, count, what)
    return [_read_value(cur, etype, f"{what}[{i}]", depth + 1) for i in range(count)]


_U64 = struct.Struct("<Q")


class StringArray(Sequence):
    """A metadata array of strings kept as its UTF-8 bytes and end offsets, each item decoded when asked for: a
    vocabulary of 128k tokens as Python strings takes ~8 MB of the process (and the merges of a Llama-3 vocabulary
    ~20 MB more), where its bytes and offsets take ~2 MB. Equal to a list or tuple of the same strings."""

    __slots__ = ("_data", "_ends")

    def __init__(self, data: bytes, ends: array.array):
        self._data, self._ends = data, ends

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self._ends)
        i = int(i) + n if int(i) < 0 else int(i)
        if not 0 <= i < n:
            raise IndexError("string array index out of range")
        return str(self._data[self._ends[i - 1] if i else 0:self._ends[i]], "utf-8")

    def __eq__(self, other) -> bool:
        if not isinstance(other, (list, tuple, StringArray)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # unhashable, as a list

    def __repr__(self) -> str:
        return f"StringArray({len(self)} strings)"


def _read_string_array(cur: _Cursor, count: int, what: str) -> StringArray:
    """The hot case (a vocabulary: 100k+ strings), as a tight loop with the same checks as _Cursor.string; each
    string is checked as UTF-8 here, so a bad one fails the read, not a later lookup."""
    buf, size, pos = cur.buf, cur.size, cur.pos
    data, ends = bytearray(), array.array("Q")
    for i in range(count):
        if pos + 8 > size:
            cur.pos = pos
            raise cur.fail(f"truncated file: length of {what}[{i}] needs 8 bytes, {size - pos} left")
        (n,) = _U64.unpack_from(buf, pos)
        pos += 8
        if n > size - pos:
            cur.pos = pos
            raise cur.fail(f"truncated file: {what}[{i}] needs {n} bytes, {size - pos} left")
        piece = buf[pos:pos + n]
        try:
            str(piece, "utf-8")
        except UnicodeDecodeError as e:
            cur.pos = pos
            raise cur.fail(f"{what}[{i}] is not valid UTF-8 ({e.reason})") from None
        data += piece
        ends.append(len(data))
        pos += n
    cur.pos = pos
    return StringArray(bytes(data), ends)


def _read_all(f, size: int) -> mmap.mmap:
    """The whole file in private anonymous memory (huge pages advised where the OS has them)."""
    flags = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)
    buf = mmap.mmap(-1, size, flags=flags) if flags else mmap.mmap(-1, size)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        buf.madvise(mmap.MADV_HUGEPAGE)
    view, done = memoryview(buf), 0
    while done < size:
        n = f.readinto(view[done:min(size, done + (64 << 20))])
        if not n:
            break
        done += n
    view.release()
    if done != size:
        buf.close()
        raise OSError(f"short read: {done} of {size} bytes")
    return buf


class GGUFReader:
    """A memory-mapped GGUF file: `.metadata`, `.metadata_types`, `.tensors` (name -> ReaderTensor).

    use_mmap=False (llama.cpp's --no-mmap) reads the file into private anonymous memory instead, advised for huge
    pages where the OS has them: loading copies the file, and decoding, which streams every weight once per token,
    then misses the TLB far less than on 4 KiB file pages (measured +5-10% tokens/s on the 2B4T shape, README).
    huge_pages=True maps the file through 2 MiB pages where the OS can (pagecache.map_model_file, for a model about
    to be decoded); `huge_page_share` then says how much of a sample is (None: not tried or unknown).
    """

    def __init__(self, path: str | os.PathLike, use_mmap: bool = True, huge_pages: bool = False):
        self.path = os.fspath(path)
        self.assumptions: list[str] = []  # readings that are a choice, e.g. what type id 39 means
        self.huge_page_share: float | None = None
        self.pages_dropped = False  # drop_pages released some of the map's pages (a read faults them back in)
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size == 0:
                    raise GGUFError(f"{self.path}: empty file, expected a GGUF header")
                if not use_mmap:
                    self._mmap = _read_all(f, size)
                elif huge_pages:
                    self._mmap, self.huge_page_share = map_model_file(f.fileno(), size)
                else:
                    self._mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                self._anonymous = not use_mmap
        except OSError as e:
            raise GGUFError(f"{self.path}: cannot open: {e.strerror or e}") from None
        try:
            self._parse()
        except GGUFError:
            self.close()
            raise

    def drop_pages(self, t: ReaderTensor) -> None:
        """Let the OS drop the pages that only `t` occupies from this process's memory, for a tensor read once
        (a TL1 / TL2 weight after its load-time repack). Only for a file map: a page touched again reads back the same
        bytes from the file. A --no-mmap copy keeps its pages (dropping them would zero them)."""
        page = mmap.PAGESIZE
        start = (t.offset + page - 1) // page * page
        end = (t.offset + t.nbytes) // page * page
        if self._anonymous or end <= start or not hasattr(mmap, "MADV_DONTNEED"):
            return
        self._mmap.madvise(mmap.MADV_DONTNEED, start, end - start)
        self.pages_dropped = True

    def _parse(self) -> None:
        buf = memoryview(self._mmap)
        self._buf = buf
        cur = _Cursor(buf, self.path)
        cur.need(4, "magic")
        if bytes(buf[:4]) != GGUF_MAGIC:
            raise cur.fail(f"not a GGUF file: magic {bytes(buf[:4])!r}, expected b'GGUF'")
        cur.pos = 4
        self.version = cur.u32("version")
        if self.version not in (2, 3):
            raise cur.fail(f"unsupported GGUF version {self.version} (expected 2 or 3)")
        n_tensors = cur.u64("tensor count")
        n_kv = cur.u64("metadata count")
        # every KV pair takes >= 12 bytes and every tensor info >= 24: reject lying counts before looping
        if n_kv > cur.size // 12 or n_tensors > cur.size // 24:
            raise cur.fail(f"header claims {n_kv} metadata pairs and {n_tensors} tensors; the file is too small")

        self.metadata: dict[str, Any] = {}
        self.metadata_types: dict[str, GGUFValueType] = {}
        for i in range(n_kv):
            key = cur.string(f"metadata key #{i}")
            vtype = _value_type(cur, f"metadata {key!r}")
            if key in self.metadata:
                raise cur.fail(f"metadata key {key!r} appears twice")
            self.metadata[key] = _read_value(cur, vtype, f"metadata {key!r}")
            self.metadata_types[key] = vtype

        alignment = self.metadata.get("general.alignment", GGUF_DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1) or alignment > 1 << 20:
            raise cur.fail(f"general.alignment is {alignment!r}, expected a power of two")
        self.alignment = alignment
        self.arch = self.metadata.get("general.architecture")

        infos = []
        for i in range(n_tensors):
            name = cur.string(f"name of tensor #{i}")
            n_dims = cur.u32(f"n_dims of tensor {name!r}")
            if not 1 <= n_dims <= GGML_MAX_DIMS:
                raise cur.fail(f"tensor {name!r} has n_dims {n_dims}, expected 1..{GGML_MAX_DIMS}")
            ne = [cur.u64(f"dimension {d} of tensor {name!r}") for d in range(n_dims)]
            n_elements = 1
            for d in ne:
                if d == 0 or d > 1 << 40:
                    raise cur.fail(f"tensor {name!r} has dimension {d}, expected 1..2^40")
                n_elements *= d
            if n_elements > 1 << 48:
                raise cur.fail(f"tensor {name!r} has {n_elements} elements: the shape product overflows")
            type_id = cur.u32(f"type of tensor {name!r}")
            offset = cur.u64(f"offset of tensor {name!r}")
            infos.append((name, tuple(reversed(ne)), type_id, offset))

        data_start = _align(cur.pos, alignment)
        self.data_offset = data_start
        self.tensors: dict[str, ReaderTensor] = {}
        for name, shape, type_id, offset in infos:
            if name in self.tensors:
                raise GGUFError(f"{self.path}: tensor {name!r} appears twice")
            ttype = self._resolve_type(name, type_id)
            reason = ttype.check_shape(shape)
            if reason is not None:
                raise GGUFError(f"{self.path}: tensor {name!r} of type {ttype.name} has shape {shape}: {reason}")
            nbytes = ttype.nbytes(shape)
            if offset % alignment:
                raise GGUFError(f"{self.path}: tensor {name!r} offset {offset} is not a multiple of the "
                                f"alignment {alignment}")
            start = data_start + offset
            if start + nbytes > cur.size:
                raise GGUFError(f"{self.path}: tensor {name!r} ({ttype.name}, shape {shape}) needs bytes "
                                f"{start}..{start + nbytes} but the file has {cur.size}: truncated or bad offset")
            data = np.frombuffer(buf, dtype=np.uint8, count=nbytes, offset=start)
            self.tensors[name] = ReaderTensor(name, ttype, shape, start, nbytes, data)

    def _resolve_type(self, name: str, type_id: int) -> TensorType:
        if type_id == _TL2_OR_MXFP4:
            if self.arch in _BITNET_ARCHS or "bitgguf.tl_rule" in self.metadata:
                note = f"type id 39 read as bitnet.cpp's TL2 (arch {self.arch!r}), not upstream ggml's MXFP4"
                if note not in self.assumptions:
                    self.assumptions.append(note)
            else:
                raise GGUFError(f"{self.path}: tensor {name!r} has type id 39, which is MXFP4 in upstream ggml "
                                f"(unsupported) and TL2 only in bitnet.cpp's BitNet architectures; arch is "
                                f"{self.arch!r}")
        ttype = BY_ID.get(type_id)
        if ttype is None:
            known = ", ".join(f"{t.name}={t.type_id}" for t in sorted(BY_ID.values(), key=lambda t: t.type_id))
            raise GGUFError(f"{self.path}: tensor {name!r} has unsupported ggml type {type_id} (known: {known})")
        return ttype

    def tensor(self, name: str) -> ReaderTensor:
        try:
            return self.tensors[name]
        except KeyError:
            raise GGUFError(f"{self.path}: missing tensor {name!r}") from None

    def get(self, key: str, default=None):
        return self.metadata.get(key, default)

    def require(self, key: str, kind: type | tuple = (int, float, str, bool)):
        """A metadata value that must be present and of the given Python type."""
        if key not in self.metadata:
            raise GGUFError(f"{self.path}: missing metadata key {key!r}")
        value = self.metadata[key]
        if not isinstance(value, kind):
            raise GGUFError(f"{self.path}: metadata {key!r} is {type(value).__name__} {value!r}, "
                            f"expected {getattr(kind, '__name__', kind)}")
        return value

    def close(self) -> None:
        """Drop the memory map. Views handed out keep it alive until they are gone."""
        self.tensors = {}
        self._buf = None
        m, self._mmap = getattr(self, "_mmap", None), None
        if m is not None:
            try:
                m.close()
            except BufferError:
                pass  # numpy views still exported: the map is released with the last of them

    def __enter__(self) -> "GGUFReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---- writer --------------------------------------------------------------------------------------------------

def _infer_vtype(value) -> GGUFValueType:
    if isinstance(value, bool):
        return GGUFValueType.BOOL
    if isinstance(value, (int, np.integer)):
        return GGUFValueType.UINT32 if 0 <= value < 1 << 32 else GGUFValueType.INT64
    if isinstance(value, (float, np.floating)):
        return GGUFValueType.FLOAT32
    if isinstance(value, str):
        return GGUFValueType.STRING
    if isinstance(value, (list, tuple, np.ndarray)):
        return GGUFValueType.ARRAY
    raise TypeError(f"cannot store {type(value).__name__} in GGUF metadata")


_NUMPY_TO_VTYPE = {np.dtype(v): k for k, v in _SCALAR_DTYPES.items() if k != GGUFValueType.BOOL}


def _array_element_type(values) -> GGUFValueType:
    if isinstance(values, np.ndarray):
        if values.dtype == np.bool_:
            return GGUFValueType.BOOL
        dtype = values.dtype.newbyteorder("<")
        if dtype in _NUMPY_TO_VTYPE:
            return _NUMPY_TO_VTYPE[dtype]
        raise TypeError(f"cannot store a numpy array of {values.dtype} in GGUF metadata")
    if len(values) == 0:
        return GGUFValueType.UINT32
    first = values[0]
    if isinstance(first, str):
        return GGUFValueType.STRING
    if isinstance(first, bool):
        return GGUFValueType.BOOL
    if isinstance(first, (int, np.integer)):
        return GGUFValueType.INT32
    if isinstance(first, (float, np.floating)):
        return GGUFValueType.FLOAT32
    if isinstance(first, (list, tuple)):
        return GGUFValueType.ARRAY
    raise TypeError(f"cannot store a list of {type(first).__name__} in GGUF metadata")


def _pack_string(s: str) -> bytes:
    raw = s.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _pack_value(value, vtype: GGUFValueType, etype: GGUFValueType | None = None) -> bytes:
    if vtype == GGUFValueType.STRING:
        return _pack_string(value)
    if vtype == GGUFValueType.ARRAY:
        etype = etype if etype is not None else _array_element_type(value)
        head = struct.pack("<IQ", etype, len(value))
        if etype in _SCALAR_DTYPES:
            return head + np.asarray(value).astype(_SCALAR_DTYPES[etype]).tobytes()
        return head + b"".join(_pack_value(v, etype) for v in value)
    return np.asarray(value).astype(_SCALAR_DTYPES[vtype]).tobytes()


@dataclass
class _PendingTensor:
    name: str
    shape: tuple
    type: TensorType
    nbytes: int
    produce: Callable[[], np.ndarray]


class GGUFWriter:
    """Writes a GGUF v3 file; nothing appears at `path` unless the whole file was written."""

    def __init__(self, path: str | os.PathLike, alignment: int = GGUF_DEFAULT_ALIGNMENT):
        self.path = os.fspath(path)
        self.alignment = alignment
        self._kv: list[bytes] = []
        self._keys: set[str] = set()
        self._tensors: list[_PendingTensor] = []
        self._written = False
        if alignment != GGUF_DEFAULT_ALIGNMENT:
            self.add("general.alignment", alignment, GGUFValueType.UINT32)

    def add(self, key: str, value, vtype: GGUFValueType | None = None,
            element_type: GGUFValueType | None = None) -> None:
        """Add a metadata pair; the type is inferred unless given (ints default to UINT32, floats to FLOAT32)."""
        if key in self._keys:
            raise ValueError(f"{self.path}: metadata key {key!r} added twice")
        vtype = _infer_vtype(value) if vtype is None else GGUFValueType(vtype)
        self._keys.add(key)
        self._kv.append(_pack_string(key) + struct.pack("<I", vtype) + _pack_value(value, vtype, element_type))

    def add_tensor(self, name: str, shape: Iterable[int], tensor_type: TensorType,
                   produce: Callable[[], np.ndarray]) -> None:
        """Declare a tensor (numpy shape order); `produce()` is called while writing and returns its bytes, as one
        uint8 array or an iterable of consecutive chunks."""
        shape = tuple(int(d) for d in shape)
        if any(t.name == name for t in self._tensors):
            raise ValueError(f"{self.path}: tensor {name!r} added twice")
        reason = tensor_type.check_shape(shape)
        if reason is not None:
            raise ValueError(f"{self.path}: tensor {name!r} of shape {shape} cannot be {tensor_type.name}: {reason}")
        self._tensors.append(_PendingTensor(name, shape, tensor_type, tensor_type.nbytes(shape), produce))

    def _header(self) -> bytes:
        parts = [GGUF_MAGIC, struct.pack("<IQQ", 3, len(self._tensors), len(self._kv)), *self._kv]
        offset = 0
        for t in self._tensors:
            ne = tuple(reversed(t.shape))
            parts.append(_pack_string(t.name) + struct.pack(f"<I{len(ne)}QIQ", len(ne), *ne, t.type.type_id, offset))
            offset = _align(offset + t.nbytes, self.alignment)
        header = b"".join(parts)
        return header + b"\0" * (_align(len(header), self.alignment) - len(header))

    def write(self, progress: Callable[[str], None] | None = None) -> None:
        """Write header and tensors to a temporary file beside the target, then rename it into place."""
        if self._written:
            raise RuntimeError(f"{self.path}: already written")
        folder = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(self.path) + ".", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self._header())
                for t in self._tensors:
                    produced = t.produce()
                    # one array, or an iterable of chunks so that a big tensor never sits in memory whole
                    chunks = [produced] if isinstance(produced, np.ndarray) else produced
                    written = 0
                    for chunk in chunks:
                        data = np.ascontiguousarray(chunk).reshape(-1).view(np.uint8)
                        written += data.nbytes
                        if written > t.nbytes:
                            break
                        f.write(memoryview(data))
                    if written != t.nbytes:
                        raise ValueError(f"{self.path}: tensor {t.name!r} ({t.type.name}, shape {t.shape}) "
                                         f"produced {'more than ' if written > t.nbytes else ''}{written} bytes, "
                                         f"expected {t.nbytes}")
                    f.write(b"\0" * (_align(t.nbytes, self.alignment) - t.nbytes))
                    if progress is not None:
                        progress(t.name)
                f.flush()
                os.fsync(f.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp made it private; give it a normal file's mode
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        self._written = True

    def __enter__(self) -> "GGUFWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and not self._written:
            self.write()
