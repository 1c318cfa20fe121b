/* Token sampling over plain C structs: greedy, repetition penalty, top-k, top-p, min-p, temperature.
 *
 * No Python here: the engine (and, later, C programs that embed bitgguf) call this directly.
 * The order of the steps is llama.cpp's: penalties, top-k, (softmax), top-p, min-p, temperature, sample.
 * The random numbers come from the sampler's own xoshiro256** generator seeded from params.seed with
 * splitmix64, so the same seed gives the same tokens on every platform.
 */
#ifndef BITGGUF_SAMPLING_H
#define BITGGUF_SAMPLING_H

#include <stdint.h>

typedef struct {
    float temperature;     /* <= 0: greedy argmax (lowest index on ties) */
    int32_t top_k;         /* <= 0 or >= n_vocab: off */
    float top_p;           /* >= 1: off */
    float min_p;           /* <= 0: off */
    float repeat_penalty;  /* 1: off; logit > 0 ? logit / penalty : logit * penalty */
    int32_t repeat_last_n; /* how many accepted tokens the penalty looks back at; 0: off; < 0: all of them */
    uint64_t seed;
} bg_sampler_params;

/* A candidate while sampling: its id, its (penalized) logit, its probability. */
typedef struct {
    int32_t id;
    float logit;
    float p;
} bg_candidate;

typedef struct {
    bg_sampler_params params;
    uint64_t rng[4];

    /* accepted tokens, oldest first; only the last repeat_last_n matter */
    int32_t *history;
    int64_t n_history;
    int64_t history_cap;

    /* scratch sized to the vocabulary on first use (and regrown when it grows) */
    bg_candidate *cand;
    uint32_t *stamp;       /* per-token mark so each token is penalized once however often it repeats */
    uint32_t epoch;
    int32_t scratch_vocab;
} bg_sampler;

/* The CLI's defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, no penalty, last 64, seed 0. */
bg_sampler_params bg_sampler_default_params(void);

/* Set up a sampler (no allocation until the first sample). */
void bg_sampler_init(bg_sampler *s, const bg_sampler_params *params);

/* Release the sampler's buffers; the struct itself belongs to the caller. */
void bg_sampler_free(bg_sampler *s);

/* Forget the history and restart the random stream from params.seed. */
void bg_sampler_reset(bg_sampler *s);

/* Pick a token from logits[0..n_vocab). logits are read, never written.
 * Returns the token id, or -1 when n_vocab <= 0 or memory runs out. Does not record the token: call accept. */
int bg_sampler_sample(bg_sampler *s, const float *logits, int n_vocab);

/* Record a token (prompt or generated) for the repetition penalty. Returns 0, or -1 when memory runs out. */
int bg_sampler_accept(bg_sampler *s, int token);

/* The next raw 64-bit value of the sampler's generator (exposed for tests of determinism). */
uint64_t bg_sampler_next_u64(bg_sampler *s);

#endif
