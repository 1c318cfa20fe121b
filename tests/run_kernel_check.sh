#!/bin/sh
# Build tests/kernel_check.c with the kernel sources and run it: natively, or with `aarch64` as the first argument
# cross-compiled for aarch64 and run under qemu-aarch64 (Debian: apt-get install gcc-aarch64-linux-gnu qemu-user).
# The emulated CPU ("max") has NEON and dotprod, so both NEON levels are checked against scalar.
set -e
here=$(cd "$(dirname "$0")" && pwd)
k="$here/../bitgguf/_kernels"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
srcs="$k/cpu.c $k/kernels.c $k/i2s_*.c $k/gemm_*.c $k/tq2_*.c $k/tq1_*.c $k/tlr*.c $k/tl2*.c $k/repack.c $k/head_*.c $k/engine_avx2.c $k/engine_avx512.c $k/attn_avx2.c $k/attn_avx512.c"
flags="-O2 -std=gnu11 -Wall -Wextra -Werror -Wno-unused-function -Wno-unknown-pragmas -fno-strict-aliasing -ffp-contract=off -I$k"
if [ "$1" = aarch64 ]; then
    aarch64-linux-gnu-gcc $flags -static -o "$out/kernel_check" "$here/kernel_check.c" $srcs -lm
    qemu-aarch64 -cpu max "$out/kernel_check"
else
    ${CC:-cc} $flags -o "$out/kernel_check" "$here/kernel_check.c" $srcs -lm
    "$out/kernel_check"
fi
