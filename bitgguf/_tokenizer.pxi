# Tokenizer: thin Cython over the nogil C tokenizer in _kernels/tokenizer.c (included by _core.pyx).
# bitgguf.tokenizer.Tokenizer is the Python face; this class only moves arrays and bytes across.
from libc.stdint cimport int32_t
from libc.stdlib cimport malloc, free
from cpython.bytes cimport PyBytes_AS_STRING

import numpy as _np

cdef extern from "tokenizer.h" nogil:
    ctypedef struct bg_tokenizer:
        pass
    ctypedef struct bg_tokenizer_desc:
        int kind
        int pre
        int32_t n_vocab
        const char *const *tokens
        const size_t *token_lens
        const float *scores
        const int32_t *types
        int32_t n_merges
        const char *const *merges
        const size_t *merge_lens
        int flags
        int32_t bos, eos, eot, eom, unk, pad
    void bg_tokenizer_desc_init(bg_tokenizer_desc *d, int kind, int32_t n_vocab)
    int bg_tokenizer_desc_from_names(bg_tokenizer_desc *d, const char *model, const char *pre, int32_t n_vocab,
                                     char *err, size_t err_len)
    bg_tokenizer *bg_tokenizer_new(const bg_tokenizer_desc *d, char *err, size_t err_len)
    void bg_tokenizer_free(bg_tokenizer *tok)
    int32_t bg_tokenize(const bg_tokenizer *tok, const char *text, size_t len, int add_special, int parse_special,
                        int32_t *out, int32_t max_out)
    int32_t bg_token_to_piece(const bg_tokenizer *tok, int32_t id, char *buf, int32_t len, int special)
    int32_t bg_detokenize(const bg_tokenizer *tok, const int32_t *ids, int32_t n, char *buf, int32_t len,
                          int special, int strip_space)
    int32_t bg_tokenizer_n_vocab(const bg_tokenizer *tok)
    int bg_tokenizer_flags(const bg_tokenizer *tok)
    int32_t bg_tokenizer_bos(const bg_tokenizer *tok)
    int32_t bg_tokenizer_eos(const bg_tokenizer *tok)
    int32_t bg_tokenizer_eot(const bg_tokenizer *tok)
    int bg_token_type(const bg_tokenizer *tok, int32_t id)
    int bg_token_is_eog(const bg_tokenizer *tok, int32_t id)
    int32_t bg_token_lookup(const bg_tokenizer *tok, const char *text, size_t len)


def _tokenizer_defaults(str model, pre):
    """llama.cpp's defaults for a tokenizer.ggml.model / tokenizer.ggml.pre pair (pre None when absent):
    (kind, pre, flags, bos, eos, unk). Raises ValueError for names the C tokenizer does not support."""
    cdef bg_tokenizer_desc d
    cdef char err[512]
    cdef bytes m = model.encode("utf-8")
    cdef bytes p = pre.encode("utf-8") if pre is not None else None
    if bg_tokenizer_desc_from_names(&d, m, <const char *>p if p is not None else NULL, 0, err, sizeof(err)) != 0:
        raise ValueError("tokenizer metadata: " + err.decode("utf-8", "replace"))
    return d.kind, d.pre, d.flags, d.bos, d.eos, d.unk


cdef class _CTokenizer:
    """A built C tokenizer. Arguments are the GGUF vocabulary arrays, already as bytes / numpy arrays."""
    cdef bg_tokenizer *tok

    def __cinit__(self, int kind, int pre, list tokens, scores, types, list merges, int flags,
                  int bos, int eos, int eot, int eom, int unk, int pad):
        cdef bg_tokenizer_desc d
        cdef char err[512]
        cdef Py_ssize_t i, n = len(tokens), nm = len(merges)
        cdef bytes blob = b"".join(tokens)
        cdef bytes mblob = b"".join(merges)
        cdef const char *base = PyBytes_AS_STRING(blob)
        cdef const char *mbase = PyBytes_AS_STRING(mblob)
        cdef const char **ptrs = <const char **>malloc((n + 1) * sizeof(char *))
        cdef size_t *lens = <size_t *>malloc((n + 1) * sizeof(size_t))
        cdef const char **mptrs = <const char **>malloc((nm + 1) * sizeof(char *))
        cdef size_t *mlens = <size_t *>malloc((nm + 1) * sizeof(size_t))
        cdef const float[::1] sc
        cdef const int32_t[::1] ty
        cdef size_t off = 0
        self.tok = NULL
        try:
            if ptrs == NULL or lens == NULL or mptrs == NULL or mlens == NULL:
                raise MemoryError()
            for i in range(n):
                lens[i] = len(<bytes>tokens[i])
                ptrs[i] = base + off
                off += lens[i]
            off = 0
            for i in range(nm):
                mlens[i] = len(<bytes>merges[i])
                mptrs[i] = mbase + off
                off += mlens[i]
            bg_tokenizer_desc_init(&d, kind, <int32_t>n)
            d.pre = pre
            d.tokens = ptrs
            d.token_lens = lens
            if scores is not None:
                sc = _np.ascontiguousarray(scores, dtype=_np.float32)
                if sc.shape[0] != n:
                    raise ValueError(f"{sc.shape[0]} scores for {n} tokens")
                d.scores = &sc[0]
            if types is not None:
                ty = _np.ascontiguousarray(types, dtype=_np.int32)
                if ty.shape[0] != n:
                    raise ValueError(f"{ty.shape[0]} token types for {n} tokens")
                d.types = &ty[0]
            d.n_merges = <int32_t>nm
            d.merges = mptrs
            d.merge_lens = mlens
            d.flags = flags
            d.bos, d.eos, d.eot, d.eom, d.unk, d.pad = bos, eos, eot, eom, unk, pad
            with nogil:
                self.tok = bg_tokenizer_new(&d, err, sizeof(err))
            if self.tok == NULL:
                raise ValueError(err.decode("utf-8", "replace"))
        finally:
            free(ptrs)
            free(lens)
            free(mptrs)
            free(mlens)

    def __dealloc__(self):
        bg_tokenizer_free(self.tok)

    def tokenize(self, bytes text, bint add_special, bint parse_special):
        """Token ids of UTF-8 text, as an int32 numpy array."""
        cdef const char *s = PyBytes_AS_STRING(text)
        cdef size_t n = len(text)
        cdef int32_t cap = <int32_t>(n + 8 if n < 2147483000 else 2147483647)
        cdef int32_t got
        cdef int32_t[::1] out
        while True:
            buf = _np.empty(cap, dtype=_np.int32)
            out = buf
            with nogil:
                got = bg_tokenize(self.tok, s, n, add_special, parse_special, &out[0], cap)
            if got == -2147483648:
                raise MemoryError("out of memory while tokenizing")
            if got >= 0:
                return buf[:got]
            cap = -got

    def piece(self, int32_t id, bint special):
        cdef char small[256]
        cdef int32_t n = bg_token_to_piece(self.tok, id, small, sizeof(small), special)
        if n >= 0:
            return small[:n]
        out = bytearray(-n)
        bg_token_to_piece(self.tok, id, <char *>out, -n, special)
        return bytes(out)

    def detokenize(self, ids, bint special, bint strip_space):
        cdef const int32_t[::1] v = _np.ascontiguousarray(ids, dtype=_np.int32)
        cdef int32_t n = <int32_t>v.shape[0]
        cdef const int32_t *p = &v[0] if n > 0 else NULL
        cdef int32_t need
        with nogil:
            need = bg_detokenize(self.tok, p, n, NULL, 0, special, strip_space)
        if need == -2147483648:
            raise MemoryError("detokenized text exceeds 2 GiB")
        if need < 0:
            need = -need
        out = bytearray(need)
        cdef char *dst
        if need:
            dst = <char *>out
            with nogil:
                bg_detokenize(self.tok, p, n, dst, need, special, strip_space)
        return bytes(out)

    def lookup(self, bytes text):
        return bg_token_lookup(self.tok, PyBytes_AS_STRING(text), len(text))

    def token_type(self, int32_t id):
        return bg_token_type(self.tok, id)

    def is_eog(self, int32_t id):
        return bool(bg_token_is_eog(self.tok, id))

    @property
    def n_vocab(self):
        return bg_tokenizer_n_vocab(self.tok)

    @property
    def flags(self):
        return bg_tokenizer_flags(self.tok)

    @property
    def bos(self):
        return bg_tokenizer_bos(self.tok)

    @property
    def eos(self):
        return bg_tokenizer_eos(self.tok)

    @property
    def eot(self):
        return bg_tokenizer_eot(self.tok)
