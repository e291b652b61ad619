#!/usr/bin/env python3
"""Writes seed inputs for the api_request fuzz target: one valid request
per route (byte 0: route index, byte 1: header set, rest: body), so the
fuzzer starts from bodies that reach the handlers. Usage:
    python3 api_seeds.py [DIR]      # default corpus/api_request
"""
import json
import os
import sys

M = "synth"
CHAT = [{"role": "user", "content": "hi"}]
# Indices follow ROUTES in fuzz_targets/api_request.rs.
SEEDS = [
    (0, {"model": M, "prompt": "hi", "stream": False, "options": {"num_predict": 2, "temperature": 0}}),
    (0, {"model": M, "prompt": "hi", "format": {"type": "object", "properties": {"a": {"type": "integer"}}}}),
    (1, {"model": M, "messages": CHAT, "stream": True, "options": {"num_predict": 2}}),
    (1, {"model": M, "messages": CHAT, "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}),
    (2, {"model": M, "input": ["a", "b"]}),
    (3, {"model": M, "prompt": "a"}),
    (4, {"model": M}),
    (5, {"model": "nothing"}),
    (6, {"source": M, "destination": "copy"}),
    (7, {"model": "https://example.org/m.gguf", "stream": False}),
    (8, {"model": M, "messages": CHAT, "max_tokens": 2, "response_format": {"type": "json_object"}}),
    (9, {"model": M, "prompt": "hi", "max_tokens": 2, "stop": ["x"]}),
    (10, {"model": M, "input": "a", "encoding_format": "base64"}),
    (11, {"model": M, "content": "hello"}),
    (12, {"model": M, "tokens": [1, 2, 3]}),
]

out = sys.argv[1] if len(sys.argv) > 1 else "corpus/api_request"
os.makedirs(out, exist_ok=True)
for i, (route, body) in enumerate(SEEDS):
    for headers in (0, 2):
        with open(os.path.join(out, f"seed-{i:02}-{headers}"), "wb") as f:
            f.write(bytes([route, headers]) + json.dumps(body).encode())
print(f"wrote {2 * len(SEEDS)} seeds to {out}")
