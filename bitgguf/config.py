"""Model hyper-parameters and tensor names, read from GGUF metadata: the one place that knows the keys."""
from __future__ import annotations

from dataclasses import dataclass

from bitgguf.gguf import GGUFError, GGUFReader

# GGUF architecture name -> FFN gate activation. "bitnet" is the 1bitLLM (llama-like, SiLU) graph; bitnet.cpp's
# "bitnet-25" and its later name "bitnet-b1.58" are the 2B4T graph with squared ReLU.
ARCH_FFN_ACT = {"bitnet": "silu", "bitnet-25": "relu2", "bitnet-b1.58": "relu2"}

# per-layer tensors, as bitnet.cpp and llama.cpp name them (`blk.{i}.` + name + `.weight`)
LAYER_NORMS = ("attn_norm", "attn_sub_norm", "ffn_norm", "ffn_sub_norm")
LAYER_LINEARS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


def layer_tensor(layer: int, name: str) -> str:
    return f"blk.{layer}.{name}.weight"


@dataclass(frozen=True)
class ModelConfig:
    arch: str
    n_vocab: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int
    n_ctx_train: int
    rope_theta: float
    rms_eps: float
    ffn_act: str  # "relu2" or "silu"

    @classmethod
    def from_reader(cls, reader: GGUFReader) -> "ModelConfig":
        arch = reader.get("general.architecture")
        if arch not in ARCH_FFN_ACT:
            raise GGUFError(f"{reader.path}: general.architecture is {arch!r}; bitgguf runs "
                            f"{', '.join(sorted(ARCH_FFN_ACT))}")

        def key(name, default=None, kind=(int,)):
            full = f"{arch}.{name}"
            if full not in reader.metadata:
                if default is None:
                    raise GGUFError(f"{reader.path}: missing metadata key {full!r}")
                return default
            return reader.require(full, kind)

        token_embd = reader.tensor("token_embd.weight")
        n_embd = key("embedding_length")
        n_head = key("attention.head_count")
        n_vocab = token_embd.shape[0]
        if len(token_embd.shape) != 2 or token_embd.shape[1] != n_embd:
            raise GGUFError(f"{reader.path}: tensor 'token_embd.weight' has shape {token_embd.shape}, "
                            f"expected (n_vocab, {n_embd})")
        head_dim = key("rope.dimension_count", key("attention.key_length", 0) or n_embd // max(n_head, 1))
        config = cls(
            arch=arch,
            n_vocab=n_vocab,
            n_embd=n_embd,
            n_layer=key("block_count"),
            n_head=n_head,
            n_head_kv=key("attention.head_count_kv", n_head),
            head_dim=head_dim,
            n_ff=key("feed_forward_length"),
            n_ctx_train=key("context_length", 2048),
            # llama.cpp's default when the key is absent (upstream's TQ fixtures lack it)
            rope_theta=float(key("rope.freq_base", 10000.0, (int, float))),
            rms_eps=float(key("attention.layer_norm_rms_epsilon", 1e-5, (int, float))),
            ffn_act=ARCH_FFN_ACT[arch],
        )
        config.validate(reader)
        return config

    def validate(self, reader: GGUFReader) -> None:
        """Check the hyper-parameters against each other and every tensor's shape."""
        path = reader.path
        for field in ("n_vocab", "n_embd", "n_layer", "n_head", "n_head_kv", "head_dim", "n_ff"):
            value = getattr(self, field)
            if not 0 < value < 1 << 24:
                raise GGUFError(f"{path}: {field} is {value}, expected 1..2^24")
        if self.n_head % self.n_head_kv:
            raise GGUFError(f"{path}: head_count {self.n_head} is not a multiple of head_count_kv {self.n_head_kv}")
        if self.head_dim % 2:
            raise GGUFError(f"{path}: head dimension {self.head_dim} must be even for RoPE")
        if not self.rms_eps > 0:
            raise GGUFError(f"{path}: layer_norm_rms_epsilon is {self.rms_eps}, expected > 0")
        q_dim, kv_dim = self.n_head * self.head_dim, self.n_head_kv * self.head_dim
        expected = {
            "attn_norm": (self.n_embd,), "attn_sub_norm": (q_dim,), "ffn_norm": (self.n_embd,),
            "ffn_sub_norm": (self.n_ff,),
            "attn_q": (q_dim, self.n_embd), "attn_k": (kv_dim, self.n_embd), "attn_v": (kv_dim, self.n_embd),
            "attn_output": (self.n_embd, q_dim), "ffn_gate": (self.n_ff, self.n_embd),
            "ffn_up": (self.n_ff, self.n_embd), "ffn_down": (self.n_embd, self.n_ff),
        }
        want_tensors = [("output_norm.weight", (self.n_embd,))]
        for i in range(self.n_layer):
            want_tensors += [(layer_tensor(i, name), shape) for name, shape in expected.items()]
        for name, shape in want_tensors:
            t = reader.tensor(name)
            if tuple(t.shape) != shape:
                raise GGUFError(f"{path}: tensor {name!r} has shape {t.shape}, expected {shape}")
