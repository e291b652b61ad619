"""Speech to text with the official `openai` client: jfk.wav through
/v1/audio/transcriptions in every response_format and as a stream, the
translations route (an English-only model refuses to translate), and bad
audio answered 400 with the server still transcribing afterwards.

Run by crates/hearth-cli/tests/serve_clients.rs (`audio_with_the_openai_client`),
which starts `hearth serve` with tiny.en in its store and sets
HEARTH_URL, HEARTH_WHISPER (the model's store name) and HEARTH_JFK.
"""

import os
import re

import openai
import pytest

REFERENCE = ("And so my fellow Americans, ask not what your country can do for you, "
             "ask what you can do for your country.")
TIMESTAMP = r"\d\d:\d\d:\d\d[.,]\d\d\d"


def words(text):
    return " ".join(re.sub(r"[^\w\s]", "", text.lower()).split())


@pytest.fixture(scope="module")
def client(base_url):
    return openai.OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def whisper():
    name = os.environ.get("HEARTH_WHISPER")
    if not name:
        pytest.fail("HEARTH_WHISPER is not set; run through serve_clients.rs")
    return name


def jfk():
    return open(os.environ["HEARTH_JFK"], "rb")


def transcribe(client, whisper, **kw):
    with jfk() as f:
        return client.audio.transcriptions.create(model=whisper, file=f, **kw)


def test_json(client, whisper):
    r = transcribe(client, whisper, response_format="json", language="en")
    assert words(r.text) == words(REFERENCE)


def test_text(client, whisper):
    r = transcribe(client, whisper, response_format="text")
    assert isinstance(r, str)
    assert words(r) == words(REFERENCE)


def test_srt(client, whisper):
    r = transcribe(client, whisper, response_format="srt")
    assert re.match(rf"1\n00:00:00,000 --> {TIMESTAMP}\n", r), r
    cues = [l for l in r.splitlines() if l and "-->" not in l and not l.isdigit()]
    assert words(" ".join(cues)) == words(REFERENCE)


def test_vtt(client, whisper):
    r = transcribe(client, whisper, response_format="vtt")
    assert re.match(rf"WEBVTT\n\n00:00:00\.000 --> {TIMESTAMP}\n", r), r


def test_verbose_json(client, whisper):
    r = transcribe(client, whisper, response_format="verbose_json",
                   timestamp_granularities=["segment"], temperature=0.0)
    assert r.language == "english"
    assert abs(r.duration - 11.0) < 0.01
    assert words(r.text) == words(REFERENCE)
    assert r.segments and r.segments[0].start == 0.0
    assert all(s.end <= 11.5 and s.tokens for s in r.segments)


def test_stream(client, whisper):
    with jfk() as f:
        events = list(client.audio.transcriptions.create(model=whisper, file=f, stream=True))
    *deltas, done = events
    assert deltas and all(e.type == "transcript.text.delta" for e in deltas)
    assert done.type == "transcript.text.done"
    assert "".join(e.delta for e in deltas).strip() == done.text
    assert words(done.text) == words(REFERENCE)


def test_translation_needs_a_multilingual_model(client, whisper):
    with jfk() as f, pytest.raises(openai.BadRequestError) as e:
        client.audio.translations.create(model=whisper, file=f)
    assert "English-only" in str(e.value)


def test_bad_audio_is_a_400_and_the_server_goes_on(client, whisper):
    for name, data in [("junk.wav", b"not audio at all " * 64), ("empty.mp3", b""),
                       ("cut.wav", open(os.environ["HEARTH_JFK"], "rb").read()[:30])]:
        with pytest.raises(openai.BadRequestError) as e:
            client.audio.transcriptions.create(model=whisper, file=(name, data))
        assert "the audio file" in str(e.value)
    with pytest.raises(openai.NotFoundError):
        transcribe(client, whisper + "-missing")
    assert words(transcribe(client, whisper).text) == words(REFERENCE)
