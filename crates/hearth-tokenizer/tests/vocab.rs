//! Tokenizer cases for llama.cpp's vocabulary-only GGUFs
//! (`../shared/vocab/ggml-vocab-*.gguf`): every case of every vocabulary
//! must give exactly llama.cpp's ids, and its detokenization llama.cpp's
//! text.
//!
//! Two sets of cases per vocabulary, both in the format of llama.cpp's
//! `test-tokenizer-0` (an `.inp` file of input strings separated by the line
//! `__ggml_vocab_test__` — the separator is `"\n__ggml_vocab_test__\n"`, so
//! a case's own trailing newline is kept — and an `.out` file with one line
//! of space-separated ids per case), tokenized with `add_special` and
//! `parse_special` off:
//!
//! - llama.cpp's own cases, beside the vocabularies in `../shared/vocab`
//!   (`ggml-vocab-nomic-bert-moe` has none);
//! - the recorded cases in `testdata/vocab` (see the README there): the
//!   inputs of `tools/compare/vocab_inputs.py` with the ids llama.cpp gives,
//!   and, for the same inputs with `add_special` and `parse_special` on, the
//!   ids and both detokenizations (special tokens rendered and not).

use std::path::{Path, PathBuf};

use hearth_gguf::GgufFile;
use hearth_tokenizer::Tokenizer;
use serde_json::Value;

const SEP: &str = "\n__ggml_vocab_test__\n";

fn shared_vocab_dir() -> PathBuf {
    hearth_testdata::testdata_dir().join("../../shared/vocab")
}

fn recorded_dir() -> PathBuf {
    hearth_testdata::testdata_dir().join("vocab")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The input strings of a test-tokenizer-0 `.inp` file.
fn read_inputs(inp: &Path) -> Vec<String> {
    let raw = read(inp);
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
    inputs
}

/// The cases of an `.inp`/`.out` pair, in file order.
fn read_cases(inp: &Path, out: &Path) -> Vec<(String, Vec<u32>)> {
    let inputs = read_inputs(inp);
    let outputs = read(out);
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

fn ids_of(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("ids")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

/// Checks the cases with `add_special` and `parse_special` off; returns the
/// failures.
fn check_plain(tok: &Tokenizer, cases: &[(String, Vec<u32>)]) -> Vec<String> {
    let mut failures = Vec::new();
    for (text, want) in cases {
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
    failures
}

/// Checks the recorded `add_special`/`parse_special` cases: ids and both
/// detokenizations. Returns the number of cases and the failures.
fn check_special(tok: &Tokenizer, inputs: &[String], jsonl: &Path) -> (usize, Vec<String>) {
    let text = read(jsonl);
    let mut lines = text.lines();
    let header: Value = serde_json::from_str(lines.next().expect("header")).expect("header");
    assert_eq!(header["add_special"], true);
    assert_eq!(header["parse_special"], true);
    let cases: Vec<Value> = lines
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}", jsonl.display())))
        .collect();
    assert_eq!(cases.len(), inputs.len(), "{}", jsonl.display());
    let mut failures = Vec::new();
    for (input, case) in inputs.iter().zip(&cases) {
        let want = ids_of(&case["ids"]);
        let got = tok.encode(input, true, true);
        if got != want {
            failures.push(format!("{input:?} (special): got {got:?}, want {want:?}"));
            continue;
        }
        let special = case["special"].as_str().expect("special");
        let plain = case["plain"].as_str().unwrap_or(special);
        for (render, text) in [(true, special), (false, plain)] {
            let decoded = tok.decode(&want, render);
            if decoded != text {
                failures.push(format!(
                    "{input:?}: decode(render_special = {render}) = {decoded:?}, want {text:?}"
                ));
            }
        }
    }
    (cases.len(), failures)
}

/// Loads `ggml-vocab-NAME.gguf` and checks every case there is for it.
fn check(name: &str) {
    let base = format!("ggml-vocab-{name}.gguf");
    let path = shared_vocab_dir().join(&base);
    if !path.is_file() {
        hearth_testdata::unavailable(&format!("{} not found", path.display()));
        return;
    }
    let file = GgufFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let tok = Tokenizer::from_gguf(&file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));

    let mut report = Vec::new();
    let mut failures = Vec::new();
    let upstream_inp = shared_vocab_dir().join(format!("{base}.inp"));
    if upstream_inp.is_file() {
        let cases = read_cases(
            &upstream_inp,
            &shared_vocab_dir().join(format!("{base}.out")),
        );
        failures.extend(check_plain(&tok, &cases));
        report.push(format!("{} llama.cpp cases", cases.len()));
    }
    let inputs_inp = recorded_dir().join("inputs.inp");
    let cases = read_cases(&inputs_inp, &recorded_dir().join(format!("{base}.out")));
    failures.extend(check_plain(&tok, &cases));
    report.push(format!("{} recorded cases", cases.len()));
    let inputs = read_inputs(&inputs_inp);
    let jsonl = recorded_dir().join(format!("ggml-vocab-{name}.special.jsonl"));
    let (n, f) = check_special(&tok, &inputs, &jsonl);
    failures.extend(f);
    report.push(format!(
        "{n} recorded cases with special tokens and detokenization"
    ));

    eprintln!("{name}: {}; {} failures", report.join(", "), failures.len());
    assert!(
        failures.is_empty(),
        "{name}: {} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn llama_bpe() {
    check("llama-bpe");
}

#[test]
fn qwen2() {
    check("qwen2");
}

#[test]
fn qwen35() {
    check("qwen35");
}

#[test]
fn phi_3() {
    check("phi-3");
}

#[test]
fn gemma_4() {
    check("gemma-4");
}

#[test]
fn deepseek_llm() {
    check("deepseek-llm");
}

#[test]
fn deepseek_coder() {
    check("deepseek-coder");
}

#[test]
fn falcon() {
    check("falcon");
}

#[test]
fn gpt_2() {
    check("gpt-2");
}

#[test]
fn starcoder() {
    check("starcoder");
}

#[test]
fn llama_spm() {
    check("llama-spm");
}

#[test]
fn bert_bge() {
    check("bert-bge");
}

#[test]
fn nomic_bert_moe() {
    check("nomic-bert-moe");
}
