"""Raw HTTP (httpx) checks the clients cannot make: malformed bodies, the
API key, the `/` probe Ollama's CLI uses, and `/api/generate` against
`hearth run` token for token."""

import json

import httpx
import ollama
import openai
import pytest

from helpers import hearth_run, ndjson, printed


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


def generate_raw(oc, model, prompt):
    return "".join(c.response for c in oc.generate(
        model=model, prompt=prompt, raw=True, stream=True,
        options={"temperature": 0, "num_predict": 32}))


@pytest.mark.parametrize("prompt", PARITY_PROMPTS)
def test_generate_raw_greedy_equals_hearth_run(oc, model, model_path, hearth_bin, prompt):
    assert printed(generate_raw(oc, model, prompt)) == hearth_run(hearth_bin, model_path, prompt)


# Batched and prefix-cached requests against the same: test_parity.py.
