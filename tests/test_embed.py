"""The C API (bitgguf.h + libbitgguf) and the Cython .pxd, used the way an embedding program uses them.

Everything is located through the imported package (bitgguf.get_include(), get_library(), `python -m bitgguf
--cflags --libs`), so in CI this tests the installed package: the examples are built against it, run on
tinystories converted to I2_S, and must give the Python API's greedy tokens and text. The C GGUF reader is
checked through the public API (ctypes) on truncated and corrupt files.
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, REPO, TINYSTORIES, run_convert

import bitgguf
from bitgguf.model import Model
from gguf_models import make_random_gguf

PROMPTS = ("Once upon a time", "Tom and Lily went to the park. They saw")
N_TOKENS = 24
OK, ERR_IO, ERR_FORMAT, ERR_UNSUPPORTED, ERR_NOMEM, ERR_ARGUMENT, ERR_CONTEXT_FULL, ERR_NOT_FOUND, ERR_TYPE = range(9)


def _compiler(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(f"no C/C++ compiler ({', '.join(names)}) on PATH")


def _flags() -> list[str]:
    # not from the checkout's root: `python -m` would import the checkout's bitgguf from there, not the installed one
    out = subprocess.run([sys.executable, "-m", "bitgguf", "--cflags", "--libs"], capture_output=True, text=True,
                         env=_env(), check=True, cwd=Path(bitgguf.__file__).resolve().parents[1]).stdout
    return out.split()


def _env() -> dict:
    """The environment for subprocesses: they must import the same bitgguf as this process."""
    env = dict(os.environ)
    root = str(Path(bitgguf.__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else root
    return env


def _python_greedy(model: Model, prompt: str, n: int) -> tuple[list[int], bytes]:
    ids = list(model.generate(prompt, max_tokens=n, temperature=0))
    return ids, b"".join(model.tokenizer.token_to_piece(t, special=False) for t in ids)


@pytest.fixture(scope="module")
def tinystories(tmp_path_factory, shared):
    path = tmp_path_factory.mktemp("embed") / "tinystories-i2_s.gguf"
    result = run_convert("hf-to-gguf", TINYSTORIES, "--outfile", path, "--outtype", "i2_s")
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def expected(tinystories):
    with Model(tinystories) as m:
        return {p: _python_greedy(m, p, N_TOKENS) for p in PROMPTS}


class SamplerParams(ctypes.Structure):
    _fields_ = [("temperature", ctypes.c_float), ("top_k", ctypes.c_int32), ("top_p", ctypes.c_float),
                ("min_p", ctypes.c_float), ("repeat_penalty", ctypes.c_float), ("repeat_last_n", ctypes.c_int32),
                ("seed", ctypes.c_uint64)]


@pytest.fixture(scope="module")
def lib():
    """libbitgguf through ctypes, with the signatures this file uses."""
    L = ctypes.CDLL(bitgguf.get_library())
    P, I32, I64 = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64
    sigs = {
        "bitgguf_version": (ctypes.c_int, []),
        "bitgguf_model_open": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(P), ctypes.c_char_p, ctypes.c_size_t]),
        "bitgguf_model_free": (None, [P]),
        "bitgguf_n_vocab": (I32, [P]), "bitgguf_n_ctx_train": (I32, [P]), "bitgguf_n_layer": (I32, [P]),
        "bitgguf_arch": (ctypes.c_char_p, [P]),
        "bitgguf_meta_count": (I32, [P]), "bitgguf_meta_key": (ctypes.c_char_p, [P, I32]),
        "bitgguf_meta_type": (ctypes.c_int, [P, ctypes.c_char_p]),
        "bitgguf_meta_str": (ctypes.c_char_p, [P, ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t)]),
        "bitgguf_meta_int": (ctypes.c_int, [P, ctypes.c_char_p, ctypes.POINTER(I64)]),
        "bitgguf_meta_float": (ctypes.c_int, [P, ctypes.c_char_p, ctypes.POINTER(ctypes.c_double)]),
        "bitgguf_meta_array": (ctypes.c_int, [P, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int),
                                              ctypes.POINTER(ctypes.c_uint64)]),
        "bitgguf_tokenize": (I32, [P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                                   ctypes.POINTER(I32), I32]),
        "bitgguf_detokenize": (I32, [P, ctypes.POINTER(I32), I32, ctypes.c_char_p, I32, ctypes.c_int]),
        "bitgguf_context_new": (ctypes.c_int, [P, P, ctypes.POINTER(P), ctypes.c_char_p, ctypes.c_size_t]),
        "bitgguf_context_free": (None, [P]),
        "bitgguf_eval": (ctypes.c_int, [P, ctypes.POINTER(I32), I32]),
        "bitgguf_eval_all": (ctypes.c_int, [P, ctypes.POINTER(I32), I32, ctypes.POINTER(ctypes.c_float)]),
        "bitgguf_get_logits": (ctypes.POINTER(ctypes.c_float), [P]),
        "bitgguf_context_reset": (None, [P]),
        "bitgguf_n_ctx": (I32, [P]), "bitgguf_n_past": (I32, [P]),
        "bitgguf_context_error": (ctypes.c_char_p, [P]),
        "bitgguf_greedy": (I32, [ctypes.POINTER(ctypes.c_float), I32]),
        "bitgguf_token_is_eog": (ctypes.c_int, [P, I32]),
        "bitgguf_token_to_piece": (I32, [P, I32, ctypes.c_char_p, I32, ctypes.c_int]),
        "bitgguf_meta_array_str": (ctypes.c_void_p, [P, ctypes.c_char_p, ctypes.c_uint64,
                                                     ctypes.POINTER(ctypes.c_size_t)]),
        "bitgguf_meta_array_int": (ctypes.c_int, [P, ctypes.c_char_p, ctypes.c_uint64, ctypes.POINTER(I64)]),
        "bitgguf_meta_array_float": (ctypes.c_int, [P, ctypes.c_char_p, ctypes.c_uint64,
                                                    ctypes.POINTER(ctypes.c_double)]),
        "bitgguf_sampler_default_params": (SamplerParams, []),
        "bitgguf_sampler_new": (P, [ctypes.POINTER(SamplerParams)]),
        "bitgguf_sampler_free": (None, [P]),
        "bitgguf_sampler_reset": (None, [P]),
        "bitgguf_sampler_sample": (I32, [P, ctypes.POINTER(ctypes.c_float), I32]),
        "bitgguf_sampler_accept": (ctypes.c_int, [P, I32]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(L, name)
        fn.restype, fn.argtypes = res, args
    return L


def _open(lib, path) -> tuple[int, ctypes.c_void_p, str]:
    model, err = ctypes.c_void_p(), ctypes.create_string_buffer(512)
    rc = lib.bitgguf_model_open(os.fsencode(path), ctypes.byref(model), err, len(err))
    return rc, model, err.value.decode("utf-8", "replace")


class _Opened:
    """A model (and a context) opened through ctypes, freed on exit."""

    def __init__(self, lib, path, n_ctx: int = 0):
        self.lib = lib
        rc, self.model, msg = _open(lib, path)
        assert rc == OK, msg
        self.ctx = ctypes.c_void_p()
        err = ctypes.create_string_buffer(512)
        params = None
        if n_ctx:  # bitgguf_context_params: n_ctx, n_threads, kv_f32, isa
            class Params(ctypes.Structure):
                _fields_ = [("n_ctx", ctypes.c_int32), ("n_threads", ctypes.c_int32), ("kv_f32", ctypes.c_int32),
                            ("isa", ctypes.c_char_p)]
            params = ctypes.byref(Params(n_ctx, 0, 0, None))
        rc = lib.bitgguf_context_new(self.model, params, ctypes.byref(self.ctx), err, len(err))
        assert rc == OK, err.value

    def logits(self, ids) -> np.ndarray:
        n_vocab = self.lib.bitgguf_n_vocab(self.model)
        arr = (ctypes.c_int32 * len(ids))(*ids)
        out = np.zeros((len(ids), n_vocab), dtype=np.float32)
        self.lib.bitgguf_context_reset(self.ctx)
        rc = self.lib.bitgguf_eval_all(self.ctx, arr, len(ids), out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
        assert rc == OK, self.lib.bitgguf_context_error(self.ctx)
        return out

    def tokenize(self, text: str) -> list[int]:
        data = text.encode()
        buf = (ctypes.c_int32 * (len(data) + 8))()
        n = self.lib.bitgguf_tokenize(self.model, data, len(data), 1, 0, buf, len(buf))
        assert n >= 0
        return list(buf[:n])

    def greedy(self, prompt: str, n_tokens: int) -> tuple[list[int], list[int], bytes]:
        """(prompt ids, generated ids, generated bytes), the loop of examples/c/generate.c."""
        lib, ids = self.lib, self.tokenize(prompt)
        lib.bitgguf_context_reset(self.ctx)
        rc, out, text = lib.bitgguf_eval(self.ctx, (ctypes.c_int32 * len(ids))(*ids), len(ids)), [], b""
        piece = ctypes.create_string_buffer(256)
        while rc == OK and len(out) < n_tokens:
            t = lib.bitgguf_greedy(lib.bitgguf_get_logits(self.ctx), lib.bitgguf_n_vocab(self.model))
            if lib.bitgguf_token_is_eog(self.model, t):
                break
            out.append(t)
            k = lib.bitgguf_token_to_piece(self.model, t, piece, len(piece), 0)
            text += piece.raw[:k]
            if lib.bitgguf_n_past(self.ctx) >= lib.bitgguf_n_ctx(self.ctx):
                break
            rc = lib.bitgguf_eval(self.ctx, (ctypes.c_int32 * 1)(t), 1)
        assert rc == OK, lib.bitgguf_context_error(self.ctx)
        return ids, out, text

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.lib.bitgguf_context_free(self.ctx)
        self.lib.bitgguf_model_free(self.model)


# ---- the examples, built against the installed package ------------------------------------------------------

@pytest.fixture(scope="module")
def generate_exe(tmp_path_factory):
    cc = _compiler("cc", "gcc", "clang")
    exe = tmp_path_factory.mktemp("cexample") / "generate"
    cmd = [cc, "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", str(REPO / "examples" / "c" / "generate.c"),
           "-o", str(exe), *_flags()]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stderr}"
    return exe


def test_c_example_generates_what_the_python_api_generates(generate_exe, tinystories, expected):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}  # no Python needed, or used
    for prompt in PROMPTS:
        result = subprocess.run([str(generate_exe), str(tinystories), prompt, str(N_TOKENS)], capture_output=True,
                                env=env)
        assert result.returncode == 0, result.stderr.decode()
        tokens_line = [ln for ln in result.stderr.decode().splitlines() if ln.startswith("tokens:")]
        ids = [int(t) for t in tokens_line[0].split()[1:]]
        want_ids, want_text = expected[prompt]
        assert ids == want_ids, prompt
        assert result.stdout == prompt.encode() + want_text
        assert len(ids) > 5  # a real continuation, not an early stop


def test_c_example_does_not_link_python(generate_exe):
    if not sys.platform.startswith("linux") or not shutil.which("ldd"):
        pytest.skip("ldd is Linux-only")
    deps = subprocess.run(["ldd", str(generate_exe)], capture_output=True, text=True).stdout
    assert "libbitgguf" in deps and "libpython" not in deps, deps
    deps = subprocess.run(["ldd", bitgguf.get_library()], capture_output=True, text=True).stdout
    assert "libpython" not in deps, deps


def test_c_example_reports_errors(generate_exe, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 20)
    result = subprocess.run([str(generate_exe), str(bad), "hi", "4"], capture_output=True, text=True)
    assert result.returncode == 1
    assert str(bad) in result.stderr and "format error" in result.stderr


def test_cython_example_generates_what_the_python_api_generates(tmp_path, tinystories, expected):
    _compiler("cc", "gcc", "clang")
    import importlib.util
    missing = [m for m in ("Cython", "setuptools") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: building examples/cython needs them (pip install "
                    "'.[test]' should bring them: the [test] extra in pyproject.toml)")
    src = tmp_path / "cython"
    shutil.copytree(REPO / "examples" / "cython", src)
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=src, capture_output=True,
                           text=True, env=_env())
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    code = ("import json, sys, greedy\n"
            "out = {p: greedy.generate(sys.argv[1], p, int(sys.argv[2])) for p in json.loads(sys.argv[3])}\n"
            "print(json.dumps({p: [ids, text.hex()] for p, (ids, text) in out.items()}))\n")
    run = subprocess.run([sys.executable, "-c", code, str(tinystories), str(N_TOKENS), json.dumps(PROMPTS)],
                         cwd=src, capture_output=True, text=True, env=_env())
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    for prompt in PROMPTS:
        ids, text = got[prompt]
        assert ids == expected[prompt][0], prompt
        assert bytes.fromhex(text) == expected[prompt][1]


# ---- the header -----------------------------------------------------------------------------------------------

_HEADER_USER = r"""
#include "bitgguf.h"
#include <stdio.h>
int main(void) {
    bitgguf_context_params p = bitgguf_context_default_params();
    bitgguf_sampler_params s = bitgguf_sampler_default_params();
    bitgguf_model *m = NULL;
    char err[64];
    int rc = bitgguf_model_open("/nonexistent/x.gguf", &m, err, sizeof err);
    printf("%d %d %d %d %s\n", bitgguf_version() == BITGGUF_VERSION, rc, p.n_ctx, s.top_k, bitgguf_status_string(rc));
    return m != NULL;
}
"""


@pytest.mark.parametrize("lang", ["c99", "c++11"])
def test_header_compiles_strictly_as_c99_and_cxx(tmp_path, lang):
    if lang == "c99":
        cc, src, std = _compiler("cc", "gcc", "clang"), tmp_path / "user.c", "-std=c99"
    else:
        cc, src, std = _compiler("c++", "g++", "clang++"), tmp_path / "user.cpp", "-std=c++11"
    src.write_text(_HEADER_USER)
    exe = tmp_path / "user"
    cmd = [cc, std, "-Wall", "-Wextra", "-pedantic", "-Werror", str(src), "-o", str(exe), *_flags()]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stderr}"
    run = subprocess.run([str(exe)], capture_output=True, text=True)
    assert run.returncode == 0
    assert run.stdout.split() == ["1", str(ERR_IO), "0", "40", "I/O", "error"]


def test_version_and_flags():
    major, minor, patch = (int(x) for x in bitgguf.__version__.split(".")[:3])
    header = (Path(bitgguf.get_include()) / "bitgguf.h").read_text()
    for name, value in (("MAJOR", major), ("MINOR", minor), ("PATCH", patch)):
        assert f"#define BITGGUF_VERSION_{name} {value}\n" in header
    assert (Path(bitgguf.get_include()) / "bitgguf.pxd").exists()
    flags = _flags()
    assert f"-I{bitgguf.get_include()}" in flags and "-lbitgguf" in flags


# ---- the model through the C API: metadata, tokenizer, logits, threads ---------------------------------------

def test_metadata_and_tokenizer_match_python(lib, tinystories):
    with Model(tinystories) as py, _Opened(lib, tinystories) as c:
        m = c.model
        md = py.metadata
        assert lib.bitgguf_n_vocab(m) == py.n_vocab
        assert lib.bitgguf_n_layer(m) == py.config.n_layer
        assert lib.bitgguf_n_ctx_train(m) == py.config.n_ctx_train
        assert lib.bitgguf_arch(m).decode() == md["general.architecture"]
        keys = [lib.bitgguf_meta_key(m, i).decode() for i in range(lib.bitgguf_meta_count(m))]
        assert keys == list(md)
        arch = md["general.architecture"]
        n, v, f = ctypes.c_size_t(), ctypes.c_int64(), ctypes.c_double()
        assert lib.bitgguf_meta_str(m, b"general.architecture", ctypes.byref(n)) == arch.encode()
        assert n.value == len(arch)
        assert lib.bitgguf_meta_int(m, f"{arch}.block_count".encode(), ctypes.byref(v)) == OK
        assert v.value == md[f"{arch}.block_count"]
        assert lib.bitgguf_meta_float(m, f"{arch}.attention.layer_norm_rms_epsilon".encode(), ctypes.byref(f)) == OK
        assert np.float32(f.value) == np.float32(md[f"{arch}.attention.layer_norm_rms_epsilon"])
        assert lib.bitgguf_meta_int(m, b"no.such.key", ctypes.byref(v)) == ERR_NOT_FOUND
        assert lib.bitgguf_meta_type(m, b"no.such.key") == -1
        assert lib.bitgguf_meta_int(m, b"general.architecture", ctypes.byref(v)) == ERR_TYPE
        assert lib.bitgguf_meta_str(m, f"{arch}.block_count".encode(), None) is None
        et, count = ctypes.c_int(), ctypes.c_uint64()
        assert lib.bitgguf_meta_array(m, b"tokenizer.ggml.tokens", ctypes.byref(et), ctypes.byref(count)) == OK
        assert (et.value, count.value) == (8, len(md["tokenizer.ggml.tokens"]))

        for text in ("Once upon a time", " two  spaces\tand a tab\n", "naïve café 😀 日本", ""):
            data = text.encode()
            buf = (ctypes.c_int32 * (len(data) + 8))()
            got = lib.bitgguf_tokenize(m, data, len(data), 1, 0, buf, len(buf))
            ids = list(buf[:got])
            assert ids == py.tokenize(text), text
            out = ctypes.create_string_buffer(4 * len(data) + 16)
            k = lib.bitgguf_detokenize(m, buf, got, out, len(out), 0)
            assert out.raw[:k].decode() == py.detokenize(ids)
        # array elements
        tokens = md["tokenizer.ggml.tokens"]
        for i in (0, 1, len(tokens) - 1):
            p = lib.bitgguf_meta_array_str(m, b"tokenizer.ggml.tokens", i, ctypes.byref(n))
            assert ctypes.string_at(p, n.value).decode() == tokens[i]
        assert not lib.bitgguf_meta_array_str(m, b"tokenizer.ggml.tokens", len(tokens), ctypes.byref(n))
        assert not lib.bitgguf_meta_array_str(m, b"tokenizer.ggml.scores", 0, ctypes.byref(n))
        assert lib.bitgguf_meta_array_float(m, b"tokenizer.ggml.scores", 7, ctypes.byref(f)) == OK
        assert np.float32(f.value) == md["tokenizer.ggml.scores"][7]
        assert lib.bitgguf_meta_array_int(m, b"tokenizer.ggml.token_type", 3, ctypes.byref(v)) == OK
        assert v.value == md["tokenizer.ggml.token_type"][3]
        assert lib.bitgguf_meta_array_int(m, b"tokenizer.ggml.tokens", 0, ctypes.byref(v)) == ERR_TYPE
        assert lib.bitgguf_meta_array_int(m, b"tokenizer.ggml.token_type", len(tokens), ctypes.byref(v)) == \
            ERR_NOT_FOUND
        # a buffer too small: minus the size needed
        small = (ctypes.c_int32 * 1)()
        assert lib.bitgguf_tokenize(m, b"Once upon a time", 16, 1, 0, small, 1) == -len(py.tokenize("Once upon a time"))


@pytest.mark.parametrize("fixture", ["bitnet-cpp/tiny-2b4t-bitnetcpp-i2_s.gguf",
                                     "bitnet-cpp/tinystories-ternary-3m-bitnetcpp-i2_s.gguf",
                                     "llama-cpp/tinystories-ternary-3m-llamacpp-tq1_0.gguf",
                                     "llama-cpp/tinystories-ternary-3m-llamacpp-tq2_0.gguf"])
def test_files_from_other_tools_through_the_c_api(lib, shared, fixture):
    """bitnet.cpp's and llama.cpp's files (SentencePiece and Llama-3 BPE vocabularies): the C API tokenizes the
    recorded prompts to the recorded ids and generates what the Python API generates."""
    path = FIXTURES / fixture
    records = json.loads(Path(str(path) + ".expected.json").read_text())["prompts"]
    with Model(path) as py, _Opened(lib, path) as c:
        for rec in records:
            ids, out, text = c.greedy(rec["prompt"], 16)
            assert ids == rec["prompt_ids"], rec["prompt"]
            want = list(py.generate(rec["prompt"], max_tokens=16, temperature=0))
            assert out == want, rec["prompt"]
            assert text == b"".join(py.tokenizer.token_to_piece(t, special=False) for t in want)


@pytest.mark.parametrize("ternary_type, head_type", [("I2_S", "F16"), ("TQ2_0", "F16"), ("TQ1_0", "F16"),
                                                     ("TL1", "F16"), ("TL2", "F16"), ("F32", "F16"),
                                                     ("F16", "F32"), ("I2_S", "BF16"),
                                                     ("I2_S", "Q8_0"), ("I2_S", "Q6_K"), ("I2_S", "Q5_K"),
                                                     ("I2_S", "Q4_K"), ("I2_S", "Q4_0")])
def test_logits_equal_the_python_api(lib, tmp_path, ternary_type, head_type):
    """Same engine, same kernels: bit-identical logits (TL1/TL2 and alpha-scaled float weights are repacked by the
    C loader as the Python side does). n_ff 480: TL rows that are not whole 128-weight blocks (I2_ROWS)."""
    n_ff = 480 if ternary_type in ("TL1", "TL2") else 512
    path = make_random_gguf(tmp_path / f"{ternary_type}.gguf", n_embd=256, n_ff=n_ff, n_layer=2,
                            ternary_type=ternary_type, head_type=head_type, seed=3)
    ids = [1, 5, 9, 200, 7, 7, 42, 3, 100, 250, 11, 12, 13, 14, 15, 16, 17, 18, 19]  # more than one batch
    with Model(path) as py, _Opened(lib, path) as c:
        np.testing.assert_array_equal(c.logits(ids), py.logits(ids))
        # token by token gives the same last logits as the batch
        lib.bitgguf_context_reset(c.ctx)
        for t in ids:
            assert lib.bitgguf_eval(c.ctx, (ctypes.c_int32 * 1)(t), 1) == OK
        last = np.ctypeslib.as_array(lib.bitgguf_get_logits(c.ctx), shape=(py.n_vocab,))
        np.testing.assert_array_equal(last, py.logits(ids)[-1])


@pytest.mark.parametrize("params", [dict(temperature=0.0), dict(temperature=0.8, seed=7),
                                    dict(temperature=1.3, top_k=5, top_p=0.9, min_p=0.0, repeat_penalty=1.3,
                                         repeat_last_n=8, seed=2 ** 63 + 5)])
def test_sampler_draws_what_the_python_sampler_draws(lib, params):
    from bitgguf import Sampler
    c_params = lib.bitgguf_sampler_default_params()
    assert (c_params.temperature, c_params.top_k, c_params.repeat_last_n, c_params.seed) == (
        np.float32(0.8), 40, 64, 0)
    for k, v in params.items():
        setattr(c_params, k, v)
    py = Sampler(**{**dict(seed=0), **params})
    s = lib.bitgguf_sampler_new(ctypes.byref(c_params))
    assert s
    try:
        rng = np.random.default_rng(1)
        for _ in range(40):
            logits = (rng.standard_normal(500) * 3).astype(np.float32)
            got = lib.bitgguf_sampler_sample(s, logits.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), 500)
            assert got == py.sample(logits)
            assert lib.bitgguf_sampler_accept(s, got) == OK
            py.accept(got)
    finally:
        lib.bitgguf_sampler_free(s)
    bad = lib.bitgguf_sampler_default_params()
    bad.min_p = 2.0
    assert not lib.bitgguf_sampler_new(ctypes.byref(bad))


def test_context_limits_and_bad_tokens(lib, tmp_path):
    path = make_random_gguf(tmp_path / "m.gguf", n_layer=1)
    with _Opened(lib, path, n_ctx=8) as c:
        assert lib.bitgguf_n_ctx(c.ctx) == 8
        assert lib.bitgguf_get_logits(c.ctx) is None or not lib.bitgguf_get_logits(c.ctx)
        ids = (ctypes.c_int32 * 9)(*range(1, 10))
        assert lib.bitgguf_eval(c.ctx, ids, 9) == ERR_CONTEXT_FULL
        assert b"context full" in lib.bitgguf_context_error(c.ctx)
        assert lib.bitgguf_n_past(c.ctx) == 0  # nothing appended on error
        bad = (ctypes.c_int32 * 2)(1, 10 ** 6)
        assert lib.bitgguf_eval(c.ctx, bad, 2) == ERR_ARGUMENT
        assert b"out of range" in lib.bitgguf_context_error(c.ctx)
        assert lib.bitgguf_eval(c.ctx, ids, 0) == ERR_ARGUMENT
        assert lib.bitgguf_eval(c.ctx, ids, 8) == OK
        assert lib.bitgguf_n_past(c.ctx) == 8


def test_contexts_of_one_model_run_in_parallel_threads(lib, tmp_path):
    """One model shared read-only, one context per thread (ctypes drops the GIL during calls)."""
    path = make_random_gguf(tmp_path / "m.gguf", n_embd=256, n_ff=512, n_layer=2, seed=5)
    with Model(path) as py:
        want = py.logits(list(range(1, 40)))
    rc, model, msg = _open(lib, path)
    assert rc == OK, msg
    results, errors = {}, []

    def worker(k):
        try:
            ctx, err = ctypes.c_void_p(), ctypes.create_string_buffer(256)
            assert lib.bitgguf_context_new(model, None, ctypes.byref(ctx), err, len(err)) == OK, err.value
            ids = list(range(1, 40))
            out = np.zeros((len(ids), py.n_vocab), dtype=np.float32)
            for _ in range(3):
                lib.bitgguf_context_reset(ctx)
                assert lib.bitgguf_eval_all(ctx, (ctypes.c_int32 * len(ids))(*ids), len(ids),
                                            out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))) == OK
            results[k] = out
            lib.bitgguf_context_free(ctx)
        except BaseException as e:  # noqa: B036 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lib.bitgguf_model_free(model)
    assert not errors, errors
    for out in results.values():
        np.testing.assert_array_equal(out, want)


# ---- the C GGUF reader on truncated and corrupt files --------------------------------------------------------

def _gguf(kvs: list[tuple[str | bytes, int, bytes]], tensors: list[tuple[str, list[int], int, int]], data: bytes = b"",
          version: int = 3, n_kv=None, n_tensors=None, alignment: int = 32) -> bytes:
    """GGUF bytes from raw parts: kvs (key, value type, value bytes), tensors (name, ne, type id, offset)."""
    def s(x: bytes) -> bytes:
        return struct.pack("<Q", len(x)) + x
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                                len(kvs) if n_kv is None else n_kv)
    for key, vtype, value in kvs:
        out += s(key if isinstance(key, bytes) else key.encode()) + struct.pack("<I", vtype) + value
    for name, ne, type_id, offset in tensors:
        out += s(name.encode()) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne)
        out += struct.pack("<IQ", type_id, offset)
    out += b"\0" * (-len(out) % alignment)
    return out + data


def _str(x: str) -> bytes:
    return struct.pack("<Q", len(x.encode())) + x.encode()


_ARCH = ("general.architecture", 8, _str("bitnet-b1.58"))
_F32_4 = ("t", [4], 0, 0)


@pytest.mark.parametrize("name, blob, status, words", [
    ("magic", b"GGUF"[::-1] + b"\0" * 40, ERR_FORMAT, ["not a GGUF file", "magic"]),
    ("version", _gguf([_ARCH], [], version=1), ERR_FORMAT, ["unsupported GGUF version 1"]),
    ("lying counts", _gguf([_ARCH], [], n_kv=1 << 40), ERR_FORMAT, ["header claims", "too small"]),
    ("string length", _gguf([("k", 8, struct.pack("<Q", 1 << 62) + b"x")], []), ERR_FORMAT,
     ["truncated file", "metadata 'k'"]),
    ("value type", _gguf([("k", 13, b"\0" * 8)], []), ERR_FORMAT, ["unknown value type 13"]),
    ("utf-8 key", _gguf([(b"k\xed\xb3\xbf", 4, b"\0" * 4)], []), ERR_FORMAT, ["metadata key #0 is not valid UTF-8"]),
    ("array count", _gguf([("k", 9, struct.pack("<IQ", 4, 1 << 60))], []), ERR_FORMAT, ["claims", "elements"]),
    ("string array count", _gguf([("k", 9, struct.pack("<IQ", 8, 1 << 40))], []), ERR_FORMAT,
     ["claims", "rest of the file"]),
    ("nesting", _gguf([("k", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 9, 1) * 4 +
                                 struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 4, 0))], []),
     ERR_FORMAT, ["deeper than 4"]),
    ("duplicate key", _gguf([("k", 4, b"\0" * 4), ("k", 4, b"\0" * 4)], []), ERR_FORMAT, ["'k' appears twice"]),
    ("alignment", _gguf([("general.alignment", 4, struct.pack("<I", 24))], []), ERR_FORMAT, ["general.alignment"]),
    ("n_dims", _gguf([_ARCH], [("t", [1, 1, 1, 1, 1], 0, 0)]), ERR_FORMAT, ["n_dims 5"]),
    ("zero dim", _gguf([_ARCH], [("t", [0], 0, 0)]), ERR_FORMAT, ["dimension 0"]),
    ("overflow", _gguf([_ARCH], [("t", [1 << 40, 1 << 40], 0, 0)]), ERR_FORMAT, ["2^48", "overflows"]),
    ("unknown type", _gguf([_ARCH], [("t", [4], 77, 0)], b"\0" * 16), ERR_UNSUPPORTED, ["ggml type 77"]),
    ("type 39 elsewhere", _gguf([("general.architecture", 8, _str("llama"))], [("t", [32, 32], 39, 0)]),
     ERR_UNSUPPORTED, ["MXFP4"]),
    ("row length", _gguf([_ARCH], [("t", [100, 2], 36, 0)], b"\0" * 128), ERR_FORMAT, ["multiple of 128"]),
    ("tl2 rows", _gguf([_ARCH], [("t", [64, 40], 39, 0)], b"\0" * 2048), ERR_FORMAT,
     ["TL2 needs the row count (out_features, 40) to be a multiple of 32"]),
    ("misaligned", _gguf([_ARCH], [("t", [4], 0, 8)], b"\0" * 64), ERR_FORMAT, ["not a multiple of the alignment"]),
    ("past the end", _gguf([_ARCH], [("t", [4], 0, 32)], b"\0" * 40), ERR_FORMAT, ["'t'", "truncated or bad offset"]),
    ("huge offset", _gguf([_ARCH], [("t", [4], 0, (1 << 64) - 32)], b"\0" * 16), ERR_FORMAT, ["bad offset"]),
    ("duplicate tensor", _gguf([_ARCH], [_F32_4, _F32_4], b"\0" * 16), ERR_FORMAT, ["'t' appears twice"]),
    ("valid, not a model", _gguf([("general.architecture", 8, _str("llama"))], [_F32_4], b"\0" * 16),
     ERR_UNSUPPORTED, ["general.architecture is 'llama'"]),
    ("missing key", _gguf([_ARCH], [_F32_4], b"\0" * 16), ERR_FORMAT, ["missing metadata key",
                                                                       "bitnet-b1.58.embedding_length"]),
])
def test_corrupt_files_are_rejected_with_a_reason(lib, tmp_path, name, blob, status, words):
    path = tmp_path / "bad.gguf"
    path.write_bytes(blob)
    rc, model, msg = _open(lib, path)
    assert not model
    assert rc == status, (name, msg)
    assert msg.startswith(str(path)), msg
    for w in words:
        assert w in msg, (name, msg)


def test_io_errors(lib, tmp_path):
    rc, model, msg = _open(lib, tmp_path / "missing.gguf")
    assert (rc, bool(model)) == (ERR_IO, False) and "missing.gguf" in msg and "cannot open" in msg
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    rc, _, msg = _open(lib, empty)
    assert rc == ERR_FORMAT and "empty file" in msg
    rc, _, msg = _open(lib, tmp_path)  # a directory
    assert rc == ERR_IO


def test_truncation_at_every_header_byte_is_a_format_error(lib, tmp_path):
    """A small complete model opens; every prefix that cuts its header (and a few that cut its data) fails with
    BITGGUF_ERR_FORMAT and a message naming the file, never a crash or a read past the end."""
    full = Path(make_random_gguf(tmp_path / "small.gguf", n_embd=128, n_layer=1, n_ff=128, n_vocab=40)).read_bytes()
    rc, model, msg = _open(lib, tmp_path / "small.gguf")
    assert rc == OK, msg
    lib.bitgguf_model_free(model)
    with bitgguf.GGUFReader(tmp_path / "small.gguf") as r:
        header_end = r.data_offset
        last_end = max(t.offset + t.nbytes for t in r.tensors.values())
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(full)
    sizes = list(range(header_end + 1)) + [header_end + 100, (header_end + last_end) // 2, last_end - 1]
    for size in sorted(sizes, reverse=True):  # shrinking one file in place is much faster than rewriting it
        os.truncate(cut, size)
        rc, model, msg = _open(lib, cut)
        assert rc == ERR_FORMAT and not model, (size, rc, msg)
        assert msg.startswith(str(cut)), (size, msg)
