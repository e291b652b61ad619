//! `hearth perplexity MODEL GPL-3.txt --ctx 512` within 1 % of llama.cpp's figure.

use std::process::Command;

use hearth_testdata::{golden_json, model, testdata_dir, RealModel};

fn check(m: RealModel) {
    let _serial = hearth_testdata::exclusive();
    let Some(path) = model(m) else { return };
    let golden = golden_json(m, "perplexity.json");
    let want = golden["ppl"].as_f64().expect("ppl");
    let text = testdata_dir().join("golden/texts/GPL-3.txt");
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args([
            "perplexity",
            path.to_str().expect("path"),
            text.to_str().expect("path"),
            "--ctx",
            "512",
            "-t",
            "2",
        ])
        .output()
        .expect("running hearth");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Final estimate"))
        .expect("final estimate line");
    let got: f64 = line
        .split("PPL = ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("PPL value");
    let rel = (got - want).abs() / want;
    eprintln!(
        "{m:?}: hearth PPL {got:.4}, llama.cpp {want:.4}, difference {:.3}%",
        rel * 100.0
    );
    assert!(
        rel <= 0.01,
        "{m:?}: PPL {got} vs {want} ({:.2}% off)",
        rel * 100.0
    );
    // The running estimates are printed per chunk, as llama.cpp does.
    let n_chunks = golden["n_chunks"].as_u64().expect("n_chunks") as usize;
    assert_eq!(stdout.matches('[').count(), n_chunks);
}

#[test]
fn smollm2_perplexity_matches_llama_cpp() {
    check(RealModel::SmolLm2);
}

#[test]
fn gemma3_perplexity_matches_llama_cpp() {
    check(RealModel::Gemma3);
}
