//! `hearth show` and `hearth plan` on mixture-of-experts models: the
//! experts (count, used per token, shared), the active parameters, the
//! routed experts' bytes, and latent attention's cache, on the architecture
//! zoo's MoE files (`../shared/zoo`).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn hearth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running hearth")
}

/// A zoo file, or `None` after recording why it is missing.
fn zoo(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/zoo")
        .join(name);
    if p.exists() {
        Some(p)
    } else {
        hearth_testdata::unavailable(&format!("the architecture zoo's {name}"));
        None
    }
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "hearth failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn show_lists_experts_and_active_parameters() {
    let Some(path) = zoo("deepseek2-moe.gguf") else {
        return;
    };
    let path = path.to_str().expect("utf-8 path");
    let text = stdout(&hearth(&["show", path]));
    assert!(
        text.contains("    experts             2 (2 used per token, 1 shared)\n"),
        "{text}"
    );
    assert!(text.contains("    active parameters   "), "{text}");
    let v: Value = serde_json::from_str(&stdout(&hearth(&["show", "--json", path]))).expect("json");
    let e = &v["experts"];
    assert_eq!(e["count"], 2);
    assert_eq!(e["used"], 2);
    assert_eq!(e["shared"], 1);
    // Layer 1's routed experts: gate+up fused (128 × 384 × 2) and down
    // (192 × 128 × 2), with the down projection's per-expert scale and
    // input scale (2 each).
    assert_eq!(e["expert_params"], 128 * 384 * 2 + 192 * 128 * 2 + 4);
    // Every expert is used: the active parameters are all of them.
    assert_eq!(e["active_params"], e["total_params"]);
    assert_eq!(e["total_params"], v["parameters"]);
}

#[test]
fn a_dense_model_shows_no_experts() {
    let Some(path) = zoo("qwen3-dense.gguf") else {
        return;
    };
    let path = path.to_str().expect("utf-8 path");
    let text = stdout(&hearth(&["show", path]));
    assert!(!text.contains("experts"), "{text}");
    let v: Value = serde_json::from_str(&stdout(&hearth(&["show", "--json", path]))).expect("json");
    assert_eq!(v["experts"], Value::Null);
}

#[test]
fn plan_counts_every_expert_and_the_latent_cache() {
    let Some(path) = zoo("deepseek2-moe.gguf") else {
        return;
    };
    let path = path.to_str().expect("utf-8 path");
    let out = stdout(&hearth(&["plan", path, "--ctx", "256", "--json"]));
    let p: Value = serde_json::from_str(&out).expect("json");
    // Latent attention caches one row of kv_lora_rank + rope dims (512 +
    // 64) per position and layer, in f16, and no separate values.
    assert_eq!(p["kv_cache"], 2 * 256 * (512 + 64) * 2);
    // Every expert's weights are counted (different tokens choose
    // different experts); the plan says which are routed.
    let size: u64 = std::fs::metadata(path).expect("stat").len();
    let weights = p["weights"].as_u64().expect("weights");
    assert!(weights > 0 && weights < size, "{weights} of {size}");
    assert_eq!(p["experts"]["expert_bytes"], 52224 + 104448 + 8 + 8);
    assert_eq!(p["experts"]["count"], 2);
    let text = stdout(&hearth(&["plan", path, "--ctx", "256"]));
    assert!(text.contains("routed experts"), "{text}");
}
