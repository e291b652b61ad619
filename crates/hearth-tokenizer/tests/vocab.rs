//! llama.cpp's tokenizer test cases (`ggml-vocab-*.gguf` with `.inp`/`.out`
//! beside them, in `../shared/vocab`): every case of every vocabulary must
//! give exactly llama.cpp's ids.
//!
//! The case format is llama.cpp's `test-tokenizer-0`: the `.inp` file holds
//! the input strings separated by the line `__ggml_vocab_test__` (the
//! separator is `"\n__ggml_vocab_test__\n"`, so a case's own trailing newline
//! is kept), the `.out` file one line of space-separated ids per case.
//! Tokenization is with `add_special = false` and `parse_special = false`,
//! as there. Cases are keyed by their text, so a repeated text counts once.
//!
//! `ggml-vocab-nomic-bert-moe.gguf` comes without cases; its cases are in
//! `testdata/vocab/` (same inputs as the others plus XLM-R specific ones,
//! ids written by llama.cpp; see the README there).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hearth_gguf::GgufFile;
use hearth_tokenizer::Tokenizer;

const SEP: &str = "\n__ggml_vocab_test__\n";

fn shared_vocab_dir() -> PathBuf {
    hearth_testdata::testdata_dir().join("../../shared/vocab")
}

/// The cases of a `.inp`/`.out` pair, keyed by input text.
fn read_cases(inp: &Path, out: &Path) -> BTreeMap<String, Vec<u32>> {
    let raw = std::fs::read(inp).unwrap_or_else(|e| panic!("{}: {e}", inp.display()));
    let raw = String::from_utf8(raw).unwrap_or_else(|e| panic!("{}: {e}", inp.display()));
    let mut inputs = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        match raw[pos..].find(SEP) {
            Some(p) => {
                inputs.push(raw[pos..pos + p].to_string());
                pos += p + SEP.len();
            }
            None => {
                inputs.push(raw[pos..].to_string());
                break;
            }
        }
    }
    let outputs = std::fs::read_to_string(out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    let outputs: Vec<&str> = outputs.lines().collect();
    assert_eq!(
        inputs.len(),
        outputs.len(),
        "{}: {} inputs but {} output lines",
        inp.display(),
        inputs.len(),
        outputs.len()
    );
    inputs
        .into_iter()
        .zip(outputs)
        .map(|(text, line)| {
            let ids = line
                .split_whitespace()
                .map(|t| {
                    t.parse()
                        .unwrap_or_else(|e| panic!("{}: id {t:?}: {e}", out.display()))
                })
                .collect();
            (text, ids)
        })
        .collect()
}

/// Loads `name` from `dir` and checks every case in `cases_dir`; returns the
/// number of cases checked, or `None` when the vocabulary is not there.
fn check(name: &str, cases_dir: &Path) -> Option<usize> {
    let dir = shared_vocab_dir();
    let path = dir.join(format!("ggml-vocab-{name}.gguf"));
    if !path.is_file() {
        hearth_testdata::unavailable(&format!("{} not found", path.display()));
        return None;
    }
    let file = GgufFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let tok = Tokenizer::from_gguf(&file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let base = format!("ggml-vocab-{name}.gguf");
    let cases = read_cases(
        &cases_dir.join(format!("{base}.inp")),
        &cases_dir.join(format!("{base}.out")),
    );
    assert!(!cases.is_empty(), "{name}: no cases");
    let mut failures = Vec::new();
    for (text, want) in &cases {
        let got = tok.encode(text, false, false);
        if &got != want {
            let piece = |ids: &[u32]| -> Vec<String> {
                ids.iter()
                    .map(|&id| String::from_utf8_lossy(tok.token_piece(id)).into_owned())
                    .collect()
            };
            failures.push(format!(
                "{text:?}\n   got  {got:?} {:?}\n   want {want:?} {:?}",
                piece(&got),
                piece(want)
            ));
        }
    }
    eprintln!(
        "{name}: {} of {} cases match",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{name}: {} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    Some(cases.len())
}

fn check_shared(name: &str) {
    check(name, &shared_vocab_dir());
}

#[test]
fn llama_bpe() {
    check_shared("llama-bpe");
}

#[test]
fn qwen2() {
    check_shared("qwen2");
}

#[test]
fn qwen35() {
    check_shared("qwen35");
}

#[test]
fn phi_3() {
    check_shared("phi-3");
}

#[test]
fn gemma_4() {
    check_shared("gemma-4");
}

#[test]
fn deepseek_llm() {
    check_shared("deepseek-llm");
}

#[test]
fn deepseek_coder() {
    check_shared("deepseek-coder");
}

#[test]
fn falcon() {
    check_shared("falcon");
}

#[test]
fn gpt_2() {
    check_shared("gpt-2");
}

#[test]
fn starcoder() {
    check_shared("starcoder");
}

#[test]
fn llama_spm() {
    check_shared("llama-spm");
}

#[test]
fn bert_bge() {
    check_shared("bert-bge");
}
