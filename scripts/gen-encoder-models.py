#!/usr/bin/env python3
"""Writes the tiny random-weight encoder GGUFs hearth's encoder tests load
and, given llama.cpp's binaries (llama-embedding), the reference outputs
(testdata/encoders/llamacpp.json) those tests compare against.

    python3 scripts/gen-encoder-models.py models [OUT_DIR]                 # the GGUFs
    python3 scripts/gen-encoder-models.py reference BIN_DIR [MODEL_DIR]    # the JSON

OUT_DIR and MODEL_DIR default to $HEARTH_MODEL_CACHE/encoders
(~/.cache/hearth/models/encoders): the models are never part of the
repository. The weights come from fixed seeds, so the files are the same
bytes on every run; `models` checks each against
testdata/encoders/SHA256SUMS and fails on a mismatch (llamacpp.json would
not apply to other bytes), moving a file into place only once it matches.

Needs the `gguf` and `numpy` packages (scripts/fetch-models.sh encoders makes
a venv with the pinned versions outside the repository and runs this). The
vocabularies are cut from ../shared/vocab: the first pieces of the bge
WordPiece vocabulary and of the XLM-R Unigram one, so each model stays a
few hundred KB.
"""

import hashlib
import json
import os
import shutil
import tempfile
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = ROOT / "testdata" / "encoders"
SUMS = TESTDATA / "SHA256SUMS"
CACHE = Path(os.environ.get("HEARTH_MODEL_CACHE") or Path.home() / ".cache" / "hearth" / "models")
DEFAULT_OUT = CACHE / "encoders"
VOCAB = ROOT.parent / "shared" / "vocab"

# Texts embedded by every model, and the rerank query and documents.
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "A cat sat on the mat",
    "hello world",
    "Rust is a systems programming language; it is fast, and it is safe!",
    "Grüße aus München, naïve café",
    "x",
]
QUERY = "what is the capital of france"
DOCUMENTS = [
    "Paris is the capital of France.",
    "The cat sat on the mat.",
    "Berlin is the capital of Germany, and Paris of France",
    "capital",
    "Le chat est sur le tapis.",
]

E, HEADS, FF, LAYERS, CTX = 32, 2, 64, 2, 128


def read_vocab(name):
    import gguf

    r = gguf.GGUFReader(str(VOCAB / name))
    f = r.fields

    def arr(key):
        fl = f[key]
        return [fl.parts[i] for i in fl.data]

    tokens = [bytes(p).decode("utf-8") for p in arr("tokenizer.ggml.tokens")]
    types = [int(p[0]) for p in arr("tokenizer.ggml.token_type")]
    scores = [float(p[0]) for p in arr("tokenizer.ggml.scores")] if "tokenizer.ggml.scores" in f else None
    return tokens, types, scores


def wordpiece_vocab():
    """[PAD], [UNK], [CLS], [SEP], [MASK], then the single characters and
    the most frequent words and pieces of bge's vocabulary."""
    tokens, types, _ = read_vocab("ggml-vocab-bert-bge.gguf")
    keep = [0, 100, 101, 102, 103] + list(range(999, 3000))
    return (
        [tokens[i] for i in keep],
        [types[i] for i in keep],
        dict(unk=1, bos=2, sep=3, pad=0, mask=4),
    )


def unigram_vocab():
    """XLM-R's first 2000 pieces (<s>, <pad>, </s>, <unk>, then the most
    frequent ones) with their scores; no precompiled charsmap (it alone is
    237 KB), so the text is not NFKC-normalised."""
    tokens, types, scores = read_vocab("ggml-vocab-nomic-bert-moe.gguf")
    n = 2000
    return tokens[:n], types[:n], scores[:n]


class Rng:
    def __init__(self, seed):
        self.g = np.random.default_rng(seed)

    def w(self, *shape, s=0.2):
        return (self.g.standard_normal(shape) * s).astype(np.float32)

    def norm(self, n):
        return (1.0 + self.w(n, s=0.1)), self.w(n, s=0.1)


def write(path, arch, meta, tensors, tok):
    import gguf

    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(path.stem)
    w.add_block_count(LAYERS)
    w.add_context_length(CTX)
    w.add_embedding_length(E)
    w.add_feed_forward_length(FF)
    w.add_head_count(HEADS)
    w.add_layer_norm_eps(1e-12)
    w.add_causal_attention(False)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    for k, v in meta.items():
        if isinstance(v, bool):
            w.add_bool(k.format(arch=arch), v)
        elif isinstance(v, int):
            w.add_uint32(k.format(arch=arch), v)
        elif isinstance(v, float):
            w.add_float32(k.format(arch=arch), v)
        elif isinstance(v, list):
            w.add_array(k.format(arch=arch), v)
        else:
            w.add_string(k.format(arch=arch), v)
    tok(w)
    for name, t in tensors.items():
        w.add_tensor(name, np.ascontiguousarray(t, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def wordpiece_tok(w):
    tokens, types, ids = wordpiece_vocab()
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("bert-bge")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_type_count(2)
    w.add_unk_token_id(ids["unk"])
    w.add_bos_token_id(ids["bos"])
    w.add_sep_token_id(ids["sep"])
    w.add_pad_token_id(ids["pad"])
    w.add_mask_token_id(ids["mask"])
    return len(tokens)


def unigram_tok(w):
    tokens, types, scores = unigram_vocab()
    w.add_tokenizer_model("t5")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_add_space_prefix(True)
    w.add_token_type_count(1)
    w.add_remove_extra_whitespaces(True)
    w.add_bos_token_id(0)
    w.add_eos_token_id(2)
    w.add_unk_token_id(3)
    w.add_sep_token_id(2)
    w.add_pad_token_id(1)
    w.add_add_bos_token(True)
    w.add_add_eos_token(True)
    return len(tokens)


def bert_tensors(r, n_vocab, n_types):
    t = {
        "token_embd.weight": r.w(n_vocab, E, s=0.5),
        "token_types.weight": r.w(n_types, E, s=0.5),
        "position_embd.weight": r.w(CTX, E, s=0.5),
    }
    t["token_embd_norm.weight"], t["token_embd_norm.bias"] = r.norm(E)
    for il in range(LAYERS):
        p = f"blk.{il}."
        for m in ("attn_q", "attn_k", "attn_v", "attn_output"):
            t[p + m + ".weight"] = r.w(E, E)
            t[p + m + ".bias"] = r.w(E, s=0.1)
        t[p + "attn_output_norm.weight"], t[p + "attn_output_norm.bias"] = r.norm(E)
        t[p + "ffn_up.weight"], t[p + "ffn_up.bias"] = r.w(FF, E), r.w(FF, s=0.1)
        t[p + "ffn_down.weight"], t[p + "ffn_down.bias"] = r.w(E, FF), r.w(E, s=0.1)
        t[p + "layer_output_norm.weight"], t[p + "layer_output_norm.bias"] = r.norm(E)
    return t


def expected_sums():
    """file name -> sha256, from testdata/encoders/SHA256SUMS."""
    sums = {}
    for line in SUMS.read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            sums[name] = digest
    return sums


def models(out_dir):
    """Writes the three GGUFs into a temporary folder inside `out_dir`,
    checks each against SHA256SUMS and only then moves them into place."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    want = expected_sums()
    tmp = Path(tempfile.mkdtemp(prefix=".gen.", dir=out_dir))
    try:
        write_models(tmp)
        bad = []
        for name, digest in sorted(want.items()):
            got = hashlib.sha256((tmp / name).read_bytes()).hexdigest()
            if got != digest:
                bad.append(f"{name}: sha256 {got}, SHA256SUMS says {digest}")
        if bad:
            raise SystemExit(
                "regenerated models differ from testdata/encoders/SHA256SUMS "
                "(llamacpp.json does not apply to them; check the gguf and numpy "
                "versions scripts/fetch-models.sh pins):\n  " + "\n  ".join(bad)
            )
        for name in sorted(want):
            os.replace(tmp / name, out_dir / name)
            print(f"{out_dir / name}: {(out_dir / name).stat().st_size} bytes, sha256 ok")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_models(out):
    n_wp = len(wordpiece_vocab()[0])
    n_ug = len(unigram_vocab()[0])

    # bge-reranker's shape: XLM-R vocab, rank pooling with a dense + tanh
    # head and a one-label output projection.
    r = Rng(12)
    t = bert_tensors(r, n_ug, 1)
    t["cls.weight"], t["cls.bias"] = r.w(E, E, s=0.5), r.w(E, s=0.1)
    t["cls.output.weight"], t["cls.output.bias"] = r.w(1, E, s=1.0), r.w(1, s=0.1)
    write(out / "xlmr-reranker.gguf", "bert", {"{arch}.pooling_type": 4}, t, unigram_tok)

    # bge-m3's shape: XLM-R vocab, CLS pooling.
    r = Rng(13)
    t = bert_tensors(r, n_ug, 1)
    write(out / "xlmr-embed.gguf", "bert", {"{arch}.pooling_type": 2}, t, unigram_tok)

    # nomic-embed-text's shape: WordPiece, rotary, fused QKV without
    # biases, gated SiLU feed-forward, mean pooling.
    r = Rng(14)
    t = {
        "token_embd.weight": r.w(n_wp, E, s=0.5),
        "token_types.weight": r.w(2, E, s=0.5),
    }
    t["token_embd_norm.weight"], t["token_embd_norm.bias"] = r.norm(E)
    for il in range(LAYERS):
        p = f"blk.{il}."
        t[p + "attn_qkv.weight"] = r.w(3 * E, E)
        t[p + "attn_output.weight"] = r.w(E, E)
        t[p + "attn_output_norm.weight"], t[p + "attn_output_norm.bias"] = r.norm(E)
        t[p + "ffn_up.weight"] = r.w(FF, E)
        t[p + "ffn_gate.weight"] = r.w(FF, E)
        t[p + "ffn_down.weight"] = r.w(E, FF)
        t[p + "layer_output_norm.weight"], t[p + "layer_output_norm.bias"] = r.norm(E)
    meta = {"{arch}.pooling_type": 1, "{arch}.rope.freq_base": 1000.0}
    write(out / "nomic-bert.gguf", "nomic-bert", meta, t, wordpiece_tok)


def run_embedding(bin_dir, model, pooling, normalize, prompts):
    """llama-embedding's output vectors for `prompts` (one per line) and
    the tokens it evaluated."""
    cmd = [
        str(bin_dir / "llama-embedding"), "-m", str(model), "-t", "2",
        "--pooling", pooling, "--embd-normalize", str(normalize),
        "--embd-output-format", "array", "-c", str(CTX * len(prompts)),
        # F32 attention: flash attention on the CPU rounds an encoder's
        # keys and values to F16 (a reranker's head turns that into score
        # differences of ~2e-3); hearth's encoder attention is F32.
        "-fa", "off",
        "-p", "\n".join(prompts),
    ]
    # The vectors go to stdout, the log to stderr; the log thread now and
    # then loses the output at exit, so a run without it is repeated.
    for _ in range(10):
        run = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out = run.stdout + run.stderr
        if "[[" in out and "]]" in out:
            break
    else:
        raise SystemExit(f"llama-embedding printed no vectors: {out}")
    # A rank pooling's row holds its scores, then memory never written
    # (which can print as nan or inf).
    text = re.sub(r"-?(nan|inf)", "null", out[out.index("[["):out.rindex("]]") + 2])
    vecs = json.loads(text)
    assert len(vecs) == len(prompts), (len(vecs), out)
    n_tokens = sum(int(m) for m in re.findall(r"batch_decode: n_tokens = (\d+)", out))
    return vecs, n_tokens


def embeddings(bin_dir, model, pooling):
    """llama-embedding's L2-normalised embeddings of TEXTS."""
    return run_embedding(bin_dir, model, pooling, 2, TEXTS)[0]


def rerank(bin_dir, model):
    """The rank scores of (QUERY, document) for DOCUMENTS, in document
    order, and the tokens evaluated. llama-embedding joins a pair's halves
    (split at a tab) with the vocabulary's added EOS and SEP texts and adds
    BOS and EOS around: for XLM-R's vocabulary (adds BOS and EOS, no SEP)
    `<s> query </s> document </s>`, the layout llama-server's /rerank
    builds."""
    prompts = [f"{QUERY}\t{d}" for d in DOCUMENTS]
    vecs, n_tokens = run_embedding(bin_dir, model, "rank", -1, prompts)
    return [v[0] for v in vecs], n_tokens


def reference(bin_dir, model_dir):
    bin_dir, model_dir = Path(bin_dir), Path(model_dir)
    ref = {
        "texts": TEXTS,
        "xlmr-embed": embeddings(bin_dir, model_dir / "xlmr-embed.gguf", "cls"),
        "nomic-bert": embeddings(bin_dir, model_dir / "nomic-bert.gguf", "mean"),
        "query": QUERY,
        "documents": DOCUMENTS,
    }
    ref["xlmr-reranker"], ref["xlmr-reranker-tokens"] = rerank(bin_dir, model_dir / "xlmr-reranker.gguf")
    (TESTDATA / "llamacpp.json").write_text(json.dumps(ref, indent=1) + "\n")
    print("wrote", TESTDATA / "llamacpp.json")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["models"] and len(args) <= 2:
        models(args[1] if len(args) == 2 else DEFAULT_OUT)
    elif args[:1] == ["reference"] and len(args) in (2, 3):
        reference(args[1], args[2] if len(args) == 3 else DEFAULT_OUT)
    else:
        raise SystemExit(__doc__)
