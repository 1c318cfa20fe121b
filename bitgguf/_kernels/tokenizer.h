/* Tokenizer: SentencePiece (GGUF tokenizer.ggml.model = "llama") and byte-level BPE ("gpt2"), built from the
 * vocabulary arrays a GGUF file carries, behaving like llama.cpp's (its test vectors are the judge).
 *
 * Plain C, no Python: a C program fills a bg_tokenizer_desc from the GGUF metadata (pointers may point into the
 * mmap), calls bg_tokenizer_new, and may then drop its arrays: the tokenizer copies what it needs. A built
 * tokenizer is read-only, so one may be used from several threads at once.
 *
 *   bg_tokenizer_desc d;
 *   bg_tokenizer_desc_init(&d, BG_TOK_BPE, n_vocab);
 *   d.tokens = tokens; d.token_lens = lens; d.types = types; d.n_merges = ...; d.pre = BG_PRE_LLAMA3; ...
 *   char err[256];
 *   bg_tokenizer *tok = bg_tokenizer_new(&d, err, sizeof err);   (NULL + message on error)
 *   int n = bg_tokenize(tok, text, strlen(text), 1, 0, ids, max_ids);  (n < 0: -n ids are needed)
 */
#ifndef BITGGUF_TOKENIZER_H
#define BITGGUF_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    BG_TOK_SPM = 1,  /* "llama": SentencePiece bigram merges by score, byte fallback <0xXX>, ▁ for spaces */
    BG_TOK_BPE = 2   /* "gpt2": byte-level BPE, merges by rank */
} bg_tok_kind;

/* Pre-tokenizer (how BPE splits text into words before merging); SPM ignores it. */
typedef enum {
    BG_PRE_DEFAULT = 0,  /* llama.cpp's default: no/unknown tokenizer.ggml.pre (bitnet.cpp's 2B-4T files) */
    BG_PRE_LLAMA3 = 1    /* "llama-bpe", "llama3", "llama-v3", "falcon3", ...: the Llama-3 split regex */
} bg_tok_pre;

/* Token types, as stored in tokenizer.ggml.token_type. */
enum {
    BG_TOKTYPE_UNDEFINED = 0,
    BG_TOKTYPE_NORMAL = 1,
    BG_TOKTYPE_UNKNOWN = 2,
    BG_TOKTYPE_CONTROL = 3,
    BG_TOKTYPE_USER_DEFINED = 4,
    BG_TOKTYPE_UNUSED = 5,
    BG_TOKTYPE_BYTE = 6
};

/* Flags. */
enum {
    BG_TOK_ADD_BOS = 1,           /* tokenizer.ggml.add_bos_token */
    BG_TOK_ADD_EOS = 2,           /* tokenizer.ggml.add_eos_token */
    BG_TOK_ADD_SPACE_PREFIX = 4,  /* tokenizer.ggml.add_space_prefix (SPM default) */
    BG_TOK_IGNORE_MERGES = 8      /* BPE: a word that is a whole token is not merged (Llama-3) */
};

typedef struct {
    int kind;                        /* bg_tok_kind */
    int pre;                         /* bg_tok_pre */
    int32_t n_vocab;
    const char *const *tokens;       /* n_vocab UTF-8 strings, token_lens[i] bytes each (no terminator needed) */
    const size_t *token_lens;
    const float *scores;             /* n_vocab, or NULL (all 0); SPM merges by these */
    const int32_t *types;            /* n_vocab BG_TOKTYPE_*, or NULL (all NORMAL) */
    int32_t n_merges;                /* BPE: "left right" strings, rank = index */
    const char *const *merges;
    const size_t *merge_lens;
    int flags;                       /* BG_TOK_* */
    int32_t bos, eos, eot, eom, unk, pad;  /* -1 when absent; eot/eom are also found by text when -1 */
} bg_tokenizer_desc;

typedef struct bg_tokenizer bg_tokenizer;

/* Fill a desc with llama.cpp's defaults for the kind: SPM bos 1, eos 2, unk 0, add_bos, add_space_prefix;
 * BPE bos = eos = 11 (sic), no flags. The caller then sets the arrays and whatever the metadata says. */
void bg_tokenizer_desc_init(bg_tokenizer_desc *d, int kind, int32_t n_vocab);

/* Fill a desc from the GGUF strings tokenizer.ggml.model ("llama", "gpt2") and tokenizer.ggml.pre (NULL when
 * the key is absent): kind, pre-tokenizer, and llama.cpp's defaults for them (a Llama-3 pre-tokenizer turns on
 * add_bos and ignore_merges). Then apply the explicit keys (add_bos_token, bos_token_id, ...) over it.
 * Returns 0, or -1 with a message in err when a name is not supported. */
int bg_tokenizer_desc_from_names(bg_tokenizer_desc *d, const char *model, const char *pre, int32_t n_vocab,
                                 char *err, size_t err_len);

/* Build a tokenizer (copies everything). NULL on error, with a message in err. */
bg_tokenizer *bg_tokenizer_new(const bg_tokenizer_desc *d, char *err, size_t err_len);
void bg_tokenizer_free(bg_tokenizer *tok);

/* Tokenize len bytes of UTF-8 text (invalid bytes act as U+FFFD). add_special: BOS/EOS as the flags say.
 * parse_special: match CONTROL/UNKNOWN token texts (e.g. "<|eot_id|>") in the text; USER_DEFINED token texts
 * always match, as in llama.cpp. Returns the number of ids written, or -(ids needed) when max_out is too
 * small (out is then left partly written), or INT32_MIN on out-of-memory. */
int32_t bg_tokenize(const bg_tokenizer *tok, const char *text, size_t len, int add_special, int parse_special,
                    int32_t *out, int32_t max_out);

/* The bytes a token stands for. special = 0 gives CONTROL/UNKNOWN tokens as empty; 1 gives their text.
 * Returns the byte count, or -(bytes needed) when buf is too small; 0 for an id out of range. */
int32_t bg_token_to_piece(const bg_tokenizer *tok, int32_t id, char *buf, int32_t len, int special);

/* Concatenated pieces of n ids. strip_space: drop one leading space of the first non-empty piece (what
 * add_space_prefix put there; the default for whole sequences of SPM vocabularies is tok's add_space_prefix).
 * Returns the byte count or -(bytes needed). */
int32_t bg_detokenize(const bg_tokenizer *tok, const int32_t *ids, int32_t n, char *buf, int32_t len,
                      int special, int strip_space);

/* Vocabulary facts. */
int32_t bg_tokenizer_n_vocab(const bg_tokenizer *tok);
int bg_tokenizer_kind(const bg_tokenizer *tok);
int bg_tokenizer_flags(const bg_tokenizer *tok);
int32_t bg_tokenizer_bos(const bg_tokenizer *tok);
int32_t bg_tokenizer_eos(const bg_tokenizer *tok);
int32_t bg_tokenizer_eot(const bg_tokenizer *tok);          /* -1 when none */
int bg_token_type(const bg_tokenizer *tok, int32_t id);     /* BG_TOKTYPE_*, -1 out of range */
int bg_token_is_eog(const bg_tokenizer *tok, int32_t id);   /* end of generation: eos, eot, eom, ... */
float bg_token_score(const bg_tokenizer *tok, int32_t id);
/* The token's stored text (not NUL-terminated); NULL out of range. */
const char *bg_token_text(const bg_tokenizer *tok, int32_t id, size_t *len);
/* Id of a token text, -1 if none. */
int32_t bg_token_lookup(const bg_tokenizer *tok, const char *text, size_t len);

#ifdef __cplusplus
}
#endif

#endif
