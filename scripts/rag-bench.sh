#!/usr/bin/env bash
# Ingest speed (chunks/s) and query latency (p50, p95) of `hearth rag` with
# the default embedding model all-minilm, at about 100 and 10,000 chunks
# of real documentation (testdata/rag/eval/docs), plus the time to re-add
# the unchanged corpus. Needs scripts/fetch-models.sh minilm first.
#
# Usage: scripts/rag-bench.sh [100|10000|100,10000]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
HEARTH_RAG_BENCH="${1:-100,10000}" \
  cargo test --release -p hearth-rag --test bench -- --ignored --nocapture 2>&1 |
  grep -E 'chunks|panicked|error' || true
# Retrieval alone (a trivial embedder) at the same sizes, and re-adding an
# unchanged 1,000-file folder:
cargo test --release -p hearth-rag --test latency --test kb -- --nocapture 2>&1 |
  grep -E 'chunks:|unchanged files|panicked' || true
