/* Tokenizer: SentencePiece and byte-level BPE from GGUF vocabulary arrays, matching llama.cpp token for token.
 *
 * Layout: the vocabulary is one text pool with offsets; a hash table maps text -> id (last duplicate wins, as
 * llama.cpp's map assignment does) and another maps a merge pair (left, right) -> rank (first wins). Each
 * token's decoded bytes are precomputed once, so detokenizing is copying. Tokenizing works on per-call
 * buffers only, so a built tokenizer is safe to share between threads. */
#include "tokenizer.h"
#include "unicode.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bg_tokenizer {
    int kind, pre, flags;
    int32_t n_vocab;
    char *text;            /* token texts, back to back */
    size_t *text_off;      /* n_vocab */
    uint32_t *text_len;
    float *score;
    uint8_t *type;         /* BG_TOKTYPE_* (after llama.cpp's promotion of end-of-turn texts to CONTROL) */
    uint8_t *eog;          /* 1 for end-of-generation tokens */
    char *piece;           /* decoded bytes of each token, special = 0 form */
    size_t *piece_off;
    uint32_t *piece_len;
    int32_t *tok_hash;     /* open addressing, -1 empty */
    uint32_t tok_mask;
    int32_t n_merges;
    char *mtext;           /* merge texts without the space: left then right */
    size_t *m_off;
    uint32_t *m_llen, *m_rlen;
    int32_t *m_hash;
    uint32_t m_mask;
    int32_t byte_tok[256]; /* SPM byte fallback: id of <0xXX> (or of the 1-byte text), -1 if none */
    char bpe_enc[256][2];  /* BPE: UTF-8 of the codepoint GPT-2's bytes_to_unicode gives each byte */
    uint8_t bpe_enc_len[256];
    int32_t *special;      /* CONTROL / USER_DEFINED / UNKNOWN ids, longest text first */
    int32_t n_special;
    int32_t bos, eos, eot, eom, unk, pad;
};

/* ---------------------------------------------------------------- small helpers */

static void set_err(char *err, size_t err_len, const char *fmt, ...) {
    if (!err || !err_len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static uint64_t fnv_feed(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001B3ull;
    }
    return h;
}
#define FNV_SEED 0xCBF29CE484222325ull

static uint32_t table_mask_for(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    return (uint32_t)(cap - 1);
}

typedef struct { int32_t *v; size_t n, cap; int oom; } ivec;

static void ivec_push(ivec *a, int32_t x) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 64;
        int32_t *v = realloc(a->v, cap * sizeof *v);
        if (!v) { a->oom = 1; return; }
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 to U+0100.. in order. */
static uint32_t bpe_byte_to_cpt(int b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return (uint32_t)b;
    if (b <= 0x20) return 256u + (uint32_t)b;
    if (b >= 0x7F && b <= 0xA0) return 256u + 33u + (uint32_t)(b - 0x7F);
    return 256u + 33u + 34u; /* 0xAD */
}

static int bpe_cpt_to_byte(uint32_t c) {
    if ((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF)) return (int)c;
    if (c >= 256 && c <= 288) return (int)(c - 256);
    if (c >= 289 && c <= 322) return (int)(0x7F + c - 289);
    if (c == 323) return 0xAD;
    return -1;
}

/* ---------------------------------------------------------------- lookups */

int32_t bg_token_lookup(const bg_tokenizer *t, const char *s, size_t n) {
    uint32_t i = (uint32_t)fnv_feed(FNV_SEED, s, n) & t->tok_mask;
    for (;;) {
        int32_t id = t->tok_hash[i];
        if (id < 0) return -1;
        if (t->text_len[id] == n && memcmp(t->text + t->text_off[id], s, n) == 0) return id;
        i = (i + 1) & t->tok_mask;
    }
}

static uint64_t merge_hash(const char *l, size_t ln, const char *r, size_t rn) {
    /* 0xFF never occurs in UTF-8, so "ab"+"c" and "a"+"bc" hash apart */
    uint64_t h = fnv_feed(FNV_SEED, l, ln);
    h = fnv_feed(h, "\xff", 1);
    return fnv_feed(h, r, rn);
}

static int32_t merge_rank(const bg_tokenizer *t, const char *l, size_t ln, const char *r, size_t rn) {
    uint32_t i = (uint32_t)merge_hash(l, ln, r, rn) & t->m_mask;
    for (;;) {
        int32_t m = t->m_hash[i];
        if (m < 0) return -1;
        const char *mt = t->mtext + t->m_off[m];
        if (t->m_llen[m] == ln && t->m_rlen[m] == rn && memcmp(mt, l, ln) == 0 && memcmp(mt + ln, r, rn) == 0)
            return m;
        i = (i + 1) & t->m_mask;
    }
}

/* ---------------------------------------------------------------- construction */

void bg_tokenizer_desc_init(bg_tokenizer_desc *d, int kind, int32_t n_vocab) {
    memset(d, 0, sizeof *d);
    d->kind = kind;
    d->pre = BG_PRE_DEFAULT;
    d->n_vocab = n_vocab;
    d->eot = d->eom = d->pad = -1;
    if (kind == BG_TOK_SPM) {
        d->bos = 1;
        d->eos = 2;
        d->unk = 0;
        d->flags = BG_TOK_ADD_BOS | BG_TOK_ADD_SPACE_PREFIX;
    } else {
        d->bos = d->eos = 11; /* llama.cpp's gpt2 defaults */
        d->unk = -1;
    }
}

/* tokenizer.ggml.pre values that mean the Llama-3 split regex (llama.cpp's LLAMA_VOCAB_PRE_TYPE_LLAMA3) */
static const char *const k_pre_llama3[] = {
    "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
};

int bg_tokenizer_desc_from_names(bg_tokenizer_desc *d, const char *model, const char *pre, int32_t n_vocab,
                                 char *err, size_t err_len) {
    if (model && strcmp(model, "llama") == 0) {
        bg_tokenizer_desc_init(d, BG_TOK_SPM, n_vocab);
        return 0; /* SentencePiece has no pre-tokenizer; "default" is what converters write */
    }
    if (!model || strcmp(model, "gpt2") != 0) {
        set_err(err, err_len, "tokenizer.ggml.model is \"%s\"; supported: \"llama\" (SentencePiece), "
                "\"gpt2\" (byte-level BPE)", model ? model : "(missing)");
        return -1;
    }
    bg_tokenizer_desc_init(d, BG_TOK_BPE, n_vocab);
    if (!pre || strcmp(pre, "default") == 0) return 0;
    for (size_t k = 0; k < sizeof k_pre_llama3 / sizeof *k_pre_llama3; k++) {
        if (strcmp(pre, k_pre_llama3[k]) == 0) {
            d->pre = BG_PRE_LLAMA3;
            d->flags |= BG_TOK_ADD_BOS | BG_TOK_IGNORE_MERGES;
            return 0;
        }
    }
    set_err(err, err_len, "tokenizer.ggml.pre is \"%s\"; supported: \"default\" (or absent), \"llama-bpe\", "
            "\"llama3\", \"llama-v3\", \"falcon3\", \"falcon-h1\", \"pixtral\", \"midm-2.0\", \"lfm2\"", pre);
    return -1;
}

void bg_tokenizer_free(bg_tokenizer *t) {
    if (!t) return;
    free(t->text); free(t->text_off); free(t->text_len); free(t->score); free(t->type); free(t->eog);
    free(t->piece); free(t->piece_off); free(t->piece_len); free(t->tok_hash);
    free(t->mtext); free(t->m_off); free(t->m_llen); free(t->m_rlen); free(t->m_hash);
    free(t->special);
    free(t);
}

/* Texts that llama.cpp treats as end of turn / end of generation (and promotes to CONTROL). */
static const char *const k_eot_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "_<EOT>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "<end_of_utterance>", "<|end_of_text|>",
};
static const char *const k_eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>",
    "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
};

/* qsort has no context argument in C11, so specials are sorted as (length, id) keys */
typedef struct { uint32_t len; int32_t id; } special_key;
static int cmp_special_key(const void *a, const void *b) {
    const special_key *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

static int build_pieces(bg_tokenizer *t) {
    size_t total = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) total += t->text_len[i];
    t->piece = malloc(total + 1); /* decoded pieces are never longer than the text */
    t->piece_off = malloc((size_t)t->n_vocab * sizeof *t->piece_off);
    t->piece_len = malloc((size_t)t->n_vocab * sizeof *t->piece_len);
    if (!t->piece || !t->piece_off || !t->piece_len) return -1;
    size_t pos = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        const char *s = t->text + t->text_off[i];
        size_t n = t->text_len[i];
        int ty = t->type[i];
        char *o = t->piece + pos;
        size_t m = 0;
        if (ty == BG_TOKTYPE_USER_DEFINED) {
            memcpy(o, s, n);
            m = n;
        } else if (ty == BG_TOKTYPE_NORMAL && t->kind == BG_TOK_SPM) {
            for (size_t k = 0; k < n;) {  /* U+2581 -> space */
                if (k + 3 <= n && (uint8_t)s[k] == 0xE2 && (uint8_t)s[k + 1] == 0x96 && (uint8_t)s[k + 2] == 0x81) {
                    o[m++] = ' ';
                    k += 3;
                } else {
                    o[m++] = s[k++];
                }
            }
        } else if (ty == BG_TOKTYPE_BYTE && t->kind == BG_TOK_SPM) {
            if (n >= 5) { /* "<0xXX>" */
                char hex[3] = {s[3], s[4], 0};
                o[m++] = (char)strtol(hex, NULL, 16);
            }
        } else if (ty == BG_TOKTYPE_NORMAL) { /* BPE: undo bytes_to_unicode */
            for (size_t k = 0; k < n;) {
                size_t k0 = k;
                uint32_t c = bg_utf8_decode(s, n, &k);
                int b = bpe_cpt_to_byte(c);
                if (b >= 0) {
                    o[m++] = (char)b;
                } else { /* not a byte-level char: keep it as it is */
                    memcpy(o + m, s + k0, k - k0);
                    m += k - k0;
                }
            }
        }
        /* CONTROL / UNKNOWN (special = 0), UNUSED, UNDEFINED: nothing */
        t->piece_off[i] = pos;
        t->piece_len[i] = (uint32_t)m;
        pos += m;
    }
    return 0;
}

bg_tokenizer *bg_tokenizer_new(const bg_tokenizer_desc *d, char *err, size_t err_len) {
    if (d->kind != BG_TOK_SPM && d->kind != BG_TOK_BPE) {
        set_err(err, err_len, "tokenizer kind %d is not SPM (%d) or BPE (%d)", d->kind, BG_TOK_SPM, BG_TOK_BPE);
        return NULL;
    }
    if (d->n_vocab <= 0 || !d->tokens || !d->token_lens) {
        set_err(err, err_len, "tokenizer needs n_vocab > 0 token strings (got n_vocab %d)", (int)d->n_vocab);
        return NULL;
    }
    if (d->kind == BG_TOK_BPE && d->n_merges > 0 && (!d->merges || !d->merge_lens)) {
        set_err(err, err_len, "BPE tokenizer with %d merges needs the merge strings", (int)d->n_merges);
        return NULL;
    }
    bg_tokenizer *t = calloc(1, sizeof *t);
    if (!t) goto oom;
    t->kind = d->kind;
    t->pre = d->pre;
    t->flags = d->flags;
    t->n_vocab = d->n_vocab;
    size_t nv = (size_t)d->n_vocab;

    /* texts; empty ones become "[EMPTY_i]" as in llama.cpp, so that no token matches nothing */
    size_t total = 0;
    for (size_t i = 0; i < nv; i++) total += d->token_lens[i] ? d->token_lens[i] : 24;
    t->text = malloc(total + 1);
    t->text_off = malloc(nv * sizeof *t->text_off);
    t->text_len = malloc(nv * sizeof *t->text_len);
    t->score = malloc(nv * sizeof *t->score);
    t->type = malloc(nv);
    t->eog = calloc(nv, 1);
    if (!t->text || !t->text_off || !t->text_len || !t->score || !t->type || !t->eog) goto oom;
    size_t pos = 0;
    for (size_t i = 0; i < nv; i++) {
        size_t n = d->token_lens[i];
        if (n > UINT32_MAX / 2) {
            set_err(err, err_len, "token %zu is %zu bytes long", i, n);
            bg_tokenizer_free(t);
            return NULL;
        }
        t->text_off[i] = pos;
        if (n) {
            if (!d->tokens[i]) {
                set_err(err, err_len, "token %zu has length %zu but no text", i, n);
                bg_tokenizer_free(t);
                return NULL;
            }
            memcpy(t->text + pos, d->tokens[i], n);
        } else {
            n = (size_t)snprintf(t->text + pos, 24, "[EMPTY_%zu]", i);
        }
        t->text_len[i] = (uint32_t)n;
        pos += n;
        t->score[i] = d->scores ? d->scores[i] : 0.0f;
        int32_t ty = d->types ? d->types[i] : BG_TOKTYPE_NORMAL;
        t->type[i] = (uint8_t)(ty >= 0 && ty <= BG_TOKTYPE_BYTE ? ty : BG_TOKTYPE_UNDEFINED);
    }

    /* text -> id */
    t->tok_mask = table_mask_for(nv);
    t->tok_hash = malloc(((size_t)t->tok_mask + 1) * sizeof *t->tok_hash);
    if (!t->tok_hash) goto oom;
    memset(t->tok_hash, 0xFF, ((size_t)t->tok_mask + 1) * sizeof *t->tok_hash);
    for (size_t i = 0; i < nv; i++) {
        const char *s = t->text + t->text_off[i];
        uint32_t n = t->text_len[i];
        uint32_t h = (uint32_t)fnv_feed(FNV_SEED, s, n) & t->tok_mask;
        for (;;) {
            int32_t id = t->tok_hash[h];
            if (id < 0 || (t->text_len[id] == n && memcmp(t->text + t->text_off[id], s, n) == 0)) {
                t->tok_hash[h] = (int32_t)i; /* a later duplicate replaces the earlier one */
                break;
            }
            h = (h + 1) & t->tok_mask;
        }
    }

    /* merges: "left right", split at the first space after the first byte (llama.cpp's find(' ', 1)) */
    if (d->kind == BG_TOK_BPE) {
        size_t nm = d->n_merges > 0 ? (size_t)d->n_merges : 0;
        size_t mtotal = 0;
        for (size_t i = 0; i < nm; i++) mtotal += d->merge_lens[i];
        t->mtext = malloc(mtotal + 1);
        t->m_off = malloc((nm + 1) * sizeof *t->m_off);
        t->m_llen = malloc((nm + 1) * sizeof *t->m_llen);
        t->m_rlen = malloc((nm + 1) * sizeof *t->m_rlen);
        t->m_mask = table_mask_for(nm);
        t->m_hash = malloc(((size_t)t->m_mask + 1) * sizeof *t->m_hash);
        if (!t->mtext || !t->m_off || !t->m_llen || !t->m_rlen || !t->m_hash) goto oom;
        memset(t->m_hash, 0xFF, ((size_t)t->m_mask + 1) * sizeof *t->m_hash);
        size_t mp = 0;
        for (size_t i = 0; i < nm; i++) {
            const char *s = d->merges[i];
            size_t n = d->merge_lens[i];
            const char *sp = (n > 1 && s) ? memchr(s + 1, ' ', n - 1) : NULL;
            t->m_off[i] = mp;
            if (!sp) { /* malformed: llama.cpp keeps an ("", "") pair, which never matches a symbol */
                t->m_llen[i] = t->m_rlen[i] = 0;
                continue;
            }
            size_t ln = (size_t)(sp - s), rn = n - ln - 1;
            memcpy(t->mtext + mp, s, ln);
            memcpy(t->mtext + mp + ln, sp + 1, rn);
            t->m_llen[i] = (uint32_t)ln;
            t->m_rlen[i] = (uint32_t)rn;
            mp += ln + rn;
            uint32_t h = (uint32_t)merge_hash(s, ln, sp + 1, rn) & t->m_mask;
            for (;;) {
                int32_t m = t->m_hash[h];
                if (m < 0) { t->m_hash[h] = (int32_t)i; break; }
                const char *mt = t->mtext + t->m_off[m];
                if (t->m_llen[m] == ln && t->m_rlen[m] == rn && memcmp(mt, s, ln) == 0 &&
                    memcmp(mt + ln, sp + 1, rn) == 0)
                    break; /* the first occurrence keeps its rank */
                h = (h + 1) & t->m_mask;
            }
        }
        t->n_merges = (int32_t)nm;
        for (int b = 0; b < 256; b++) t->bpe_enc_len[b] = (uint8_t)bg_utf8_encode(bpe_byte_to_cpt(b), t->bpe_enc[b]);
    }

    /* special ids: out-of-range ones count as absent */
    int32_t ids[6] = {d->bos, d->eos, d->eot, d->eom, d->unk, d->pad};
    for (int k = 0; k < 6; k++)
        if (ids[k] < -1 || ids[k] >= d->n_vocab) ids[k] = -1;
    t->bos = ids[0]; t->eos = ids[1]; t->eot = ids[2]; t->eom = ids[3]; t->unk = ids[4]; t->pad = ids[5];
    for (size_t k = 0; k < sizeof k_eot_texts / sizeof *k_eot_texts && t->eot < 0; k++)
        t->eot = bg_token_lookup(t, k_eot_texts[k], strlen(k_eot_texts[k]));
    if (t->eom < 0) t->eom = bg_token_lookup(t, "<|eom_id|>", 10);
    for (size_t k = 0; k < sizeof k_eog_texts / sizeof *k_eog_texts; k++) {
        int32_t id = bg_token_lookup(t, k_eog_texts[k], strlen(k_eog_texts[k]));
        if (id >= 0) t->eog[id] = 1;
    }
    int32_t stops[3] = {t->eos, t->eot, t->eom};
    for (int k = 0; k < 3; k++) if (stops[k] >= 0) t->eog[stops[k]] = 1;
    /* llama.cpp promotes end-of-turn / end-of-generation texts to CONTROL (not parsed as text, not printed) */
    for (size_t k = 0; k < sizeof k_eot_texts / sizeof *k_eot_texts; k++) {
        int32_t id = bg_token_lookup(t, k_eot_texts[k], strlen(k_eot_texts[k]));
        if (id >= 0 && id == t->eot) t->type[id] = BG_TOKTYPE_CONTROL;
    }
    for (size_t k = 0; k < sizeof k_eog_texts / sizeof *k_eog_texts; k++) {
        int32_t id = bg_token_lookup(t, k_eog_texts[k], strlen(k_eog_texts[k]));
        if (id >= 0) t->type[id] = BG_TOKTYPE_CONTROL;
    }

    /* SPM byte fallback */
    for (int b = 0; b < 256; b++) {
        char buf[8];
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        int32_t id = bg_token_lookup(t, buf, 6);
        if (id < 0) { buf[0] = (char)b; id = bg_token_lookup(t, buf, 1); }
        t->byte_tok[b] = id;
    }

    /* specials, longest first (llama.cpp matches them in that order) */
    size_t ns = 0;
    for (size_t i = 0; i < nv; i++) {
        int ty = t->type[i];
        if (ty == BG_TOKTYPE_CONTROL || ty == BG_TOKTYPE_USER_DEFINED || ty == BG_TOKTYPE_UNKNOWN) ns++;
    }
    t->special = malloc((ns + 1) * sizeof *t->special);
    special_key *keys = malloc((ns + 1) * sizeof *keys);
    if (!t->special || !keys) { free(keys); goto oom; }
    ns = 0;
    for (size_t i = 0; i < nv; i++) {
        int ty = t->type[i];
        if (ty == BG_TOKTYPE_CONTROL || ty == BG_TOKTYPE_USER_DEFINED || ty == BG_TOKTYPE_UNKNOWN) {
            keys[ns].len = t->text_len[i];
            keys[ns].id = (int32_t)i;
            ns++;
        }
    }
    qsort(keys, ns, sizeof *keys, cmp_special_key);
    for (size_t i = 0; i < ns; i++) t->special[i] = keys[i].id;
    t->n_special = (int32_t)ns;
    free(keys);

    if (build_pieces(t) != 0) goto oom;
    return t;
oom:
    set_err(err, err_len, "out of memory building a tokenizer of %d tokens", (int)d->n_vocab);
    bg_tokenizer_free(t);
    return NULL;
}

/* ---------------------------------------------------------------- the merge queue (a binary heap) */

/* A candidate merge of two adjacent symbols. prio: SPM score, or -rank for BPE (higher first); ties go to
 * the leftmost pair, as both llama.cpp comparators say. size: the pair's byte length when queued; a pair
 * whose symbols changed since then is stale (both only ever grow or vanish, so the sum tells). */
typedef struct { double prio; int32_t left, right; size_t size; } bigram;
typedef struct { bigram *v; size_t n, cap; int oom; } bheap;

static int bigram_before(const bigram *a, const bigram *b) {
    return a->prio > b->prio || (a->prio == b->prio && a->left < b->left);
}

static void heap_push(bheap *h, bigram x) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        bigram *v = realloc(h->v, cap * sizeof *v);
        if (!v) { h->oom = 1; return; }
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bigram_before(&x, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = x;
}

static bigram heap_pop(bheap *h) {
    bigram top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && bigram_before(&h->v[c + 1], &h->v[c])) c++;
        if (!bigram_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

typedef struct { size_t off, n; int32_t prev, next; } symbol;

typedef struct {  /* per-call scratch, reused across words */
    symbol *sym;
    size_t sym_cap;
    bheap heap;
    char *buf;
    size_t buf_cap;
    uint32_t *cpt;
    uint8_t *info;
    size_t cpt_cap;
    ivec pieces, pieces2;
    int oom;
} scratch;

static int scratch_symbols(scratch *s, size_t n) {
    if (n > s->sym_cap) {
        symbol *v = realloc(s->sym, n * sizeof *v);
        if (!v) { s->oom = 1; return -1; }
        s->sym = v;
        s->sym_cap = n;
    }
    return 0;
}

static char *scratch_buf(scratch *s, size_t n) {
    if (n > s->buf_cap) {
        char *v = realloc(s->buf, n);
        if (!v) { s->oom = 1; return NULL; }
        s->buf = v;
        s->buf_cap = n;
    }
    return s->buf;
}

/* Split text into UTF-8 symbols (the lead byte decides the length, clamped at the end). */
static size_t make_symbols(scratch *s, const char *text, size_t n) {
    if (scratch_symbols(s, n) != 0) return 0;
    size_t count = 0;
    for (size_t off = 0; off < n;) {
        size_t len = bg_utf8_len((uint8_t)text[off]);
        if (len > n - off) len = n - off;
        s->sym[count].off = off;
        s->sym[count].n = len;
        s->sym[count].prev = (int32_t)count - 1;
        off += len;
        s->sym[count].next = off == n ? -1 : (int32_t)count + 1;
        count++;
    }
    return count;
}

/* ---------------------------------------------------------------- SentencePiece */

/* The merge loop both models share: queue every adjacent pair (try_add scores it, or skips it), then merge the
 * best pair first; a queued pair whose sides have changed since is stale and skipped. */
typedef void (*try_add_fn)(const bg_tokenizer *t, scratch *s, const char *text, int32_t l, int32_t r);

static void merge_symbols(const bg_tokenizer *t, scratch *s, const char *text, size_t nsym, try_add_fn try_add) {
    symbol *sym = s->sym;
    s->heap.n = 0;
    for (size_t i = 1; i < nsym; i++) try_add(t, s, text, (int32_t)i - 1, (int32_t)i);
    while (s->heap.n) {
        bigram b = heap_pop(&s->heap);
        symbol *L = &sym[b.left], *R = &sym[b.right];
        if (L->n == 0 || R->n == 0 || L->n + R->n != b.size) continue;
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) sym[R->next].prev = b.left;
        try_add(t, s, text, L->prev, b.left);
        try_add(t, s, text, b.left, L->next);
    }
}

static void spm_try_add(const bg_tokenizer *t, scratch *s, const char *text, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    size_t size = s->sym[l].n + s->sym[r].n;
    int32_t id = bg_token_lookup(t, text + s->sym[l].off, size);
    if (id < 0) return;
    bigram b = {t->score[id], l, r, size};
    heap_push(&s->heap, b);
}

static void spm_fragment(const bg_tokenizer *t, scratch *s, const char *frag, size_t n, int space_prefix,
                         ivec *out) {
    /* the text with a leading space if asked, spaces as U+2581 */
    size_t spaces = space_prefix ? 1 : 0;
    for (size_t i = 0; i < n; i++) spaces += frag[i] == ' ';
    size_t tn = n + (space_prefix ? 1 : 0) + 2 * spaces;
    char *text = scratch_buf(s, tn + 1);
    if (!text) return;
    size_t m = 0;
    if (space_prefix) { memcpy(text, "\xe2\x96\x81", 3); m = 3; }
    for (size_t i = 0; i < n; i++) {
        if (frag[i] == ' ') { memcpy(text + m, "\xe2\x96\x81", 3); m += 3; }
        else text[m++] = frag[i];
    }
    size_t nsym = make_symbols(s, text, m);
    if (nsym == 0) return;
    symbol *sym = s->sym;
    merge_symbols(t, s, text, nsym, spm_try_add);
    for (int32_t i = 0; i != -1; i = sym[i].next) {
        int32_t id = bg_token_lookup(t, text + sym[i].off, sym[i].n);
        if (id >= 0) { ivec_push(out, id); continue; }
        for (size_t k = 0; k < sym[i].n; k++) { /* byte fallback */
            int32_t bid = t->byte_tok[(uint8_t)text[sym[i].off + k]];
            if (bid < 0) bid = t->unk;
            if (bid >= 0) ivec_push(out, bid);
        }
    }
}

/* ---------------------------------------------------------------- BPE pre-tokenizers */

/* Per-codepoint info: class (bits 0-2), White_Space (bit 3), in range (bit 4). Out of range is 0. */
#define INFO_WS 8
#define INFO_VALID 16
static uint8_t cpt_info(uint32_t c) {
    return (uint8_t)(bg_unicode_cat(c) | (bg_unicode_is_space(c) ? INFO_WS : 0) | INFO_VALID);
}
static int is_letter(uint8_t f) { return (f & 7) == BG_UCAT_LETTER && (f & INFO_VALID); }
static int is_number(uint8_t f) { return (f & 7) == BG_UCAT_NUMBER && (f & INFO_VALID); }
static int is_ws(uint8_t f) { return (f & INFO_WS) != 0; }

typedef struct {
    const uint32_t *c;
    const uint8_t *f;
    size_t ini, end;
} span;

#define OUT_OF_RANGE 0xFFFFFFFFu
static uint32_t sp_cpt(const span *s, size_t p) { return p >= s->ini && p < s->end ? s->c[p] : OUT_OF_RANGE; }
static uint8_t sp_flags(const span *s, size_t p) { return p >= s->ini && p < s->end ? s->f[p] : 0; }

static uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+  (lowercase contractions).
 * LLAMA3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|
 *         \s+(?!\S)|\s+
 * Written out by hand, step for step as llama.cpp's own hand-written matchers, whose quirks the vectors hold. */
static void split_words(const span *s, int llama3, ivec *out) {
    size_t prev_end = s->ini;
#define ADD_TOKEN(e) do { size_t e_ = (e); if (e_ > prev_end) ivec_push(out, (int32_t)(e_ - prev_end)); \
                          prev_end = e_; } while (0)
    for (size_t pos = s->ini; pos < s->end;) {
        uint32_t cpt = sp_cpt(s, pos);
        uint8_t flags = sp_flags(s, pos);
        if (cpt == '\'' && pos + 1 < s->end) {
            uint32_t n1 = sp_cpt(s, pos + 1);
            if (llama3) n1 = ascii_lower(n1);
            if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') {
                ADD_TOKEN(pos + 2);
                pos += 2;
                continue;
            }
            if (pos + 2 < s->end) {
                uint32_t n2 = sp_cpt(s, pos + 2);
                if (llama3) n2 = ascii_lower(n2);
                if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) {
                    ADD_TOKEN(pos + 3);
                    pos += 3;
                    continue;
                }
            }
        }
        if (llama3) {
            /* [^\r\n\p{L}\p{N}]?\p{L}+ */
            if (!(cpt == '\r' || cpt == '\n' || is_number(flags))) {
                if (is_letter(flags) || is_letter(sp_flags(s, pos + 1))) {
                    pos++;
                    while (is_letter(sp_flags(s, pos))) pos++;
                    ADD_TOKEN(pos);
                    continue;
                }
            }
            /* \p{N}{1,3} */
            if (is_number(flags)) {
                size_t ini = pos;
                while (is_number(sp_flags(s, pos))) {
                    if (++pos - ini >= 3) {
                        ADD_TOKEN(pos);
                        ini = pos;
                    }
                }
                ADD_TOKEN(pos);
                continue;
            }
            /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
            uint8_t f2 = cpt == ' ' ? sp_flags(s, pos + 1) : flags;
            if (!(is_ws(f2) || is_letter(f2) || is_number(f2)) && (flags & INFO_VALID)) {
                pos += cpt == ' ';
                while (!(is_ws(f2) || is_letter(f2) || is_number(f2)) && (f2 & INFO_VALID)) f2 = sp_flags(s, ++pos);
                uint32_t c2 = sp_cpt(s, pos);
                while (c2 == '\r' || c2 == '\n') c2 = sp_cpt(s, ++pos);
                ADD_TOKEN(pos);
                continue;
            }
            /* \s*[\r\n]+ */
            size_t nws = 0, last_rn = 0;
            while (is_ws(sp_flags(s, pos + nws))) {
                uint32_t c2 = sp_cpt(s, pos + nws);
                if (c2 == '\r' || c2 == '\n') last_rn = pos + nws + 1;
                nws++;
            }
            if (last_rn > 0) {
                pos = last_rn;
                ADD_TOKEN(pos);
                continue;
            }
            if (nws > 1 && sp_cpt(s, pos + nws) != OUT_OF_RANGE) { /* \s+(?!\S) */
                pos += nws - 1;
                ADD_TOKEN(pos);
                continue;
            }
            if (nws > 0) {
                pos += nws;
                ADD_TOKEN(pos);
                continue;
            }
        } else {
            uint8_t f2 = cpt == ' ' ? sp_flags(s, pos + 1) : flags;
            if (is_letter(f2)) { /* ' ?\p{L}+' */
                pos += cpt == ' ';
                while (is_letter(f2)) f2 = sp_flags(s, ++pos);
                ADD_TOKEN(pos);
                continue;
            }
            if (is_number(f2)) { /* ' ?\p{N}+' */
                pos += cpt == ' ';
                while (is_number(f2)) f2 = sp_flags(s, ++pos);
                ADD_TOKEN(pos);
                continue;
            }
            if (!(is_ws(f2) || is_letter(f2) || is_number(f2)) && (f2 & INFO_VALID)) { /* ' ?[^\s\p{L}\p{N}]+' */
                pos += cpt == ' ';
                while (!(is_ws(f2) || is_letter(f2) || is_number(f2)) && (f2 & INFO_VALID)) f2 = sp_flags(s, ++pos);
                ADD_TOKEN(pos);
                continue;
            }
            size_t nws = 0;
            while (is_ws(sp_flags(s, pos + nws))) nws++;
            if (nws > 1 && sp_cpt(s, pos + nws) != OUT_OF_RANGE) { /* \s+(?!\S) */
                pos += nws - 1;
                ADD_TOKEN(pos);
                continue;
            }
            if (nws > 0) {
                pos += nws;
                ADD_TOKEN(pos);
                continue;
            }
        }
        ADD_TOKEN(++pos); /* no match: the codepoint alone */
    }
#undef ADD_TOKEN
}

/* The default pre-tokenizer's other expressions, which llama.cpp runs through std::regex on a text where each
 * non-ASCII codepoint stands as its class: [\p{P}\$\+<=>\^~\|]+ and \p{N}+ (maximal runs, matches and gaps
 * both become pieces), and [0-9][0-9][0-9] (leftmost, non-overlapping). */
static int run_punct(uint32_t c, uint8_t f) {
    if (c < 128) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x5F) ||
                        (c >= 0x7B && c <= 0x7E); /* every ASCII punctuation or symbol but the backtick */
    return !is_ws(f) && (f & 7) == BG_UCAT_PUNCT;
}
static int run_number(uint32_t c, uint8_t f) {
    if (c < 128) return c >= '0' && c <= '9';
    return !is_ws(f) && (f & 7) == BG_UCAT_NUMBER;
}
static int ascii_digit(uint32_t c, uint8_t f) { (void)f; return c >= '0' && c <= '9'; }

static void split_runs(const uint32_t *c, const uint8_t *f, const ivec *in, ivec *out,
                       int (*pred)(uint32_t, uint8_t)) {
    size_t start = 0;
    for (size_t p = 0; p < in->n; p++) {
        size_t end = start + (size_t)in->v[p], gap = start, i = start;
        while (i < end) {
            if (!pred(c[i], f[i])) { i++; continue; }
            size_t j = i;
            while (j < end && pred(c[j], f[j])) j++;
            if (i > gap) ivec_push(out, (int32_t)(i - gap));
            ivec_push(out, (int32_t)(j - i));
            gap = i = j;
        }
        if (end > gap) ivec_push(out, (int32_t)(end - gap));
        start = end;
    }
}

static void split_triples(const uint32_t *c, const uint8_t *f, const ivec *in, ivec *out) {
    size_t start = 0;
    for (size_t p = 0; p < in->n; p++) {
        size_t end = start + (size_t)in->v[p], gap = start, i = start;
        while (i + 3 <= end) {
            if (ascii_digit(c[i], f[i]) && ascii_digit(c[i + 1], f[i + 1]) && ascii_digit(c[i + 2], f[i + 2])) {
                if (i > gap) ivec_push(out, (int32_t)(i - gap));
                ivec_push(out, 3);
                gap = i = i + 3;
            } else {
                i++;
            }
        }
        if (end > gap) ivec_push(out, (int32_t)(end - gap));
        start = end;
    }
}

static void split_words_all(const uint32_t *c, const uint8_t *f, const ivec *in, ivec *out, int llama3) {
    size_t start = 0;
    for (size_t p = 0; p < in->n; p++) {
        span s = {c, f, start, start + (size_t)in->v[p]};
        split_words(&s, llama3, out);
        start = s.end;
    }
}

/* ---------------------------------------------------------------- BPE */

static void bpe_try_add(const bg_tokenizer *t, scratch *s, const char *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const symbol *L = &s->sym[l], *R = &s->sym[r];
    int32_t rank = merge_rank(t, w + L->off, L->n, w + R->off, R->n);
    if (rank < 0) return;
    bigram b = {-(double)rank, l, r, L->n + R->n};
    heap_push(&s->heap, b);
}

static void bpe_word(const bg_tokenizer *t, scratch *s, const char *w, size_t n, ivec *out) {
    if (n == 0) return;
    if (t->flags & BG_TOK_IGNORE_MERGES) {
        int32_t id = bg_token_lookup(t, w, n);
        if (id >= 0) { ivec_push(out, id); return; }
    }
    size_t nsym = make_symbols(s, w, n);
    if (nsym == 0) return;
    symbol *sym = s->sym;
    merge_symbols(t, s, w, nsym, bpe_try_add);
    for (int32_t i = 0; i != -1; i = sym[i].next) {
        int32_t id = bg_token_lookup(t, w + sym[i].off, sym[i].n);
        if (id >= 0) { ivec_push(out, id); continue; }
        for (size_t k = 0; k < sym[i].n; k++) { /* llama.cpp's fallback: each byte as a 1-byte token, if any */
            int32_t bid = bg_token_lookup(t, w + sym[i].off + k, 1);
            if (bid >= 0) ivec_push(out, bid);
        }
    }
}

static void bpe_fragment(const bg_tokenizer *t, scratch *s, const char *text, size_t n, ivec *out) {
    if (n > s->cpt_cap) {
        uint32_t *c = realloc(s->cpt, n * sizeof *c);
        if (!c) { s->oom = 1; return; }
        s->cpt = c;
        uint8_t *f = realloc(s->info, n);
        if (!f) { s->oom = 1; return; }
        s->info = f;
        s->cpt_cap = n;
    }
    size_t nc = 0;
    for (size_t p = 0; p < n;) s->cpt[nc++] = bg_utf8_decode(text, n, &p);
    for (size_t i = 0; i < nc; i++) s->info[i] = cpt_info(s->cpt[i]);

    ivec *a = &s->pieces, *b = &s->pieces2, *tmp;
    a->n = b->n = 0;
    ivec_push(a, (int32_t)nc);
    if (t->pre == BG_PRE_LLAMA3) {
        split_words_all(s->cpt, s->info, a, b, 1);
        tmp = a; a = b; b = tmp;
    } else {
        split_runs(s->cpt, s->info, a, b, run_punct);
        a->n = 0;
        split_words_all(s->cpt, s->info, b, a, 0);
        b->n = 0;
        split_runs(s->cpt, s->info, a, b, run_number);
        a->n = 0;
        split_triples(s->cpt, s->info, b, a);
    }
    if (a->oom || b->oom) { s->oom = 1; return; }

    /* each word: its UTF-8 bytes through bytes_to_unicode, then merges */
    size_t start = 0;
    for (size_t p = 0; p < a->n; p++) {
        size_t end = start + (size_t)a->v[p];
        char *w = scratch_buf(s, 8 * (end - start) + 1);
        if (!w) return;
        size_t m = 0;
        for (size_t i = start; i < end; i++) {
            char u[4];
            int k = bg_utf8_encode(s->cpt[i], u);
            for (int j = 0; j < k; j++) {
                uint8_t byte = (uint8_t)u[j];
                memcpy(w + m, t->bpe_enc[byte], t->bpe_enc_len[byte]);
                m += t->bpe_enc_len[byte];
            }
        }
        bpe_word(t, s, w, m, out);
        start = end;
    }
}

/* ---------------------------------------------------------------- special-token partition and tokenize */

typedef struct { int32_t id; size_t off, len; } fragment; /* id -1: raw text [off, off+len) */
typedef struct { fragment *v; size_t n, cap; int oom; } fvec;

static void fvec_push(fvec *a, fragment x) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 16;
        fragment *v = realloc(a->v, cap * sizeof *v);
        if (!v) { a->oom = 1; return; }
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
}

static const char *find_bytes(const char *hay, size_t hn, const char *needle, size_t nn) {
    if (nn == 0 || nn > hn) return NULL;
    const char *end = hay + hn - nn + 1;
    for (const char *p = hay; p < end;) {
        p = memchr(p, needle[0], (size_t)(end - p));
        if (!p) return NULL;
        if (memcmp(p, needle, nn) == 0) return p;
        p++;
    }
    return NULL;
}

/* Cut the special tokens' texts out of the text, each token in turn over every remaining raw fragment
 * (longest tokens first), as llama.cpp's tokenizer_st_partition does. */
static int partition(const bg_tokenizer *t, const char *text, size_t len, int parse_special, fvec *out) {
    fvec a = {0}, b = {0};
    fragment whole = {-1, 0, len};
    fvec_push(&a, whole);
    for (int32_t k = 0; k < t->n_special && !a.oom && !b.oom; k++) {
        int32_t id = t->special[k];
        int ty = t->type[id];
        if (!parse_special && (ty == BG_TOKTYPE_CONTROL || ty == BG_TOKTYPE_UNKNOWN)) continue;
        const char *st = t->text + t->text_off[id];
        size_t sn = t->text_len[id];
        int hit = 0;
        for (size_t i = 0; i < a.n && !hit; i++)
            hit = a.v[i].id < 0 && find_bytes(text + a.v[i].off, a.v[i].len, st, sn) != NULL;
        if (!hit) continue;
        b.n = 0;
        for (size_t i = 0; i < a.n; i++) {
            fragment f = a.v[i];
            if (f.id >= 0) { fvec_push(&b, f); continue; }
            size_t p = f.off, end = f.off + f.len;
            const char *m;
            while ((m = find_bytes(text + p, end - p, st, sn)) != NULL) {
                size_t at = (size_t)(m - text);
                if (at > p) { fragment g = {-1, p, at - p}; fvec_push(&b, g); }
                fragment s = {id, at, sn};
                fvec_push(&b, s);
                p = at + sn;
            }
            if (p < end) { fragment g = {-1, p, end - p}; fvec_push(&b, g); }
        }
        fvec tmp = a; a = b; b = tmp;
    }
    free(b.v);
    *out = a;
    return a.oom || b.oom ? -1 : 0;
}

int32_t bg_tokenize(const bg_tokenizer *t, const char *text, size_t len, int add_special, int parse_special,
                    int32_t *out, int32_t max_out) {
    ivec res = {0};
    scratch s;
    memset(&s, 0, sizeof s);
    fvec frags = {0};
    int oom = 0;
    if (len > 0 && partition(t, text, len, parse_special, &frags) != 0) oom = 1;
    if (add_special && (t->flags & BG_TOK_ADD_BOS) && t->bos >= 0) ivec_push(&res, t->bos);
    int prev_special = 1; /* SPM: a space is put before text that starts the input or follows a special token */
    for (size_t i = 0; i < frags.n && !oom; i++) {
        fragment f = frags.v[i];
        if (f.id >= 0) {
            ivec_push(&res, f.id);
            prev_special = 1;
        } else if (t->kind == BG_TOK_SPM) {
            spm_fragment(t, &s, text + f.off, f.len, prev_special && (t->flags & BG_TOK_ADD_SPACE_PREFIX), &res);
            prev_special = 0;
        } else {
            bpe_fragment(t, &s, text + f.off, f.len, &res);
        }
        oom = s.oom || s.heap.oom;
    }
    if (add_special && (t->flags & BG_TOK_ADD_EOS) && t->eos >= 0) ivec_push(&res, t->eos);
    oom = oom || res.oom || s.oom || s.heap.oom || s.pieces.oom || s.pieces2.oom || res.n > INT32_MAX;
    free(frags.v);
    free(s.sym); free(s.heap.v); free(s.buf); free(s.cpt); free(s.info); free(s.pieces.v); free(s.pieces2.v);
    if (oom) { free(res.v); return INT32_MIN; }
    int32_t n = (int32_t)res.n;
    if (n > max_out) {
        if (out && max_out > 0) memcpy(out, res.v, (size_t)max_out * sizeof *out);
        free(res.v);
        return -n;
    }
    if (n) memcpy(out, res.v, (size_t)n * sizeof *out);
    free(res.v);
    return n;
}

/* ---------------------------------------------------------------- pieces */

static const char *piece_of(const bg_tokenizer *t, int32_t id, int special, size_t *n) {
    int ty = t->type[id];
    if (special && (ty == BG_TOKTYPE_CONTROL || ty == BG_TOKTYPE_UNKNOWN)) {
        *n = t->text_len[id];
        return t->text + t->text_off[id];
    }
    *n = t->piece_len[id];
    return t->piece + t->piece_off[id];
}

int32_t bg_token_to_piece(const bg_tokenizer *t, int32_t id, char *buf, int32_t len, int special) {
    if (id < 0 || id >= t->n_vocab) return 0;
    size_t n;
    const char *p = piece_of(t, id, special, &n);
    if ((size_t)len < n || len < 0) return -(int32_t)n;
    memcpy(buf, p, n);
    return (int32_t)n;
}

int32_t bg_detokenize(const bg_tokenizer *t, const int32_t *ids, int32_t n, char *buf, int32_t len, int special,
                      int strip_space) {
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab) continue;
        size_t pn;
        const char *p = piece_of(t, ids[i], special, &pn);
        if (pn == 0) continue;
        if (strip_space) {
            strip_space = 0;
            if (p[0] == ' ') { p++; pn--; }
        }
        if (pn && total + pn <= (size_t)(len > 0 ? len : 0)) memcpy(buf + total, p, pn);
        total += pn;
        if (total > INT32_MAX) return INT32_MIN;
    }
    return total > (size_t)(len > 0 ? len : 0) ? -(int32_t)total : (int32_t)total;
}

/* ---------------------------------------------------------------- facts */

int32_t bg_tokenizer_n_vocab(const bg_tokenizer *t) { return t->n_vocab; }
int bg_tokenizer_kind(const bg_tokenizer *t) { return t->kind; }
int bg_tokenizer_flags(const bg_tokenizer *t) { return t->flags; }
int32_t bg_tokenizer_bos(const bg_tokenizer *t) { return t->bos; }
int32_t bg_tokenizer_eos(const bg_tokenizer *t) { return t->eos; }
int32_t bg_tokenizer_eot(const bg_tokenizer *t) { return t->eot; }
int bg_token_type(const bg_tokenizer *t, int32_t id) { return id >= 0 && id < t->n_vocab ? t->type[id] : -1; }
int bg_token_is_eog(const bg_tokenizer *t, int32_t id) { return id >= 0 && id < t->n_vocab && t->eog[id]; }
float bg_token_score(const bg_tokenizer *t, int32_t id) { return id >= 0 && id < t->n_vocab ? t->score[id] : 0.0f; }

const char *bg_token_text(const bg_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->text_len[id];
    return t->text + t->text_off[id];
}
