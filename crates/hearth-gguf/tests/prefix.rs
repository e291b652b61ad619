//! `GgufFile::from_prefix`: a header read from the first bytes of a file.

use hearth_gguf::{GgmlType, GgufError, GgufFile, GgufWriter, Malformed, Value};

/// A small file with metadata (a string array, like a vocabulary) and two
/// tensors; returns the bytes and the offset of its data section.
fn file() -> (Vec<u8>, u64) {
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::from("llama"));
    let words: Vec<Value> = (0..300).map(|i| Value::from(format!("tok{i}"))).collect();
    w.set(
        "tokenizer.ggml.tokens",
        Value::Array(hearth_gguf::ValueType::String, words),
    );
    w.add_tensor("a", GgmlType::F32, &[64, 4], vec![1u8; 64 * 4 * 4])
        .expect("tensor a");
    w.add_tensor("b", GgmlType::F32, &[32], vec![2u8; 32 * 4])
        .expect("tensor b");
    let bytes = w.to_bytes().expect("bytes");
    let off = GgufFile::from_bytes(bytes.clone())
        .expect("parses")
        .data_offset();
    (bytes, off)
}

#[test]
fn header_prefix_parses_like_the_whole_file() {
    let (bytes, off) = file();
    let whole = GgufFile::from_bytes(bytes.clone()).expect("whole");
    assert!(whole.has_tensor_data());
    for len in [off as usize, off as usize + 7, bytes.len()] {
        let p = GgufFile::from_prefix(bytes[..len].to_vec(), bytes.len() as u64)
            .unwrap_or_else(|e| panic!("prefix of {len}: {e}"));
        assert!(!p.has_tensor_data());
        assert_eq!(p.metadata(), whole.metadata());
        assert_eq!(p.tensors(), whole.tensors());
        assert_eq!(p.data_offset(), off);
        // Data beyond the prefix reads as empty, never out of bounds.
        let b = p.tensor("b").expect("b");
        assert!(p.tensor_data(b).len() == 128 || len < bytes.len());
    }
}

#[test]
fn every_short_prefix_is_a_clear_error() {
    let (bytes, off) = file();
    let header_end = (0..=off as usize)
        .find(|&n| GgufFile::from_prefix(bytes[..n].to_vec(), bytes.len() as u64).is_ok())
        .expect("the whole header parses");
    for len in 0..header_end {
        match GgufFile::from_prefix(bytes[..len].to_vec(), bytes.len() as u64) {
            Err(GgufError::PrefixTooShort { have, needed }) => {
                assert_eq!(have, len as u64);
                assert!(needed > have, "{len}: needs {needed}");
                let msg = GgufError::PrefixTooShort { have, needed }.to_string();
                assert!(msg.contains("longer prefix"), "{msg}");
            }
            other => panic!("prefix of {len}: {other:?}"),
        }
    }
}

#[test]
fn prefix_longer_than_the_file_is_refused() {
    let (bytes, _) = file();
    let r = GgufFile::from_prefix(bytes.clone(), bytes.len() as u64 - 1);
    assert!(matches!(r, Err(GgufError::PrefixTooLong { .. })), "{r:?}");
}

#[test]
fn tensors_past_the_declared_length_are_refused() {
    let (bytes, off) = file();
    let r = GgufFile::from_prefix(bytes[..off as usize].to_vec(), off + 16);
    assert!(
        matches!(
            r,
            Err(GgufError::Malformed {
                kind: Malformed::TensorOutOfBounds { .. },
                ..
            })
        ),
        "{r:?}"
    );
}

#[test]
fn a_prefix_of_something_else_is_not_gguf() {
    let r = GgufFile::from_prefix(b"<html>not found</html>".to_vec(), 1 << 20);
    assert!(
        matches!(
            r,
            Err(GgufError::Malformed {
                kind: Malformed::BadMagic(_),
                ..
            })
        ),
        "{r:?}"
    );
}

/// A real model's header from its first bytes (as the hub client fetches it).
#[test]
fn real_model_header_from_a_prefix() {
    for m in hearth_testdata::RealModel::ALL {
        let Some(path) = hearth_testdata::model(m) else {
            continue;
        };
        let whole = GgufFile::open(&path).expect("open");
        let len = whole.bytes().len() as u64;
        let prefix = whole.bytes()[..8 << 20].to_vec();
        let p = GgufFile::from_prefix(prefix, len).expect("8 MiB hold the header");
        assert_eq!(p.tensors(), whole.tensors());
        let short = whole.bytes()[..1 << 20].to_vec();
        let e = GgufFile::from_prefix(short, len).expect_err("1 MiB is too short");
        assert!(matches!(e, GgufError::PrefixTooShort { .. }), "{e}");
    }
}
