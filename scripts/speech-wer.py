#!/usr/bin/env python3
"""Word error rate of speech transcripts against testdata/speech/clips.tsv.

    speech-wer.py [--eval DIR] [--manifest TSV] [--json] NAME=HYP.tsv [NAME=HYP.tsv ...]

Each HYP.tsv has lines `id<TAB>transcript` (one per clip; a missing clip
counts as an empty transcript, so all its reference words are deletions).
References and hypotheses go through Whisper's English text normaliser
(from the openai-whisper sdist that scripts/speech-eval-clips.sh unpacks
into DIR/normalizer). WER is the word-level Levenshtein distance divided by
the number of reference words; the corpus WER adds up edits and reference
words over all clips before dividing. With two or more engines, the first is
the baseline and each other one also gets the fraction of clips whose
normalised transcript equals the baseline's.

Run it with the venv the clips script makes: DIR/venv/bin/python.
"""
import argparse
import json
import os
import sys


def edit_distance(ref, hyp):
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def read_manifest(path):
    refs = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#") or line.startswith("id\t"):
                continue
            cols = line.split("\t")
            if len(cols) != 6:
                sys.exit(f"{path}: expected 6 tab-separated columns, got {len(cols)}: {line!r}")
            refs[cols[0]] = cols[5]
    return refs


def read_hyp(path, refs):
    hyp = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            clip, _, text = line.partition("\t")
            if clip not in refs:
                sys.exit(f"{path}:{n}: clip '{clip}' is not in the manifest")
            hyp[clip] = text
    return hyp


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--eval", default=os.environ.get("HEARTH_SPEECH_EVAL",
                                                     os.path.expanduser("~/.cache/hearth/speech-eval")))
    ap.add_argument("--manifest", default=os.path.join(root, "testdata", "speech", "clips.tsv"))
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON")
    ap.add_argument("engines", nargs="+", metavar="NAME=HYP.tsv")
    a = ap.parse_args()

    sys.path.insert(0, os.path.join(a.eval, "normalizer"))
    try:
        from normalizers import EnglishTextNormalizer
    except ImportError as e:
        sys.exit(f"cannot import Whisper's normaliser from {a.eval}/normalizer ({e}); "
                 "run scripts/speech-eval-clips.sh and use its venv's python")
    norm = EnglishTextNormalizer()
    refs = read_manifest(a.manifest)
    nref = {c: norm(t).split() for c, t in refs.items()}

    results = []
    for spec in a.engines:
        name, sep, path = spec.partition("=")
        if not sep:
            sys.exit(f"'{spec}': expected NAME=HYP.tsv")
        hyp = read_hyp(path, refs)
        per = {}
        for c in refs:
            h = norm(hyp.get(c, "")).split()
            per[c] = {"edits": edit_distance(nref[c], h), "words": len(nref[c]), "norm": " ".join(h)}
        edits = sum(p["edits"] for p in per.values())
        words = sum(p["words"] for p in per.values())
        results.append({"engine": name, "wer": edits / words, "edits": edits, "words": words,
                        "missing": sorted(c for c in refs if c not in hyp), "clips": per})
    base = results[0]
    for r in results[1:]:
        same = sum(r["clips"][c]["norm"] == base["clips"][c]["norm"] for c in refs)
        r["equal_to_" + base["engine"]] = same / len(refs)

    if a.json:
        print(json.dumps(results, indent=1))
        return
    names = [r["engine"] for r in results]
    print("clip".ljust(22) + "".join(n[:14].rjust(15) for n in names))
    for c in refs:
        cells = "".join(f"{r['clips'][c]['edits']}/{r['clips'][c]['words']}".rjust(15) for r in results)
        print(c.ljust(22) + cells)
    print("corpus WER %".ljust(22) + "".join(f"{100 * r['wer']:.2f}".rjust(15) for r in results))
    if len(results) > 1:
        print(f"equal to {base['engine'][:10]}".ljust(22) + "-".rjust(15) +
              "".join(f"{100 * r['equal_to_' + base['engine']]:.0f}%".rjust(15) for r in results[1:]))
    for r in results:
        if r["missing"]:
            print(f"{r['engine']}: no transcript for {', '.join(r['missing'])}", file=sys.stderr)


if __name__ == "__main__":
    main()
