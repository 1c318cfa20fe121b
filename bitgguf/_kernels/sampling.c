/* Token sampling: see sampling.h for the contract and the order of the steps. */
#include "sampling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bg_sampler_params bg_sampler_default_params(void) {
    bg_sampler_params p;
    p.temperature = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    p.seed = 0;
    return p;
}

/* ---- random numbers: splitmix64 seeds xoshiro256** (both fixed-width integer math: same on every platform) */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t bg_sampler_next_u64(bg_sampler *s) {
    uint64_t *r = s->rng;
    const uint64_t result = rotl(r[1] * 5, 7) * 9;
    const uint64_t t = r[1] << 17;
    r[2] ^= r[0];
    r[3] ^= r[1];
    r[1] ^= r[2];
    r[0] ^= r[3];
    r[2] ^= t;
    r[3] = rotl(r[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static double next_uniform(bg_sampler *s) { return (double)(bg_sampler_next_u64(s) >> 11) * (1.0 / 9007199254740992.0); }

static void seed_rng(bg_sampler *s) {
    uint64_t x = s->params.seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
}

/* ---- life cycle */

void bg_sampler_init(bg_sampler *s, const bg_sampler_params *params) {
    memset(s, 0, sizeof(*s));
    s->params = params ? *params : bg_sampler_default_params();
    seed_rng(s);
}

void bg_sampler_free(bg_sampler *s) {
    free(s->history);
    free(s->cand);
    free(s->stamp);
    s->history = NULL;
    s->cand = NULL;
    s->stamp = NULL;
    s->n_history = s->history_cap = 0;
    s->scratch_vocab = 0;
}

void bg_sampler_reset(bg_sampler *s) {
    s->n_history = 0;
    seed_rng(s);
}

int bg_sampler_accept(bg_sampler *s, int token) {
    const int64_t last_n = s->params.repeat_last_n;
    if (last_n == 0) return 0;
    if (s->n_history == s->history_cap) {
        if (last_n > 0 && s->history_cap >= 2 * last_n) {
            /* only the last last_n tokens can matter: slide them to the front instead of growing */
            memmove(s->history, s->history + s->n_history - last_n, (size_t)last_n * sizeof(int32_t));
            s->n_history = last_n;
        } else {
            int64_t cap = s->history_cap ? 2 * s->history_cap : (last_n > 0 ? 2 * last_n : 256);
            int32_t *h = (int32_t *)realloc(s->history, (size_t)cap * sizeof(int32_t));
            if (!h) return -1;
            s->history = h;
            s->history_cap = cap;
        }
    }
    s->history[s->n_history++] = (int32_t)token;
    return 0;
}

/* ---- sampling */

static int ensure_scratch(bg_sampler *s, int n_vocab) {
    if (s->scratch_vocab >= n_vocab) return 0;
    bg_candidate *c = (bg_candidate *)malloc((size_t)n_vocab * sizeof(bg_candidate));
    uint32_t *st = (uint32_t *)calloc((size_t)n_vocab, sizeof(uint32_t));
    if (!c || !st) {
        free(c);
        free(st);
        return -1;
    }
    free(s->cand);
    free(s->stamp);
    s->cand = c;
    s->stamp = st;
    s->epoch = 0;
    s->scratch_vocab = n_vocab;
    return 0;
}

/* Mark the distinct tokens of the penalty window in s->stamp with a fresh epoch; returns 1 if any penalty applies. */
static int mark_penalized(bg_sampler *s, int n_vocab) {
    const float pen = s->params.repeat_penalty;
    const int64_t last_n = s->params.repeat_last_n;
    if (pen == 1.0f || last_n == 0 || s->n_history == 0) return 0;
    if (++s->epoch == 0) { /* wrapped: old marks could alias the new epoch */
        memset(s->stamp, 0, (size_t)s->scratch_vocab * sizeof(uint32_t));
        s->epoch = 1;
    }
    int64_t start = (last_n > 0 && s->n_history > last_n) ? s->n_history - last_n : 0;
    for (int64_t i = start; i < s->n_history; i++) {
        int32_t t = s->history[i];
        if (t >= 0 && t < n_vocab) s->stamp[t] = s->epoch;
    }
    return 1;
}

/* llama.cpp's rule: shrink positive logits, push negative ones further down. */
static inline float penalize(float logit, float pen) { return logit > 0.0f ? logit / pen : logit * pen; }

/* Order: larger value first, lower id first on ties (so the result never depends on the sort algorithm). */
static inline int better_logit(const bg_candidate *a, const bg_candidate *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cmp_logit_desc(const void *pa, const void *pb) {
    const bg_candidate *a = (const bg_candidate *)pa, *b = (const bg_candidate *)pb;
    if (better_logit(a, b)) return -1;
    if (better_logit(b, a)) return 1;
    return 0;
}

/* Move the k best of c[0..n) to c[0..k), sorted best first (the rest stay in c[k..n)): a min-heap, O(n log k). */
static void top_k_select(bg_candidate *c, int n, int k) {
    /* heap in c[0..k): root is the worst of the kept candidates */
    for (int start = k / 2 - 1; start >= 0; start--) {
        int i = start;
        for (;;) {
            int l = 2 * i + 1, r = l + 1, w = i;
            if (l < k && better_logit(&c[w], &c[l])) w = l;
            if (r < k && better_logit(&c[w], &c[r])) w = r;
            if (w == i) break;
            bg_candidate t = c[i]; c[i] = c[w]; c[w] = t;
            i = w;
        }
    }
    for (int j = k; j < n; j++) {
        if (!better_logit(&c[j], &c[0])) continue;
        bg_candidate evicted = c[0]; /* swap, not overwrite: c[0..n) stays a permutation, so a retry can widen k */
        c[0] = c[j];
        c[j] = evicted;
        int i = 0;
        for (;;) {
            int l = 2 * i + 1, r = l + 1, w = i;
            if (l < k && better_logit(&c[w], &c[l])) w = l;
            if (r < k && better_logit(&c[w], &c[r])) w = r;
            if (w == i) break;
            bg_candidate t = c[i]; c[i] = c[w]; c[w] = t;
            i = w;
        }
    }
    qsort(c, (size_t)k, sizeof(bg_candidate), cmp_logit_desc);
}

/* Softmax of the logits into p (temperature 1). Returns the max logit. */
static float softmax(bg_candidate *c, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) if (c[i].logit > mx) mx = c[i].logit;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        c[i].p = expf(c[i].logit - mx);
        sum += c[i].p;
    }
    const float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) c[i].p *= inv;
    return mx;
}

static int argmax_penalized(bg_sampler *s, const float *logits, int n_vocab, int penalized) {
    const float pen = s->params.repeat_penalty;
    int best = 0;
    float bv = (penalized && s->stamp[0] == s->epoch) ? penalize(logits[0], pen) : logits[0];
    for (int i = 1; i < n_vocab; i++) {
        float v = logits[i];
        if (penalized && s->stamp[i] == s->epoch) v = penalize(v, pen);
        if (v > bv) { /* strict '>': the lowest index wins ties */
            bv = v;
            best = i;
        }
    }
    return best;
}

int bg_sampler_sample(bg_sampler *s, const float *logits, int n_vocab) {
    if (n_vocab <= 0 || !logits) return -1;
    if (ensure_scratch(s, n_vocab) != 0) return -1;
    const bg_sampler_params *P = &s->params;
    const int penalized = mark_penalized(s, n_vocab);

    if (!(P->temperature > 0.0f)) return argmax_penalized(s, logits, n_vocab, penalized);

    bg_candidate *c = s->cand;
    int n = n_vocab;
    for (int i = 0; i < n; i++) {
        c[i].id = i;
        c[i].logit = (penalized && s->stamp[i] == s->epoch) ? penalize(logits[i], P->repeat_penalty) : logits[i];
    }
    int sorted = 0;
    if (P->top_k > 0 && P->top_k < n) {
        top_k_select(c, n, P->top_k);
        n = P->top_k;
        sorted = 1;
    }
    /* probabilities at temperature 1 over what top-k left; all -inf (or NaN) logits: nothing to draw from */
    if (!(softmax(c, n) > -INFINITY)) return argmax_penalized(s, logits, n_vocab, penalized);

    if (P->top_p < 1.0f) {
        if (!sorted) {
            /* Sorting the whole vocabulary is the slow part. top-p and min-p each keep a prefix of the sorted order
             * and min-p only compares probability ratios, so dropping the tokens min-p would drop anyway before the
             * sort changes nothing: the top-p sums below still use probabilities normalized over all tokens. */
            if (P->min_p > 0.0f) {
                float pmax = 0.0f;
                for (int i = 0; i < n; i++) if (c[i].p > pmax) pmax = c[i].p;
                const float thr = P->min_p * pmax;
                int m = 0;
                for (int i = 0; i < n; i++) if (c[i].p >= thr) c[m++] = c[i];
                n = m;
            }
            /* Only the top-p prefix needs sorting: select the best k, widen k until their mass reaches top_p. */
            for (int k = 256;; k *= 4) {
                if (k >= n) {
                    qsort(c, (size_t)n, sizeof(bg_candidate), cmp_logit_desc);
                    break;
                }
                top_k_select(c, n, k);
                double mass = 0.0;
                for (int i = 0; i < k; i++) mass += c[i].p;
                if (mass >= P->top_p) break;
            }
            sorted = 1;
        }
        double cum = 0.0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += c[i].p;
            if (cum >= P->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }

    if (P->min_p > 0.0f) {
        float pmax = 0.0f;
        for (int i = 0; i < n; i++) if (c[i].p > pmax) pmax = c[i].p;
        const float thr = P->min_p * pmax;
        int m = 0;
        for (int i = 0; i < n; i++) if (c[i].p >= thr) c[m++] = c[i];
        n = m;
    }

    /* temperature on the survivors, then draw from their softmax by walking the cumulative sum */
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) if (c[i].logit > mx) mx = c[i].logit;
    const float inv_t = 1.0f / P->temperature;
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        c[i].p = expf((c[i].logit - mx) * inv_t);
        total += c[i].p;
    }
    const double u = next_uniform(s) * total;
    double cum = 0.0;
    for (int i = 0; i < n; i++) {
        cum += c[i].p;
        if (u < cum) return c[i].id;
    }
    return c[n - 1].id; /* u landed on the rounding error at the very end */
}
