//! hearth-quant against the oracle files of testdata/quant-oracle (made by
//! scripts/gen-quant-oracle.py with the PyPI `gguf` package):
//!
//! - reference quantizers byte for byte on a seeded random array, against
//!   gguf-py (F16, BF16 and the 32-element formats; K-quants are covered by
//!   the round-trip error budgets of ggml_budgets.rs);
//! - dequantization of real model rows, read with hearth-gguf, against
//!   `gguf.quants.dequantize` of the same rows (needs the models; skipped
//!   when they are missing, unless `CI=true`).

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use hearth_gguf::GgufFile;
use hearth_quant::{dequantize_row, kernels, quantize_row, row_bytes, GgmlType};
use serde_json::Value;

fn oracle_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/quant-oracle")
}

fn read_index(name: &str) -> Value {
    let text = std::fs::read_to_string(oracle_dir().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn read_bin(name: &str) -> Vec<u8> {
    std::fs::read(oracle_dir().join(name)).unwrap()
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn field(v: &Value, k: &str) -> usize {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("oracle index: no number {k:?}")) as usize
}

/// Checks `quantize_row` (and the dispatched `quantize_act` for activation
/// formats) against every output of one quantize oracle; returns the types.
fn check_quantize_oracle(json: &str, bin: &str) -> Vec<String> {
    let index = read_index(json);
    let bin = read_bin(bin);
    let (rows, n) = (field(&index, "rows"), field(&index, "n"));
    let start = field(&index, "input_offset");
    let input = f32s(&bin[start..start + field(&index, "input_len")]);
    assert_eq!(input.len(), rows * n);
    let mut types = Vec::new();
    for out in index["outputs"].as_array().unwrap() {
        let name = out["type"].as_str().unwrap();
        let ty = GgmlType::from_name(name).unwrap();
        let off = field(out, "offset");
        let want = &bin[off..off + field(out, "len")];
        let rb = row_bytes(ty, n).unwrap();
        assert_eq!(want.len(), rows * rb, "{name}");
        for (r, (x, want)) in input.chunks_exact(n).zip(want.chunks_exact(rb)).enumerate() {
            let mut got = vec![0u8; rb];
            quantize_row(ty, x, &mut got).unwrap();
            let first = got.iter().zip(want).position(|(a, b)| a != b);
            assert!(
                first.is_none(),
                "{json}: {name} row {r}: first differing byte at {first:?}"
            );
            // Activation quantizers that follow the reference rule: every
            // tier's Q8_K (the Q8_0/Q8_1 ones of every tier follow ggml's
            // x86 rule, tested in simd.rs).
            if ty == GgmlType::Q8K {
                let k = kernels();
                k.quantize_act(ty, x, &mut got);
                assert_eq!(got, want, "{name} row {r} via {:?} quantize_act", k.isa);
            }
        }
        types.push(name.to_string());
    }
    types
}

#[test]
fn reference_quantizers_match_gguf_py_bytes() {
    let types = check_quantize_oracle("quantize.json", "quantize.dat");
    assert_eq!(types.len(), 7, "{types:?}");
}

#[test]
fn dequantization_matches_gguf_py_on_real_model_rows() {
    let index = read_index("dequant.json");
    let bin = f32s(&read_bin("dequant.dat"));
    let rows = index["rows"].as_array().unwrap();
    let mut current: Option<(String, GgufFile)> = None;
    let mut checked = 0;
    for e in rows {
        let model = e["model"].as_str().unwrap();
        if current.as_ref().map(|(m, _)| m.as_str()) != Some(model) {
            let Some(path) = hearth_testdata::model_file(model) else {
                current = None;
                continue;
            };
            current = Some((model.to_string(), GgufFile::open(&path).unwrap()));
        }
        let Some((_, file)) = current.as_ref() else {
            continue;
        };
        let name = e["tensor"].as_str().unwrap();
        let info = file
            .tensor(name)
            .unwrap_or_else(|| panic!("{model}: no tensor {name}"));
        assert_eq!(info.ty.name(), e["type"].as_str().unwrap(), "{name}");
        let (row, n, off) = (field(e, "row"), field(e, "n"), field(e, "offset"));
        assert_eq!(info.dims[0] as usize, n, "{name}");
        let rb = row_bytes(info.ty, n).unwrap();
        let data = file.tensor_data(info);
        let mut got = vec![0.0f32; n];
        dequantize_row(info.ty, &data[row * rb..(row + 1) * rb], &mut got).unwrap();
        let want = &bin[off..off + n];
        let bad = got
            .iter()
            .zip(want)
            .position(|(a, b)| a.to_bits() != b.to_bits());
        if let Some(i) = bad {
            panic!(
                "{model} {name} row {row} [{i}]: hearth {} vs gguf-py {}",
                got[i], want[i]
            );
        }
        checked += 1;
    }
    eprintln!(
        "{checked} of {} oracle rows checked bit for bit",
        rows.len()
    );
}
