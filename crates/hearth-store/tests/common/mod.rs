//! What the pull tests share: a fresh store and a small synthetic model.

#![allow(dead_code)]

use hearth_model::synth::{build, SynthSpec};
use hearth_model::Arch;
use hearth_store::{HubConfig, PullOptions, Store};
use hearth_testdata::hub::FakeHub;
use hearth_testdata::TempDir;

/// An empty store in a folder of its own (`tag` names it), removed when
/// the store is dropped.
pub fn temp_store(tag: &str) -> TempStore {
    let dir = TempDir::new(&format!("store-{tag}"));
    TempStore {
        store: Store::at(dir.path().to_path_buf()),
        _dir: dir,
    }
}

/// A [`Store`] whose folder goes with it.
pub struct TempStore {
    store: Store,
    _dir: TempDir,
}

impl std::ops::Deref for TempStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
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
