#!/usr/bin/env bash
# Compares `hearth bench` with llama.cpp's `llama-bench` on the same models.
#
# llama.cpp is built once, CPU only, into a cache outside the repository
# (HEARTH_LLAMA_CPP_DIR, default ~/.cache/hearth/llama.cpp) from the source
# vendored in the PyPI sdist of llama-cpp-python (LLAMA_CPP_PYTHON_VERSION,
# default 0.3.36), so the peer version is pinned and needs no git access.
# Nothing from llama.cpp is ever written inside the repository.
#
# The two engines run alternately, one test at a time (llama.cpp pp128, hearth
# pp128, llama.cpp pp512, ...), so a slow drift of the machine (thermal, other
# tenants) lands on both sides rather than on one.
#
# Usage:
#   scripts/compare-llamacpp.sh [MODEL.gguf ...]   build if needed, then compare
#   scripts/compare-llamacpp.sh --build-only       only build llama.cpp
#
# Environment:
#   HEARTH_LLAMA_CPP_DIR  llama.cpp cache (source, build, binaries)
#   HEARTH_MODEL_CACHE    where the default models live (~/.cache/hearth/models)
#   HEARTH_BIN            a hearth binary to use instead of building one
#   THREADS               threads for both engines (default: nproc)
#   REPS                  repetitions per test (default: 5)
#   PROMPTS               prompt lengths, comma list (default: 128,512)
#   GEN                   generation length (default: 128)
#   BUILD_JOBS            parallel jobs for the llama.cpp build (default: 2)
#   LLAMA_ISA             native (default: everything this CPU has, AVX-512
#                         and VNNI included where present) or avx2 (AVX2, FMA
#                         and F16C only: the instruction set hearth's fastest
#                         tier uses today), built into separate folders
set -euo pipefail

VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
LDIR="${HEARTH_LLAMA_CPP_DIR:-$HOME/.cache/hearth/llama.cpp}"
MODELS_DIR="${HEARTH_MODEL_CACHE:-$HOME/.cache/hearth/models}"
THREADS="${THREADS:-$(nproc)}"
REPS="${REPS:-5}"
PROMPTS="${PROMPTS:-128,512}"
GEN="${GEN:-128}"
JOBS="${BUILD_JOBS:-2}"
PY="${PYTHON:-python3}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

ISA="${LLAMA_ISA:-native}"
case "$ISA" in
  native) SUFFIX=""; ISA_FLAGS=(-DGGML_NATIVE=ON) ;;
  avx2) SUFFIX="-avx2"; ISA_FLAGS=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON
          -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF) ;;
  *) echo "compare-llamacpp: LLAMA_ISA must be native or avx2" >&2; exit 2 ;;
esac
SRC="$LDIR/src-$VERSION"
BUILD="$LDIR/build-$VERSION$SUFFIX"
BIN="$LDIR/bin-$VERSION$SUFFIX"
STAMP="$BIN/.complete"

log() { echo "compare-llamacpp: $*" >&2; }

ensure_cmake() {
  command -v cmake >/dev/null && return
  log "cmake missing, installing it from apt"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y cmake >/dev/null 2>&1 || {
    $sudo apt-get update >/dev/null && $sudo apt-get install -y cmake >/dev/null
  }
}

build_llamacpp() {
  if [ -f "$STAMP" ]; then log "llama.cpp $VERSION cached at $BIN"; return; fi
  ensure_cmake
  mkdir -p "$LDIR"
  if [ ! -f "$SRC/CMakeLists.txt" ]; then
    local tmp; tmp=$(mktemp -d "$LDIR/.dl.XXXXXX")
    log "downloading the llama-cpp-python $VERSION sdist"
    # Only the package itself must come as source; its build requirements
    # (pip prepares the sdist's metadata) may be wheels, which is much faster.
    "$PY" -m pip download --quiet --no-deps --no-binary llama-cpp-python -d "$tmp" \
      "llama-cpp-python==$VERSION"
    tar -xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$tmp"
    local vendored; vendored=$(find "$tmp" -maxdepth 3 -type d -path '*/vendor/llama.cpp' | head -1)
    [ -n "$vendored" ] && [ -f "$vendored/CMakeLists.txt" ] || {
      log "the sdist holds no vendor/llama.cpp"; rm -rf "$tmp"; return 1
    }
    rm -rf "$SRC"; mv "$vendored" "$SRC"; rm -rf "$tmp"
  fi
  log "configuring in $BUILD"
  nice -n 19 cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    "${ISA_FLAGS[@]}" -DLLAMA_CURL=OFF -DGGML_CUDA=OFF -DGGML_METAL=OFF \
    -DGGML_VULKAN=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF \
    -DBUILD_SHARED_LIBS=OFF >/dev/null
  # Newer llama.cpp splits the one-shot CLI out as llama-completion.
  local targets=(llama-bench llama-perplexity)
  local help; help=$(cmake --build "$BUILD" --target help 2>/dev/null || true)
  if grep -qw 'llama-completion' <<<"$help"; then targets+=(llama-completion); fi
  if grep -qw 'llama-cli' <<<"$help"; then targets+=(llama-cli); fi
  log "building ${targets[*]} with -j$JOBS (slow)"
  nice -n 19 cmake --build "$BUILD" --config Release -j"$JOBS" --target "${targets[@]}"
  mkdir -p "$BIN"
  local t
  for t in "${targets[@]}"; do cp "$BUILD/bin/$t" "$BIN/"; done
  touch "$STAMP"
  log "llama.cpp $VERSION built into $BIN"
}

hearth_bin() {
  if [ -n "${HEARTH_BIN:-}" ]; then echo "$HEARTH_BIN"; return; fi
  log "building hearth (release)"
  (cd "$ROOT" && nice -n 19 cargo build --release --quiet -p hearth-cli) >&2
  echo "$ROOT/target/release/hearth"
}

# One test per call, so the engines alternate test by test.
# run_one ENGINE MODEL N_PROMPT N_GEN -> JSON array on stdout
run_one() {
  local engine=$1 model=$2 p=$3 n=$4
  case $engine in
    llama) "$BIN/llama-bench" -m "$model" -t "$THREADS" -p "$p" -n "$n" -r "$REPS" \
             -fa 1 -o json 2>/dev/null ;;
    hearth) "$HEARTH" bench "$model" -t "$THREADS" -p "$p" -n "$n" -r "$REPS" --json ;;
  esac
}

if [ "${1:-}" = "--build-only" ]; then build_llamacpp; exit 0; fi

models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  models=("$MODELS_DIR/SmolLM2-135M-Instruct.Q4_1.gguf" "$MODELS_DIR/gemma-3-270m-q4_k_m.gguf")
fi
for m in "${models[@]}"; do
  [ -f "$m" ] || { log "model not found: $m (scripts/fetch-models.sh fetches the defaults)"; exit 1; }
done

build_llamacpp
HEARTH=$(hearth_bin)
[ -x "$HEARTH" ] || { log "no hearth binary at $HEARTH"; exit 1; }

results=$(mktemp); trap 'rm -f "$results"' EXIT
tests=()
IFS=, read -ra plist <<<"$PROMPTS"
for p in "${plist[@]}"; do [ "$p" -gt 0 ] && tests+=("$p 0"); done
[ "$GEN" -gt 0 ] && tests+=("0 $GEN")

for m in "${models[@]}"; do
  for t in "${tests[@]}"; do
    read -r p n <<<"$t"
    for engine in llama hearth; do
      log "$(basename "$m"): $engine p=$p n=$n"
      out=$(run_one "$engine" "$m" "$p" "$n") || { log "$engine failed on $(basename "$m") p=$p n=$n"; out='[]'; }
      printf '%s\t%s\t%s\n' "$engine" "$m" "$(tr -d '\n' <<<"$out")" >>"$results"
    done
  done
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')

# Start-up and memory: process start to the first generated token
# (llama-completion ... -n 1 against hearth run ... -n 1), with the same
# context (4096), alternating, each command's wall time and peak RSS.
startup=$(mktemp); trap 'rm -f "$results" "$startup"' EXIT
if [ -x "$BIN/llama-completion" ]; then
  for m in "${models[@]}"; do
    "$PY" - "$BIN/llama-completion" "$HEARTH" "$m" "$THREADS" "$REPS" >>"$startup" <<'PYEOF'
import os, resource, subprocess, sys, time
llama, hearth, model, threads, reps = sys.argv[1:6]
cmds = {
    "llama": [llama, "-m", model, "-p", "Hello", "-n", "1", "-t", threads, "-c", "4096",
              "-no-cnv", "--temp", "0"],
    "hearth": [hearth, "run", model, "Hello", "-n", "1", "-t", threads, "--ctx", "4096",
               "--raw", "--temperature", "0"],
}
times = {k: [] for k in cmds}
rss = {k: 0 for k in cmds}
for _ in range(int(reps)):
    for k, c in cmds.items():
        pid = os.fork()
        if pid == 0:
            fd = os.open(os.devnull, os.O_RDWR)
            for f in (0, 1, 2):
                os.dup2(fd, f)
            os.execv(c[0], c)
        t0 = time.perf_counter()
        _, status, ru = os.wait4(pid, 0)
        times[k].append(time.perf_counter() - t0)
        rss[k] = max(rss[k], ru.ru_maxrss)
        if status != 0:
            sys.exit(f"{k} failed on {model}")
name = os.path.basename(model)
for k in cmds:
    print(f"{name}\t{k}\t{min(times[k]) * 1000:.1f}\t{rss[k] / 1024:.1f}")
PYEOF
  done
fi

"$PY" - "$results" "$cpu" "$THREADS" "$REPS" "$VERSION" "$startup" <<'EOF'
import datetime, json, os, sys

path, cpu, threads, reps, version = sys.argv[1:6]
rows = {}  # (model, test) -> {engine: (avg, sd)}
order = []
for line in open(path):
    engine, model, blob = line.rstrip("\n").split("\t", 2)
    try:
        entries = json.loads(blob)
    except json.JSONDecodeError:
        entries = []
    for e in entries:
        p, n = int(e.get("n_prompt", 0)), int(e.get("n_gen", 0))
        test = f"pp{p}" if n == 0 else (f"tg{n}" if p == 0 else f"pp{p}+tg{n}")
        key = (os.path.basename(model), test)
        if key not in rows:
            rows[key] = {}
            order.append(key)
        rows[key][engine] = (float(e["avg_ts"]), float(e["stddev_ts"]))

print(f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}  ")
print(f"cpu: {cpu}  ")
print(f"threads: {threads}, repetitions: {reps}, llama.cpp: llama-cpp-python {version} vendored ({os.environ.get('LLAMA_ISA', 'native')} build), -fa 1  ")
print()
print("| model | test | llama.cpp t/s | hearth t/s | hearth / llama.cpp |")
print("| --- | --- | ---: | ---: | ---: |")
fmt = lambda v: f"{v[0]:.2f} ± {v[1]:.2f}" if v else "failed"
for key in order:
    l, h = rows[key].get("llama"), rows[key].get("hearth")
    ratio = f"{h[0] / l[0]:.2f}" if l and h and l[0] > 0 else "n/a"
    print(f"| {key[0]} | {key[1]} | {fmt(l)} | {fmt(h)} | {ratio} |")

start = {}
for line in open(sys.argv[6]):
    model, engine, ms, mib = line.rstrip("\n").split("\t")
    start.setdefault(model, {})[engine] = (float(ms), float(mib))
if start:
    print()
    print("Process start to first token (best of the repetitions) and peak RSS, context 4096:")
    print()
    print("| model | llama.cpp ms | hearth ms | hearth / llama.cpp | llama.cpp MiB | hearth MiB | hearth / llama.cpp |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for model, e in start.items():
        (lt, lm), (ht, hm) = e["llama"], e["hearth"]
        print(f"| {model} | {lt:.1f} | {ht:.1f} | {ht / lt:.2f} | {lm:.1f} | {hm:.1f} | {hm / lm:.2f} |")
EOF
