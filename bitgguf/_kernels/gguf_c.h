/* GGUF reader in C over a memory map, for the embedding API (bitgguf.h): no Python.
 *
 * Same discipline as bitgguf/gguf.py: every length, count, type and offset is checked against the file's size
 * before it is used, nothing outside the file is ever read, and errors name the file, the key or tensor, what
 * was found and what was expected. Keys, tensor names and strings must be valid UTF-8.
 *
 * The tensor-size table below (bg_gguf_types) is the one place in C that knows how many bytes a tensor of each
 * ggml type takes; it mirrors bitgguf/types.py.
 */
#ifndef BITGGUF_GGUF_C_H
#define BITGGUF_GGUF_C_H

#include <stddef.h>
#include <stdint.h>

/* Value types (GGUF spec). */
enum {
    BG_GGUF_UINT8 = 0, BG_GGUF_INT8 = 1, BG_GGUF_UINT16 = 2, BG_GGUF_INT16 = 3, BG_GGUF_UINT32 = 4,
    BG_GGUF_INT32 = 5, BG_GGUF_FLOAT32 = 6, BG_GGUF_BOOL = 7, BG_GGUF_STRING = 8, BG_GGUF_ARRAY = 9,
    BG_GGUF_UINT64 = 10, BG_GGUF_INT64 = 11, BG_GGUF_FLOAT64 = 12, BG_GGUF_NTYPES = 13
};

/* Status codes: the same numbers as bitgguf.h's bitgguf_status. */
enum { BG_GGUF_OK = 0, BG_GGUF_EIO = 1, BG_GGUF_EFORMAT = 2, BG_GGUF_EUNSUPPORTED = 3, BG_GGUF_ENOMEM = 4 };

/* Tensor types: how many bytes a tensor takes. */
typedef enum { BG_SIZE_BLOCKS = 0, BG_SIZE_I2S = 1, BG_SIZE_TL1 = 2, BG_SIZE_TL2 = 3 } bg_gguf_size_rule;

typedef struct {
    const char *name;
    int type_id;     /* ggml id */
    int block_size;  /* weights per block along a row (rows must be a multiple) */
    int block_bytes; /* bytes per block (BG_SIZE_BLOCKS, BG_SIZE_I2S) */
    int ternary;
    int size_rule;   /* bg_gguf_size_rule: I2_S adds a 32-byte tail (the f32 scale); TL1/TL2 are sized per matrix */
} bg_gguf_type;

/* The row for a ggml type id (id 39 is TL2: the caller decides whether the file means bitnet.cpp's TL2). */
const bg_gguf_type *bg_gguf_type_of(int type_id);

/* Bytes of a tensor of type t and ggml dims ne[0..n_dims). Returns 0, or -1 with the reason in why (the shape
 * cannot be held by the type). */
int bg_gguf_nbytes(const bg_gguf_type *t, const uint64_t *ne, int n_dims, uint64_t *nbytes, char *why,
                   size_t why_len);

/* TL1 / TL2 (tl2 = 0 / 1): the tiling (BM, BK, bm) of an (M, K) = (rows, cols) matrix under bitgguf/
 * ternary_layouts.py's rule 1 (bitnet.cpp's presets, else the generic rule). 0, or -1 with the reason (the layout
 * cannot hold the shape). */
int bg_gguf_tl_params(int tl2, int64_t M, int64_t K, int *BM, int *BK, int *bm, char *why, size_t why_len);
/* Byte offset of a TL1 / TL2 tensor's f32 scale (after its packed data). */
uint64_t bg_gguf_tl_scale_offset(int tl2, int64_t M, int64_t K);

typedef struct {
    char *key;                  /* NUL-terminated copy */
    uint32_t type;              /* BG_GGUF_* */
    uint32_t elem_type;         /* arrays: the element type */
    uint64_t count;             /* arrays: elements; strings: bytes */
    const uint8_t *data;        /* in the map: a scalar's bytes, a string's bytes, an array's first element */
    char *str;                  /* strings: a NUL-terminated copy */
    const char **strs;          /* arrays of strings: each element's bytes in the map (count of them) */
    size_t *str_lens;
} bg_gguf_kv;

typedef struct {
    char *name;                 /* NUL-terminated copy */
    int n_dims;
    uint64_t ne[4];             /* ggml order: ne[0] is the row length */
    int type_id;
    const bg_gguf_type *type;
    uint64_t offset;            /* absolute offset of the data in the file */
    uint64_t nbytes;
    const uint8_t *data;
} bg_gguf_tensor;

typedef struct {
    char *path;
    const uint8_t *base;        /* the whole file */
    size_t size;
    int mapped;                 /* 1: base is an mmap; 0: malloc'd (from memory, or no mmap on this platform) */
    uint32_t version;
    uint64_t n_kv, n_tensors;
    bg_gguf_kv *kv;             /* in file order */
    bg_gguf_tensor *tensors;    /* in file order */
    uint32_t alignment;
    uint64_t data_offset;
    const char *arch;           /* general.architecture, or NULL */
    int tl2_noted;              /* a tensor of id 39 was read as TL2 */
    /* lookup: indices sorted by key / name */
    uint32_t *kv_order, *tensor_order;
} bg_gguf;

/* Map and parse a file. Returns BG_GGUF_OK with *out set, or a status with the message in err (*out NULL). */
int bg_gguf_open(const char *path, bg_gguf **out, char *err, size_t err_len);
/* Parse a copy of size bytes at buf (name is used in messages). */
int bg_gguf_parse_memory(const void *buf, size_t size, const char *name, bg_gguf **out, char *err, size_t err_len);
void bg_gguf_close(bg_gguf *g);

const bg_gguf_kv *bg_gguf_find_kv(const bg_gguf *g, const char *key);
const bg_gguf_tensor *bg_gguf_find_tensor(const bg_gguf *g, const char *name);

/* Scalar value readers: 0, or -1 when the value has another type. int: any integer type or bool (uint64 above
 * INT64_MAX is -1); float: float32/64 or any integer type. */
int bg_gguf_kv_int(const bg_gguf_kv *kv, int64_t *out);
int bg_gguf_kv_float(const bg_gguf_kv *kv, double *out);
/* Element i of an array of numbers as int / float (same rules), 0 or -1. */
int bg_gguf_kv_array_int(const bg_gguf_kv *kv, uint64_t i, int64_t *out);
int bg_gguf_kv_array_float(const bg_gguf_kv *kv, uint64_t i, double *out);

#endif
