/* GGUF reader in C: map, validate every field against the file's size, index. See gguf_c.h. */
#if !defined(_WIN32) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_c.h"

#if defined(_WIN32)
#define BG_NO_MMAP 1
#else
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4
#define GGUF_MAX_NESTING 4
#define TL2_OR_MXFP4 39  /* TL2 in bitnet.cpp, MXFP4 in upstream ggml */

/* ---- the tensor-size table: one row per type (bitgguf/types.py's TYPES) ------------------------------------- */

static const bg_gguf_type TYPES[] = {
    /* name, id, block_size, block_bytes, ternary, size_rule */
    {"F32", 0, 1, 4, 0, BG_SIZE_BLOCKS},
    {"F16", 1, 1, 2, 0, BG_SIZE_BLOCKS},
    {"Q4_0", 2, 32, 18, 0, BG_SIZE_BLOCKS},     /* f16 d, 4-bit qs[16] */
    {"Q8_0", 8, 32, 34, 0, BG_SIZE_BLOCKS},     /* f16 d, int8 qs[32] */
    {"Q4_K", 12, 256, 144, 0, BG_SIZE_BLOCKS},  /* f16 d, f16 dmin, scales[12], qs[128] */
    {"Q5_K", 13, 256, 176, 0, BG_SIZE_BLOCKS},  /* f16 d, f16 dmin, scales[12], qh[32], qs[128] */
    {"Q6_K", 14, 256, 210, 0, BG_SIZE_BLOCKS},  /* ql[128], qh[64], int8 scales[16], f16 d */
    {"BF16", 30, 1, 2, 0, BG_SIZE_BLOCKS},
    {"TQ1_0", 34, 256, 54, 1, BG_SIZE_BLOCKS},  /* qs[48], qh[4], f16 d */
    {"TQ2_0", 35, 256, 66, 1, BG_SIZE_BLOCKS},  /* qs[64], f16 d */
    {"I2_S", 36, 128, 32, 1, BG_SIZE_I2S},      /* 2 bits a weight, then the f32 scale in a 32-byte tail */
    {"TL1", 38, 1, 0, 1, BG_SIZE_TL1},
    {"TL2", 39, 1, 0, 1, BG_SIZE_TL2},
};

const bg_gguf_type *bg_gguf_type_of(int type_id) {
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (TYPES[i].type_id == type_id) return &TYPES[i];
    return NULL;
}

/* C integer division (truncates toward zero), as ggml_nbytes computes TL2's size. */
static int64_t tl2_data_bytes(int64_t M, int64_t K) { return (K - 256) * M / 3 * 5 / 8 + 256 * M / 2 * 4 / 8; }

/* bitnet.cpp's setup_env presets, (M, K) -> (BM, BK, bm) (ternary_layouts._TL1_PRESETS / _TL2_PRESETS) */
static const int TL1_PRESETS[][5] = {
    {1536, 4096, 256, 128, 32}, {1536, 1536, 128, 64, 64}, {4096, 1536, 256, 128, 32}, {3200, 8640, 160, 64, 32},
    {3200, 3200, 320, 128, 64}, {8640, 3200, 320, 64, 32}, {14336, 4096, 256, 128, 32}, {4096, 14336, 128, 64, 64},
    {1024, 4096, 256, 128, 32}, {4096, 4096, 128, 64, 64},
};
static const int TL2_PRESETS[][5] = {
    {1536, 4096, 256, 96, 32}, {1536, 1536, 128, 192, 32}, {4096, 1536, 256, 96, 32}, {3200, 8640, 160, 96, 32},
    {3200, 3200, 320, 96, 32}, {8640, 3200, 320, 96, 32}, {14336, 4096, 256, 96, 32}, {4096, 14336, 128, 96, 32},
    {1024, 4096, 256, 96, 32}, {4096, 4096, 128, 96, 32},
};
#define TL2_BK 96  /* the generic rule's TL2 tile width */

int bg_gguf_tl_params(int tl2, int64_t M, int64_t K, int *BM, int *BK, int *bm, char *why, size_t why_len) {
    const char *name = tl2 ? "TL2" : "TL1";
    const int (*presets)[5] = tl2 ? TL2_PRESETS : TL1_PRESETS;
    for (int i = 0; i < 10; i++) {
        if (presets[i][0] == M && presets[i][1] == K) {
            *BM = presets[i][2], *BK = presets[i][3], *bm = presets[i][4];
            return 0;
        }
    }
    if (M <= 0 || K <= 0 || M > (1 << 30) || K > (1 << 30)) {
        snprintf(why, why_len, "%s needs a matrix of 1..2^30 rows and columns, got (%lld, %lld)", name,
                 (long long)M, (long long)K);
        return -1;
    }
    if (M % 32) {
        snprintf(why, why_len, "%s needs the row count (out_features, %lld) to be a multiple of 32", name,
                 (long long)M);
        return -1;
    }
    if (K % (tl2 ? 32 : 8)) {
        snprintf(why, why_len, "%s needs the row length (in_features, %lld) to be a multiple of %d", name,
                 (long long)K, tl2 ? 32 : 8);
        return -1;
    }
    if (tl2) {
        const int64_t K3 = K - K % TL2_BK;
        if (M * K3 / 6 + M * K3 / 24 + M * (K - K3) / 4 > tl2_data_bytes(M, K)) {
            snprintf(why, why_len, "TL2 data of (%lld, %lld) would not fit the size formula of ggml_nbytes",
                     (long long)M, (long long)K);
            return -1;
        }
    }
    int largest = 32;  /* the largest multiple of 32 up to 256 that divides M */
    for (int b = 32; b <= 256; b += 32)
        if (M % b == 0) largest = b;
    *BM = largest;
    *BK = tl2 ? TL2_BK : (int)((K & -K) < 128 ? (K & -K) : 128);
    *bm = 32;
    return 0;
}

uint64_t bg_gguf_tl_scale_offset(int tl2, int64_t M, int64_t K) {
    return tl2 ? (uint64_t)((tl2_data_bytes(M, K) + 31) / 32 * 32) : (uint64_t)(M * K / 4);
}

int bg_gguf_nbytes(const bg_gguf_type *t, const uint64_t *ne, int n_dims, uint64_t *nbytes, char *why,
                   size_t why_len) {
    uint64_t n = 1, cols = ne[0];
    for (int d = 0; d < n_dims; d++) n *= ne[d];  /* the caller bounds the product by 2^48 */
    if (t->size_rule == BG_SIZE_TL1 || t->size_rule == BG_SIZE_TL2) {
        /* bitnet.cpp's LUT layouts: 2-D matrices whose tiling the type can hold (ternary_layouts.tl_check) */
        int BM, BK, bm, tl2 = t->size_rule == BG_SIZE_TL2;
        if (n_dims != 2) {
            snprintf(why, why_len, "%s holds 2-D matrices only, got %d dimensions", t->name, n_dims);
            return -1;
        }
        if (bg_gguf_tl_params(tl2, (int64_t)ne[1], (int64_t)ne[0], &BM, &BK, &bm, why, why_len)) return -1;
        *nbytes = bg_gguf_tl_scale_offset(tl2, (int64_t)ne[1], (int64_t)ne[0]) + 32;
        return 0;
    }
    if (cols % (uint64_t)t->block_size) {
        snprintf(why, why_len, "the row length (%llu) must be a multiple of %d", (unsigned long long)cols,
                 t->block_size);
        return -1;
    }
    *nbytes = n / (uint64_t)t->block_size * (uint64_t)t->block_bytes + (t->size_rule == BG_SIZE_I2S ? 32 : 0);
    return 0;
}

/* ---- bounds-checked reading ---------------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *buf;
    size_t size, pos;
    const char *path;
    char *err;
    size_t err_len;
} cursor;

static void set_err(char *err, size_t err_len, const char *fmt, ...) {
    if (!err || !err_len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* "path: what (at byte pos of size)"; returns code. */
static int fail(cursor *c, int code, const char *fmt, ...) {
    char what[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    set_err(c->err, c->err_len, "%s: %s (at byte %zu of %zu)", c->path, what, c->pos, c->size);
    return code;
}

static int need(cursor *c, uint64_t n, const char *what) {
    if (n > c->size - c->pos)
        return fail(c, BG_GGUF_EFORMAT, "truncated file: %s needs %llu bytes, %zu left", what, (unsigned long long)n,
                    c->size - c->pos);
    return 0;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what) {
    if (need(c, 4, what)) return BG_GGUF_EFORMAT;
    memcpy(v, c->buf + c->pos, 4);  /* GGUF is little-endian, like every CPU bitgguf runs on */
    c->pos += 4;
    return 0;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what) {
    if (need(c, 8, what)) return BG_GGUF_EFORMAT;
    memcpy(v, c->buf + c->pos, 8);
    c->pos += 8;
    return 0;
}

/* Strict UTF-8, as Python's bytes.decode("utf-8"): no overlongs, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        if (b < 0x80) { i++; continue; }
        size_t len;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) len = 2;
        else if (b >= 0xE0 && b <= 0xEF) { len = 3; if (b == 0xE0) lo = 0xA0; if (b == 0xED) hi = 0x9F; }
        else if (b >= 0xF0 && b <= 0xF4) { len = 4; if (b == 0xF0) lo = 0x90; if (b == 0xF4) hi = 0x8F; }
        else return 0;
        if (n - i < len) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return 0;
        i += len;
    }
    return 1;
}

/* A GGUF string: u64 length, then that many UTF-8 bytes (left in the map). */
static int rd_string(cursor *c, const uint8_t **s, uint64_t *len, const char *what) {
    char lw[320];
    snprintf(lw, sizeof lw, "length of %.280s", what);
    if (rd_u64(c, len, lw)) return BG_GGUF_EFORMAT;
    if (need(c, *len, what)) return BG_GGUF_EFORMAT;
    *s = c->buf + c->pos;
    if (!utf8_valid(*s, (size_t)*len)) return fail(c, BG_GGUF_EFORMAT, "%s is not valid UTF-8", what);
    c->pos += (size_t)*len;
    return 0;
}

static char *dup_bytes(const uint8_t *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        if (n) memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

static const size_t SCALAR_SIZE[BG_GGUF_NTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

static int rd_vtype(cursor *c, uint32_t *t, const char *what) {
    char tw[320];
    snprintf(tw, sizeof tw, "value type of %.280s", what);
    if (rd_u32(c, t, tw)) return BG_GGUF_EFORMAT;
    if (*t >= BG_GGUF_NTYPES)
        return fail(c, BG_GGUF_EFORMAT, "%s has unknown value type %u (expected 0..12)", what, *t);
    return 0;
}

/* Skip (validating) one value of type t; arrays of arrays nest at most GGUF_MAX_NESTING deep. */
static int skip_value(cursor *c, uint32_t t, int depth, const char *what) {
    if (t == BG_GGUF_STRING) {
        const uint8_t *s;
        uint64_t n;
        return rd_string(c, &s, &n, what);
    }
    if (t != BG_GGUF_ARRAY) {
        if (need(c, SCALAR_SIZE[t], what)) return BG_GGUF_EFORMAT;
        c->pos += SCALAR_SIZE[t];
        return 0;
    }
    if (depth > GGUF_MAX_NESTING) return fail(c, BG_GGUF_EFORMAT, "%s nests arrays deeper than 4 levels", what);
    uint32_t et;
    uint64_t count;
    char ew[320];
    snprintf(ew, sizeof ew, "elements of %.280s", what);
    if (rd_vtype(c, &et, ew)) return BG_GGUF_EFORMAT;
    snprintf(ew, sizeof ew, "element count of %.280s", what);
    if (rd_u64(c, &count, ew)) return BG_GGUF_EFORMAT;
    if (et != BG_GGUF_STRING && et != BG_GGUF_ARRAY) {
        if (count > c->size) return fail(c, BG_GGUF_EFORMAT, "%s claims %llu elements, more than the file's size",
                                         what, (unsigned long long)count);
        if (need(c, count * SCALAR_SIZE[et], what)) return BG_GGUF_EFORMAT;
        c->pos += (size_t)(count * SCALAR_SIZE[et]);
        return 0;
    }
    /* strings and nested arrays each take at least 8 bytes, so a count beyond that is a lie */
    if (count > (c->size - c->pos) / 8)
        return fail(c, BG_GGUF_EFORMAT, "%s claims %llu elements, more than the rest of the file can hold", what,
                    (unsigned long long)count);
    for (uint64_t i = 0; i < count; i++) {
        char iw[320];
        snprintf(iw, sizeof iw, "%.280s[%llu]", what, (unsigned long long)i);
        if (skip_value(c, et, depth + 1, iw)) return BG_GGUF_EFORMAT;
    }
    return 0;
}

/* One metadata value into kv: scalars and strings point into the map; string arrays get an index. */
static int read_value(cursor *c, bg_gguf_kv *kv, const char *what) {
    kv->data = c->buf + c->pos;
    if (kv->type == BG_GGUF_STRING) {
        const uint8_t *s;
        uint64_t n;
        if (rd_string(c, &s, &n, what)) return BG_GGUF_EFORMAT;
        kv->data = s;
        kv->count = n;
        kv->str = dup_bytes(s, (size_t)n);
        return kv->str ? 0 : fail(c, BG_GGUF_ENOMEM, "out of memory copying %s", what);
    }
    if (kv->type != BG_GGUF_ARRAY) return skip_value(c, kv->type, 0, what);
    /* arrays: read the header here so that the elements can be indexed */
    size_t start = c->pos;
    char ew[320];
    snprintf(ew, sizeof ew, "elements of %.280s", what);
    if (rd_vtype(c, &kv->elem_type, ew)) return BG_GGUF_EFORMAT;
    snprintf(ew, sizeof ew, "element count of %.280s", what);
    if (rd_u64(c, &kv->count, ew)) return BG_GGUF_EFORMAT;
    kv->data = c->buf + c->pos;
    if (kv->elem_type != BG_GGUF_STRING) {
        c->pos = start;  /* the generic walk checks the counts and nesting */
        return skip_value(c, BG_GGUF_ARRAY, 0, what);
    }
    /* the hot case (a vocabulary: 100k+ strings): one pass that checks and indexes */
    if (kv->count > (c->size - c->pos) / 8)
        return fail(c, BG_GGUF_EFORMAT, "%s claims %llu elements, more than the rest of the file can hold", what,
                    (unsigned long long)kv->count);
    size_t n = (size_t)kv->count;
    kv->strs = malloc((n ? n : 1) * sizeof *kv->strs);
    kv->str_lens = malloc((n ? n : 1) * sizeof *kv->str_lens);
    if (!kv->strs || !kv->str_lens) return fail(c, BG_GGUF_ENOMEM, "out of memory indexing %s", what);
    for (size_t i = 0; i < n; i++) {
        uint64_t len;
        if (c->size - c->pos < 8)
            return fail(c, BG_GGUF_EFORMAT, "truncated file: length of %s[%zu] needs 8 bytes, %zu left", what, i,
                        c->size - c->pos);
        memcpy(&len, c->buf + c->pos, 8);
        c->pos += 8;
        if (len > c->size - c->pos)
            return fail(c, BG_GGUF_EFORMAT, "truncated file: %s[%zu] needs %llu bytes, %zu left", what, i,
                        (unsigned long long)len, c->size - c->pos);
        if (!utf8_valid(c->buf + c->pos, (size_t)len))
            return fail(c, BG_GGUF_EFORMAT, "%s[%zu] is not valid UTF-8", what, i);
        kv->strs[i] = (const char *)c->buf + c->pos;
        kv->str_lens[i] = (size_t)len;
        c->pos += (size_t)len;
    }
    return 0;
}

/* ---- value access ------------------------------------------------------------------------------------------- */

static int scalar_int(uint32_t t, const uint8_t *p, int64_t *out) {
    switch (t) {
    case BG_GGUF_UINT8: case BG_GGUF_BOOL: *out = p[0]; return 0;
    case BG_GGUF_INT8: { int8_t v; memcpy(&v, p, 1); *out = v; return 0; }
    case BG_GGUF_UINT16: { uint16_t v; memcpy(&v, p, 2); *out = v; return 0; }
    case BG_GGUF_INT16: { int16_t v; memcpy(&v, p, 2); *out = v; return 0; }
    case BG_GGUF_UINT32: { uint32_t v; memcpy(&v, p, 4); *out = v; return 0; }
    case BG_GGUF_INT32: { int32_t v; memcpy(&v, p, 4); *out = v; return 0; }
    case BG_GGUF_UINT64: {
        uint64_t v;
        memcpy(&v, p, 8);
        if (v > (uint64_t)INT64_MAX) return -1;
        *out = (int64_t)v;
        return 0;
    }
    case BG_GGUF_INT64: { int64_t v; memcpy(&v, p, 8); *out = v; return 0; }
    default: return -1;
    }
}

static int scalar_float(uint32_t t, const uint8_t *p, double *out) {
    if (t == BG_GGUF_FLOAT32) { float v; memcpy(&v, p, 4); *out = v; return 0; }
    if (t == BG_GGUF_FLOAT64) { double v; memcpy(&v, p, 8); *out = v; return 0; }
    if (t == BG_GGUF_UINT64) { uint64_t v; memcpy(&v, p, 8); *out = (double)v; return 0; }
    if (t == BG_GGUF_BOOL) return -1;
    int64_t i;
    if (scalar_int(t, p, &i)) return -1;
    *out = (double)i;
    return 0;
}

int bg_gguf_kv_int(const bg_gguf_kv *kv, int64_t *out) { return scalar_int(kv->type, kv->data, out); }
int bg_gguf_kv_float(const bg_gguf_kv *kv, double *out) { return scalar_float(kv->type, kv->data, out); }

int bg_gguf_kv_array_int(const bg_gguf_kv *kv, uint64_t i, int64_t *out) {
    if (kv->type != BG_GGUF_ARRAY || kv->elem_type >= BG_GGUF_NTYPES || !SCALAR_SIZE[kv->elem_type] || i >= kv->count)
        return -1;
    return scalar_int(kv->elem_type, kv->data + i * SCALAR_SIZE[kv->elem_type], out);
}

int bg_gguf_kv_array_float(const bg_gguf_kv *kv, uint64_t i, double *out) {
    if (kv->type != BG_GGUF_ARRAY || kv->elem_type >= BG_GGUF_NTYPES || !SCALAR_SIZE[kv->elem_type] || i >= kv->count)
        return -1;
    return scalar_float(kv->elem_type, kv->data + i * SCALAR_SIZE[kv->elem_type], out);
}

/* ---- lookup: indices sorted by name (qsort has no context argument, so the names travel with the index) ----- */

typedef struct { const char *name; uint32_t i; } name_index;

static int cmp_name(const void *a, const void *b) {
    const name_index *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    return r ? r : (x->i > y->i) - (x->i < y->i);
}

/* Sort n names; returns the index (owned) or NULL (out of memory); *dup gets the first repeated name or NULL. */
static uint32_t *sort_names(const char *const *names, size_t stride, uint64_t n, const char **dup) {
    name_index *tmp = malloc((n ? n : 1) * sizeof *tmp);
    uint32_t *order = malloc((n ? n : 1) * sizeof *order);
    *dup = NULL;
    if (!tmp || !order) {
        free(tmp);
        free(order);
        return NULL;
    }
    for (uint64_t i = 0; i < n; i++) {
        tmp[i].name = *(const char *const *)((const char *)names + i * stride);
        tmp[i].i = (uint32_t)i;
    }
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_name);
    for (uint64_t i = 0; i < n; i++) {
        order[i] = tmp[i].i;
        if (i && !*dup && strcmp(tmp[i].name, tmp[i - 1].name) == 0) *dup = tmp[i].name;
    }
    free(tmp);
    return order;
}

static long find_sorted(const uint32_t *order, uint64_t n, const char *const *names, size_t stride,
                        const char *key) {
    size_t lo = 0, hi = (size_t)n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *name = *(const char *const *)((const char *)names + order[mid] * stride);
        int r = strcmp(name, key);
        if (r == 0) return (long)order[mid];
        if (r < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

const bg_gguf_kv *bg_gguf_find_kv(const bg_gguf *g, const char *key) {
    if (!g || !key || !g->kv_order) return NULL;
    long i = find_sorted(g->kv_order, g->n_kv, (const char *const *)&g->kv[0].key, sizeof g->kv[0], key);
    return i < 0 ? NULL : &g->kv[i];
}

const bg_gguf_tensor *bg_gguf_find_tensor(const bg_gguf *g, const char *name) {
    if (!g || !name || !g->tensor_order) return NULL;
    long i = find_sorted(g->tensor_order, g->n_tensors, (const char *const *)&g->tensors[0].name,
                         sizeof g->tensors[0], name);
    return i < 0 ? NULL : &g->tensors[i];
}

/* ---- the parse ---------------------------------------------------------------------------------------------- */

static int is_bitnet_arch(const char *arch) {
    return arch && (!strcmp(arch, "bitnet") || !strcmp(arch, "bitnet-25") || !strcmp(arch, "bitnet-b1.58"));
}

static int parse(bg_gguf *g, char *err, size_t err_len) {
    cursor cur = {g->base, g->size, 0, g->path, err, err_len}, *c = &cur;
    int rc;
    if (need(c, 4, "magic")) return BG_GGUF_EFORMAT;
    if (memcmp(g->base, "GGUF", 4) != 0) {
        char shown[20];
        int k = 0;
        for (int i = 0; i < 4; i++) {
            unsigned char ch = g->base[i];
            k += snprintf(shown + k, sizeof shown - (size_t)k, ch >= 32 && ch < 127 ? "%c" : "\\x%02x", ch);
        }
        return fail(c, BG_GGUF_EFORMAT, "not a GGUF file: magic b'%s', expected b'GGUF'", shown);
    }
    c->pos = 4;
    if (rd_u32(c, &g->version, "version")) return BG_GGUF_EFORMAT;
    if (g->version != 2 && g->version != 3)
        return fail(c, BG_GGUF_EFORMAT, "unsupported GGUF version %u (expected 2 or 3)", g->version);
    if (rd_u64(c, &g->n_tensors, "tensor count") || rd_u64(c, &g->n_kv, "metadata count")) return BG_GGUF_EFORMAT;
    /* every KV pair takes >= 12 bytes and every tensor info >= 24: reject lying counts before allocating */
    if (g->n_kv > c->size / 12 || g->n_tensors > c->size / 24)
        return fail(c, BG_GGUF_EFORMAT, "header claims %llu metadata pairs and %llu tensors; the file is too small",
                    (unsigned long long)g->n_kv, (unsigned long long)g->n_tensors);

    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) return fail(c, BG_GGUF_ENOMEM, "out of memory for the header");

    for (uint64_t i = 0; i < g->n_kv; i++) {
        bg_gguf_kv *kv = &g->kv[i];
        const uint8_t *k;
        uint64_t klen;
        char what[320];
        snprintf(what, sizeof what, "metadata key #%llu", (unsigned long long)i);
        if ((rc = rd_string(c, &k, &klen, what))) return rc;
        if (!(kv->key = dup_bytes(k, (size_t)klen))) return fail(c, BG_GGUF_ENOMEM, "out of memory");
        snprintf(what, sizeof what, "metadata '%.250s'", kv->key);
        if ((rc = rd_vtype(c, &kv->type, what))) return rc;
        if ((rc = read_value(c, kv, what))) return rc;
    }
    const char *dup;
    g->kv_order = sort_names((const char *const *)&g->kv[0].key, sizeof g->kv[0], g->n_kv, &dup);
    if (!g->kv_order) return fail(c, BG_GGUF_ENOMEM, "out of memory");
    if (dup) return fail(c, BG_GGUF_EFORMAT, "metadata key '%.250s' appears twice", dup);

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const bg_gguf_kv *al = bg_gguf_find_kv(g, "general.alignment");
    if (al) {
        int64_t a;
        if (al->type == BG_GGUF_BOOL || bg_gguf_kv_int(al, &a) || a <= 0 || (a & (a - 1)) || a > (1 << 20))
            return fail(c, BG_GGUF_EFORMAT, "general.alignment is not a power of two up to 2^20");
        g->alignment = (uint32_t)a;
    }
    const bg_gguf_kv *arch = bg_gguf_find_kv(g, "general.architecture");
    g->arch = arch && arch->type == BG_GGUF_STRING ? arch->str : NULL;

    for (uint64_t i = 0; i < g->n_tensors; i++) {
        bg_gguf_tensor *t = &g->tensors[i];
        const uint8_t *s;
        uint64_t len;
        uint32_t n_dims, type_id;
        char what[320];
        snprintf(what, sizeof what, "name of tensor #%llu", (unsigned long long)i);
        if ((rc = rd_string(c, &s, &len, what))) return rc;
        if (!(t->name = dup_bytes(s, (size_t)len))) return fail(c, BG_GGUF_ENOMEM, "out of memory");
        snprintf(what, sizeof what, "n_dims of tensor '%.250s'", t->name);
        if ((rc = rd_u32(c, &n_dims, what))) return rc;
        if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
            return fail(c, BG_GGUF_EFORMAT, "tensor '%.250s' has n_dims %u, expected 1..%d", t->name, n_dims,
                        GGUF_MAX_DIMS);
        t->n_dims = (int)n_dims;
        uint64_t n_elements = 1;
        for (int d = 0; d < t->n_dims; d++) {
            snprintf(what, sizeof what, "dimension %d of tensor '%.250s'", d, t->name);
            if ((rc = rd_u64(c, &t->ne[d], what))) return rc;
            if (t->ne[d] == 0 || t->ne[d] > (1ull << 40))
                return fail(c, BG_GGUF_EFORMAT, "tensor '%.250s' has dimension %llu, expected 1..2^40", t->name,
                            (unsigned long long)t->ne[d]);
            if (n_elements > (1ull << 48) / t->ne[d])  /* the product would pass 2^48 (and might overflow) */
                return fail(c, BG_GGUF_EFORMAT, "tensor '%.250s' has more than 2^48 elements: the shape product "
                            "overflows", t->name);
            n_elements *= t->ne[d];
        }
        for (int d = t->n_dims; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        snprintf(what, sizeof what, "type of tensor '%.250s'", t->name);
        if ((rc = rd_u32(c, &type_id, what))) return rc;
        t->type_id = (int)type_id;
        snprintf(what, sizeof what, "offset of tensor '%.250s'", t->name);
        if ((rc = rd_u64(c, &t->offset, what))) return rc;
    }
    g->tensor_order = sort_names((const char *const *)&g->tensors[0].name, sizeof g->tensors[0], g->n_tensors, &dup);
    if (!g->tensor_order) return fail(c, BG_GGUF_ENOMEM, "out of memory");
    if (dup) {
        set_err(err, err_len, "%s: tensor '%.250s' appears twice", g->path, dup);
        return BG_GGUF_EFORMAT;
    }

    const uint64_t data_start = ((uint64_t)c->pos + g->alignment - 1) / g->alignment * g->alignment;
    g->data_offset = data_start;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        bg_gguf_tensor *t = &g->tensors[i];
        char why[256];
        if (t->type_id == TL2_OR_MXFP4) {
            if (!is_bitnet_arch(g->arch) && !bg_gguf_find_kv(g, "bitgguf.tl_rule")) {
                set_err(err, err_len, "%s: tensor '%.250s' has type id 39, which is MXFP4 in upstream ggml "
                        "(unsupported) and TL2 only in bitnet.cpp's BitNet architectures; arch is '%s'", g->path,
                        t->name, g->arch ? g->arch : "(none)");
                return BG_GGUF_EUNSUPPORTED;
            }
            g->tl2_noted = 1;
        }
        t->type = bg_gguf_type_of(t->type_id);
        if (!t->type) {
            char known[256] = "";
            for (size_t k = 0; k < sizeof TYPES / sizeof TYPES[0]; k++)
                snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s=%d", k ? ", " : "",
                         TYPES[k].name, TYPES[k].type_id);
            set_err(err, err_len, "%s: tensor '%.250s' has unsupported ggml type %d (known: %s)", g->path, t->name,
                    t->type_id, known);
            return BG_GGUF_EUNSUPPORTED;
        }
        if (bg_gguf_nbytes(t->type, t->ne, t->n_dims, &t->nbytes, why, sizeof why)) {
            set_err(err, err_len, "%s: tensor '%.250s' of type %s with ggml dims (%llu, %llu, %llu, %llu): %s",
                    g->path, t->name, t->type->name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                    (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], why);
            return BG_GGUF_EFORMAT;
        }
        if (t->offset % g->alignment) {
            set_err(err, err_len, "%s: tensor '%.250s' offset %llu is not a multiple of the alignment %u", g->path,
                    t->name, (unsigned long long)t->offset, g->alignment);
            return BG_GGUF_EFORMAT;
        }
        if (data_start > g->size || t->offset > g->size - data_start || t->nbytes > g->size - data_start - t->offset) {
            set_err(err, err_len, "%s: tensor '%.250s' (%s) needs bytes %llu..%llu but the file has %zu: truncated "
                    "or bad offset", g->path, t->name, t->type->name, (unsigned long long)(data_start + t->offset),
                    (unsigned long long)(data_start + t->offset + t->nbytes), g->size);
            return BG_GGUF_EFORMAT;
        }
        t->offset += data_start;
        t->data = g->base + t->offset;
    }
    return BG_GGUF_OK;
}

static bg_gguf *new_gguf(const char *path) {
    bg_gguf *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->path = dup_bytes((const uint8_t *)path, strlen(path));
    if (!g->path) {
        free(g);
        return NULL;
    }
    return g;
}

static int finish(bg_gguf *g, bg_gguf **out, char *err, size_t err_len) {
    int rc = parse(g, err, err_len);
    if (rc) {
        bg_gguf_close(g);
        return rc;
    }
    *out = g;
    return BG_GGUF_OK;
}

int bg_gguf_parse_memory(const void *buf, size_t size, const char *name, bg_gguf **out, char *err, size_t err_len) {
    *out = NULL;
    bg_gguf *g = new_gguf(name ? name : "<memory>");
    uint8_t *copy = malloc(size ? size : 1);
    if (!g || !copy) {
        free(copy);
        bg_gguf_close(g);
        set_err(err, err_len, "%s: out of memory", name ? name : "<memory>");
        return BG_GGUF_ENOMEM;
    }
    if (size) memcpy(copy, buf, size);
    g->base = copy;
    g->size = size;
    if (size == 0) {
        set_err(err, err_len, "%s: empty file, expected a GGUF header", g->path);
        bg_gguf_close(g);
        return BG_GGUF_EFORMAT;
    }
    return finish(g, out, err, err_len);
}

int bg_gguf_open(const char *path, bg_gguf **out, char *err, size_t err_len) {
    *out = NULL;
    if (!path) {
        set_err(err, err_len, "no path given");
        return BG_GGUF_EIO;
    }
#if defined(BG_NO_MMAP)
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_err(err, err_len, "%s: cannot open", path);
        return BG_GGUF_EIO;
    }
    size_t cap = 1 << 20, size = 0;
    uint8_t *data = malloc(cap);
    for (;;) {
        if (!data) break;
        size += fread(data + size, 1, cap - size, f);
        if (size < cap) break;
        uint8_t *bigger = realloc(data, cap * 2);
        if (!bigger) { free(data); data = NULL; break; }
        data = bigger;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!data || bad) {
        free(data);
        set_err(err, err_len, "%s: cannot read the file", path);
        return bad ? BG_GGUF_EIO : BG_GGUF_ENOMEM;
    }
    int rc = bg_gguf_parse_memory(data, size, path, out, err, err_len);
    free(data);
    return rc;
#else
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, err_len, "%s: cannot open: %s", path, strerror(errno));
        return BG_GGUF_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        set_err(err, err_len, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return BG_GGUF_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, err_len, "%s: not a regular file", path);
        close(fd);
        return BG_GGUF_EIO;
    }
    if (st.st_size == 0) {
        set_err(err, err_len, "%s: empty file, expected a GGUF header", path);
        close(fd);
        return BG_GGUF_EFORMAT;
    }
    bg_gguf *g = new_gguf(path);
    if (!g) {
        close(fd);
        set_err(err, err_len, "%s: out of memory", path);
        return BG_GGUF_ENOMEM;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);  /* the mapping stays valid */
    if (map == MAP_FAILED) {
        set_err(err, err_len, "%s: cannot map: %s", path, strerror(errno));
        bg_gguf_close(g);
        return BG_GGUF_EIO;
    }
    g->base = map;
    g->size = (size_t)st.st_size;
    g->mapped = 1;
    return finish(g, out, err, err_len);
#endif
}

void bg_gguf_close(bg_gguf *g) {
    if (!g) return;
    if (g->kv) {
        for (uint64_t i = 0; i < g->n_kv; i++) {
            free(g->kv[i].key);
            free(g->kv[i].str);
            free((void *)g->kv[i].strs);
            free(g->kv[i].str_lens);
        }
    }
    if (g->tensors)
        for (uint64_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    free(g->kv_order);
    free(g->tensor_order);
#if !defined(BG_NO_MMAP)
    if (g->mapped && g->base) munmap((void *)g->base, g->size);
    else free((void *)g->base);
#else
    free((void *)g->base);
#endif
    free(g->path);
    free(g);
}
