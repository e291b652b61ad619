#!/usr/bin/env bash
# Regenerates testdata/quantize/llama-quantize.jsonl: what llama.cpp's
# quantizer writes for the zoo's F32 models (../shared/zoo/f32) under the
# mixes the zoo's own quantize.jsonl files do not cover, with and without
# the importance matrix. Each line holds the model, the mix, whether the
# imatrix was used, general.file_type, the type of every tensor that is not
# F32, and one sha256 over every tensor (name, NUL, type name, NUL, bytes,
# in file order).
#
# Needs the static llama.cpp build that scripts/compare-llamacpp.sh makes
# (HEARTH_LLAMA_CPP_DIR, default ~/.cache/hearth/llama.cpp; the same
# LLAMA_CPP_PYTHON_VERSION as the zoo, 0.3.36) and python3 with numpy.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
LDIR="${HEARTH_LLAMA_CPP_DIR:-$HOME/.cache/hearth/llama.cpp}"
SRC="$LDIR/src-$VERSION"
BUILD="$LDIR/build-$VERSION"
ZOO=../shared/zoo/f32
[ -f "$BUILD/src/libllama.a" ] || { echo "no $BUILD/src/libllama.a: run scripts/compare-llamacpp.sh first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
g++ -O2 -std=c++17 -I"$SRC/include" -I"$SRC/ggml/include" scripts/quantize-oracle.cpp \
  "$BUILD/src/libllama.a" "$BUILD/ggml/src/libggml.a" "$BUILD/ggml/src/libggml-cpu.a" \
  "$BUILD/ggml/src/libggml-base.a" -fopenmp -lpthread -o "$work/oracle"
# NAME:llama_ftype, with the importance matrix / without it.
with=(Q2_K_S:21 IQ3_XS:22 IQ3_M:27 IQ2_M:29 IQ2_XS:20 IQ2_S:28 IQ1_M:31 TQ1_0:36 MXFP4_MOE:38)
without=(Q4_0:2 Q5_1:9 Q3_K_M:12 Q4_K_M:15 Q6_K:18 IQ4_NL:25 IQ4_XS:30 IQ3_S:26 TQ2_0:37 MXFP4_MOE:38 F16:1 BF16:32)
out=testdata/quantize/llama-quantize.jsonl
mkdir -p "$(dirname "$out")"
: >"$out"
for model in llama-dense qwen3-dense qwen3moe-moe; do
  for im in yes no; do
    if [ $im = yes ]; then cases=("${with[@]}"); else cases=("${without[@]}"); fi
    for c in "${cases[@]}"; do
      name=${c%%:*} id=${c##*:}
      args=("$ZOO/$model.gguf" "$work/out.gguf" "$id")
      [ $im = yes ] && args+=("$ZOO/$model.imatrix.gguf")
      "$work/oracle" "${args[@]}" >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
      PYTHONPATH="$SRC/gguf-py" python3 - "$work/out.gguf" "$model" "$name" "$im" >>"$out" <<'PY'
import hashlib, json, sys
import gguf
path, model, name, im = sys.argv[1:]
r = gguf.GGUFReader(path)
h = hashlib.sha256()
types = {}
for t in r.tensors:
    ty = t.tensor_type.name
    if ty != "F32":
        types[t.name] = ty
    h.update(t.name.encode() + b"\0" + ty.encode() + b"\0" + t.data.tobytes())
ft = int(r.fields["general.file_type"].contents())
print(json.dumps({"model": model, "type": name, "imatrix": im == "yes", "file_type": ft,
                  "types": types, "sha256": h.hexdigest()}))
PY
      echo "$model $name imatrix=$im" >&2
    done
  done
done
