#!/usr/bin/env bash
# Builds the speech evaluation set that testdata/speech/clips.tsv describes:
# real recordings with transcripts from Debian packages (pocketsphinx-testdata:
# LibriVox readings, spoken card names, a command; alsa-utils: the channel-test
# voice), the jfk.wav reference clip, and a few espeak-ng synthetic voices.
#
# Everything goes into a cache outside the repository (HEARTH_SPEECH_EVAL,
# default ~/.cache/hearth/speech-eval): clips/<id>.wav (16-bit PCM WAV), the
# Whisper English text normaliser from the openai-whisper sdist (normalizer/),
# and a venv with what that normaliser imports (venv/). Each real clip is
# checked against the sha256 in the manifest; a clip that does not match is
# an error, never silently used. Synthetic clips are made with the installed
# espeak-ng (installed with apt-get when missing and run as root).
#
# Prints the cache path on stdout. Score transcripts with scripts/speech-wer.py.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MANIFEST="$ROOT/testdata/speech/clips.tsv"
OUT="${HEARTH_SPEECH_EVAL:-$HOME/.cache/hearth/speech-eval}"
PY="${PYTHON:-python3}"
log() { echo "speech-eval-clips: $*" >&2; }

# complete: every clip present (real ones with their sha256), normaliser and venv made.
complete() {
  [ -f "$OUT/normalizer/normalizers/english.py" ] && [ -x "$OUT/venv/bin/python" ] || return 1
  local id file source licence sha text
  while IFS=$'\t' read -r id file source licence sha text; do
    case "$id" in ''|'#'*|id) continue ;; esac
    [ -f "$OUT/clips/$id.wav" ] || return 1
    if [ "$sha" != - ] && [ "$(sha256sum "$OUT/clips/$id.wav" | cut -d' ' -f1)" != "$sha" ]; then return 1; fi
  done < "$MANIFEST"
}
if complete; then echo "$OUT"; exit 0; fi

mkdir -p "$OUT/clips"
tmp=$(mktemp -d "$OUT/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Debian packages with real speech.
(cd "$tmp" && apt-get download pocketsphinx-testdata alsa-utils >/dev/null 2>&1) ||
  { log "apt-get download pocketsphinx-testdata alsa-utils failed"; exit 1; }
for d in "$tmp"/*.deb; do dpkg-deb -x "$d" "$tmp/x"; done
PS="$tmp/x/usr/share/pocketsphinx/test/data"
AL="$tmp/x/usr/share/sounds/alsa"

# raw2wav RAW WAV: headerless 16 kHz 16-bit mono PCM to a WAV file.
raw2wav() {
  "$PY" - "$1" "$2" <<'PYEOF'
import sys, wave
data = open(sys.argv[1], "rb").read()
with wave.open(sys.argv[2], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000); w.writeframes(data)
PYEOF
}

if ! command -v espeak-ng >/dev/null; then
  log "installing espeak-ng"
  apt-get install -y -q espeak-ng >/dev/null
fi

# Manifest columns: id, file, source, licence, sha256 ("-" for synthetic), transcript.
while IFS=$'\t' read -r id file source licence sha text; do
  case "$id" in ''|'#'*|id) continue ;; esac
  dest="$OUT/clips/$id.wav"
  case "$source" in
    pocketsphinx-testdata:*.raw) raw2wav "$PS/${source#pocketsphinx-testdata:}" "$tmp/c.wav" ;;
    pocketsphinx-testdata:*) cp "$PS/${source#pocketsphinx-testdata:}" "$tmp/c.wav" ;;
    alsa-utils:*) cp "$AL/${source#alsa-utils:}" "$tmp/c.wav" ;;
    shared:*) cp "$ROOT/../shared/${source#shared:}" "$tmp/c.wav" ;;
    espeak-ng:*) espeak-ng -v "${source#espeak-ng:}" -w "$tmp/c.wav" "$text" ;;
    *) log "unknown source '$source' for $id"; exit 1 ;;
  esac
  if [ "$sha" != - ] && [ "$(sha256sum "$tmp/c.wav" | cut -d' ' -f1)" != "$sha" ]; then
    log "$id: sha256 differs from the manifest ($source)"; exit 1
  fi
  mv "$tmp/c.wav" "$dest"
done < "$MANIFEST"

# Whisper's English normaliser and what it imports.
if [ ! -f "$OUT/normalizer/normalizers/english.py" ]; then
  "$PY" -m pip download --quiet --no-deps --no-binary :all: -d "$tmp/dl" openai-whisper==20250625
  tar xzf "$tmp/dl/openai_whisper-20250625.tar.gz" -C "$tmp"
  mkdir -p "$tmp/normalizer"
  cp -r "$tmp/openai_whisper-20250625/whisper/normalizers" "$tmp/normalizer/"
  cp -r "$tmp/openai_whisper-20250625/whisper/assets" "$tmp/normalizer/"
  rm -rf "$OUT/normalizer"; mv "$tmp/normalizer" "$OUT/normalizer"
fi
if [ ! -x "$OUT/venv/bin/python" ]; then
  rm -rf "$OUT/venv"
  "$PY" -m venv "$OUT/venv"
  "$OUT/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    regex==2024.11.6 more-itertools==10.5.0 || { rm -rf "$OUT/venv"; exit 1; }
fi
log "$(ls "$OUT/clips" | wc -l) clips in $OUT/clips"
echo "$OUT"
