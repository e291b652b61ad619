"""The official `ollama` and `openai` clients embed with all-MiniLM-L6-v2.

Run by crates/hearth-cli/tests/serve_clients.rs `embedding_clients`, which
starts `hearth serve` with the encoder and writes hearth's own embeddings of
the texts below, computed in-process without the server, to
HEARTH_EMBED_REFERENCE (JSON: [{"text", "embedding"}]). Every vector the
clients get back has 384 dimensions, unit length, and cosine >= 0.9999 with
that direct result.
"""

import json
import math
import os

import pytest


def _reference():
    path = os.environ.get("HEARTH_EMBED_REFERENCE")
    if not path:
        pytest.fail("HEARTH_EMBED_REFERENCE is not set; run these tests through "
                    "`cargo test --release -p hearth-cli --test serve_clients embedding_clients`")
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def ref():
    return _reference()


def _cos(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def _check(vectors, ref):
    assert len(vectors) == len(ref)
    for v, r in zip(vectors, ref):
        v = list(v)
        assert len(v) == 384, r["text"]
        assert abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-4, r["text"]
        c = _cos(v, r["embedding"])
        assert c >= 0.9999, (r["text"], c)


def test_ollama_embed(oc, model, ref):
    r = oc.embed(model=model, input=[c["text"] for c in ref])
    _check(r.embeddings, ref)
    one = oc.embed(model=model, input=ref[0]["text"])
    _check(one.embeddings, ref[:1])


def test_ollama_legacy_embeddings(oc, model, ref):
    r = oc.embeddings(model=model, prompt=ref[1]["text"])
    _check([r.embedding], ref[1:2])


def test_ollama_embed_over_the_context_is_an_error(oc, model):
    import ollama
    long = " ".join(["hello"] * 700)
    with pytest.raises(ollama.ResponseError) as e:
        oc.embed(model=model, input=long)
    assert e.value.status_code == 400
    assert "702 tokens > context 512" in str(e.value)
    r = oc.embed(model=model, input=long, truncate=True)
    assert len(r.embeddings[0]) == 384


def test_openai_embeddings(ai, model, ref):
    texts = [c["text"] for c in ref]
    # The client asks for base64 when no format is given and decodes it.
    r = ai.embeddings.create(model=model, input=texts)
    assert [d.index for d in r.data] == list(range(len(texts)))
    _check([d.embedding for d in r.data], ref)
    f = ai.embeddings.create(model=model, input=texts, encoding_format="float")
    _check([d.embedding for d in f.data], ref)
    assert r.usage.prompt_tokens == f.usage.prompt_tokens > len(texts)


def test_openai_dimensions(ai, model, ref):
    r = ai.embeddings.create(model=model, input=ref[0]["text"], dimensions=64)
    v = r.data[0].embedding
    assert len(v) == 64
    assert abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-4
    head = ref[0]["embedding"][:64]
    assert _cos(v, head) >= 0.9999
