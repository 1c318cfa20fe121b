/* Read-bandwidth probe: a plain streaming sum, split across threads as the matvec kernels split rows. */
#include "membw.h"

uint64_t bg_membw_read(const uint64_t *buf, size_t n_words, int n_threads) {
    uint64_t total = 0;
    if (n_threads < 1) n_threads = 1;
    #pragma omp parallel for num_threads(n_threads) schedule(static) reduction(+:total)
    for (long t = 0; t < n_threads; t++) {
        size_t begin = n_words * (size_t)t / (size_t)n_threads, end = n_words * (size_t)(t + 1) / (size_t)n_threads;
        /* four independent accumulators keep several loads in flight */
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        size_t i = begin;
        for (; i + 4 <= end; i += 4) {
            s0 += buf[i];
            s1 += buf[i + 1];
            s2 += buf[i + 2];
            s3 += buf[i + 3];
        }
        for (; i < end; i++) s0 += buf[i];
        total += s0 + s1 + s2 + s3;
    }
    return total;
}
