"""`hearth serve` driven by the official `openai` Python package."""

import json
import math

import jsonschema
import openai
import pytest

from test_ollama import PERSON, WEATHER_TOOL


def user(text):
    return [{"role": "user", "content": text}]


def test_chat_completion(ai, model):
    r = ai.chat.completions.create(model=model, messages=user("Say hello."),
                                   max_tokens=16, temperature=0)
    assert r.object == "chat.completion"
    assert r.id and r.created > 0
    assert r.model == model
    assert len(r.choices) == 1
    c = r.choices[0]
    assert c.index == 0
    assert c.message.role == "assistant"
    assert c.message.content.strip()
    assert c.finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 0
    assert 0 < r.usage.completion_tokens <= 16
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_stream_matches_non_stream(ai, model):
    args = dict(model=model, messages=user("Name three fruits."), max_tokens=16, temperature=0)
    # Both compared requests find the prompt in a slot's cache (a first
    # evaluation and a cached one may round differently).
    ai.chat.completions.create(**args)
    whole = ai.chat.completions.create(**args)
    chunks = list(ai.chat.completions.create(**args, stream=True))
    assert len(chunks) >= 2
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1, "one id for the whole stream"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == whole.choices[0].finish_reason
    assert all(f is None for f in finishes[:-1]), finishes
    assert all(c.usage is None for c in chunks), "usage only when asked for"


def test_chat_stream_include_usage(ai, model):
    chunks = list(ai.chat.completions.create(
        model=model, messages=user("Count to five."), max_tokens=12, temperature=0,
        stream=True, stream_options={"include_usage": True}))
    last = chunks[-1]
    assert last.choices == [], "the usage chunk has no choices"
    assert last.usage.prompt_tokens > 0
    assert 0 < last.usage.completion_tokens <= 12
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_completion(ai, model):
    # Warm the cache first (see test_chat_stream_matches_non_stream).
    ai.completions.create(model=model, prompt="Once upon a time", max_tokens=16, temperature=0)
    r = ai.completions.create(model=model, prompt="Once upon a time", max_tokens=16,
                              temperature=0)
    assert r.object == "text_completion"
    assert r.choices[0].text
    assert r.choices[0].finish_reason in ("stop", "length")
    assert 0 < r.usage.completion_tokens <= 16
    chunks = list(ai.completions.create(model=model, prompt="Once upon a time",
                                        max_tokens=16, temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == r.choices[0].text
    usage = list(ai.completions.create(model=model, prompt="Once upon a time", max_tokens=16,
                                       temperature=0, stream=True,
                                       stream_options={"include_usage": True}))[-1].usage
    assert usage.completion_tokens == r.usage.completion_tokens


def test_stop_and_seed(ai, model):
    args = dict(model=model, prompt="1, 2, 3, 4, 5, 6,", max_tokens=24)
    r = ai.completions.create(**args, temperature=0, stop=[" 9"])
    assert " 9" not in r.choices[0].text
    assert r.choices[0].finish_reason == "stop", r.choices[0]
    a = ai.completions.create(**args, temperature=1.0, seed=42)
    b = ai.completions.create(**args, temperature=1.0, seed=42)
    assert a.choices[0].text == b.choices[0].text, "same seed, same text"


def test_embeddings(ai, oc, model):
    texts = ["The cat sat on the mat.", "Stock markets fell today."]
    r = ai.embeddings.create(model=model, input=texts)
    assert [d.index for d in r.data] == [0, 1]
    for d in r.data:
        assert abs(math.sqrt(sum(x * x for x in d.embedding)) - 1) < 1e-3
    assert r.usage.prompt_tokens > 0
    floats = ai.embeddings.create(model=model, input=texts[0], encoding_format="float")
    assert len(floats.data) == 1
    ours = oc.embed(model=model, input=texts[0]).embeddings[0]
    assert max(abs(x - y) for x, y in zip(floats.data[0].embedding, ours)) < 1e-4
    assert max(abs(x - y) for x, y in zip(r.data[0].embedding, ours)) < 1e-4


def test_models_list_and_retrieve(ai, model):
    ids = [m.id for m in ai.models.list()]
    assert model in ids, ids
    m = ai.models.retrieve(model)
    assert m.id == model and m.object == "model"
    with pytest.raises(openai.NotFoundError):
        ai.models.retrieve("no-such-model")


@pytest.mark.parametrize("stream", [False, True])
def test_response_format_json_schema(ai, model, stream):
    args = dict(model=model, messages=user("Describe a person called Tom from Paris."),
                max_tokens=400, temperature=0,
                response_format={"type": "json_schema",
                                 "json_schema": {"name": "person", "schema": PERSON,
                                                 "strict": True}})
    if stream:
        text = "".join(c.choices[0].delta.content or ""
                       for c in ai.chat.completions.create(**args, stream=True) if c.choices)
    else:
        text = ai.chat.completions.create(**args).choices[0].message.content
    jsonschema.validate(json.loads(text), PERSON)


def test_response_format_json_object(ai, model):
    # A 135M model asked for "a JSON object" with no shape in mind nests
    # keys until max_tokens; asked for a small one, it closes it.
    prompt = 'Reply with a JSON object that has a "name" and an "age".'
    r = ai.chat.completions.create(model=model, messages=user(prompt),
                                   max_tokens=200, temperature=0,
                                   response_format={"type": "json_object"})
    assert isinstance(json.loads(r.choices[0].message.content), dict)


def test_unsupported_schema_is_400(ai, model):
    schema = {"type": "object", "properties": {"s": {"type": "string", "pattern": "^a+$"}}}
    with pytest.raises(openai.BadRequestError) as e:
        ai.chat.completions.create(
            model=model, messages=user("hi"), max_tokens=8,
            response_format={"type": "json_schema",
                             "json_schema": {"name": "x", "schema": schema}})
    assert "pattern" in str(e.value), "the error names the unsupported feature"


def test_tool_call_round_trip(ai, model):
    messages = user("What is the weather like in Paris right now?")
    first = ai.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL],
                                       tool_choice="required", max_tokens=128, temperature=0)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    calls = choice.message.tool_calls
    assert calls and calls[0].type == "function" and calls[0].id
    assert calls[0].function.name == "get_weather"
    assert isinstance(calls[0].function.arguments, str), "arguments are a JSON string"
    args = json.loads(calls[0].function.arguments)
    assert isinstance(args.get("city"), str), args

    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": calls[0].id,
                     "content": json.dumps({"city": args["city"], "temperature_c": 21,
                                            "sky": "sunny"})})
    second = ai.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL],
                                        tool_choice="none", max_tokens=64, temperature=0)
    answer = second.choices[0]
    assert answer.finish_reason in ("stop", "length"), answer
    assert not answer.message.tool_calls
    assert answer.message.content.strip()
    # The call and its result are part of the conversation the model saw:
    # the same question alone, with the same tool_choice, is shorter.
    alone = ai.chat.completions.create(model=model, messages=user(
        "What is the weather like in Paris right now?"), tools=[WEATHER_TOOL],
        tool_choice="none", max_tokens=1, temperature=0)
    assert second.usage.prompt_tokens > alone.usage.prompt_tokens + 20


def test_tool_call_streamed(ai, model):
    chunks = list(ai.chat.completions.create(
        model=model, messages=user("Weather in Rome?"), tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=128, temperature=0, stream=True))
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "tool_calls", finishes
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas, "tool calls arrive as delta.tool_calls"
    name = "".join(d.function.name or "" for d in deltas if d.function)
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert name == "get_weather"
    assert isinstance(json.loads(arguments).get("city"), str), arguments


def test_unknown_model_is_404(ai):
    with pytest.raises(openai.NotFoundError) as e:
        ai.chat.completions.create(model="no-such-model", messages=user("hi"), max_tokens=4)
    assert e.value.status_code == 404
    with pytest.raises(openai.NotFoundError):
        ai.completions.create(model="no-such-model", prompt="hi", max_tokens=4)


def test_over_context_is_400(ai, model, n_ctx):
    with pytest.raises(openai.BadRequestError) as e:
        ai.completions.create(model=model, prompt="word " * (n_ctx + 500), max_tokens=4)
    assert str(n_ctx) in str(e.value), f"the error names the context size: {e.value}"
    with pytest.raises(openai.BadRequestError):
        ai.chat.completions.create(model=model, messages=user("word " * (n_ctx + 500)),
                                   max_tokens=4)
