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
#   GEN                   tokens generated per request (default: 128)
#   REQS                  requests per client (default: 4; the 1-client run is then 512 tokens, long enough to time)
#   CTX                   context per slot (default: 1024)
#   ROUNDS                times the whole sequence of runs is repeated (default:
#                         3); each number reported is the median over rounds,
#                         since a shared machine's speed drifts between runs
#   ENGINES               which servers to run, comma list (default: llama,hearth;
#                         hearth alone skips building llama-server)
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
GEN="${GEN:-128}"
REQS="${REQS:-4}"
CTX="${CTX:-1024}"
ENGINES="${ENGINES:-llama,hearth}"
ROUNDS="${ROUNDS:-3}"
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

model="${1:-$MODELS_DIR/SmolLM2-135M-Instruct.Q4_1.gguf}"
[ -f "$model" ] || { log "model not found: $model (scripts/fetch-models.sh fetches it)"; exit 1; }
case ",$ENGINES," in *,llama,*) build_server ;; esac
if [ -n "${HEARTH_BIN:-}" ]; then
  HEARTH="$HEARTH_BIN"
else
  log "building hearth (release)"
  (cd "$ROOT" && nice -n 10 cargo build --release --quiet -p hearth-cli) >&2
  HEARTH="$ROOT/target/release/hearth"
fi
PY="${PYTHON:-$("$ROOT/scripts/client-venv.sh")}"

exec "$PY" - "$HEARTH" "$BIN/llama-server" "$model" "$THREADS" "$CLIENTS" "$GEN" "$REQS" "$CTX" "$ENGINES" "$ROUNDS" <<'PYEOF'
import asyncio, os, signal, socket, statistics, subprocess, sys, tempfile, time

import httpx

hearth, llama, model, threads, clients, gen, reqs, ctx, engines, rounds = sys.argv[1:11]
rounds = max(1, int(rounds))
engines = [e for e in ("llama", "hearth") if e in engines.split(",")]
if not engines:
    sys.exit("bench-serve: ENGINES must name llama, hearth or both")
clients = [int(c) for c in clients.split(",")]
gen, reqs, ctx = int(gen), int(reqs), int(ctx)
NAME = os.path.splitext(os.path.basename(model))[0]  # hearth names a model by its file stem

def log(msg):
    print(f"bench-serve: {msg}", file=sys.stderr, flush=True)

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def command(engine, n, port):
    if engine == "hearth":
        return [hearth, "serve", model, "--host", f"127.0.0.1:{port}", "--parallel", str(n),
                "--threads", threads, "--ctx", str(ctx), "--max-queue", str(4 * n + 16)]
    # llama-server's -c is the context of all slots together.
    return [llama, "-m", model, "--host", "127.0.0.1", "--port", str(port), "-np", str(n),
            "-c", str(ctx * n), "-t", threads, "-tb", threads, "-fa", "on", "--no-warmup"]

# Distinct prompts per client and request (a shared prefix as chat clients
# have), the same for both engines; completions without a chat template.
TOPICS = ["the sea", "a mountain village", "the history of bread", "a robot learning to paint",
          "the moon", "an old library", "a train journey", "winter in the city"]

def prompt(c, r):
    return (f"Here is a long, detailed essay about {TOPICS[(c + r) % len(TOPICS)]}, "
            f"part {c * 31 + r + 1}.\n\n")

async def one_run(url, n):
    async with httpx.AsyncClient(base_url=url, timeout=600,
                                 limits=httpx.Limits(max_connections=n + 4)) as h:
        async def client(c):
            toks = 0
            for r in range(reqs):
                resp = await h.post("/v1/completions", json={
                    "model": NAME, "prompt": prompt(c, r),
                    "max_tokens": gen, "temperature": 0, "seed": 1})
                resp.raise_for_status()
                toks += resp.json()["usage"]["completion_tokens"]
            return toks
        t0 = time.perf_counter()
        counts = await asyncio.gather(*(client(c) for c in range(n)))
        return sum(counts), time.perf_counter() - t0

def bench(engine, n):
    port = free_port()
    logf = tempfile.TemporaryFile()
    p = subprocess.Popen(command(engine, n, port), stdout=logf, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        t0 = time.time()
        while True:
            if p.poll() is not None:
                logf.seek(0)
                sys.exit(f"{engine} exited: {logf.read().decode(errors='replace')[-2000:]}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() - t0 > 120:
                sys.exit(f"{engine} not healthy after 120 s")
            time.sleep(0.2)
        # Warm-up: one short request (page in the weights, start threads).
        httpx.post(url + "/v1/completions", timeout=600, json={
            "model": NAME, "prompt": "Hello", "max_tokens": 4,
            "temperature": 0}).raise_for_status()
        b0, o0, t0 = busy_ticks(), own_ticks(p.pid), time.time()
        toks, secs = asyncio.run(one_run(url, n))
        busy, own = busy_ticks() - b0, own_ticks(p.pid) - o0
        other = max(0, busy - own) / ((time.time() - t0) * TICK * os.cpu_count())
        others.append(other)
        return toks, secs, other
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

TICK = os.sysconf("SC_CLK_TCK")

def busy_ticks():
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(f) - f[3] - f[4]  # all but idle and iowait

def own_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    t = os.times()
    return int(f[11]) + int(f[12]) + round((t.user + t.system) * TICK)

others = []  # CPU share taken by other processes during each run
runs = {}  # (engine, clients) -> [(tokens, seconds), ...], one per round
for rnd in range(rounds):
    for n in clients:
        for engine in engines:  # alternate, so drift lands on both
            log(f"round {rnd + 1}/{rounds}, {engine}: {n} clients x {reqs} requests x {gen} tokens")
            toks, secs, _ = bench(engine, n)
            runs.setdefault((engine, n), []).append((toks, secs))
            log(f"{engine}: {toks} tokens in {secs:.2f} s = {toks / secs:.1f} t/s")

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"cpu: {cpu}  ")
print(f"model: {os.path.basename(model)}, threads: {threads}, {reqs} requests per client, "
      f"max_tokens {gen}, temperature 0, /v1/completions  ")
print(f"each number: the median of {rounds} rounds (every round runs each configuration once, "
      f"the servers alternating); the range is the lowest and highest round  ")
print(f"CPU taken by other processes during the runs: {min(others):.0%} to {max(others):.0%}"
      f" of {os.cpu_count()} cores  ")
if max(others) > 0.1:
    print("**warning: the machine was busy; other processes' threads compete with both "
          "servers' thread pools and the numbers are unreliable**  ")
print()
NAMES = {"llama": "llama-server", "hearth": "hearth serve"}
both = len(engines) == 2
head = ["clients (= slots)"] + [f"{NAMES[e]} t/s" for e in engines]
if both:
    head.append("hearth / llama-server")
print("| " + " | ".join(head) + " |")
print("|" + " ---: |" * len(head))
rate = {}
for n in clients:
    rates = {e: [t / sec for t, sec in runs[(e, n)]] for e in engines}
    rate[n] = {e: statistics.median(rates[e]) for e in engines}
    cells = [str(n)] + [f"{rate[n][e]:.1f} ({min(rates[e]):.0f}–{max(rates[e]):.0f})"
                        for e in engines]
    if both:
        cells.append(f"{rate[n]['hearth'] / rate[n]['llama']:.2f}")
    print("| " + " | ".join(cells) + " |")
if 1 in rate and 4 in rate:
    print()
    print("aggregate at 4 clients / 1 client (medians): " + ", ".join(
        f"{NAMES[e]} {rate[4][e] / rate[1][e]:.2f}x" for e in engines))
    # Per round too: the 1- and 4-client runs of one round are close in time.
    for e in engines:
        per = [(t4 / s4) / (t1 / s1) for (t1, s1), (t4, s4) in zip(runs[(e, 1)], runs[(e, 4)])]
        print(f"{NAMES[e]} per round: " + ", ".join(f"{r:.2f}x" for r in per) + "  ")
PYEOF
