"""HF checkpoints -> ternary GGUF (`python -m convert hf-to-gguf ...`), and GGUF re-typing."""
from convert.gguf_out import convert_gguf_to_gguf, convert_hf_to_gguf
from convert.hf import ConvertError

__all__ = ["ConvertError", "convert_hf_to_gguf", "convert_gguf_to_gguf"]
