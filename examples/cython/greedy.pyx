# cython: language_level=3
"""A tiny extension that embeds bitgguf through its C API: load a model, generate greedily in a nogil loop.

    python setup.py build_ext --inplace
    python -c "import greedy; print(greedy.generate('model.gguf', 'Once upon a time', 32))"
"""
cimport bitgguf as bg
from libc.stdint cimport int32_t
from libc.stdlib cimport malloc, free


def generate(str path, str prompt, int n_tokens):
    """(token ids, generated text as UTF-8 bytes) of the greedy continuation of prompt."""
    cdef char err[512]
    cdef bg.bitgguf_model *model = NULL
    cdef bg.bitgguf_context *ctx = NULL
    cdef bytes bpath = path.encode()
    cdef bytes text = prompt.encode("utf-8")
    cdef const char *ctext = text
    cdef size_t tlen = len(text)
    cdef int rc, i
    cdef int32_t n, n_vocab, got = 0
    cdef bg.bitgguf_token t
    cdef bg.bitgguf_token *ids = NULL
    cdef bg.bitgguf_token *out = NULL

    if bg.bitgguf_version() // 10000 != bg.BITGGUF_VERSION_MAJOR:
        raise RuntimeError(f"libbitgguf {bg.bitgguf_version_string().decode()} does not match the header")
    rc = bg.bitgguf_model_open(bpath, &model, err, sizeof(err))
    if rc != bg.BITGGUF_OK:
        raise ValueError(err.decode("utf-8", "replace"))
    try:
        rc = bg.bitgguf_context_new(model, NULL, &ctx, err, sizeof(err))
        if rc != bg.BITGGUF_OK:
            raise ValueError(err.decode("utf-8", "replace"))
        n = <int32_t>(tlen + 2)
        ids = <bg.bitgguf_token *>malloc(n * sizeof(bg.bitgguf_token))
        out = <bg.bitgguf_token *>malloc((n_tokens + 1) * sizeof(bg.bitgguf_token))
        if ids == NULL or out == NULL:
            raise MemoryError()
        n_vocab = bg.bitgguf_n_vocab(model)
        with nogil:
            n = bg.bitgguf_tokenize(model, ctext, tlen, 1, 0, ids, n)
            rc = bg.bitgguf_eval(ctx, ids, n) if n > 0 else bg.BITGGUF_ERR_ARGUMENT
            for i in range(n_tokens):
                if rc != bg.BITGGUF_OK:
                    break
                t = bg.bitgguf_greedy(bg.bitgguf_get_logits(ctx), n_vocab)
                if bg.bitgguf_token_is_eog(model, t):
                    break
                out[got] = t
                got += 1
                if bg.bitgguf_n_past(ctx) >= bg.bitgguf_n_ctx(ctx):
                    break
                rc = bg.bitgguf_eval(ctx, &t, 1)
        if n <= 0:
            raise ValueError(f"cannot tokenize the prompt ({n})")
        if rc != bg.BITGGUF_OK:
            raise RuntimeError(bg.bitgguf_context_error(ctx).decode("utf-8", "replace"))
        tokens = [out[i] for i in range(got)]
        pieces = []
        for i in range(got):
            pieces.append(_piece(model, out[i]))
        return tokens, b"".join(pieces)
    finally:
        free(ids)
        free(out)
        bg.bitgguf_context_free(ctx)
        bg.bitgguf_model_free(model)


cdef bytes _piece(const bg.bitgguf_model *model, bg.bitgguf_token t):
    cdef char buf[256]
    cdef int32_t k = bg.bitgguf_token_to_piece(model, t, buf, sizeof(buf), 0)
    cdef char *big
    if k >= 0:
        return buf[:k]
    big = <char *>malloc(-k)
    if big == NULL:
        raise MemoryError()
    try:
        bg.bitgguf_token_to_piece(model, t, big, -k, 0)
        return big[:-k]
    finally:
        free(big)
