#!/usr/bin/env bash
# The project's test command: fetches everything the tests need (the real
# models, also installed into the store as `smollm2` and `gemma3:270m`,
# and the Python venv with the official clients), runs the whole suite,
# then runs the tests whose results depend on the kernel tier again with
# HEARTH_ISA=avx2 (unless that was the suite's tier) and scalar (below), and lists every test
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

if ! scripts/sys-deps.sh; then
  ci && exit 1
  echo "test.sh: installing strace/unshare/ip failed; the network-namespace test will skip" >&2
fi

if ! scripts/ui-deps.sh; then
  ci && exit 1
  echo "test.sh: installing the chat page test's browser failed; that test will skip" >&2
fi

skips="$(mktemp)"
log="$(mktemp)"
trap 'rm -f "$skips" "$log"' EXIT
export HEARTH_SKIP_LOG="$skips"
status=0
t0=$SECONDS
cargo test --workspace --release --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
echo "test.sh: suite (best tier) took $((SECONDS - t0)) s"
# The tier-dependent tests again on the lower tiers (HEARTH_TEST_TIERS=0
# skips this, e.g. while iterating): AVX2, the tier of most users' CPUs,
# gets the golden comparisons with llama.cpp, batch invariance and the
# client tests; the slow scalar tier the teacher-forced golden logits (its
# own bounds) and the batch-invariance tests
# (--deterministic must hold on every tier); both the architecture zoo
# and the block-format zoo (tiny models, every architecture and every
# block format against llama.cpp), and the recurrent state rules on the
# zoo's hybrid models.
# A pass on the tier the whole suite just ran on (`hearth --version` names
# it: AVX2 on a CPU without AVX-512) would repeat it test for test; it is
# reported, not run again.
suite_tier=$("$HEARTH_BIN" --version | sed -n 's/^kernels: \([a-z0-9]*\).*/\1/p')
echo "test.sh: the suite above ran on the ${suite_tier:-unknown} kernels"
tier() { # NAME ISA cargo-test-args...
  local name=$1 isa=$2 t0=$SECONDS
  shift 2
  if [ "$isa" = "$suite_tier" ]; then
    echo "test.sh: $name (HEARTH_ISA=$isa): ran in the suite above ($isa is this CPU's best tier)"
    return
  fi
  echo "test.sh: $name (HEARTH_ISA=$isa)"
  HEARTH_ISA=$isa cargo test --release --no-fail-fast "$@" 2>&1 | tee -a "$log" || status=$?
  echo "test.sh: $name (HEARTH_ISA=$isa) took $((SECONDS - t0)) s"
}
if [ "${HEARTH_TEST_TIERS:-1}" = 1 ]; then
  tier "golden, parity and client tests" avx2 \
    -p hearth-model --test golden_logits --test batch_invariant --test zoo --test zoo_quant \
      --test recurrent \
    -p hearth-engine --test batch \
    -p hearth-cli --test golden_run --test perplexity --test serve_clients
  tier "golden logits, batch invariance, architecture and block-format zoo, recurrent state" scalar \
    -p hearth-model --test golden_logits --test batch_invariant --test zoo --test zoo_quant \
      --test recurrent
  tier "knowledge-base vectors" avx2 -p hearth-rag --lib --test kb
  tier "knowledge-base vectors" scalar -p hearth-rag --lib --test kb
  tier "deterministic engine" scalar -p hearth-engine --test batch -- deterministic
  tier "operations (float GEMM, packed attention, expert matmul, sinks)" avx2 -p hearth-ops --lib --test attention_sinks
  tier "operations (float GEMM, packed attention, expert matmul, sinks)" scalar -p hearth-ops --lib --test attention_sinks
fi

# The fuzz targets are their own workspace (they need nightly to run);
# type-checking them on stable keeps them in step with the crates they drive.
echo "test.sh: type-checking the fuzz targets"
cargo check --quiet --manifest-path fuzz/Cargo.toml --bins 2>&1 | tee -a "$log" || status=$?

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
