//! A State commits its KV cache when it is created: the memory shows in
//! the RSS at once (not lazily on first write), so what the planner counts
//! is what the process holds, and a cache that cannot be held fails at
//! creation rather than in the middle of a reply.

#![cfg(target_os = "linux")]

use std::sync::Arc;

use hearth_gguf::GgufFile;
use hearth_model::synth::{build, SynthSpec};
use hearth_model::{Arch, KvType, Model, State};
use hearth_ops::ThreadPool;

fn rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

#[test]
fn kv_cache_is_resident_from_creation() {
    let m = Model::from_file(Arc::new(
        GgufFile::from_bytes(build(&SynthSpec::new(Arch::Llama))).expect("parses"),
    ))
    .expect("model");
    let pool = Arc::new(ThreadPool::new(1));
    // f32 zeros are the case an allocator hands out as untouched pages.
    for kv in [KvType::F32, KvType::F16] {
        let before = rss();
        let st = State::try_new(&m, 1 << 17, kv, pool.clone()).expect("state");
        let grew = rss().saturating_sub(before);
        let bytes = st.kv_bytes() as u64;
        assert!(bytes >= 32 << 20);
        assert!(
            grew >= bytes / 10 * 9,
            "{kv:?}: the RSS grew by {grew} bytes for a {bytes}-byte cache"
        );
        drop(st);
    }
}
