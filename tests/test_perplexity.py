"""bitgguf-perplexity against a direct numpy computation of llama-perplexity's method from the reference's logits."""
import math
import subprocess
import sys

import numpy as np
import pytest
from conftest import TINYSTORIES, require_shared, run_convert

from bitgguf.model import Model
from bitgguf.perplexity import PerplexityError, perplexity
from bitgguf.reference import ReferenceModel
from gguf_models import make_random_gguf

STORY = ("Once upon a time, there was a little girl named Lily. She liked to play in the park with her dog, Max. "
         "One day, Max found a big red ball under a tree. Lily and Max played with the ball all day. When the sun "
         "went down, they went home and had some warm milk. Lily said, \"Thank you, Max, for the best day ever!\"\n")


def numpy_ppl(tokens, n_ctx, ref_logits, bos):
    """llama-perplexity by hand: windows of n_ctx, first token -> BOS, positions n_ctx/2 .. n_ctx-2 predict the next."""
    nll = []
    for w in range(len(tokens) // n_ctx):
        window = list(tokens[w * n_ctx:(w + 1) * n_ctx])
        if bos is not None:
            window[0] = bos
        lg = ref_logits(window).astype(np.float64)
        for i in range(n_ctx // 2, n_ctx - 1):
            row = lg[i]
            nll.append(np.log(np.exp(row - row.max()).sum()) + row.max() - row[window[i + 1]])
    nll = np.array(nll)
    ppl = math.exp(nll.mean())
    return ppl, ppl * math.sqrt(nll.var() / (len(nll) - 1)), len(nll)


@pytest.fixture(scope="module")
def random_model(tmp_path_factory):
    return make_random_gguf(tmp_path_factory.mktemp("ppl") / "r.gguf", n_vocab=263, n_ctx_train=128, seed=9)


@pytest.mark.parametrize("n_ctx, bos", [(16, 0), (33, None)])
def test_perplexity_matches_numpy(random_model, n_ctx, bos):
    tokens = np.random.default_rng(n_ctx).integers(0, 263, 3 * n_ctx + 7).tolist()
    ref = ReferenceModel(random_model)
    want, want_err, count = numpy_ppl(tokens, n_ctx, ref.logits, bos)
    seen = []
    # the method itself, on the reference's logits: the same numbers
    r = perplexity(tokens, n_ctx, ref.logits, bos=bos, on_window=lambda i, p: seen.append((i, p)))
    assert (r.n_windows, r.n_scored, r.n_ctx, r.n_tokens) == (3, count, n_ctx, len(tokens))
    assert count == 3 * (n_ctx - 1 - n_ctx // 2)
    assert r.ppl == pytest.approx(want, rel=1e-12) and r.stderr == pytest.approx(want_err, rel=1e-9)
    assert [i for i, _ in seen] == [0, 1, 2] and seen[-1][1] == r.ppl == r.running[-1]
    # the first window's running value is that window alone
    assert r.running[0] == pytest.approx(numpy_ppl(tokens[:n_ctx], n_ctx, ref.logits, bos)[0], rel=1e-12)
    # and on the engine's logits (float order only)
    with Model(random_model, kv_type="f32", n_threads=1, n_ctx=n_ctx) as m:
        got = perplexity(tokens, n_ctx, m.logits, bos=bos, max_windows=2)
    assert got.n_windows == 2
    assert got.ppl == pytest.approx(numpy_ppl(tokens[:2 * n_ctx], n_ctx, ref.logits, bos)[0], rel=1e-3)


def test_perplexity_needs_two_windows(random_model):
    with pytest.raises(PerplexityError, match="needs at least 64"):
        perplexity(list(range(63)), 32, None)


@pytest.fixture(scope="module")
def tinystories(tmp_path_factory):
    require_shared()
    root = tmp_path_factory.mktemp("ppl-ts")
    path = root / "ts.gguf"
    r = run_convert("hf-to-gguf", TINYSTORIES, "--outfile", path, "--no-progress")
    assert r.returncode == 0, r.stderr
    text = root / "story.txt"
    text.write_text(STORY * 3, encoding="utf-8")
    return path, text


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "bitgguf.perplexity", *map(str, args)], capture_output=True,
                          text=True)


def test_cli_on_real_model(tinystories):
    path, text = tinystories
    r = _cli(path, text, "-c", "64", "-t", "2", "--kv-type", "f32")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-1].startswith("Final estimate: PPL = ")
    ppl, err = map(float, lines[-1].split("=")[1].split("+/-"))
    with Model(path, n_threads=1) as m:
        tokens = m.tokenize(text.read_text(encoding="utf-8"))
        bos = m.tokenizer.bos_id
    assert tokens[0] == bos == 1 and len(tokens) >= 128
    want, want_err, _ = numpy_ppl(tokens, 64, ReferenceModel(str(path)).logits, bos)
    assert ppl == pytest.approx(want, rel=2e-3) and err == pytest.approx(want_err, rel=2e-2)
    # one running value per window, the last equal to the final estimate
    running = [float(v.split("]")[1]) for v in lines[0].rstrip(",").split(",")]
    assert len(running) == len(tokens) // 64 and running[-1] == pytest.approx(ppl, abs=1e-4)
    assert 1 < ppl < 20, "a TinyStories model on a TinyStories-like text"
    assert "windows of 64" in r.stderr


@pytest.mark.parametrize("case", ["no-model", "no-text", "short", "bad-ctx", "not-utf8", "bad-option", "not-gguf"])
def test_cli_errors(tinystories, tmp_path, case):
    path, text = tinystories
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00 story")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file at all")
    args = {
        "no-model": (tmp_path / "missing.gguf", text),
        "no-text": (path, tmp_path / "missing.txt"),
        "short": (path, text, "-c", "512"),
        "bad-ctx": (path, text, "-c", "2"),
        "not-utf8": (path, bad),
        "bad-option": (path, text, "--bogus"),
        "not-gguf": (junk, text),
    }[case]
    r = _cli(*args)
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bitgguf-perplexity: error: "), r.stderr
    assert "Final estimate" not in r.stdout


def test_console_script_declared():
    from pathlib import Path
    tomllib = pytest.importorskip("tomllib")
    meta = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["bitgguf-perplexity"] == "bitgguf.perplexity:main"
