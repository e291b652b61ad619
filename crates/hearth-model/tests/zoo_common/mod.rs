//! What the zoo tests share: evaluating a zoo file in the orders its JSON
//! has logits for and comparing with llama.cpp's (NMSE ≤ 1e-4), and the
//! `zoo!` macro that makes one test per file.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use hearth_model::{KvType, Logits, Model, State};
use hearth_ops::ThreadPool;

/// llama.cpp's `test-llama-archs` threshold.
const MAX_NMSE: f64 = 1e-4;

fn zoo_dir() -> PathBuf {
    hearth_testdata::testdata_dir().join("../../shared/zoo")
}

/// `Σ (a − b)² / Σ b²` over every position and vocabulary entry.
fn nmse(got: &[f32], want: &[f32]) -> f64 {
    let (mut num, mut den) = (0f64, 0f64);
    for (&a, &b) in got.iter().zip(want) {
        num += (a as f64 - b as f64).powi(2);
        den += (b as f64).powi(2);
    }
    num / den
}

/// Logits of every position, evaluated as `mode` says: `batch` all at
/// once, `seq` one token at a time, `split` the first half at once and the
/// rest one at a time.
fn eval(m: &Model, tokens: &[u32], mode: &str) -> Vec<f32> {
    let pool = Arc::new(ThreadPool::new(2));
    let mut st = State::new(m, 256, KvType::F16, pool);
    let mut out = Vec::new();
    let split = match mode {
        "batch" => tokens.len(),
        "seq" => 0,
        "split" => tokens.len() / 2,
        other => panic!("unknown mode {other}"),
    };
    if split > 0 {
        out.extend_from_slice(m.forward(&mut st, &tokens[..split], Logits::All).unwrap());
    }
    for &t in &tokens[split..] {
        out.extend_from_slice(m.forward(&mut st, &[t], Logits::All).unwrap());
    }
    out
}

pub fn check(stem: &str) {
    let dir = zoo_dir();
    let (gguf, json) = (
        dir.join(format!("{stem}.gguf")),
        dir.join(format!("{stem}.json")),
    );
    if !gguf.is_file() || !json.is_file() {
        hearth_testdata::unavailable(&format!("zoo file {} not found", gguf.display()));
        return;
    }
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let tokens: Vec<u32> = want["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect();
    let m = Model::load(&gguf).unwrap_or_else(|e| panic!("{stem}: {e}"));
    // Every order the file has logits for; the architecture files have all
    // three, the block-format files `batch` and `seq`.
    let modes: Vec<String> = want["modes"].as_object().unwrap().keys().cloned().collect();
    for need in ["batch", "seq"] {
        assert!(modes.iter().any(|m| m == need), "{stem}: no {need} logits");
    }
    for mode in &modes {
        let mode = mode.as_str();
        let w = &want["modes"][mode];
        assert_eq!(w["n_vocab"].as_u64().unwrap() as usize, m.config.n_vocab);
        let w: Vec<f32> = w["logits"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32)
            })
            .collect();
        let got = eval(&m, &tokens, mode);
        assert_eq!(got.len(), w.len(), "{stem} {mode}");
        let e = nmse(&got, &w);
        eprintln!("{stem} {mode}: NMSE {e:.3e}");
        assert!(e <= MAX_NMSE, "{stem} {mode}: NMSE {e:.3e} > {MAX_NMSE:e}");
    }
}

macro_rules! zoo {
    ($($name:ident => $stem:literal,)*) => {
        $(
            #[test]
            fn $name() {
                check($stem);
            }
        )*
    };
}
