"""Tokenizer tests: llama.cpp's own test vectors, SentencePiece as an oracle, recorded prompt ids, decoding."""
import json
import time
from pathlib import Path

import numpy as np
import pytest
import regex

from bitgguf.gguf import GGUFReader
from bitgguf.tokenizer import Tokenizer
from conftest import FIXTURES, TINYSTORIES

VOCAB = FIXTURES / "vocab"
SEP = "\n__ggml_vocab_test__\n"


def read_vectors(name):
    """(text, ids) pairs, split the way llama.cpp's test-tokenizer-0 splits the .inp/.out files."""
    base = VOCAB / name
    texts = base.with_name(name + ".inp").read_text(encoding="utf-8").split(SEP)[:-1]
    lines = base.with_name(name + ".out").read_text(encoding="utf-8").split("\n")
    assert len(lines) >= len(texts) > 30
    return [(t, [int(x) for x in line.split()]) for t, line in zip(texts, lines)]


@pytest.fixture(scope="module")
def bpe_meta():
    with GGUFReader(VOCAB / "ggml-vocab-llama-bpe.gguf") as r:
        return dict(r.metadata)


@pytest.fixture(scope="module")
def spm_meta():
    with GGUFReader(VOCAB / "ggml-vocab-llama-spm.gguf") as r:
        return dict(r.metadata)


@pytest.fixture(scope="module")
def llama3(bpe_meta):
    return Tokenizer.from_metadata(bpe_meta)


@pytest.fixture(scope="module")
def llama2(spm_meta):
    return Tokenizer.from_metadata(spm_meta)


# -- llama.cpp's vectors

@pytest.mark.parametrize("name", ["ggml-vocab-llama-bpe.gguf", "ggml-vocab-llama-spm.gguf"])
def test_llamacpp_vectors(name, llama3, llama2):
    tok = llama3 if "bpe" in name else llama2
    for text, ids in read_vectors(name):
        assert tok.encode(text, add_bos=False) == ids, repr(text)
        assert tok.decode(ids) == text, repr(text)


def test_bos_and_vocab_facts(llama3, llama2):
    assert llama3.kind == "bpe" and llama3.pre == "llama3" and llama3.n_vocab == 128256
    assert (llama3.bos_id, llama3.eos_id, llama3.eot_id) == (128000, 128001, 128009)
    assert llama3.is_stop(128001) and llama3.is_stop(128009) and not llama3.is_stop(128000)
    assert not llama3.is_stop(9906)
    assert llama3.encode("Hello") == [128000, 9906]  # the llama3 pre-tokenizer turns add_bos on
    assert llama2.encode("Hello") == [1, 15043]
    assert llama2.encode("") == [1] and llama2.encode("", add_bos=False) == []
    assert (llama2.bos_id, llama2.eos_id, llama2.eot_id) == (1, 2, None)
    assert llama2.is_stop(2) and not llama2.is_stop(1)


def test_build_is_fast(bpe_meta):
    t0 = time.perf_counter()
    Tokenizer.from_metadata(bpe_meta)
    # 128256 tokens + 280147 merges; well under a second on one core, generous here for a loaded machine
    assert time.perf_counter() - t0 < 3.0


# -- special tokens

def test_parse_special(llama3, llama2):
    text = "Hi<|eot_id|>there"
    ids = llama3.encode(text, add_bos=False, parse_special=True)
    assert ids.count(128009) == 1 and ids.index(128009) == 1
    assert ids == llama3.encode("Hi", add_bos=False) + [128009] + llama3.encode("there", add_bos=False)
    plain = llama3.encode(text, add_bos=False)
    assert 128009 not in plain and llama3.decode(plain) == text
    # the longest special text wins, and every occurrence is cut out
    ids = llama3.encode("<|begin_of_text|>a<|eot_id|><|eot_id|>", add_bos=False, parse_special=True)
    assert ids[0] == 128000 and ids[-2:] == [128009, 128009]
    # control tokens are left out of decoded text unless asked for
    assert llama3.decode(ids) == "a"
    assert llama3.decode(ids, special=True) == "<|begin_of_text|>a<|eot_id|><|eot_id|>"
    assert llama3.token_to_piece(128009) == b"<|eot_id|>"
    assert llama3.token_to_piece(128009, special=False) == b""
    # SPM: a space prefix goes before text that follows a special token, as in llama.cpp
    ids = llama2.encode("a</s>b", add_bos=False, parse_special=True)
    assert ids == llama2.encode("a", add_bos=False) + [2] + llama2.encode("b", add_bos=False)


# -- the default BPE pre-tokenizer (no tokenizer.ggml.pre: bitnet.cpp's 2B-4T files)

def _reference_default_bpe(text, token_ids, ranks):
    """Python reference for llama.cpp's default pre-tokenizer chain (the regex module on the same four
    expressions) followed by plain rank-order BPE."""
    def split(pieces, pattern):
        out = []
        for p in pieces:
            last = 0
            for m in pattern.finditer(p):
                if m.start() > last:
                    out.append(p[last:m.start()])
                out.append(m.group())
                last = m.end()
            if last < len(p):
                out.append(p[last:])
        return out

    pieces = [text] if text else []
    for pat in (r"[\p{P}\$\+<=>\^~\|]+", r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
                r"\p{N}+", r"[0-9][0-9][0-9]"):
        pieces = split(pieces, regex.compile(pat))
    b2u = _bytes_to_unicode()
    ids = []
    for p in pieces:
        ids += [token_ids[w] for w in _bpe_merge([b2u[b] for b in p.encode("utf-8")], ranks)]
    return ids


def _bytes_to_unicode():
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def _bpe_merge(word, ranks):
    """Plain BPE: merge the lowest-ranked adjacent pair, leftmost first, until none is left."""
    while len(word) > 1:
        best = min(range(len(word) - 1), key=lambda i: (ranks.get((word[i], word[i + 1]), 1 << 30), i))
        if (word[best], word[best + 1]) not in ranks:
            break
        word[best:best + 2] = [word[best] + word[best + 1]]
    return word


@pytest.fixture(scope="module")
def bpe_tables(bpe_meta):
    token_ids = {t: i for i, t in enumerate(bpe_meta["tokenizer.ggml.tokens"])}
    ranks = {}
    for i, m in enumerate(bpe_meta["tokenizer.ggml.merges"]):
        a, b = m.split(" ", 1)
        ranks.setdefault((a, b), i)
    return token_ids, ranks


def _random_texts(seed, count):
    """Short strings over characters that sit on the pre-tokenizers' edges (contractions, digit runs,
    punctuation and symbols, Unicode spaces, marks, CJK, emoji)."""
    rng = np.random.default_rng(seed)
    alphabet = list("aZ9 \t\n\r'sStTmdrevl.,!?$+<=>^~|`_-()[]{}\"#%&*/:;@\\") + [
        "\u00a0", "\u3000", "\u00e9", "\u0301", "\u0663", "\u00bd", "\u4e2d", "\U0001f600", "\u2028", "\u0085",
        "\u200b", "\u00ad", "\u2014", "\u00a7"]
    return ["".join(rng.choice(alphabet, size=int(rng.integers(0, 13)))) for _ in range(count)]


def test_llama3_pretokenizer_against_regex(llama3, bpe_tables):
    """The hand-written Llama-3 split agrees with the real regex (the regex module) on random text."""
    token_ids, ranks = bpe_tables
    pattern = regex.compile(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                            r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
    b2u = _bytes_to_unicode()
    for text in _random_texts(3, 400):
        want = []
        for piece in pattern.findall(text):
            word = "".join(b2u[b] for b in piece.encode("utf-8"))
            # ignore_merges: a word that is a whole token is that token
            want += [token_ids[word]] if word in token_ids else [token_ids[w] for w in _bpe_merge(list(word), ranks)]
        got = llama3.encode(text, add_bos=False)
        assert got == want, repr(text)
        assert llama3.decode(got) == text


def test_default_pretokenizer_against_regex_reference(bpe_meta, bpe_tables):
    meta = {k: v for k, v in bpe_meta.items() if k != "tokenizer.ggml.pre"}
    tok = Tokenizer.from_metadata(meta)
    assert tok.pre == "default" and tok.bos_id == 128000 and not tok.add_bos  # gpt2 + no pre: no BOS by default
    token_ids, ranks = bpe_tables
    texts = [t for t, _ in read_vectors("ggml-vocab-llama-bpe.gguf")] + _random_texts(4, 400)
    texts += ["12345678 x1234", "a`b`c ~~~ $$10,000.50!!", "it's I'M we'Ve", "a\u00a0b\u3000c\u2028d", "ab\u0301c",
              "x += y <= z || w ^^ q", "\u0663\u0664\u0665\u0666 \u00bd\u00bd", "tab\tend\n\n  \n x"]
    for text in texts:
        got = tok.encode(text, add_bos=False)
        assert got == _reference_default_bpe(text, token_ids, ranks), repr(text)
        assert tok.decode(got) == text


def test_llama3_numbers_and_contractions(llama3):
    pieces = [llama3.token_to_piece(i) for i in llama3.encode("1234567 I'M don'T", add_bos=False)]
    assert pieces == [b"123", b"456", b"7", b" I", b"'M", b" don", b"'T"]


def test_bitnet_cpp_2b4t_prompt_ids():
    path = FIXTURES / "bitnet-cpp" / "tiny-2b4t-bitnetcpp-i2_s.gguf"
    tok = Tokenizer.from_gguf(path)
    assert tok.pre == "default" and tok.add_bos and tok.eot_id == 1999
    expected = json.loads(path.with_name(path.name + ".expected.json").read_text())
    for p in expected["prompts"]:
        ids = tok.encode(p["prompt"])
        assert ids == p["prompt_ids"], p["prompt"]
        assert tok.decode(ids) == p["prompt"]


# -- SentencePiece: the tinystories model, with sentencepiece as the oracle

def _spm_metadata(model_path):
    spm = pytest.importorskip("sentencepiece")
    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    n = sp.vocab_size()
    types = []
    for i in range(n):
        t = 1
        if sp.is_unknown(i):
            t = 2
        elif sp.is_control(i):
            t = 3
        elif sp.is_unused(i):
            t = 5
        elif sp.is_byte(i):
            t = 6
        types.append(t)
    meta = {
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": [sp.id_to_piece(i) for i in range(n)],
        "tokenizer.ggml.scores": np.array([sp.get_score(i) for i in range(n)], dtype=np.float32),
        "tokenizer.ggml.token_type": np.array(types, dtype=np.int32),
        "tokenizer.ggml.bos_token_id": sp.bos_id(),
        "tokenizer.ggml.eos_token_id": sp.eos_id(),
        "tokenizer.ggml.unknown_token_id": sp.unk_id(),
    }
    return sp, meta


def test_tinystories_matches_sentencepiece():
    sp, meta = _spm_metadata(TINYSTORIES / "tokenizer.model")
    tok = Tokenizer.from_metadata(meta)
    expected = json.loads((TINYSTORIES / "expected_greedy.json").read_text())
    texts = list(expected) + ["Lily and Ben played with a red ball.", "She said, \"Wow!\" 123",
                              "caf\u00e9 na\u00efve \u65e5\u672c \U0001f999", "x\ny\tz"]
    for text in texts:
        assert tok.encode(text, add_bos=False) == sp.encode(text), repr(text)
        assert tok.decode(tok.encode(text)) == text
    for text, rec in expected.items():
        assert tok.encode(text) == rec["prompt_ids"], text
        # the generated continuation decodes to the recorded text
        assert tok.decode(rec["prompt_ids"] + rec["greedy_ids"]) == rec["text"]


@pytest.mark.parametrize("gguf", ["llama-cpp/tinystories-ternary-3m-llamacpp-tq2_0.gguf",
                                  "bitnet-cpp/tinystories-ternary-3m-bitnetcpp-i2_s.gguf"])
def test_tinystories_gguf_prompt_ids(gguf):
    path = FIXTURES / gguf
    tok = Tokenizer.from_gguf(path)
    expected = json.loads(path.with_name(path.name + ".expected.json").read_text())
    for p in expected["prompts"]:
        assert tok.encode(p["prompt"]) == p["prompt_ids"], p["prompt"]


# -- streaming decode

def test_stream_holds_back_partial_utf8():
    _, meta = _spm_metadata(TINYSTORIES / "tokenizer.model")
    tok = Tokenizer.from_metadata(meta)
    text = "Hi \u65e5\u672c\U0001f999!"
    ids = tok.encode(text, add_bos=False)
    byte_ids = [i for i in ids if tok.token_type(i) == 6]
    assert len(byte_ids) >= 10  # the CJK and the emoji fall back to byte tokens
    s = tok.stream(strip_leading_space=True)
    outs = [s.feed(i) for i in ids]
    assert all("\ufffd" not in o for o in outs)
    assert "".join(outs) + s.flush() == text
    # each character appears once its last byte has arrived, not before
    first = ids.index(byte_ids[0])
    assert ids[first:first + 10] == byte_ids[:10]
    assert outs[first:first + 10] == ["", "", "\u65e5", "", "", "\u672c", "", "", "", "\U0001f999"]
    # an unfinished character at the end comes out of flush as U+FFFD
    s = tok.stream()
    assert s.feed(byte_ids[0]) == ""
    assert s.flush() == "\ufffd"


def test_stream_bpe_matches_decode(llama3):
    text = "Ünïcödé \U0001f680 and \u0e01\u0e32\u0e23 text"
    ids = llama3.encode(text, add_bos=False)
    s = llama3.stream()
    assert "".join(s.feed(i) for i in ids) + s.flush() == text == llama3.decode(ids)
    # BOS first: control tokens print nothing
    s = llama3.stream()
    assert s.feed(128000) == "" and s.feed(ids[0]) == llama3.decode(ids[:1])


# -- errors and odd inputs

def test_metadata_errors(bpe_meta):
    with pytest.raises(ValueError, match="tokenizer.ggml.model"):
        Tokenizer.from_metadata({"tokenizer.ggml.model": "bert", "tokenizer.ggml.tokens": ["a"]})
    with pytest.raises(ValueError, match="tokenizer.ggml.pre"):
        Tokenizer.from_metadata({**bpe_meta, "tokenizer.ggml.pre": "no-such-pre"})
    with pytest.raises(ValueError, match="tokenizer.ggml.scores"):
        Tokenizer.from_metadata({"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": ["a", "b"],
                                 "tokenizer.ggml.scores": np.zeros(3, np.float32)})


def test_out_of_range_ids(llama2):
    with pytest.raises(ValueError, match="outside the vocabulary"):
        llama2.decode([1, 32000])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        llama2.token_to_piece(-1)
    assert llama2.decode(np.array([], dtype=np.int32)) == ""


def test_invalid_utf8_and_long_text(llama3, llama2):
    # invalid bytes act as U+FFFD, as in llama.cpp
    assert llama3.encode_bytes(b"a\xffb", False).tolist() == llama3.encode("a\ufffdb", add_bos=False)
    # SPM keeps raw bytes: the stray byte becomes its byte token, after the space prefix
    assert llama2.encode_bytes(b"\xff", False).tolist() == [llama2.token_id("\u2581"), llama2.token_id("<0xFF>")]
    long = "The quick brown fox. " * 2000
    ids = llama3.encode(long, add_bos=False)
    assert llama3.decode(ids) == long
    assert llama2.decode(llama2.encode(long)) == long


def test_tiny_vocab_from_scratch():
    """A hand-made SPM vocabulary: merges follow scores, unknown bytes fall back to <0xXX>."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["\u2581", "a", "b", "ab", "\u2581ab"]
    types = [2, 3, 3] + [6] * 256 + [1] * 5
    scores = [0.0] * 259 + [-1.0, -2.0, -2.0, -0.5, -0.1]
    tok = Tokenizer.from_metadata({"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": tokens,
                                   "tokenizer.ggml.scores": np.array(scores, np.float32),
                                   "tokenizer.ggml.token_type": np.array(types, np.int32)})
    ab, sp_ab, a, b = 262, 263, 260, 261
    assert tok.encode("ab") == [1, sp_ab]
    assert tok.encode("ab ba", add_bos=False) == [sp_ab, 259, b, a]
    assert tok.encode("c", add_bos=False) == [259, 3 + ord("c")]
    assert tok.decode([1, sp_ab, 259, b, a]) == "ab ba"
    assert ab == tok.token_id("ab")


# -- the C API on its own, no Python objects (built with AddressSanitizer where the compiler has it)

C_HARNESS = r"""
#include "tokenizer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char *data; static size_t pos;
static uint32_t u32(void) { uint32_t v; memcpy(&v, data + pos, 4); pos += 4; return v; }
static const char *str(size_t *n) { *n = u32(); const char *s = (const char *)data + pos; pos += *n; return s; }

int main(int argc, char **argv) {
    FILE *f = fopen(argv[1], "rb");
    if (!f) return 2;
    fseek(f, 0, SEEK_END); long size = ftell(f); fseek(f, 0, SEEK_SET);
    data = malloc((size_t)size);
    if (fread(data, 1, (size_t)size, f) != (size_t)size) return 2;
    fclose(f);
    (void)argc;
    bg_tokenizer_desc d;
    char err[256];
    size_t ln, lp;
    const char *m = str(&ln), *p = str(&lp);
    char model[64] = {0}, pre[64] = {0};
    memcpy(model, m, ln); memcpy(pre, p, lp);
    int32_t n_vocab = (int32_t)u32();
    if (bg_tokenizer_desc_from_names(&d, model, lp ? pre : NULL, n_vocab, err, sizeof err) != 0) {
        printf("names: %s\n", err);
        return 1;
    }
    d.bos = (int32_t)u32(); d.eos = (int32_t)u32();
    const char **tokens = malloc(sizeof(char *) * (size_t)n_vocab);
    size_t *lens = malloc(sizeof(size_t) * (size_t)n_vocab);
    float *scores = malloc(sizeof(float) * (size_t)n_vocab);
    int32_t *types = malloc(sizeof(int32_t) * (size_t)n_vocab);
    for (int32_t i = 0; i < n_vocab; i++) tokens[i] = str(&lens[i]);
    for (int32_t i = 0; i < n_vocab; i++) { memcpy(&scores[i], data + pos, 4); pos += 4; }
    for (int32_t i = 0; i < n_vocab; i++) types[i] = (int32_t)u32();
    int32_t n_merges = (int32_t)u32();
    const char **merges = malloc(sizeof(char *) * (size_t)(n_merges + 1));
    size_t *mlens = malloc(sizeof(size_t) * (size_t)(n_merges + 1));
    for (int32_t i = 0; i < n_merges; i++) merges[i] = str(&mlens[i]);
    d.tokens = tokens; d.token_lens = lens; d.scores = scores; d.types = types;
    d.n_merges = n_merges; d.merges = merges; d.merge_lens = mlens;
    bg_tokenizer *tok = bg_tokenizer_new(&d, err, sizeof err);
    if (!tok) { printf("new: %s\n", err); return 1; }
    /* the tokenizer keeps copies: scribble over the caller's arrays */
    free(tokens); free(lens); free(scores); free(types); free(merges); free(mlens);
    uint32_t n_tests = u32();
    int bad = 0;
    for (uint32_t t = 0; t < n_tests; t++) {
        size_t tn; const char *text = str(&tn);
        char *copy = malloc(tn + 1);  /* exact-size buffer so the sanitizer sees overreads */
        memcpy(copy, text, tn);
        uint32_t ne = u32();
        int32_t *want = (int32_t *)(data + pos); pos += 4 * (size_t)ne;
        int32_t need = bg_tokenize(tok, copy, tn, 0, 0, NULL, 0);
        if (need > 0) { printf("test %u: expected -count from an empty buffer, got %d\n", t, need); bad++; }
        int32_t cap = need < 0 ? -need : 0;
        int32_t *got = malloc(sizeof(int32_t) * (size_t)(cap + 1));
        int32_t n = bg_tokenize(tok, copy, tn, 0, 0, got, cap);
        if (n != (int32_t)ne || memcmp(got, want, 4 * (size_t)ne) != 0) { printf("test %u: ids differ\n", t); bad++; }
        int32_t bytes = bg_detokenize(tok, got, n, NULL, 0, 0, (d.flags & BG_TOK_ADD_SPACE_PREFIX) != 0);
        char *back = malloc((size_t)(bytes < 0 ? -bytes : bytes) + 1);
        int32_t m = bg_detokenize(tok, got, n, back, bytes < 0 ? -bytes : bytes, 0,
                                  (d.flags & BG_TOK_ADD_SPACE_PREFIX) != 0);
        if ((size_t)m != tn || memcmp(back, copy, tn) != 0) { printf("test %u: round trip differs\n", t); bad++; }
        free(back); free(got); free(copy);
    }
    bg_tokenizer_free(tok);
    free(data);
    printf("%u tests, %d bad\n", n_tests, bad);
    return bad != 0;
}
"""


def _pack_c_case(meta, tests):
    import struct
    tokens = [t.encode() for t in meta["tokenizer.ggml.tokens"]]
    n = len(tokens)
    model, pre = meta["tokenizer.ggml.model"].encode(), meta.get("tokenizer.ggml.pre", "").encode()
    out = [struct.pack("<I", len(model)) + model + struct.pack("<I", len(pre)) + pre]
    out.append(struct.pack("<3I", n, int(meta["tokenizer.ggml.bos_token_id"]),
                           int(meta["tokenizer.ggml.eos_token_id"])))
    out += [struct.pack("<I", len(t)) + t for t in tokens]
    out.append(np.asarray(meta.get("tokenizer.ggml.scores", np.zeros(n)), dtype="<f4").tobytes())
    out.append(np.asarray(meta["tokenizer.ggml.token_type"], dtype="<i4").tobytes())
    merges = [m.encode() for m in meta.get("tokenizer.ggml.merges", [])]
    out.append(struct.pack("<I", len(merges)))
    out += [struct.pack("<I", len(m)) + m for m in merges]
    out.append(struct.pack("<I", len(tests)))
    for text, ids in tests:
        b = text.encode()
        out.append(struct.pack("<I", len(b)) + b + struct.pack("<I", len(ids)) + np.asarray(ids, "<i4").tobytes())
    return b"".join(out)


def test_c_api_without_python(tmp_path, bpe_meta, spm_meta):
    import shutil
    import subprocess
    import sysconfig
    cc = shutil.which(sysconfig.get_config_var("CC").split()[0] if sysconfig.get_config_var("CC") else "cc") \
        or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    kernels = Path(__file__).resolve().parents[1] / "bitgguf" / "_kernels"
    src = tmp_path / "main.c"
    src.write_text(C_HARNESS)
    exe = tmp_path / "tok"
    base = [cc, "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", f"-I{kernels}", str(src),
            str(kernels / "tokenizer.c"), str(kernels / "unicode.c"), "-o", str(exe)]
    sanitized = subprocess.run(base[:1] + ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"] + base[1:],
                               capture_output=True, text=True)
    if sanitized.returncode != 0:
        plain = subprocess.run(base, capture_output=True, text=True)
        assert plain.returncode == 0, plain.stderr
    bpe_vectors = read_vectors("ggml-vocab-llama-bpe.gguf")
    no_pre = {k: v for k, v in bpe_meta.items() if k != "tokenizer.ggml.pre"}
    default_pre = Tokenizer.from_metadata(no_pre)
    cases = [(bpe_meta, bpe_vectors),
             (no_pre, [(t, default_pre.encode(t, add_bos=False)) for t, _ in bpe_vectors]),
             (spm_meta, read_vectors("ggml-vocab-llama-spm.gguf"))]
    for i, (meta, tests) in enumerate(cases):
        case = tmp_path / f"case{i}.bin"
        case.write_bytes(_pack_c_case(meta, tests))
        run = subprocess.run([str(exe), str(case)], capture_output=True, text=True,
                             env={"ASAN_OPTIONS": "detect_leaks=1", "PATH": "/usr/bin:/bin"})
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"{len(tests)} tests, 0 bad" in run.stdout
