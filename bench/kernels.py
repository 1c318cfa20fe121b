"""`python -m bench.kernels`: each matvec / matmul kernel of the type table at the 2B4T shapes on one thread, at
every ISA level this CPU runs, in GB/s of weights and GMAC/s (bench/kernels_bench.c, built here with the C compiler
from bitgguf/_kernels: no Python in the timed loops).

    python -m bench.kernels                      # every type, 0.5 s per measurement
    python -m bench.kernels --types I2_S,F16 --seconds 1

Rows: gemv_dram (one token, weights streamed from memory: compare with the read bandwidth), gemv_cache (one token,
rows in L2: the kernel's compute ceiling), gemm (16 tokens per row: the prompt path), int8_peak (the core's int8
multiply-accumulate peak per level: `--types int8` for these alone).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KERNELS = os.path.join(os.path.dirname(HERE), "bitgguf", "_kernels")
FAMILIES = ["cpu.c", "int8_peak.c", "kernels.c", "tlr*.c", "tl2*.c", "i2s_*.c", "gemm_*.c", "tq2_*.c", "tq1_*.c", "head_*.c"]


def build(out_dir: str, opt: str = "-O3") -> str:
    """Compile kernels_bench.c with every kernel file into out_dir; returns the executable's path (opt: the
    optimization flag, -O0 for the test that only checks it builds)."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise SystemExit("bench.kernels: no C compiler (set CC)")
    srcs = sorted({p for pat in FAMILIES for p in glob.glob(os.path.join(KERNELS, pat))})
    exe = os.path.join(out_dir, "kernels_bench")
    cmd = [cc, opt, "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-function", "-fno-strict-aliasing",
           "-ffp-contract=off", "-I" + KERNELS, "-o", exe, os.path.join(HERE, "kernels_bench.c"), *srcs, "-lm"]
    subprocess.run(cmd, check=True)
    return exe


def table(rows: list[dict]) -> str:
    lines = ["| type | isa | shape | kind | GB/s | GMAC/s |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['type']} | {r['isa']} | {r['shape']} | {r['kind']} | {r['gb_s']:.1f} | "
                     f"{r['gmac_s']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.kernels", description=__doc__.split("\n\n")[0])
    ap.add_argument("--types", default="", help="comma list of type names (I2_S, TQ2_0, F16, ...); default all")
    ap.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="folder for the JSON result")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(tmp)
        for name in (args.types.split(",") if args.types else [""]):
            proc = subprocess.Popen([exe, str(args.seconds)] + ([name] if name else []), stdout=subprocess.PIPE,
                                    text=True)
            for line in proc.stdout:
                r = json.loads(line)
                rows.append(r)
                print(f"{r['type']:6} {r['isa']:12} {r['shape']:24} {r['kind']:10} {r['gb_s']:7.1f} GB/s "
                      f"{r['gmac_s']:8.1f} GMAC/s", file=sys.stderr)
            if proc.wait() != 0:
                return 1
    from bitgguf import _core
    bw = _core.read_bandwidth(1 << 30, 1)
    from bench.__main__ import _cpu_info, _git_commit
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpu": _cpu_info(), "commit": _git_commit(),
              "read_bandwidth_1thr": bw, "results": rows}
    os.makedirs(args.out, exist_ok=True)
    out = os.path.join(args.out, time.strftime("%Y%m%d-%H%M%S") + "-kernels.json")
    with open(out, "w") as f:
        json.dump(record, f, indent=1)
    print(table(rows))
    print(f"bench.kernels: read bandwidth (1 thread) {bw / 1e9:.1f} GB/s; wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
