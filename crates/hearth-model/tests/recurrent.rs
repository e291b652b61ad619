//! How a recurrent layer's state lives beside the KV cache, on the zoo's
//! hybrid models (Gated DeltaNet, Mamba-2, short convolution; see
//! `../shared/zoo/README.md`): a state cannot be truncated to an earlier
//! position, so `State::truncate` keeps a prefix only when nothing after it
//! is dropped and otherwise starts over; `clear` forgets everything;
//! context shift evaluates the kept tokens again; sequences evaluated side
//! by side keep their own states; and the sizes are counted.

use std::path::PathBuf;
use std::sync::Arc;

use hearth_model::{KvType, Logits, Mixer, Model, SeqInput, State};
use hearth_ops::ThreadPool;

const HYBRIDS: [&str; 3] = ["qwen35-dense", "granitehybrid-dense", "lfm2-dense"];

fn load(stem: &str) -> Option<Model> {
    let path: PathBuf =
        hearth_testdata::testdata_dir().join(format!("../../shared/zoo/{stem}.gguf"));
    if !path.is_file() {
        hearth_testdata::unavailable(&format!("zoo file {} not found", path.display()));
        return None;
    }
    Some(Model::load(&path).unwrap_or_else(|e| panic!("{stem}: {e}")))
}

fn state(m: &Model) -> State {
    // Batch-invariant, so that the same token's logits are the same bits
    // whichever way its prefix was evaluated.
    let mut st = State::new(m, 64, KvType::F16, Arc::new(ThreadPool::new(2)));
    st.set_batch_invariant(true);
    st
}

fn tokens(m: &Model, n: usize, seed: u64) -> Vec<u32> {
    let v = m.config.n_vocab as u64;
    (0..n as u64)
        .map(|i| ((i * 7919 + seed * 131 + 13) % v) as u32)
        .collect()
}

/// The last token's logits after evaluating `toks` from an empty state.
fn fresh(m: &Model, toks: &[u32]) -> Vec<f32> {
    let mut st = state(m);
    m.forward(&mut st, toks, Logits::Last).unwrap().to_vec()
}

#[test]
fn truncate_keeps_a_prefix_only_when_nothing_is_dropped() {
    for stem in HYBRIDS {
        let Some(m) = load(stem) else { return };
        assert!(m.config.is_recurrent(), "{stem}");
        let t = tokens(&m, 12, 1);
        let mut st = state(&m);
        m.forward(&mut st, &t[..8], Logits::None).unwrap();
        // Keeping every position is a reuse of the whole cached prefix.
        assert_eq!(st.truncate(8), 8, "{stem}");
        assert_eq!(st.truncate(20), 8, "{stem}");
        let got = m.forward(&mut st, &t[8..], Logits::Last).unwrap().to_vec();
        assert_eq!(got, fresh(&m, &t), "{stem}: continued after a full reuse");
        // Dropping any position cannot be done to a recurrent state: the
        // state starts over, and evaluating again gives the fresh logits.
        assert_eq!(st.truncate(5), 0, "{stem}");
        assert_eq!((st.n_past(), st.tokens().len()), (0, 0), "{stem}");
        let got = m.forward(&mut st, &t[..5], Logits::Last).unwrap().to_vec();
        assert_eq!(
            got,
            fresh(&m, &t[..5]),
            "{stem}: after a refused truncation"
        );
    }
}

#[test]
fn clear_forgets_the_recurrent_state() {
    for stem in HYBRIDS {
        let Some(m) = load(stem) else { return };
        let (a, b) = (tokens(&m, 9, 2), tokens(&m, 6, 3));
        let mut st = state(&m);
        m.forward(&mut st, &a, Logits::None).unwrap();
        st.clear();
        let got = m.forward(&mut st, &b, Logits::Last).unwrap().to_vec();
        assert_eq!(got, fresh(&m, &b), "{stem}");
    }
}

#[test]
fn context_shift_evaluates_the_kept_tokens_again() {
    for stem in HYBRIDS {
        let Some(m) = load(stem) else { return };
        let t = tokens(&m, 14, 4);
        let mut st = state(&m);
        m.forward(&mut st, &t[..12], Logits::None).unwrap();
        m.shift_context(&mut st, 2, 4).unwrap();
        let kept: Vec<u32> = t[..2].iter().chain(&t[6..12]).copied().collect();
        assert_eq!(st.tokens(), kept.as_slice(), "{stem}");
        assert_eq!(st.n_past(), 8, "{stem}");
        let got = m.forward(&mut st, &t[12..], Logits::Last).unwrap().to_vec();
        let mut want_toks = kept;
        want_toks.extend_from_slice(&t[12..]);
        assert_eq!(got, fresh(&m, &want_toks), "{stem}");
    }
}

#[test]
fn sequences_side_by_side_keep_their_own_states() {
    for stem in HYBRIDS {
        let Some(m) = load(stem) else { return };
        let (a, b) = (tokens(&m, 7, 5), tokens(&m, 5, 6));
        let (mut sa, mut sb) = (state(&m), state(&m));
        // A prefix each, then the rest of both in one batch.
        m.forward(&mut sa, &a[..3], Logits::None).unwrap();
        m.forward(&mut sb, &b[..2], Logits::None).unwrap();
        m.forward_batch(&mut [
            SeqInput {
                state: &mut sa,
                tokens: &a[3..],
                logits: Logits::Last,
            },
            SeqInput {
                state: &mut sb,
                tokens: &b[2..],
                logits: Logits::Last,
            },
        ])
        .unwrap();
        assert_eq!(sa.logits(), fresh(&m, &a).as_slice(), "{stem}: first");
        assert_eq!(sb.logits(), fresh(&m, &b).as_slice(), "{stem}: second");
    }
}

#[test]
fn recurrent_state_is_counted_and_does_not_grow_with_the_context() {
    for stem in HYBRIDS {
        let Some(m) = load(stem) else { return };
        let c = &m.config;
        let rec = c.recurrent_bytes();
        assert!(rec > 0, "{stem}");
        let n_attn = c
            .layers
            .iter()
            .filter(|l| l.mixer == Mixer::Attention)
            .count() as u64;
        for n_ctx in [16usize, 64] {
            let st = State::new(&m, n_ctx, KvType::F16, Arc::new(ThreadPool::new(1)));
            let kv = c.kv_bytes(n_ctx, hearth_model::UBATCH, KvType::F16);
            let row = (c.n_kv_head * c.head_dim * 2) as u64;
            assert_eq!(
                kv,
                2 * n_attn * n_ctx as u64 * row,
                "{stem}: only attention layers cache keys"
            );
            assert_eq!(
                st.kv_bytes() as u64,
                kv + rec,
                "{stem}: the state holds both"
            );
        }
    }
}
