"""`python -m bench`: decode / prefill speed, load time and peak RSS per model shape, tensor type, ISA level and
thread count, with the machine's read bandwidth measured in the same run. Writes bench/results/<stamp>.json and
prints a Markdown table.

    python -m bench                                   # 2B4T shape, I2_S, every ISA, 1 and 2 threads
    python -m bench --models 2b4t,large --types i2_s,tq2_0 --threads 1,2 --tests pp128,pp512,tg128
    python -m bench --quick                           # a smoke run on a tiny model (CI)
    python -m bench --models 2b4t-silu --llama-bench /path/to/llama-bench   # the same file in bitnet.cpp too
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

from bench.external import run_llama_bench
from bench.worker import parse_test
from bench.models import SHAPES, cached_model
from bench.report import markdown_table

HERE = os.path.dirname(os.path.abspath(__file__))


def _cpu_info() -> dict:
    info = {"machine": platform.machine(), "processor": platform.processor(), "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        for line in text.splitlines():
            if line.startswith("model name"):
                info["model"] = line.split(":", 1)[1].strip()
            if line.startswith(("flags", "Features")):
                flags = line.split(":", 1)[1].split()
                info["flags"] = sorted(f for f in flags if f.startswith(("avx", "sse4", "fma", "f16c", "asimd", "sve")))
                break
    except OSError:
        pass
    return info


def _git_commit() -> str | None:
    """HEAD, with "-dirty" when the working tree has changes (the numbers then belong to uncommitted code)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True, timeout=5)
        commit = out.stdout.strip() or None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=HERE,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + "-dirty" if commit and dirty else commit
    except (OSError, subprocess.SubprocessError):
        return None


def _probe(call: str) -> float:
    """`_core.<call>` in a child process, from the checkout's folder: a probe's buffer or map (1 GiB) would otherwise
    raise this process's peak RSS, which Linux hands on to every child as the start of its own ru_maxrss (the
    workers' and llama-bench's)."""
    code = f"from bitgguf import _core; print(_core.{call})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(HERE))
    return float(out.stdout.strip().splitlines()[-1])


# What read_bandwidth measures, recorded in each result: results without it used one stream per thread only, which
# on Sapphire Rapids VMs read 30-45% less than two streams with a prefetch (and than decode itself).
READ_PROBE = "the faster of one stream and two streams with a 2 KiB prefetch per thread"


def _read_bandwidth(n_bytes: int, n_threads: int, repeats: int = 5) -> float:
    return _probe(f"read_bandwidth({int(n_bytes)}, {int(n_threads)}, {int(repeats)})")


def _file_map_bandwidth(path: str, n_threads: int) -> float:
    """Read bandwidth over the model file's memory map, mapped as the runtime maps it (its page cache pages, in 2 MiB
    pages where the OS gives them: in the VMs we measured, a plain map of a freshly written file read 10-20% slower
    than anonymous memory)."""
    return _probe(f"read_bandwidth_file({os.path.abspath(path)!r}, {int(n_threads)})")


def _weight_bytes(path: str, tl2_in_place: bool = True) -> int:
    """Bytes a decode step streams: every tensor is read once per token (the tied head reads the embedding). A TL1
    tensor, and a TL2 tensor that is not read in place, is read as the 2-bit rows it is repacked into at load, not
    as its file bytes."""
    from bitgguf.gguf import GGUFReader
    with GGUFReader(path) as r:
        return sum(math.prod(t.shape) // 4 if t.type.name == "TL1" or (t.type.name == "TL2" and not tl2_in_place)
                   else t.nbytes for t in r.tensors.values())


def _int8_peak(isa: str) -> float:
    """One core's int8 MAC/s at `isa` (bitgguf's int8_peak.c), in a child like the read probe; 0.0 where none."""
    return _probe(f"int8_peak({isa!r})")


def _gemm_macs_per_token(path: str) -> int:
    """Multiply-accumulates of a prompt token in the ternary matmuls (rows x columns of each), the part of a prompt
    that runs as int8 GEMMs; attention, norms and the head of the last token come on top."""
    from bitgguf.gguf import GGUFReader
    from bitgguf.types import TYPES
    with GGUFReader(path) as r:
        return sum(math.prod(t.shape) for t in r.tensors.values()
                   if t.type.name in TYPES and TYPES[t.type.name].ternary)


def _kv_bytes_per_position(path: str) -> int:
    """Bytes of K and V (the default F16 cache) one position adds, all layers."""
    from bitgguf.config import ModelConfig
    from bitgguf.gguf import GGUFReader
    with GGUFReader(path) as r:
        c = ModelConfig.from_reader(r)
    return 2 * c.n_layer * c.n_head_kv * c.head_dim * 2


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="2b4t", help=f"comma list of {', '.join(SHAPES)}")
    ap.add_argument("--types", default="i2_s",
                    help="comma list of ternary types (i2_s, tq2_0, tq1_0, tl1, tl2), or f16 / f32 (alpha-scaled "
                         "ternary floats)")
    ap.add_argument("--head", default="f16", help="token_embd / output head type (f16, q8_0, q6_k, q5_k, q4_k, q4_0, "
                                                  "f32)")
    ap.add_argument("--threads", default="1,2", help="comma list of thread counts")
    ap.add_argument("--isa", default="all", help="comma list of ISA levels, or 'all' (those this CPU runs)")
    ap.add_argument("--tests", default="pp128,pp512,tg128",
                    help="comma list of ppN (prefill), tgN (decode), tgN@D (decode after a D-token prompt)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cache", default=os.path.join(HERE, "cache"), help="where benchmark models are kept")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="folder for the JSON result")
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny model, pp16/tg16, one repeat")
    ap.add_argument("--no-mmap", action="store_true", help="bitgguf reads the model into memory (Model(mmap=False)); "
                                                           "llama-bench gets -mmp 0")
    ap.add_argument("--tl2-repack", action="store_true",
                    help="bitgguf repacks TL2 into 2-bit rows at load (Model(tl2_in_place=False)) instead of reading "
                         "it in place")
    ap.add_argument("--llama-bench", default=None, metavar="PATH[,PATH...]",
                    help="also run these llama-bench binaries (bitnet.cpp's, llama.cpp's) on the same files and "
                         "thread counts (bench/external.py); their rows show isa 'llama-bench' (with several: "
                         "'llama-bench:<the folder above bin/>')")
    args = ap.parse_args(argv)

    from bitgguf import _core, isa_levels
    if args.quick:
        args.models, args.tests, args.repeats, args.threads = "tiny", "pp16,tg16,tg4@16", 1, "1"
    isas = isa_levels() if args.isa == "all" else args.isa.split(",")
    external = {}  # row label -> llama-bench binary
    if args.llama_bench:
        paths = args.llama_bench.split(",")
        for p in paths:
            build = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(p))))
            external["llama-bench" if len(paths) == 1 else f"llama-bench:{build}"] = p
        isas = isas + list(external)
    threads = [int(t) for t in args.threads.split(",")]
    tests = args.tests.split(",")
    for t in tests:
        try:
            parse_test(t)
        except ValueError as e:
            ap.error(str(e))

    bw_bytes = (64 << 20) if args.quick else (1 << 30)
    bandwidth = {t: _read_bandwidth(bw_bytes, t) for t in threads}
    print("bench: read bandwidth " + ", ".join(f"{t} thr {b / 1e9:.1f} GB/s" for t, b in bandwidth.items()),
          file=sys.stderr)
    rows = []
    for name in args.models.split(","):
        for ttype in args.types.split(","):
            path = cached_model(args.cache, name, ttype, args.head, log=lambda m: print(m, file=sys.stderr))
            gemm_macs = _gemm_macs_per_token(path)  # the same file at every level
            for isa in isas:
                # llama-bench (bitnet.cpp) reads TL2 in place; bitgguf does where the level has the kernel
                tl2_in_place = isa in external or (_core.tl2_in_place(isa) and not args.tl2_repack)
                nbytes, kv_per_position = _weight_bytes(path, tl2_in_place), _kv_bytes_per_position(path)
                for n_threads in threads:
                    cfg = {"path": path, "threads": n_threads, "isa": isa, "tests": tests, "repeats": args.repeats,
                           "mmap": not args.no_mmap, "tl2_in_place": False if args.tl2_repack else None,
                           "paired_probe": True,
                           "n_ctx": max(1024, max(sum(parse_test(t)[1:]) for t in tests) + 8)}
                    # the read bandwidth just before and after this configuration: on a shared machine it moves
                    # with the neighbours' load, so the limit is taken from the same minutes as the timing
                    bw_before = _read_bandwidth(bw_bytes, n_threads, 3)
                    # numpy's BLAS threads would spin on the cores the engine uses: one BLAS thread
                    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
                    if isa in external:
                        try:
                            res = run_llama_bench(external[isa], path, n_threads, tests, args.repeats,
                                                  mmap=not args.no_mmap, label=isa)
                        except RuntimeError as e:  # that engine's row is left out; bitgguf's rows are kept
                            print(f"bench: {isa} on {name} {ttype} {n_threads} thr skipped: {e}", file=sys.stderr)
                            continue
                    else:
                        proc = subprocess.run([sys.executable, "-m", "bench.worker", json.dumps(cfg)],
                                              capture_output=True, text=True, cwd=os.path.dirname(HERE), env=env)
                        if proc.returncode != 0:
                            print(f"bench: {name} {ttype} {isa} {n_threads} thr failed:\n{proc.stderr}",
                                  file=sys.stderr)
                            return 1
                        res = json.loads(proc.stdout.strip().splitlines()[-1])
                    bw_after = _read_bandwidth(bw_bytes, n_threads, 3)
                    bw_here = max(bw_before, bw_after, bandwidth[n_threads] if args.quick else 0.0)
                    res.update(model=name, type=ttype, head=args.head, bytes_per_token=nbytes, mmap=not args.no_mmap,
                               file_bytes=os.path.getsize(path), read_bandwidth=bw_here,
                               read_bandwidth_around=[bw_before, bw_after])
                    # with a memory map the weights are the file's page cache pages: their own read bandwidth too
                    if not args.no_mmap:
                        res["file_map_bandwidth"] = _file_map_bandwidth(path, n_threads)
                    # a prompt's int8 work against the core's peak at this level, measured after it like the
                    # bandwidth (AMX's rate moved 4x between windows of a shared VM)
                    peak = 0.0
                    if isa not in external and any(parse_test(t)[0] == "pp" for t in tests):
                        peak = _int8_peak(isa)
                        res["int8_peak_mac_s_per_core"] = peak
                    for t in tests:
                        kind, n, depth = parse_test(t)
                        if kind == "pp" and t in res and peak > 0:
                            res[t]["gemm_macs_per_token"] = gemm_macs
                            res[t]["pct_of_int8_peak"] = 100.0 * res[t]["median"] * gemm_macs / (peak * n_threads)
                        if kind == "tg" and t in res:
                            # a decode step reads every weight, and the K and V of every position so far: on
                            # average the prompt's, its own and half the test's
                            step_bytes = nbytes + kv_per_position * (max(depth, 1) + 1 + n / 2)
                            limit = bw_here / step_bytes
                            res[t]["bytes_per_token"] = step_bytes
                            res[t]["bandwidth_limit_tok_s"] = limit
                            res[t]["pct_of_limit"] = 100.0 * res[t]["median"] / limit
                            if "file_map_bandwidth" in res:
                                res[t]["pct_of_file_map_limit"] = 100.0 * res[t]["median"] * step_bytes / \
                                    res["file_map_bandwidth"]
                            if "paired_read_bandwidth" in res[t]:  # each repeat against the probe right after it
                                res[t]["pct_of_paired_limit"] = statistics.median(
                                    100.0 * v * step_bytes / bw for v, bw in zip(res[t]["runs"],
                                                                                res[t]["paired_read_bandwidth"]))
                    rows.append(res)
                    print(markdown_table([res], tests, header=len(rows) == 1), file=sys.stderr)

    import bitgguf
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpu": _cpu_info(), "isa_levels": isa_levels(),
              "python": sys.version.split()[0], "bitgguf": bitgguf.__version__, "commit": _git_commit(),
              "read_bandwidth": bandwidth, "read_probe": READ_PROBE, "args": vars(args), "results": rows}
    os.makedirs(args.out, exist_ok=True)
    out = os.path.join(args.out, time.strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "") + ".json")
    with open(out, "w") as f:
        json.dump(record, f, indent=1)
    print(markdown_table(rows, tests))
    print(f"bench: wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
