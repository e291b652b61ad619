#!/usr/bin/env bash
# The project's test command: fetches everything the tests need (the real
# models, also installed into the store as `smollm2` and `gemma3:270m`,
# and the Python venv with the official clients), runs the whole suite,
# then runs the tests whose results depend on the kernel tier (the golden
# comparisons with llama.cpp and the `hearth serve` client tests) again
# with HEARTH_ISA=avx2, the tier of most users' CPUs, and lists every test
# that skipped itself and why (0 on a machine with
# everything fetched). Under CI=true a missing model or venv is a failure,
# never a skip.
#
# Usage: scripts/test.sh [extra `cargo test` arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

ci() { [ "${CI:-}" = true ]; }

# Fetching needs PyPI; outside CI a failure leaves the tests to skip (and
# be listed below) rather than not run at all.
cargo build --release --bin hearth
export HEARTH_BIN="$PWD/target/release/hearth"
if ! scripts/fetch-models.sh; then
  ci && exit 1
  echo "test.sh: fetching the models failed; the tests that need them will skip" >&2
fi
if ! scripts/client-venv.sh >/dev/null; then
  ci && exit 1
  echo "test.sh: making the client venv failed; the client tests will skip" >&2
fi

skips="$(mktemp)"
log="$(mktemp)"
trap 'rm -f "$skips" "$log"' EXIT
export HEARTH_SKIP_LOG="$skips"
status=0
t0=$SECONDS
cargo test --workspace --release --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
echo "test.sh: suite (best tier) took $((SECONDS - t0)) s"
if [ "${HEARTH_TEST_AVX2_PASS:-1}" = 1 ]; then
  t0=$SECONDS
  echo "test.sh: golden and client tests again with HEARTH_ISA=avx2"
  HEARTH_ISA=avx2 cargo test --release --no-fail-fast \
    -p hearth-model --test golden_logits \
    -p hearth-cli --test golden_run --test perplexity --test serve_clients \
    2>&1 | tee -a "$log" || status=$?
  echo "test.sh: HEARTH_ISA=avx2 pass took $((SECONDS - t0)) s"
fi

n=$(grep -c . "$skips" || true)
echo
echo "skipped: $n test(s)"
sort "$skips" | sed 's/^/  /'
# #[ignore]d tests are the speed benchmarks (timings are never asserted);
# `cargo test --release -- --ignored` runs them.
ignored=$(grep -E '\.\.\. ignored$' "$log" | sed -E 's/^test (.*) \.\.\. ignored$/\1/' || true)
echo "ignored (benchmarks, run with -- --ignored): $(grep -c . <<<"$ignored" || true)"
[ -z "$ignored" ] || sed 's/^/  /' <<<"$ignored"
exit "$status"
