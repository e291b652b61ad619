//! Sampling allocates nothing after warm-up: a counting global allocator checks it.
//!
//! This test binary holds only this test, so the allocator sees nothing else; counts are per
//! thread all the same, in case the harness allocates on its own threads.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use hearth_sample::{Sampler, SamplerConfig};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

#[test]
fn no_allocation_per_token_after_warm_up() {
    // A 262 144-entry vocabulary with a spread of logits.
    let logits: Vec<f32> = (0..262_144u32)
        .map(|i| ((i.wrapping_mul(2_654_435_761) >> 16) % 1000) as f32 * 0.01)
        .collect();
    let configs = [
        SamplerConfig {
            seed: Some(1),
            ..SamplerConfig::default()
        },
        SamplerConfig {
            seed: Some(2),
            top_k: 0,
            top_p: 0.95,
            min_p: 0.05,
            presence_penalty: 0.5,
            frequency_penalty: 0.5,
            ..SamplerConfig::default()
        },
        SamplerConfig {
            temperature: 0.0,
            ..SamplerConfig::default()
        },
    ];
    for cfg in configs {
        let mut s = Sampler::new(&cfg, 4096).expect("valid");
        // warm-up: first fill sizes the buffer; 100 accepts fill the 64-token window.
        for t in 0..100 {
            s.accept(t);
        }
        s.sample(&logits);
        let before = allocs();
        for _ in 0..16 {
            let t = s.sample(&logits);
            s.accept(t);
        }
        assert_eq!(allocs() - before, 0, "{cfg:?}");
    }
}
