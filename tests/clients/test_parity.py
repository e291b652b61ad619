"""Greedy parity of `hearth serve`: does a temperature-0 request give the
text it gives alone (`hearth run`, the whole prompt in one pass) when it is
decoded in a batch with other requests, and when its prompt is found in a
slot's cache (only the last prompt token is then evaluated, apart from the
cached prefix)?

Without --deterministic (HEARTH_URL) the multi-row kernels sum in another
order than one row does, so a near-tie can flip: the agreement rate is
measured and printed. With --deterministic (HEARTH_DET_URL, compared with
`hearth run --deterministic`) it must be 100 %.
"""

import asyncio

import httpx

from helpers import hearth_run, printed

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
    "The best way to learn a language is",
    "import numpy as np\n",
    "Water boils at",
    "My favourite season is",
    "1, 2, 3, 4,",
    "The three primary colours are",
    "In 1969, the first person to walk on the moon",
    "SELECT name FROM users WHERE",
    "Dear Sir or Madam, I am writing to",
]
N_PREDICT = 32


def _body(model, prompt):
    return {"model": model, "prompt": prompt, "raw": True, "stream": False,
            "options": {"temperature": 0, "num_predict": N_PREDICT}}


async def _all_at_once(base_url, model):
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as c:
        async def one(p):
            r = await c.post("/api/generate", json=_body(model, p))
            r.raise_for_status()
            return r.json()["response"]
        return await asyncio.gather(*(one(p) for p in PROMPTS))


def _twice_in_a_row(base_url, model):
    """Each prompt sent twice, one request at a time: the second finds the
    first's prompt in a slot's cache. Returns the second replies."""
    out = []
    with httpx.Client(base_url=base_url, timeout=600) as c:
        for p in PROMPTS:
            for _ in range(2):
                r = c.post("/api/generate", json=_body(model, p))
                r.raise_for_status()
            out.append(r.json()["response"])
    return out


def _measure(base_url, model, model_path, hearth_bin, deterministic):
    alone = [hearth_run(hearth_bin, model_path, p, deterministic, N_PREDICT) for p in PROMPTS]
    batched = [printed(t) for t in asyncio.run(_all_at_once(base_url, model))]
    cached = [printed(t) for t in _twice_in_a_row(base_url, model)]
    n = len(PROMPTS)
    same_batched = sum(a == b for a, b in zip(alone, batched))
    same_cached = sum(a == c for a, c in zip(alone, cached))
    label = "with --deterministic" if deterministic else "without --deterministic"
    print(f"\nparity {label}: batched = alone {same_batched}/{n} "
          f"({100 * same_batched / n:.0f} %), prefix-cache hit = alone {same_cached}/{n} "
          f"({100 * same_cached / n:.0f} %)")
    for p, a, b, c in zip(PROMPTS, alone, batched, cached):
        if not a == b == c:
            print(f"  {p!r}\n    alone:   {a!r}\n    batched: {b!r}\n    cached:  {c!r}")
    return alone, batched, cached


def test_agreement_without_the_flag_is_measured(base_url, model, model_path, hearth_bin):
    alone, batched, cached = _measure(base_url, model, model_path, hearth_bin, False)
    # Every request generated text; the rates are printed above.
    assert all(alone) and all(batched) and all(cached)


def test_deterministic_server_always_agrees(det_url, model, model_path, hearth_bin):
    alone, batched, cached = _measure(det_url, model, model_path, hearth_bin, True)
    assert all(alone)
    for p, a, b, c in zip(PROMPTS, alone, batched, cached):
        assert b == a, f"{p!r}: batched {b!r} vs alone {a!r}"
        assert c == a, f"{p!r}: cached {c!r} vs alone {a!r}"
