"""One benchmark configuration in its own process (so its peak RSS is its own): prints one JSON line.

    python -m bench.worker '{"path": ..., "threads": 2, "isa": "avx2", "tests": ["pp128", "tg128"], "repeats": 3}'

Tests: ppN, tgN, tgN@D (parse_test).
"""
from __future__ import annotations

import json
import resource
import statistics
import sys
import time

import numpy as np


def parse_test(test: str) -> tuple[str, int, int]:
    """("pp" | "tg", N, depth) of a test name: ppN (a prompt of N tokens), tgN (decode N tokens after a one-token
    prompt, as llama-bench does) or tgN@D (the same after a prompt of D tokens: decode at a context of D); ValueError
    for anything else."""
    head, at, depth = test.partition("@")
    if head[:2] not in ("pp", "tg") or not head[2:].isdigit() or (at and (head[:2] == "pp" or not depth.isdigit())):
        raise ValueError(f"test {test!r} is not ppN, tgN or tgN@D")
    return head[:2], int(head[2:]), int(depth or 0)


def _stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def run(cfg: dict) -> dict:
    from bitgguf import Model, _core

    start = time.perf_counter()
    model = Model(cfg["path"], n_threads=cfg["threads"], n_ctx=cfg.get("n_ctx", 1024),
                  kv_type=cfg.get("kv_type", "f16"), isa=cfg.get("isa"), mmap=cfg.get("mmap", True),
                  tl2_in_place=cfg.get("tl2_in_place"))
    load_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    result = {"load_s": load_s, "isa": model.isa, "threads": cfg["threads"], "tl2_in_place": model.tl2_in_place}
    n_vocab = model.n_vocab
    # After each decode repeat, one probe pass over the model's own memory (its file map, or the --no-mmap copy):
    # the limit of the same seconds, on a machine whose neighbours move it 2x within minutes. Not where the load
    # released pages (TL1 / TL2 repacked), which the pass would fault back in.
    paired = cfg.get("paired_probe") and not model._reader.pages_dropped
    for test in cfg["tests"]:
        kind, n, depth = parse_test(test)
        tok_per_s, paired_bw = [], []
        for _ in range(cfg.get("repeats", 3)):
            prompt = [int(t) for t in rng.integers(2, n_vocab, size=max(depth, 1))]
            tokens = [int(t) for t in rng.integers(2, n_vocab, size=n)]
            model.reset()
            if kind == "pp":
                t0 = time.perf_counter()
                model.eval(tokens)
                tok_per_s.append(n / (time.perf_counter() - t0))
            else:  # tg: decode n tokens one at a time after the prompt (one token, like llama-bench, or depth)
                model.eval(prompt)
                t0 = time.perf_counter()
                for t in tokens:
                    model.eval([t])
                tok_per_s.append(n / (time.perf_counter() - t0))
                if paired:
                    paired_bw.append(_core.read_bandwidth_buffer(model._reader._mmap, cfg["threads"], 1))
        result[test] = _stats(tok_per_s)
        if paired_bw:
            result[test]["paired_read_bandwidth"] = paired_bw
    model.close()
    result["peak_rss_bytes"] = _peak_rss()
    return result


def _peak_rss() -> int:
    """This process's peak RSS. Linux: VmHWM, which starts afresh at exec (ru_maxrss would carry over the parent's
    peak from before the exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    rss_unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * rss_unit


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
