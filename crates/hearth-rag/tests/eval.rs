//! The retrieval evaluation: the corpus in `testdata/rag/eval/docs` (real
//! Debian documentation, see `SOURCES.tsv`; files named `*.pdf.txt` and
//! `*.docx.txt` are laid out as PDF and DOCX here first), the questions in
//! `questions.json` (each with the document and passage that answer it, or
//! none), scored as recall@5 and MRR@10 for BM25 alone, dense alone and
//! the hybrid at every weight, plus abstention on both kinds of question.
//! The hybrid must beat both retrievers; the table is printed for tuning.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use hearth_rag::search::{self, Hit};
use hearth_rag::{ingest, Embedder, Kb, Limits, ModelEmbedder};
use hearth_testdata::{model, unavailable, RealModel};
use serde_json::Value;

fn norm(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The name a corpus file has once laid out (`x.pdf.txt` → `x.pdf`).
fn laid_out(name: &str) -> String {
    name.strip_suffix(".txt")
        .filter(|n| n.ends_with(".pdf") || n.ends_with(".docx"))
        .unwrap_or(name)
        .to_string()
}

fn build_corpus(src: &Path, dst: &Path) -> usize {
    std::fs::create_dir_all(dst).unwrap();
    let mut n = 0;
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let out = dst.join(laid_out(&name));
        let text = std::fs::read_to_string(&p).unwrap();
        if name.ends_with(".pdf.txt") {
            common::write_pdf(&out, "GNU manual page", &common::pages_of(&text, 40));
        } else if name.ends_with(".docx.txt") {
            let paras: Vec<(&str, String)> = text
                .split("\n\n")
                .filter(|p| !p.trim().is_empty())
                .map(|p| ("", p.trim_end().to_string()))
                .collect();
            common::write_docx(&out, &paras);
        } else {
            std::fs::copy(&p, &out).unwrap();
        }
        n += 1;
    }
    n
}

/// Does `hit` hold the passage of document `doc`? (The first or last five
/// words of the passage suffice, in case a chunk boundary cuts it.)
fn relevant(hit: &Hit, doc: &str, passage: &str) -> bool {
    let file = Path::new(&hit.source)
        .file_name()
        .unwrap()
        .to_string_lossy();
    if file != laid_out(doc) {
        return false;
    }
    let text = norm(&hit.text);
    let words: Vec<&str> = passage.split_whitespace().collect();
    let head = norm(&words[..words.len().min(5)].join(" "));
    let tail = norm(&words[words.len().saturating_sub(5)..].join(" "));
    text.contains(&head) || text.contains(&tail)
}

#[derive(Default, Clone, Copy)]
struct Score {
    recall5: f64,
    mrr10: f64,
}

fn score(ranks: &[Option<usize>]) -> Score {
    let n = ranks.len() as f64;
    Score {
        recall5: ranks.iter().filter(|r| r.is_some_and(|r| r <= 5)).count() as f64 / n,
        mrr10: ranks
            .iter()
            .map(|r| r.filter(|&r| r <= 10).map_or(0.0, |r| 1.0 / r as f64))
            .sum::<f64>()
            / n,
    }
}

#[test]
fn hybrid_beats_bm25_and_dense_on_the_evaluation_set() {
    let Some(model_path) = model(RealModel::SmolLm2) else {
        return unavailable("SmolLM2 is needed to embed the evaluation corpus");
    };
    let data = hearth_testdata::testdata_dir().join("rag/eval");
    let questions: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(data.join("questions.json")).unwrap())
            .unwrap();
    let tmp = std::env::temp_dir().join(format!("hearth-rag-eval-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let docs = tmp.join("docs");
    let n_docs = build_corpus(&data.join("docs"), &docs);
    assert!(n_docs >= 100, "{n_docs} documents");

    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let emb = ModelEmbedder::load(&model_path, "smollm2", threads).unwrap();
    let mut kb = Kb::create(&tmp.join("eval.kb"), &emb).unwrap();
    let r = ingest::add(
        &mut kb,
        &emb,
        &[docs],
        &Limits::default(),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    assert_eq!(r.indexed.len(), n_docs);
    eprintln!(
        "ingested {} documents, {} chunks in {:.1} s ({:.1} chunks/s)",
        n_docs,
        r.chunks,
        r.seconds,
        r.chunks as f64 / r.seconds
    );

    let weights: Vec<f32> = (0..=10).map(|i| i as f32 / 10.0).collect();
    let mut bm_ranks = Vec::new();
    let mut de_ranks = Vec::new();
    let mut hy_ranks: HashMap<usize, Vec<Option<usize>>> = HashMap::new();
    let (mut abstain_none, mut abstain_answerable, mut n_none) = (0, 0, 0);
    for q in &questions {
        let question = q["question"].as_str().unwrap();
        let qv = emb.embed(&[question.to_string()]).unwrap().pop().unwrap();
        let (bm, de, cos) = search::candidates(&kb, question, &qv).unwrap();
        let fused = search::fuse(&bm, &cos, search::DENSE_WEIGHT);
        let top = search::hits(&kb, &fused[..fused.len().min(5)]).unwrap();
        let signals = search::signals(question, &top, &bm, &de, &cos);
        let abstained = search::abstain(&signals);
        let Some(doc) = q["doc"].as_str() else {
            n_none += 1;
            abstain_none += usize::from(abstained);
            eprintln!("no answer: abstained={abstained} {signals:?} {question}");
            continue;
        };
        abstain_answerable += usize::from(abstained);
        if abstained {
            eprintln!("answerable, abstained: {signals:?} {question}");
        }
        let passage = q["passage"].as_str().unwrap();
        let rank = |list: &[(i64, f32)]| {
            let hits = search::hits(&kb, &list[..list.len().min(10)]).unwrap();
            hits.iter()
                .position(|h| relevant(h, doc, passage))
                .map(|i| i + 1)
        };
        bm_ranks.push(rank(&bm));
        de_ranks.push(rank(&de));
        for (i, &w) in weights.iter().enumerate() {
            hy_ranks
                .entry(i)
                .or_default()
                .push(rank(&search::fuse(&bm, &cos, w)));
        }
    }
    let (b, d) = (score(&bm_ranks), score(&de_ranks));
    eprintln!(
        "{} answerable questions, {n_none} without an answer",
        bm_ranks.len()
    );
    eprintln!("method          recall@5  MRR@10");
    eprintln!("bm25            {:.3}     {:.3}", b.recall5, b.mrr10);
    eprintln!("dense           {:.3}     {:.3}", d.recall5, d.mrr10);
    for (i, w) in weights.iter().enumerate() {
        let h = score(&hy_ranks[&i]);
        eprintln!("hybrid w={w:.1}    {:.3}     {:.3}", h.recall5, h.mrr10);
    }
    let chosen = weights
        .iter()
        .position(|&w| (w - search::DENSE_WEIGHT).abs() < 1e-6)
        .unwrap();
    let h = score(&hy_ranks[&chosen]);
    eprintln!(
        "hybrid (w={})  {:.3}     {:.3}",
        search::DENSE_WEIGHT,
        h.recall5,
        h.mrr10
    );
    eprintln!(
        "abstention: {abstain_none}/{n_none} questions without an answer, {abstain_answerable}/{} answerable ones",
        bm_ranks.len()
    );
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(bm_ranks.len() >= 50 && n_none >= 5);
    assert!(
        h.recall5 >= b.recall5.max(d.recall5) && h.mrr10 > b.mrr10.max(d.mrr10),
        "the hybrid must beat both retrievers"
    );
    assert!(
        abstain_none * 2 >= n_none,
        "abstained on too few questions without an answer"
    );
    assert!(
        abstain_answerable * 5 <= bm_ranks.len(),
        "abstained on too many answerable questions"
    );
}
