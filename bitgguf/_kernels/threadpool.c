/* The engine's thread pool (see threadpool.h).
 *
 * Why not `omp parallel for` per matvec: each one is a fork/join, and with OpenMP's default spin-waiting two
 * threads on a machine whose other core is busy lose whole scheduler slices at every join (decode fell from 10 to
 * ~1 tok/s). Here a job is published by bumping a generation counter; workers spin on it for at most
 * BG_POOL_SPIN_US (env BITGGUF_SPIN_US), then sleep on a condition variable. The caller waits the same way for
 * the last worker, so a preempted worker gets the caller's core instead of competing with a spinning thread.
 * Without pthreads (Windows builds) the pool runs every job on the calling thread. */
#include "threadpool.h"

#include <stdlib.h>

#if !defined(_WIN32)
#include <pthread.h>
#include <sched.h>
#include <time.h>

#define BG_POOL_SPIN_US 200  /* a worker's wait for the next job (jobs come microseconds apart while a pass runs) */
#define BG_POOL_WAIT_US 30   /* the caller's wait for the last worker: a job's threads finish within one chunk of
                              * each other, so a longer wait means the worker was preempted: give it this core */

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpu_relax(void) { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpu_relax(void) { __asm__ __volatile__("yield"); }
#else
static inline void cpu_relax(void) {}
#endif

struct bg_pool {
    int size;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake;      /* workers sleep here for the next generation */
    pthread_cond_t done;      /* the caller sleeps here for the last worker */
    atomic_uint gen;          /* bumped once per job */
    atomic_int pending;       /* workers still running the current job */
    atomic_int sleepers;      /* workers asleep on `wake` (or about to be) */
    atomic_int caller_asleep;
    int stop;
    bg_pool_fn fn;
    void *ctx;
    int nth;
    long spin_ns, wait_ns;
};

typedef struct {
    bg_pool *p;
    int ith;
} worker_arg;

#define MIN_L(a, b) ((a) < (b) ? (a) : (b))

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void *worker_main(void *arg_) {
    worker_arg arg = *(worker_arg *)arg_;
    free(arg_);
    bg_pool *p = arg.p;
    unsigned seen = 0;  /* gen's value at creation: a job published before this thread starts is still seen */
    for (;;) {
        /* wait for the next generation: spin (checking the clock every 64 turns), then sleep */
        unsigned g;
        long start = 0;
        for (int turn = 0; (g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen; turn++) {
            if ((turn & 63) == 63) {
                long t = now_ns();
                if (!start) start = t;
                else if (t - start > p->spin_ns) {
                    pthread_mutex_lock(&p->mu);
                    atomic_fetch_add(&p->sleepers, 1);
                    while (atomic_load(&p->gen) == seen) pthread_cond_wait(&p->wake, &p->mu);
                    atomic_fetch_sub(&p->sleepers, 1);
                    pthread_mutex_unlock(&p->mu);
                    start = 0;
                }
            }
            cpu_relax();
        }
        seen = g;
        if (p->stop) break;
        if (arg.ith < p->nth) p->fn(p->ctx, arg.ith, p->nth);
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_asleep)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

/* Publish a job (or the stop) to every worker. */
static void publish(bg_pool *p) {
    atomic_store(&p->pending, p->size - 1);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_seq_cst);
    /* a worker counts itself in `sleepers` under the mutex before it re-checks gen, so either it sees the new gen
     * or we see it and wake it under the same mutex: no lost wake-up */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
}

bg_pool *bg_pool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    bg_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->size = n_threads;
    const char *env = getenv("BITGGUF_SPIN_US");
    p->spin_ns = 1000L * (env ? atol(env) : BG_POOL_SPIN_US);
    p->wait_ns = 1000L * BG_POOL_WAIT_US;
    if (p->wait_ns > p->spin_ns) p->wait_ns = p->spin_ns;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->caller_asleep, 0);
    p->threads = calloc((size_t)n_threads, sizeof(pthread_t));
    if (!p->threads) {
        free(p);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *arg = malloc(sizeof *arg);
        if (!arg || (arg->p = p, arg->ith = i, pthread_create(&p->threads[i], NULL, worker_main, arg)) != 0) {
            free(arg);
            p->size = i;  /* stop the ones already started */
            bg_pool_destroy(p);
            return NULL;
        }
    }
    return p;
}

void bg_pool_destroy(bg_pool *p) {
    if (!p) return;
    p->stop = 1;
    publish(p);
    for (int i = 1; i < p->size; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

int bg_pool_size(const bg_pool *p) { return p ? p->size : 1; }

void bg_pool_run(bg_pool *p, bg_pool_fn fn, void *ctx, int nth) { bg_pool_run_wait(p, fn, ctx, nth, -1); }

void bg_pool_run_wait(bg_pool *p, bg_pool_fn fn, void *ctx, int nth, int wait_us) {
    if (!p || p->size == 1 || nth <= 1) {
        fn(ctx, 0, 1);
        return;
    }
    if (nth > p->size) nth = p->size;
    p->fn = fn;
    p->ctx = ctx;
    p->nth = nth;
    publish(p);
    fn(ctx, 0, nth);
    const long wait_ns = wait_us < 0 ? p->wait_ns : MIN_L(1000L * wait_us, p->spin_ns);
    long start = 0;
    for (int turn = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; turn++) {
        if ((turn & 63) == 63) {
            long t = now_ns();
            if (!start) start = t;
            else if (t - start > wait_ns) {
                /* a worker is late (preempted?): give it this core */
                pthread_mutex_lock(&p->mu);
                atomic_store(&p->caller_asleep, 1);
                while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->done, &p->mu);
                atomic_store(&p->caller_asleep, 0);
                pthread_mutex_unlock(&p->mu);
                break;
            }
        }
        cpu_relax();
    }
}

#else /* no pthreads: one thread */

struct bg_pool {
    int size;
};

bg_pool *bg_pool_create(int n_threads) {
    (void)n_threads;
    bg_pool *p = calloc(1, sizeof *p);
    if (p) p->size = 1;
    return p;
}

void bg_pool_destroy(bg_pool *p) { free(p); }

int bg_pool_size(const bg_pool *p) { return p ? p->size : 1; }

void bg_pool_run(bg_pool *p, bg_pool_fn fn, void *ctx, int nth) {
    (void)p;
    (void)nth;
    fn(ctx, 0, 1);
}

void bg_pool_run_wait(bg_pool *p, bg_pool_fn fn, void *ctx, int nth, int wait_us) {
    (void)wait_us;
    bg_pool_run(p, fn, ctx, nth);
}
#endif
