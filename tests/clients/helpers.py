"""Helpers shared by the client tests."""

import json
import re
import subprocess


def same_model(name, model):
    """Whether an API's model name denotes `model` (Ollama adds `:latest`)."""
    return name in (model, model + ":latest")


def parse_metrics(text):
    """Prometheus text -> {metric name: sum of its samples over all labels}."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        assert m, f"not a Prometheus sample line: {line!r}"
        out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(3))
    return out


def metric(metrics, *words, exclude=()):
    """The one metric whose name contains every word in `words` (and none of
    `exclude`); fails listing the names when there is not exactly one."""
    names = [n for n in metrics
             if all(w in n for w in words) and not any(x in n for x in exclude)]
    assert len(names) == 1, f"want one metric named with {words}, found {names} in {sorted(metrics)}"
    return metrics[names[0]]


def ndjson(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def hearth_run(hearth_bin, model_path, prompt, deterministic=False, n_predict=32):
    """`hearth run --raw --temperature 0` of `prompt`: the text a greedy
    request gives alone, its whole prompt evaluated in one pass."""
    args = [hearth_bin, "run", model_path, "--raw", "--temperature", "0",
            "-n", str(n_predict), "-t", "2", prompt]
    if deterministic:
        args.append("--deterministic")
    return subprocess.run(args, capture_output=True, check=True, timeout=300).stdout.decode()


def printed(text):
    """The text as `hearth run` prints it: ending with a newline."""
    return text if text.endswith("\n") else text + "\n"
