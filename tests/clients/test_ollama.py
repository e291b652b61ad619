"""`hearth serve` driven by the official `ollama` Python package."""

import json
import math

import jsonschema
import ollama
import pytest

from helpers import same_model

GREEDY = {"temperature": 0, "num_predict": 16}


def check_final(r, max_tokens):
    """The fields of a finished Ollama response, durations in nanoseconds."""
    assert r.done is True
    assert r.done_reason in ("stop", "length"), r.done_reason
    assert 0 < r.eval_count <= max_tokens, r.eval_count
    assert r.prompt_eval_count > 0
    for field in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        value = getattr(r, field)
        assert isinstance(value, int) and value >= 0, (field, value)
    assert r.total_duration > 0 and r.eval_duration > 0
    # Nanoseconds, not milliseconds or seconds: a 135M model's reply takes
    # well over a microsecond and well under ten minutes.
    assert 1_000 < r.total_duration < 600 * 10**9, r.total_duration


def test_generate(oc, model):
    r = oc.generate(model=model, prompt="The capital of France is", options=GREEDY)
    assert r.response.strip(), r
    assert same_model(r.model, model), r.model
    check_final(r, 16)


def test_generate_stream_matches_non_stream(oc, model):
    prompt = "Write one sentence about the sea."
    # Both compared requests find the prompt in a slot's cache (a first
    # evaluation and a cached one may round differently).
    oc.generate(model=model, prompt=prompt, options=GREEDY)
    whole = oc.generate(model=model, prompt=prompt, options=GREEDY)
    chunks = list(oc.generate(model=model, prompt=prompt, options=GREEDY, stream=True))
    assert len(chunks) >= 2, chunks
    assert all(not c.done for c in chunks[:-1])
    check_final(chunks[-1], 16)
    assert "".join(c.response for c in chunks) == whole.response
    assert chunks[-1].eval_count == whole.eval_count


def test_generate_system_and_raw(oc, model):
    # `raw` sends the prompt without the template: the same text with and
    # without a system message gives the same reply.
    a = oc.generate(model=model, prompt="1, 2, 3, 4,", raw=True, options=GREEDY)
    b = oc.generate(model=model, prompt="1, 2, 3, 4,", raw=True, system="ignored",
                    options=GREEDY)
    assert a.response == b.response
    assert a.response.strip(), a


def test_chat(oc, model):
    r = oc.chat(model=model, messages=[{"role": "user", "content": "Say hello."}],
                options=GREEDY)
    assert r.message.role == "assistant"
    assert r.message.content.strip(), r
    check_final(r, 16)


def test_chat_stream_matches_non_stream(oc, model):
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a colour."},
    ]
    oc.chat(model=model, messages=messages, options=GREEDY)  # warm the cache, as above
    whole = oc.chat(model=model, messages=messages, options=GREEDY)
    chunks = list(oc.chat(model=model, messages=messages, options=GREEDY, stream=True))
    assert len(chunks) >= 2, chunks
    assert all(not c.done for c in chunks[:-1])
    check_final(chunks[-1], 16)
    assert "".join(c.message.content for c in chunks) == whole.message.content


def test_chat_continues_a_conversation(oc, model):
    messages = [{"role": "user", "content": "My name is Ada. Remember it."}]
    first = oc.chat(model=model, messages=messages, options=GREEDY)
    messages += [first.message, {"role": "user", "content": "What is my name?"}]
    second = oc.chat(model=model, messages=messages, options=GREEDY)
    assert second.message.content.strip()
    # The second prompt holds the first one and its reply.
    assert second.prompt_eval_count > first.prompt_eval_count + first.eval_count


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def test_embed(oc, model):
    r = oc.embed(model=model, input=["The cat sat on the mat.", "Stock markets fell today."])
    assert len(r.embeddings) == 2
    a, b = r.embeddings
    assert len(a) == len(b) > 0
    assert abs(norm(a) - 1) < 1e-3 and abs(norm(b) - 1) < 1e-3
    assert a != b
    single = oc.embed(model=model, input="The cat sat on the mat.")
    assert len(single.embeddings) == 1
    assert max(abs(x - y) for x, y in zip(single.embeddings[0], a)) < 1e-4


def test_embeddings_legacy(oc, model):
    old = oc.embeddings(model=model, prompt="The cat sat on the mat.")
    new = oc.embed(model=model, input="The cat sat on the mat.")
    assert len(old.embedding) == len(new.embeddings[0])
    cos = sum(x * y for x, y in zip(old.embedding, new.embeddings[0])) / (
        norm(old.embedding) * norm(new.embeddings[0]))
    assert cos > 0.999, cos


def test_list_show_ps(oc, model):
    listed = oc.list()
    names = [m.model for m in listed.models]
    assert any(same_model(n, model) for n in names), names
    entry = next(m for m in listed.models if same_model(m.model, model))
    assert entry.size and entry.size > 1_000_000, entry

    shown = oc.show(model)
    assert shown.details is not None and shown.details.format == "gguf", shown.details
    assert shown.modelinfo, shown
    assert shown.modelinfo.get("general.architecture") == "llama", shown.modelinfo
    assert shown.template, "the model's chat template"

    running = oc.ps()
    names = [m.model for m in running.models]
    assert any(same_model(n, model) for n in names), names


PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "city": {"type": "string"},
        "pets": {"type": "array", "items": {"type": "string"}},
        "mood": {"enum": ["happy", "sad", "calm"]},
        "address": {
            "type": "object",
            "properties": {"street": {"type": "string"}, "number": {"type": "integer"}},
            "required": ["street"],
            "additionalProperties": False,
        },
        "employed": {"type": "boolean"},
        "height": {"type": "number"},
    },
    "required": ["name", "age", "mood", "address", "employed"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("stream", [False, True])
def test_chat_format_schema_validates(oc, model, stream):
    messages = [{"role": "user",
                 "content": "Describe a person called Tom who lives in Paris, as JSON."}]
    options = {"temperature": 0, "num_predict": 400}
    if stream:
        text = "".join(c.message.content for c in oc.chat(
            model=model, messages=messages, format=PERSON, options=options, stream=True))
    else:
        text = oc.chat(model=model, messages=messages, format=PERSON,
                       options=options).message.content
    jsonschema.validate(json.loads(text), PERSON)


def test_generate_format_schema_and_json(oc, model):
    options = {"temperature": 0.8, "seed": 7, "num_predict": 400}
    r = oc.generate(model=model, prompt="A person as JSON:", format=PERSON, options=options)
    jsonschema.validate(json.loads(r.response), PERSON)
    r = oc.generate(model=model, prompt="A JSON object with a name and an age:", format="json",
                    options=options)
    json.loads(r.response)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city"}},
            "required": ["city"],
        },
    },
}


def test_tool_call_round_trip(oc, model):
    messages = [{"role": "user",
                 "content": "What is the weather like in Paris right now? Use the tool."}]
    first = oc.chat(model=model, messages=messages, tools=[WEATHER_TOOL],
                    options={"temperature": 0, "num_predict": 128})
    calls = first.message.tool_calls
    assert calls, f"the model answered without calling the tool: {first.message}"
    assert calls[0].function.name == "get_weather"
    args = calls[0].function.arguments
    assert isinstance(args, dict) and isinstance(args.get("city"), str), args

    messages.append(first.message)
    messages.append({"role": "tool", "tool_name": "get_weather",
                     "content": json.dumps({"city": args["city"], "temperature_c": 21,
                                            "sky": "sunny"})})
    second = oc.chat(model=model, messages=messages, tools=[WEATHER_TOOL],
                     options={"temperature": 0, "num_predict": 64})
    assert second.done
    assert second.message.content.strip() or second.message.tool_calls, second.message
    # The tool's answer is part of the second prompt.
    assert second.prompt_eval_count > first.prompt_eval_count


def test_unknown_model_is_404(oc):
    with pytest.raises(ollama.ResponseError) as e:
        oc.generate(model="no-such-model", prompt="hi")
    assert e.value.status_code == 404, e.value
    with pytest.raises(ollama.ResponseError) as e:
        oc.chat(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 404, e.value
    with pytest.raises(ollama.ResponseError) as e:
        oc.show("no-such-model")
    assert e.value.status_code == 404, e.value


def test_over_context_is_400(oc, model, n_ctx):
    prompt = "word " * (n_ctx + 500)
    with pytest.raises(ollama.ResponseError) as e:
        oc.generate(model=model, prompt=prompt, options={"num_predict": 4})
    assert e.value.status_code == 400, e.value
    assert str(n_ctx) in e.value.error, f"the error names the context size: {e.value.error}"
