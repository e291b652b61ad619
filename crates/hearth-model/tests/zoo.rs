//! The architecture zoo (`../shared/zoo/`, see its README): tiny
//! random-weight models written by llama.cpp's architecture test generator,
//! with llama.cpp's logits for 24 tokens in three evaluation orders. Each
//! file must load and match in every order with NMSE ≤ 1e-4.
//!
//! One test per file, so each passes or fails on its own: a new
//! architecture adds one `zoo!` line.

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

fn check(stem: &str) {
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
    for mode in ["batch", "seq", "split"] {
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

zoo! {
    llama_dense => "llama-dense",
    qwen35_dense => "qwen35-dense",
    granitehybrid_dense => "granitehybrid-dense",
    qwen35moe_moe => "qwen35moe-moe",
    lfm2_dense => "lfm2-dense",
    lfm2moe_moe => "lfm2moe-moe",
    mistral3_dense => "mistral3-dense",
    granite_dense => "granite-dense",
    smollm3_dense => "smollm3-dense",
    seed_oss_dense => "seed_oss-dense",
    qwen2_dense => "qwen2-dense",
    qwen3_dense => "qwen3-dense",
    gemma_dense => "gemma-dense",
    gemma2_dense => "gemma2-dense",
    gemma3_dense => "gemma3-dense",
    phi3_dense => "phi3-dense",
    olmo2_dense => "olmo2-dense",
    glm4_dense => "glm4-dense",
    exaone4_dense => "exaone4-dense",
    starcoder2_dense => "starcoder2-dense",
    llama_moe => "llama-moe",
    gpt_oss_moe => "gpt-oss-moe",
    qwen3moe_moe => "qwen3moe-moe",
    olmoe_moe => "olmoe-moe",
    granitemoe_moe => "granitemoe-moe",
    mistral3_moe => "mistral3-moe",
    glm4moe_moe => "glm4moe-moe",
}
