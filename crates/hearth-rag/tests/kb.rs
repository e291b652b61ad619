//! The knowledge base end to end with a small deterministic embedder:
//! every format ingested, unchanged folders skipped, changed files alone
//! re-embedded, deleted files pruned, another model refused, and queries
//! returning source, page, span and heading.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use common::{write_docx, write_pdf, BagEmbedder};
use hearth_rag::{ingest, search, Kb, Limits, RagError};

fn add(kb: &mut Kb, e: &BagEmbedder, dir: &Path) -> ingest::Report {
    ingest::add(
        kb,
        e,
        &[dir.to_path_buf()],
        &Limits::default(),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap()
}

#[test]
fn every_format_is_indexed_and_found_with_its_place() {
    let tmp = tempdir("formats");
    let docs = tmp.join("docs");
    std::fs::create_dir_all(docs.join("sub")).unwrap();
    std::fs::write(
        docs.join("notes.md"),
        "# Garden\n\n## Tomatoes\n\nWater the tomatoes every morning.\n\n```\nwater --all\n```\n",
    )
    .unwrap();
    std::fs::write(
        docs.join("sub/plain.txt"),
        "The lighthouse keeper logs every passing ship.\n",
    )
    .unwrap();
    std::fs::write(
        docs.join("page.html"),
        "<nav>Home</nav><h2>Bread</h2><p>Knead the dough for ten minutes.</p>",
    )
    .unwrap();
    std::fs::write(
        docs.join("people.csv"),
        "name,role\nAda,engineer\nGrace,admiral\n",
    )
    .unwrap();
    write_docx(
        &docs.join("letter.docx"),
        &[
            ("Heading1", "Invoice".into()),
            ("", "The invoice is due in thirty days.".into()),
        ],
    );
    let pages = vec![
        vec!["Introduction to the manual text.".to_string()],
        vec!["The volcano erupted with molten basalt.".to_string()],
    ];
    write_pdf(&docs.join("report.pdf"), "Field Report", &pages);
    std::fs::write(docs.join("image.png"), [0x89, b'P', b'N', b'G']).unwrap();

    let e = BagEmbedder::new("bag");
    let mut kb = Kb::create(&tmp.join("t.kb"), &e).unwrap();
    let r = add(&mut kb, &e, &docs);
    assert_eq!(r.indexed.len(), 6, "{r:?}");
    assert!(r.skipped.is_empty(), "{r:?}");
    assert_eq!(r.other_formats, 1);

    let found = search::query(&kb, &e, "volcano basalt", 3, None).unwrap();
    let top = &found.hits[0];
    assert!(top.source.ends_with("report.pdf"), "{top:?}");
    assert_eq!(top.page, Some(2));
    assert!(
        top.text.contains("molten basalt") && !top.text.contains("Field Report"),
        "{top:?}"
    );

    let found = search::query(&kb, &e, "how often to water tomatoes", 3, None).unwrap();
    assert!(found.hits[0].source.ends_with("notes.md"));
    assert_eq!(found.hits[0].heading, "Garden > Tomatoes");
    let (s, end) = found.hits[0].span;
    assert_eq!(end - s, found.hits[0].text.chars().count());

    for (q, file) in [
        ("invoice due", "letter.docx"),
        ("knead dough", "page.html"),
        ("Grace admiral", "people.csv"),
        ("lighthouse keeper", "plain.txt"),
    ] {
        let f = search::query(&kb, &e, q, 1, None).unwrap();
        assert!(f.hits[0].source.ends_with(file), "{q}: {:?}", f.hits[0]);
    }
    let st = kb.stats().unwrap();
    assert_eq!((st.files, st.dim, st.model.as_str()), (6, 64, "bag"));
}

#[test]
fn re_adding_skips_unchanged_reembeds_changed_and_prunes_deleted() {
    let tmp = tempdir("resync");
    let docs = tmp.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for i in 0..30 {
        std::fs::write(
            docs.join(format!("f{i}.txt")),
            format!("File number {i} talks about topic {i}.\n"),
        )
        .unwrap();
    }
    let e = BagEmbedder::new("bag");
    let mut kb = Kb::create(&tmp.join("t.kb"), &e).unwrap();
    let r = add(&mut kb, &e, &docs);
    assert_eq!((r.indexed.len(), r.chunks), (30, 30));
    let before = e.embedded.get();

    let r = add(&mut kb, &e, &docs);
    assert_eq!((r.indexed.len(), r.unchanged), (0, 30));
    assert_eq!(e.embedded.get(), before, "nothing is embedded again");

    std::fs::write(docs.join("f3.txt"), "File three now talks about comets.\n").unwrap();
    std::fs::remove_file(docs.join("f7.txt")).unwrap();
    let r = add(&mut kb, &e, &docs);
    assert_eq!(r.indexed.len(), 1);
    assert!(r.indexed[0].ends_with("f3.txt"));
    assert_eq!(r.removed.len(), 1);
    assert!(r.removed[0].ends_with("f7.txt"));
    assert_eq!(
        e.embedded.get(),
        before + 1,
        "only the changed file is embedded"
    );
    assert_eq!(kb.stats().unwrap().chunks, 29);
    let f = search::query(&kb, &e, "file three talks about comets", 1, None).unwrap();
    assert!(f.hits[0].source.ends_with("f3.txt"));
}

#[test]
fn another_embedding_model_is_refused() {
    let tmp = tempdir("model");
    let e = BagEmbedder::new("bag");
    let kb = Kb::create(&tmp.join("t.kb"), &e).unwrap();
    drop(kb);
    let other = BagEmbedder::new("other");
    let err = Kb::create(&tmp.join("t.kb"), &other).err().unwrap();
    assert!(matches!(err, RagError::ModelMismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("built with the embedding model bag"),
        "{err}"
    );
    let kb = Kb::open(&tmp.join("t.kb")).unwrap();
    let err = search::query(&kb, &other, "anything", 3, None).unwrap_err();
    assert!(matches!(err, RagError::ModelMismatch { .. }), "{err}");
}

#[test]
fn a_cancelled_ingest_keeps_what_it_finished() {
    let tmp = tempdir("cancel");
    let docs = tmp.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("a.txt"), "alpha text\n").unwrap();
    let e = BagEmbedder::new("bag");
    let mut kb = Kb::create(&tmp.join("t.kb"), &e).unwrap();
    let cancel = AtomicBool::new(true);
    let r = ingest::add(
        &mut kb,
        &e,
        std::slice::from_ref(&docs),
        &Limits::default(),
        &cancel,
        &mut |_| {},
    )
    .unwrap();
    assert!(r.cancelled);
    assert_eq!(kb.stats().unwrap().files, 0);
    let r = add(&mut kb, &e, &docs);
    assert_eq!(r.indexed.len(), 1);
}

pub fn tempdir(tag: &str) -> hearth_testdata::TempDir {
    hearth_testdata::TempDir::new(&format!("rag-{tag}"))
}

/// Re-adding an unchanged folder of 1,000 files reads no file again
/// (the time is printed, not asserted).
#[test]
fn re_adding_a_thousand_unchanged_files_reads_none() {
    let tmp = tempdir("thousand");
    let docs = tmp.join("docs");
    for d in 0..10 {
        std::fs::create_dir_all(docs.join(format!("d{d}"))).unwrap();
        for i in 0..100 {
            let p = docs.join(format!("d{d}/n{i}.md"));
            std::fs::write(
                p,
                format!("# Note {d}-{i}\n\nSome words about item {i} in folder {d}.\n"),
            )
            .unwrap();
        }
    }
    let e = BagEmbedder::new("bag");
    let mut kb = Kb::create(&tmp.join("t.kb"), &e).unwrap();
    assert_eq!(add(&mut kb, &e, &docs).indexed.len(), 1000);
    let before = e.embedded.get();
    let t0 = std::time::Instant::now();
    let r = add(&mut kb, &e, &docs);
    eprintln!(
        "re-adding 1000 unchanged files took {:.3} s",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!((r.unchanged, r.indexed.len(), r.touched), (1000, 0, 0));
    assert_eq!(e.embedded.get(), before);
}

/// A reranker, when given, decides the final order of the fused candidates.
#[test]
fn a_reranker_reorders_the_candidates() {
    struct PrefersShort;
    impl hearth_rag::Reranker for PrefersShort {
        fn rerank(&self, _q: &str, passages: &[&str]) -> Result<Vec<f32>, RagError> {
            Ok(passages.iter().map(|p| -(p.len() as f32)).collect())
        }
    }
    let tmp = tempdir("rerank");
    let docs = tmp.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(
        docs.join("long.txt"),
        "Comets comets comets: a comet is ice and dust with a long bright tail.\n",
    )
    .unwrap();
    std::fs::write(docs.join("short.txt"), "A comet.\n").unwrap();
    let e = BagEmbedder::new("bag");
    let mut kb = Kb::create(&tmp.join("t.kb"), &e).unwrap();
    add(&mut kb, &e, &docs);
    let plain = search::query(&kb, &e, "comets", 2, None).unwrap();
    assert!(
        plain.hits[0].source.ends_with("long.txt"),
        "{:?}",
        plain.hits
    );
    let reranked = search::query(&kb, &e, "comets", 2, Some(&PrefersShort)).unwrap();
    assert!(
        reranked.hits[0].source.ends_with("short.txt"),
        "{:?}",
        reranked.hits
    );
    assert_eq!(reranked.hits[0].score, -("A comet.".len() as f32));
}
