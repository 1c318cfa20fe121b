/* A small persistent thread pool for the engine: workers spin briefly between jobs (a forward pass runs ~150 jobs
 * per token, microseconds apart), then sleep on a condition variable, so idle threads never hold a busy core.
 * Jobs split their work dynamically (bg_pool_chunk): a thread that the OS preempts delays at most one chunk. */
#ifndef BITGGUF_THREADPOOL_H
#define BITGGUF_THREADPOOL_H

#include <stdatomic.h>

typedef struct bg_pool bg_pool;

/* A job: called once per thread, ith = 0 .. nth-1 (0 on the caller's thread). */
typedef void (*bg_pool_fn)(void *ctx, int ith, int nth);

/* A pool of n_threads (the caller counts as one: n_threads - 1 workers). NULL when threads cannot be started. */
bg_pool *bg_pool_create(int n_threads);
void bg_pool_destroy(bg_pool *p);
int bg_pool_size(const bg_pool *p);

/* Run fn on nth threads (nth <= size; the caller is thread 0) and return when every call has returned. */
void bg_pool_run(bg_pool *p, bg_pool_fn fn, void *ctx, int nth);
/* The same, with the caller spinning at most wait_us for the last worker before it sleeps (default 30 us, for
 * jobs of short chunks; a job whose chunks take longer passes more, so that it does not sleep on every job). */
void bg_pool_run_wait(bg_pool *p, bg_pool_fn fn, void *ctx, int nth, int wait_us);

/* Dynamic split of [0, n) into chunks: each call hands out the next chunk [*begin, *end), 0 when none is left.
 * Reset *next to 0 before the job. Which thread gets which chunk varies; the work of a chunk must not. */
static inline int bg_pool_chunk(atomic_int *next, int n, int chunk, int *begin, int *end) {
    int b = atomic_fetch_add_explicit(next, chunk, memory_order_relaxed);
    if (b >= n) return 0;
    *begin = b;
    *end = b + chunk < n ? b + chunk : n;
    return 1;
}

#endif
