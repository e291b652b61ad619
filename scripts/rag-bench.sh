#!/usr/bin/env bash
# Ingest speed (chunks/s) and query latency (p50, p95) of `hearth rag` with
# the default embedding model all-minilm, at about 100 chunks (the first
# files of testdata/rag/eval/docs) and about 10,000 chunks of distinct
# real documentation gathered from this machine's Debian packages (not
# committed; gathered into a temporary folder at each run):
#   /usr/share/doc/nodejs/api/*.md      Node.js API reference (package
#                                       nodejs, MIT licence), 64 files
#   /usr/share/doc/git/RelNotes/*.txt   Git release notes (package git,
#                                       GPL-2), 485 files
# Without them the 10,000-chunk run copies the evaluation corpus 17 times.
# Also the time to re-add the unchanged corpus. Needs
# scripts/fetch-models.sh minilm first. Record `uptime` with the numbers:
# the machine's load decides wall times here.
#
# Usage: scripts/rag-bench.sh [100|10000|100,10000]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes="${1:-100,10000}"
corpus=""
if [[ ",$sizes," == *,10000,* ]] && [ -d /usr/share/doc/nodejs/api ] && [ -d /usr/share/doc/git/RelNotes ]; then
  corpus=$(mktemp -d "${TMPDIR:-/tmp}/hearth-rag-bench-corpus.XXXXXX")
  trap 'rm -rf "$corpus"' EXIT
  mkdir -p "$corpus/nodejs-api" "$corpus/git-relnotes"
  cp /usr/share/doc/nodejs/api/*.md "$corpus/nodejs-api/"
  cp /usr/share/doc/git/RelNotes/*.txt "$corpus/git-relnotes/"
  echo "10,000-chunk corpus: $(find "$corpus" -type f | wc -l) files, $(cat "$corpus"/*/* | wc -c) bytes"
fi
echo "load before: $(uptime)"
HEARTH_RAG_BENCH="$sizes" HEARTH_RAG_BENCH_CORPUS="$corpus" \
  cargo test --release -p hearth-rag --test bench -- --ignored --nocapture 2>&1 |
  grep --line-buffered -E 'chunks|panicked|error' || true
echo "load after: $(uptime)"
# Retrieval alone (a trivial embedder) at the same sizes, and re-adding an
# unchanged 1,000-file folder:
cargo test --release -p hearth-rag --test latency --test kb -- --nocapture 2>&1 |
  grep -E 'chunks:|unchanged files|panicked' || true
