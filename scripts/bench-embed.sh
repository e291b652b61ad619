#!/usr/bin/env bash
# Embedding serving speed: `hearth serve` against llama.cpp's `llama-server
# --embedding` on the same GGUF (default all-MiniLM-L6-v2 Q8_0 from
# scripts/fetch-models.sh), same threads, mean pooling, both through
# /v1/embeddings. A benchmark, not a test.
#
# Reported per server: throughput (inputs/s) embedding N short sentences
# sent in requests of B inputs each (default 512 sentences, B = 32 and 64),
# and the latency of a request with one sentence (p50 and p90 over LAT
# requests, one at a time); then hearth/llama ratios (throughput above 1
# and latency below 1 favour hearth). The servers run alternately, one
# measurement at a time, ROUNDS times; each number is the median over
# rounds, since a shared machine's speed drifts.
#
# llama-server comes from the llama.cpp build scripts/compare-llamacpp.sh
# caches (its bin folder, or the build folder's bin/); when neither holds
# one, scripts/bench-serve.sh --build-only builds it.
#
# Usage:
#   scripts/bench-embed.sh [MODEL.gguf]
#
# Environment:
#   HEARTH_LLAMA_CPP_DIR  llama.cpp cache (default ~/.cache/hearth/llama.cpp)
#   LLAMA_SERVER          a llama-server binary to use
#   HEARTH_BIN            a hearth binary to use instead of building one
#   THREADS               threads for both servers (default: 2)
#   INPUTS                sentences per throughput run (default: 512)
#   BATCHES               inputs per request, comma list (default: 32,64)
#   LAT                   single-input requests per latency run (default: 100)
#   ROUNDS                repetitions of the whole sequence (default: 3)
#   LLAMA_SLOTS           llama-server -np (default: 16; each slot 512 tokens,
#                         so one batch holds up to 16 inputs)
#   LLAMA_ISA             native (default) or avx2, as in compare-llamacpp.sh
#   ENGINES               which servers to run, comma list (default: llama,hearth;
#                         hearth alone needs no llama-server and prints no ratios)
#   PYTHON                python with httpx (default: the clients venv)
set -euo pipefail

VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
LDIR="${HEARTH_LLAMA_CPP_DIR:-$HOME/.cache/hearth/llama.cpp}"
MODELS_DIR="${HEARTH_MODEL_CACHE:-$HOME/.cache/hearth/models}"
THREADS="${THREADS:-2}"
INPUTS="${INPUTS:-512}"
BATCHES="${BATCHES:-32,64}"
LAT="${LAT:-100}"
ROUNDS="${ROUNDS:-3}"
SLOTS="${LLAMA_SLOTS:-16}"
ENGINES="${ENGINES:-llama,hearth}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${LLAMA_ISA:-native}" in
  native) SUFFIX="" ;;
  avx2) SUFFIX="-avx2" ;;
  *) echo "bench-embed: LLAMA_ISA must be native or avx2" >&2; exit 2 ;;
esac

log() { echo "bench-embed: $*" >&2; }

model="${1:-$MODELS_DIR/all-minilm-l6-v2.q8_0.gguf}"
[ -f "$model" ] || { log "model not found: $model (scripts/fetch-models.sh fetches it)"; exit 1; }
LLAMA="${LLAMA_SERVER:-}"
if [ -z "$LLAMA" ]; then
  for c in "$LDIR/bin-$VERSION$SUFFIX/llama-server" "$LDIR/build-$VERSION$SUFFIX/bin/llama-server"; do
    if [ -x "$c" ]; then LLAMA="$c"; break; fi
  done
fi
if [ -z "$LLAMA" ] && [[ ",$ENGINES," == *,llama,* ]]; then
  "$ROOT/scripts/bench-serve.sh" --build-only
  LLAMA="$LDIR/bin-$VERSION$SUFFIX/llama-server"
fi
if [ -n "${HEARTH_BIN:-}" ]; then
  HEARTH="$HEARTH_BIN"
else
  log "building hearth (release)"
  (cd "$ROOT" && nice -n 10 cargo build --release --quiet -p hearth-cli) >&2
  HEARTH="$ROOT/target/release/hearth"
fi
PY="${PYTHON:-$("$ROOT/scripts/client-venv.sh")}"
log "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);" \
  "avx512: $(grep -qw avx512f /proc/cpuinfo && echo yes || echo no); llama.cpp ISA: ${LLAMA_ISA:-native}"

exec "$PY" - "$HEARTH" "$LLAMA" "$model" "$THREADS" "$INPUTS" "$BATCHES" "$LAT" "$ROUNDS" "$SLOTS" \
  "$ENGINES" <<'PYEOF'
import os, socket, statistics, subprocess, sys, tempfile, time

import httpx

hearth, llama, model, threads, inputs, batches, lat, rounds, slots, engines = sys.argv[1:11]
engines = [e for e in ("llama", "hearth") if e in engines.split(",")]
if not engines:
    sys.exit("bench-embed: ENGINES must name llama, hearth or both")
inputs, lat, rounds, slots = int(inputs), int(lat), max(1, int(rounds)), int(slots)
batches = [int(b) for b in batches.split(",")]
NAME = os.path.splitext(os.path.basename(model))[0]

def log(msg):
    print(f"bench-embed: {msg}", file=sys.stderr, flush=True)

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def command(engine, port):
    if engine == "hearth":
        return [hearth, "serve", model, "--host", f"127.0.0.1:{port}", "--threads", threads,
                "--parallel", "1"]
    # llama-server: each slot holds one input of up to 512 tokens; -b/-ub
    # let all slots' inputs go in one batch.
    return [llama, "-m", model, "--host", "127.0.0.1", "--port", str(port), "--embedding",
            "--pooling", "mean", "-t", threads, "-tb", threads, "-np", str(slots),
            "-c", str(512 * slots), "-b", str(512 * slots), "-ub", str(512 * slots),
            "--no-warmup"]

# Short sentences of about 10 to 16 tokens, all distinct.
SUBJ = ["The old fisherman", "A young student", "My neighbour's cat", "The city council",
        "Our research team", "The small bakery", "A tired traveller", "The new manager"]
VERB = ["repaired", "described", "painted", "discussed", "found", "ignored", "studied", "sold"]
OBJ = ["a broken bicycle", "the annual budget", "an ancient map", "the quiet harbour",
       "a strange noise", "the morning train", "a list of questions", "the garden wall"]
WHEN = ["yesterday", "last winter", "before dinner", "on Monday"]
def sentence(i):
    return (f"{SUBJ[i % 8]} {VERB[i // 8 % 8]} {OBJ[i // 64 % 8]} {WHEN[i // 512 % 4]} "
            f"for reason {i}.")
TEXTS = [sentence(i) for i in range(inputs)]

class Server:
    def __init__(self, engine):
        self.engine = engine
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-embed-{engine}-", suffix=".log",
                                               delete=False)
        self.proc = subprocess.Popen(command(engine, self.port), stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=600)
        t0 = time.time()
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"bench-embed: {engine} exited; log: {self.log.name}")
            try:
                if self.http.get("/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() - t0 > 120:
                sys.exit(f"bench-embed: {engine} not healthy after 120 s; log: {self.log.name}")
            time.sleep(0.2)
        self.embed(TEXTS[:8])  # warm up

    def embed(self, texts):
        r = self.http.post("/v1/embeddings", json={"model": NAME, "input": texts,
                                                   "encoding_format": "float"})
        if r.status_code != 200:
            sys.exit(f"bench-embed: {self.engine}: {r.status_code} {r.text[:300]}")
        data = r.json()["data"]
        assert len(data) == len(texts), (self.engine, len(data))
        return data

    def throughput(self, batch):
        t0 = time.perf_counter()
        for i in range(0, len(TEXTS), batch):
            self.embed(TEXTS[i:i + batch])
        return len(TEXTS) / (time.perf_counter() - t0)

    def latency(self):
        times = []
        for i in range(lat):
            t0 = time.perf_counter()
            self.embed([TEXTS[(i * 37) % len(TEXTS)]])
            times.append(time.perf_counter() - t0)
        times.sort()
        return times[len(times) // 2], times[int(len(times) * 0.9)]

    def close(self):
        self.http.close()
        self.proc.send_signal(15)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.unlink(self.log.name)

# Both servers stay up; measurements alternate between them.
servers = {e: Server(e) for e in engines}
if len(servers) == 2:
    # The same sentence embeds alike on both (they compute the same thing).
    a, b = (servers[e].embed(TEXTS[:1])[0]["embedding"] for e in ("llama", "hearth"))
    dot = sum(x * y for x, y in zip(a, b))
    cos = dot / ((sum(x * x for x in a) * sum(y * y for y in b)) ** 0.5)
    log(f"cosine hearth vs llama.cpp on one sentence: {cos:.6f}")
results = {e: {} for e in servers}
for r in range(rounds):
    for batch in batches:
        for e, s in servers.items():
            results[e].setdefault(f"tput{batch}", []).append(s.throughput(batch))
    for e, s in servers.items():
        p50, p90 = s.latency()
        results[e].setdefault("p50", []).append(p50)
        results[e].setdefault("p90", []).append(p90)
    log(f"round {r + 1}/{rounds} done")
for s in servers.values():
    s.close()

med = {e: {k: statistics.median(v) for k, v in d.items()} for e, d in results.items()}
print(f"model {os.path.basename(model)}, threads {threads}, {inputs} sentences, "
      f"median of {rounds} rounds; llama-server -np {slots}")
cols = [e if e == "hearth" else "llama-server" for e in engines]
print(f"{'':28}" + "".join(f"{c:>14}" for c in cols)
      + (f"{'hearth/llama':>14}" if len(engines) == 2 else ""))
rows = [(f"inputs/s, {b} per request", f"tput{b}", 1.0) for b in batches]
rows += [(f"1-input latency {k} ms", k, 1000.0) for k in ("p50", "p90")]
for label, k, scale in rows:
    vals = [med[e][k] * scale for e in engines]
    line = f"{label:28}" + "".join(f"{v:14.2f}" for v in vals)
    if len(engines) == 2:
        line += f"{vals[1] / vals[0]:13.2f}x"
    print(line)
PYEOF
