//! The retrieval evaluation: the corpus in `testdata/rag/eval/docs` (real
//! Debian documentation, see `SOURCES.tsv`; files named `*.pdf.txt` and
//! `*.docx.txt` are laid out as PDF and DOCX here first), embedded with
//! all-MiniLM (the default embedding model), and two question sets, each
//! question with the document and passage that answer it, or none:
//! `questions.json` (worded like the documents) and
//! `questions-paraphrased.json` (the same passages asked in other words,
//! sharing no content word with the passage, plus unanswerable questions
//! near the corpus's topics). Each is scored as recall@5 and MRR@10 for
//! BM25 alone, dense alone and the hybrid (`search::FUSION`, what `hearth
//! rag query` runs), with a 5-fold cross-validated choice of the fusion
//! over a grid (both sets' questions pooled into the folds), plus
//! abstention on both kinds of question. The hybrid must beat both
//! retrievers on both sets; the best fusions of the grid are printed for
//! tuning.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use hearth_rag::search::{self, Fusion, Hit};
use hearth_rag::{
    ingest, Embedder, Kb, Limits, ModelEmbedder, DEFAULT_EMBED_MODEL, SPECIAL_TOKENS,
};
use hearth_testdata::model_file;
use serde_json::Value;

/// The store's `all-minilm` (F32, converted by scripts/fetch-models.sh).
const MINILM: &str = "all-minilm-l6-v2.f32.gguf";

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

/// One answerable question: the candidates of both retrievers and which
/// of them hold its passage.
struct Asked {
    cands: search::Candidates,
    relevant: HashSet<i64>,
}

impl Asked {
    /// The rank (1-based, `None` beyond 10) of the first relevant chunk.
    fn rank(&self, list: &[(i64, f32)]) -> Option<usize> {
        list.iter()
            .take(10)
            .position(|c| self.relevant.contains(&c.0))
            .map(|i| i + 1)
    }
}

/// A question set's answerable questions and the abstention counts.
#[derive(Default)]
struct Run {
    asked: Vec<Asked>,
    n_none: usize,
    abstain_none: usize,
    abstain_answerable: usize,
}

impl Run {
    /// One retriever alone: the list `of` picks from each question's candidates.
    fn alone(&self, of: fn(&search::Candidates) -> &search::Ranked) -> Score {
        let ranks: Vec<_> = self.asked.iter().map(|a| a.rank(of(&a.cands))).collect();
        score(&ranks)
    }
    /// Dense with its file context, BM25 left out.
    fn dense_in_context(&self, share: f32) -> Score {
        let ranks: Vec<_> = self
            .asked
            .iter()
            .map(|a| {
                let mut v: Vec<(i64, f32)> = search::with_file_context(&a.cands, share)
                    .into_iter()
                    .collect();
                v.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
                a.rank(&v)
            })
            .collect();
        score(&ranks)
    }
    fn ranks(&self, f: &Fusion) -> Vec<Option<usize>> {
        self.asked
            .iter()
            .map(|a| a.rank(&search::fuse(&a.cands, f)))
            .collect()
    }
}

fn evaluate(kb: &Kb, emb: &ModelEmbedder, questions: &[Value]) -> Run {
    let mut run = Run::default();
    for q in questions {
        let question = q["question"].as_str().unwrap();
        let qv = emb.embed(&[question.to_string()]).unwrap().pop().unwrap();
        let cands = search::candidates(kb, question, &qv).unwrap();
        let fused = search::fuse(&cands, &search::FUSION);
        let top = search::hits(kb, &fused[..fused.len().min(5)]).unwrap();
        let signals = search::signals(question, &top, &cands);
        let abstained = search::abstain(&signals);
        let Some(doc) = q["doc"].as_str() else {
            run.n_none += 1;
            run.abstain_none += usize::from(abstained);
            eprintln!("no answer: abstained={abstained} {signals:?} {question}");
            continue;
        };
        run.abstain_answerable += usize::from(abstained);
        if abstained {
            eprintln!("answerable, abstained: {signals:?} {question}");
        }
        let passage = q["passage"].as_str().unwrap();
        let ids: Vec<(i64, f32)> = cands.cos.keys().map(|&id| (id, 0.0)).collect();
        let relevant = search::hits(kb, &ids)
            .unwrap()
            .iter()
            .filter(|h| relevant(h, doc, passage))
            .map(|h| h.id)
            .collect();
        run.asked.push(Asked { cands, relevant });
    }
    run
}

/// Recall@5 plus MRR@10, what the fusion is chosen by.
fn merit(s: Score) -> f64 {
    s.recall5 + s.mrr10
}

/// The fusions swept: file context × BM25's weight × where BM25 starts
/// and stops counting (`(0, 0)`: a fixed weight, whatever the question).
fn grid() -> Vec<Fusion> {
    let mut out = Vec::new();
    for file_context in [0.0, 0.1, 0.25, 0.5] {
        for bm25_weight in [0.0, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6] {
            for (lexical_from, lexical_full) in [
                (0.0, 0.0),
                (0.5, 0.5),
                (0.6, 0.6),
                (0.4, 0.8),
                (0.5, 0.8),
                (0.6, 0.9),
                (0.5, 1.0),
            ] {
                out.push(Fusion {
                    file_context,
                    bm25_weight,
                    lexical_from,
                    lexical_full,
                });
            }
        }
    }
    out
}

/// Each set's hybrid score when each fifth of the questions (of both sets
/// together) is ranked with the fusion of the grid that scores best on the
/// other four fifths; and the fusions chosen.
fn cross_validated(runs: &[&Run]) -> (Vec<Score>, Vec<Fusion>) {
    let grid = grid();
    // ranks[g][set][q]
    let ranks: Vec<Vec<Vec<Option<usize>>>> = grid
        .iter()
        .map(|f| runs.iter().map(|r| r.ranks(f)).collect())
        .collect();
    let mut out: Vec<Vec<Option<usize>>> = runs.iter().map(|r| vec![None; r.asked.len()]).collect();
    let mut chosen = Vec::new();
    for fold in 0..5 {
        let train = |g: usize| {
            let r: Vec<Option<usize>> = ranks[g]
                .iter()
                .flat_map(|set| set.iter().enumerate())
                .filter(|(q, _)| q % 5 != fold)
                .map(|(_, r)| *r)
                .collect();
            merit(score(&r))
        };
        let best = (0..grid.len())
            .max_by(|&a, &b| train(a).total_cmp(&train(b)).then(b.cmp(&a)))
            .unwrap();
        chosen.push(grid[best]);
        for (s, set) in out.iter_mut().enumerate() {
            for (q, r) in set.iter_mut().enumerate() {
                if q % 5 == fold {
                    *r = ranks[best][s][q];
                }
            }
        }
    }
    (out.iter().map(|r| score(r)).collect(), chosen)
}

fn row(name: &str, s: Score) {
    eprintln!("{name:40} {:.3}     {:.3}", s.recall5, s.mrr10);
}

/// Prints the table of a run; returns (BM25, dense, hybrid at
/// `search::FUSION`).
fn report(name: &str, run: &Run, cv: Score) -> (Score, Score, Score) {
    let f = search::FUSION;
    let (b, d) = (run.alone(|c| &c.bm), run.alone(|c| &c.de));
    eprintln!(
        "== {name}: {} answerable questions, {} without an answer",
        run.asked.len(),
        run.n_none
    );
    eprintln!("{:40} recall@5  MRR@10", "method");
    row("bm25", b);
    row("dense", d);
    row(
        &format!("dense + file context {:.2} (no BM25)", f.file_context),
        run.dense_in_context(f.file_context),
    );
    for w in [0.1, 0.15, 0.2, 0.3] {
        let fixed = Fusion {
            file_context: 0.0,
            bm25_weight: w,
            lexical_from: 0.0,
            lexical_full: 0.0,
        };
        row(
            &format!("fixed blend, BM25 weight {w:.2}"),
            score(&run.ranks(&fixed)),
        );
    }
    let h = score(&run.ranks(&f));
    row("hybrid, shipped fusion", h);
    row("hybrid, 5-fold CV over the grid", cv);
    eprintln!(
        "abstention: {}/{} questions without an answer, {}/{} answerable ones",
        run.abstain_none,
        run.n_none,
        run.abstain_answerable,
        run.asked.len()
    );
    (b, d, h)
}

/// The best fusions of the grid on both sets together, for tuning.
fn sweep(runs: &[&Run]) {
    let mut scored: Vec<(f64, Fusion, Vec<Score>)> = grid()
        .into_iter()
        .map(|f| {
            let per: Vec<Score> = runs.iter().map(|r| score(&r.ranks(&f))).collect();
            let all: Vec<Option<usize>> = runs.iter().flat_map(|r| r.ranks(&f)).collect();
            (merit(score(&all)), f, per)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    eprintln!("== the best fusions of the grid (both sets): literal, paraphrased recall@5/MRR@10");
    for (_, f, per) in scored.iter().take(8) {
        eprintln!(
            "{f:?}: {:.3}/{:.3}  {:.3}/{:.3}",
            per[0].recall5, per[0].mrr10, per[1].recall5, per[1].mrr10
        );
    }
}

fn load(path: &Path) -> Vec<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn hybrid_beats_bm25_and_dense_on_the_evaluation_set() {
    let Some(model_path) = model_file(MINILM) else {
        return;
    };
    let data = hearth_testdata::testdata_dir().join("rag/eval");
    let literal = load(&data.join("questions.json"));
    let paraphrased = load(&data.join("questions-paraphrased.json"));
    let tmp = std::env::temp_dir().join(format!("hearth-rag-eval-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let docs = tmp.join("docs");
    let n_docs = build_corpus(&data.join("docs"), &docs);
    assert!(n_docs >= 100, "{n_docs} documents");

    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let emb = ModelEmbedder::load(&model_path, DEFAULT_EMBED_MODEL, threads).unwrap();
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

    let lit = evaluate(&kb, &emb, &literal);
    let para = evaluate(&kb, &emb, &paraphrased);
    let _ = std::fs::remove_dir_all(&tmp);
    eprintln!("shipped fusion: {:?}", search::FUSION);
    let (cv, chosen) = cross_validated(&[&lit, &para]);
    let (lb, ld, lh) = report("questions.json", &lit, cv[0]);
    let (pb, pd, ph) = report("questions-paraphrased.json", &para, cv[1]);
    eprintln!("5-fold CV, fusion chosen per fold: {chosen:?}");
    sweep(&[&lit, &para]);
    for run in [&lit, &para] {
        assert!(run.asked.len() >= 50 && run.n_none >= 5);
    }
    // The hybrid must rank better than either retriever alone on both
    // sets: keep the best recall@5 and beat the best MRR@10.
    for (set, b, d, h) in [
        ("questions.json", lb, ld, lh),
        ("questions-paraphrased.json", pb, pd, ph),
    ] {
        eprintln!(
            "{set}: hybrid - dense = {:+.3} recall@5, {:+.3} MRR@10; hybrid - BM25 = {:+.3}, {:+.3}",
            h.recall5 - d.recall5,
            h.mrr10 - d.mrr10,
            h.recall5 - b.recall5,
            h.mrr10 - b.mrr10
        );
        assert!(
            h.recall5 >= b.recall5.max(d.recall5) && h.mrr10 > b.mrr10.max(d.mrr10),
            "the hybrid must beat both retrievers on {set}"
        );
    }
    assert!(
        lit.abstain_none * 2 >= lit.n_none,
        "abstained on too few questions without an answer"
    );
    for run in [&lit, &para] {
        assert!(
            run.abstain_answerable * 5 <= run.asked.len(),
            "abstained on too many answerable questions"
        );
    }
}

/// The embeddings `hearth rag` stores are all-MiniLM's own (the pooling
/// its file names, unit length, with its `[CLS]`/`[SEP]` tokens), the same
/// as the NumPy forward pass of testdata/minilm/ computes from the
/// safetensors: not a chat model's hidden states.
#[test]
fn the_default_embedder_is_minilm_through_its_encoder_path() {
    let Some(model_path) = model_file(MINILM) else {
        return;
    };
    let path = hearth_testdata::testdata_dir().join("minilm/reference.json");
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = reference["cases"].as_array().unwrap();
    let emb = ModelEmbedder::load(&model_path, DEFAULT_EMBED_MODEL, 2).unwrap();
    assert_eq!(emb.dim(), 384);
    assert_eq!(emb.max_tokens(), 512);
    let texts: Vec<String> = cases
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_string())
        .collect();
    let got = emb.embed(&texts).unwrap();
    for (c, v) in cases.iter().zip(&got) {
        let want: Vec<f64> = c["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let dot: f64 = v.iter().zip(&want).map(|(a, b)| *a as f64 * b).sum();
        let norm = |x: &[f64]| x.iter().map(|a| a * a).sum::<f64>().sqrt();
        let own: Vec<f64> = v.iter().map(|&a| a as f64).collect();
        assert!((norm(&own) - 1.0).abs() < 1e-4, "not unit length");
        let cos = dot / norm(&want);
        assert!(cos >= 0.9999, "cosine {cos} for {:?}", c["text"]);
        // The tokens it was given are the reference's, specials included.
        let ids: Vec<u64> = c["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        assert_eq!(
            emb.count_tokens(c["text"].as_str().unwrap()) + SPECIAL_TOKENS,
            ids.len()
        );
    }
    // A text longer than the 512-token context is refused, not cut short.
    let long = "word ".repeat(600);
    let err = emb.embed(&[long]).unwrap_err().to_string();
    assert!(err.contains("512"), "{err}");
}
