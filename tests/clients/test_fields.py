"""Request fields through the official `openai` client: log-probabilities
against hearth's own teacher-forced forward pass and llama.cpp's golden
values, and `ignore_eos`.

Run by crates/hearth-cli/tests/serve_clients.rs (`fields_with_the_openai_client`)
against a server with one slot, for SmolLM2 and Gemma 3.
"""

import math

# Server vs hearth's own teacher-forced log-softmax (same model, same KV type).
SELF_TOLERANCE = 0.01
# Server vs llama.cpp: the bound crates/hearth-model/tests/golden_logits.rs
# asserts (mean over the golden top-10 entries), since llama.cpp differs from
# itself by tenths of a nat between its attention paths (testdata/golden/README.md).
GOLDEN_MEAN = 0.15


def _unique(pairs):
    """{text: logprob} for texts that occur once among `pairs`."""
    seen, out = set(), {}
    for text, lp in pairs:
        if text in seen:
            out.pop(text, None)
        else:
            seen.add(text)
            out[text] = lp
    return out


def _fresh(ai, model, prompt_ids):
    """Leaves the server's one slot holding a sequence that shares no prefix
    with `prompt_ids`, so that the next request evaluates its whole prompt in
    one batch, as the reference did. (A cached prefix, even a lone BOS, moves
    Gemma's log-probabilities by tenths of a nat through the F16 rounding of
    the cached K/V: that is the determinism work's subject, not this test's.)"""
    ai.completions.create(model=model, prompt=[prompt_ids[0] + 1], max_tokens=1)


def _compare(steps, ref_steps, gold_steps, stats):
    """Compares per-step (token, logprob, {text: logprob}) with the reference
    and the golden run up to the first divergence from the golden tokens."""
    for got, ref, gold in zip(steps, ref_steps, gold_steps):
        token, lp, top = got
        if token != ref["token"]:
            break  # free-running greedy left the golden sequence (a near-tie)
        stats["steps"] += 1
        _worst(stats, abs(lp - ref["logprob"]), (token, lp, ref["logprob"]))
        ref_top = _unique(ref["top"])
        for text, v in top.items():
            if text in ref_top:
                _worst(stats, abs(v - ref_top[text]), (text, v, ref_top[text], "top"))
                stats["self_entries"] += 1
        gold_top = _unique((e["token"], e["logprob"]) for e in gold["top"])
        for text, v in top.items():
            if text in gold_top:
                d = abs(v - gold_top[text])
                stats["gold_sum"] += d
                stats["gold_n"] += 1
                stats["gold_max"] = max(stats["gold_max"], d)


def _worst(stats, d, what):
    if d > stats["self_max"]:
        stats["self_max"], stats["self_worst"] = d, (stats["steps"],) + what


def _stats():
    return {"steps": 0, "self_max": 0.0, "self_entries": 0,
            "gold_sum": 0.0, "gold_n": 0, "gold_max": 0.0, "self_worst": None}


def _check(stats, what):
    mean = stats["gold_sum"] / max(stats["gold_n"], 1)
    print(f"\n{what}: {stats['steps']} steps, {stats['self_entries']} top entries; "
          f"max |Δ| vs hearth's forward {stats['self_max']:.2e} nat "
          f"(step, token, server, reference: {stats['self_worst']}); "
          f"vs llama.cpp mean {mean:.4f} max {stats['gold_max']:.3f} nat "
          f"over {stats['gold_n']} entries")
    assert stats["steps"] >= 20, stats
    assert stats["self_max"] <= SELF_TOLERANCE, stats
    assert mean <= GOLDEN_MEAN, stats


def test_completion_logprobs_are_the_models(ai, model, reference, golden):
    stats = _stats()
    for ref, gold in zip(reference, golden):
        _fresh(ai, model, ref["prompt_ids"])
        r = ai.completions.create(model=model, prompt=ref["prompt_ids"], temperature=0,
                                  max_tokens=len(gold["generated_ids"]), logprobs=10)
        lp = r.choices[0].logprobs
        assert r.usage.prompt_tokens == len(ref["prompt_ids"])
        assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs)
        assert all(math.isfinite(x) and x <= 0 for x in lp.token_logprobs)
        steps = list(zip(lp.tokens, lp.token_logprobs, lp.top_logprobs))
        _compare(steps, ref["steps"], gold["steps"], stats)
    _check(stats, "completions")


def test_chat_logprobs_are_the_models(ai, model, reference, golden):
    """Chat prompts of the golden set whose rendered prompt is the golden
    one (same token count), through chat logprobs with top_logprobs."""
    stats, compared = _stats(), 0
    for ref, gold in zip(reference, golden):
        if gold["kind"] != "chat":
            continue
        _fresh(ai, model, ref["prompt_ids"])
        r = ai.chat.completions.create(model=model, messages=gold["messages"], temperature=0,
                                       max_tokens=len(gold["generated_ids"]),
                                       logprobs=True, top_logprobs=10)
        if r.usage.prompt_tokens != len(ref["prompt_ids"]):
            print(f"\nchat prompt rendered to {r.usage.prompt_tokens} tokens, golden "
                  f"{len(ref['prompt_ids'])}: not compared")
            continue
        compared += 1
        content = r.choices[0].logprobs.content
        assert "".join(bytes(c.bytes).decode("utf-8", "replace") for c in content) \
            == r.choices[0].message.content
        steps = [(c.token, c.logprob, {t.token: t.logprob for t in c.top_logprobs})
                 for c in content]
        _compare(steps, ref["steps"], gold["steps"], stats)
    if compared:
        _check(stats, f"chat ({compared} prompts)")


def test_streamed_logprobs_equal_whole(ai, model, reference):
    """Streamed chunks carry the same log-probabilities as the whole reply.
    A first request puts the prompt in the slot's cache, so that the two
    compared requests evaluate it the same way (a cached prefix changes the
    last bits of the logits: that is the determinism work's subject)."""
    ref = reference[0]
    ai.completions.create(model=model, prompt=ref["prompt_ids"], max_tokens=1)
    whole = ai.completions.create(model=model, prompt=ref["prompt_ids"], temperature=0,
                                  max_tokens=12, logprobs=3)
    tokens, lps = [], []
    for chunk in ai.completions.create(model=model, prompt=ref["prompt_ids"], temperature=0,
                                       max_tokens=12, logprobs=3, stream=True):
        for c in chunk.choices:
            if c.logprobs:
                tokens += c.logprobs.tokens
                lps += c.logprobs.token_logprobs
    assert tokens == whole.choices[0].logprobs.tokens
    assert lps == whole.choices[0].logprobs.token_logprobs


def test_ignore_eos_generates_exactly_max_tokens(ai, model, golden):
    """With the end token made the certain choice (logit_bias +100) the
    reply ends at once; adding ignore_eos runs it to exactly max_tokens."""
    gold = next(g for g in golden if g["stop_type"] == "eos")
    eos = gold["generated_ids"][-1]
    bias = {str(eos): 100}
    ended = ai.completions.create(model=model, prompt=gold["prompt_ids"], temperature=0,
                                  max_tokens=64, logit_bias=bias)
    assert ended.choices[0].finish_reason == "stop"
    assert ended.usage.completion_tokens == 1
    for extra in ({"ignore_eos": True}, {"ignore_eos": True, "logit_bias": bias}):
        r = ai.completions.create(model=model, prompt=gold["prompt_ids"], temperature=0,
                                  max_tokens=64, extra_body=extra)
        assert r.usage.completion_tokens == 64, extra
        assert r.choices[0].finish_reason == "length", extra
    chat = ai.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}],
                                      max_tokens=40, logit_bias=bias,
                                      extra_body={"ignore_eos": True})
    assert chat.usage.completion_tokens == 40
    assert chat.choices[0].finish_reason == "length"
