#!/usr/bin/env python3
"""Generate the hearth-quant oracle files under testdata/quant-oracle/.

Two independent checks of hearth-quant against the PyPI `gguf` package
(gguf-py, the Python side of llama.cpp):

1. dequant.json + dequant.bin — a few rows (first, middle, last) of one
   tensor of each type in the two real models, dequantized by
   `gguf.quants.dequantize`. crates/hearth-quant/tests/oracle.rs reads the
   same rows with hearth-gguf and compares hearth's dequantization.
2. quantize.json + quantize.bin — a seeded random f32 array (with awkward
   blocks: zeros, constants, exact .5 ties, outliers) and its bytes after
   `gguf.quants.quantize` for every type gguf-py can quantize, so hearth's
   reference quantizers are checked byte for byte.
3. quantize-ggml-c.json + .bin (only with --ggml-src) — the same input run
   through ggml's own C reference quantizers (`quantize_row_*_ref` of
   ggml-quants.c, compiled here with the system C compiler for baseline
   x86-64 without FMA contraction, called through ctypes). This covers the
   K-quants, which gguf-py cannot quantize.

Usage (in a venv):
    python3 -m venv /tmp/qvenv && /tmp/qvenv/bin/pip install gguf numpy
    /tmp/qvenv/bin/python scripts/gen-quant-oracle.py [--models DIR] [--out DIR] \
        [--ggml-src GGML_TREE --ggml-rev COMMIT]

The models directory defaults to $HEARTH_MODEL_CACHE or ~/.cache/hearth/models.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
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
GGML_C_REFS = [
    ("Q4_0", "quantize_row_q4_0_ref", 8 * 18),
    ("Q4_1", "quantize_row_q4_1_ref", 8 * 20),
    ("Q5_0", "quantize_row_q5_0_ref", 8 * 22),
    ("Q5_1", "quantize_row_q5_1_ref", 8 * 24),
    ("Q8_0", "quantize_row_q8_0_ref", 8 * 34),
    ("Q8_1", "quantize_row_q8_1_ref", 8 * 36),
    ("Q2_K", "quantize_row_q2_K_ref", 84),
    ("Q3_K", "quantize_row_q3_K_ref", 110),
    ("Q4_K", "quantize_row_q4_K_ref", 144),
    ("Q5_K", "quantize_row_q5_K_ref", 176),
    ("Q6_K", "quantize_row_q6_K_ref", 210),
    ("Q8_K", "quantize_row_q8_K_ref", 292),
]

# ggml-quants.c refers to a few ggml.c functions its reference quantizers
# never call; stubs let the file link on its own.
GGML_STUBS = """
#include <stddef.h>
#include <stdlib.h>
void ggml_abort(const char * file, int line, const char * fmt, ...) { (void)file; (void)line; (void)fmt; abort(); }
size_t ggml_row_size(int type, long long ne) { (void)type; (void)ne; abort(); }
const char * ggml_type_name(int type) { (void)type; return "?"; }
size_t ggml_type_size(int type) { (void)type; abort(); }
"""


def build_ggml_quants(src: Path, workdir: Path) -> ctypes.CDLL:
    stubs = workdir / "stubs.c"
    stubs.write_text(GGML_STUBS)
    lib = workdir / "libggml_quants_ref.so"
    cmd = [
        os.environ.get("CC", "cc"), "-O2", "-fPIC", "-shared", "-ffp-contract=off",
        f"-I{src / 'include'}", f"-I{src / 'src'}", f"-I{src / 'src' / 'ggml-cpu'}",
        str(src / "src" / "ggml-quants.c"), str(stubs), "-o", str(lib), "-lm",
    ]
    subprocess.run(cmd, check=True)
    return ctypes.CDLL(str(lib))


def ggml_c_oracle(src: Path, rev: str):
    x = np.ascontiguousarray(quantize_input())
    blobs = [x.astype("<f4").tobytes()]
    offset = len(blobs[0])
    entries = []
    with tempfile.TemporaryDirectory() as tmp:
        lib = build_ggml_quants(src, Path(tmp))
        for name, func, bytes_256 in GGML_C_REFS:
            f = getattr(lib, func)
            f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
            f.restype = None
            # Zeroed, so fields the C leaves unwritten (Q8_K bsums of an
            # all-zero block) read as zero, as hearth writes them.
            out = np.zeros(x.shape[0] * bytes_256, dtype=np.uint8)
            f(x.ctypes.data, out.ctypes.data, x.size)
            b = out.tobytes()
            entries.append({"type": name, "function": func, "offset": offset, "len": len(b)})
            blobs.append(b)
            offset += len(b)
    index = {
        "ggml_commit": rev,
        "compiler_flags": "-O2 -ffp-contract=off (baseline x86-64)",
        "rows": int(x.shape[0]),
        "n": QUANT_ROW,
        "input_offset": 0,
        "input_len": len(blobs[0]),
        "outputs": entries,
        "seed": QUANT_SEED,
    }
    return index, b"".join(blobs)


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


def main() -> None:
    default_models = os.environ.get("HEARTH_MODEL_CACHE") or str(Path.home() / ".cache/hearth/models")
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=default_models)
    ap.add_argument("--out", default=str(root / "testdata/quant-oracle"))
    ap.add_argument("--ggml-src", help="a ggml source tree (with src/ggml-quants.c) for the C oracle")
    ap.add_argument("--ggml-rev", default="unknown", help="the commit of that tree, recorded in the index")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"generator": "scripts/gen-quant-oracle.py", "gguf_version": version("gguf"), "numpy_version": np.__version__}

    entries, blob = dequant_rows(Path(args.models))
    (out / "dequant.bin").write_bytes(blob)
    (out / "dequant.json").write_text(json.dumps({**meta, "rows": entries}, indent=1) + "\n")

    index, qblob = quantize_oracle()
    (out / "quantize.bin").write_bytes(qblob)
    (out / "quantize.json").write_text(json.dumps({**meta, **index, "seed": QUANT_SEED}, indent=1) + "\n")
    total = len(blob) + len(qblob)
    if args.ggml_src:
        cindex, cblob = ggml_c_oracle(Path(args.ggml_src), args.ggml_rev)
        (out / "quantize-ggml-c.bin").write_bytes(cblob)
        (out / "quantize-ggml-c.json").write_text(json.dumps({"generator": meta["generator"], **cindex}, indent=1) + "\n")
        total += len(cblob)
    print(f"wrote {len(entries)} dequantized rows and {len(index['outputs'])} quantized types ({total} bytes) to {out}")


if __name__ == "__main__":
    main()
