#!/usr/bin/env bash
# Writes testdata/minilm/llamacpp.json: llama.cpp's `llama-embedding`
# vectors for the texts of testdata/minilm/reference.json, from the F32, F16
# and Q8_0 GGUFs `hearth convert` made of all-MiniLM-L6-v2
# (scripts/fetch-models.sh), with mean pooling and L2 normalisation. The
# test `cargo test --release -p hearth-model --test minilm` compares
# hearth's embeddings with them.
#
# llama.cpp is the one scripts/compare-llamacpp.sh builds (its build folder
# must hold bin/llama-embedding; build that target there first).
#
# Environment:
#   HEARTH_LLAMA_CPP_DIR  llama.cpp cache (default ~/.cache/hearth/llama.cpp)
#   LLAMA_CPP_PYTHON_VERSION  the llama.cpp source version (default 0.3.36)
#   LLAMA_EMBEDDING       the llama-embedding binary, overriding both
#   HEARTH_MODEL_CACHE    where the GGUFs are (default ~/.cache/hearth/models)
#   THREADS               threads (default 2)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LDIR="${HEARTH_LLAMA_CPP_DIR:-$HOME/.cache/hearth/llama.cpp}"
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
EMB="${LLAMA_EMBEDDING:-$LDIR/build-$VERSION/bin/llama-embedding}"
MODELS="${HEARTH_MODEL_CACHE:-$HOME/.cache/hearth/models}"
THREADS="${THREADS:-2}"
OUT="$ROOT/testdata/minilm/llamacpp.json"

[ -x "$EMB" ] || { echo "minilm-llamacpp: no llama-embedding at $EMB" >&2; exit 1; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

python3 - "$ROOT/testdata/minilm/reference.json" >"$TMP/texts.txt" <<'PY'
import json, sys
for c in json.load(open(sys.argv[1]))["cases"]:
    assert "\n" not in c["text"]
    print(c["text"])
PY

for ty in f32 f16 q8_0; do
  model="$MODELS/all-minilm-l6-v2.$ty.gguf"
  [ -f "$model" ] || { echo "minilm-llamacpp: missing $model (scripts/fetch-models.sh)" >&2; exit 1; }
  echo "minilm-llamacpp: $ty" >&2
  # One text per line; each is its own sequence in one batch.
  "$EMB" -m "$model" -t "$THREADS" -c 512 -b 512 -ub 512 \
    --pooling mean --embd-normalize 2 --embd-output-format json \
    --embd-separator $'\n' -p "$(cat "$TMP/texts.txt")" \
    >"$TMP/$ty.json" 2>"$TMP/$ty.log" || { tail -20 "$TMP/$ty.log" >&2; exit 1; }
done

python3 - "$TMP" "$OUT" "$("$EMB" --version 2>&1 | head -2 | tr '\n' ' ')" <<'PY'
import json, sys
tmp, out, version = sys.argv[1], sys.argv[2], sys.argv[3]
texts = open(f"{tmp}/texts.txt").read().splitlines()
result = {"tool": "llama-embedding", "version": version.strip(),
          "pooling": "mean", "normalize": "l2", "texts": texts, "embeddings": {}}
for ty in ["f32", "f16", "q8_0"]:
    text = open(f"{tmp}/{ty}.json").read()
    data = json.loads(text[text.index("{"):])["data"]
    assert len(data) == len(texts), (ty, len(data), len(texts))
    result["embeddings"][ty] = [[float(f"{x:.7g}") for x in d["embedding"]]
                                for d in sorted(data, key=lambda d: d["index"])]
json.dump(result, open(out, "w"))
print(f"minilm-llamacpp: wrote {out}", file=sys.stderr)
PY
