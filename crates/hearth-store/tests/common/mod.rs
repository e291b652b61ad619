//! What the pull tests share: a fresh store and a small synthetic model.

#![allow(dead_code)]

use hearth_model::synth::{build, SynthSpec};
use hearth_model::Arch;
use hearth_store::{HubConfig, PullOptions, Store};
use hearth_testdata::hub::FakeHub;

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

/// Pull options against `hub`, without the header check (the tests of the
/// download itself; tests/pull_header.rs turns it on).
pub fn opts(hub: &FakeHub) -> PullOptions {
    PullOptions {
        hub: HubConfig {
            endpoint: hub.endpoint(),
            token: None,
            offline: false,
        },
        name: None,
        sha256: None,
        public_only: false,
        // The tests of the download itself; tests/pull_header.rs checks
        // headers.
        check_header: false,
        accept: None,
    }
}
