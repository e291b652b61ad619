"""Load on `hearth serve` over loopback (asyncio + httpx): many concurrent
streams, a full queue, and clients that hang up mid-stream."""

import asyncio
import json
import time

import httpx

from helpers import metric, parse_metrics

CLIENTS = 32
REQUESTS_PER_CLIENT = 4
NUM_PREDICT = 8
# Generous: 128 requests on a 2-core machine under other load.
TIMEOUT = httpx.Timeout(600, connect=30)


def body(kind, model, i, n=NUM_PREDICT):
    """A streaming request of one of the four kinds, differing per client."""
    text = f"Client {i} says: tell me a fact about the number {i}."
    if kind == "generate":
        return "/api/generate", {"model": model, "prompt": text,
                                 "options": {"num_predict": n, "seed": i}}
    if kind == "chat":
        return "/api/chat", {"model": model, "messages": [{"role": "user", "content": text}],
                             "options": {"num_predict": n, "seed": i}}
    if kind == "openai_chat":
        return "/v1/chat/completions", {"model": model, "stream": True, "max_tokens": n,
                                        "seed": i,
                                        "messages": [{"role": "user", "content": text}]}
    return "/v1/completions", {"model": model, "stream": True, "max_tokens": n, "seed": i,
                               "prompt": text}


KINDS = ["generate", "chat", "openai_chat", "completions"]


async def stream_one(client, kind, model, i):
    """Runs one streaming request; returns None when the stream was complete
    and properly terminated, else what went wrong."""
    path, payload = body(kind, model, i)
    async with client.stream("POST", path, json=payload) as r:
        if r.status_code != 200:
            return f"{kind}: status {r.status_code}: {(await r.aread())[:200]!r}"
        if path.startswith("/api/"):
            objs = []
            async for line in r.aiter_lines():
                if line.strip():
                    objs.append(json.loads(line))
            if not objs:
                return f"{kind}: empty stream"
            if any("error" in o for o in objs):
                return f"{kind}: error in stream: {objs}"
            if objs[-1].get("done") is not True or any(o.get("done") for o in objs[:-1]):
                return f"{kind}: stream not terminated by one done:true: {objs[-2:]}"
            if objs[-1].get("done_reason") not in ("stop", "length"):
                return f"{kind}: done_reason {objs[-1].get('done_reason')!r}"
            if not 0 < objs[-1].get("eval_count", 0) <= NUM_PREDICT:
                return f"{kind}: eval_count {objs[-1].get('eval_count')!r}"
        else:
            events = []
            async for line in r.aiter_lines():
                if line.strip():
                    if not line.startswith("data: "):
                        return f"{kind}: not an SSE data line: {line!r}"
                    events.append(line[len("data: "):])
            if not events or events[-1] != "[DONE]" or "[DONE]" in events[:-1]:
                return f"{kind}: stream not terminated by one [DONE]: {events[-2:]}"
            chunks = [json.loads(e) for e in events[:-1]]
            if any("error" in c for c in chunks):
                return f"{kind}: error in stream: {chunks}"
            finishes = [c["choices"][0].get("finish_reason") for c in chunks if c["choices"]]
            if not finishes or finishes[-1] not in ("stop", "length"):
                return f"{kind}: finish_reason {finishes[-1:]}"
    return None


async def many_clients(base_url, model):
    limits = httpx.Limits(max_connections=CLIENTS * 2, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT, limits=limits) as client:

        async def one_client(i):
            errors = []
            for k in range(REQUESTS_PER_CLIENT):
                kind = KINDS[(i + k) % len(KINDS)]
                try:
                    err = await stream_one(client, kind, model, i)
                except Exception as e:  # noqa: BLE001 - every failure is counted
                    err = f"{kind}: {type(e).__name__}: {e}"
                if err:
                    errors.append(f"client {i} request {k}: {err}")
            return errors

        results = await asyncio.gather(*(one_client(i) for i in range(CLIENTS)))
    return [e for r in results for e in r]


async def get_metrics(client):
    r = await client.get("/metrics")
    assert r.status_code == 200, r.text
    return parse_metrics(r.text)


def active_sequences(m):
    return metric(m, "active")


def test_32_concurrent_streaming_clients(base_url, model):
    t0 = time.monotonic()
    errors = asyncio.run(many_clients(base_url, model))
    took = time.monotonic() - t0
    print(f"{CLIENTS} clients x {REQUESTS_PER_CLIENT} streaming requests "
          f"(num_predict {NUM_PREDICT}) in {took:.1f} s")
    assert not errors, f"{len(errors)} failed:\n" + "\n".join(errors[:20])

    async def settled():
        async with httpx.AsyncClient(base_url=base_url) as c:
            return await get_metrics(c)
    m = asyncio.run(settled())
    assert active_sequences(m) == 0, m


async def burst(small_url, model, n):
    async with httpx.AsyncClient(base_url=small_url, timeout=TIMEOUT,
                                 limits=httpx.Limits(max_connections=n)) as client:

        async def one(i):
            path, payload = body("generate", model, i, n=24)
            t0 = time.monotonic()
            async with client.stream("POST", path, json=payload) as r:
                data = await r.aread()
            return r.status_code, r.headers, data, time.monotonic() - t0

        return await asyncio.gather(*(one(i) for i in range(n)))


def test_full_queue_answers_503_with_retry_after(small_url, model):
    # The server has --parallel 2 --max-queue 2: of 12 requests at once at
    # most 4 are taken, the rest are refused at once instead of waiting.
    results = asyncio.run(burst(small_url, model, 12))
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 503]
    assert len(ok) + len(refused) == len(results), [(s, d[:200]) for s, _, d, _ in results]
    assert len(ok) >= 2, [(s, d[:200]) for s, _, d, _ in results]
    assert len(refused) >= 1, "a burst of 12 on 2 slots + 2 queue places got no 503"
    for status, headers, data, took in refused:
        assert headers.get("retry-after", "").isdigit(), headers
        assert json.loads(data)["error"], data
        assert took < 10, f"a refusal took {took:.1f} s"
    for status, headers, data, took in ok:
        lines = [json.loads(x) for x in data.splitlines() if x.strip()]
        assert lines[-1]["done"] is True, lines[-1]
    print(f"burst of 12: {len(ok)} served, {len(refused)} refused with 503")


async def drop_mid_stream(url, model):
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as c:
        before = await get_metrics(c)
        assert active_sequences(before) == 0, before
        # Long generations that cannot end on their own during the test: a
        # raw count the model continues greedily.
        streams = []
        for i in range(2):
            path, payload = body("generate", model, i, n=3000)
            payload["prompt"] = "1, 2, 3, 4, 5, 6, 7, 8,"
            payload["raw"] = True
            payload["options"]["temperature"] = 0
            streams.append(c.stream("POST", path, json=payload))
        responses = [await s.__aenter__() for s in streams]
        seen = []
        # The line iterators are kept: an abandoned one is closed when it is
        # collected, and that hangs up early.
        iterators = []
        for r in responses:
            assert r.status_code == 200
            lines = r.aiter_lines()
            iterators.append(lines)
            got = []
            while len(got) < 3:
                line = await lines.__anext__()
                if line.strip():
                    got.append(json.loads(line))
            assert not any(x["done"] for x in got), got
            seen.append(got)
        during = await get_metrics(c)
        assert active_sequences(during) == 2, (during, seen)
        # Hang up: close the connections without reading the rest.
        for r in responses:
            await r.aclose()
        for s in streams:
            await s.__aexit__(None, None, None)

    # A fresh connection watches the slots come free.
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as c:
        t0 = time.monotonic()
        while True:
            m = await get_metrics(c)
            if active_sequences(m) == 0:
                break
            assert time.monotonic() - t0 < 10, f"slots still busy 10 s after the hang-up: {m}"
            await asyncio.sleep(0.05)
        freed_after = time.monotonic() - t0
        # Both slots serve again at once.
        path, payload = body("generate", model, 99, n=4)
        r = await c.post(path, json=payload)
        assert r.status_code == 200, r.text
        return freed_after


def test_dropped_client_frees_its_slot(small_url, model):
    freed_after = asyncio.run(drop_mid_stream(small_url, model))
    print(f"slots free {freed_after * 1000:.0f} ms after the clients hung up")
