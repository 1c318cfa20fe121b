/* The public C API (bitgguf/include/bitgguf.h) over the GGUF reader (gguf_c.c), the engine, the tokenizer and
 * the sampler. No Python here: this file and the other C files in _kernels make libbitgguf.
 *
 * A model maps the file and holds what every context shares read-only: the config, the weight pointers (into the
 * map, or repacked copies), the tokenizer. A context holds one bg_model (its own KV cache and scratch, and its own
 * copy of the layer table, which bg_model_init writes kernel choices into) and the last logits.
 *
 * The hyper-parameters are read with the keys and defaults of bitgguf/config.py, the vocabulary with those of
 * bitgguf/tokenizer.py; keep them in step.
 */
#if !defined(_WIN32) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE  /* sched_getaffinity */
#endif
#define BITGGUF_BUILD
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__linux__)
#include <sched.h>
#endif
#if !defined(_WIN32)
#include <unistd.h>
#endif

#include "../include/bitgguf.h"
#include "engine.h"
#include "gguf_c.h"
#include "repack.h"
#include "sampling.h"
#include "tokenizer.h"

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert((int)BITGGUF_ERR_FORMAT == (int)BG_GGUF_EFORMAT && (int)BITGGUF_ERR_IO == (int)BG_GGUF_EIO &&
               (int)BITGGUF_ERR_UNSUPPORTED == (int)BG_GGUF_EUNSUPPORTED &&
               (int)BITGGUF_ERR_NOMEM == (int)BG_GGUF_ENOMEM,
               "gguf_c.h status codes are bitgguf.h's");
#endif

#define STR_(x) #x
#define STR(x) STR_(x)

struct bitgguf_model {
    bg_gguf *g;
    const char *arch;
    bg_config c;
    int n_ctx_train;
    bg_tensor tok_embd;         /* also the head: the BitNet graphs tie them (spec 6.5) */
    const float *output_norm;
    bg_layer *layers;           /* template for contexts: data, type, rows, cols filled */
    void **owned;               /* dequantized norms and repacked weights */
    size_t n_owned, cap_owned;
    bg_tokenizer *tok;          /* NULL when the file has no vocabulary */
    int add_space_prefix;
    int32_t eos_id, eot_id;     /* metadata ids, for end of generation when there is no vocabulary */
};

struct bitgguf_context {
    const bitgguf_model *model;
    bg_model m;
    float *logits;
    int has_logits;
    char error[256];
};

struct bitgguf_sampler {
    bg_sampler s;
};

/* ---- small things --------------------------------------------------------------------------------------------- */

int bitgguf_version(void) { return BITGGUF_VERSION; }

const char *bitgguf_version_string(void) {
    return STR(BITGGUF_VERSION_MAJOR) "." STR(BITGGUF_VERSION_MINOR) "." STR(BITGGUF_VERSION_PATCH);
}

const char *bitgguf_status_string(int status) {
    switch (status) {
    case BITGGUF_OK: return "ok";
    case BITGGUF_ERR_IO: return "I/O error";
    case BITGGUF_ERR_FORMAT: return "format error";
    case BITGGUF_ERR_UNSUPPORTED: return "unsupported";
    case BITGGUF_ERR_NOMEM: return "out of memory";
    case BITGGUF_ERR_ARGUMENT: return "bad argument";
    case BITGGUF_ERR_CONTEXT_FULL: return "context full";
    case BITGGUF_ERR_NOT_FOUND: return "not found";
    case BITGGUF_ERR_TYPE: return "wrong type";
    default: return "unknown status";
    }
}

static void set_err(char *err, size_t err_len, const char *fmt, ...) {
    if (!err || !err_len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static void *own(bitgguf_model *m, size_t bytes) {
    if (m->n_owned == m->cap_owned) {
        size_t cap = m->cap_owned ? 2 * m->cap_owned : 16;
        void **p = realloc(m->owned, cap * sizeof *p);
        if (!p) return NULL;
        m->owned = p;
        m->cap_owned = cap;
    }
    void *buf = malloc(bytes ? bytes : 1);
    if (buf) m->owned[m->n_owned++] = buf;
    return buf;
}

/* ---- hyper-parameters (bitgguf/config.py) ---------------------------------------------------------------------- */

typedef struct {
    const bg_gguf *g;
    char *err;
    size_t err_len;
} loader;

/* {arch}.name as an int: present (any integer type), else def; def < 0 means required. */
static int key_int(loader *L, const char *arch, const char *name, int64_t def, int64_t *out) {
    char full[160];
    snprintf(full, sizeof full, "%s.%s", arch, name);
    const bg_gguf_kv *kv = bg_gguf_find_kv(L->g, full);
    if (!kv) {
        if (def < 0) {
            set_err(L->err, L->err_len, "%s: missing metadata key '%s'", L->g->path, full);
            return BITGGUF_ERR_FORMAT;
        }
        *out = def;
        return 0;
    }
    if (kv->type == BG_GGUF_BOOL || bg_gguf_kv_int(kv, out)) {
        set_err(L->err, L->err_len, "%s: metadata '%s' has GGUF value type %u, expected an integer", L->g->path,
                full, kv->type);
        return BITGGUF_ERR_FORMAT;
    }
    return 0;
}

static int key_float(loader *L, const char *arch, const char *name, double def, double *out) {
    char full[160];
    snprintf(full, sizeof full, "%s.%s", arch, name);
    const bg_gguf_kv *kv = bg_gguf_find_kv(L->g, full);
    if (!kv) {
        *out = def;
        return 0;
    }
    if (kv->type == BG_GGUF_BOOL || bg_gguf_kv_float(kv, out)) {
        set_err(L->err, L->err_len, "%s: metadata '%s' has GGUF value type %u, expected a number", L->g->path, full,
                kv->type);
        return BITGGUF_ERR_FORMAT;
    }
    return 0;
}

static const bg_gguf_tensor *need_tensor(loader *L, const char *name) {
    const bg_gguf_tensor *t = bg_gguf_find_tensor(L->g, name);
    if (!t) set_err(L->err, L->err_len, "%s: missing tensor '%s'", L->g->path, name);
    return t;
}

/* A tensor of numpy shape (rows, cols) (rows 0: a vector of cols). */
static const bg_gguf_tensor *shaped_tensor(loader *L, const char *name, int64_t rows, int64_t cols) {
    const bg_gguf_tensor *t = need_tensor(L, name);
    if (!t) return NULL;
    int ok = rows ? (t->n_dims == 2 && (int64_t)t->ne[1] == rows && (int64_t)t->ne[0] == cols)
                  : (t->n_dims == 1 && (int64_t)t->ne[0] == cols);
    if (!ok) {
        char want[64];
        if (rows) snprintf(want, sizeof want, "(%lld, %lld)", (long long)rows, (long long)cols);
        else snprintf(want, sizeof want, "(%lld,)", (long long)cols);
        set_err(L->err, L->err_len, "%s: tensor '%s' has ggml dims (%llu, %llu) (n_dims %d), expected shape %s",
                L->g->path, name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], t->n_dims, want);
        return NULL;
    }
    return t;
}

static int load_config(bitgguf_model *m, loader *L) {
    static const char *const archs[][2] = {{"bitnet", "silu"}, {"bitnet-25", "relu2"}, {"bitnet-b1.58", "relu2"}};
    const bg_gguf_kv *akv = bg_gguf_find_kv(L->g, "general.architecture");
    const char *arch = akv && akv->type == BG_GGUF_STRING ? akv->str : NULL;
    int act = -1;
    for (size_t i = 0; arch && i < sizeof archs / sizeof archs[0]; i++)
        if (!strcmp(arch, archs[i][0])) act = !strcmp(archs[i][1], "relu2") ? BG_FFN_RELU2 : BG_FFN_SILU;
    if (act < 0) {
        set_err(L->err, L->err_len, "%s: general.architecture is %s%s%s; bitgguf runs bitnet, bitnet-25, "
                "bitnet-b1.58", L->g->path, arch ? "'" : "", arch ? arch : "missing", arch ? "'" : "");
        return BITGGUF_ERR_UNSUPPORTED;
    }
    m->arch = arch;

    int64_t n_embd, n_head, n_layer, n_head_kv, n_ff, n_ctx, key_length, head_dim;
    double theta, eps;
    int rc;
    if ((rc = key_int(L, arch, "embedding_length", -1, &n_embd)) ||
        (rc = key_int(L, arch, "attention.head_count", -1, &n_head)))
        return rc;
    const bg_gguf_tensor *embd = need_tensor(L, "token_embd.weight");
    if (!embd) return BITGGUF_ERR_FORMAT;
    if (embd->n_dims != 2 || (int64_t)embd->ne[0] != n_embd) {
        set_err(L->err, L->err_len, "%s: tensor 'token_embd.weight' has ggml dims (%llu, %llu) (n_dims %d), "
                "expected (n_vocab, %lld)", L->g->path, (unsigned long long)embd->ne[0],
                (unsigned long long)embd->ne[1], embd->n_dims, (long long)n_embd);
        return BITGGUF_ERR_FORMAT;
    }
    if ((rc = key_int(L, arch, "attention.key_length", 0, &key_length))) return rc;
    if ((rc = key_int(L, arch, "rope.dimension_count", key_length ? key_length : n_embd / (n_head > 1 ? n_head : 1),
                      &head_dim)) ||
        (rc = key_int(L, arch, "block_count", -1, &n_layer)) ||
        (rc = key_int(L, arch, "attention.head_count_kv", n_head, &n_head_kv)) ||
        (rc = key_int(L, arch, "feed_forward_length", -1, &n_ff)) ||
        (rc = key_int(L, arch, "context_length", 2048, &n_ctx)) ||
        /* llama.cpp's default when the key is absent (upstream's TQ fixtures lack it) */
        (rc = key_float(L, arch, "rope.freq_base", 10000.0, &theta)) ||
        (rc = key_float(L, arch, "attention.layer_norm_rms_epsilon", 1e-5, &eps)))
        return rc;

    const struct { const char *name; int64_t v; } dims[] = {
        {"n_vocab", (int64_t)embd->ne[1]}, {"n_embd", n_embd}, {"n_layer", n_layer}, {"n_head", n_head},
        {"n_head_kv", n_head_kv}, {"head_dim", head_dim}, {"n_ff", n_ff},
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        if (!(dims[i].v > 0 && dims[i].v < (1 << 24))) {
            set_err(L->err, L->err_len, "%s: %s is %lld, expected 1..2^24", L->g->path, dims[i].name,
                    (long long)dims[i].v);
            return BITGGUF_ERR_FORMAT;
        }
    }
    if (n_head % n_head_kv) {
        set_err(L->err, L->err_len, "%s: head_count %lld is not a multiple of head_count_kv %lld", L->g->path,
                (long long)n_head, (long long)n_head_kv);
        return BITGGUF_ERR_FORMAT;
    }
    if (head_dim % 2) {
        set_err(L->err, L->err_len, "%s: head dimension %lld must be even for RoPE", L->g->path, (long long)head_dim);
        return BITGGUF_ERR_FORMAT;
    }
    if (!(eps > 0)) {
        set_err(L->err, L->err_len, "%s: layer_norm_rms_epsilon is %g, expected > 0", L->g->path, eps);
        return BITGGUF_ERR_FORMAT;
    }
    if (n_ctx < 1 || n_ctx > (1 << 24)) {
        set_err(L->err, L->err_len, "%s: context_length is %lld, expected 1..2^24", L->g->path, (long long)n_ctx);
        return BITGGUF_ERR_FORMAT;
    }
    bg_config *c = &m->c;
    c->n_vocab = (int)embd->ne[1];
    c->n_embd = (int)n_embd;
    c->n_layer = (int)n_layer;
    c->n_head = (int)n_head;
    c->n_head_kv = (int)n_head_kv;
    c->head_dim = (int)head_dim;
    c->n_ff = (int)n_ff;
    c->rope_theta = (float)theta;
    c->rms_eps = (float)eps;
    c->ffn_act = act;
    m->n_ctx_train = (int)n_ctx;
    return 0;
}

static int default_threads(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
#if !defined(_WIN32) && defined(_SC_NPROCESSORS_ONLN)
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n > 0) return (int)n;
#endif
    return 1;
}

/* ---- weights ------------------------------------------------------------------------------------------------- */

/* A norm vector as f32: in place when the file stores F32, else dequantized once (bitgguf/model.py's _norm). */
static int load_norm(bitgguf_model *m, loader *L, const char *name, int64_t n, const float **out) {
    const bg_gguf_tensor *t = shaped_tensor(L, name, 0, n);
    if (!t) return BITGGUF_ERR_FORMAT;
    if (t->type_id == BG_TYPE_F32) {
        *out = (const float *)t->data;  /* tensor data is aligned to >= 32 bytes in the file */
        return 0;
    }
    const bg_type_traits *tr = bg_type_traits_of(t->type_id);
    if (!tr || !tr->to_float) {
        set_err(L->err, L->err_len, "%s: tensor '%s' has type %s; norms must be F32, F16, BF16 or Q8_0", L->g->path,
                name, t->type->name);
        return BITGGUF_ERR_UNSUPPORTED;
    }
    float *f = own(m, (size_t)n * sizeof(float));
    if (!f) return BITGGUF_ERR_NOMEM;
    tr->to_float(t->data, f, (int)n);
    *out = f;
    return 0;
}

/* I2_S bytes of n weights with the given codes (in {-1, 0, 1}) and scale: 128-weight blocks, byte b of a block
 * holds weights b, b+32, b+64, b+96 from the high bits down; then the f32 scale (ternary_layouts.i2s_pack). */
static void i2s_pack_block(const int8_t *codes, uint8_t *out) {
    for (int b = 0; b < 32; b++)
        out[b] = (uint8_t)(((codes[b] + 1) << 6) | ((codes[32 + b] + 1) << 4) | ((codes[64 + b] + 1) << 2) |
                           (codes[96 + b] + 1));
}

/* Repack a float linear weight (a file holding alpha-scaled ternary floats) into I2_S, as bitgguf/model.py's
 * _linear does: bitnet.cpp's quantize_i2_s rule, scale = max|w| over the tensor, code = sign, |w| < 1e-6 is 0. */
static int repack_i2s(bitgguf_model *m, loader *L, const bg_gguf_tensor *t, int rows, int cols, bg_tensor *out) {
    const bg_type_traits *tr = bg_type_traits_of(t->type_id);
    if (!tr || !tr->to_float || tr->ternary) {
        set_err(L->err, L->err_len, "%s: tensor '%s' has type %s, which the C API does not run; convert the file "
                "to I2_S: python -m convert gguf-to-gguf IN.gguf --outfile OUT.gguf --outtype i2_s", L->g->path,
                t->name, t->type->name);
        return BITGGUF_ERR_UNSUPPORTED;
    }
    if (cols % 128) {
        set_err(L->err, L->err_len, "%s: tensor '%s' (%s) has rows of %d weights; repacking to I2_S needs a "
                "multiple of 128", L->g->path, t->name, t->type->name, cols);
        return BITGGUF_ERR_UNSUPPORTED;
    }
    const size_t n = (size_t)rows * cols, nbytes = n / 4 + 32;
    uint8_t *dst = own(m, nbytes);
    int8_t *codes = malloc((size_t)cols);
    float *row = malloc((size_t)cols * sizeof(float));
    if (!dst || !codes || !row) {
        free(codes);
        free(row);
        set_err(L->err, L->err_len, "%s: out of memory repacking tensor '%s'", L->g->path, t->name);
        return BITGGUF_ERR_NOMEM;
    }
    memset(dst, 0, nbytes);
    float scale = 0.0f;
    for (int r = 0; r < rows; r++) {  /* pass 1: the scale */
        tr->to_float(t->data + (size_t)r * bg_row_bytes(tr, cols), row, cols);
        for (int i = 0; i < cols; i++) scale = fabsf(row[i]) > scale ? fabsf(row[i]) : scale;
    }
    for (int r = 0; r < rows; r++) {
        tr->to_float(t->data + (size_t)r * bg_row_bytes(tr, cols), row, cols);
        for (int i = 0; i < cols; i++) codes[i] = (int8_t)(fabsf(row[i]) < 1e-6f ? 0 : row[i] > 0 ? 1 : -1);
        for (int b = 0; b < cols / 128; b++)
            i2s_pack_block(codes + b * 128, dst + ((size_t)r * cols + (size_t)b * 128) / 4);
    }
    free(codes);
    free(row);
    memcpy(dst + n / 4, &scale, sizeof scale);
    out->data = dst;
    out->type = BG_TYPE_I2_S;
    return 0;
}

/* TL1 / TL2 (bitnet.cpp's tile-permuted layouts) -> row-major 2-bit rows, as bitgguf/model.py's _tl_rows does:
 * I2_S bytes when the rows are whole 128-weight blocks, else the engine's I2_ROWS (I2_S blocks plus a tail). */
static int repack_tl(bitgguf_model *m, loader *L, const bg_gguf_tensor *t, bg_tensor *out) {
    const int tl2 = t->type->size_rule == BG_SIZE_TL2, rows = out->rows, cols = out->cols;
    int BM, BK, bm;
    char why[256];
    if (bg_gguf_tl_params(tl2, rows, cols, &BM, &BK, &bm, why, sizeof why)) {  /* the reader checked this */
        set_err(L->err, L->err_len, "%s: tensor '%s': %s", L->g->path, t->name, why);
        return BITGGUF_ERR_FORMAT;
    }
    const size_t n = (size_t)rows * cols;
    uint8_t *dst = own(m, n / 4 + 32);
    if (!dst) return BITGGUF_ERR_NOMEM;
    memset(dst, 0, n / 4 + 32);
    int rc = bg_tl_to_i2_rows(tl2 ? 2 : 1, t->data, rows, cols, BM, BK, bm, dst, default_threads());
    if (rc) {
        set_err(L->err, L->err_len, rc == -3 ? "%s: out of memory repacking tensor '%s'"
                : "%s: tensor '%s' (%s) is not a valid ternary tensor: a pair index or magnitude is out of range",
                L->g->path, t->name, t->type->name);
        return rc == -3 ? BITGGUF_ERR_NOMEM : BITGGUF_ERR_FORMAT;
    }
    memcpy(dst + n / 4, t->data + bg_gguf_tl_scale_offset(tl2, rows, cols), sizeof(float));
    out->data = dst;
    out->type = cols % 128 == 0 ? BG_TYPE_I2_S : BG_TYPE_I2_ROWS;  /* whole blocks: the same bytes */
    return 0;
}

/* TL2 read in place by the engine's lookup-table kernels (where this CPU has a SIMD one), as bitgguf/model.py does:
 * the tiling and a check that every magnitude and pair index is in range. */
static int tl2_in_place(loader *L, const bg_gguf_tensor *t, bg_tensor *out) {
    int BM, BK, bm;
    char why[256];
    bg_tl2 w;
    if (bg_gguf_tl_params(1, out->rows, out->cols, &BM, &BK, &bm, why, sizeof why)) {
        set_err(L->err, L->err_len, "%s: tensor '%s': %s", L->g->path, t->name, why);
        return BITGGUF_ERR_FORMAT;
    }
    if (bg_tl2_init(&w, t->data, out->rows, out->cols, BM, BK) || !bg_tl2_valid(&w)) {
        set_err(L->err, L->err_len, "%s: tensor '%s' (TL2) is not a valid ternary tensor: a magnitude or pair index "
                "is out of range", L->g->path, t->name);
        return BITGGUF_ERR_FORMAT;
    }
    out->data = t->data;
    out->type = BG_TYPE_TL2;
    out->tl_bm = BM;
    out->tl_bk = BK;
    return 0;
}

static int load_linear(bitgguf_model *m, loader *L, const char *name, int rows, int cols, bg_tensor *out) {
    const bg_gguf_tensor *t = shaped_tensor(L, name, rows, cols);
    if (!t) return BITGGUF_ERR_FORMAT;
    memset(out, 0, sizeof *out);
    out->rows = rows;
    out->cols = cols;
    const bg_type_traits *tr = bg_type_traits_of(t->type_id);
    if (tr && tr->ternary) {  /* I2_S, TQ1_0, TQ2_0: in place */
        out->data = t->data;
        out->type = t->type_id;
        return 0;
    }
    if (t->type->size_rule == BG_SIZE_TL2 && bg_tl2_in_place(bg_cpu_best_isa())) return tl2_in_place(L, t, out);
    if (t->type->size_rule == BG_SIZE_TL1 || t->type->size_rule == BG_SIZE_TL2) return repack_tl(m, L, t, out);
    return repack_i2s(m, L, t, rows, cols, out);
}

static int load_weights(bitgguf_model *m, loader *L) {
    const bg_config *c = &m->c;
    const int D = c->n_embd, QD = c->n_head * c->head_dim, KVD = c->n_head_kv * c->head_dim, F = c->n_ff;
    const bg_gguf_tensor *e = bg_gguf_find_tensor(L->g, "token_embd.weight");
    const bg_type_traits *etr = bg_type_traits_of(e->type_id);
    if (!etr || etr->ternary) {
        set_err(L->err, L->err_len, "%s: tensor 'token_embd.weight' has type %s; the engine reads embeddings of type "
                "F32, F16, BF16, Q8_0", L->g->path, e->type->name);
        return BITGGUF_ERR_UNSUPPORTED;
    }
    m->tok_embd.data = e->data;
    m->tok_embd.type = e->type_id;
    m->tok_embd.rows = c->n_vocab;
    m->tok_embd.cols = D;
    int rc;
    if ((rc = load_norm(m, L, "output_norm.weight", D, &m->output_norm))) return rc;
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers) return BITGGUF_ERR_NOMEM;
    for (int l = 0; l < c->n_layer; l++) {
        bg_layer *ly = &m->layers[l];
        char name[96];
        const struct { const char *what; int n; const float **dst; } norms[] = {
            {"attn_norm", D, &ly->attn_norm}, {"attn_sub_norm", QD, &ly->attn_sub_norm},
            {"ffn_norm", D, &ly->ffn_norm}, {"ffn_sub_norm", F, &ly->ffn_sub_norm},
        };
        for (size_t i = 0; i < sizeof norms / sizeof norms[0]; i++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, norms[i].what);
            if ((rc = load_norm(m, L, name, norms[i].n, norms[i].dst))) return rc;
        }
        const struct { const char *what; int rows, cols; bg_tensor *dst; } lin[] = {
            {"attn_q", QD, D, &ly->wq}, {"attn_k", KVD, D, &ly->wk}, {"attn_v", KVD, D, &ly->wv},
            {"attn_output", D, QD, &ly->wo}, {"ffn_gate", F, D, &ly->ffn_gate}, {"ffn_up", F, D, &ly->ffn_up},
            {"ffn_down", D, F, &ly->ffn_down},
        };
        for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, lin[i].what);
            if ((rc = load_linear(m, L, name, lin[i].rows, lin[i].cols, lin[i].dst))) return rc;
        }
    }
    return 0;
}

/* ---- vocabulary (bitgguf/tokenizer.py's Tokenizer.from_metadata) ------------------------------------------- */

static int meta_flag(loader *L, const char *key, int *flags, int bit) {
    const bg_gguf_kv *kv = bg_gguf_find_kv(L->g, key);
    int64_t v;
    if (!kv) return 0;
    if (bg_gguf_kv_int(kv, &v) || (v != 0 && v != 1)) {  /* a bool, or an integer 0 / 1 */
        set_err(L->err, L->err_len, "%s: tokenizer metadata: %s is not a bool", L->g->path, key);
        return BITGGUF_ERR_FORMAT;
    }
    *flags = v ? (*flags | bit) : (*flags & ~bit);
    return 0;
}

static int meta_id(loader *L, const char *key, int32_t *id) {
    const bg_gguf_kv *kv = bg_gguf_find_kv(L->g, key);
    int64_t v;
    if (!kv) return 0;
    if (kv->type == BG_GGUF_BOOL || bg_gguf_kv_int(kv, &v) || v < INT32_MIN || v > INT32_MAX) {
        set_err(L->err, L->err_len, "%s: tokenizer metadata: %s is not an integer token id", L->g->path, key);
        return BITGGUF_ERR_FORMAT;
    }
    *id = (int32_t)v;
    return 0;
}

static const bg_gguf_kv *string_array(loader *L, const char *key, int *rc) {
    const bg_gguf_kv *kv = bg_gguf_find_kv(L->g, key);
    *rc = 0;
    if (kv && !(kv->type == BG_GGUF_ARRAY && kv->elem_type == BG_GGUF_STRING)) {
        set_err(L->err, L->err_len, "%s: tokenizer metadata: %s is not an array of strings", L->g->path, key);
        *rc = BITGGUF_ERR_FORMAT;
    }
    return kv;
}

static int load_tokenizer(bitgguf_model *m, loader *L) {
    const bg_gguf *g = L->g;
    m->eos_id = m->eot_id = -1;
    int rc;
    if ((rc = meta_id(L, "tokenizer.ggml.eos_token_id", &m->eos_id)) ||
        (rc = meta_id(L, "tokenizer.ggml.eot_token_id", &m->eot_id)))
        return rc;
    const bg_gguf_kv *model_kv = bg_gguf_find_kv(g, "tokenizer.ggml.model");
    const bg_gguf_kv *pre_kv = bg_gguf_find_kv(g, "tokenizer.ggml.pre");
    const bg_gguf_kv *tokens = string_array(L, "tokenizer.ggml.tokens", &rc);
    if (rc) return rc;
    if (!model_kv && !tokens) return 0;  /* no vocabulary: the model runs on token ids only */
    if (!model_kv || model_kv->type != BG_GGUF_STRING || (pre_kv && pre_kv->type != BG_GGUF_STRING)) {
        set_err(L->err, L->err_len, "%s: tokenizer metadata: tokenizer.ggml.model and tokenizer.ggml.pre must be "
                "strings", g->path);
        return BITGGUF_ERR_FORMAT;
    }
    if (!tokens) {
        set_err(L->err, L->err_len, "%s: tokenizer metadata: tokenizer.ggml.tokens is missing", g->path);
        return BITGGUF_ERR_FORMAT;
    }
    if (tokens->count > INT32_MAX) {
        set_err(L->err, L->err_len, "%s: tokenizer metadata: %llu tokens", g->path, (unsigned long long)tokens->count);
        return BITGGUF_ERR_FORMAT;
    }
    const int32_t n = (int32_t)tokens->count;
    bg_tokenizer_desc d;
    char why[256];
    if (bg_tokenizer_desc_from_names(&d, model_kv->str, pre_kv ? pre_kv->str : NULL, n, why, sizeof why)) {
        set_err(L->err, L->err_len, "%s: tokenizer metadata: %s", g->path, why);
        return BITGGUF_ERR_UNSUPPORTED;
    }
    d.tokens = tokens->strs;
    d.token_lens = tokens->str_lens;
    float *scores = NULL;
    int32_t *types = NULL;
    const bg_gguf_kv *skv = bg_gguf_find_kv(g, "tokenizer.ggml.scores");
    const bg_gguf_kv *tkv = bg_gguf_find_kv(g, "tokenizer.ggml.token_type");
    const struct { const bg_gguf_kv *kv; const char *key; } arrays[] = {
        {skv, "tokenizer.ggml.scores"}, {tkv, "tokenizer.ggml.token_type"}};
    for (int i = 0; i < 2; i++) {
        const bg_gguf_kv *kv = arrays[i].kv;
        if (!kv) continue;
        if (kv->type != BG_GGUF_ARRAY || kv->elem_type == BG_GGUF_STRING || kv->elem_type == BG_GGUF_ARRAY ||
            kv->count != (uint64_t)n) {
            set_err(L->err, L->err_len, "%s: tokenizer metadata: %s must be an array of %d numbers", g->path,
                    arrays[i].key, (int)n);
            return BITGGUF_ERR_FORMAT;
        }
    }
    rc = 0;
    if (skv) {
        scores = malloc((size_t)(n ? n : 1) * sizeof *scores);
        for (int32_t i = 0; scores && i < n; i++) {
            double v;
            int64_t b;
            if (bg_gguf_kv_array_float(skv, (uint64_t)i, &v))  /* bool elements: 0 / 1, as numpy reads them */
                v = bg_gguf_kv_array_int(skv, (uint64_t)i, &b) ? 0.0 : (double)b;
            scores[i] = (float)v;
        }
        if (!scores) rc = BITGGUF_ERR_NOMEM;
        d.scores = scores;
    }
    if (tkv && !rc) {
        types = malloc((size_t)(n ? n : 1) * sizeof *types);
        for (int32_t i = 0; types && i < n; i++) {
            int64_t v;
            double f;
            if (bg_gguf_kv_array_int(tkv, (uint64_t)i, &v)) v = bg_gguf_kv_array_float(tkv, (uint64_t)i, &f) ? 0
                                                                                                       : (int64_t)f;
            types[i] = (int32_t)v;
        }
        if (!types) rc = BITGGUF_ERR_NOMEM;
        d.types = types;
    }
    if (!rc && d.kind == BG_TOK_BPE) {
        const bg_gguf_kv *merges = string_array(L, "tokenizer.ggml.merges", &rc);
        if (merges && !rc) {
            if (merges->count > INT32_MAX) rc = BITGGUF_ERR_FORMAT;
            d.n_merges = (int32_t)merges->count;
            d.merges = merges->strs;
            d.merge_lens = merges->str_lens;
        }
    }
    if (!rc &&
        !(rc = meta_flag(L, "tokenizer.ggml.add_bos_token", &d.flags, BG_TOK_ADD_BOS)) &&
        !(rc = meta_flag(L, "tokenizer.ggml.add_eos_token", &d.flags, BG_TOK_ADD_EOS)) &&
        !(rc = meta_flag(L, "tokenizer.ggml.add_space_prefix", &d.flags, BG_TOK_ADD_SPACE_PREFIX)) &&
        !(rc = meta_id(L, "tokenizer.ggml.bos_token_id", &d.bos)) &&
        !(rc = meta_id(L, "tokenizer.ggml.eos_token_id", &d.eos)) &&
        !(rc = meta_id(L, "tokenizer.ggml.eot_token_id", &d.eot)) &&
        !(rc = meta_id(L, "tokenizer.ggml.eom_token_id", &d.eom)) &&
        !(rc = meta_id(L, "tokenizer.ggml.unknown_token_id", &d.unk)) &&
        !(rc = meta_id(L, "tokenizer.ggml.padding_token_id", &d.pad))) {
        m->tok = bg_tokenizer_new(&d, why, sizeof why);
        if (!m->tok) {
            set_err(L->err, L->err_len, "%s: tokenizer: %s", g->path, why);
            rc = BITGGUF_ERR_FORMAT;
        }
    }
    free(scores);
    free(types);
    if (!rc) m->add_space_prefix = (d.flags & BG_TOK_ADD_SPACE_PREFIX) != 0;
    return rc;
}

/* ---- model ------------------------------------------------------------------------------------------------- */

int bitgguf_model_open(const char *path, bitgguf_model **model, char *err, size_t err_len) {
    if (err && err_len) err[0] = 0;
    if (!model) {
        set_err(err, err_len, "bitgguf_model_open: model is NULL");
        return BITGGUF_ERR_ARGUMENT;
    }
    *model = NULL;
    if (!path) {
        set_err(err, err_len, "bitgguf_model_open: path is NULL");
        return BITGGUF_ERR_ARGUMENT;
    }
    bitgguf_model *m = calloc(1, sizeof *m);
    if (!m) {
        set_err(err, err_len, "%s: out of memory", path);
        return BITGGUF_ERR_NOMEM;
    }
    int rc = bg_gguf_open(path, &m->g, err, err_len);
    if (!rc) {
        loader L = {m->g, err, err_len};
        if (!(rc = load_config(m, &L)) && !(rc = load_weights(m, &L)) && !(rc = load_tokenizer(m, &L))) {
            *model = m;
            return BITGGUF_OK;
        }
        if (rc == BITGGUF_ERR_NOMEM && err && err_len && !err[0]) set_err(err, err_len, "%s: out of memory", path);
    }
    bitgguf_model_free(m);
    return rc;
}

void bitgguf_model_free(bitgguf_model *m) {
    if (!m) return;
    bg_tokenizer_free(m->tok);
    for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    bg_gguf_close(m->g);
    free(m);
}

int32_t bitgguf_n_vocab(const bitgguf_model *m) { return m ? m->c.n_vocab : 0; }
int32_t bitgguf_n_ctx_train(const bitgguf_model *m) { return m ? m->n_ctx_train : 0; }
int32_t bitgguf_n_embd(const bitgguf_model *m) { return m ? m->c.n_embd : 0; }
int32_t bitgguf_n_layer(const bitgguf_model *m) { return m ? m->c.n_layer : 0; }
int32_t bitgguf_n_head(const bitgguf_model *m) { return m ? m->c.n_head : 0; }
int32_t bitgguf_n_head_kv(const bitgguf_model *m) { return m ? m->c.n_head_kv : 0; }
int32_t bitgguf_n_ff(const bitgguf_model *m) { return m ? m->c.n_ff : 0; }
const char *bitgguf_arch(const bitgguf_model *m) { return m ? m->arch : NULL; }

/* ---- metadata ---------------------------------------------------------------------------------------------- */

int32_t bitgguf_meta_count(const bitgguf_model *m) { return m ? (int32_t)m->g->n_kv : 0; }

const char *bitgguf_meta_key(const bitgguf_model *m, int32_t i) {
    return m && i >= 0 && (uint64_t)i < m->g->n_kv ? m->g->kv[i].key : NULL;
}

static const bg_gguf_kv *find(const bitgguf_model *m, const char *key) {
    return m && key ? bg_gguf_find_kv(m->g, key) : NULL;
}

int bitgguf_meta_type(const bitgguf_model *m, const char *key) {
    const bg_gguf_kv *kv = find(m, key);
    return kv ? (int)kv->type : -1;
}

const char *bitgguf_meta_str(const bitgguf_model *m, const char *key, size_t *len) {
    const bg_gguf_kv *kv = find(m, key);
    if (!kv || kv->type != BG_GGUF_STRING) return NULL;
    if (len) *len = (size_t)kv->count;
    return kv->str;
}

int bitgguf_meta_int(const bitgguf_model *m, const char *key, int64_t *value) {
    const bg_gguf_kv *kv = find(m, key);
    int64_t v;
    if (!kv) return BITGGUF_ERR_NOT_FOUND;
    if (bg_gguf_kv_int(kv, &v)) return BITGGUF_ERR_TYPE;
    if (value) *value = v;
    return BITGGUF_OK;
}

int bitgguf_meta_float(const bitgguf_model *m, const char *key, double *value) {
    const bg_gguf_kv *kv = find(m, key);
    double v;
    if (!kv) return BITGGUF_ERR_NOT_FOUND;
    if (kv->type == BG_GGUF_BOOL || bg_gguf_kv_float(kv, &v)) return BITGGUF_ERR_TYPE;
    if (value) *value = v;
    return BITGGUF_OK;
}

int bitgguf_meta_array(const bitgguf_model *m, const char *key, int *elem_type, uint64_t *count) {
    const bg_gguf_kv *kv = find(m, key);
    if (!kv) return BITGGUF_ERR_NOT_FOUND;
    if (kv->type != BG_GGUF_ARRAY) return BITGGUF_ERR_TYPE;
    if (elem_type) *elem_type = (int)kv->elem_type;
    if (count) *count = kv->count;
    return BITGGUF_OK;
}

const char *bitgguf_meta_array_str(const bitgguf_model *m, const char *key, uint64_t i, size_t *len) {
    const bg_gguf_kv *kv = find(m, key);
    if (!kv || kv->type != BG_GGUF_ARRAY || kv->elem_type != BG_GGUF_STRING || i >= kv->count) return NULL;
    if (len) *len = kv->str_lens[i];
    return kv->strs[i];
}

/* An element of an array of numbers: the array must exist, hold numbers, and have element i. */
static int array_elem(const bitgguf_model *m, const char *key, uint64_t i, const bg_gguf_kv **out) {
    const bg_gguf_kv *kv = find(m, key);
    if (!kv) return BITGGUF_ERR_NOT_FOUND;
    if (kv->type != BG_GGUF_ARRAY || kv->elem_type == BG_GGUF_STRING || kv->elem_type == BG_GGUF_ARRAY)
        return BITGGUF_ERR_TYPE;
    if (i >= kv->count) return BITGGUF_ERR_NOT_FOUND;
    *out = kv;
    return BITGGUF_OK;
}

int bitgguf_meta_array_int(const bitgguf_model *m, const char *key, uint64_t i, int64_t *value) {
    const bg_gguf_kv *kv;
    int64_t v;
    int rc = array_elem(m, key, i, &kv);
    if (rc) return rc;
    if (bg_gguf_kv_array_int(kv, i, &v)) return BITGGUF_ERR_TYPE;
    if (value) *value = v;
    return BITGGUF_OK;
}

int bitgguf_meta_array_float(const bitgguf_model *m, const char *key, uint64_t i, double *value) {
    const bg_gguf_kv *kv;
    double v;
    int rc = array_elem(m, key, i, &kv);
    if (rc) return rc;
    if (kv->elem_type == BG_GGUF_BOOL || bg_gguf_kv_array_float(kv, i, &v)) return BITGGUF_ERR_TYPE;
    if (value) *value = v;
    return BITGGUF_OK;
}

/* ---- tokenizer ---------------------------------------------------------------------------------------------- */

int32_t bitgguf_tokenize(const bitgguf_model *m, const char *text, size_t len, int add_special, int parse_special,
                         bitgguf_token *tokens, int32_t max_tokens) {
    if (!m || !m->tok || (!text && len) || max_tokens < 0 || (!tokens && max_tokens)) return INT32_MIN;
    return bg_tokenize(m->tok, text ? text : "", len, add_special, parse_special, tokens, max_tokens);
}

int32_t bitgguf_token_to_piece(const bitgguf_model *m, bitgguf_token token, char *buf, int32_t len, int special) {
    if (!m || !m->tok || len < 0 || (!buf && len)) return 0;
    return bg_token_to_piece(m->tok, token, buf, len, special);
}

int32_t bitgguf_detokenize(const bitgguf_model *m, const bitgguf_token *tokens, int32_t n, char *buf, int32_t len,
                           int special) {
    if (!m || !m->tok || n < 0 || (!tokens && n) || len < 0 || (!buf && len)) return INT32_MIN;
    for (int32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= bg_tokenizer_n_vocab(m->tok)) return INT32_MIN;
    return bg_detokenize(m->tok, tokens, n, buf, len, special, m->add_space_prefix);
}

bitgguf_token bitgguf_token_bos(const bitgguf_model *m) { return m && m->tok ? bg_tokenizer_bos(m->tok) : -1; }
bitgguf_token bitgguf_token_eos(const bitgguf_model *m) {
    return !m ? -1 : m->tok ? bg_tokenizer_eos(m->tok) : m->eos_id;
}
bitgguf_token bitgguf_token_eot(const bitgguf_model *m) {
    return !m ? -1 : m->tok ? bg_tokenizer_eot(m->tok) : m->eot_id;
}

int bitgguf_token_is_eog(const bitgguf_model *m, bitgguf_token token) {
    if (!m) return 0;
    if (m->tok) return bg_token_is_eog(m->tok, token) != 0;
    return token >= 0 && (token == m->eos_id || token == m->eot_id);  /* no vocabulary: the metadata ids */
}

/* ---- context ----------------------------------------------------------------------------------------------- */

bitgguf_context_params bitgguf_context_default_params(void) {
    bitgguf_context_params p;
    memset(&p, 0, sizeof p);
    return p;
}

static int isa_by_name(const char *name, bg_isa *isa) {
    for (int i = 0; i < BG_ISA_COUNT; i++) {
        if (!strcmp(name, bg_isa_name((bg_isa)i))) {
            *isa = (bg_isa)i;
            return 0;
        }
    }
    return -1;
}

int bitgguf_context_new(const bitgguf_model *model, const bitgguf_context_params *params, bitgguf_context **out,
                        char *err, size_t err_len) {
    if (err && err_len) err[0] = 0;
    if (!out || !model) {
        set_err(err, err_len, "bitgguf_context_new: model and ctx must not be NULL");
        return BITGGUF_ERR_ARGUMENT;
    }
    *out = NULL;
    bitgguf_context_params p = params ? *params : bitgguf_context_default_params();
    if (p.n_ctx < 0 || p.n_threads < 0) {
        set_err(err, err_len, "bitgguf_context_new: n_ctx (%d) and n_threads (%d) must be >= 0 (0: the default)",
                (int)p.n_ctx, (int)p.n_threads);
        return BITGGUF_ERR_ARGUMENT;
    }
    const char *isa_name = p.isa;
    if (!isa_name || !*isa_name) isa_name = getenv("BITGGUF_ISA");
    bg_isa isa = bg_cpu_best_isa();
    if (isa_name && *isa_name) {
        if (isa_by_name(isa_name, &isa) || !bg_cpu_supports(isa)) {
            char levels[128] = "";
            for (int i = 0; i < BG_ISA_COUNT; i++) {
                if (!bg_cpu_supports((bg_isa)i)) continue;
                if (levels[0]) strncat(levels, ", ", sizeof levels - strlen(levels) - 1);
                strncat(levels, bg_isa_name((bg_isa)i), sizeof levels - strlen(levels) - 1);
            }
            set_err(err, err_len, "ISA level '%s' is not one this CPU runs (it runs: %s)", isa_name, levels);
            return BITGGUF_ERR_ARGUMENT;
        }
    }
    bitgguf_context *ctx = calloc(1, sizeof *ctx);
    bg_layer *layers = calloc((size_t)model->c.n_layer, sizeof *layers);
    float *logits = malloc((size_t)model->c.n_vocab * sizeof(float));
    if (!ctx || !layers || !logits) {
        free(ctx);
        free(layers);
        free(logits);
        set_err(err, err_len, "%s: out of memory for a context", model->g->path);
        return BITGGUF_ERR_NOMEM;
    }
    memcpy(layers, model->layers, (size_t)model->c.n_layer * sizeof *layers);
    ctx->model = model;
    ctx->logits = logits;
    bg_model *m = &ctx->m;
    m->w.c = model->c;
    m->w.tok_embd = model->tok_embd;
    m->w.output = model->tok_embd;
    m->w.output_norm = model->output_norm;
    m->w.layers = layers;
    const int n_ctx = p.n_ctx ? p.n_ctx : model->n_ctx_train;
    const int n_threads = p.n_threads ? p.n_threads : default_threads();
    if (bg_model_init(m, isa, n_ctx, p.kv_f32 ? BG_TYPE_F32 : BG_TYPE_F16, n_threads)) {
        set_err(err, err_len, "%s: %s", model->g->path, m->error);
        free(layers);
        free(logits);
        free(ctx);
        return strstr(m->error, "out of memory") ? BITGGUF_ERR_NOMEM : BITGGUF_ERR_UNSUPPORTED;
    }
    *out = ctx;
    return BITGGUF_OK;
}

void bitgguf_context_free(bitgguf_context *ctx) {
    if (!ctx) return;
    bg_model_free(&ctx->m);
    free(ctx->m.w.layers);
    free(ctx->logits);
    free(ctx);
}

static int eval(bitgguf_context *ctx, const bitgguf_token *tokens, int32_t n, float *all) {
    if (!ctx) return BITGGUF_ERR_ARGUMENT;
    ctx->error[0] = 0;
    bg_model *m = &ctx->m;
    if (n <= 0 || !tokens) {
        snprintf(ctx->error, sizeof ctx->error, "eval: no tokens given (n = %d)", (int)n);
        return BITGGUF_ERR_ARGUMENT;
    }
    if (n > m->s.n_ctx - m->s.n_past) {
        snprintf(ctx->error, sizeof ctx->error, "context full: %d tokens in the context + %d new > n_ctx %d",
                 m->s.n_past, (int)n, m->s.n_ctx);
        return BITGGUF_ERR_CONTEXT_FULL;
    }
    for (int32_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= m->w.c.n_vocab) {
            snprintf(ctx->error, sizeof ctx->error, "token id %d at index %d is out of range [0, %d)", (int)tokens[i],
                     (int)i, m->w.c.n_vocab);
            return BITGGUF_ERR_ARGUMENT;
        }
    }
    const int rc = all ? bg_model_eval(m, tokens, n, all, 1) : bg_model_eval(m, tokens, n, ctx->logits, 0);
    if (rc) {
        snprintf(ctx->error, sizeof ctx->error, "%s", m->error);
        return BITGGUF_ERR_ARGUMENT;
    }
    if (all) memcpy(ctx->logits, all + (size_t)(n - 1) * m->w.c.n_vocab, (size_t)m->w.c.n_vocab * sizeof(float));
    ctx->has_logits = 1;
    return BITGGUF_OK;
}

int bitgguf_eval(bitgguf_context *ctx, const bitgguf_token *tokens, int32_t n) { return eval(ctx, tokens, n, NULL); }

int bitgguf_eval_all(bitgguf_context *ctx, const bitgguf_token *tokens, int32_t n, float *logits) {
    if (!logits) {
        if (ctx) snprintf(ctx->error, sizeof ctx->error, "eval_all: logits is NULL");
        return BITGGUF_ERR_ARGUMENT;
    }
    return eval(ctx, tokens, n, logits);
}

const float *bitgguf_get_logits(const bitgguf_context *ctx) { return ctx && ctx->has_logits ? ctx->logits : NULL; }

void bitgguf_context_reset(bitgguf_context *ctx) {
    if (!ctx) return;
    bg_model_reset(&ctx->m);
    ctx->has_logits = 0;
}

int32_t bitgguf_n_ctx(const bitgguf_context *ctx) { return ctx ? ctx->m.s.n_ctx : 0; }
int32_t bitgguf_n_past(const bitgguf_context *ctx) { return ctx ? ctx->m.s.n_past : 0; }
int32_t bitgguf_n_threads(const bitgguf_context *ctx) { return ctx ? ctx->m.n_threads : 0; }

void bitgguf_set_n_threads(bitgguf_context *ctx, int32_t n_threads) {
    if (ctx) ctx->m.n_threads = n_threads > 0 ? n_threads : 1;
}

const char *bitgguf_context_isa(const bitgguf_context *ctx) { return ctx ? bg_isa_name(ctx->m.isa) : NULL; }
const char *bitgguf_context_error(const bitgguf_context *ctx) { return ctx ? ctx->error : ""; }

/* ---- sampling ------------------------------------------------------------------------------------------------ */

bitgguf_sampler_params bitgguf_sampler_default_params(void) {
    bg_sampler_params d = bg_sampler_default_params();
    bitgguf_sampler_params p;
    p.temperature = d.temperature;
    p.top_k = d.top_k;
    p.top_p = d.top_p;
    p.min_p = d.min_p;
    p.repeat_penalty = d.repeat_penalty;
    p.repeat_last_n = d.repeat_last_n;
    p.seed = d.seed;
    return p;
}

bitgguf_sampler *bitgguf_sampler_new(const bitgguf_sampler_params *params) {
    bitgguf_sampler_params p = params ? *params : bitgguf_sampler_default_params();
    /* the same checks as the Python Sampler */
    if (isnan(p.temperature) || isnan(p.top_p) || isnan(p.min_p) || isnan(p.repeat_penalty) || p.top_p < 0 ||
        p.min_p < 0 || p.min_p > 1 || !(p.repeat_penalty > 0) || p.repeat_last_n < -1)
        return NULL;
    bitgguf_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    bg_sampler_params bp;
    bp.temperature = p.temperature;
    bp.top_k = p.top_k;
    bp.top_p = p.top_p;
    bp.min_p = p.min_p;
    bp.repeat_penalty = p.repeat_penalty;
    bp.repeat_last_n = p.repeat_last_n;
    bp.seed = p.seed;
    bg_sampler_init(&s->s, &bp);
    return s;
}

void bitgguf_sampler_free(bitgguf_sampler *s) {
    if (!s) return;
    bg_sampler_free(&s->s);
    free(s);
}

void bitgguf_sampler_reset(bitgguf_sampler *s) {
    if (s) bg_sampler_reset(&s->s);
}

bitgguf_token bitgguf_sampler_sample(bitgguf_sampler *s, const float *logits, int32_t n_vocab) {
    if (!s || !logits) return -1;
    return bg_sampler_sample(&s->s, logits, n_vocab);
}

int bitgguf_sampler_accept(bitgguf_sampler *s, bitgguf_token token) {
    if (!s) return BITGGUF_ERR_ARGUMENT;
    return bg_sampler_accept(&s->s, token) ? BITGGUF_ERR_NOMEM : BITGGUF_OK;
}

bitgguf_token bitgguf_greedy(const float *logits, int32_t n_vocab) {
    if (!logits || n_vocab <= 0) return -1;
    int32_t best = 0;
    for (int32_t i = 1; i < n_vocab; i++)
        if (logits[i] > logits[best]) best = i;  /* strict '>': the lowest id wins ties, as the sampler's greedy */
    return best;
}
