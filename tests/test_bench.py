"""The benchmark suite's plumbing (not its speed): `python -m bench --quick` with another engine beside it,
the history report, and the converter benchmark on a tiny shape."""
import json
import stat
import subprocess
import sys

import pytest
from conftest import subprocess_env

FAKE_LLAMA_BENCH = """#!{python}
import json, sys
args = sys.argv[1:]
with open({log!r}, "a") as f:
    f.write(" ".join(args) + "\\n")
n_prompt, n_gen = int(args[args.index("-p") + 1]), int(args[args.index("-n") + 1])
print(json.dumps([{{"n_prompt": n_prompt, "n_gen": n_gen, "avg_ts": 5.0, "samples_ts": [4.0, 5.0, 9.0]}}]))
"""


def _bench(*args, cwd):
    """`python -m bench...` from a temporary folder, loading the build the tests import (subprocess_env)."""
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd,
                          env=subprocess_env())


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    log = tmp / "fake.log"
    fake = tmp / "llama-bench"
    fake.write_text(FAKE_LLAMA_BENCH.format(python=sys.executable, log=str(log)))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    proc = _bench("bench", "--quick", "--no-mmap", "--cache", str(tmp / "cache"), "--out", str(tmp / "out"),
                  "--llama-bench", str(fake), cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    (result,) = list((tmp / "out").glob("*-quick.json"))
    return json.loads(result.read_text()), log.read_text().splitlines(), tmp


def _ternary_weights(shape) -> int:
    """Weights of a shape's ternary matmuls, from its sizes (q, k, v, o; gate, up, down), head_dim n_embd / n_head."""
    kv = shape.n_head_kv * shape.n_embd // shape.n_head
    return shape.n_layer * (2 * shape.n_embd ** 2 + 2 * kv * shape.n_embd + 3 * shape.n_ff * shape.n_embd)


def test_quick_run_has_both_engines(quick_run):
    record, calls, _ = quick_run
    rows = record["results"]
    engines = [r["isa"] for r in rows]
    assert "llama-bench" in engines and engines[0] != "llama-bench"
    for r in rows:
        assert r["model"] == "tiny" and r["threads"] == 1 and r["mmap"] is False
        assert r["tg16"]["median"] > 0 and r["pp16"]["median"] > 0 and 0 < r["tg16"]["pct_of_limit"]
        assert r["bytes_per_token"] > 0 and r["read_bandwidth"] > 0
    # decode after a 16-token prompt: bitgguf's row only (bitnet.cpp's llama-bench has no -d), and its limit counts
    # the K and V of the longer context
    own = rows[0]
    assert own["tg4@16"]["median"] > 0 and own["tg4@16"]["bytes_per_token"] > own["tg16"]["bytes_per_token"]
    ext = rows[engines.index("llama-bench")]
    assert "tg4@16" not in ext and len(calls) == 2
    # each decode repeat against a probe of the model's own memory right after it (bitgguf's rows only)
    for r in rows:
        for t in ("tg16", "tg4@16"):
            if r["isa"] == "llama-bench":
                assert t not in r or "pct_of_paired_limit" not in r[t]
                continue
            bw = r[t]["paired_read_bandwidth"]
            assert len(bw) == len(r[t]["runs"]) == 1 and bw[0] > 0
            want = 100 * r[t]["runs"][0] * r[t]["bytes_per_token"] / bw[0]
            assert r[t]["pct_of_paired_limit"] == pytest.approx(want)
    assert ext["pp16"] == {"median": 5.0, "min": 4.0, "max": 9.0, "runs": [4.0, 5.0, 9.0]}
    # the same file, thread count and test sizes, and --no-mmap passed on as -mmp 0
    for call, (p, n) in zip(calls, [("16", "0"), ("0", "16")]):
        args = call.split()
        assert args[args.index("-p") + 1] == p and args[args.index("-n") + 1] == n
        assert args[args.index("-t") + 1] == "1" and args[args.index("-mmp") + 1] == "0"
        assert args[args.index("-m") + 1].endswith("tiny-i2_s-f16.gguf")
    # the prompt against the core's int8 peak on the x86 levels that have one (the MACs: every ternary weight once)
    from bench.models import SHAPES
    TINY_TERNARY_WEIGHTS = _ternary_weights(SHAPES["tiny"])
    for r in rows:
        if r["isa"] not in ("scalar", "llama-bench"):  # bitgguf at every level but scalar
            assert r["int8_peak_mac_s_per_core"] > 0 and r["pp16"]["gemm_macs_per_token"] == TINY_TERNARY_WEIGHTS
            want = 100 * r["pp16"]["median"] * TINY_TERNARY_WEIGHTS / (r["int8_peak_mac_s_per_core"] * r["threads"])
            assert r["pp16"]["pct_of_int8_peak"] == pytest.approx(want)
        else:
            assert "pct_of_int8_peak" not in r["pp16"]
    # bitgguf's own row: a peak RSS of its own, not the parent's 64 MiB bandwidth buffer carried over
    own = rows[0]
    assert own["peak_rss_bytes"] < own["file_bytes"] + (200 << 20)


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512", "amx", "neon", "neon_dotprod"])
def test_int8_peak_per_level(isa):
    """int8_peak.c runs the level's int8 dot instruction where there is one and nothing elsewhere."""
    from bitgguf import _core, isa_levels
    if isa not in isa_levels():
        with pytest.raises(ValueError, match="not supported by this CPU"):
            _core.int8_peak(isa, 0.01)
        return
    peak = _core.int8_peak(isa, 0.05)
    if isa == "scalar":
        assert peak == 0.0
    else:  # MAC/s of one core: above 1 G on anything with these instructions, below 100 T
        assert 1e9 < peak < 1e14


def test_test_names():
    from bench.worker import parse_test
    assert parse_test("pp512") == ("pp", 512, 0) and parse_test("tg128") == ("tg", 128, 0)
    assert parse_test("tg32@2048") == ("tg", 32, 2048)
    for bad in ("pp16@8", "tg", "tg16@", "tg16@x", "xx16", "tg1 6"):
        with pytest.raises(ValueError):
            parse_test(bad)


def test_a_failing_engine_leaves_out_its_rows_only(tmp_path):
    # an engine that cannot load the file (bitnet.cpp's older forks and the 2B4T architecture): bitgguf's rows and
    # the JSON are still written, and the failure is reported
    fake = tmp_path / "llama-bench"
    fake.write_text(f"#!{sys.executable}\nimport sys\nsys.stderr.write('unknown model architecture')\nsys.exit(1)\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    proc = _bench("bench", "--quick", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
                  "--llama-bench", str(fake), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "skipped" in proc.stderr and "unknown model architecture" in proc.stderr
    (result,) = list((tmp_path / "out").glob("*-quick.json"))
    rows = json.loads(result.read_text())["results"]
    engines = [r["isa"] for r in rows]
    assert engines and "llama-bench" not in engines
    # a memory-mapped run also measures the model file's own map, and decode against that
    assert rows[0]["mmap"] is True and rows[0]["file_map_bandwidth"] > 0
    assert rows[0]["tg16"]["pct_of_file_map_limit"] > 0 and "tg % of map limit" in proc.stderr
    assert rows[0]["tg16"]["pct_of_paired_limit"] > 0 and "(paired " in proc.stderr


def test_history_report_lists_the_run(quick_run):
    record, _, tmp = quick_run
    stamp = next((tmp / "out").glob("*-quick.json")).name[:-5]
    # quick runs are left out of the history; the same file renamed as a full run is listed, both engines
    full = tmp / "out" / (stamp.replace("-quick", "") + ".json")
    full.write_text(next((tmp / "out").glob("*-quick.json")).read_text())
    proc = _bench("bench.report", "--results", str(tmp / "out"), cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("| 2")]
    assert len(lines) == len(record["results"]) and any("llama-bench" in line for line in lines)


def test_converter_benchmark_on_a_tiny_shape(tmp_path):
    proc = _bench("bench.converter", "--model", "tiny", "--heads", "auto,f16", "--cache", str(tmp_path / "c"),
                  "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (result,) = list((tmp_path / "out").glob("*-converter.json"))
    rows = json.loads(result.read_text())["results"]
    assert [r["head"] for r in rows] == ["auto", "f16"] and all(r["ok"] for r in rows)
    assert all(r["wall_s"] > 0 and r["peak_rss_mb"] > 0 for r in rows)
    assert rows[0]["out_bytes"] < rows[1]["out_bytes"]   # auto = Q5_K: a smaller embedding than f16


@pytest.mark.parametrize("ternary_type", ["I2_S", "F16"])
def test_random_bench_model_runs_as_the_reference_does(tmp_path, ternary_type):
    """bench.models' random files (including f16 alpha-scaled ternary floats, the input other tools' quantizers
    take) load and give the numpy reference's logits."""
    from bench.models import SHAPES, write_random_model
    from bitgguf.model import Model
    from bitgguf.reference import ReferenceModel
    from test_engine import assert_logits_match
    path = tmp_path / "tiny.gguf"
    write_random_model(path, SHAPES["tiny"], ternary_type, "F16")
    ids = [5, 9, 300, 7, 1999, 42]
    with Model(path, kv_type="f32") as m:
        assert_logits_match(m.logits(ids), ReferenceModel(path).logits(ids), f"bench tiny {ternary_type}")


def test_decode_bytes_count_tl2_as_read(tmp_path):
    """% of the bandwidth limit uses the bytes decode streams: a TL2 file's linears read in place stream the file's
    1.67-bit tensors; repacked at load, they are read as I2_S-sized rows, so its bytes per token are the I2_S
    file's (less I2_S's 32-byte scale fields)."""
    from bench.__main__ import _weight_bytes
    from bench.models import SHAPES, write_random_model
    from bitgguf.gguf import GGUFReader
    sizes = {}
    for t in ("I2_S", "TL2"):
        write_random_model(tmp_path / f"{t}.gguf", SHAPES["tiny"], t, "F16")
        sizes[t] = _weight_bytes(str(tmp_path / f"{t}.gguf"), tl2_in_place=False)
    with GGUFReader(tmp_path / "TL2.gguf") as r:
        n_tl = sum(t.type.name == "TL2" for t in r.tensors.values())
        file_bytes = sum(t.nbytes for t in r.tensors.values())
    assert n_tl > 0
    assert sizes["I2_S"] - 32 * n_tl <= sizes["TL2"] <= sizes["I2_S"], sizes
    assert _weight_bytes(str(tmp_path / "TL2.gguf"), tl2_in_place=True) == file_bytes < sizes["TL2"]


def test_kernel_microbenchmark_builds_and_reports(tmp_path):
    """bench/kernels_bench.c compiles against the kernels as they are (a changed kernel signature broke it once with
    no test noticing) and reports each I2_S kernel at the 2B4T shapes (timings of 1 ms over 1 MiB: plumbing only)."""
    from bench.kernels import build
    exe = build(str(tmp_path), "-O0")
    proc = subprocess.run([exe, "0.001", "I2_S", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    shapes = {"attn_q/attn_output", "attn_k/attn_v", "ffn_gate/ffn_up", "ffn_down"}
    scalar = {(r["shape"], r["kind"]) for r in rows if r["isa"] == "scalar"}
    assert scalar == {(s, k) for s in shapes for k in ("gemv_dram", "gemv_cache", "gemm")}
    assert all(r["type"] == "I2_S" and r["gb_s"] > 0 and r["gmac_s"] > 0 for r in rows)


@pytest.mark.parametrize("n_words", [1, 7, 1003, 4096 + 13])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_read_probe_reads_every_word_in_both_patterns(n_words, n_threads):
    """read_bandwidth sums a buffer of ones once per pattern (one stream per thread, two halves with a prefetch) and
    raises unless each sum is the word count: every word read once, whatever the split."""
    from bitgguf import _core
    assert _core.read_bandwidth(8 * n_words, n_threads, 1) > 0
