"""Shared fixtures of the `hearth serve` client tests.

These tests are run by crates/hearth-cli/tests/serve_clients.rs, which
starts the real `hearth serve` binary and passes where it listens through the
environment:

  HEARTH_URL         the main server (SmolLM2 preloaded), e.g. http://127.0.0.1:PORT
  HEARTH_MODEL       the model's name in the API
  HEARTH_MODEL_PATH  the model file
  HEARTH_BIN         the `hearth` binary (for `hearth run` parity)
  HEARTH_CTX         the context per sequence the servers were started with
  HEARTH_AUTH_URL    a second server started with --api-key HEARTH_API_KEY
  HEARTH_API_KEY
  HEARTH_SMALL_URL   a server with --parallel 2 --max-queue 2 (load tests)
  HEARTH_DET_URL     a server started with --deterministic (parity tests)

A variable a test needs that is missing fails the test (it is never skipped):
run them with `cargo test --release -p hearth-cli --test serve_clients`.
"""

import os

import httpx
import ollama
import openai
import pytest


def _env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set; run these tests through "
                    "`cargo test --release -p hearth-cli --test serve_clients`")
    return value


@pytest.fixture(scope="session")
def base_url():
    return _env("HEARTH_URL").rstrip("/")


@pytest.fixture(scope="session")
def model():
    return _env("HEARTH_MODEL")


@pytest.fixture(scope="session")
def model_path():
    return _env("HEARTH_MODEL_PATH")


@pytest.fixture(scope="session")
def hearth_bin():
    return _env("HEARTH_BIN")


@pytest.fixture(scope="session")
def n_ctx():
    return int(_env("HEARTH_CTX"))


@pytest.fixture(scope="session")
def auth_url():
    return _env("HEARTH_AUTH_URL").rstrip("/")


@pytest.fixture(scope="session")
def api_key():
    return _env("HEARTH_API_KEY")


@pytest.fixture(scope="session")
def small_url():
    return _env("HEARTH_SMALL_URL").rstrip("/")


@pytest.fixture(scope="session")
def det_url():
    return _env("HEARTH_DET_URL").rstrip("/")


@pytest.fixture(scope="session")
def oc(base_url):
    """The official Ollama client pointed at the main server."""
    return ollama.Client(host=base_url, timeout=300)


@pytest.fixture(scope="session")
def ai(base_url):
    """The official OpenAI client pointed at the main server. No retries:
    a 5xx or 429 must show as the failure it is."""
    return openai.OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0,
                         timeout=300)


@pytest.fixture(scope="session")
def http(base_url):
    with httpx.Client(base_url=base_url, timeout=300) as c:
        yield c


@pytest.fixture(scope="session")
def reference():
    """hearth's own teacher-forced log-probabilities over the golden
    sequences (written by serve_clients.rs `fields_with_the_openai_client`)."""
    import json
    with open(_env("HEARTH_REFERENCE")) as f:
        return json.load(f)["results"]


@pytest.fixture(scope="session")
def golden():
    """llama.cpp's golden greedy runs of the model (testdata/golden)."""
    import json
    with open(_env("HEARTH_GOLDEN")) as f:
        return json.load(f)["results"]
