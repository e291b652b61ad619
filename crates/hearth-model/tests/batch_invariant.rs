//! `State::set_batch_invariant`: a token's logits are the same bits however
//! its prompt reaches the model — in one forward pass, token by token, as a
//! cached prefix then the rest, or in one pass beside another sequence —
//! for every architecture (synthetic models in the formats with multi-row
//! kernels) and for the real models. Run once per kernel tier
//! (`HEARTH_ISA=scalar|avx2`, see .ci/run); without the flag the same
//! comparisons differ, which the last test shows is why the flag exists.

use std::sync::Arc;

use hearth_gguf::{GgmlType, GgufFile};
use hearth_model::synth::{build, SynthSpec};
use hearth_model::{Arch, KvType, Logits, Model, SeqInput, State};
use hearth_ops::ThreadPool;
use hearth_testdata::{model, RealModel};

fn synth(arch: Arch, ty: GgmlType) -> Model {
    let mut spec = SynthSpec::new(arch);
    spec.weight_type = ty;
    spec.n_ctx_train = 512;
    // Rows of 256 elements, so the K-quant super-blocks fit.
    spec.n_embd = 256;
    spec.n_ff = 512;
    Model::from_file(Arc::new(
        GgufFile::from_bytes(build(&spec)).expect("synthetic GGUF parses"),
    ))
    .expect("loads")
}

fn state(m: &Model, invariant: bool) -> State {
    let mut st = State::new(m, 512, KvType::F16, Arc::new(ThreadPool::new(2)));
    st.set_batch_invariant(invariant);
    st
}

/// A prompt of `n` valid token ids.
fn prompt(m: &Model, n: usize) -> Vec<u32> {
    let v = m.config.n_vocab as u64;
    (0..n as u64)
        .map(|i| ((i * 7919 + 13) % v) as u32)
        .collect()
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// The logits of the last token of `p` reached four ways; the first is the
/// reference. Returns how many of the other three differ from it.
fn differing_ways(m: &Model, p: &[u32], invariant: bool) -> usize {
    let one_pass = {
        let mut st = state(m, invariant);
        bits(m.forward(&mut st, p, Logits::Last).expect("forward"))
    };
    let token_by_token = {
        let mut st = state(m, invariant);
        for &t in &p[..p.len() - 1] {
            m.forward(&mut st, &[t], Logits::None).expect("forward");
        }
        bits(
            m.forward(&mut st, &p[p.len() - 1..], Logits::Last)
                .expect("forward"),
        )
    };
    let prefix_then_rest = {
        let mut st = state(m, invariant);
        let cut = p.len() * 2 / 3;
        m.forward(&mut st, &p[..cut], Logits::None)
            .expect("forward");
        bits(
            m.forward(&mut st, &p[cut..], Logits::Last)
                .expect("forward"),
        )
    };
    let beside_another = {
        let (mut a, mut b) = (state(m, invariant), state(m, invariant));
        let other = prompt(m, 9);
        m.forward_batch(&mut [
            SeqInput {
                state: &mut b,
                tokens: &other,
                logits: Logits::Last,
            },
            SeqInput {
                state: &mut a,
                tokens: p,
                logits: Logits::Last,
            },
        ])
        .expect("forward_batch");
        bits(a.logits())
    };
    [token_by_token, prefix_then_rest, beside_another]
        .iter()
        .filter(|w| **w != one_pass)
        .count()
}

/// Long enough for the wide attention path and several column blocks.
const LEN: usize = 80;

#[test]
fn synthetic_models_are_batch_invariant_with_the_flag() {
    for arch in hearth_model::synth::ARCHS {
        for ty in [
            GgmlType::Q8_0,
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q5_0,
            GgmlType::Q4K,
            GgmlType::Q6K,
            GgmlType::F16,
        ] {
            let m = synth(arch, ty);
            let p = prompt(&m, LEN);
            assert_eq!(differing_ways(&m, &p, true), 0, "{arch:?} {ty}");
        }
    }
}

#[test]
fn real_models_are_batch_invariant_with_the_flag() {
    let _serial = hearth_testdata::exclusive();
    for rm in RealModel::ALL {
        let Some(path) = model(rm) else { continue };
        let m = Model::load(path).expect("loads");
        let p = prompt(&m, LEN);
        assert_eq!(differing_ways(&m, &p, true), 0, "{rm:?}");
    }
}

/// Without the flag the multi-row kernels and the wide attention path sum
/// in another order than one row does, so some way differs (on the scalar
/// tier only attention's wide path does). This is what the flag removes.
#[test]
fn without_the_flag_the_ways_differ() {
    let m = synth(Arch::Gemma3, GgmlType::Q8_0);
    let p = prompt(&m, LEN);
    assert!(differing_ways(&m, &p, false) > 0);
}
