#!/bin/bash
# Compare hearth-tokenizer with llama.cpp on random texts, for every
# pre-tokenizer in the table (on SmolLM2's vocabulary) and both golden models.
#
# Needs a llama.cpp checkout at LLAMA_CPP (the golden data used the one
# vendored in llama-cpp-python 0.3.36), built as static libraries:
#   cmake -B $LLAMA_BUILD -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DGGML_OPENMP=OFF \
#         -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF && cmake --build $LLAMA_BUILD --target llama
#
# usage: LLAMA_CPP=... LLAMA_BUILD=... tools/compare/run.sh SEED COUNT
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${WORK:-/tmp/hearth-tok-compare}
models=${HEARTH_MODEL_CACHE:-$HOME/.cache/hearth/models}
mkdir -p "$work"
g++ -O2 -std=c++17 -I"$LLAMA_CPP/include" -I"$LLAMA_CPP/ggml/include" "$here/harness.cpp" -o "$work/harness" \
    "$LLAMA_BUILD/src/libllama.a" "$LLAMA_BUILD/ggml/src/libggml.a" "$LLAMA_BUILD/ggml/src/libggml-cpu.a" \
    "$LLAMA_BUILD/ggml/src/libggml-base.a" -lpthread -ldl
cargo build -q --release -p hearth-tokenizer --example tokenize_dump
dump=$(cargo metadata -q --format-version 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/examples/tokenize_dump
python3 "$here/gen_inputs.py" "$work/in.bin" "$1" "$2"
smol=$models/SmolLM2-135M-Instruct.Q4_1.gguf
for pre in $("$dump" pre-names); do
    [ -f "$work/smol-$pre.gguf" ] || "$dump" repre "$smol" "$work/smol-$pre.gguf" "$pre"
done
fails=0
for m in "$models/gemma-3-270m-q4_k_m.gguf" "$smol" "$work"/smol-*.gguf; do
    for flags in "0 0" "1 1" "0 1"; do
        "$work/harness" "$m" "$work/in.bin" "$work/c.txt" $flags
        "$dump" tok "$m" "$work/in.bin" "$work/r.txt" $flags
        if cmp -s "$work/c.txt" "$work/r.txt"; then echo "same $(basename "$m") $flags"; else echo "DIFF $(basename "$m") $flags"; fails=$((fails+1)); fi
    done
done
echo "$fails differing runs"
