//! Writes a seed corpus for the `config_build` fuzz target: the synthetic
//! model of each architecture the synthetic writer knows, and for each a
//! variant under every other architecture name in the table (so the
//! fuzzer starts inside every builder).
//!
//! Usage: `cargo run --bin config_seeds -- [DIR]` (default `corpus/config_build`).

use std::path::PathBuf;

use hearth_gguf::{GgufFile, Value};
use hearth_model::synth::{build, writer_of, SynthSpec, ARCHS};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("corpus/config_build"));
    std::fs::create_dir_all(&dir).expect("creating the corpus folder");
    let mut n = 0;
    for arch in ARCHS {
        let mut spec = SynthSpec::new(arch);
        spec.n_embd = 32;
        spec.n_ff = 64;
        let bytes = build(&spec);
        std::fs::write(dir.join(format!("{}.gguf", arch.name())), &bytes).expect("writing a seed");
        n += 1;
        // The same file under every other name: each builder reads its own
        // keys from the same shapes.
        let file = GgufFile::from_bytes(bytes).expect("a synthetic model parses");
        for other in hearth_model::ARCHS.iter().filter(|e| e.arch != arch) {
            let mut w = writer_of(&file);
            w.set("general.architecture", Value::from(other.name));
            for (k, v) in file.metadata() {
                if let Some(rest) = k.strip_prefix(&format!("{}.", arch.name())) {
                    w.set(&format!("{}.{rest}", other.name), v.clone());
                }
            }
            let out = dir.join(format!("{}-as-{}.gguf", arch.name(), other.name));
            w.write_file(out).expect("writing a seed");
            n += 1;
        }
    }
    println!("wrote {n} seeds to {}", dir.display());
}
