//! What the pull tests share: a fresh store and a small synthetic model.

#![allow(dead_code)]

use hearth_model::synth::{build, SynthSpec};
use hearth_model::Arch;
use hearth_store::Store;

/// An empty store in a folder of its own (`tag` names it).
pub fn temp_store(tag: &str) -> Store {
    let d = std::env::temp_dir().join(format!("hearth-store-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    Store::at(d)
}

/// A small synthetic llama GGUF, different for each seed.
pub fn model(seed: u64) -> Vec<u8> {
    let mut s = SynthSpec::new(Arch::Llama);
    s.seed = seed;
    build(&s)
}
