#!/usr/bin/env python3
"""Reference sentence embeddings of all-MiniLM-L6-v2, computed with NumPy
straight from the sentence-transformers folder's model.safetensors (no
GGUF, no hearth): BERT's encoder with exact (erf) GELU, mean pooling over
the tokens, L2 normalisation. Tokenized with the `tokenizers` package from
the folder's tokenizer.json.

Usage: scripts/minilm_reference.py MODEL_DIR > testdata/minilm/reference.json
(MODEL_DIR: ~/.cache/hearth/models/all-minilm-l6-v2 after
scripts/fetch-models.sh minilm).
"""
import json
import math
import struct
import sys

import numpy as np
from tokenizers import Tokenizer

SENTENCES = [
    "This is an example sentence",
    "Each sentence is converted",
    "The quick brown fox jumps over the lazy dog.",
    "A man is eating food.",
    "A man is riding a white horse on an enclosed ground.",
    "The new movie is awesome!",
    "The cat sits outside",
    "How do I reset my password?",
    "Rust guarantees memory safety without a garbage collector.",
    "Photosynthesis converts light energy into chemical energy.",
    "The contract may be terminated with thirty days' written notice.",
    "Café crème brûlée, naïve résumé.",
    "What is the capital of France? Paris.",
    "GPU kernels run thousands of threads in parallel.",
    "I love pizza",
    "Tokyo",
    "The patient's blood pressure was 120/80 mmHg.",
    "def add(a, b): return a + b",
    "Embeddings map text to vectors so that similar meanings are close together in the space.",
    "Unanswerable questions should be recognised and declined politely by the assistant.",
]


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(t["shape"]).astype(np.float64)
    return out


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


erf = np.vectorize(math.erf)


def embed(W, cfg, ids):
    eps = cfg["layer_norm_eps"]
    heads = cfg["num_attention_heads"]
    n = len(ids)
    x = W["embeddings.word_embeddings.weight"][ids]
    x = x + W["embeddings.position_embeddings.weight"][:n]
    x = x + W["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], eps)
    d = x.shape[1] // heads
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda v, name: v @ W[p + name + ".weight"].T + W[p + name + ".bias"]
        q = lin(x, "attention.self.query").reshape(n, heads, d).transpose(1, 0, 2)
        k = lin(x, "attention.self.key").reshape(n, heads, d).transpose(1, 0, 2)
        v = lin(x, "attention.self.value").reshape(n, heads, d).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = (s @ v).transpose(1, 0, 2).reshape(n, heads * d)
        x = layer_norm(x + lin(a, "attention.output.dense"),
                       W[p + "attention.output.LayerNorm.weight"],
                       W[p + "attention.output.LayerNorm.bias"], eps)
        h = lin(x, "intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))
        x = layer_norm(x + lin(h, "output.dense"),
                       W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], eps)
    e = x.mean(0)
    return e / np.linalg.norm(e)


def main():
    root = sys.argv[1]
    W = load(f"{root}/model.safetensors")
    cfg = json.load(open(f"{root}/config.json"))
    tok = Tokenizer.from_file(f"{root}/tokenizer.json")
    tok.no_padding()
    cases = []
    for s in SENTENCES:
        ids = tok.encode(s).ids
        e = embed(W, cfg, ids)
        cases.append({"text": s, "ids": ids, "embedding": [float(f"{v:.6g}") for v in e]})
    json.dump({"model": "all-MiniLM-L6-v2", "pooling": "mean", "cases": cases}, sys.stdout)
    sys.stdout.write("\n")


main()
