//! Writes a small seed corpus for the `gguf_parse` fuzz target: valid tiny
//! GGUF files that between them use every metadata value type, nested
//! arrays, a custom alignment and tensors of several block formats.
//!
//! Usage: `cargo run --bin gguf_seeds -- [DIR]` (default `corpus/gguf_parse`).

use std::path::PathBuf;

use hearth_gguf::{GgmlType, GgufWriter, Value, ValueType};

fn filler(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

fn add(w: &mut GgufWriter, name: &str, ty: GgmlType, dims: &[u64]) {
    let n: u64 = dims.iter().product();
    let size = ty.row_bytes(n).expect("valid shape") as usize;
    w.add_tensor(name, ty, dims, filler(size as u64, size))
        .expect("valid tensor");
}

fn seeds() -> Vec<(&'static str, GgufWriter)> {
    let empty = GgufWriter::new();

    let mut scalars = GgufWriter::new();
    scalars.set("general.architecture", Value::from("llama"));
    scalars.set("a.u8", Value::U8(1));
    scalars.set("a.i8", Value::I8(-1));
    scalars.set("a.u16", Value::U16(2));
    scalars.set("a.i16", Value::I16(-2));
    scalars.set("a.u32", Value::U32(3));
    scalars.set("a.i32", Value::I32(-3));
    scalars.set("a.u64", Value::U64(4));
    scalars.set("a.i64", Value::I64(-4));
    scalars.set("a.f32", Value::F32(0.5));
    scalars.set("a.f64", Value::F64(0.25));
    scalars.set("a.bool", Value::Bool(true));

    let mut arrays = GgufWriter::new();
    arrays.set(
        "tokenizer.ggml.tokens",
        Value::Array(ValueType::String, vec!["<s>".into(), "a".into()]),
    );
    arrays.set(
        "tokenizer.ggml.scores",
        Value::Array(ValueType::F32, vec![Value::F32(0.0), Value::F32(-1.0)]),
    );
    arrays.set(
        "a.nested",
        Value::Array(
            ValueType::Array,
            vec![Value::Array(ValueType::U8, vec![Value::U8(9)])],
        ),
    );

    let mut model = GgufWriter::new();
    model.set("general.architecture", Value::from("llama"));
    model.set("llama.block_count", Value::U32(1));
    add(&mut model, "token_embd.weight", GgmlType::Q8_0, &[32, 2]);
    add(&mut model, "blk.0.attn_q.weight", GgmlType::Q4K, &[256, 1]);
    add(&mut model, "output_norm.weight", GgmlType::F32, &[4]);

    let mut aligned = GgufWriter::new();
    aligned.set("general.alignment", Value::U32(64));
    add(&mut aligned, "a", GgmlType::F16, &[3]);
    add(&mut aligned, "b", GgmlType::Q6K, &[256]);

    vec![
        ("empty.gguf", empty),
        ("scalars.gguf", scalars),
        ("arrays.gguf", arrays),
        ("model.gguf", model),
        ("aligned64.gguf", aligned),
    ]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("corpus/gguf_parse"));
    std::fs::create_dir_all(&dir)?;
    for (name, w) in seeds() {
        w.write_file(dir.join(name))?;
    }
    println!("wrote {} seeds to {}", seeds().len(), dir.display());
    Ok(())
}
