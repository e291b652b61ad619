#!/usr/bin/env bash
# Records how llama.cpp renders every chat template in a folder for every
# conversation in testdata/templates/conversations, as test data for hearth's
# own renderer (crates/hearth-tokenizer/tests/templates.rs).
#
# llama.cpp is the build scripts/compare-llamacpp.sh makes (the llama-cpp-python
# sdist's vendored copy, cached outside the repository); the small program
# scripts/record-templates.cpp calls its chat layer (common_chat_templates_init
# and common_chat_templates_apply, Jinja on, generation prompt on, the clock
# pinned to 2025-03-14 09:26:53 UTC in the UTC time zone). Only its output is
# written inside the repository:
#   testdata/templates/rendered/<template>.<conversation>.txt    the prompt
#   testdata/templates/rendered/<template>.<conversation>.error  llama.cpp's refusal
#   testdata/templates/tokens.tsv   the BOS and EOS texts each template was given
#
# Usage: scripts/record-templates.sh [TEMPLATE_DIR]   (default ../shared/templates)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
LDIR="${HEARTH_LLAMA_CPP_DIR:-$HOME/.cache/hearth/llama.cpp}"
SRC="$LDIR/src-$VERSION"
BUILD="$LDIR/build-$VERSION"
TEMPLATES="${1:-$ROOT/../shared/templates}"
DATA="$ROOT/testdata/templates"
PROG="$LDIR/record-templates-$VERSION"

log() { echo "record-templates: $*" >&2; }

# The chat layer lives in llama-common; compare-llamacpp.sh builds it with the rest.
[ -f "$BUILD/common/libllama-common.a" ] || "$ROOT/scripts/compare-llamacpp.sh" --build-only

if [ ! -x "$PROG" ] || [ "$ROOT/scripts/record-templates.cpp" -nt "$PROG" ]; then
  log "compiling the recorder against $BUILD"
  libs=()
  for l in common/libllama-common.a common/libllama-common-base.a src/libllama.a \
           ggml/src/libggml.a ggml/src/libggml-cpu.a ggml/src/libggml-base.a \
           vendor/cpp-httplib/libcpp-httplib.a; do
    [ -f "$BUILD/$l" ] && libs+=("$BUILD/$l")
  done
  g++ -std=c++17 -O1 -o "$PROG" "$ROOT/scripts/record-templates.cpp" \
    -I"$SRC/common" -I"$SRC/include" -I"$SRC/ggml/include" -I"$SRC/vendor" \
    -Wl,--start-group "${libs[@]}" -Wl,--end-group -fopenmp -lpthread -ldl
fi

# The BOS and EOS texts of each family (what its GGUFs carry), from the markers
# its template uses.
tokens_for() {
  local f=$1
  if grep -q '<|start_header_id|>' "$f"; then echo '<|begin_of_text|>	<|eot_id|>'
  elif grep -q '｜Assistant｜\|tool▁sep\|end▁of▁sentence' "$f"; then echo '<｜begin▁of▁sentence｜>	<｜end▁of▁sentence｜>'
  elif grep -q '<start_of_turn>\|<|turn>' "$f"; then echo '<bos>	<eos>'
  elif grep -q '<|START_OF_TURN_TOKEN|>' "$f"; then echo '<BOS_TOKEN>	<|END_OF_TURN_TOKEN|>'
  elif grep -q '<|im_start|>' "$f"; then echo '<|startoftext|>	<|im_end|>'
  elif grep -q '<|assistant|>' "$f"; then echo '<s>	<|endoftext|>'
  else echo '<s>	</s>'
  fi
}

mkdir -p "$DATA/rendered"
rm -f "$DATA/rendered/"*.txt "$DATA/rendered/"*.error
printf 'template\tbos\teos\n' >"$DATA/tokens.tsv"
n_ok=0; n_err=0
for t in "$TEMPLATES"/*.jinja; do
  name=$(basename "$t" .jinja)
  toks=$(tokens_for "$t")
  bos=${toks%%	*}; eos=${toks#*	}
  printf '%s\t%s\t%s\n' "$name" "$bos" "$eos" >>"$DATA/tokens.tsv"
  for c in "$DATA"/conversations/*.json; do
    conv=$(basename "$c" .json)
    out="$DATA/rendered/$name.$conv"
    if TZ=UTC "$PROG" "$t" "$c" "$bos" "$eos" >"$out.txt" 2>"$out.error"; then
      rm -f "$out.error"; n_ok=$((n_ok + 1))
    else
      rm -f "$out.txt"; n_err=$((n_err + 1))
    fi
  done
done
log "$n_ok renderings, $n_err refusals written to $DATA/rendered"
