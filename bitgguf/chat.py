"""Chat prompt formatting: the GGUF's `tokenizer.chat_template` picks one of a few hard-coded formats.

Like llama.cpp, no Jinja here: the template string is only inspected for markers (spec §6.7).

- "bitnet" (BitNet b1.58 2B4T): `System: {sys}<|eot_id|>`, `User: {msg}<|eot_id|>`, the assistant's turn
  `Assistant: {reply}<|eot_id|>`, and the generation prompt `Assistant: `. Chosen when the template contains
  "BITNET" (what bitnet.cpp's converter writes), looks like HF's 2B4T template (`| capitalize` and `<|eot_id|>`),
  or is absent for arch bitnet-b1.58 / bitnet-25.
- "llama3": `<|start_header_id|>{role}<|end_header_id|>\\n\\n{content}<|eot_id|>` per message.
- "chatml": `<|im_start|>{role}\\n{content}<|im_end|>\\n` per message.
- "plain": `{Role}: {content}\\n` per message, replies end with the EOS text; a fallback for models without a
  chat format.

The BOS token is not written by default: tokenization adds it (`Model.tokenize(text, add_bos=True)`), so the
first turn is tokenized with BOS and later turns (deltas, see `format_chat_delta`) without.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence

Message = Mapping[str, str]


@dataclass(frozen=True)
class ChatFormat:
    turn: str            # one message: {role}, {Role} (capitalized), {content}, {end} (plain: EOS after a reply)
    strip: bool          # content is trimmed first
    generation: str      # where the assistant's reply starts
    reply_end: str       # what closes an assistant turn ({eos}: the EOS text)


# one row per format, like the type table: adding a format is adding a row
CHAT_FORMATS = {
    # the 2B4T format: every turn, the system one included, ends with <|eot_id|>
    "bitnet": ChatFormat("{Role}: {content}<|eot_id|>", True, "Assistant: ", "<|eot_id|>"),
    "llama3": ChatFormat("<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>", True,
                         "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"),
    "chatml": ChatFormat("<|im_start|>{role}\n{content}<|im_end|>\n", False, "<|im_start|>assistant\n",
                         "<|im_end|>\n"),
    "plain": ChatFormat("{Role}: {content}{end}\n", True, "Assistant:", "{eos}\n"),
}
FORMATS = tuple(CHAT_FORMATS)
BITNET_ARCHES = ("bitnet-b1.58", "bitnet-25")
ROLES = ("system", "user", "assistant")


def detect_format(template: Optional[str], arch: Optional[str] = None) -> str:
    """The chat format for a GGUF's `tokenizer.chat_template` (None when absent) and `general.architecture`."""
    if template:
        if "BITNET" in template or ("| capitalize" in template and "<|eot_id|>" in template):
            return "bitnet"
        if "<|start_header_id|>" in template:
            return "llama3"
        if "<|im_start|>" in template:
            return "chatml"
        return "plain"
    if arch in BITNET_ARCHES:
        return "bitnet"
    return "plain"


def _check(messages: Iterable[Message]) -> list:
    out = []
    for i, m in enumerate(messages):
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise ValueError(f"chat message {i}: role must be one of {', '.join(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            raise ValueError(f"chat message {i}: content must be a string, got {type(content).__name__}")
        out.append((role, content))
    return out


def format_chat(messages: Sequence[Message], template: Optional[str] = None, bos_token: str = "",
                eos_token: str = "", *, arch: Optional[str] = None, add_generation_prompt: bool = True,
                add_bos: bool = False, fmt: Optional[str] = None) -> str:
    """Render `messages` ([{"role": ..., "content": ...}, ...]) as one prompt string.

    `template` is the GGUF's chat template (or None); `fmt` forces one of FORMATS. With add_generation_prompt the
    text ends where the assistant's reply starts. add_bos=True puts bos_token in front (off by default: the
    tokenizer adds BOS).
    """
    fmt = fmt or detect_format(template, arch)
    if fmt not in FORMATS:
        raise ValueError(f"unknown chat format {fmt!r}; expected one of {', '.join(FORMATS)}")
    row = CHAT_FORMATS[fmt]
    parts = [bos_token] if add_bos and bos_token else []
    for role, content in _check(messages):
        parts.append(row.turn.format(role=role, Role=role.capitalize(), content=content.strip() if row.strip
                                     else content, end=eos_token if role == "assistant" else ""))
    if add_generation_prompt:
        parts.append(row.generation)
    return "".join(parts)


def turn_end(fmt: str, eos_token: str = "") -> str:
    """The text that closes an assistant turn in `fmt`: what a live context still needs after a reply whose stop
    token was sampled but not evaluated, so that it matches the rendered history again."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown chat format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return CHAT_FORMATS[fmt].reply_end.format(eos=eos_token)


def format_chat_delta(history: Sequence[Message], new: Sequence[Message], template: Optional[str] = None,
                      bos_token: str = "", eos_token: str = "", *, arch: Optional[str] = None,
                      fmt: Optional[str] = None) -> str:
    """The text to append to a context that already holds `history` (rendered without a generation prompt) so
    that it holds `history + new` followed by the generation prompt: what an interactive chat feeds each turn."""
    kw = dict(arch=arch, fmt=fmt)
    before = format_chat(history, template, bos_token, eos_token, add_generation_prompt=False, **kw)
    after = format_chat(list(history) + list(new), template, bos_token, eos_token, add_generation_prompt=True, **kw)
    if not after.startswith(before):  # every format here appends per message, so this is a bug if it happens
        raise ValueError("chat template does not render the history as a prefix of the longer chat")
    return after[len(before):]
