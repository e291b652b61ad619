#!/usr/bin/env bash
# Replays a new user's first hour on a clean HOME and fails at the first
# step that does not do what README.md says: the quickstart, `list`, `run`
# by store name, `serve` with the model given by path and `/api/tags`
# listing it once, `create` from a Modelfile and `run` it, `ps --json`,
# `stop`, and `show --modelfile`.
#
# HOME is a new temporary folder (removed at the end) unless FIRST_HOUR_HOME
# names one. The model comes from HEARTH_MODEL_CACHE (default: the real
# ~/.cache/hearth/models), where scripts/fetch-models.sh finds it already
# downloaded, so nothing is fetched when it is there. HEARTH_BIN names the
# hearth binary (default: target/release/hearth, built by the quickstart).
#
# Usage: scripts/first-hour.sh     (prints each step; "first hour: ok" at the end)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export HEARTH_MODEL_CACHE="${HEARTH_MODEL_CACHE:-$HOME/.cache/hearth/models}"
PY="${PYTHON:-python3}"

if [ -n "${FIRST_HOUR_HOME:-}" ]; then
  NEW_HOME="$FIRST_HOUR_HOME"
else
  NEW_HOME="$(mktemp -d "${TMPDIR:-/tmp}/hearth-first-hour.XXXXXX")"
fi
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  [ -n "${FIRST_HOUR_HOME:-}" ] || rm -rf "$NEW_HOME"
}
trap cleanup EXIT
# A cargo under the real HOME keeps working when the quickstart builds.
export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
export HOME="$NEW_HOME"
unset HEARTH_MODELS HEARTH_HOST HEARTH_API_KEY
cd "$HOME"

step() { echo; echo "== $*"; }
fail() { echo "first hour: FAILED: $*" >&2; exit 1; }

step "quickstart"
out="$("$ROOT/scripts/quickstart.sh" "Say hello in five words.")"
echo "$out"
[ -n "$out" ] || fail "the quickstart printed no reply"
HEARTH="${HEARTH_BIN:-$ROOT/target/release/hearth}"
[ -x "$HEARTH" ] || fail "no hearth binary at $HEARTH"

step "hearth list"
"$HEARTH" list | tee list.txt
grep -q '^smollm2:latest ' list.txt || fail "the quickstart's model is not listed as smollm2"

step "hearth run smollm2"
"$HEARTH" run smollm2 "Name one colour." -n 16 --temperature 0 -t 2 | tee reply.txt
[ -s reply.txt ] || fail "run by store name printed nothing"
[ "$(tail -c 1 reply.txt | od -An -c | tr -d ' ')" = '\n' ] || fail "the reply does not end with a newline"

step "hearth serve (the model by path) and /api/tags"
port="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export HEARTH_HOST="127.0.0.1:$port"
"$HEARTH" serve "$HEARTH_MODEL_CACHE/SmolLM2-135M-Instruct.Q4_1.gguf" --ctx 1024 -t 2 >serve.log 2>&1 &
server=$!
http() { # METHOD PATH [BODY] -> body on stdout, fails on a non-2xx status
  "$PY" - "$port" "$@" <<'PYEOF'
import sys, urllib.request
port, method, path = sys.argv[1:4]
body = sys.argv[4].encode() if len(sys.argv) > 4 else None
req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method,
                             headers={"content-type": "application/json"})
with urllib.request.urlopen(req, timeout=300) as r:
    sys.stdout.write(r.read().decode())
PYEOF
}
for _ in $(seq 1 600); do
  http GET /health >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat serve.log; fail "hearth serve exited"; }
  sleep 0.1
done
http GET /api/tags | tee tags.json
echo
"$PY" - tags.json <<'PYEOF' || fail "/api/tags does not list the model once, as smollm2"
import json, sys
models = json.load(open(sys.argv[1]))["models"]
names = [m["name"] for m in models]
assert names == ["smollm2:latest"], names
PYEOF

step "hearth create pirate -f Modelfile, then run it"
cat > Modelfile <<'EOF'
FROM smollm2
PARAMETER temperature 0
PARAMETER num_predict 24
SYSTEM """You are a pirate. Answer in one short sentence."""
EOF
"$HEARTH" create pirate -f Modelfile
"$HEARTH" run pirate "Who are you?" -t 2 | tee pirate.txt
[ -s pirate.txt ] || fail "the created model printed nothing"

step "the server answers as pirate; hearth ps --json"
http POST /api/generate '{"model": "pirate", "prompt": "Who are you?", "stream": false}' >/dev/null
"$HEARTH" ps --json | tee ps.json
"$PY" - ps.json <<'PYEOF' || fail "ps --json does not list pirate and smollm2"
import json, sys
names = sorted(m["name"] for m in json.load(open(sys.argv[1]))["models"])
assert names == ["pirate", "smollm2"], names
PYEOF

step "hearth stop pirate"
"$HEARTH" stop pirate
"$HEARTH" ps --json > ps2.json
"$PY" - ps2.json <<'PYEOF' || fail "pirate is still loaded after stop"
import json, sys
names = [m["name"] for m in json.load(open(sys.argv[1]))["models"]]
assert names == ["smollm2"], names
PYEOF

step "hearth show pirate --modelfile"
"$HEARTH" show pirate --modelfile | tee shown.txt
grep -q '^PARAMETER temperature 0$' shown.txt || fail "show --modelfile lost the temperature"
grep -q '^PARAMETER num_predict 24$' shown.txt || fail "show --modelfile lost num_predict"
grep -q '^SYSTEM You are a pirate. Answer in one short sentence.$' shown.txt || fail "show --modelfile lost the system message"

echo
echo "first hour: ok"
