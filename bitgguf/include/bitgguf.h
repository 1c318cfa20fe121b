/* bitgguf: run ternary (1.58-bit) BitNet language models from GGUF files, from C or C++, without Python.
 *
 * Build:  cc prog.c $(python -m bitgguf --cflags --libs)
 *         (bitgguf.get_include() is this header's folder, bitgguf.get_library() the shared library)
 *
 * Text to text, greedily (error checks left out; see examples/c/generate.c for the full program):
 *
 *   char err[512];
 *   bitgguf_model *model;
 *   bitgguf_model_open("model.gguf", &model, err, sizeof err);          // BITGGUF_OK, or a code + message
 *   bitgguf_context *ctx;
 *   bitgguf_context_new(model, NULL, &ctx, err, sizeof err);            // NULL params: the defaults
 *   bitgguf_token ids[256];
 *   int32_t n = bitgguf_tokenize(model, "Once upon a time", 16, 1, 0, ids, 256);
 *   bitgguf_eval(ctx, ids, n);                                          // the prompt, as one batch
 *   for (int i = 0; i < 32; i++) {
 *       bitgguf_token t = bitgguf_greedy(bitgguf_get_logits(ctx), bitgguf_n_vocab(model));
 *       if (bitgguf_token_is_eog(model, t)) break;
 *       char piece[64];
 *       int32_t len = bitgguf_token_to_piece(model, t, piece, sizeof piece, 0);
 *       fwrite(piece, 1, len, stdout);
 *       bitgguf_eval(ctx, &t, 1);
 *   }
 *   bitgguf_context_free(ctx);
 *   bitgguf_model_free(model);
 *
 * Thread safety:
 *   - A bitgguf_model is read-only once opened: any number of threads may use one model at once (metadata,
 *     tokenizer, and creating contexts), until bitgguf_model_free, which must come after every context of it is
 *     freed.
 *   - A bitgguf_context (KV cache, logits, scratch) belongs to one thread at a time: use one context per thread.
 *     A context may use several threads inside one eval (n_threads); results do not depend on that number.
 *   - A bitgguf_sampler belongs to one thread at a time.
 *   - The functions that take no object (version, status text, greedy) are safe everywhere.
 *
 * Conventions: sizes and counts are int32_t; functions that fill a caller's buffer return the number of items
 * written, or minus the number needed when the buffer is too small (nothing useful is written then). Text is
 * UTF-8 bytes with an explicit length. Error messages name the file, the key or tensor, what was found and what
 * was expected; `err` may be NULL when the caller does not want the message.
 *
 * ABI: the library's major version changes when an existing function or struct changes; new functions raise the
 * minor version. Check at run time that bitgguf_version() / 10000 == BITGGUF_VERSION_MAJOR.
 */
#ifndef BITGGUF_H
#define BITGGUF_H

#include <stddef.h>
#include <stdint.h>

#define BITGGUF_VERSION_MAJOR 0
#define BITGGUF_VERSION_MINOR 1
#define BITGGUF_VERSION_PATCH 0
/* MAJOR * 10000 + MINOR * 100 + PATCH: compare with bitgguf_version() */
#define BITGGUF_VERSION (BITGGUF_VERSION_MAJOR * 10000 + BITGGUF_VERSION_MINOR * 100 + BITGGUF_VERSION_PATCH)

#if defined(_WIN32) && defined(BITGGUF_BUILD)
#define BITGGUF_API __declspec(dllexport)
#elif defined(_WIN32)
#define BITGGUF_API __declspec(dllimport)
#elif defined(__GNUC__)
#define BITGGUF_API __attribute__((visibility("default")))
#else
#define BITGGUF_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bitgguf_model bitgguf_model;      /* a mapped GGUF file: weights, metadata, tokenizer */
typedef struct bitgguf_context bitgguf_context;  /* one running sequence: KV cache, logits */
typedef struct bitgguf_sampler bitgguf_sampler;  /* token sampling state: random stream, penalty history */
typedef int32_t bitgguf_token;

/* Status codes. 0 is success; messages come in the caller's err buffer (or bitgguf_context_error). */
typedef enum {
    BITGGUF_OK = 0,
    BITGGUF_ERR_IO = 1,           /* the file cannot be opened, read or mapped */
    BITGGUF_ERR_FORMAT = 2,       /* not GGUF, truncated, or corrupt (a length, count or offset is impossible) */
    BITGGUF_ERR_UNSUPPORTED = 3,  /* valid GGUF that bitgguf does not run: architecture, tensor type, vocabulary */
    BITGGUF_ERR_NOMEM = 4,        /* out of memory */
    BITGGUF_ERR_ARGUMENT = 5,     /* a bad argument: NULL pointer, token out of range, bad parameter */
    BITGGUF_ERR_CONTEXT_FULL = 6, /* eval: the tokens do not fit in the context */
    BITGGUF_ERR_NOT_FOUND = 7,    /* metadata: no such key */
    BITGGUF_ERR_TYPE = 8          /* metadata: the key holds another type */
} bitgguf_status;

/* ---- version ------------------------------------------------------------------------------------------------ */

/* The library's BITGGUF_VERSION (which may differ from the header's when the library was upgraded). */
BITGGUF_API int bitgguf_version(void);
/* "MAJOR.MINOR.PATCH". */
BITGGUF_API const char *bitgguf_version_string(void);
/* A short English name of a status code ("ok", "format error", ...). */
BITGGUF_API const char *bitgguf_status_string(int status);

/* ---- model ------------------------------------------------------------------------------------------------- */

/* Map and validate a GGUF file (archs bitnet, bitnet-25, bitnet-b1.58) and build its tokenizer. On success
 * *model is set and BITGGUF_OK returned; otherwise *model is NULL and the message goes to err (err_len bytes,
 * NUL-terminated, truncated if longer). Every length, count and offset in the file is checked against the file's
 * size before use. Ternary weights (I2_S, TQ1_0, TQ2_0) are used in place from the memory map, and so are
 * bitnet.cpp's TL2 weights where this CPU has a SIMD kernel for them (x86); TL1 weights, TL2 elsewhere, and float
 * weights holding alpha-scaled ternary values, are repacked once, in memory, as the Python API does by default. A
 * file without a vocabulary opens, but cannot tokenize. */
BITGGUF_API int bitgguf_model_open(const char *path, bitgguf_model **model, char *err, size_t err_len);
/* Unmap and free (NULL is fine). Free the model's contexts first. */
BITGGUF_API void bitgguf_model_free(bitgguf_model *model);

/* Hyper-parameters (read from the metadata with the same keys and defaults as the Python API). */
BITGGUF_API int32_t bitgguf_n_vocab(const bitgguf_model *model);
BITGGUF_API int32_t bitgguf_n_ctx_train(const bitgguf_model *model);  /* {arch}.context_length, default 2048 */
BITGGUF_API int32_t bitgguf_n_embd(const bitgguf_model *model);
BITGGUF_API int32_t bitgguf_n_layer(const bitgguf_model *model);
BITGGUF_API int32_t bitgguf_n_head(const bitgguf_model *model);
BITGGUF_API int32_t bitgguf_n_head_kv(const bitgguf_model *model);
BITGGUF_API int32_t bitgguf_n_ff(const bitgguf_model *model);
/* general.architecture ("bitnet", "bitnet-25", "bitnet-b1.58"). */
BITGGUF_API const char *bitgguf_arch(const bitgguf_model *model);

/* ---- metadata --------------------------------------------------------------------------------------------------
 * Keys as in the file ("general.name", "bitnet-b1.58.context_length", ...). Pointers returned stay valid until
 * bitgguf_model_free. */

BITGGUF_API int32_t bitgguf_meta_count(const bitgguf_model *model);
/* The i-th key in file order (NUL-terminated), NULL out of range. */
BITGGUF_API const char *bitgguf_meta_key(const bitgguf_model *model, int32_t i);
/* The GGUF value type of a key (0 uint8 ... 8 string, 9 array, ... 12 float64, as in the GGUF spec), -1 if absent. */
BITGGUF_API int bitgguf_meta_type(const bitgguf_model *model, const char *key);
/* A string value, NUL-terminated (len, if not NULL, gets its byte length: the value may hold NULs).
 * NULL when the key is absent or not a string. */
BITGGUF_API const char *bitgguf_meta_str(const bitgguf_model *model, const char *key, size_t *len);
/* An integer value (any GGUF integer type, or bool as 0/1): BITGGUF_OK, BITGGUF_ERR_NOT_FOUND, or
 * BITGGUF_ERR_TYPE (a float, string or array, or a uint64 above INT64_MAX). */
BITGGUF_API int bitgguf_meta_int(const bitgguf_model *model, const char *key, int64_t *value);
/* A number (float32, float64, or any integer type) as a double: BITGGUF_OK, _NOT_FOUND or _TYPE. */
BITGGUF_API int bitgguf_meta_float(const bitgguf_model *model, const char *key, double *value);
/* Element count and element type of an array value: BITGGUF_OK, _NOT_FOUND or _TYPE (not an array). */
BITGGUF_API int bitgguf_meta_array(const bitgguf_model *model, const char *key, int *elem_type, uint64_t *count);
/* Element i of an array of strings: its bytes in the file (NOT NUL-terminated; len gets the length), NULL when
 * the key is absent, not an array of strings, or i is out of range. */
BITGGUF_API const char *bitgguf_meta_array_str(const bitgguf_model *model, const char *key, uint64_t i, size_t *len);
/* Element i of an array of numbers, with the rules of bitgguf_meta_int / bitgguf_meta_float: BITGGUF_OK,
 * _NOT_FOUND (no key, or i out of range) or _TYPE. */
BITGGUF_API int bitgguf_meta_array_int(const bitgguf_model *model, const char *key, uint64_t i, int64_t *value);
BITGGUF_API int bitgguf_meta_array_float(const bitgguf_model *model, const char *key, uint64_t i, double *value);

/* ---- tokenizer (the model's vocabulary: SentencePiece "llama" or byte-level BPE "gpt2", as llama.cpp) ---------- */

/* Tokenize len bytes of UTF-8. add_special: BOS (and EOS) as the vocabulary asks (tokenizer.ggml.add_bos_token);
 * parse_special: texts of control tokens such as "<|eot_id|>" become those tokens. Returns the number of tokens,
 * -(tokens needed) when max_tokens is too small, or INT32_MIN when the model has no usable vocabulary or memory
 * runs out. */
BITGGUF_API int32_t bitgguf_tokenize(const bitgguf_model *model, const char *text, size_t len, int add_special,
                                     int parse_special, bitgguf_token *tokens, int32_t max_tokens);
/* The bytes a token stands for (not NUL-terminated; a UTF-8 character may be split across tokens). special = 0
 * gives control tokens (BOS, EOS, ...) as empty. Returns the byte count or -(bytes needed); 0 for an id out of
 * range. */
BITGGUF_API int32_t bitgguf_token_to_piece(const bitgguf_model *model, bitgguf_token token, char *buf, int32_t len,
                                           int special);
/* The text of n tokens (not NUL-terminated), as the Python API's Model.detokenize: control tokens left out unless
 * special, and with a SentencePiece vocabulary the leading space the tokenizer added is dropped. Returns the byte
 * count or -(bytes needed); INT32_MIN for an id out of range. */
BITGGUF_API int32_t bitgguf_detokenize(const bitgguf_model *model, const bitgguf_token *tokens, int32_t n, char *buf,
                                       int32_t len, int special);
BITGGUF_API bitgguf_token bitgguf_token_bos(const bitgguf_model *model);  /* -1 when none */
BITGGUF_API bitgguf_token bitgguf_token_eos(const bitgguf_model *model);  /* -1 when none */
BITGGUF_API bitgguf_token bitgguf_token_eot(const bitgguf_model *model);  /* -1 when none */
/* 1 for end-of-generation tokens (EOS, EOT, EOM, and llama.cpp's known end-of-turn texts), else 0. */
BITGGUF_API int bitgguf_token_is_eog(const bitgguf_model *model, bitgguf_token token);

/* ---- context ----------------------------------------------------------------------------------------------- */

typedef struct {
    int32_t n_ctx;      /* context length in tokens; 0: the model's training context (bitgguf_n_ctx_train) */
    int32_t n_threads;  /* threads per eval; 0: the CPUs this process may run on */
    int32_t kv_f32;     /* 0: F16 KV cache (half the memory, the default); 1: F32 */
    const char *isa;    /* kernel level "scalar", "avx2", "avx512", "amx", "neon", "neon_dotprod"; NULL:
                           $BITGGUF_ISA if set, else the best this CPU runs */
} bitgguf_context_params;

BITGGUF_API bitgguf_context_params bitgguf_context_default_params(void);

/* A new, empty context over a model (params NULL: the defaults). The model must outlive the context. */
BITGGUF_API int bitgguf_context_new(const bitgguf_model *model, const bitgguf_context_params *params,
                                    bitgguf_context **ctx, char *err, size_t err_len);
BITGGUF_API void bitgguf_context_free(bitgguf_context *ctx);

/* Append n tokens to the context, evaluated as one batch; afterwards bitgguf_get_logits gives the last token's
 * n_vocab logits. Returns BITGGUF_OK, BITGGUF_ERR_CONTEXT_FULL, or BITGGUF_ERR_ARGUMENT (an id out of range,
 * n <= 0); the message is in bitgguf_context_error. On error nothing is appended. */
BITGGUF_API int bitgguf_eval(bitgguf_context *ctx, const bitgguf_token *tokens, int32_t n);
/* As bitgguf_eval, and also writes every token's logits to logits (n * n_vocab floats, row i for token i). */
BITGGUF_API int bitgguf_eval_all(bitgguf_context *ctx, const bitgguf_token *tokens, int32_t n, float *logits);
/* The last evaluated token's logits (n_vocab floats), valid until the next eval/reset; NULL before any eval. */
BITGGUF_API const float *bitgguf_get_logits(const bitgguf_context *ctx);
/* Forget the context (the next eval starts at position 0). */
BITGGUF_API void bitgguf_context_reset(bitgguf_context *ctx);
BITGGUF_API int32_t bitgguf_n_ctx(const bitgguf_context *ctx);
BITGGUF_API int32_t bitgguf_n_past(const bitgguf_context *ctx);   /* tokens in the context */
BITGGUF_API int32_t bitgguf_n_threads(const bitgguf_context *ctx);
BITGGUF_API void bitgguf_set_n_threads(bitgguf_context *ctx, int32_t n_threads);  /* < 1 means 1 */
/* The kernel level in use ("avx2", ...). */
BITGGUF_API const char *bitgguf_context_isa(const bitgguf_context *ctx);
/* The message of the context's last failed call ("" when none). */
BITGGUF_API const char *bitgguf_context_error(const bitgguf_context *ctx);

/* ---- sampling (llama.cpp's order: penalties, top-k, top-p, min-p, temperature, draw) --------------------------- */

typedef struct {
    float temperature;      /* <= 0: greedy (argmax, lowest id on ties) */
    int32_t top_k;          /* <= 0: off */
    float top_p;            /* >= 1: off */
    float min_p;            /* <= 0: off */
    float repeat_penalty;   /* 1: off */
    int32_t repeat_last_n;  /* accepted tokens the penalty looks back at; 0: off; -1: all */
    uint64_t seed;          /* the same seed gives the same tokens on every platform */
} bitgguf_sampler_params;

/* The CLI's defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat_penalty 1, last 64, seed 0. */
BITGGUF_API bitgguf_sampler_params bitgguf_sampler_default_params(void);
/* NULL when out of memory or a parameter is out of range (NaN, top_p < 0, min_p outside [0, 1],
 * repeat_penalty <= 0, repeat_last_n < -1). */
BITGGUF_API bitgguf_sampler *bitgguf_sampler_new(const bitgguf_sampler_params *params);
BITGGUF_API void bitgguf_sampler_free(bitgguf_sampler *sampler);
/* Forget the accepted tokens and restart the random stream from the seed. */
BITGGUF_API void bitgguf_sampler_reset(bitgguf_sampler *sampler);
/* A token from n_vocab logits (not modified); -1 when n_vocab <= 0 or memory runs out. Does not accept it. */
BITGGUF_API bitgguf_token bitgguf_sampler_sample(bitgguf_sampler *sampler, const float *logits, int32_t n_vocab);
/* Record a token (prompt or generated) for the repetition penalty: BITGGUF_OK or BITGGUF_ERR_NOMEM. */
BITGGUF_API int bitgguf_sampler_accept(bitgguf_sampler *sampler, bitgguf_token token);
/* Argmax of n_vocab logits, lowest id on ties (-1 when n_vocab <= 0): greedy decoding without a sampler. */
BITGGUF_API bitgguf_token bitgguf_greedy(const float *logits, int32_t n_vocab);

#ifdef __cplusplus
}
#endif

#endif
