"""bitgguf-perplexity: a model's perplexity on a text file, by llama.cpp's llama-perplexity method.

    bitgguf-perplexity MODEL.gguf TEXT_FILE [-c CTX] [-t THREADS] [--chunks N] [--kv-type f16|f32] [--isa LEVEL]

The method (so numbers compare with llama-perplexity's on the same tokens):
  - the whole text is tokenized once, with BOS if the vocabulary adds one;
  - it is cut into non-overlapping windows of CTX tokens (a shorter tail is dropped; at least two windows needed);
  - each window is evaluated from an empty context, its first token replaced by BOS when the vocabulary adds one;
  - only the second half is scored: the logits at positions CTX/2 .. CTX-2 predict the next token;
  - PPL = exp(mean NLL) over all scored tokens, with the standard error exp(mean) * sqrt(var(NLL) / (N - 1)).
stdout: the running perplexity after each window ("[1]12.3456,[2]...") and the final line
"Final estimate: PPL = X +/- Y"; stderr: what was loaded and timings. Errors: one line on stderr, exit code 1.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import numpy as np

PROG = "bitgguf-perplexity"
DEFAULT_CTX = 512  # llama-perplexity's default


class PerplexityError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


@dataclass
class PerplexityResult:
    ppl: float
    stderr: float          # standard error of the perplexity estimate
    n_scored: int          # tokens scored
    n_windows: int
    n_ctx: int
    n_tokens: int          # tokens in the whole text
    running: List[float]   # perplexity after each window


def window_nll(logits: np.ndarray, window: Sequence[int]) -> np.ndarray:
    """Negative log-likelihoods of the scored half of one window: logits (n_ctx, n_vocab) of positions
    0..n_ctx-1 -> -log p(window[i + 1] | window[..i]) for i = n_ctx/2 .. n_ctx-2, in float64."""
    n_ctx = len(window)
    first = n_ctx // 2
    lg = np.asarray(logits[first:n_ctx - 1], dtype=np.float64)
    target = np.asarray(window[first + 1:n_ctx], dtype=np.int64)
    top = lg.max(axis=1)
    log_z = np.log(np.exp(lg - top[:, None]).sum(axis=1)) + top
    return log_z - lg[np.arange(len(lg)), target]


def perplexity(tokens: Sequence[int], n_ctx: int, logits_fn: Callable[[List[int]], np.ndarray],
               bos: Optional[int] = None, max_windows: Optional[int] = None,
               on_window: Optional[Callable[[int, float], None]] = None) -> PerplexityResult:
    """llama-perplexity's estimate over `tokens` (already tokenized, BOS included if the vocabulary adds one).

    logits_fn(window) returns the (len(window), n_vocab) logits of a window evaluated from an empty context;
    bos: the id that replaces each window's first token (None: the vocabulary adds no BOS, windows are as cut)."""
    if n_ctx < 4:
        raise PerplexityError(f"the context must be at least 4 tokens, got {n_ctx}")
    n_windows = len(tokens) // n_ctx
    if n_windows < 2:
        raise PerplexityError(f"the text has {len(tokens)} tokens; perplexity with a context of {n_ctx} needs at "
                              f"least {2 * n_ctx} (two windows)")
    if max_windows is not None and max_windows > 0:
        n_windows = min(n_windows, max_windows)
    nll_sum = nll2_sum = 0.0
    count = 0
    running = []
    for i in range(n_windows):
        window = [int(t) for t in tokens[i * n_ctx:(i + 1) * n_ctx]]
        if bos is not None:
            window[0] = int(bos)
        nll = window_nll(logits_fn(window), window)
        nll_sum += float(nll.sum())
        nll2_sum += float((nll * nll).sum())
        count += len(nll)
        running.append(math.exp(nll_sum / count))
        if on_window is not None:
            on_window(i, running[-1])
    mean = nll_sum / count
    ppl = math.exp(mean)
    var = nll2_sum / count - mean * mean
    err = ppl * math.sqrt(var / (count - 1)) if var > 0 and count > 1 else 0.0
    return PerplexityResult(ppl, err, count, n_windows, n_ctx, len(tokens), running)


# ---- command line -------------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage and exits 2; the contract is one line and exit 1
        raise PerplexityError(f"{message} (see {PROG} --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Perplexity of a ternary GGUF model on a text file (llama-perplexity's "
                                       "method: non-overlapping windows, the second half of each scored).")
    p.add_argument("model", metavar="MODEL.gguf", help="the GGUF model file")
    p.add_argument("text", metavar="TEXT_FILE", help="a UTF-8 text file")
    p.add_argument("-c", "--ctx-size", type=int, default=None, metavar="CTX",
                   help=f"window (context) size in tokens (default {DEFAULT_CTX}, or the model's training context "
                        "if smaller)")
    p.add_argument("-t", "--threads", type=int, default=None, metavar="THREADS",
                   help="CPU threads (default: all cores)")
    p.add_argument("--chunks", type=int, default=None, metavar="N", help="score at most N windows (default all)")
    p.add_argument("--kv-type", choices=("f16", "f32"), default="f16", help="KV cache element type (default f16)")
    p.add_argument("--isa", default=None, help="kernel ISA level (default: the best this CPU runs; see BITGGUF_ISA)")
    return p


def run(argv: Optional[Sequence[str]] = None, out=None, err=None) -> PerplexityResult:
    out = out or sys.stdout
    err = err or sys.stderr
    a = build_parser().parse_args(argv)
    if a.ctx_size is not None and a.ctx_size < 4:
        raise PerplexityError(f"-c must be at least 4, got {a.ctx_size}")
    if a.threads is not None and a.threads < 1:
        raise PerplexityError(f"-t must be >= 1, got {a.threads}")
    if a.chunks is not None and a.chunks < 1:
        raise PerplexityError(f"--chunks must be >= 1, got {a.chunks}")
    for path, what in ((a.model, "model"), (a.text, "text file")):
        if not os.path.isfile(path):
            raise PerplexityError(f"{path}: no such {what}")
    try:
        with open(a.text, "rb") as f:
            text = f.read().decode("utf-8")
    except UnicodeDecodeError as e:
        raise PerplexityError(f"{a.text}: not UTF-8 text ({e.reason} at byte {e.start})") from None

    from bitgguf.gguf import GGUFError
    from bitgguf.model import Model
    t0 = time.perf_counter()
    try:
        from bitgguf.config import ModelConfig
        from bitgguf.gguf import GGUFReader
        with GGUFReader(a.model) as r:
            n_ctx_train = ModelConfig.from_reader(r).n_ctx_train
        n_ctx = a.ctx_size or min(DEFAULT_CTX, n_ctx_train or DEFAULT_CTX)
        model = Model(a.model, n_threads=a.threads, n_ctx=n_ctx, kv_type=a.kv_type, isa=a.isa)
    except (GGUFError, ValueError) as e:
        raise PerplexityError(str(e)) from None
    with model:
        tok = model.tokenizer
        bos = tok.bos_id if (tok.add_bos and tok.bos_id is not None) else None
        tokens = model.tokenize(text, add_bos=True)
        if len(tokens) < 2 * n_ctx:  # before anything is printed: a failed run prints one line
            raise PerplexityError(f"{a.text}: {len(tokens)} tokens; perplexity with a context of {n_ctx} needs at "
                                  f"least {2 * n_ctx} (two windows)")
        print(f"{PROG}: {a.model}: {model.config.arch}, n_vocab {model.n_vocab}, isa {model.isa}, "
              f"{model.n_threads} threads; loaded in {time.perf_counter() - t0:.2f} s", file=err)
        n_windows = len(tokens) // n_ctx
        if a.chunks:
            n_windows = min(n_windows, a.chunks)
        print(f"{PROG}: {a.text}: {len(tokens)} tokens; {n_windows} windows of {n_ctx}, "
              f"scoring tokens {n_ctx // 2 + 1}..{n_ctx - 1} of each" + (f"; BOS {bos} at each window start"
                                                                           if bos is not None else ""), file=err)
        t1 = time.perf_counter()

        def on_window(i, ppl):
            print(f"[{i + 1}]{ppl:.4f},", end="", file=out, flush=True)

        result = perplexity(tokens, n_ctx, model.logits, bos=bos, max_windows=a.chunks, on_window=on_window)
        dt = time.perf_counter() - t1
    print(file=out)
    print(f"Final estimate: PPL = {result.ppl:.4f} +/- {result.stderr:.5f}", file=out, flush=True)
    print(f"{PROG}: {result.n_scored} tokens scored in {dt:.2f} s "
          f"({result.n_windows * n_ctx / max(dt, 1e-9):.1f} tokens/s evaluated)", file=err)
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        run(argv)
    except PerplexityError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
