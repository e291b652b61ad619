//! A generated set of hostile documents — encrypted, corrupt and truncated
//! PDFs, a deflate bomb inside a PDF, a zip bomb posing as DOCX, a
//! multi-gigabyte (sparse) file, binary junk named `.txt`, deeply nested
//! HTML — is ingested beside a good file: each bad one is skipped with its
//! reason, nothing panics or hangs, and the good file is indexed.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use common::{write_pdf, write_zip, BagEmbedder};
use hearth_rag::extract::{self, Format};
use hearth_rag::{ingest, Kb, Limits};

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

#[test]
fn hostile_documents_are_skipped_with_reasons() {
    let tmp = std::env::temp_dir().join(format!("hearth-rag-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let d = tmp.join("docs");
    std::fs::create_dir_all(&d).unwrap();

    let pages: Vec<Vec<String>> = ["first", "second", "third"]
        .iter()
        .map(|w| vec![format!("The {w} page is perfectly ordinary.")])
        .collect();
    write_pdf(&d.join("good.pdf"), "Header", &pages);
    let good = std::fs::read(d.join("good.pdf")).unwrap();
    let text = String::from_utf8_lossy(&good).to_string();
    let encrypted = text.replacen(
        "/Root",
        "/Encrypt << /Filter /Standard /V 1 /R 2 /O (owner) /U (user) /P -4 >> /Root",
        1,
    );
    std::fs::write(d.join("encrypted.pdf"), encrypted.as_bytes()).unwrap();
    std::fs::write(d.join("truncated.pdf"), &good[..good.len() / 2]).unwrap();
    let mut corrupt = b"%PDF-1.7\n".to_vec();
    corrupt.extend((0..20_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    std::fs::write(d.join("corrupt.pdf"), corrupt).unwrap();
    let bomb = deflate(&vec![b' '; 48 << 20]);
    let mut pdf_bomb = format!(
        "%PDF-1.5\n1 0 obj\n<< /Length {} /Filter /FlateDecode >>\nstream\n",
        bomb.len()
    )
    .into_bytes();
    pdf_bomb.extend(&bomb);
    pdf_bomb.extend(b"\nendstream\nendobj\ntrailer\n<< >>\n%%EOF\n");
    std::fs::write(d.join("bomb.pdf"), pdf_bomb).unwrap();

    let mut xml = b"<w:document><w:body><w:p><w:r><w:t>".to_vec();
    xml.resize(48 << 20, b'a');
    write_zip(&d.join("bomb.docx"), &[("word/document.xml", &xml)]);
    write_zip(&d.join("nodoc.docx"), &[("other.xml", b"<x/>")]);
    std::fs::write(d.join("zip-junk.docx"), b"PK\x03\x04 not really a zip").unwrap();

    let huge = std::fs::File::create(d.join("huge.txt")).unwrap();
    huge.set_len(3 << 30).unwrap();
    drop(huge);
    let junk: Vec<u8> = (0..65_536u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
        .collect();
    std::fs::write(d.join("junk.txt"), junk).unwrap();
    std::fs::write(d.join("empty.md"), "\n\n   \n").unwrap();
    let n = 100_000;
    let nested = format!(
        "{}deep but fine{}",
        "<div><b>".repeat(n),
        "</b></div>".repeat(n)
    );
    std::fs::write(d.join("nested.html"), nested).unwrap();
    std::fs::write(
        d.join("unclosed.html"),
        "<p>some text ".repeat(50_000) + "<script>never closed",
    )
    .unwrap();

    let limits = Limits {
        max_inflated_bytes: 16 << 20,
        ..Limits::default()
    };
    let e = BagEmbedder::new("bag");
    let mut kb = Kb::create(&tmp.join("t.kb"), &e).unwrap();
    let t0 = Instant::now();
    let r = ingest::add(
        &mut kb,
        &e,
        std::slice::from_ref(&d),
        &limits,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(60),
        "took {:?}",
        t0.elapsed()
    );
    let reason = |name: &str| {
        r.skipped
            .iter()
            .find(|(p, _)| p.ends_with(&format!("/{name}")))
            .map(|(_, why)| why.clone())
            .unwrap_or_else(|| panic!("{name} was not skipped: {r:?}"))
    };
    for (name, why) in [
        ("encrypted.pdf", "encrypted"),
        ("truncated.pdf", "corrupt or truncated"),
        ("corrupt.pdf", "corrupt or truncated"),
        ("bomb.pdf", "inflate beyond"),
        ("bomb.docx", "limit"),
        ("nodoc.docx", "no word/document.xml"),
        ("zip-junk.docx", "not a DOCX"),
        ("huge.txt", "over the"),
        ("junk.txt", "binary"),
        ("empty.md", "no text"),
    ] {
        let got = reason(name);
        assert!(got.contains(why), "{name}: {got}");
        eprintln!("{name}: {got}");
    }
    let indexed: Vec<&str> = r
        .indexed
        .iter()
        .map(|p| p.rsplit('/').next().unwrap())
        .collect();
    for name in ["good.pdf", "nested.html", "unclosed.html"] {
        assert!(indexed.contains(&name), "{name} not indexed: {r:?}");
    }
    assert_eq!(r.skipped.len(), 10, "{r:?}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn extraction_that_runs_too_long_is_abandoned() {
    let big = "word ".repeat(4 << 20);
    let limits = Limits {
        max_seconds: 0.001,
        ..Limits::default()
    };
    let t0 = Instant::now();
    let err = extract::extract(Format::Markdown, big.into_bytes(), &limits).unwrap_err();
    assert!(err.0.contains("longer than"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(5));
}
