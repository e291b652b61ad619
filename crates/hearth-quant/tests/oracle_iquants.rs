//! The i-quant, ternary and FP4 formats against the PyPI `gguf` package
//! (testdata/quant-oracle/iquants.*, made by scripts/gen-quant-oracle.py):
//!
//! - dequantization of seeded random blocks (every grid index, sign and
//!   scale bit pattern) bit for bit;
//! - dequantization of rows of the llama.cpp-quantized zoo models
//!   (`../shared/zoo/quant`, read with hearth-gguf) bit for bit (a failure
//!   under `CI=true` when the zoo is missing, a recorded skip elsewhere);
//! - every tier's dot product against the f64 dot of the dequantized rows.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use hearth_gguf::GgufFile;
use hearth_quant::{
    avx2_kernels, avx512_kernels, dequantize_row, row_bytes, scalar_kernels, vec_dot_type,
    GgmlType, Kernels,
};
use serde_json::Value;

/// The formats the oracle covers.
const TYPES: [GgmlType; 12] = [
    GgmlType::IQ2XXS,
    GgmlType::IQ2XS,
    GgmlType::IQ2S,
    GgmlType::IQ3XXS,
    GgmlType::IQ3S,
    GgmlType::IQ1S,
    GgmlType::IQ1M,
    GgmlType::IQ4NL,
    GgmlType::IQ4XS,
    GgmlType::TQ1_0,
    GgmlType::TQ2_0,
    GgmlType::MXFP4,
];

fn oracle() -> (Vec<Value>, Vec<u8>) {
    let dir = hearth_testdata::testdata_dir().join("quant-oracle");
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("iquants.json")).unwrap()).unwrap();
    let bin = std::fs::read(dir.join("iquants.dat")).unwrap();
    (index["entries"].as_array().unwrap().clone(), bin)
}

fn field(v: &Value, k: &str) -> usize {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("oracle index: no number {k:?}")) as usize
}

fn ty_of(e: &Value) -> GgmlType {
    GgmlType::from_name(e["type"].as_str().unwrap()).unwrap()
}

fn slice<'a>(bin: &'a [u8], e: &Value) -> &'a [u8] {
    let off = field(e, "offset");
    &bin[off..off + field(e, "len")]
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Panics at the first element whose bits differ (NaN equal to NaN).
fn assert_same_bits(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    let bad = got
        .iter()
        .zip(want)
        .position(|(a, b)| a.to_bits() != b.to_bits() && !(a.is_nan() && b.is_nan()));
    if let Some(i) = bad {
        panic!("{what} [{i}]: hearth {} vs gguf-py {}", got[i], want[i]);
    }
}

/// The random-block rows of one type: (type, n, bytes of each row, the
/// oracle's dequantized rows).
type RandomRows = (GgmlType, usize, Vec<Vec<u8>>, Vec<Vec<f32>>);

fn random_rows() -> Vec<RandomRows> {
    let (entries, bin) = oracle();
    let mut out = Vec::new();
    for ty in TYPES {
        let pick = |what: &str| {
            entries
                .iter()
                .find(|e| e["source"] == "random" && ty_of(e) == ty && e["what"] == what)
                .unwrap_or_else(|| panic!("oracle has no random {what} for {ty}"))
        };
        let (b, d) = (pick("bytes"), pick("dequant"));
        let (rows, n) = (field(b, "rows"), field(b, "n"));
        let rb = row_bytes(ty, n).unwrap();
        let bytes = slice(&bin, b);
        assert_eq!(bytes.len(), rows * rb, "{ty}");
        let floats = f32s(slice(&bin, d));
        out.push((
            ty,
            n,
            bytes.chunks_exact(rb).map(<[u8]>::to_vec).collect(),
            floats.chunks_exact(n).map(<[f32]>::to_vec).collect(),
        ));
    }
    out
}

#[test]
fn random_blocks_dequantize_as_gguf_py() {
    for (ty, n, rows, want) in random_rows() {
        for (r, (w, want)) in rows.iter().zip(&want).enumerate() {
            let mut got = vec![0.0f32; n];
            dequantize_row(ty, w, &mut got).unwrap();
            assert_same_bits(&got, want, &format!("{ty} random row {r}"));
        }
    }
}

fn zoo_dir() -> PathBuf {
    hearth_testdata::testdata_dir().join("../../shared/zoo/quant")
}

#[test]
fn zoo_rows_dequantize_as_gguf_py() {
    let (entries, bin) = oracle();
    let mut seen = BTreeSet::new();
    let mut current: Option<(String, GgufFile)> = None;
    for e in entries.iter().filter(|e| e["source"] != "random") {
        let file = e["source"].as_str().unwrap();
        if current.as_ref().map(|(f, _)| f.as_str()) != Some(file) {
            let path = zoo_dir().join(file);
            if !path.is_file() {
                hearth_testdata::unavailable(&format!("{} not found", path.display()));
                return;
            }
            current = Some((file.to_string(), GgufFile::open(&path).unwrap()));
        }
        let Some((_, gguf)) = current.as_ref() else {
            continue;
        };
        let name = e["tensor"].as_str().unwrap();
        let info = gguf.tensor(name).unwrap();
        let ty = ty_of(e);
        assert_eq!(info.ty, ty, "{file} {name}");
        let (row, n) = (field(e, "row"), field(e, "n"));
        let rb = row_bytes(ty, n).unwrap();
        let data = gguf.tensor_data(info);
        let mut got = vec![0.0f32; n];
        dequantize_row(ty, &data[row * rb..(row + 1) * rb], &mut got).unwrap();
        assert_same_bits(
            &got,
            &f32s(slice(&bin, e)),
            &format!("{file} {name} row {row}"),
        );
        seen.insert(ty.name());
    }
    let all: BTreeSet<_> = TYPES.iter().map(|t| t.name()).collect();
    assert_eq!(seen, all, "zoo rows checked per type");
}

/// A Q8_K or Q8_0 activation row of `n` values, quantized by `k`.
fn activations(k: &Kernels, at: GgmlType, n: usize, seed: u32) -> Vec<u8> {
    let x: Vec<f32> = (0..n)
        .map(|i| (i as f32 * 0.37 + seed as f32).sin() * 3.0)
        .collect();
    let mut a = vec![0u8; row_bytes(at, n).unwrap()];
    k.quantize_act(at, &x, &mut a);
    a
}

#[test]
fn dot_products_match_the_dequantized_dot_on_every_tier() {
    let tiers: Vec<&Kernels> = [Some(scalar_kernels()), avx2_kernels(), avx512_kernels()]
        .into_iter()
        .flatten()
        .collect();
    for (ty, n, rows, want) in random_rows() {
        let at = vec_dot_type(ty);
        // The rows with finite values (MXFP4's largest scales overflow),
        // end to end; dotted as 1, 3 and all of them.
        let finite: Vec<usize> = (0..rows.len())
            .filter(|&r| want[r].iter().all(|v| v.is_finite()))
            .collect();
        let all: Vec<u8> = finite.iter().flat_map(|&r| rows[r].clone()).collect();
        let wf: Vec<f32> = finite.iter().flat_map(|&r| want[r].clone()).collect();
        for k in &tiers {
            for len in [n, 3 * n, finite.len() * n] {
                let len = len.min(wf.len());
                let w = &all[..row_bytes(ty, len).unwrap()];
                let a = activations(k, at, len, len as u32);
                let mut af = vec![0.0f32; len];
                dequantize_row(at, &a, &mut af).unwrap();
                let exact: f64 = wf[..len]
                    .iter()
                    .zip(&af)
                    .map(|(&x, &y)| f64::from(x) * f64::from(y))
                    .sum();
                let scale: f64 = wf[..len]
                    .iter()
                    .zip(&af)
                    .map(|(&x, &y)| (f64::from(x) * f64::from(y)).abs())
                    .sum();
                let got = k.vec_dot(ty, len, w, &a);
                let err = (f64::from(got) - exact).abs();
                assert!(
                    err <= 1e-5 * scale + 1e-30,
                    "{:?} {ty} n={len}: dot {got} vs dequantized {exact} (Σ|w·a| {scale:e})",
                    k.isa
                );
            }
        }
    }
}
