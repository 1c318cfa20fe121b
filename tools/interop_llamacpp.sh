#!/usr/bin/env bash
# Interop check: do GGUF files written by bitgguf's converter load and run greedily in upstream llama.cpp?
# Not run by CI (needs a llama.cpp build). See tools/INTEROP.md for the results and how the build was made.
#
#   tools/interop_llamacpp.sh LLAMA_SRC [BUILD_DIR]
#
# LLAMA_SRC: a llama.cpp source tree (for include/llama.h and ggml/include). BUILD_DIR (default LLAMA_SRC/build):
# a CPU build with BUILD_SHARED_LIBS=OFF where the `llama` target (or, for a minimal build, just the `ggml` target
# and the core src/*.cpp objects plus models/bitnet.cpp, see INTEROP.md) has been built.
# Writes everything under ${WORK:-/tmp/bitgguf-interop}; prints one verdict line per model type and prompt.
set -euo pipefail
SRC=$(cd "${1:?usage: $0 LLAMA_SRC [BUILD_DIR]}" && pwd)
BUILD=$(cd "${2:-$SRC/build}" && pwd)
REPO=$(cd "$(dirname "$0")/.." && pwd)
MODEL=${MODEL:-$REPO/../shared/models/tinystories-ternary-3m}
[ -d "$MODEL" ] || MODEL=/work/shared/models/tinystories-ternary-3m
WORK=${WORK:-/tmp/bitgguf-interop}
mkdir -p "$WORK/out"

# The driver: tokenize with BOS, decode, argmax over the logits (greedy, no sampler), print ids and top-2 gaps.
cat > "$WORK/greedy.c" <<'EOF'
#include "llama.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s model.gguf n_predict prompt\n", argv[0]); return 2; }
    int n_predict = atoi(argv[2]);
    llama_backend_init();
    struct llama_model *model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) { fprintf(stderr, "LOAD FAILED: %s\n", argv[1]); return 1; }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    int nv = llama_vocab_n_tokens(vocab);
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 256; cp.n_batch = 256; cp.n_threads = 1; cp.n_threads_batch = 1;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "CONTEXT FAILED\n"); return 1; }
    llama_token toks[512];
    int n = llama_tokenize(vocab, argv[3], (int)strlen(argv[3]), toks, 512, true, false);
    printf("{\"prompt_ids\": [");
    for (int i = 0; i < n; i++) printf("%s%d", i ? ", " : "", toks[i]);
    printf("], \"greedy_ids\": [");
    struct llama_batch b = llama_batch_get_one(toks, n);
    static float gaps[4096];
    static llama_token t;
    for (int s = 0; s < n_predict && s < 4096; s++) {
        if (llama_decode(ctx, b)) { fprintf(stderr, "llama_decode failed\n"); return 1; }
        const float *lg = llama_get_logits_ith(ctx, -1);
        int a = 0, c;
        for (int i = 1; i < nv; i++) if (lg[i] > lg[a]) a = i;
        c = a == 0 ? 1 : 0;
        for (int i = 0; i < nv; i++) if (i != a && lg[i] > lg[c]) c = i;
        gaps[s] = lg[a] - lg[c];
        printf("%s%d", s ? ", " : "", a);
        t = a; b = llama_batch_get_one(&t, 1);
    }
    printf("], \"gaps\": [");
    for (int s = 0; s < n_predict && s < 4096; s++) printf("%s%.4f", s ? ", " : "", gaps[s]);
    printf("]}\n");
    llama_free(ctx); llama_model_free(model);
    return 0;
}
EOF

GGML_LIBS=$(find "$BUILD/ggml/src" -name 'libggml*.a' | sort -r)   # libggml.a, libggml-cpu.a, libggml-base.a
if [ -f "$BUILD/src/libllama.a" ]; then
    LLAMA_LIBS="$BUILD/src/libllama.a"; EXTRA=""
else
    # minimal build: core objects plus models/bitnet.cpp only; the other archs' constructors stay unresolved and
    # are never called for an arch "bitnet" file
    OBJS=$(find "$BUILD/src/CMakeFiles/llama.dir" -name '*.cpp.o' ! -name 'unity*')
    [ -f "$WORK/bitnet.o" ] || g++ -O2 -DNDEBUG -DGGML_USE_CPU -std=gnu++17 -I"$SRC/src" -I"$BUILD/src" \
        -I"$SRC/include" -I"$SRC/ggml/include" -c "$SRC/src/models/bitnet.cpp" -o "$WORK/bitnet.o"
    rm -f "$WORK/libllama_min.a"; ar rcs "$WORK/libllama_min.a" $OBJS "$WORK/bitnet.o"
    LLAMA_LIBS="$WORK/libllama_min.a"; EXTRA="-Wl,--unresolved-symbols=ignore-all"
fi
g++ -O2 -x c "$WORK/greedy.c" -x none -I"$SRC/include" -I"$SRC/ggml/include" -o "$WORK/greedy" \
    $LLAMA_LIBS $GGML_LIBS -lpthread -lm -ldl $EXTRA

cd "$REPO"
PROMPTS=$(python -c "import json,sys; print('\n'.join(json.load(open(sys.argv[1]))))" "$MODEL/expected_greedy.json")
for ty in tq2_0 tq1_0; do
    python -m convert hf-to-gguf "$MODEL" --outfile "$WORK/ts-$ty.gguf" --outtype $ty --no-progress >/dev/null
    i=0
    while IFS= read -r p; do
        "$WORK/greedy" "$WORK/ts-$ty.gguf" 48 "$p" > "$WORK/out/$ty-$i.json" 2> "$WORK/out/$ty-$i.log"
        python -m bitgguf.cli "$WORK/ts-$ty.gguf" -p "$p" -n 48 --temp 0 -t 1 --verbose \
            > /dev/null 2> "$WORK/out/$ty-$i.bitgguf.log"
        i=$((i + 1))
    done <<< "$PROMPTS"
done

# Tie-aware comparison: the first divergence from transformers' greedy ids is allowed only where transformers'
# own top-2 logit gap was < 0.25 (a near tie that float rounding may flip); after it the rest is not compared.
python - "$MODEL/expected_greedy.json" "$WORK/out" <<'EOF'
import json, re, sys
exp = json.load(open(sys.argv[1])); out = sys.argv[2]; bad = 0
def verdict(ref, gaps, got):
    for i, (a, b) in enumerate(zip(ref, got)):
        if a != b:
            return (f"{i}/48, diverges at a near tie (gap {gaps[i]:.4f})", True) if gaps[i] < 0.25 \
                else (f"{i}/48, DIVERGES at gap {gaps[i]:.4f}", False)
    return (f"{len(got)}/{len(ref)} identical", len(got) >= len(ref))
for ty in ("tq2_0", "tq1_0"):
    for i, (p, e) in enumerate(exp.items()):
        lc = json.load(open(f"{out}/{ty}-{i}.json"))
        m = re.search(r"generated ids \[([^\]]*)\]", open(f"{out}/{ty}-{i}.bitgguf.log").read())
        bg = [int(x) for x in m.group(1).split(",")]
        v1, ok1 = verdict(e["greedy_ids"], e["reference_top2_gaps"], lc["greedy_ids"])
        v2, ok2 = verdict(e["greedy_ids"], e["reference_top2_gaps"], bg)
        same = next((k for k, (a, b) in enumerate(zip(bg, lc["greedy_ids"])) if a != b), len(bg))
        okp = lc["prompt_ids"] == e["prompt_ids"]
        bad += not (ok1 and ok2 and okp)
        print(f"{ty} {p!r}: prompt ids {'same' if okp else 'DIFFER'}; llama.cpp vs HF {v1}; bitgguf vs HF {v2}; "
              f"llama.cpp == bitgguf for {same} tokens")
print("interop:", "OK" if bad == 0 else f"{bad} FAILED")
sys.exit(bad != 0)
EOF
