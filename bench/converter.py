"""`python -m bench.converter`: time `python -m convert hf-to-gguf` on a checkpoint at a real model's shapes.

Writes (once, cached in bench/cache/) a BitNetForCausalLM bf16 checkpoint with the 2B4T shapes (or another of
bench/models.py's SHAPES) and random weights, as sharded safetensors with the Llama-3 tokenizer from ../shared when
present; then runs the converter in a child process per outtype / head type and records wall time and the child's
peak RSS (the issue's budget for 2B4T: <= 60 s and <= 3 GB). One JSON per run in bench/results/.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

from bench.models import SHAPES

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED_TOKENIZER = os.path.join(HERE, "..", "..", "shared", "tokenizers", "llama3", "tokenizer.json")
SHARD_BYTES = 2 << 30


def _tensor_shapes(s) -> dict:
    hd = s.n_embd // s.n_head
    shapes = {"model.embed_tokens.weight": (s.n_vocab, s.n_embd)}
    for i in range(s.n_layer):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (s.n_embd,), p + "post_attention_layernorm.weight": (s.n_embd,),
            p + "self_attn.attn_sub_norm.weight": (s.n_head * hd,), p + "mlp.ffn_sub_norm.weight": (s.n_ff,),
            p + "self_attn.q_proj.weight": (s.n_head * hd, s.n_embd),
            p + "self_attn.k_proj.weight": (s.n_head_kv * hd, s.n_embd),
            p + "self_attn.v_proj.weight": (s.n_head_kv * hd, s.n_embd),
            p + "self_attn.o_proj.weight": (s.n_embd, s.n_head * hd),
            p + "mlp.gate_proj.weight": (s.n_ff, s.n_embd), p + "mlp.up_proj.weight": (s.n_ff, s.n_embd),
            p + "mlp.down_proj.weight": (s.n_embd, s.n_ff),
        })
    shapes["model.norm.weight"] = (s.n_embd,)
    return shapes


def _bf16_random(rng, name: str, shape: tuple) -> bytes:
    """Random bf16 bytes: norms near 1, weights N(0, 0.02) (embedding 0.1), produced a few MB at a time."""
    n = int(np.prod(shape))
    out = bytearray()
    for start in range(0, n, 1 << 22):
        k = min(1 << 22, n - start)
        if len(shape) == 1:
            v = rng.uniform(0.5, 1.5, k).astype(np.float32)
        else:
            v = rng.standard_normal(k, dtype=np.float32) * np.float32(0.1 if "embed" in name else 0.02)
        out += (v.view(np.uint32) >> 16).astype(np.uint16).tobytes()   # truncation: any bf16 will do
    return bytes(out)


def make_checkpoint(model: str, folder: str) -> str:
    """The checkpoint folder (written unless a complete one is there)."""
    s = SHAPES[model]
    done = os.path.join(folder, ".complete")
    if os.path.exists(done):
        return folder
    os.makedirs(folder, exist_ok=True)
    shapes = _tensor_shapes(s)
    shards, cur, size = [], [], 0
    for name, shape in shapes.items():
        nbytes = int(np.prod(shape)) * 2
        if cur and size + nbytes > SHARD_BYTES:
            shards.append(cur)
            cur, size = [], 0
        cur.append(name)
        size += nbytes
    shards.append(cur)
    rng = np.random.default_rng(0)
    weight_map = {}
    for k, names in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        header, offset = {"__metadata__": {"format": "pt"}}, 0
        for name in names:
            nbytes = int(np.prod(shapes[name])) * 2
            header[name] = {"dtype": "BF16", "shape": list(shapes[name]), "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
        head = json.dumps(header).encode()
        head += b" " * (-len(head) % 8)
        with open(os.path.join(folder, fname), "wb") as f:
            f.write(struct.pack("<Q", len(head)) + head)
            for name in names:
                f.write(_bf16_random(rng, name, shapes[name]))
                weight_map[name] = fname
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)
    config = {
        "architectures": ["BitNetForCausalLM"], "model_type": "bitnet", "vocab_size": s.n_vocab,
        "hidden_size": s.n_embd, "intermediate_size": s.n_ff, "num_hidden_layers": s.n_layer,
        "num_attention_heads": s.n_head, "num_key_value_heads": s.n_head_kv, "hidden_act": "relu2",
        "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "tie_word_embeddings": True,
        "rope_theta": s.rope_theta, "bos_token_id": 128000, "eos_token_id": 128001,
    }
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    if os.path.exists(SHARED_TOKENIZER) and s.n_vocab >= 128256:
        shutil.copy(SHARED_TOKENIZER, os.path.join(folder, "tokenizer.json"))
        bos, eos = "<|begin_of_text|>", "<|end_of_text|>"
    else:   # a byte-level BPE of the 256 byte symbols and two specials: enough to convert
        from bench.models import _BYTE_SYMBOLS
        vocab = {ch: i for i, ch in enumerate(_BYTE_SYMBOLS)}
        bos, eos = "<s>", "</s>"
        added = [{"id": 256 + i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                  "normalized": False, "special": True} for i, t in enumerate((bos, eos))]
        with open(os.path.join(folder, "tokenizer.json"), "w") as f:
            json.dump({"version": "1.0", "added_tokens": added, "normalizer": None,
                       "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
                       "decoder": {"type": "ByteLevel"},
                       "model": {"type": "BPE", "vocab": vocab, "merges": []}}, f)
        config["bos_token_id"], config["eos_token_id"] = 256, 257
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": bos, "eos_token": eos}, f)
    open(done, "w").close()
    return folder


def run_converter(folder: str, outtype: str, head: str, out_dir: str) -> dict:
    """One conversion in a child process: wall seconds, the child's peak RSS, output size."""
    outfile = os.path.join(out_dir, f"bench-{outtype}-{head}.gguf")
    code = ("import resource, runpy, sys; sys.argv = sys.argv[1:]\n"
            "try:\n    runpy.run_module('convert', run_name='__main__')\n"
            "finally:\n    print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")
    cmd = [sys.executable, "-c", code, "convert", "hf-to-gguf", folder, "--outfile", outfile, "--outtype", outtype,
           "--head-type", head]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 and "PEAK_RSS_KB" not in proc.stderr:
        raise SystemExit(f"bench.converter: the converter failed:\n{proc.stderr[-2000:]}")
    peak_kb = max((int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_RSS_KB")),
                  default=0)
    size = os.path.getsize(outfile) if os.path.exists(outfile) else 0
    if os.path.exists(outfile):
        os.remove(outfile)
    return {"outtype": outtype, "head": head, "ok": proc.returncode == 0, "wall_s": round(wall, 2),
            "peak_rss_mb": round(peak_kb / 1024, 1), "out_bytes": size}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.converter", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="2b4t", choices=sorted(SHAPES))
    ap.add_argument("--outtypes", default="i2_s", help="comma list of --outtype values")
    ap.add_argument("--heads", default="f16,q5_k", help="comma list of --head-type values")
    ap.add_argument("--cache", default=os.path.join(HERE, "cache"), help="where the checkpoint is kept")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="folder for the JSON result")
    args = ap.parse_args(argv)
    folder = os.path.join(args.cache, f"hf-{args.model}-bf16")
    t0 = time.perf_counter()
    make_checkpoint(args.model, folder)
    print(f"bench.converter: checkpoint {folder} ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.cache) as tmp:
        for outtype in args.outtypes.split(","):
            for head in args.heads.split(","):
                r = run_converter(folder, outtype, head, tmp)
                rows.append(r)
                print(f"| {args.model} | {outtype} | {head} | {r['wall_s']:.1f} s | {r['peak_rss_mb']:.0f} MB | "
                      f"{r['out_bytes'] / 1e9:.3f} GB | {'ok' if r['ok'] else 'FAILED'} |")
    os.makedirs(args.out, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = os.path.join(args.out, f"{stamp}-converter.json")
    with open(path, "w") as f:
        json.dump({"model": args.model, "cpu_count": os.cpu_count(), "results": rows,
                   "self_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, f, indent=2)
    print(f"bench.converter: wrote {path}", file=sys.stderr)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
