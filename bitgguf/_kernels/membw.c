/* Read-bandwidth probe: a streaming sum, split across threads as the matvec kernels split rows. */
#include "membw.h"

/* Sum of words [begin, end): one sequential stream, or (two_streams) the range's halves side by side with a
 * software prefetch 2 KiB ahead in each, the way the decode kernels read their rows (bg_dot_i8_rows). */
static uint64_t range_sum(const uint64_t *buf, size_t begin, size_t end, int two_streams) {
    /* four independent accumulators keep several loads in flight */
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = begin;
    if (two_streams) {
        const size_t half = (end - begin) / 2 / 8 * 8;
        const uint64_t *a = buf + begin, *b = a + half;
        for (size_t k = 0; k < half; k += 8) {
            __builtin_prefetch(a + k + 256);
            __builtin_prefetch(b + k + 256);
            s0 += a[k] + a[k + 4] + b[k] + b[k + 4];
            s1 += a[k + 1] + a[k + 5] + b[k + 1] + b[k + 5];
            s2 += a[k + 2] + a[k + 6] + b[k + 2] + b[k + 6];
            s3 += a[k + 3] + a[k + 7] + b[k + 3] + b[k + 7];
        }
        i = begin + 2 * half;
    }
    for (; i + 4 <= end; i += 4) {
        s0 += buf[i];
        s1 += buf[i + 1];
        s2 += buf[i + 2];
        s3 += buf[i + 3];
    }
    for (; i < end; i++) s0 += buf[i];
    return s0 + s1 + s2 + s3;
}

uint64_t bg_membw_read(const uint64_t *buf, size_t n_words, int n_threads, int two_streams) {
    uint64_t total = 0;
    if (n_threads < 1) n_threads = 1;
    #pragma omp parallel for num_threads(n_threads) schedule(static) reduction(+:total)
    for (long t = 0; t < n_threads; t++) {
        size_t begin = n_words * (size_t)t / (size_t)n_threads, end = n_words * (size_t)(t + 1) / (size_t)n_threads;
        total += range_sum(buf, begin, end, two_streams);
    }
    return total;
}
