//! Damaged and hostile model files get errors, never panics or huge
//! allocations. The files are made here, so these tests need no model.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use hearth_speech::{ct2, detect_whisper, Whisper};

fn s(out: &mut Vec<u8>, t: &str) {
    out.extend_from_slice(&((t.len() + 1) as u16).to_le_bytes());
    out.extend_from_slice(t.as_bytes());
    out.push(0);
}

/// A CTranslate2 container with the given variables `(name, dims, dtype, data)`.
fn container(
    version: u32,
    spec: &str,
    vars: &[(&str, &[u32], u8, Vec<u8>)],
    aliases: &[(&str, &str)],
) -> Vec<u8> {
    let mut b = version.to_le_bytes().to_vec();
    s(&mut b, spec);
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&(vars.len() as u32).to_le_bytes());
    for (name, dims, ty, data) in vars {
        s(&mut b, name);
        b.push(dims.len() as u8);
        for d in *dims {
            b.extend_from_slice(&d.to_le_bytes());
        }
        b.push(*ty);
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(data);
    }
    b.extend_from_slice(&(aliases.len() as u32).to_le_bytes());
    for (a, t) in aliases {
        s(&mut b, a);
        s(&mut b, t);
    }
    b
}

fn small() -> Vec<u8> {
    container(
        6,
        "WhisperSpec",
        &[
            ("encoder/num_heads", &[], 2, vec![6, 0]),
            ("w", &[2, 3], 4, vec![0; 12]),
        ],
        &[("decoder/projection/weight", "w")],
    )
}

fn err_text(bytes: &[u8]) -> String {
    match ct2::parse(bytes) {
        Ok(_) => panic!("accepted a bad container"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_good_container_parses_with_aliases_and_scalars() {
    let b = small();
    let f = ct2::parse(&b).unwrap();
    assert_eq!(
        (f.version, f.spec.as_str(), f.revision),
        (6, "WhisperSpec", 1)
    );
    assert_eq!(f.vars["encoder/num_heads"].scalar_int(), Some(6));
    assert_eq!(f.vars["decoder/projection/weight"].dims, vec![2, 3]);
}

#[test]
fn every_truncation_is_an_error() {
    let b = small();
    for n in 0..b.len() {
        assert!(ct2::parse(&b[..n]).is_err(), "prefix of {n} bytes accepted");
    }
    let mut longer = b.clone();
    longer.push(0);
    assert!(err_text(&longer).contains("unknown bytes"));
}

#[test]
fn lying_headers_are_errors() {
    let mut huge_count = small();
    huge_count[4 + 2 + 12 + 4..4 + 2 + 12 + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(
        err_text(&huge_count).contains("variables"),
        "{}",
        err_text(&huge_count)
    );

    let overflow = container(
        6,
        "WhisperSpec",
        &[("w", &[u32::MAX, u32::MAX, u32::MAX], 4, vec![0; 4])],
        &[],
    );
    assert!(err_text(&overflow).contains("w"), "{}", err_text(&overflow));

    let size_lie = container(6, "WhisperSpec", &[("w", &[2, 3], 4, vec![0; 10])], &[]);
    assert!(
        err_text(&size_lie).contains("12 bytes"),
        "{}",
        err_text(&size_lie)
    );

    let dtype = container(6, "WhisperSpec", &[("w", &[1], 77, vec![0])], &[]);
    assert!(
        err_text(&dtype).contains("dtype 77"),
        "{}",
        err_text(&dtype)
    );

    let mut rank = container(6, "WhisperSpec", &[("w", &[1], 0, vec![0; 4])], &[]);
    let at = rank.len() - 4 - 4 - 1 - 4 - 4 - 1;
    rank[at] = 200;
    assert!(err_text(&rank).contains("rank"), "{}", err_text(&rank));

    let alias = container(6, "WhisperSpec", &[], &[("a", "missing")]);
    assert!(err_text(&alias).contains("missing"), "{}", err_text(&alias));

    let version = container(99, "WhisperSpec", &[], &[]);
    assert!(
        err_text(&version).contains("version 99"),
        "{}",
        err_text(&version)
    );
}

fn folder(name: &str, model_bin: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hearth-speech-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.bin"), model_bin).unwrap();
    dir
}

#[test]
fn load_rejects_other_specs_and_incomplete_models() {
    let other = folder("spec", &container(6, "TransformerSpec", &[], &[]));
    let e = Whisper::load(&other).unwrap_err().to_string();
    assert!(e.contains("TransformerSpec"), "{e}");
    assert!(!detect_whisper(&other));

    let incomplete = folder("incomplete", &small());
    assert!(detect_whisper(&incomplete));
    let e = Whisper::load(&incomplete).unwrap_err().to_string();
    assert!(e.contains("has no"), "{e}");
    for d in [other, incomplete] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn hostile_ggml_files_are_errors() {
    let dir = std::env::temp_dir().join(format!("hearth-speech-{}-ggml", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut b = 0x6767_6d6cu32.to_le_bytes().to_vec();
    for v in [51864i32, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    let header = b.clone();
    // The filter bank claims far more bytes than the file has.
    b.extend_from_slice(&80i32.to_le_bytes());
    b.extend_from_slice(&65536i32.to_le_bytes());
    let p = dir.join("filters.bin");
    std::fs::write(&p, &b).unwrap();
    assert!(detect_whisper(&p));
    let e = Whisper::load(&p).unwrap_err().to_string();
    assert!(e.contains("truncated"), "{e}");

    // Negative vocabulary size.
    let mut v = header.clone();
    v.extend_from_slice(&80i32.to_le_bytes());
    v.extend_from_slice(&0i32.to_le_bytes());
    v.extend_from_slice(&(-5i32).to_le_bytes());
    std::fs::write(&p, &v).unwrap();
    let e = Whisper::load(&p).unwrap_err().to_string();
    assert!(e.contains("-5"), "{e}");

    // Implausible hyperparameters (7 heads over 384).
    let mut h = header.clone();
    h[4 + 3 * 4..4 + 4 * 4].copy_from_slice(&7i32.to_le_bytes());
    std::fs::write(&p, &h).unwrap();
    assert!(!detect_whisper(&p));
    assert!(Whisper::load(&p).is_err());

    // Not a model at all.
    std::fs::write(&p, b"GGUF\x03\0\0\0 something else").unwrap();
    assert!(!detect_whisper(&p));
    assert!(Whisper::load(&p).is_err());
    assert!(!detect_whisper(Path::new("/nonexistent/whisper")));
    std::fs::remove_dir_all(dir).unwrap();
}
