"""bitgguf-run: generate text from a ternary GGUF model, like llama-cli.

    bitgguf-run MODEL.gguf -p PROMPT [-n N] [-t THREADS] [--temp T] [--top-k K] [--top-p P] [--min-p P]
                [--repeat-penalty R] [--seed S] [-c CTX] [--kv-type f16|f32] [--chat] [--verbose]

stdout carries the prompt and then the generated text, streamed token by token (partial UTF-8 held back until
complete); stderr carries load information and timings. --chat reads user turns from stdin (-p becomes the
system prompt) and formats them with the model's chat template. Errors are one line on stderr and exit code 1.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

from bitgguf.gguf import GGUFError

PROG = "bitgguf-run"


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage and exits 2; the contract is one line and exit 1
        raise CLIError(f"{message} (see {PROG} --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Run a ternary (1.58-bit) BitNet GGUF model on the CPU.")
    p.add_argument("model_pos", nargs="?", metavar="MODEL.gguf", help="the GGUF model file")
    p.add_argument("-m", "--model", dest="model_opt", metavar="MODEL.gguf",
                   help="the GGUF model file (same as the positional argument)")
    p.add_argument("-p", "--prompt", default="", help="the prompt (with --chat: the system prompt)")
    p.add_argument("-n", "--n-predict", type=int, default=128, metavar="N",
                   help="tokens to generate (per turn with --chat); -1 = until EOS or a full context (default 128)")
    p.add_argument("--no-mmap", action="store_true",
                   help="read the model into memory (huge pages) instead of mapping it: slower load, faster decode")
    p.add_argument("-t", "--threads", type=int, default=None, metavar="THREADS",
                   help="CPU threads (default: all cores)")
    p.add_argument("--temp", type=float, default=0.8, metavar="T", help="temperature; 0 = greedy (default 0.8)")
    p.add_argument("--top-k", type=int, default=40, metavar="K", help="top-k; 0 = off (default 40)")
    p.add_argument("--top-p", type=float, default=0.95, metavar="P", help="top-p; 1 = off (default 0.95)")
    p.add_argument("--min-p", type=float, default=0.05, metavar="P", help="min-p; 0 = off (default 0.05)")
    p.add_argument("--repeat-penalty", type=float, default=1.0, metavar="R",
                   help="repetition penalty; 1 = off (default 1.0)")
    p.add_argument("--repeat-last-n", type=int, default=64, metavar="N",
                   help="tokens the repetition penalty looks back at; 0 = off, -1 = all (default 64)")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="random seed; -1 or absent = random")
    p.add_argument("-c", "--ctx-size", type=int, default=None, metavar="CTX",
                   help="context size in tokens (default: the model's training context)")
    p.add_argument("--kv-type", choices=("f16", "f32"), default="f16", help="KV cache element type (default f16)")
    p.add_argument("--tl2-repack", action="store_true",
                   help="repack TL2 weights into 2-bit rows at load (faster prompt processing, more memory) instead "
                        "of reading them in place")
    p.add_argument("--isa", default=None, help="kernel ISA level (default: the best this CPU runs; see BITGGUF_ISA)")
    p.add_argument("--chat", "-cnv", "--conversation", dest="chat", action="store_true",
                   help="interactive chat: user turns from stdin, -p is the system prompt")
    p.add_argument("--verbose", "-v", action="store_true", help="more load details and the prompt's token ids")
    return p


def _check_args(a) -> None:
    if a.model_pos and a.model_opt and a.model_pos != a.model_opt:
        raise CLIError(f"two different models given: {a.model_pos!r} and -m {a.model_opt!r}")
    if a.n_predict < -1:
        raise CLIError(f"-n must be -1 (no limit) or a token count >= 0, got {a.n_predict}")
    if a.threads is not None and a.threads < 1:
        raise CLIError(f"-t must be >= 1, got {a.threads}")
    if a.ctx_size is not None and a.ctx_size < 1:
        raise CLIError(f"-c must be >= 1, got {a.ctx_size}")
    for name, v in (("--temp", a.temp), ("--top-p", a.top_p), ("--min-p", a.min_p),
                    ("--repeat-penalty", a.repeat_penalty)):
        if not math.isfinite(v):
            raise CLIError(f"{name} must be a finite number, got {v}")
    if not 0.0 <= a.top_p <= 1.0:
        raise CLIError(f"--top-p must be in [0, 1], got {a.top_p}")
    if not 0.0 <= a.min_p <= 1.0:
        raise CLIError(f"--min-p must be in [0, 1], got {a.min_p}")
    if a.repeat_penalty <= 0:
        raise CLIError(f"--repeat-penalty must be > 0, got {a.repeat_penalty}")
    if a.repeat_last_n < -1:
        raise CLIError(f"--repeat-last-n must be -1 (all), 0 (off) or a count, got {a.repeat_last_n}")


def shipped_model() -> Optional[Path]:
    """The demo model shipped inside the package (bitgguf/data/*.gguf), if this install has one."""
    data = Path(__file__).resolve().parent / "data"
    found = sorted(data.glob("*.gguf")) if data.is_dir() else []
    return found[0] if found else None


def _resolve_model(a) -> Path:
    name = a.model_opt or a.model_pos
    if not name:
        demo = shipped_model()
        if demo is None:
            raise CLIError("no model given: pass MODEL.gguf (or -m MODEL.gguf); this install ships no demo model")
        return demo
    path = Path(name)
    if not path.exists():
        raise CLIError(f"model file not found: {name}")
    if path.is_dir():
        raise CLIError(f"{name} is a directory, not a GGUF file "
                       "(convert a checkpoint with: python -m convert hf-to-gguf)")
    return path


class _Out:
    """stdout as UTF-8 whatever the locale, flushed per write (streaming)."""

    def __init__(self, stream):
        self.stream = stream
        self.raw = getattr(stream, "buffer", None)

    def write(self, text: str) -> None:
        if not text:
            return
        if self.raw is not None:
            self.raw.write(text.encode("utf-8", "replace"))
            self.raw.flush()
        else:
            self.stream.write(text)
            self.stream.flush()


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class _Timer:
    def __init__(self):
        self.prompt_tokens = 0
        self.prompt_s = 0.0
        self.decode_tokens = 0
        self.decode_s = 0.0
        self.sample_s = 0.0

    def report(self, load_ms: float) -> None:
        def rate(n, s):
            return f"{n / s:.2f} tok/s" if s > 0 and n else "- tok/s"
        _log(f"{PROG}: load time   = {load_ms:10.2f} ms")
        _log(f"{PROG}: prompt eval = {self.prompt_s * 1e3:10.2f} ms / {self.prompt_tokens:5d} tokens "
             f"({rate(self.prompt_tokens, self.prompt_s)})")
        ms_tok = f"{self.decode_s * 1e3 / self.decode_tokens:.2f} ms/token" if self.decode_tokens else "- ms/token"
        _log(f"{PROG}: decode      = {self.decode_s * 1e3:10.2f} ms / {self.decode_tokens:5d} tokens "
             f"({rate(self.decode_tokens, self.decode_s)}, {ms_tok})")
        _log(f"{PROG}: sampling    = {self.sample_s * 1e3:10.2f} ms")


def _meta(model, key, default=None):
    md = getattr(model, "metadata", None) or {}
    return md.get(key, default)


def _load_info(model, path: Path, load_ms: float, verbose: bool) -> None:
    arch = _meta(model, "general.architecture", "?")
    name = _meta(model, "general.name")
    parts = [f"arch {arch}"]
    for label, key in (("n_layer", "block_count"), ("n_embd", "embedding_length"), ("n_head", "attention.head_count"),
                       ("n_head_kv", "attention.head_count_kv"), ("n_ff", "feed_forward_length")):
        v = _meta(model, f"{arch}.{key}")
        if v is not None:
            parts.append(f"{label} {v}")
    n_vocab = getattr(model, "n_vocab", None)
    if n_vocab is not None:
        parts.append(f"n_vocab {n_vocab}")
    for attr in ("n_ctx", "n_threads", "kv_type", "isa"):
        v = getattr(model, attr, None)
        if v is not None:
            parts.append(f"{attr} {v}")
    size = path.stat().st_size / 2**20
    title = f"{path}" + (f" ({name})" if name else "")
    _log(f"{PROG}: loaded {title}: {size:.1f} MiB, " + ", ".join(parts) + f" in {load_ms:.1f} ms")
    if verbose:
        tmpl = _meta(model, "tokenizer.chat_template")
        _log(f"{PROG}: tokenizer {_meta(model, 'tokenizer.ggml.model', '?')}, chat template "
             f"{'present' if tmpl else 'absent'}")
        load_info = getattr(model, "load_info", None)
        if load_info is not None:
            _log(f"{PROG}: {load_info}")


def _make_sampler(a):
    from bitgguf._core import Sampler
    seed = None if a.seed is None or a.seed == -1 else a.seed
    return Sampler(temperature=a.temp, top_k=a.top_k, top_p=a.top_p, min_p=a.min_p,
                   repeat_penalty=a.repeat_penalty, repeat_last_n=a.repeat_last_n, seed=seed)


def _n_ctx(model) -> Optional[int]:
    v = getattr(model, "n_ctx", None)
    return int(v) if v is not None else None


def _eval(model, tokens: List[int], timer: _Timer, prompt: bool):
    n_ctx = _n_ctx(model)
    if n_ctx is not None and model.n_past + len(tokens) > n_ctx:
        raise CLIError(f"the context is full: {model.n_past} + {len(tokens)} tokens > n_ctx {n_ctx} "
                       f"(raise it with -c)")
    t0 = time.perf_counter()
    logits = model.eval(tokens)
    dt = time.perf_counter() - t0
    if prompt:
        timer.prompt_tokens += len(tokens)
        timer.prompt_s += dt
    else:
        timer.decode_tokens += len(tokens)
        timer.decode_s += dt
    return logits


def _generate(model, sampler, logits, n_predict: int, out: _Out, timer: _Timer) -> List[int]:
    """Sample, stream and evaluate until a stop token, n_predict tokens, or a full context. Returns the ids."""
    tok = model.tokenizer
    dec = tok.stream()
    n_ctx = _n_ctx(model)
    ids: List[int] = []
    while n_predict < 0 or len(ids) < n_predict:
        t0 = time.perf_counter()
        t = sampler.sample(logits)
        timer.sample_s += time.perf_counter() - t0
        if tok.is_stop(t):
            break
        sampler.accept(t)
        ids.append(t)
        out.write(dec.feed(t))
        if n_predict >= 0 and len(ids) >= n_predict:
            break
        if n_ctx is not None and model.n_past >= n_ctx:
            _log(f"{PROG}: the context is full ({n_ctx} tokens); stopping (raise it with -c)")
            break
        logits = _eval(model, [t], timer, prompt=False)
    out.write(dec.flush())
    return ids


def _run_prompt(model, a, out: _Out, timer: _Timer) -> None:
    ids = _tokenize(model, a.prompt, add_bos=True)
    if a.verbose:
        _log(f"{PROG}: prompt ids {ids}")
    n_ctx = _n_ctx(model)
    if n_ctx is not None and len(ids) > n_ctx:
        raise CLIError(f"the prompt is {len(ids)} tokens, more than the context of {n_ctx} (raise it with -c)")
    if not ids:
        raise CLIError("the prompt is empty and this model adds no BOS token: give a prompt with -p")
    sampler = _make_sampler(a)
    for t in ids:  # like llama.cpp: the prompt counts for the repetition penalty
        sampler.accept(t)
    out.write(a.prompt)
    logits = _eval(model, ids, timer, prompt=True)
    gen = _generate(model, sampler, logits, a.n_predict, out, timer)
    out.write("\n")
    if a.verbose:
        _log(f"{PROG}: generated ids {gen}")


def _read_turns(stdin, interactive: bool, out: _Out):
    """User turns: one line each; in a terminal, a '> ' prompt first. Ends at EOF."""
    while True:
        if interactive:
            out.write("\n> ")
        line = stdin.readline()
        if not line:
            return
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        yield text


def _run_chat(model, a, out: _Out, timer: _Timer, stdin=None) -> None:
    from bitgguf import chat

    stdin = stdin or sys.stdin
    interactive = stdin.isatty()
    tok = model.tokenizer
    template = _meta(model, "tokenizer.chat_template")
    arch = _meta(model, "general.architecture")
    fmt = chat.detect_format(template, arch)
    eos_text = _token_text(model, getattr(tok, "eos_id", None))
    if a.verbose:
        _log(f"{PROG}: chat format {fmt}")
    if interactive:
        _log(f"{PROG}: chat mode: type a message and press Enter; Ctrl-D ends")
    sampler = _make_sampler(a)
    history = [{"role": "system", "content": a.prompt}] if a.prompt else []
    pending: List[int] = []  # the end of the previous assistant turn, fed with the next user turn
    first = True
    for text in _read_turns(stdin, interactive, out):
        user = [{"role": "user", "content": text}]
        if first:
            prompt = chat.format_chat(history + user, template, eos_token=eos_text, arch=arch)
        else:
            prompt = chat.format_chat_delta(history, user, template, eos_token=eos_text, arch=arch)
        ids = pending + _tokenize(model, prompt, add_bos=first)
        if a.verbose:
            _log(f"{PROG}: turn ids {ids}")
        for t in ids:
            sampler.accept(t)
        logits = _eval(model, ids, timer, prompt=True)
        reply = _generate(model, sampler, logits, a.n_predict, out, timer)
        if not interactive:
            out.write("\n")
        if a.verbose:
            _log(f"{PROG}: generated ids {reply}")
        history += user + [{"role": "assistant", "content": model.detokenize(reply)}]
        # the cache now ends with the reply; the rendered history ends with the reply plus the turn's closing text
        closing = chat.turn_end(fmt, eos_text)
        pending = _tokenize(model, closing, add_bos=False) if closing else []
        first = False
    if interactive:
        out.write("\n")


def _token_text(model, token_id) -> str:
    if token_id is None or token_id < 0:
        return ""
    return model.tokenizer.token_to_piece(token_id, special=True).decode("utf-8", "replace")


def _tokenize(model, text: str, add_bos: bool) -> List[int]:
    # like llama-cli: special-token texts in the prompt ("<|eot_id|>") become those tokens; chat needs this
    return list(model.tokenizer.encode(text, add_bos=add_bos, parse_special=True))


def main(argv: Optional[Sequence[str]] = None) -> int:
    out = _Out(sys.stdout)
    try:
        a = build_parser().parse_args(argv)
        _check_args(a)
        path = _resolve_model(a)
        try:
            from bitgguf.model import Model
        except ImportError as e:
            raise CLIError(f"the runtime is not available in this install ({e})") from None
        try:
            t0 = time.perf_counter()
            model = Model(str(path), n_threads=a.threads, n_ctx=a.ctx_size, kv_type=a.kv_type, isa=a.isa,
                          mmap=not a.no_mmap, tl2_in_place=False if a.tl2_repack else None)
            load_ms = (time.perf_counter() - t0) * 1e3
        except (GGUFError, OSError, ValueError) as e:
            raise CLIError(f"cannot load {path}: {e}") from None
        _load_info(model, path, load_ms, a.verbose)
        timer = _Timer()
        try:
            if a.chat:
                _run_chat(model, a, out, timer)
            else:
                _run_prompt(model, a, out, timer)
        finally:
            timer.report(load_ms)
            close = getattr(model, "close", None)
            if close:
                close()
    except CLIError as e:
        _log(f"{PROG}: error: {e}")
        return 1
    except GGUFError as e:  # raised past load (e.g. a tensor checked lazily)
        _log(f"{PROG}: error: {e}")
        return 1
    except (OSError, ValueError) as e:
        if isinstance(e, BrokenPipeError):  # `bitgguf-run ... | head`: the reader left, nothing to report
            _quiet_stdout()
            return 0
        _log(f"{PROG}: error: {type(e).__name__}: {e}")
        return 1
    except KeyboardInterrupt:
        out.write("\n")
        _log(f"{PROG}: interrupted")
        return 130
    return 0


def _quiet_stdout() -> None:
    # point stdout at devnull so the interpreter's final flush does not raise again
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
