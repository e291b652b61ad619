"""Raw HTTP (httpx) checks the clients cannot make: malformed bodies, the
API key, the `/` probe Ollama's CLI uses, and `/api/generate` against
`hearth run` token for token."""

import asyncio
import json
import os
import subprocess

import httpx
import ollama
import openai
import pytest

from helpers import ndjson


@pytest.mark.parametrize("path", ["/api/generate", "/api/chat", "/api/embed"])
def test_bad_json_is_400_ollama_shape(http, path):
    r = http.post(path, content=b'{"model": "x", "prompt": ',
                  headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], body


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"])
def test_bad_json_is_400_openai_shape(http, path):
    r = http.post(path, content=b'{"model": "x", "messages": [',
                  headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert isinstance(err, dict) and err["message"], err
    assert "type" in err and "code" in err, err


def test_wrong_field_type_is_400(http, model):
    r = http.post("/v1/chat/completions", json={"model": model, "messages": "not a list"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"]
    r = http.post("/api/generate", json={"model": model, "prompt": "hi",
                                         "options": {"num_predict": "many"}})
    assert r.status_code == 400, r.text
    assert r.json()["error"]


def test_root_and_version(http):
    r = http.get("/")
    assert r.status_code == 200 and "Ollama is running" in r.text
    assert http.head("/").status_code == 200
    assert http.get("/api/version").json()["version"]
    assert http.get("/health").status_code == 200


def test_generate_ndjson_framing(http, model):
    r = http.post("/api/generate", json={"model": model, "prompt": "Hi",
                                         "options": {"num_predict": 4}})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson"), r.headers
    lines = ndjson(r.text)
    assert lines[-1]["done"] is True and all(not x["done"] for x in lines[:-1])


def test_sse_framing(http, model):
    r = http.post("/v1/chat/completions",
                  json={"model": model, "stream": True, "max_tokens": 4,
                        "messages": [{"role": "user", "content": "Hi"}]})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream"), r.headers
    events = [e for e in r.text.split("\n\n") if e.strip()]
    assert events[-1].strip() == "data: [DONE]", events[-1]
    for e in events[:-1]:
        assert e.startswith("data: "), e
        json.loads(e[len("data: "):])


# --- the API key ------------------------------------------------------------

def test_missing_api_key_is_401(auth_url, model):
    with pytest.raises(ollama.ResponseError) as e:
        ollama.Client(host=auth_url).list()
    assert e.value.status_code == 401
    with httpx.Client(base_url=auth_url) as h:
        for method, path in [("GET", "/api/tags"), ("POST", "/api/generate"),
                             ("GET", "/v1/models"), ("POST", "/v1/chat/completions"),
                             ("GET", "/metrics"), ("POST", "/tokenize")]:
            r = h.request(method, path, json={"model": model, "prompt": "hi"})
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            assert r.json()["error"], r.text
        # The liveness probes stay open.
        assert h.get("/").status_code == 200
        assert h.get("/health").status_code == 200


def test_wrong_api_key_is_401(auth_url, api_key, model):
    bad = openai.OpenAI(base_url=auth_url + "/v1", api_key=api_key + "x", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.models.list()
    assert e.value.status_code == 401
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model=model, max_tokens=4,
                                    messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(ollama.ResponseError) as e:
        ollama.Client(host=auth_url, headers={"Authorization": "Bearer nope"}).list()
    assert e.value.status_code == 401


def test_right_api_key_works(auth_url, api_key, model):
    good = openai.OpenAI(base_url=auth_url + "/v1", api_key=api_key, max_retries=0)
    assert model in [m.id for m in good.models.list()]
    r = good.chat.completions.create(model=model, max_tokens=4,
                                     messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content is not None
    oc = ollama.Client(host=auth_url, headers={"Authorization": f"Bearer {api_key}"})
    assert oc.generate(model=model, prompt="hi", options={"num_predict": 4}).done


# --- /api/generate (raw, greedy) is `hearth run --raw --temperature 0` ------

PARITY_PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
]


def hearth_run(hearth_bin, model_path, prompt):
    run = subprocess.run([hearth_bin, "run", model_path, "--raw", "--temperature", "0",
                          "-n", "32", "-t", "2", prompt],
                         capture_output=True, check=True, timeout=300)
    return run.stdout.decode()


def printed(text):
    """The text as `hearth run` prints it: ending with a newline."""
    return text if text.endswith("\n") else text + "\n"


def generate_raw(oc, model, prompt):
    return "".join(c.response for c in oc.generate(
        model=model, prompt=prompt, raw=True, stream=True,
        options={"temperature": 0, "num_predict": 32}))


@pytest.mark.parametrize("prompt", PARITY_PROMPTS)
def test_generate_raw_greedy_equals_hearth_run(oc, model, model_path, hearth_bin, prompt):
    assert printed(generate_raw(oc, model, prompt)) == hearth_run(hearth_bin, model_path, prompt)


# The scalar kernels sum in the same order whatever the batch, so there the
# equality must hold; the SIMD tiers' multi-row kernels sum in another order.
SIMD = os.environ.get("HEARTH_ISA", "").lower() != "scalar"


@pytest.mark.xfail(SIMD, strict=True, reason=(
    "known: the batched forward pass is not batch-invariant, so a greedy sequence decoded "
    "together with others can pick another token at a near tie than it does alone"))
def test_generate_raw_greedy_concurrent_equals_hearth_run(base_url, model, model_path,
                                                          hearth_bin):
    """Sequences decoded together in one batch give what each gives alone."""
    prompts = ["The best way to learn a language is", "import numpy as np\n",
               "Water boils at", "My favourite season is"]

    async def all_at_once():
        async with httpx.AsyncClient(base_url=base_url, timeout=300) as c:
            async def one(p):
                r = await c.post("/api/generate", json={
                    "model": model, "prompt": p, "raw": True, "stream": False,
                    "options": {"temperature": 0, "num_predict": 32}})
                r.raise_for_status()
                return r.json()["response"]
            return await asyncio.gather(*(one(p) for p in prompts))

    got = asyncio.run(all_at_once())
    for p, text in zip(prompts, got):
        assert printed(text) == hearth_run(hearth_bin, model_path, p), p


@pytest.mark.xfail(SIMD, strict=True, reason=(
    "known: with the prompt cached only its last token is evaluated, one token at a time, "
    "which rounds differently from the whole-prompt batch `hearth run` evaluates"))
def test_generate_raw_greedy_repeated_equals_hearth_run(oc, model, model_path, hearth_bin):
    """The second time, the prompt is in a slot's cache (prefix reuse): the
    reply must not change."""
    prompt = "The three primary colours are"
    want = hearth_run(hearth_bin, model_path, prompt)
    first = printed(generate_raw(oc, model, prompt))
    second = printed(generate_raw(oc, model, prompt))
    assert first == want
    assert second == want, "a cached prompt gives another greedy reply"
