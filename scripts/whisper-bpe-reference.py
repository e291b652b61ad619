#!/usr/bin/env python3
"""Writes crates/hearth-speech/tests/data/tiny_en_bpe.json: how Hugging Face
`tokenizers` (0.23.3, in compare-whisper.sh's venv) spells a few prompts with
tiny.en's tokenizer.json, the reference for hearth-speech's prompt encoding.

Usage: whisper-bpe-reference.py TOKENIZER_JSON OUT_JSON
"""
import json
import sys

from tokenizers import Tokenizer

TEXTS = [
    " Hello world",
    " And so my fellow Americans, ask not what your country can do for you.",
    " Glossary: Kubernetes, PostgreSQL, hearth, whisper.cpp and GGUF.",
    " The meeting is on Thursday at 10:30 a.m.  Don't forget!",
    " naïve café résumé — 42 items\n new line",
    " unbelievably interchangeable antidisestablishmentarianism",
]

tok = Tokenizer.from_file(sys.argv[1])
cases = [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in TEXTS]
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump(cases, f, ensure_ascii=False, indent=1)
    f.write("\n")
