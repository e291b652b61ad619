//! Ingest speed and query latency with the real embedding model
//! (all-minilm), run by scripts/rag-bench.sh: the evaluation corpus
//! (`testdata/rag/eval/docs`, real Debian documentation) cut to about 100
//! chunks, and for about 10,000 chunks the folder of distinct documents
//! the script gathers from the machine's Debian documentation and names
//! in `HEARTH_RAG_BENCH_CORPUS` (without it, the evaluation corpus copied
//! 17 times, each copy's files starting with a line naming the copy, so
//! every file is new to the knowledge base). Reports chunks/s of `ingest::add` (extraction, chunking,
//! embedding and storage together) and p50/p95 of `search::query` (the
//! question embedded, BM25, the int8 scan or HNSW, exact rescoring,
//! fusion, abstention) over the evaluation questions. Printed, not
//! asserted: `#[ignore]`, a benchmark rather than a test.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use hearth_rag::{ingest, search, Kb, Limits, ModelEmbedder, DEFAULT_EMBED_MODEL};
use hearth_testdata::model_file;
use serde_json::Value;

/// Copies the corpus `copies` times into `dst` (plain text and Markdown
/// files as they are; the laid-out PDF and DOCX ones are the eval test's
/// business). With `max_files`, only the first that many files.
fn corpus(src: &Path, dst: &Path, copies: usize, max_files: Option<usize>) -> usize {
    let mut names: Vec<_> = std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names.truncate(max_files.unwrap_or(usize::MAX));
    let mut n = 0;
    for c in 0..copies {
        let dir = dst.join(format!("copy{c}"));
        std::fs::create_dir_all(&dir).unwrap();
        for p in &names {
            let name = p.file_name().unwrap().to_string_lossy();
            let text = std::fs::read_to_string(p).unwrap();
            // `x.pdf.txt` stays a text file here.
            let out = dir.join(name.as_ref());
            let first = if name.ends_with(".csv") || name.ends_with(".html") {
                String::new()
            } else {
                format!("Copy {c} of {name}.\n\n")
            };
            std::fs::write(out, format!("{first}{text}")).unwrap();
            n += 1;
        }
    }
    n
}

/// Files under `dir`, at any depth.
fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { count_files(&p) } else { 1 })
        .sum()
}

/// Where the documents come from: the evaluation corpus (cut or copied),
/// or a folder of other documents, read where it is.
enum Source {
    Eval {
        copies: usize,
        max_files: Option<usize>,
    },
    Folder(std::path::PathBuf),
}

fn measure(emb: &ModelEmbedder, label: &str, source: Source) {
    let data = hearth_testdata::testdata_dir().join("rag/eval");
    let tmp = std::env::temp_dir().join(format!("hearth-rag-bench-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let (files, docs) = match source {
        Source::Eval { copies, max_files } => (
            corpus(&data.join("docs"), &tmp.join("docs"), copies, max_files),
            [tmp.join("docs")],
        ),
        Source::Folder(dir) => (count_files(&dir), [dir]),
    };
    let mut kb = Kb::create(&tmp.join("bench.kb"), emb).unwrap();
    let add = |kb: &mut Kb| {
        // A line every 1,000 chunks, so a long run shows its rate early.
        let mut shown = 0;
        ingest::add(
            kb,
            emb,
            &docs,
            &Limits::default(),
            &AtomicBool::new(false),
            &mut |p| {
                if p.chunks >= shown + 1000 {
                    shown = p.chunks;
                    eprintln!(
                        "{label}: {}/{} files, {} chunks, {:.1} chunks/s",
                        p.files_done,
                        p.files_total,
                        p.chunks,
                        p.chunks_per_second()
                    );
                }
            },
        )
        .unwrap()
    };
    let r = add(&mut kb);
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    let questions: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(data.join("questions.json")).unwrap())
            .unwrap();
    eprintln!(
        "{label}: {files} files, {} chunks ingested in {:.1} s = {:.1} chunks/s",
        r.chunks,
        r.seconds,
        r.chunks as f64 / r.seconds
    );
    let mut times = Vec::new();
    for q in &questions {
        let t0 = Instant::now();
        search::query(&kb, emb, q["question"].as_str().unwrap(), 5, None).unwrap();
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    let t0 = Instant::now();
    let again = add(&mut kb);
    let readd = t0.elapsed().as_secs_f64();
    assert_eq!(again.unchanged, files);
    eprintln!(
        "{label}: {files} files, {} chunks ingested in {:.1} s = {:.1} chunks/s; index {}; \
         query p50 {:.1} ms, p95 {:.1} ms ({} queries); re-adding unchanged {:.2} s",
        r.chunks,
        r.seconds,
        r.chunks as f64 / r.seconds,
        kb.stats().unwrap().dense_index,
        pct(0.5),
        pct(0.95),
        times.len(),
        readd
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
#[ignore = "a benchmark: scripts/rag-bench.sh"]
fn ingest_and_query_with_minilm() {
    let Some(path) = model_file("all-minilm-l6-v2.f32.gguf") else {
        return;
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let emb = ModelEmbedder::load(&path, DEFAULT_EMBED_MODEL, threads).unwrap();
    let sizes = std::env::var("HEARTH_RAG_BENCH").unwrap_or_else(|_| "100,10000".into());
    for size in sizes.split(',') {
        match size.trim() {
            "100" => measure(
                &emb,
                "~100 chunks",
                Source::Eval {
                    copies: 1,
                    max_files: Some(18),
                },
            ),
            "10000" => {
                match std::env::var_os("HEARTH_RAG_BENCH_CORPUS").filter(|d| !d.is_empty()) {
                    Some(dir) => measure(&emb, "~10,000 chunks", Source::Folder(dir.into())),
                    None => measure(
                        &emb,
                        "~10,000 chunks (eval corpus x17)",
                        Source::Eval {
                            copies: 17,
                            max_files: None,
                        },
                    ),
                }
            }
            other => panic!("HEARTH_RAG_BENCH: {other:?} is not 100 or 10000"),
        }
    }
}
