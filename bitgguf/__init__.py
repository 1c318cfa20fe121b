"""bitgguf: run ternary (1.58-bit) BitNet language models from GGUF files on the CPU."""
from bitgguf._core import isa_levels
from bitgguf.gguf import GGUFError, GGUFReader, GGUFWriter

__all__ = ["GGUFError", "GGUFReader", "GGUFWriter", "isa_levels"]
__version__ = "0.1.0"
