# Sampler: thin Cython over the nogil C sampler in _kernels/sampling.c (included by _core.pyx).
from libc.stdint cimport int32_t, uint64_t
from libc.math cimport isnan

import os as _os

import numpy as _np

cdef extern from "sampling.h" nogil:
    ctypedef struct bg_sampler_params:
        float temperature
        int32_t top_k
        float top_p
        float min_p
        float repeat_penalty
        int32_t repeat_last_n
        uint64_t seed

    ctypedef struct bg_sampler:
        bg_sampler_params params

    bg_sampler_params bg_sampler_default_params()
    void bg_sampler_init(bg_sampler *s, const bg_sampler_params *params)
    void bg_sampler_free(bg_sampler *s)
    void bg_sampler_reset(bg_sampler *s)
    int bg_sampler_sample(bg_sampler *s, const float *logits, int n_vocab)
    int bg_sampler_accept(bg_sampler *s, int token)
    uint64_t bg_sampler_next_u64(bg_sampler *s)


cdef class Sampler:
    """Picks the next token from logits: greedy, or penalties -> top-k -> top-p -> min-p -> temperature -> draw.

    temperature <= 0 is greedy (argmax, lowest index on ties; the repetition penalty still applies).
    top_k <= 0, top_p >= 1, min_p <= 0 and repeat_penalty == 1 switch those steps off; repeat_last_n = -1 looks
    back at every accepted token. seed=None draws a seed from os.urandom; the same seed gives the same tokens.
    """
    cdef bg_sampler s
    cdef readonly object seed

    def __cinit__(self, float temperature=0.8, int top_k=40, float top_p=0.95, float min_p=0.05,
                  float repeat_penalty=1.0, int repeat_last_n=64, seed=None):
        cdef bg_sampler_params p = bg_sampler_default_params()
        if isnan(temperature) or isnan(top_p) or isnan(min_p) or isnan(repeat_penalty):
            raise ValueError("Sampler: temperature, top_p, min_p and repeat_penalty must be numbers, got NaN")
        if top_p < 0:
            raise ValueError(f"Sampler: top_p must be in [0, 1], got {top_p}")
        if min_p < 0 or min_p > 1:
            raise ValueError(f"Sampler: min_p must be in [0, 1], got {min_p}")
        if not repeat_penalty > 0:
            raise ValueError(f"Sampler: repeat_penalty must be > 0, got {repeat_penalty}")
        if repeat_last_n < -1:
            raise ValueError(f"Sampler: repeat_last_n must be -1 (all), 0 (off) or a count, got {repeat_last_n}")
        if seed is None:
            seed = int.from_bytes(_os.urandom(8), "little")
        seed = int(seed)
        self.seed = seed
        p.temperature = temperature
        p.top_k = top_k
        p.top_p = top_p
        p.min_p = min_p
        p.repeat_penalty = repeat_penalty
        p.repeat_last_n = repeat_last_n
        p.seed = <uint64_t>(seed & 0xFFFFFFFFFFFFFFFF)  # any Python int: negative seeds wrap like uint64
        bg_sampler_init(&self.s, &p)

    def __dealloc__(self):
        bg_sampler_free(&self.s)

    @property
    def params(self):
        """The sampling parameters as a dict."""
        p = self.s.params

        def f32(x):  # the float32 value as the short decimal it was given as
            return float(f"{x:.7g}")
        return dict(temperature=f32(p.temperature), top_k=p.top_k, top_p=f32(p.top_p), min_p=f32(p.min_p),
                    repeat_penalty=f32(p.repeat_penalty), repeat_last_n=p.repeat_last_n, seed=self.seed)

    def __repr__(self):
        return "Sampler(" + ", ".join(f"{k}={v!r}" for k, v in self.params.items()) + ")"

    def sample(self, logits):
        """The next token id from a 1-D array of n_vocab logits (not recorded: call accept)."""
        cdef const float[::1] v = _np.ascontiguousarray(logits, dtype=_np.float32)
        if _np.ndim(logits) != 1:
            raise ValueError(f"Sampler.sample: logits must be 1-D (n_vocab,), got shape {_np.shape(logits)}")
        if v.shape[0] == 0:
            raise ValueError("Sampler.sample: logits are empty")
        cdef int tok
        with nogil:
            tok = bg_sampler_sample(&self.s, &v[0], <int>v.shape[0])
        if tok < 0:
            raise MemoryError("Sampler.sample: out of memory for the candidate buffer")
        return tok

    cdef int sample_ptr(self, const float *logits, int n_vocab) noexcept nogil:
        """For the engine: sample straight from its logits buffer (-1 on failure)."""
        return bg_sampler_sample(&self.s, logits, n_vocab)

    def accept(self, int token):
        """Record a token (prompt or generated) for the repetition penalty."""
        if bg_sampler_accept(&self.s, token) != 0:
            raise MemoryError("Sampler.accept: out of memory for the token history")

    def reset(self):
        """Forget accepted tokens and restart the random stream from the seed."""
        bg_sampler_reset(&self.s)

    def _next_u64(self):
        """The next raw value of the generator (tests of the PRNG)."""
        return bg_sampler_next_u64(&self.s)
