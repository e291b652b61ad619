//! A file hearth does not fully understand must not load: a tensor no
//! block takes, a RoPE scaling type or pooling type it does not implement,
//! an unknown architecture, a crafted layer count. Files are crafted from a
//! synthetic model with the GGUF writer.

use std::sync::Arc;

use hearth_gguf::{GgmlType, GgufFile, GgufWriter, Value};
use hearth_model::synth::{build, writer_of, SynthSpec};
use hearth_model::{Arch, Config, Model, ModelError, ARCHS};

fn llama() -> GgufFile {
    GgufFile::from_bytes(build(&SynthSpec::new(Arch::Llama))).unwrap()
}

/// The synthetic Llama with `edit` applied, loaded.
fn load_variant(edit: impl FnOnce(&mut GgufWriter)) -> Result<Model, ModelError> {
    let mut w = writer_of(&llama());
    edit(&mut w);
    Model::from_file(Arc::new(
        GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap(),
    ))
}

fn message(r: Result<Model, ModelError>) -> String {
    match r {
        Ok(_) => panic!("the variant loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_unmodified_file_loads() {
    load_variant(|_| {}).unwrap();
}

#[test]
fn an_extra_tensor_fails_the_load_naming_it() {
    let r = load_variant(|w| {
        w.add_tensor(
            "blk.1.attn_mystery.weight",
            GgmlType::F32,
            &[64],
            vec![0; 256],
        )
        .unwrap();
    });
    match r {
        Err(ModelError::UnusedTensor(name, arch)) => {
            assert_eq!(
                (name.as_str(), arch),
                ("blk.1.attn_mystery.weight", "llama")
            )
        }
        other => panic!("expected UnusedTensor, got {:?}", other.err()),
    }
}

#[test]
fn an_unsupported_rope_scaling_type_fails_naming_the_key() {
    let m = message(load_variant(|w| {
        w.set("llama.rope.scaling.type", Value::from("magic"))
    }));
    assert!(
        m.contains("llama.rope.scaling.type") && m.contains("magic"),
        "{m}"
    );
}

#[test]
fn an_unsupported_pooling_type_fails_naming_the_key() {
    let m = message(load_variant(|w| w.set("llama.pooling_type", Value::U32(4))));
    assert!(m.contains("llama.pooling_type"), "{m}");
}

#[test]
fn an_unknown_architecture_lists_the_table() {
    let m = message(load_variant(|w| {
        w.set("general.architecture", Value::from("llama9"))
    }));
    assert!(m.contains("'llama9'"), "{m}");
    for e in ARCHS {
        assert!(m.contains(e.name), "{m} lacks {}", e.name);
    }
}

#[test]
fn a_huge_block_count_is_an_error_not_an_allocation() {
    let mut w = writer_of(&llama());
    w.set("llama.block_count", Value::U32(4_000_000_000));
    let file = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    let m = Config::from_gguf(&file).unwrap_err().to_string();
    assert!(m.contains("llama.block_count"), "{m}");
}

/// Seeded byte mutations of a valid model's header: whatever the parser
/// accepts, building the `Config` and loading the model must return, not
/// panic (the `config_build` fuzz target does the same unbounded).
#[test]
fn mutated_headers_never_panic() {
    let bytes = build(&SynthSpec::new(Arch::Gemma3));
    let header = GgufFile::from_bytes(bytes.clone()).unwrap().data_offset() as usize;
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let (mut parsed, mut configs) = (0, 0);
    for _ in 0..3000 {
        let mut b = bytes.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % header;
            b[at] = match next() % 3 {
                0 => next() as u8,
                1 => 0xff,
                _ => 0,
            };
        }
        let Ok(file) = GgufFile::from_bytes(b) else {
            continue;
        };
        parsed += 1;
        if Config::from_gguf(&file).is_ok() {
            configs += 1;
        }
        let _ = Model::from_file(Arc::new(file));
    }
    // The mutations reach the model code, not only the parser.
    assert!(
        parsed > 100 && configs > 10,
        "{parsed} parsed, {configs} configs"
    );
}
