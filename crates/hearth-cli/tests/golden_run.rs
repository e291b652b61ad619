//! `hearth run MODEL --raw --temperature 0 -n 32 PROMPT` against llama.cpp's
//! greedy generations: the first 8 tokens must match on at least 8 of the
//! 10 golden prompts, for each model.

use std::process::Command;

use hearth_testdata::{golden_json, model, RealModel};

fn check(m: RealModel) {
    let _serial = hearth_testdata::exclusive();
    let Some(path) = model(m) else { return };
    let golden = golden_json(m, "greedy.json");
    let mut matched = 0;
    let mut report = Vec::new();
    let results = golden["results"].as_array().expect("results");
    for (i, r) in results.iter().enumerate() {
        let prompt = r["prompt"].as_str().expect("prompt");
        let steps = r["steps"].as_array().expect("steps");
        // Bytes of the first 8 generated tokens (EOG tokens render as nothing).
        let want_bytes: Vec<u8> = steps
            .iter()
            .take(8)
            .flat_map(|s| s["bytes"].as_array().expect("bytes").iter())
            .map(|b| b.as_u64().expect("byte") as u8)
            .collect();
        let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args([
                "run",
                path.to_str().expect("utf-8 path"),
                "--raw",
                "--temperature",
                "0",
                "-n",
                "32",
                "-t",
                "2",
            ])
            .arg(prompt)
            .output()
            .expect("running hearth");
        assert!(
            out.status.success(),
            "prompt {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ok = out.stdout.starts_with(&want_bytes);
        if ok {
            matched += 1;
        }
        report.push(format!(
            "prompt {i}: {} want {:?} got {:?}",
            if ok { "ok " } else { "DIFF" },
            String::from_utf8_lossy(&want_bytes),
            String::from_utf8_lossy(&out.stdout[..out.stdout.len().min(want_bytes.len() + 20)])
        ));
    }
    eprintln!(
        "{m:?}: {matched}/{} prompts match the first 8 tokens\n{}",
        results.len(),
        report.join("\n")
    );
    assert!(
        matched >= 8,
        "{m:?}: only {matched} of {} prompts match",
        results.len()
    );
}

#[test]
fn smollm2_free_running_greedy() {
    check(RealModel::SmolLm2);
}

#[test]
fn gemma3_free_running_greedy() {
    check(RealModel::Gemma3);
}
