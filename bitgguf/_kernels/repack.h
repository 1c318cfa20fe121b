/* Load-time repack of TL1 / TL2 tensors into the runtime's I2_ROWS rows (see repack.c, tlr.c); TL2 only where it is
 * not read in place (tl2.h). */
#ifndef BITGGUF_REPACK_H
#define BITGGUF_REPACK_H
#include <stdint.h>

/* tl_type 1 (TL1) or 2 (TL2); src: the tensor's packed data (without the scale); (M, K) = (rows, cols); (BM, BK, bm):
 * its tiling (ternary_layouts.tl_params); dst: M * K / 4 bytes. Returns 0; -1 if an index or magnitude is out of
 * range (dst is then unusable); -2 for parameters the layout cannot have; -3 out of memory. */
int bg_tl_to_i2_rows(int tl_type, const uint8_t *src, int M, int K, int BM, int BK, int bm, uint8_t *dst,
                     int n_threads);

#endif
