"""Another engine on the same benchmark file: a `llama-bench` binary (bitnet.cpp's or llama.cpp's), run with the
same thread count and tests as bitgguf's worker, its result put in the worker's form so the table shows both.

llama-bench's tests match bench.worker's: ppN evaluates N prompt tokens in one batch, tgN decodes N tokens one at
a time. Its per-repeat tokens/s (`samples_ts`) give the median and spread; peak RSS is the child's, from wait4.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile

from bench.worker import parse_test


def run_llama_bench(binary: str, path: str, threads: int, tests: list[str], repeats: int, mmap: bool = True,
                    label: str = "llama-bench") -> dict:
    """The engine's result in bench.worker's form; RuntimeError (with its stderr) when it fails, e.g. on a model
    architecture it does not know."""
    result = {"load_s": None, "isa": label, "threads": threads, "engine": os.path.abspath(binary)}
    peak = 0
    unit = 1 if sys.platform == "darwin" else 1024   # ru_maxrss: bytes on macOS, KiB on Linux
    for test in tests:
        kind, n, depth = parse_test(test)
        if depth:
            continue  # llama-bench's -d is newer than bitnet.cpp's fork: the row leaves such tests out
        pp, tg = (n, 0) if kind == "pp" else (0, n)
        cmd = [binary, "-m", path, "-p", str(pp), "-n", str(tg), "-t", str(threads), "-r", str(repeats),
               "-mmp", "1" if mmap else "0", "-o", "json"]
        with tempfile.TemporaryFile("w+") as log:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
            out = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)    # the child's own peak RSS
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                log.seek(0)
                raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{log.read()[-2000:]}")
        records = json.loads(out)
        ts = [float(v) for v in records[0].get("samples_ts") or [records[0]["avg_ts"]]]
        result[test] = {"median": statistics.median(ts), "min": min(ts), "max": max(ts), "runs": ts}
        peak = max(peak, usage.ru_maxrss * unit)
    result["peak_rss_bytes"] = peak
    return result
