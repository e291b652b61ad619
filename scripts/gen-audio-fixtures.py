#!/usr/bin/env python3
"""Encodes the first second of jfk.wav as FLAC, OGG/Vorbis and MP3 for
hearth-audio's format tests (testdata/speech/jfk1s.{flac,ogg,mp3}).

Needs the `soundfile` package (its wheels carry libsndfile 1.2, which
writes all three). Usage:
  scripts/gen-audio-fixtures.py ../shared/speech/jfk.wav [OUT_DIR]
"""
import os
import sys

import soundfile as sf

src = sys.argv[1]
out = sys.argv[2] if len(sys.argv) > 2 else "testdata/speech"
data, rate = sf.read(src, dtype="int16")
assert rate == 16000
first = data[:rate]
sf.write(os.path.join(out, "jfk1s.flac"), first, rate, format="FLAC", subtype="PCM_16")
sf.write(os.path.join(out, "jfk1s.ogg"), first, rate, format="OGG", subtype="VORBIS")
sf.write(os.path.join(out, "jfk1s.mp3"), first, rate, format="MP3", subtype="MPEG_LAYER_III")
for ext in ("flac", "ogg", "mp3"):
    p = os.path.join(out, f"jfk1s.{ext}")
    print(p, os.path.getsize(p), "bytes")
