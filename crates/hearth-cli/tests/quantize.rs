//! `hearth quantize` end to end on a small synthetic F32 model: the mix's
//! types land in the file, the result runs, and every refusal (a type that
//! needs an importance matrix, requantizing, an unknown type, the input as
//! output) is a clear error that leaves no output behind.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

use hearth_gguf::{GgmlType, GgufFile};
use hearth_model::synth::{build, SynthSpec};
use hearth_model::Arch;

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hearth-quantize-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn f32_model(dir: &Path) -> PathBuf {
    let mut spec = SynthSpec::new(Arch::Llama);
    spec.n_embd = 256;
    spec.n_ff = 512;
    spec.weight_type = GgmlType::F32;
    let p = dir.join("model-f32.gguf");
    std::fs::write(&p, build(&spec)).expect("writing the model");
    p
}

mod common;
use common::hearth;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn assert_refused(o: &Output, needle: &str) {
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "expected exit 1: {e}");
    assert!(!e.contains("panicked"), "panic: {e}");
    assert!(
        e.contains(needle),
        "stderr does not mention {needle:?}: {e}"
    );
}

/// The files in `dir` (to see that a failure left nothing behind).
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("listing")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn quantize_q4_k_m_writes_the_mix_and_runs() {
    let dir = temp_dir("mix");
    let input = f32_model(&dir);
    let out = dir.join("model-q4km.gguf");
    let o = hearth(&["quantize", s(&input), s(&out), "Q4_K_M"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("as Q4_K_M"), "{stdout}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("blk.0.attn_q.weight") && stderr.contains("Q4_K"),
        "progress: {stderr}"
    );

    let f = GgufFile::open(&out).expect("the output is a GGUF file");
    assert_eq!(f.get_u64("general.file_type").unwrap(), 15);
    assert_eq!(f.get_u64("general.quantization_version").unwrap(), 2);
    let ty = |n: &str| f.tensor(n).unwrap_or_else(|| panic!("no {n}")).ty;
    assert_eq!(ty("blk.0.attn_q.weight"), GgmlType::Q4K);
    assert_eq!(ty("blk.0.attn_norm.weight"), GgmlType::F32);
    // Q4_K_M gives the last layers' attn_v and ffn_down six bits.
    assert_eq!(ty("blk.1.attn_v.weight"), GgmlType::Q6K);
    assert_eq!(ty("blk.1.ffn_down.weight"), GgmlType::Q6K);
    assert_eq!(files(&dir), ["model-f32.gguf", "model-q4km.gguf"]);

    let e = hearth(&["eval", s(&out), "--tokens", "1,2,3", "--json"]);
    assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
    let v: serde_json::Value = serde_json::from_slice(&e.stdout).expect("json logits");
    assert_eq!(v["logits"].as_array().map(Vec::len), Some(3));

    // Already quantized: refused unless asked for.
    let again = dir.join("again.gguf");
    let o = hearth(&["quantize", s(&out), s(&again), "Q4_0"]);
    assert_refused(&o, "--allow-requantize");
    assert!(!again.exists());
    let o = hearth(&["quantize", s(&out), s(&again), "Q4_0", "--allow-requantize"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let g = GgufFile::open(&again).expect("requantized file");
    assert_eq!(
        g.tensor("blk.0.attn_q.weight").map(|t| t.ty),
        Some(GgmlType::Q4_0)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refusals_leave_no_output() {
    let dir = temp_dir("refuse");
    let input = f32_model(&dir);
    let out = dir.join("out.gguf");
    let o = hearth(&["quantize", s(&input), s(&out), "Q2_K_S"]);
    assert_refused(&o, "needs an importance matrix");
    let o = hearth(&["quantize", s(&input), s(&out), "Q9_9"]);
    assert_refused(&o, "Q4_K_M");
    let o = hearth(&["quantize", s(&input), s(&input), "Q8_0"]);
    assert_refused(&o, "the same file");
    let o = hearth(&[
        "quantize",
        s(&input),
        s(&out),
        "Q8_0",
        "--imatrix",
        s(&input),
    ]);
    assert_refused(&o, "not an importance matrix");
    assert_eq!(files(&dir), ["model-f32.gguf"]);
    let _ = std::fs::remove_dir_all(&dir);
}
