# Cython declarations of the bitgguf C API (bitgguf.h), for nogil use from another extension:
#
#     cimport bitgguf as bg            # with bitgguf.get_include() in Cython's include_path
#     ...
#     with nogil:
#         rc = bg.bitgguf_eval(ctx, ids, n)
#
# Build the extension with include_dirs=[bitgguf.get_include()] and link bitgguf.get_library() (see
# examples/cython/setup.py). The comments in bitgguf.h are the documentation, thread-safety rules included.
from libc.stdint cimport int32_t, int64_t, uint64_t

cdef extern from "bitgguf.h" nogil:
    int BITGGUF_VERSION_MAJOR
    int BITGGUF_VERSION_MINOR
    int BITGGUF_VERSION_PATCH
    int BITGGUF_VERSION

    ctypedef struct bitgguf_model:
        pass
    ctypedef struct bitgguf_context:
        pass
    ctypedef struct bitgguf_sampler:
        pass
    ctypedef int32_t bitgguf_token

    ctypedef enum bitgguf_status:
        BITGGUF_OK
        BITGGUF_ERR_IO
        BITGGUF_ERR_FORMAT
        BITGGUF_ERR_UNSUPPORTED
        BITGGUF_ERR_NOMEM
        BITGGUF_ERR_ARGUMENT
        BITGGUF_ERR_CONTEXT_FULL
        BITGGUF_ERR_NOT_FOUND
        BITGGUF_ERR_TYPE

    int bitgguf_version()
    const char *bitgguf_version_string()
    const char *bitgguf_status_string(int status)

    # model
    int bitgguf_model_open(const char *path, bitgguf_model **model, char *err, size_t err_len)
    void bitgguf_model_free(bitgguf_model *model)
    int32_t bitgguf_n_vocab(const bitgguf_model *model)
    int32_t bitgguf_n_ctx_train(const bitgguf_model *model)
    int32_t bitgguf_n_embd(const bitgguf_model *model)
    int32_t bitgguf_n_layer(const bitgguf_model *model)
    int32_t bitgguf_n_head(const bitgguf_model *model)
    int32_t bitgguf_n_head_kv(const bitgguf_model *model)
    int32_t bitgguf_n_ff(const bitgguf_model *model)
    const char *bitgguf_arch(const bitgguf_model *model)

    # metadata
    int32_t bitgguf_meta_count(const bitgguf_model *model)
    const char *bitgguf_meta_key(const bitgguf_model *model, int32_t i)
    int bitgguf_meta_type(const bitgguf_model *model, const char *key)
    const char *bitgguf_meta_str(const bitgguf_model *model, const char *key, size_t *len)
    int bitgguf_meta_int(const bitgguf_model *model, const char *key, int64_t *value)
    int bitgguf_meta_float(const bitgguf_model *model, const char *key, double *value)
    int bitgguf_meta_array(const bitgguf_model *model, const char *key, int *elem_type, uint64_t *count)
    const char *bitgguf_meta_array_str(const bitgguf_model *model, const char *key, uint64_t i, size_t *len)
    int bitgguf_meta_array_int(const bitgguf_model *model, const char *key, uint64_t i, int64_t *value)
    int bitgguf_meta_array_float(const bitgguf_model *model, const char *key, uint64_t i, double *value)

    # tokenizer
    int32_t bitgguf_tokenize(const bitgguf_model *model, const char *text, size_t len, int add_special,
                             int parse_special, bitgguf_token *tokens, int32_t max_tokens)
    int32_t bitgguf_token_to_piece(const bitgguf_model *model, bitgguf_token token, char *buf, int32_t len,
                                   int special)
    int32_t bitgguf_detokenize(const bitgguf_model *model, const bitgguf_token *tokens, int32_t n, char *buf,
                               int32_t len, int special)
    bitgguf_token bitgguf_token_bos(const bitgguf_model *model)
    bitgguf_token bitgguf_token_eos(const bitgguf_model *model)
    bitgguf_token bitgguf_token_eot(const bitgguf_model *model)
    int bitgguf_token_is_eog(const bitgguf_model *model, bitgguf_token token)

    # context
    ctypedef struct bitgguf_context_params:
        int32_t n_ctx
        int32_t n_threads
        int32_t kv_f32
        const char *isa
    bitgguf_context_params bitgguf_context_default_params()
    int bitgguf_context_new(const bitgguf_model *model, const bitgguf_context_params *params,
                            bitgguf_context **ctx, char *err, size_t err_len)
    void bitgguf_context_free(bitgguf_context *ctx)
    int bitgguf_eval(bitgguf_context *ctx, const bitgguf_token *tokens, int32_t n)
    int bitgguf_eval_all(bitgguf_context *ctx, const bitgguf_token *tokens, int32_t n, float *logits)
    const float *bitgguf_get_logits(const bitgguf_context *ctx)
    void bitgguf_context_reset(bitgguf_context *ctx)
    int32_t bitgguf_n_ctx(const bitgguf_context *ctx)
    int32_t bitgguf_n_past(const bitgguf_context *ctx)
    int32_t bitgguf_n_threads(const bitgguf_context *ctx)
    void bitgguf_set_n_threads(bitgguf_context *ctx, int32_t n_threads)
    const char *bitgguf_context_isa(const bitgguf_context *ctx)
    const char *bitgguf_context_error(const bitgguf_context *ctx)

    # sampling
    ctypedef struct bitgguf_sampler_params:
        float temperature
        int32_t top_k
        float top_p
        float min_p
        float repeat_penalty
        int32_t repeat_last_n
        uint64_t seed
    bitgguf_sampler_params bitgguf_sampler_default_params()
    bitgguf_sampler *bitgguf_sampler_new(const bitgguf_sampler_params *params)
    void bitgguf_sampler_free(bitgguf_sampler *sampler)
    void bitgguf_sampler_reset(bitgguf_sampler *sampler)
    bitgguf_token bitgguf_sampler_sample(bitgguf_sampler *sampler, const float *logits, int32_t n_vocab)
    int bitgguf_sampler_accept(bitgguf_sampler *sampler, bitgguf_token token)
    bitgguf_token bitgguf_greedy(const float *logits, int32_t n_vocab)
