"""Shared test setup: where ../shared is, and the tie-aware comparison used against recorded greedy outputs."""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# CI puts shared/ beside the clone; BITGGUF_SHARED overrides
SHARED = Path(os.environ.get("BITGGUF_SHARED", REPO.parent / "shared"))
TINYSTORIES = SHARED / "models" / "tinystories-ternary-3m"
FIXTURES = SHARED / "fixtures"

# int8 activation rounding turns 1-ulp float differences into whole steps: argmax must agree only where the
# reference's top-2 gap is at least this (the shared JSON files carry the gaps)
TIE_GAP = 0.25


def require_shared() -> Path:
    if not (SHARED / "spec").is_dir():
        pytest.fail(f"shared data not found at {SHARED} (set BITGGUF_SHARED)")
    return SHARED


def _imported_root() -> str:
    """The folder the imported bitgguf (and its sibling packages convert, bench) lives in: the installed package in
    CI, the checkout in a development build."""
    import bitgguf
    return str(Path(bitgguf.__file__).resolve().parents[1])


def subprocess_env() -> dict:
    """Environment for `python -m ...` subprocesses that must load the same build as the tests."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_imported_root(), os.environ.get("PYTHONPATH")])))


def run_convert(*args: str) -> subprocess.CompletedProcess:
    """`python -m convert ...` in a subprocess, as a user runs it (paths given absolute). It runs in an empty folder,
    not the checkout, whose uncompiled sources `-m` would put first on sys.path, and imports the build the tests
    import: module-scoped fixtures call it before the per-test folder below exists."""
    with tempfile.TemporaryDirectory(prefix="bitgguf-convert-") as empty:
        return subprocess.run([sys.executable, "-m", "convert", *map(str, args)], capture_output=True, text=True,
                              env=subprocess_env(), cwd=empty)


def expected_greedy() -> dict:
    return json.loads((TINYSTORIES / "expected_greedy.json").read_text())


def assert_teacher_forced(logits_fn, prompt_ids, greedy_ids, gaps, label=""):
    """Run on the recorded path: argmax must equal the recorded token wherever the recorded gap is >= TIE_GAP."""
    ids = list(prompt_ids) + list(greedy_ids[:-1])
    logits = np.asarray(logits_fn(ids))[len(prompt_ids) - 1:]
    predicted = logits.argmax(axis=1)
    bad = [i for i, (p, want, gap) in enumerate(zip(predicted, greedy_ids, gaps)) if gap >= TIE_GAP and p != want]
    assert not bad, (f"{label}: teacher-forced argmax differs from the recorded token at positions {bad} "
                     f"(gaps {[gaps[i] for i in bad]})")
    return predicted


def assert_free_greedy(generated, greedy_ids, gaps, label=""):
    """A free greedy run may leave the recorded path only at a near-tie (gap < TIE_GAP)."""
    n = min(len(generated), len(greedy_ids))
    for i in range(n):
        if generated[i] != greedy_ids[i]:
            assert gaps[i] < TIE_GAP, (f"{label}: greedy run left the recorded path at token {i} where the gap is "
                                       f"{gaps[i]} >= {TIE_GAP}: got {generated[:i + 1]}, "
                                       f"expected {greedy_ids[:i + 1]}")
            return i
    return None


@pytest.fixture(autouse=True)
def _subprocesses_import_what_the_tests_import(tmp_path, monkeypatch):
    """Run each test in its own temporary folder, with PYTHONPATH pointing at the folder the imported bitgguf
    lives in: `python -m bitgguf.cli` / `-m convert` in a subprocess then load the same build as the tests (the
    installed package in CI, not the checkout's uncompiled sources that the current folder would put first)."""
    monkeypatch.setenv("PYTHONPATH", subprocess_env()["PYTHONPATH"])
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def shared() -> Path:
    return require_shared()
