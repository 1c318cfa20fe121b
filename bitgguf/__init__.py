"""bitgguf: run ternary (1.58-bit) BitNet language models from GGUF files on the CPU.

The GGUF reader/writer and the type table are pure Python + numpy; the runtime (`Model`, `isa_levels`) loads the
compiled core on first use, so the converter works even where the extension is not built.
"""
from bitgguf._capi import get_include, get_library
from bitgguf.gguf import GGUFError, GGUFReader, GGUFWriter

__all__ = ["GGUFError", "GGUFReader", "GGUFWriter", "Model", "Sampler", "Tokenizer", "get_include", "get_library",
           "isa_levels"]
__version__ = "0.1.0"


def __getattr__(name):
    if name == "Model":
        from bitgguf.model import Model
        return Model
    if name == "Tokenizer":
        from bitgguf.tokenizer import Tokenizer
        return Tokenizer
    if name in ("isa_levels", "Sampler"):
        from bitgguf import _core
        return getattr(_core, name)
    raise AttributeError(f"module 'bitgguf' has no attribute {name!r}")
