#!/usr/bin/env python3
"""Generate the hearth-quant oracle files under testdata/quant-oracle/.

Two checks of hearth-quant against the PyPI `gguf` package
(gguf-py, the Python side of llama.cpp):

1. dequant.json + dequant.dat — a few rows (first, middle, last) of one
   tensor of each type in the two real models, dequantized by
   `gguf.quants.dequantize`. crates/hearth-quant/tests/oracle.rs reads the
   same rows with hearth-gguf and compares hearth's dequantization.
2. quantize.json + quantize.dat — a seeded random f32 array (with awkward
   blocks: zeros, constants, exact .5 ties, outliers) and its bytes after
   `gguf.quants.quantize` for every type gguf-py can quantize, so hearth's
   reference quantizers are checked byte for byte.
3. iquants.json + iquants.dat — for each i-quant, ternary and FP4 format:
   seeded random blocks (every grid index, sign and scale bit pattern, with
   finite block scales) and their `gguf.quants.dequantize`; and rows of the
   llama.cpp-quantized zoo models (../shared/zoo/quant, not committed)
   dequantized by gguf-py, which the test reads back from the same files.

Usage (in a venv):
    python3 -m venv /tmp/qvenv && /tmp/qvenv/bin/pip install gguf numpy
    /tmp/qvenv/bin/python scripts/gen-quant-oracle.py [--models DIR] [--zoo DIR] [--out DIR] [--only iquants]

The models directory defaults to $HEARTH_MODEL_CACHE or ~/.cache/hearth/models.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

MODELS = {
    "SmolLM2-135M-Instruct.Q4_1.gguf": ["Q4_1", "Q8_0", "F32"],
    "gemma-3-270m-q4_k_m.gguf": ["Q4_K", "Q5_0", "Q6_K", "Q8_0", "F32"],
}

# Types gguf-py quantizes (F16 via numpy's astype, the rest in gguf.quants).
QUANTIZE_TYPES = ["F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]
QUANT_ROW = 256
QUANT_SEED = 20250101


def pick_tensor(reader: gguf.GGUFReader, type_name: str):
    """The first tensor of this type with at least two rows (else the first)."""
    tensors = [t for t in reader.tensors if t.tensor_type.name == type_name]
    if not tensors:
        return None
    multi = [t for t in tensors if len(t.shape) >= 2 and int(np.prod(t.shape[1:])) >= 3]
    return (multi or tensors)[0]


def dequant_rows(models_dir: Path):
    entries, blobs, offset = [], [], 0
    for model, types in MODELS.items():
        path = models_dir / model
        if not path.exists():
            sys.exit(f"missing model {path}")
        reader = gguf.GGUFReader(path)
        for type_name in types:
            t = pick_tensor(reader, type_name)
            if t is None:
                sys.exit(f"{model}: no {type_name} tensor")
            row_len = int(t.shape[0])
            n_rows = int(np.prod(t.shape[1:])) if len(t.shape) > 1 else 1
            data = t.data.reshape(n_rows, -1)
            for row in sorted({0, n_rows // 2, n_rows - 1}):
                values = gguf.quants.dequantize(np.ascontiguousarray(data[row]), t.tensor_type)
                values = np.asarray(values, dtype="<f4").reshape(-1)
                assert values.size == row_len, (t.name, values.size, row_len)
                entries.append(
                    {
                        "model": model,
                        "tensor": t.name,
                        "type": type_name,
                        "row": row,
                        "n": row_len,
                        "offset": offset,
                    }
                )
                blobs.append(values.tobytes())
                offset += row_len
    return entries, b"".join(blobs)


def quantize_input() -> np.ndarray:
    """Rows of 256 values: normal data at several scales plus awkward blocks."""
    rng = np.random.default_rng(QUANT_SEED)
    rows = [
        rng.standard_normal(QUANT_ROW),
        rng.standard_normal(QUANT_ROW) * 1e-3,
        rng.standard_normal(QUANT_ROW) * 50.0,
        rng.uniform(-1.0, 1.0, QUANT_ROW) + 0.75,  # all-positive blocks
    ]
    awkward = rng.standard_normal(QUANT_ROW)
    awkward[0:32] = 0.0  # an all-zero block
    awkward[32:64] = 0.3  # a constant block (max == min)
    ties = (np.arange(32) % 16) * 0.5 - 4.0  # exact .5 multiples
    ties[7] = 127.0  # Q8_0 scale exactly 1 -> x*id lands on .5 ties
    awkward[64:96] = ties
    awkward[96:128] *= 1e4  # large values
    awkward[130] = 40.0  # an outlier
    rows.append(awkward)
    rows.append(rng.standard_normal(QUANT_ROW) * 1e-6)  # tiny scales
    rows.append(rng.exponential(0.02, QUANT_ROW) * rng.choice([-1.0, 1.0], QUANT_ROW))  # heavy tails
    skew = rng.standard_normal(QUANT_ROW) * 0.01 + 0.02  # mostly positive, weight-like
    skew[::37] = -0.3
    rows.append(skew)
    return np.stack(rows).astype(np.float32)


# (type, C function, bytes per 256 elements); all blocks divide 256.
def quantize_oracle():
    x = quantize_input()
    blobs = [x.astype("<f4").tobytes()]
    offset = len(blobs[0])
    entries = []
    for name in QUANTIZE_TYPES:
        q = gguf.quants.quantize(x, getattr(T, name))
        b = np.ascontiguousarray(q).view(np.uint8).tobytes()
        entries.append({"type": name, "offset": offset, "len": len(b)})
        blobs.append(b)
        offset += len(b)
    index = {
        "rows": int(x.shape[0]),
        "n": QUANT_ROW,
        "input_offset": 0,
        "input_len": len(blobs[0]),
        "outputs": entries,
    }
    return index, b"".join(blobs)


# The formats of the third oracle, with where their f16 block scale lives
# (byte offset; None: not a plain f16 field).
IQUANT_TYPES = {
    "IQ2_XXS": 0, "IQ2_XS": 0, "IQ2_S": 0, "IQ3_XXS": 0, "IQ3_S": 0, "IQ1_S": 0,
    "IQ1_M": None, "IQ4_NL": 0, "IQ4_XS": 0, "TQ1_0": -2, "TQ2_0": -2, "MXFP4": None,
}
IQUANT_ROWS, IQUANT_N, IQUANT_SEED = 6, 256, 20261206
# Zoo files that hold each format (one tensor of the type is sampled).
ZOO_FILES = [f"llama-dense-{t.lower()}.gguf" for t in IQUANT_TYPES if t != "MXFP4"] + ["gpt-oss-moe-mxfp4.gguf"]


def random_blocks(rng, name: str) -> np.ndarray:
    """IQUANT_ROWS rows of random block bytes with finite scales."""
    qtype = getattr(T, name)
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = IQUANT_ROWS * IQUANT_N // block
    b = rng.integers(0, 256, (n_blocks, size), dtype=np.uint8)
    scales = (rng.standard_normal(n_blocks) * rng.choice([1e-3, 0.05, 2.0], n_blocks)).astype(np.float16)
    bits = scales.view(np.uint16)
    off = IQUANT_TYPES[name]
    if off is not None:
        b[:, off if off >= 0 else size + off:][:, :2] = scales.view(np.uint8).reshape(-1, 2)
    elif name == "IQ1_M":
        # the f16 scale is spread over the top nibbles of the four u16 scales
        for k in range(4):
            hi = ((bits >> (4 * k)) & 0xF).astype(np.uint8)
            b[:, 48 + 2 * k + 1] = (b[:, 48 + 2 * k + 1] & 0x0F) | (hi << 4)
    elif name == "MXFP4":
        e = rng.integers(100, 150, n_blocks).astype(np.uint8)
        e[:4] = [0, 1, 2, 254]  # subnormal and extreme scales
        b[:, 0] = e
    return b.reshape(IQUANT_ROWS, -1)


def iquant_oracle(zoo_dir: Path):
    rng = np.random.default_rng(IQUANT_SEED)
    entries, blobs, offset = [], [], 0

    def add(entry, data: bytes):
        nonlocal offset
        entries.append({**entry, "offset": offset, "len": len(data)})
        blobs.append(data)
        offset += len(data)

    for name in IQUANT_TYPES:
        b = random_blocks(rng, name)
        y = np.asarray(gguf.quants.dequantize(b, getattr(T, name)), dtype="<f4")
        assert y.shape == (IQUANT_ROWS, IQUANT_N), (name, y.shape)
        add({"source": "random", "type": name, "rows": IQUANT_ROWS, "n": IQUANT_N, "what": "bytes"}, b.tobytes())
        add({"source": "random", "type": name, "rows": IQUANT_ROWS, "n": IQUANT_N, "what": "dequant"}, y.tobytes())
    for file in ZOO_FILES:
        path = zoo_dir / file
        if not path.exists():
            sys.exit(f"missing zoo file {path}")
        reader = gguf.GGUFReader(path)
        for type_name in IQUANT_TYPES:
            t = pick_tensor(reader, type_name)
            if t is None:
                continue
            row_len = int(t.shape[0])
            n_rows = int(np.prod(t.shape[1:])) if len(t.shape) > 1 else 1
            data = t.data.reshape(n_rows, -1)
            for row in sorted({0, n_rows // 2, n_rows - 1}):
                y = np.asarray(gguf.quants.dequantize(np.ascontiguousarray(data[row]), t.tensor_type), dtype="<f4")
                add({"source": file, "tensor": t.name, "type": type_name, "row": row, "n": row_len, "what": "dequant"},
                    y.reshape(-1).tobytes())
    return entries, b"".join(blobs)


def main() -> None:
    default_models = os.environ.get("HEARTH_MODEL_CACHE") or str(Path.home() / ".cache/hearth/models")
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=default_models)
    ap.add_argument("--zoo", default=str(root.parent / "shared/zoo/quant"))
    ap.add_argument("--out", default=str(root / "testdata/quant-oracle"))
    ap.add_argument("--only", choices=["iquants"], help="write only this oracle")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"generator": "scripts/gen-quant-oracle.py", "gguf_version": version("gguf"), "numpy_version": np.__version__}

    ientries, iblob = iquant_oracle(Path(args.zoo))
    (out / "iquants.dat").write_bytes(iblob)
    (out / "iquants.json").write_text(json.dumps({**meta, "seed": IQUANT_SEED, "entries": ientries}, indent=1) + "\n")
    print(f"wrote {len(ientries)} i-quant oracle entries ({len(iblob)} bytes) to {out}")
    if args.only == "iquants":
        return

    entries, blob = dequant_rows(Path(args.models))
    (out / "dequant.dat").write_bytes(blob)
    (out / "dequant.json").write_text(json.dumps({**meta, "rows": entries}, indent=1) + "\n")

    index, qblob = quantize_oracle()
    (out / "quantize.dat").write_bytes(qblob)
    (out / "quantize.json").write_text(json.dumps({**meta, **index, "seed": QUANT_SEED}, indent=1) + "\n")
    total = len(blob) + len(qblob)
    print(f"wrote {len(entries)} dequantized rows and {len(index['outputs'])} quantized types ({total} bytes) to {out}")


if __name__ == "__main__":
    main()
