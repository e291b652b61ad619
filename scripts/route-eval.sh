#!/usr/bin/env bash
# The cascade evaluation: SmolLM2 (local, with token log-probabilities) and
# Gemma 3 270M (the "big" model, a second `hearth serve` on loopback used as
# an OpenAI upstream; a base model, so it is made a question answerer by
# testdata/route/gemma-chat.Modelfile, created in the store as
# gemma3-qa:270m unless BIG names another model) answer
# testdata/route/cascade.jsonl; prints the fraction answered locally and the
# exact-match accuracy of the cascade, always-small and always-big for a
# grid of thresholds and with thresholds chosen on a held-out half.
#   scripts/route-eval.sh [ANSWERS.json]   (reuses the answers when the file exists)
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL=${SMALL:-smollm2} BIG=${BIG:-gemma3-qa:270m}
PS=${SMALL_PORT:-11621} PB=${BIG_PORT:-11622}
bin=${HEARTH_BIN:-target/release/hearth}
[ -x "$bin" ] || cargo build --release -q -p hearth-cli
cargo build --release -q -p hearth-route --example route_eval
if [ "$BIG" = gemma3-qa:270m ]; then
  "$bin" create gemma3-qa:270m -f testdata/route/gemma-chat.Modelfile
fi
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
if [ -z "${1:-}" ] || [ ! -e "$1" ]; then
  "$bin" serve "$SMALL" --host "127.0.0.1:$PS" --parallel 1 --no-admin >/tmp/route-eval-small.log 2>&1 & pids+=($!)
  "$bin" serve "$BIG" --host "127.0.0.1:$PB" --parallel 1 --no-admin >/tmp/route-eval-big.log 2>&1 & pids+=($!)
  for port in "$PS" "$PB"; do
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.2; done
  done
fi
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
target/release/examples/route_eval testdata/route/cascade.jsonl \
  "http://127.0.0.1:$PS/v1" "$SMALL" "http://127.0.0.1:$PB/v1" "$BIG" ${1:+"$1"}
