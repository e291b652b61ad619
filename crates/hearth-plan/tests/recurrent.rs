//! The planner on hybrid models (the zoo's Qwen 3.5, Granite 4 hybrid and
//! LFM2 files, `../shared/zoo/README.md`): the recurrent layers' state is
//! its own part of the plan, counted per sequence and the same at every
//! context, and only the attention layers have a KV cache.

use std::sync::Arc;

use hearth_gguf::GgufFile;
use hearth_model::{KvType, Model, State};
use hearth_ops::ThreadPool;
use hearth_plan::{plan, Available, Ctx, MemorySource, Options};

#[test]
fn recurrent_state_is_planned_per_sequence_whatever_the_context() {
    for stem in ["qwen35-dense", "granitehybrid-dense", "lfm2-dense"] {
        let path = hearth_testdata::testdata_dir().join(format!("../../shared/zoo/{stem}.gguf"));
        if !path.is_file() {
            hearth_testdata::unavailable(&format!("zoo file {} not found", path.display()));
            return;
        }
        let file = GgufFile::open(&path).expect("zoo file parses");
        let m = Model::load(&path).expect("zoo file loads");
        let available = Available {
            bytes: 1 << 40,
            source: MemorySource::Limit,
        };
        let mut seen = Vec::new();
        for (n_ctx, parallel) in [(32usize, 1usize), (128, 1), (128, 3)] {
            let opts = Options {
                ctx: Ctx::Tokens(n_ctx),
                parallel,
                ..Options::default()
            };
            let p = plan(stem, &file, &opts, &available).expect("plans");
            let st = State::new(&m, n_ctx, KvType::F16, Arc::new(ThreadPool::new(1)));
            // What a sequence's State allocates: its KV cache and its state.
            assert_eq!(
                (p.kv_cache + p.recurrent_state) / parallel as u64,
                st.kv_bytes() as u64,
                "{stem} at {n_ctx}"
            );
            assert_eq!(
                p.recurrent_state,
                m.config.recurrent_bytes() * parallel as u64
            );
            assert!(p.recurrent_state > 0, "{stem}");
            assert_eq!(
                p.total,
                p.weights + p.kv_cache + p.recurrent_state + p.compute + p.overhead
            );
            assert!(p.to_string().contains("recurrent state"), "{stem}: {p}");
            seen.push(p.recurrent_state / parallel as u64);
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "{stem}: {seen:?}");
    }
}
