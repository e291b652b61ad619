//! The writer: what it writes reads back identically, it honours the
//! alignment, writes files atomically and refuses tensors and values the
//! reader would refuse.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use hearth_gguf::{
    GgmlType, GgufError, GgufFile, GgufWriter, Value, ValueType, WriteError, MAX_NESTING,
};

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

/// The encoded size of a tensor of `ty` and `dims`.
fn size(ty: GgmlType, dims: &[u64]) -> usize {
    ty.row_bytes(dims.iter().product()).expect("valid shape") as usize
}

/// A fresh, empty directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("hearth-gguf-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One value of every type, including the edges of each range, empty and
/// nested arrays, and non-ASCII strings.
fn every_value() -> Vec<(&'static str, Value)> {
    vec![
        ("t.u8", Value::U8(u8::MAX)),
        ("t.i8", Value::I8(i8::MIN)),
        ("t.u16", Value::U16(u16::MAX)),
        ("t.i16", Value::I16(i16::MIN)),
        ("t.u32", Value::U32(u32::MAX)),
        ("t.i32", Value::I32(i32::MIN)),
        ("t.u64", Value::U64(u64::MAX)),
        ("t.i64", Value::I64(i64::MIN)),
        ("t.f32", Value::F32(f32::MIN_POSITIVE)),
        ("t.f64", Value::F64(-f64::MAX)),
        ("t.f32_inf", Value::F32(f32::NEG_INFINITY)),
        ("t.true", Value::Bool(true)),
        ("t.false", Value::Bool(false)),
        ("t.empty_string", Value::from("")),
        ("t.string", Value::from("héllo ▁wörld 🦀\n\0end")),
        ("t.empty_array", Value::Array(ValueType::I64, vec![])),
        (
            "t.u8s",
            Value::Array(ValueType::U8, (0..=255u8).map(Value::U8).collect()),
        ),
        (
            "t.i16s",
            Value::Array(ValueType::I16, vec![Value::I16(-1), Value::I16(1)]),
        ),
        (
            "t.f64s",
            Value::Array(ValueType::F64, vec![Value::F64(0.1), Value::F64(-2.0)]),
        ),
        (
            "t.bools",
            Value::Array(ValueType::Bool, vec![Value::Bool(true), Value::Bool(false)]),
        ),
        (
            "t.strings",
            Value::Array(
                ValueType::String,
                vec!["<s>".into(), "".into(), "Ġthe".into()],
            ),
        ),
        (
            "t.nested",
            Value::Array(
                ValueType::Array,
                vec![
                    Value::Array(ValueType::String, vec!["a".into(), "bc".into()]),
                    Value::Array(ValueType::U32, vec![Value::U32(7)]),
                    Value::Array(ValueType::F32, vec![]),
                    Value::Array(
                        ValueType::Array,
                        vec![Value::Array(ValueType::I8, vec![Value::I8(-1)])],
                    ),
                ],
            ),
        ),
    ]
}

#[test]
fn every_value_type_round_trips() {
    let mut w = GgufWriter::new();
    for (k, v) in every_value() {
        w.set(k, v);
    }
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    let got: Vec<(&str, &Value)> = f.metadata().iter().map(|(k, v)| (k.as_str(), v)).collect();
    let want = every_value();
    let want: Vec<(&str, &Value)> = want.iter().map(|(k, v)| (*k, v)).collect();
    assert_eq!(got, want);
    assert_eq!(f.version, 3);
    assert!(f.tensors().is_empty());
}

#[test]
fn f32_nan_bits_round_trip() {
    let nan = f32::from_bits(0x7fc0_1234);
    let mut w = GgufWriter::new();
    w.set("nan", Value::F32(nan));
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    match f.get("nan") {
        Some(Value::F32(x)) => assert_eq!(x.to_bits(), nan.to_bits()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn set_replaces_in_place() {
    let mut w = GgufWriter::new();
    w.set("a", Value::U32(1));
    w.set("b", Value::U32(2));
    w.set("a", Value::from("one"));
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    let keys: Vec<&str> = f.metadata().iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(f.get_str("a").unwrap(), "one");
}

#[test]
fn tensor_data_of_every_type_round_trips() {
    let mut w = GgufWriter::new();
    let mut want = Vec::new();
    for (i, ty) in GgmlType::ALL.into_iter().enumerate() {
        let dims = [ty.block_len() as u64 * 2, 3];
        let data = noise(i as u64 + 1, size(ty, &dims));
        let name = format!("t.{}", ty.name());
        w.add_tensor(&name, ty, &dims, data.clone()).unwrap();
        want.push((name, ty, dims, data));
    }
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert_eq!(f.tensors().len(), want.len());
    for (t, (name, ty, dims, data)) in f.tensors().iter().zip(&want) {
        assert_eq!(&t.name, name);
        assert_eq!(t.ty, *ty);
        assert_eq!(t.dims, dims);
        assert_eq!(t.size, data.len() as u64);
        assert_eq!(t.offset % 32, 0);
        assert_eq!(f.tensor_data(t), &data[..], "{name}");
    }
}

#[test]
fn custom_alignment_is_honoured() {
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::from("llama"));
    w.set("general.alignment", Value::U32(64));
    // Sizes that are not multiples of 64, so padding is needed between them.
    let shapes: [(&str, GgmlType, &[u64]); 3] = [
        ("a", GgmlType::F32, &[3]),
        ("b", GgmlType::Q8_0, &[32, 3]),
        ("c", GgmlType::Q4K, &[256]),
    ];
    let mut datas = Vec::new();
    for (i, (name, ty, dims)) in shapes.into_iter().enumerate() {
        let data = noise(40 + i as u64, size(ty, dims));
        w.add_tensor(name, ty, dims, data.clone()).unwrap();
        datas.push(data);
    }
    let bytes = w.to_bytes().unwrap();
    let f = GgufFile::from_bytes(bytes.clone()).unwrap();
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.data_offset() % 64, 0);
    let offsets: Vec<u64> = f.tensors().iter().map(|t| t.offset).collect();
    assert_eq!(offsets, [0, 64, 192]); // 12 → 64, 102 → 192
    for (t, data) in f.tensors().iter().zip(&datas) {
        assert_eq!(f.tensor_data(t), &data[..]);
    }
    // The padding is zeros and the file ends on the alignment.
    let d = f.data_offset() as usize;
    assert!(bytes[d + 12..d + 64].iter().all(|&x| x == 0));
    assert_eq!(bytes.len() % 64, 0);
}

#[test]
fn zero_sized_tensor_round_trips() {
    let mut w = GgufWriter::new();
    w.add_tensor("empty", GgmlType::F32, &[4, 0], vec![])
        .unwrap();
    w.add_tensor("one", GgmlType::F32, &[1], vec![1, 2, 3, 4])
        .unwrap();
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    let e = f.tensor("empty").unwrap();
    assert_eq!((e.size, f.tensor_data(e)), (0, &[][..]));
    assert_eq!(f.tensor_data(f.tensor("one").unwrap()), [1, 2, 3, 4]);
}

#[test]
fn write_file_then_open() {
    let dir = TempDir::new("write");
    let path = dir.path().join("m.gguf");
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::from("llama"));
    w.add_tensor("x", GgmlType::F32, &[2], noise(9, 8)).unwrap();
    w.write_file(&path).unwrap();
    assert_eq!(dir.entries(), ["m.gguf"]); // no temporary left behind
    assert_eq!(std::fs::read(&path).unwrap(), w.to_bytes().unwrap());
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.tensor_data(f.tensor("x").unwrap()), noise(9, 8));
}

#[test]
fn write_file_into_missing_directory_leaves_nothing() {
    let dir = TempDir::new("missing");
    let path = dir.path().join("no/such/dir/m.gguf");
    let err = GgufWriter::new().write_file(&path).unwrap_err();
    assert!(matches!(err, WriteError::Io(_)), "{err}");
    assert!(!path.exists());
    assert!(dir.entries().is_empty());
}

#[test]
fn failed_write_keeps_the_old_file() {
    // The writer fails part-way (a mixed array is found after the header
    // was written): the file already at the path stays as it was and the
    // temporary is removed.
    let dir = TempDir::new("atomic");
    let path = dir.path().join("m.gguf");
    std::fs::write(&path, b"old contents").unwrap();
    let mut w = GgufWriter::new();
    w.set("general.name", Value::from("new"));
    w.set(
        "mixed",
        Value::Array(ValueType::U32, vec![Value::U32(1), Value::from("x")]),
    );
    let err = w.write_file(&path).unwrap_err();
    assert!(
        matches!(err, WriteError::MixedArray(ValueType::U32)),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"old contents");
    assert_eq!(dir.entries(), ["m.gguf"]);
}

#[test]
fn open_missing_file_is_an_io_error() {
    let dir = TempDir::new("open");
    let err = GgufFile::open(dir.path().join("absent.gguf")).unwrap_err();
    assert!(matches!(err, GgufError::Io { .. }), "{err}");
    assert!(err.to_string().contains("absent.gguf"), "{err}");
}

#[test]
fn add_tensor_rejects_size_mismatch() {
    let mut w = GgufWriter::new();
    let err = w
        .add_tensor("q", GgmlType::Q8_0, &[64, 2], vec![0; 135])
        .unwrap_err();
    match &err {
        WriteError::SizeMismatch { got, want, .. } => assert_eq!((*got, *want), (135, 136)),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("'q'"), "{err}");
    // Nothing was added.
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert!(f.tensors().is_empty());
}

#[test]
fn add_tensor_rejects_bad_shapes() {
    let cases: [(GgmlType, &[u64]); 6] = [
        (GgmlType::F32, &[]),                 // no dims
        (GgmlType::F32, &[1, 1, 1, 1, 1]),    // five dims
        (GgmlType::Q4K, &[100]),              // row not a block multiple
        (GgmlType::Q8_0, &[48, 2]),           // row not a block multiple
        (GgmlType::F32, &[1 << 32, 1 << 32]), // element count overflows
        (GgmlType::F32, &[1 << 63, 0]),       // a dim the reader refuses
    ];
    for (ty, dims) in cases {
        let mut w = GgufWriter::new();
        match w.add_tensor("t", ty, dims, vec![]) {
            Err(WriteError::BadShape { dims: d, .. }) => assert_eq!(d, dims),
            other => panic!("{ty} {dims:?}: {other:?}"),
        }
    }
}

#[test]
fn add_tensor_rejects_duplicate_names() {
    let mut w = GgufWriter::new();
    w.add_tensor("t", GgmlType::F32, &[1], vec![0; 4]).unwrap();
    let err = w.add_tensor("t", GgmlType::F32, &[1], vec![0; 4]);
    assert!(matches!(err, Err(WriteError::DuplicateTensor(n)) if n == "t"));
}

#[test]
fn nesting_limit_is_shared_with_the_reader() {
    fn nested(levels: u32) -> Value {
        let mut v = Value::Array(ValueType::U8, vec![Value::U8(1)]);
        for _ in 1..levels {
            v = Value::Array(ValueType::Array, vec![v]);
        }
        v
    }
    let mut w = GgufWriter::new();
    w.set("deep", nested(MAX_NESTING));
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert_eq!(f.get("deep"), Some(&nested(MAX_NESTING)));

    w.set("deep", nested(MAX_NESTING + 1));
    assert!(matches!(w.to_bytes(), Err(WriteError::NestingTooDeep)));
}
