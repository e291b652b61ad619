//! A corpus of broken GGUF files. Each case starts from one valid tiny model
//! written with `GgufWriter`, corrupts it in one way, and checks that the
//! reader refuses it with the right `Malformed` variant at the right byte
//! offset, and that the message names both. Two sweeps then truncate the
//! model at every length and overwrite every header byte: the reader may
//! accept or refuse, but it must never panic.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::panic::{catch_unwind, AssertUnwindSafe};

use hearth_gguf::{
    GgmlType, GgufError, GgufFile, GgufWriter, Malformed, Value, ValueType, MAX_HEADER_HEAP,
    MAX_NESTING,
};

// ---------------------------------------------------------------------------
// The valid model

/// The tensors of the tiny model, in file order. With the default alignment
/// of 32 they sit at data offsets 0 (136 bytes), 160 (144 bytes) and 320
/// (32 bytes); the last one ends on the alignment, so the file has no
/// trailing padding and every proper prefix of it is broken.
const TENSORS: [(&str, GgmlType, &[u64]); 3] = [
    ("blk.q8_0", GgmlType::Q8_0, &[64, 2]),
    ("blk.q4_k", GgmlType::Q4K, &[256, 1]),
    ("out.f32", GgmlType::F32, &[4, 2]),
];

/// Deterministic filler bytes (xorshift64).
fn noise(mut seed: u64, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// `levels` arrays nested in one another; the innermost is an empty u32
/// array.
fn nested(levels: u32) -> Value {
    let mut v = Value::Array(ValueType::U32, vec![]);
    for _ in 1..levels {
        v = Value::Array(ValueType::Array, vec![v]);
    }
    v
}

fn tiny_model() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::from("llama"));
    w.set("general.name", Value::from("tiny"));
    w.set("general.alignment", Value::U32(32));
    w.set("tiny.u8", Value::U8(7));
    w.set("tiny.i8", Value::I8(-7));
    w.set("tiny.u16", Value::U16(700));
    w.set("tiny.i16", Value::I16(-700));
    w.set("tiny.u32", Value::U32(70_000));
    w.set("tiny.i32", Value::I32(-70_000));
    w.set("tiny.u64", Value::U64(7 << 40));
    w.set("tiny.i64", Value::I64(-7 << 40));
    w.set("tiny.f32", Value::F32(0.5));
    w.set("tiny.f64", Value::F64(-0.25));
    w.set("tiny.bool", Value::Bool(true));
    w.set("tiny.dup_a", Value::U32(1));
    w.set("tiny.dup_b", Value::U32(2));
    w.set(
        "tiny.nested",
        Value::Array(
            ValueType::Array,
            vec![
                Value::Array(ValueType::U32, vec![Value::U32(1), Value::U32(2)]),
                Value::Array(ValueType::U32, vec![Value::U32(3)]),
            ],
        ),
    );
    w.set("tiny.deep", nested(MAX_NESTING));
    w.set(
        "tokenizer.ggml.tokens",
        Value::Array(
            ValueType::String,
            vec!["<s>".into(), "</s>".into(), "hello".into()],
        ),
    );
    w.set(
        "tokenizer.ggml.scores",
        Value::Array(
            ValueType::F32,
            vec![Value::F32(0.0), Value::F32(-1.0), Value::F32(-2.5)],
        ),
    );
    w.set("zzz.last", Value::from("end"));
    for (i, (name, ty, dims)) in TENSORS.into_iter().enumerate() {
        let n: u64 = dims.iter().product();
        let size = ty.row_bytes(n).expect("valid shape") as usize;
        w.add_tensor(name, ty, dims, noise(i as u64 + 1, size))
            .expect("valid tensor");
    }
    w.to_bytes().expect("in-memory write")
}

// ---------------------------------------------------------------------------
// Finding and patching fields of the valid model

/// The offset of `needle`, which must occur exactly once in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> usize {
    let hits: Vec<usize> = hay
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1, "{:?} occurs {} times", needle, hits.len());
    hits[0]
}

/// The offset of an encoded GGUF string (its u64 length prefix).
fn string_at(b: &[u8], s: &str) -> usize {
    let mut needle = (s.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(s.as_bytes());
    find(b, &needle)
}

/// Where a metadata pair starts (the key's length prefix).
fn key_at(b: &[u8], key: &str) -> usize {
    string_at(b, key)
}

/// Where a metadata pair's u32 value type sits.
fn type_at(b: &[u8], key: &str) -> usize {
    key_at(b, key) + 8 + key.len()
}

/// Where a metadata pair's value starts.
fn value_at(b: &[u8], key: &str) -> usize {
    type_at(b, key) + 4
}

/// The fields of one tensor info.
struct Info {
    start: usize,
    n_dims: usize,
    dims: usize,
    ty: usize,
    offset: usize,
    end: usize,
}

fn info(b: &[u8], name: &str) -> Info {
    let start = string_at(b, name);
    let n_dims_at = start + 8 + name.len();
    let n = u32::from_le_bytes(b[n_dims_at..n_dims_at + 4].try_into().unwrap()) as usize;
    let dims = n_dims_at + 4;
    let ty = dims + 8 * n;
    Info {
        start,
        n_dims: n_dims_at,
        dims,
        ty,
        offset: ty + 4,
        end: ty + 12,
    }
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Parses `bytes`, which must be refused as malformed at byte `offset` with
/// a message that says so and contains `phrase`; returns the kind.
#[track_caller]
fn refuse(bytes: Vec<u8>, offset: u64, phrase: &str) -> Malformed {
    let err = match GgufFile::from_bytes(bytes) {
        Ok(_) => panic!("accepted a file that should fail at byte {offset} ({phrase})"),
        Err(e) => e,
    };
    let text = err.to_string();
    match err {
        GgufError::Malformed { offset: got, kind } => {
            assert_eq!(got, offset, "wrong offset in: {text}");
            assert!(
                text.starts_with(&format!("at byte {offset}: ")),
                "offset not in message: {text}"
            );
            assert!(
                text.contains(phrase),
                "{text:?} does not mention {phrase:?}"
            );
            kind
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn truncated(wanted: u64, available: u64) -> Malformed {
    Malformed::Truncated { wanted, available }
}

fn too_large(what: &'static str, count: u64, max: u64) -> Malformed {
    Malformed::CountTooLarge { what, count, max }
}

// ---------------------------------------------------------------------------
// The valid model itself

#[test]
fn tiny_model_is_valid() {
    let b = tiny_model();
    let f = GgufFile::from_bytes(b.clone()).expect("valid model");
    assert_eq!(f.architecture().unwrap(), "llama");
    assert_eq!(f.get("tiny.deep"), Some(&nested(MAX_NESTING)));
    let offsets: Vec<u64> = f.tensors().iter().map(|t| t.offset).collect();
    assert_eq!(offsets, [0, 160, 320]);
    let last = &f.tensors()[2];
    assert_eq!(f.data_offset() + last.offset + last.size, b.len() as u64);
    // The tensor infos end before the data section, so there is padding to
    // truncate in (see `truncated_in_padding`).
    assert!(info(&b, "out.f32").end < f.data_offset() as usize);
}

// ---------------------------------------------------------------------------
// Header: magic, version, counts

#[test]
fn empty_file() {
    assert_eq!(refuse(vec![], 0, "truncated"), truncated(4, 0));
}

#[test]
fn empty_file_on_disk() {
    let path = std::env::temp_dir().join(format!("hearth-gguf-empty-{}.gguf", std::process::id()));
    std::fs::write(&path, b"").unwrap();
    let r = GgufFile::open(&path);
    std::fs::remove_file(&path).unwrap();
    match r {
        Err(GgufError::Malformed { offset: 0, kind }) => assert_eq!(kind, truncated(4, 0)),
        other => panic!("expected a truncation at byte 0, got {other:?}"),
    }
}

#[test]
fn wrong_magic() {
    let mut b = tiny_model();
    b[..4].copy_from_slice(b"GGML");
    assert_eq!(
        refuse(b, 0, "not a GGUF file"),
        Malformed::BadMagic(*b"GGML")
    );
}

#[test]
fn truncated_in_magic() {
    let b = tiny_model()[..3].to_vec();
    assert_eq!(refuse(b, 0, "truncated"), truncated(4, 3));
}

#[test]
fn version_1() {
    let mut b = tiny_model();
    put_u32(&mut b, 4, 1);
    assert_eq!(
        refuse(b, 4, "unsupported GGUF version 1"),
        Malformed::UnsupportedVersion(1)
    );
}

#[test]
fn version_4() {
    let mut b = tiny_model();
    put_u32(&mut b, 4, 4);
    assert_eq!(
        refuse(b, 4, "unsupported GGUF version 4"),
        Malformed::UnsupportedVersion(4)
    );
}

#[test]
fn big_endian_version() {
    let mut b = tiny_model();
    b[4..8].copy_from_slice(&3u32.to_be_bytes());
    assert_eq!(refuse(b, 4, "big-endian"), Malformed::BigEndian(3));
}

#[test]
fn truncated_in_version() {
    let b = tiny_model()[..6].to_vec();
    assert_eq!(refuse(b, 4, "truncated"), truncated(4, 2));
}

#[test]
fn truncated_in_tensor_count() {
    let b = tiny_model()[..12].to_vec();
    assert_eq!(refuse(b, 8, "truncated"), truncated(8, 4));
}

#[test]
fn truncated_in_metadata_count() {
    let b = tiny_model()[..20].to_vec();
    assert_eq!(refuse(b, 16, "truncated"), truncated(8, 4));
}

#[test]
fn tensor_count_huge() {
    let mut b = tiny_model();
    put_u64(&mut b, 8, u64::MAX);
    let max = (b.len() as u64 - 24) / 32;
    assert_eq!(
        refuse(b, 8, "tensor count 18446744073709551615 cannot fit"),
        too_large("tensor count", u64::MAX, max)
    );
}

#[test]
fn metadata_count_huge() {
    let mut b = tiny_model();
    put_u64(&mut b, 16, 1 << 40);
    let max = (b.len() as u64 - 24) / 13;
    assert_eq!(
        refuse(b, 16, "metadata count"),
        too_large("metadata count", 1 << 40, max)
    );
}

// ---------------------------------------------------------------------------
// Metadata

#[test]
fn truncated_in_key() {
    let b = tiny_model();
    let at = key_at(&b, "zzz.last");
    let b = b[..at + 8 + 3].to_vec();
    assert_eq!(
        refuse(b, at as u64, "string length 8 cannot fit"),
        too_large("string length", 8, 3)
    );
}

#[test]
fn truncated_in_value_type() {
    let b = tiny_model();
    let at = type_at(&b, "zzz.last");
    let b = b[..at + 1].to_vec();
    assert_eq!(refuse(b, at as u64, "truncated"), truncated(4, 1));
}

#[test]
fn truncated_in_string_value() {
    let b = tiny_model();
    let at = value_at(&b, "zzz.last");
    let b = b[..at + 8 + 1].to_vec();
    assert_eq!(
        refuse(b, at as u64, "string length 3"),
        too_large("string length", 3, 1)
    );
}

#[test]
fn truncated_in_scalar_value() {
    let b = tiny_model();
    let at = value_at(&b, "tiny.i64");
    let b = b[..at + 5].to_vec();
    assert_eq!(refuse(b, at as u64, "truncated"), truncated(8, 5));
}

#[test]
fn truncated_in_array_length() {
    let b = tiny_model();
    let at = value_at(&b, "tokenizer.ggml.tokens") + 4;
    let b = b[..at + 3].to_vec();
    assert_eq!(refuse(b, at as u64, "truncated"), truncated(8, 3));
}

#[test]
fn truncated_in_array_elements() {
    let b = tiny_model();
    let at = value_at(&b, "tokenizer.ggml.scores") + 4;
    let b = b[..at + 8 + 5].to_vec();
    assert_eq!(
        refuse(b, at as u64, "array length 3 cannot fit"),
        too_large("array length", 3, 1)
    );
}

#[test]
fn truncated_in_string_inside_array() {
    let b = tiny_model();
    let at = string_at(&b, "hello");
    let b = b[..at + 8 + 2].to_vec();
    assert_eq!(
        refuse(b, at as u64, "string length 5"),
        too_large("string length", 5, 2)
    );
}

#[test]
fn string_length_beyond_file() {
    let mut b = tiny_model();
    let at = value_at(&b, "general.name");
    put_u64(&mut b, at, 1 << 40);
    let max = (b.len() - at - 8) as u64;
    assert_eq!(
        refuse(
            b,
            at as u64,
            "string length 1099511627776 cannot fit in the file"
        ),
        too_large("string length", 1 << 40, max)
    );
}

#[test]
fn array_length_beyond_file() {
    let mut b = tiny_model();
    let at = value_at(&b, "tokenizer.ggml.tokens") + 4;
    put_u64(&mut b, at, 1 << 30);
    // Each string element needs at least its 8-byte length.
    let max = (b.len() - at - 8) as u64 / 8;
    assert_eq!(
        refuse(b, at as u64, "array length 1073741824"),
        too_large("array length", 1 << 30, max)
    );
}

#[test]
fn array_length_u64_max() {
    let mut b = tiny_model();
    let at = value_at(&b, "tokenizer.ggml.scores") + 4;
    put_u64(&mut b, at, u64::MAX);
    let max = (b.len() - at - 8) as u64 / 4;
    assert_eq!(
        refuse(b, at as u64, "array length"),
        too_large("array length", u64::MAX, max)
    );
}

#[test]
fn array_past_header_memory_limit() {
    // A u8 array whose length fits in the (padded) file but whose parsed
    // values would take more than MAX_HEADER_HEAP.
    let n = MAX_HEADER_HEAP / std::mem::size_of::<Value>() as u64 + 1;
    let mut w = GgufWriter::new();
    w.set(
        "tiny.bytes",
        Value::Array(ValueType::U8, vec![Value::U8(1)]),
    );
    let mut b = w.to_bytes().unwrap();
    b.resize(b.len() + n as usize, 0);
    let at = value_at(&b, "tiny.bytes") + 4;
    put_u64(&mut b, at, n);
    assert_eq!(
        refuse(b, at as u64, "memory limit"),
        Malformed::HeaderTooLarge {
            what: "array length",
            count: n,
            limit: MAX_HEADER_HEAP,
        }
    );
}

#[test]
fn unknown_value_type() {
    let mut b = tiny_model();
    let at = type_at(&b, "tiny.u32");
    put_u32(&mut b, at, 13);
    assert_eq!(
        refuse(b, at as u64, "unknown metadata value type 13"),
        Malformed::UnknownValueType(13)
    );
}

#[test]
fn unknown_array_element_type() {
    let mut b = tiny_model();
    let at = value_at(&b, "tokenizer.ggml.scores");
    put_u32(&mut b, at, 99);
    assert_eq!(
        refuse(b, at as u64, "unknown metadata value type 99"),
        Malformed::UnknownValueType(99)
    );
}

#[test]
fn nesting_too_deep() {
    // `tiny.deep` is MAX_NESTING arrays, each an element type and a count
    // (12 bytes); make the innermost hold one more array.
    let mut b = tiny_model();
    let inner = value_at(&b, "tiny.deep") + 12 * (MAX_NESTING as usize - 1);
    assert_eq!(b[inner..inner + 12], [4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    put_u32(&mut b, inner, ValueType::Array as u32);
    put_u64(&mut b, inner + 4, 1);
    assert_eq!(
        refuse(b, (inner + 12) as u64, "nested too deeply"),
        Malformed::NestingTooDeep
    );
}

#[test]
fn duplicate_key() {
    let mut b = tiny_model();
    let at = key_at(&b, "tiny.dup_b");
    b[at + 8..at + 8 + 10].copy_from_slice(b"tiny.dup_a");
    assert_eq!(
        refuse(b, at as u64, "duplicate metadata key 'tiny.dup_a'"),
        Malformed::DuplicateKey("tiny.dup_a".into())
    );
}

#[test]
fn invalid_utf8_key() {
    let mut b = tiny_model();
    let at = key_at(&b, "tiny.u8");
    b[at + 8 + 5] = 0xff;
    assert_eq!(
        refuse(b, at as u64, "not valid UTF-8"),
        Malformed::InvalidUtf8
    );
}

#[test]
fn invalid_utf8_string_value() {
    let mut b = tiny_model();
    let at = string_at(&b, "</s>");
    b[at + 8 + 1] = 0xc3; // a lead byte followed by 's', not a continuation
    assert_eq!(
        refuse(b, at as u64, "not valid UTF-8"),
        Malformed::InvalidUtf8
    );
}

#[test]
fn alignment_zero() {
    let mut b = tiny_model();
    let at = key_at(&b, "general.alignment");
    let value = value_at(&b, "general.alignment");
    put_u32(&mut b, value, 0);
    assert_eq!(
        refuse(b, at as u64, "general.alignment 0 is not a power of two"),
        Malformed::BadAlignment(0)
    );
}

#[test]
fn alignment_not_power_of_two() {
    let mut b = tiny_model();
    let at = key_at(&b, "general.alignment");
    let value = value_at(&b, "general.alignment");
    put_u32(&mut b, value, 48);
    assert_eq!(
        refuse(b, at as u64, "general.alignment 48"),
        Malformed::BadAlignment(48)
    );
}

// ---------------------------------------------------------------------------
// Tensor infos

#[test]
fn truncated_in_tensor_name() {
    let b = tiny_model();
    let t = info(&b, "blk.q4_k");
    let b = b[..t.start + 8 + 3].to_vec();
    assert_eq!(
        refuse(b, t.start as u64, "string length 8"),
        too_large("string length", 8, 3)
    );
}

#[test]
fn truncated_in_tensor_dims() {
    let b = tiny_model();
    let t = info(&b, "blk.q4_k");
    let b = b[..t.dims + 5].to_vec();
    assert_eq!(refuse(b, t.dims as u64, "truncated"), truncated(8, 5));
}

#[test]
fn truncated_in_tensor_offset() {
    let b = tiny_model();
    let t = info(&b, "out.f32");
    let b = b[..t.offset + 7].to_vec();
    assert_eq!(refuse(b, t.offset as u64, "truncated"), truncated(8, 7));
}

#[test]
fn truncated_in_padding() {
    let b = tiny_model();
    let end = info(&b, "out.f32").end;
    let data = end.div_ceil(32) * 32;
    let b = b[..end + 1].to_vec();
    assert_eq!(
        refuse(b, end as u64, "truncated"),
        truncated((data - end) as u64, 1)
    );
}

#[test]
fn invalid_utf8_tensor_name() {
    let mut b = tiny_model();
    let t = info(&b, "out.f32");
    b[t.start + 8] = 0x80;
    assert_eq!(
        refuse(b, t.start as u64, "not valid UTF-8"),
        Malformed::InvalidUtf8
    );
}

#[test]
fn duplicate_tensor() {
    let mut b = tiny_model();
    let t = info(&b, "blk.q4_k");
    b[t.start + 8..t.start + 16].copy_from_slice(b"blk.q8_0");
    assert_eq!(
        refuse(b, t.start as u64, "duplicate tensor name 'blk.q8_0'"),
        Malformed::DuplicateTensor("blk.q8_0".into())
    );
}

#[test]
fn unknown_tensor_type() {
    let mut b = tiny_model();
    let t = info(&b, "out.f32");
    put_u32(&mut b, t.ty, 99);
    assert_eq!(
        refuse(b, t.start as u64, "unknown type id 99"),
        Malformed::UnknownTensorType {
            tensor: "out.f32".into(),
            id: 99
        }
    );
}

#[test]
fn unsupported_tensor_type() {
    let mut b = tiny_model();
    let t = info(&b, "out.f32");
    put_u32(&mut b, t.ty, 31);
    assert_eq!(
        refuse(b, t.start as u64, "Q4_0_4_4 (removed)"),
        Malformed::UnsupportedTensorType {
            tensor: "out.f32".into(),
            name: "Q4_0_4_4 (removed)"
        }
    );
}

#[test]
fn five_dims() {
    let mut b = tiny_model();
    let t = info(&b, "out.f32");
    put_u32(&mut b, t.n_dims, 5);
    assert_eq!(
        refuse(b, t.start as u64, "5 dimensions"),
        Malformed::TooManyDims {
            tensor: "out.f32".into(),
            n_dims: 5
        }
    );
}

#[test]
fn dim_2_pow_63() {
    let mut b = tiny_model();
    let t = info(&b, "out.f32");
    put_u64(&mut b, t.dims + 8, 1 << 63);
    assert_eq!(
        refuse(b, t.start as u64, "invalid dimension 9223372036854775808"),
        Malformed::BadDim {
            tensor: "out.f32".into(),
            dim: 1 << 63
        }
    );
}

#[test]
fn dims_product_overflows() {
    let overflow = Malformed::ElementCountOverflow {
        tensor: "out.f32".into(),
    };
    // 2^64 elements; 3·2^62 elements (fits u64, not i64); 2^62 elements of
    // 4 bytes (the element count fits, the byte size does not).
    for (d0, d1) in [(1 << 32, 1 << 32), (1 << 62, 3), (1 << 61, 2)] {
        let mut b = tiny_model();
        let t = info(&b, "out.f32");
        put_u64(&mut b, t.dims, d0);
        put_u64(&mut b, t.dims + 8, d1);
        assert_eq!(refuse(b, t.start as u64, "overflows"), overflow);
    }
}

#[test]
fn row_not_block_multiple() {
    let mut b = tiny_model();
    let t = info(&b, "blk.q8_0");
    put_u64(&mut b, t.dims, 48);
    assert_eq!(
        refuse(
            b,
            t.start as u64,
            "row length 48 is not a multiple of its block size 32"
        ),
        Malformed::RowNotBlockAligned {
            tensor: "blk.q8_0".into(),
            row: 48,
            block: 32
        }
    );
    let mut b = tiny_model();
    let t = info(&b, "blk.q4_k");
    put_u64(&mut b, t.dims, 128);
    assert_eq!(
        refuse(b, t.start as u64, "block size 256"),
        Malformed::RowNotBlockAligned {
            tensor: "blk.q4_k".into(),
            row: 128,
            block: 256
        }
    );
}

#[test]
fn misaligned_offset() {
    let mut b = tiny_model();
    let t = info(&b, "blk.q4_k");
    put_u64(&mut b, t.offset, 161);
    assert_eq!(
        refuse(
            b,
            t.start as u64,
            "offset 161 is not a multiple of the alignment 32"
        ),
        Malformed::MisalignedTensor {
            tensor: "blk.q4_k".into(),
            offset: 161,
            alignment: 32
        }
    );
}

// ---------------------------------------------------------------------------
// Tensor data

fn data_len(b: &[u8]) -> u64 {
    let f = GgufFile::from_bytes(b.to_vec()).expect("valid model");
    b.len() as u64 - f.data_offset()
}

#[test]
fn tensor_data_outside_file() {
    let mut b = tiny_model();
    let data_len = data_len(&b);
    let t = info(&b, "blk.q4_k");
    put_u64(&mut b, t.offset, 1 << 20);
    assert_eq!(
        refuse(b, t.start as u64, "lies outside the data section"),
        Malformed::TensorOutOfBounds {
            tensor: "blk.q4_k".into(),
            start: 1 << 20,
            end: (1 << 20) + 144,
            data_len
        }
    );
}

#[test]
fn tensor_end_overflows() {
    let mut b = tiny_model();
    let data_len = data_len(&b);
    let t = info(&b, "blk.q4_k");
    let start = u64::MAX - 31;
    put_u64(&mut b, t.offset, start);
    assert_eq!(
        refuse(b, t.start as u64, "lies outside the data section"),
        Malformed::TensorOutOfBounds {
            tensor: "blk.q4_k".into(),
            start,
            end: u64::MAX,
            data_len
        }
    );
}

#[test]
fn truncated_in_tensor_data() {
    let b = tiny_model();
    let data_len = data_len(&b);
    let t = info(&b, "out.f32");
    let b = b[..b.len() - 10].to_vec();
    assert_eq!(
        refuse(b, t.start as u64, "'out.f32' data [320, 352)"),
        Malformed::TensorOutOfBounds {
            tensor: "out.f32".into(),
            start: 320,
            end: 352,
            data_len: data_len - 10
        }
    );
}

#[test]
fn overlapping_tensors() {
    let mut b = tiny_model();
    let t = info(&b, "blk.q4_k");
    put_u64(&mut b, t.offset, 128); // blk.q8_0 covers [0, 136)
    assert_eq!(
        refuse(
            b,
            t.start as u64,
            "tensors 'blk.q8_0' and 'blk.q4_k' overlap"
        ),
        Malformed::TensorOverlap {
            a: "blk.q8_0".into(),
            b: "blk.q4_k".into()
        }
    );
}

// ---------------------------------------------------------------------------
// Sweeps: no input may panic

/// Parses `bytes` and, when accepted, touches everything a caller would.
fn parse_and_walk(bytes: Vec<u8>) -> Result<(), GgufError> {
    let f = GgufFile::from_bytes(bytes)?;
    for (k, v) in f.metadata() {
        assert_eq!(f.get(k), Some(v));
        let _ = v.display_short(4);
    }
    for t in f.tensors() {
        assert_eq!(f.tensor_data(t).len() as u64, t.size);
        assert_eq!(f.tensor(&t.name), Some(t));
    }
    Ok(())
}

#[test]
fn every_truncation_is_refused() {
    let b = tiny_model();
    for len in 0..b.len() {
        let r = catch_unwind(AssertUnwindSafe(|| parse_and_walk(b[..len].to_vec())));
        match r {
            Ok(Err(GgufError::Malformed { offset, .. })) => {
                assert!(offset <= len as u64, "offset {offset} past the end ({len})")
            }
            Ok(Err(e)) => panic!("truncated to {len} bytes: unexpected error {e}"),
            Ok(Ok(())) => panic!("truncated to {len} bytes: accepted"),
            Err(_) => panic!("truncated to {len} bytes: the reader panicked"),
        }
    }
}

#[test]
fn header_byte_overwrites_never_panic() {
    let b = tiny_model();
    let header = GgufFile::from_bytes(b.clone()).unwrap().data_offset() as usize;
    let mut refused = 0;
    for i in 0..header {
        for v in [0x00, 0xff] {
            if b[i] == v {
                continue;
            }
            let mut c = b.clone();
            c[i] = v;
            match catch_unwind(AssertUnwindSafe(|| parse_and_walk(c))) {
                Ok(Ok(())) => {}
                Ok(Err(_)) => refused += 1,
                Err(_) => panic!("byte {i} set to {v:#04x}: the reader panicked"),
            }
        }
    }
    // Most overwrites land in lengths, counts and types; many must be caught.
    assert!(
        refused > header / 2,
        "only {refused} overwrites were refused"
    );
}

#[test]
fn random_overwrites_never_panic() {
    // A cheap, deterministic stand-in for the fuzzer: 3,000 copies of the
    // model with one to four bytes anywhere set to random values.
    let b = tiny_model();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..3_000 {
        let mut c = b.clone();
        for _ in 0..=next() % 4 {
            let i = (next() % c.len() as u64) as usize;
            c[i] = next() as u8;
        }
        if catch_unwind(AssertUnwindSafe(|| parse_and_walk(c))).is_err() {
            panic!("round {round}: the reader panicked");
        }
    }
}
