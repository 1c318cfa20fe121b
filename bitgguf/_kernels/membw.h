/* Read-bandwidth probe for the benchmarks: what "at the memory limit" means on this machine. */
#ifndef BITGGUF_MEMBW_H
#define BITGGUF_MEMBW_H
#include <stddef.h>
#include <stdint.h>

/* Sum `n_words` 64-bit words of `buf` with `n_threads` OpenMP threads (static split, like the matvec kernels),
 * each thread's range as one sequential stream or (two_streams) as two halves side by side with a software prefetch,
 * as the decode kernels read rows: the faster of the two is what decode can reach (one stream on Zen 5, two on
 * Sapphire Rapids). The sum is returned so that the compiler cannot drop the reads. */
uint64_t bg_membw_read(const uint64_t *buf, size_t n_words, int n_threads, int two_streams);

#endif
