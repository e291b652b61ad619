"""The official `ollama` client's store calls against a server whose store
holds SmolLM2 as `smollm2` and Gemma-3-270M as `gemma3:270m`: `create`,
`show` (capabilities, quantization, model_info), `ps` and `list` give the
fields Ollama's API documents for them, field by field (docs/serve.md lists
what hearth leaves out and why).

Extra variables (set by serve_clients.rs `ollama_store_calls`):
  HEARTH_GEMMA_PATH  the Gemma-3 file in the store as gemma3:270m
"""

import hashlib
import os

import httpx
import ollama
import pytest

# The fields of Ollama's documented answers.
DETAILS = {"parent_model", "format", "family", "families", "parameter_size",
           "quantization_level"}
LIST_MODEL = {"name", "model", "modified_at", "size", "digest", "details"}
PS_MODEL = {"name", "model", "size", "digest", "details", "expires_at",
            "size_vram", "context_length"}
SHOW = {"license", "modelfile", "parameters", "template", "details",
        "model_info", "capabilities", "modified_at"}
# The model_info keys Ollama's clients read for a llama model.
LLAMA_INFO = ["general.architecture", "general.parameter_count",
              "general.file_type", "llama.context_length",
              "llama.embedding_length", "llama.block_count",
              "llama.feed_forward_length", "llama.attention.head_count",
              "llama.attention.head_count_kv", "llama.rope.freq_base",
              "llama.attention.layer_norm_rms_epsilon", "llama.vocab_size",
              "tokenizer.ggml.model", "tokenizer.ggml.bos_token_id",
              "tokenizer.ggml.eos_token_id"]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture(scope="module")
def smol_sha(model_path):
    return sha256(model_path)


@pytest.fixture(scope="module")
def pirate(oc):
    r = oc.create(
        model="pirate-py",
        from_="smollm2",
        system="You are a pirate. Answer in one short sentence.",
        parameters={"temperature": 0, "num_predict": 6, "stop": ["\n\n"]},
        messages=[{"role": "user", "content": "Ahoy?"},
                  {"role": "assistant", "content": "Arr, ahoy!"}],
        license="MIT",
    )
    assert r.status == "success", r
    return "pirate-py"


def test_create_then_list(oc, base_url, pirate, smol_sha):
    raw = httpx.get(f"{base_url}/api/tags").json()["models"]
    by_name = {m["name"]: m for m in raw}
    assert {"smollm2:latest", "gemma3:270m", "pirate-py:latest"} <= set(by_name), by_name
    for m in raw:
        assert set(m) == LIST_MODEL, m
        assert set(m["details"]) == DETAILS, m
    # The served file, the store entry and the created model are one file.
    assert by_name["smollm2:latest"]["digest"] == smol_sha
    assert by_name["pirate-py:latest"]["digest"] == smol_sha
    assert by_name["pirate-py:latest"]["details"]["parent_model"] == "smollm2"
    # The file the server was started with is listed once, by its store name.
    assert sum(1 for m in raw if m["digest"] == smol_sha and m["details"]["parent_model"] == "") == 1
    listed = oc.list()
    entry = next(m for m in listed.models if m.model == "pirate-py:latest")
    assert entry.size == os.path.getsize(os.environ["HEARTH_MODEL_PATH"])
    assert entry.details.quantization_level == "Q4_1"
    assert entry.modified_at is not None


def test_create_applies_the_settings(oc, pirate):
    # num_predict 6 from the create call caps the reply.
    r = oc.generate(model=pirate, prompt="Tell me a long story.")
    assert 0 < r.eval_count <= 6, r
    c = oc.chat(model=pirate, messages=[{"role": "user", "content": "Who are you?"}])
    assert c.eval_count <= 6, c


def test_show_fields(oc, base_url, pirate):
    raw = httpx.post(f"{base_url}/api/show", json={"model": pirate}).json()
    assert SHOW <= set(raw), sorted(raw)
    assert raw["system"] == "You are a pirate. Answer in one short sentence."
    assert raw["messages"] == [{"role": "user", "content": "Ahoy?"},
                               {"role": "assistant", "content": "Arr, ahoy!"}]
    shown = oc.show(pirate)
    assert shown.capabilities == ["completion", "tools"], shown.capabilities
    assert shown.details.quantization_level == "Q4_1"
    assert shown.details.parent_model == "smollm2"
    assert shown.license == "MIT"
    for key in LLAMA_INFO:
        assert key in shown.modelinfo, key
    assert shown.modelinfo["general.architecture"] == "llama"
    assert shown.modelinfo["llama.context_length"] == 8192
    params = shown.parameters.split("\n")
    assert any(p.split() == ["temperature", "0"] for p in params), params
    assert any(p.split() == ["num_predict", "6"] for p in params), params
    assert "SYSTEM You are a pirate." in shown.modelfile
    assert "PARAMETER stop" in shown.modelfile
    assert shown.template


def test_show_gemma_quantization_is_the_file_type(oc):
    shown = oc.show("gemma3:270m")
    # The file type, as `hearth list` says, not its Q8_0 token embedding.
    assert shown.details.quantization_level == "Q4_K_M"
    assert shown.capabilities == ["completion", "tools"]
    assert shown.modelinfo["general.architecture"] == "gemma3"
    assert "gemma3.context_length" in shown.modelinfo


def test_ps_fields(oc, base_url, pirate, smol_sha):
    oc.generate(model=pirate, prompt="hi", options={"num_predict": 1})
    raw = httpx.get(f"{base_url}/api/ps").json()["models"]
    for m in raw:
        assert set(m) == PS_MODEL, m
        assert set(m["details"]) == DETAILS, m
    running = oc.ps()
    names = {m.model for m in running.models}
    assert {"smollm2", "pirate-py"} <= names, names
    p = next(m for m in running.models if m.model == "pirate-py")
    assert p.digest == smol_sha
    assert p.context_length == 512
    assert p.size > 0 and p.size_vram == 0
    assert p.expires_at is not None


def test_create_refusals(oc):
    with pytest.raises(ollama.ResponseError) as e:
        oc.create(model="x-py", from_="smollm2", adapters={"a.gguf": "sha256:00"})
    assert e.value.status_code == 400 and "LoRA" in str(e.value)
    with pytest.raises(ollama.ResponseError) as e:
        oc.create(model="x-py", from_="smollm2", parameters={"mirostat_z": 1})
    assert e.value.status_code == 400 and "unknown parameter" in str(e.value)
    with pytest.raises(ollama.ResponseError) as e:
        oc.create(model="x-py", from_="no-such-model")
    assert e.value.status_code == 404
