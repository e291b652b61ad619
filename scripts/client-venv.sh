#!/usr/bin/env bash
# Creates or refreshes the Python virtual environment the `hearth serve`
# client tests (tests/clients) and scripts/bench-serve.sh use: the official
# `ollama` and `openai` packages from PyPI plus jsonschema, pytest and httpx,
# at the versions pinned in tests/clients/requirements.txt.
#
# The venv lives outside the repository (HEARTH_CLIENT_VENV, default
# ~/.cache/hearth/venv-clients). When it already holds exactly these pins it
# returns at once; a changed requirements file reinstalls. A half-made venv
# is never left behind as complete: it is built in a temporary folder and
# moved into place at the end.
#
# Prints the venv's python path on stdout.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ="$ROOT/tests/clients/requirements.txt"
VENV="${HEARTH_CLIENT_VENV:-$HOME/.cache/hearth/venv-clients}"
PY="${PYTHON:-python3}"
STAMP="$VENV/.hearth-requirements"

log() { echo "client-venv: $*" >&2; }

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && cmp -s "$REQ" "$STAMP"; then
  echo "$VENV/bin/python"
  exit 0
fi

command -v "$PY" >/dev/null || { log "no $PY found; install Python 3.9 or newer"; exit 1; }
mkdir -p "$(dirname "$VENV")"
tmp="$(mktemp -d "$VENV.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
log "creating $VENV"
# The venv is made at its final path so its scripts name the right
# interpreter; the temporary folder only holds the previous one meanwhile.
if [ -e "$VENV" ]; then mv "$VENV" "$tmp/old"; fi
if ! "$PY" -m venv "$VENV" ||
   ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"; then
  log "installing the client packages failed"
  rm -rf "$VENV"
  if [ -e "$tmp/old" ]; then mv "$tmp/old" "$VENV"; fi
  exit 1
fi
cp "$REQ" "$STAMP"
log "installed: $(grep -v '^#' "$REQ" | tr '\n' ' ')"
echo "$VENV/bin/python"
