#!/usr/bin/env bash
# Serving throughput: aggregate generated tokens/s of `hearth serve
# --parallel N` against llama.cpp's `llama-server -np N` with N concurrent
# streaming clients (default N = 1, 4, 16), same model, threads, prompts and
# number of generated tokens. A benchmark, not a test.
#
# llama-server comes from the same llama.cpp as scripts/compare-llamacpp.sh
# (the llama-cpp-python sdist's vendored copy, cached under
# HEARTH_LLAMA_CPP_DIR, default ~/.cache/hearth/llama.cpp); this script adds
# the llama-server target to that cached build folder.
#
# Usage:
#   scripts/bench-serve.sh [MODEL.gguf]   build if needed, then benchmark
#   scripts/bench-serve.sh --build-only   only build llama-server
#
# Environment:
#   HEARTH_LLAMA_CPP_DIR  llama.cpp cache (source, build, binaries)
#   HEARTH_MODEL_CACHE    where the default model lives (~/.cache/hearth/models)
#   HEARTH_BIN            a hearth binary to use instead of building one
#   THREADS               threads for both servers (default: 2)
#   CLIENTS               client counts, comma list (default: 1,4,16)
#   GEN                   tokens generated per request (default: 64)
#   REQS                  requests per client (default: 2)
#   CTX                   context per slot (default: 1024)
#   BUILD_JOBS            parallel jobs for the llama.cpp build (default: 2)
#   LLAMA_ISA             native (default) or avx2, as in compare-llamacpp.sh
#   PYTHON                python with httpx (default: the clients venv, made by
#                         scripts/client-venv.sh)
set -euo pipefail

VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
LDIR="${HEARTH_LLAMA_CPP_DIR:-$HOME/.cache/hearth/llama.cpp}"
MODELS_DIR="${HEARTH_MODEL_CACHE:-$HOME/.cache/hearth/models}"
THREADS="${THREADS:-2}"
CLIENTS="${CLIENTS:-1,4,16}"
GEN="${GEN:-64}"
REQS="${REQS:-2}"
CTX="${CTX:-1024}"
JOBS="${BUILD_JOBS:-2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

ISA="${LLAMA_ISA:-native}"
case "$ISA" in
  native) SUFFIX="" ;;
  avx2) SUFFIX="-avx2" ;;
  *) echo "bench-serve: LLAMA_ISA must be native or avx2" >&2; exit 2 ;;
esac
BUILD="$LDIR/build-$VERSION$SUFFIX"
BIN="$LDIR/bin-$VERSION$SUFFIX"

log() { echo "bench-serve: $*" >&2; }

# The cached build folder is configured by compare-llamacpp.sh without the
# server; turn it on (no web UI, nothing downloaded) and build only that
# target, reusing the compiled ggml and llama libraries.
build_server() {
  if [ -x "$BIN/llama-server" ]; then log "llama-server cached at $BIN"; return; fi
  if [ ! -f "$BIN/.complete" ]; then
    log "building llama.cpp first (scripts/compare-llamacpp.sh --build-only)"
    LLAMA_ISA="$ISA" "$ROOT/scripts/compare-llamacpp.sh" --build-only
  fi
  log "configuring $BUILD with the server"
  nice -n 10 cmake "$BUILD" -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF >/dev/null
  log "building llama-server with -j$JOBS (slow)"
  nice -n 10 cmake --build "$BUILD" --config Release -j"$JOBS" --target llama-server
  cp "$BUILD/bin/llama-server" "$BIN/llama-server.tmp"
  mv "$BIN/llama-server.tmp" "$BIN/llama-server"
  log "llama-server built into $BIN"
}

if [ "${1:-}" = "--build-only" ]; then build_server; exit 0; fi
