/* One core's int8 multiply-accumulate peak per ISA level, for the benchmarks: what "at the compute limit" means
 * for a prompt on this machine (membw.h is the same for decode and memory). */
#ifndef BITGGUF_INT8_PEAK_H
#define BITGGUF_INT8_PEAK_H
#include "cpu.h"

/* MAC/s of one thread running independent chains of the level's int8 dot-product instruction for about `seconds`
 * of its CPU time (the best of 5 passes); 0 for a level this CPU lacks or that has no such loop (scalar). */
double bg_int8_peak(bg_isa isa, double seconds);

#endif
