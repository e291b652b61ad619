//! What the quantize tests share: where the zoo's F32 models are, and
//! quantizing one of them in memory.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use hearth_gguf::GgufFile;
use hearth_quantize::{plan, quantize_to, Ftype, Imatrix, Options};

/// The zoo's F32 models, or `None` (a failure under CI=true) when absent.
pub fn zoo_f32() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/zoo/f32");
    if dir.join("llama-dense.quantize.jsonl").exists() {
        Some(dir)
    } else {
        hearth_testdata::unavailable(&format!("{} is missing", dir.display()));
        None
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Quantizes zoo model `model` to mix `ty`, with its importance matrix or
/// without, and parses the result.
pub fn quantize(dir: &Path, model: &str, ty: &str, with_imatrix: bool) -> GgufFile {
    let ftype = Ftype::parse(ty).unwrap_or_else(|| panic!("unknown type {ty}"));
    let src = GgufFile::open(dir.join(format!("{model}.gguf"))).unwrap();
    let imatrix = with_imatrix.then(|| {
        let p = dir.join(format!("{model}.imatrix.gguf"));
        (Imatrix::load(&p).unwrap(), p.display().to_string())
    });
    let opts = Options {
        ftype,
        imatrix,
        allow_requantize: false,
    };
    let plan = plan(&src, &opts).unwrap_or_else(|e| panic!("{model} {ty}: {e}"));
    let mut bytes = Vec::new();
    quantize_to(&src, &plan, &mut bytes, &mut |_, _, _| {}).unwrap();
    GgufFile::from_bytes(bytes).unwrap()
}
