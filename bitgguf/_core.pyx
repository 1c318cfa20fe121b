# cython: language_level=3
"""The compiled core of bitgguf: thin Cython over the nogil C engine in _kernels/.

Each part lives in its own .pxi, included here so that everything links into one extension.
"""
include "_cpu.pxi"
include "_sampling.pxi"
include "_engine.pxi"
include "_tokenizer.pxi"
include "_bench.pxi"
include "_repack.pxi"
include "_ternarize.pxi"
