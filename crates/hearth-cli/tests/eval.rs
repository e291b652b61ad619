//! `hearth eval`: the logits of every position in the zoo files' JSON shape,
//! the three evaluation orders agreeing (bit for bit with --deterministic),
//! and clear errors for bad token lists.

use std::path::{Path, PathBuf};

use hearth_model::synth::{build, SynthSpec};
use hearth_model::Arch;
use serde_json::Value;

fn synth_model(tag: &str, arch: Arch) -> (PathBuf, PathBuf) {
    let d = std::env::temp_dir().join(format!("hearth-eval-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    let p = d.join(format!("{}.gguf", arch.name()));
    std::fs::write(&p, build(&SynthSpec::new(arch))).expect("writing the model");
    (d, p)
}

mod common;
use common::hearth;

/// The logits rows of `hearth eval --json` (failing the test on any error).
fn eval(model: &Path, tokens: &str, mode: &str, extra: &[&str]) -> (usize, Vec<Vec<f32>>) {
    let m = model.to_str().expect("utf-8 path");
    let args = [
        &[
            "eval", m, "--tokens", tokens, "--mode", mode, "--json", "-t", "2",
        ],
        extra,
    ]
    .concat();
    let o = hearth(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    let n_vocab = v["n_vocab"].as_u64().expect("n_vocab") as usize;
    let rows = v["logits"]
        .as_array()
        .expect("logits")
        .iter()
        .map(|r| {
            r.as_array()
                .expect("a row")
                .iter()
                .map(|x| x.as_f64().expect("a finite logit") as f32)
                .collect()
        })
        .collect();
    (n_vocab, rows)
}

/// llama.cpp's test metric: Σ (a − b)² / Σ b².
fn nmse(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (ra, rb) in a.iter().zip(b) {
        for (x, y) in ra.iter().zip(rb) {
            num += f64::from(x - y).powi(2);
            den += f64::from(*y).powi(2);
        }
    }
    num / den
}

#[test]
fn every_position_in_three_orders() {
    let tokens = "1,5,9,2,7,3,11,4,6,8";
    for arch in [Arch::Llama, Arch::Gemma3] {
        let (dir, m) = synth_model(&format!("orders-{}", arch.name()), arch);
        let (n_vocab, batch) = eval(&m, tokens, "batch", &[]);
        assert_eq!(batch.len(), 10, "{arch:?}: one row per token");
        assert!(
            batch.iter().all(|r| r.len() == n_vocab),
            "{arch:?}: rows of n_vocab"
        );
        for mode in ["seq", "split"] {
            let (_, rows) = eval(&m, tokens, mode, &[]);
            let e = nmse(&rows, &batch);
            eprintln!("{arch:?} {mode} vs batch: NMSE {e:.3e}");
            assert!(e < 1e-4, "{arch:?} {mode}: NMSE {e}");
        }
        // Batch-invariant kernels: the three orders give the same bits.
        let (_, det) = eval(&m, tokens, "batch", &["--deterministic"]);
        for mode in ["seq", "split"] {
            assert_eq!(
                eval(&m, tokens, mode, &["--deterministic"]).1,
                det,
                "{arch:?} {mode}"
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn bad_token_lists_are_clear_errors() {
    let (dir, m) = synth_model("bad", Arch::Llama);
    let m = m.to_str().expect("utf-8 path");
    let o = hearth(&["eval", m, "--tokens", "1,99999999"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("outside the vocabulary"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for bad in [
        &["eval", m][..],
        &["eval", m, "--tokens", "x,1"],
        &["eval", m, "--tokens", "-3"],
    ] {
        let o = hearth(bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {o:?}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
