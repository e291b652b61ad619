#!/bin/bash
# Records llama.cpp's tokenizations of the inputs of vocab_inputs.py for
# every vocabulary in ../shared/vocab into testdata/vocab (see the README
# there): the inputs in `inputs.inp` (the format of llama.cpp's
# test-tokenizer-0), and per vocabulary `NAME.gguf.out` (ids with
# add_special and parse_special off) and `NAME.special.jsonl` (both on, with
# llama_detokenize's output rendering special tokens and not).
#
# Needs llama.cpp built as for run.sh (LLAMA_CPP, LLAMA_BUILD).
# usage: LLAMA_CPP=... LLAMA_BUILD=... tools/compare/record_vocab.sh [SEED COUNT]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
vocab=${VOCAB_DIR:-$root/../shared/vocab}
out=$root/testdata/vocab
work=${WORK:-/tmp/hearth-vocab-record}
mkdir -p "$work" "$out"
g++ -O2 -std=c++17 -I"$LLAMA_CPP/include" -I"$LLAMA_CPP/ggml/include" "$here/harness.cpp" -o "$work/harness" \
    "$LLAMA_BUILD/src/libllama.a" "$LLAMA_BUILD/ggml/src/libggml.a" "$LLAMA_BUILD/ggml/src/libggml-cpu.a" \
    "$LLAMA_BUILD/ggml/src/libggml-base.a" -lpthread -ldl
commit=$(git -C "$LLAMA_CPP" rev-parse HEAD 2>/dev/null || echo "${LLAMA_CPP_COMMIT:-unknown}")
(cd "$here" && python3 vocab_inputs.py "$work/in.bin" "${1:-7}" "${2:-45}")
for m in "$vocab"/ggml-vocab-*.gguf; do
    name=$(basename "$m" .gguf)
    "$work/harness" "$m" "$work/in.bin" "$work/c00.txt" 0 0 2>/dev/null
    "$work/harness" "$m" "$work/in.bin" "$work/c11.txt" 1 1 2>/dev/null
    python3 "$here/record_vocab.py" "$work/in.bin" "$name" "$out" "$commit" "$work/c00.txt" "$work/c11.txt"
    echo "recorded $name"
done
