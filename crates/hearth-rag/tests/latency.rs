//! Retrieval cost at about 100 and 10,000 chunks of 384 dimensions (the
//! shape of a MiniLM knowledge base): query latency p50 and p95 of the
//! hybrid search (BM25, the int8 scan, exact rescoring, fusion), with a
//! trivial embedder so that only retrieval is timed. Printed, not asserted;
//! the test checks that the right section is found at both sizes.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use common::BagEmbedder;
use hearth_rag::{ingest, search, Kb, Limits};

const WORDS: &[&str] = &[
    "river", "stone", "lamp", "copper", "meadow", "engine", "violet", "harbor", "signal", "cedar",
    "pulse", "orbit", "granite", "ember", "thistle", "canal", "falcon", "prism", "tundra", "quill",
];

/// The words section `k` mentions.
fn words(k: usize) -> String {
    (0..12)
        .map(|i| WORDS[(k * 7 + i * 13 + i * i) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

fn corpus(dir: &std::path::Path, files: usize, sections: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for f in 0..files {
        let mut md = String::new();
        for s in 0..sections {
            let k = f * sections + s;
            md.push_str(&format!(
                "## Section {k}\n\nItem code{k} mentions {}.\n\n",
                words(k)
            ));
        }
        std::fs::write(dir.join(format!("f{f}.md")), md).unwrap();
    }
}

fn measure(files: usize, sections: usize) {
    let tmp =
        std::env::temp_dir().join(format!("hearth-rag-latency-{files}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    corpus(&tmp.join("docs"), files, sections);
    let e = BagEmbedder::with_dim("bag384", 384);
    let mut kb = Kb::create(&tmp.join("t.kb"), &e).unwrap();
    let r = ingest::add(
        &mut kb,
        &e,
        &[tmp.join("docs")],
        &Limits::default(),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    let n = files * sections;
    assert_eq!(r.chunks, n);
    let mut times = Vec::new();
    for q in 0..40 {
        let k = (q * 7919) % n;
        let t0 = Instant::now();
        let found = search::query(&kb, &e, &format!("code{k} {}", words(k)), 5, None).unwrap();
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        assert_eq!(found.hits[0].heading, format!("Section {k}"));
    }
    let qv = vec![1.0 / (384f32).sqrt(); 384];
    let t0 = Instant::now();
    search::bm25(&kb, "which item is code17", 50).unwrap();
    let t_bm = t0.elapsed().as_secs_f64() * 1e3;
    let t0 = Instant::now();
    search::dense(&kb, &qv, 50).unwrap();
    let t_de = t0.elapsed().as_secs_f64() * 1e3;
    eprintln!("{n} chunks: BM25 alone {t_bm:.2} ms, dense alone {t_de:.2} ms");
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    eprintln!(
        "{n} chunks: stored in {:.2} s; query p50 {:.2} ms, p95 {:.2} ms",
        r.seconds,
        pct(0.5),
        pct(0.95)
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn query_latency_at_a_hundred_and_ten_thousand_chunks() {
    measure(4, 25);
    measure(100, 100);
}
