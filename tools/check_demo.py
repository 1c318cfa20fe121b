"""Check that transformers and bitgguf agree on the demo model: greedy text, tie-aware.

    python tools/check_demo.py /tmp/demo-shakespeare-hf bitgguf/data/demo-shakespeare.gguf [--prompt P] [-n N]

Needs torch + transformers (a one-off check, not a dependency).

transformers' `BitNetForCausalLM` on a checkpoint of bf16 latent weights without a `quantization_config` runs every
projection as a plain float `nn.Linear`: nothing is ternarized. To run the model as it was trained (and as the GGUF
holds it), each projection is swapped for transformers' own `AutoBitLinear(online_quant=True)`, the layer its BitNet
quantizer builds for `quantization_config = {quant_method: bitnet, linear_class: autobitlinear, quantization_mode:
online}`: absmean ternary weights and per-token int8 activations at every forward.

The path transformers takes greedily is the recorded one; its top-2 logit gaps say where a different argmax is a tie
(int8 activation rounding turns last-bit float differences into whole quantization steps). bitgguf's numpy reference
(teacher-forced and free greedy) and, when available, its engine (bitgguf.Model, free greedy) must agree with it
wherever the gap is >= TIE_GAP.
"""

import argparse
import os
import sys

os.environ.setdefault("TORCH_COMPILE_DISABLE", "1")  # transformers' quant functions are @torch.compile'd

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout's bitgguf

TIE_GAP = 0.25  # the same threshold as tests/conftest.py


def top2_gap(logits):
    top = np.sort(np.asarray(logits, dtype=np.float64), axis=-1)
    return top[..., -1] - top[..., -2]


def transformers_greedy(ckpt, prompt, n):
    import torch
    from tokenizers import Tokenizer
    from transformers import BitNetForCausalLM
    from transformers.integrations.bitnet import AutoBitLinear

    torch.set_num_threads(1)
    model = BitNetForCausalLM.from_pretrained(ckpt, dtype=torch.float32).eval()
    swapped = 0
    for name, mod in list(model.model.named_modules()):
        if isinstance(mod, torch.nn.Linear):
            q = AutoBitLinear(mod.in_features, mod.out_features, bias=False, online_quant=True)
            q.weight.data.copy_(mod.weight.data)
            model.model.set_submodule(name, q)
            swapped += 1
    tok = Tokenizer.from_file(os.path.join(ckpt, "tokenizer.json"))
    ids = tok.encode(prompt).ids
    out, gaps = [], []
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([ids + out])).logits[0, -1].numpy()
            gaps.append(float(top2_gap(logits)))
            out.append(int(logits.argmax()))
        # logits of every position on the recorded path, for a direct comparison
        full = model(torch.tensor([ids + out[:-1]])).logits[0].numpy()
    return tok, ids, out, gaps, full, swapped


def first_divergence(got, want, gaps):
    """(index, ok): where a free run first leaves the recorded path and whether that is at a near-tie."""
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return i, gaps[i] < TIE_GAP
    return None, True


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("gguf")
    p.add_argument("--prompt", default="ROMEO:\nBut soft, what light")
    p.add_argument("-n", type=int, default=48)
    p.add_argument("--record", action="store_true", help="print transformers' path as Python constants for the tests")
    a = p.parse_args(argv)

    tok, prompt_ids, hf_ids, gaps, hf_logits, swapped = transformers_greedy(a.checkpoint, a.prompt, a.n)
    print(f"transformers: {swapped} projections as online AutoBitLinear; prompt {len(prompt_ids)} tokens")
    print(f"transformers greedy: {tok.decode(prompt_ids + hf_ids)!r}")
    near = [i for i, g in enumerate(gaps) if g < TIE_GAP]
    print(f"near-ties on the path (gap < {TIE_GAP}): {near}")
    failed = False

    from bitgguf.reference import ReferenceModel

    ref = ReferenceModel(a.gguf)
    path = prompt_ids + hf_ids[:-1]
    ref_logits = ref.logits(path)
    diff = np.abs(ref_logits - hf_logits).max()
    pred = ref_logits[len(prompt_ids) - 1:].argmax(axis=1)
    bad = [i for i, (q, w, g) in enumerate(zip(pred, hf_ids, gaps)) if q != w and g >= TIE_GAP]
    print(f"reference, teacher-forced: max |logit diff| vs transformers {diff:.4g}; argmax differs at "
          f"{[i for i, (q, w) in enumerate(zip(pred, hf_ids)) if q != w]} (beyond ties: {bad})")
    failed |= bool(bad)
    ref_ids = ref.greedy(prompt_ids, a.n)
    i, ok = first_divergence(ref_ids, hf_ids, gaps)
    print(f"reference, free greedy: {'identical' if i is None else f'leaves the path at {i} (tie: {ok})'}")
    failed |= not ok

    try:
        from bitgguf.model import Model as _Model
    except ImportError:
        _Model = None
    if _Model is not None:
        m = _Model(a.gguf, n_threads=1)
        eng_ids = list(m.generate(prompt_ids, max_tokens=a.n, temperature=0.0))
        i, ok = first_divergence(eng_ids, hf_ids, gaps)
        print(f"bitgguf.Model, free greedy: {'identical' if i is None else f'leaves the path at {i} (tie: {ok})'}")
        print(f"bitgguf.Model greedy: {m.detokenize(eng_ids)!r}")
        failed |= not ok
        m.close()
    if a.record:
        print(f"HF_PROMPT_IDS = {prompt_ids}")
        print(f"HF_GREEDY_IDS = {hf_ids}")
        print(f"HF_GAPS = {[round(g, 6) for g in gaps]}")
    print("FAIL" if failed else "OK: transformers and bitgguf agree (tie-aware)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
