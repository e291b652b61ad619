//! Tokenization speed (a benchmark: `cargo test --release -p
//! hearth-tokenizer --test bench -- --ignored --nocapture`). Timings are
//! printed, never asserted.
//!
//! Each tokenizer encodes the GPL-3 text of the golden data (35 kB of
//! English) and a multilingual mixture, a few times; the best time is
//! reported. The real models come from the model cache, the vocabulary-only
//! files from `../shared/vocab`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hearth_gguf::GgufFile;
use hearth_tokenizer::Tokenizer;

const ROUNDS: usize = 5;

fn texts() -> Vec<(&'static str, String)> {
    let gpl = hearth_testdata::testdata_dir().join("golden/texts/GPL-3.txt");
    let gpl = std::fs::read_to_string(&gpl).unwrap_or_else(|e| panic!("{}: {e}", gpl.display()));
    let mixed = [
        "Der schnelle braune Fuchs springt über den faulen Hund. ",
        "Быстрая коричневая лиса перепрыгивает через ленивую собаку. ",
        "敏捷的棕色狐狸跳过了懒狗。素早い茶色の狐がのろまな犬を飛び越える。",
        "빠른 갈색 여우가 게으른 개를 뛰어넘는다. 🦊🐕 ",
        "fn main() {\n    let x = vec![1, 2, 3];\n    println!(\"{x:?}\");\n}\n",
    ]
    .concat()
    .repeat(60);
    vec![("GPL-3", gpl), ("mixed", mixed)]
}

fn bench(name: &str, path: PathBuf) {
    let file = GgufFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let t0 = Instant::now();
    let tok = Tokenizer::from_gguf(&file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let load = t0.elapsed();
    let mut line = format!("{name:<16} load {:>7.1} ms", load.as_secs_f64() * 1e3);
    for (label, text) in texts() {
        let mut best = Duration::MAX;
        let mut n = 0;
        for _ in 0..ROUNDS {
            let t = Instant::now();
            n = tok.encode(&text, true, false).len();
            best = best.min(t.elapsed());
        }
        let mb_s = text.len() as f64 / best.as_secs_f64() / 1e6;
        line.push_str(&format!("  {label} {n:>6} tok {mb_s:>6.2} MB/s"));
    }
    eprintln!("{line}");
}

#[test]
#[ignore = "benchmark"]
fn tokenize_speed() {
    for (name, file) in [
        ("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
        ("gemma3", "gemma-3-270m-q4_k_m.gguf"),
    ] {
        if let Some(p) = hearth_testdata::model_file(file) {
            bench(name, p);
        }
    }
    let dir = hearth_testdata::testdata_dir().join("../../shared/vocab");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        hearth_testdata::unavailable(&format!("{} not found", dir.display()));
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "gguf"))
        .collect();
    files.sort();
    for p in files {
        let name = p
            .file_stem()
            .map(|s| {
                s.to_string_lossy()
                    .trim_start_matches("ggml-vocab-")
                    .to_string()
            })
            .unwrap_or_default();
        // A vocabulary this build cannot load is reported, not benchmarked.
        match GgufFile::open(&p).map_err(|e| e.to_string()).and_then(|f| {
            Tokenizer::from_gguf(&f)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }) {
            Ok(()) => bench(&name, p),
            Err(e) => eprintln!("{name:<16} not loadable: {e}"),
        }
    }
}
