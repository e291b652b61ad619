//! Every architecture path on tiny synthetic models: no download needed.

use std::sync::Arc;

use hearth_gguf::{GgmlType, GgufFile, GgufWriter, Value};
use hearth_model::synth::{build, SynthSpec};
use hearth_model::{Arch, KvType, Logits, Model, ModelError, SeqInput, State};
use hearth_ops::ThreadPool;

fn load(spec: &SynthSpec) -> Model {
    let file = GgufFile::from_bytes(build(spec)).expect("synthetic GGUF parses");
    Model::from_file(Arc::new(file)).expect("synthetic model loads")
}

fn state(m: &Model, n_ctx: usize, kv: KvType) -> State {
    State::new(m, n_ctx, kv, Arc::new(ThreadPool::new(2)))
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |b, (i, &x)| if x > b.1 { (i, x) } else { b },
        )
        .0
}

const PROMPT: [u32; 12] = [1, 270, 271, 9, 40, 80, 272, 100, 5, 6, 273, 50];

#[test]
fn batch_and_incremental_decoding_agree() {
    for arch in hearth_model::synth::ARCHS {
        for ty in [GgmlType::F32, GgmlType::Q8_0, GgmlType::Q4_1] {
            let mut spec = SynthSpec::new(arch);
            spec.weight_type = ty;
            let m = load(&spec);
            let n_vocab = m.config.n_vocab;
            let mut a = state(&m, 64, KvType::F32);
            let all = m
                .forward(&mut a, &PROMPT, Logits::All)
                .expect("batch")
                .to_vec();
            assert_eq!(all.len(), PROMPT.len() * n_vocab);
            assert!(
                all.iter().all(|v| v.is_finite()),
                "{arch:?} {ty}: non-finite logits"
            );
            let mut b = state(&m, 64, KvType::F32);
            for (i, &t) in PROMPT.iter().enumerate() {
                let one = m.forward(&mut b, &[t], Logits::Last).expect("step");
                let want = &all[i * n_vocab..(i + 1) * n_vocab];
                let diff = one
                    .iter()
                    .zip(want)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max);
                assert!(diff < 1e-3, "{arch:?} {ty} step {i}: max diff {diff}");
            }
            assert_eq!(b.n_past(), PROMPT.len());
            assert_eq!(b.tokens(), &PROMPT);
        }
    }
}

#[test]
fn f16_cache_is_close_to_f32() {
    for arch in hearth_model::synth::ARCHS {
        let m = load(&SynthSpec::new(arch));
        let mut a = state(&m, 32, KvType::F32);
        let mut b = state(&m, 32, KvType::F16);
        let x = m
            .forward(&mut a, &PROMPT, Logits::Last)
            .expect("f32")
            .to_vec();
        let y = m.forward(&mut b, &PROMPT, Logits::Last).expect("f16");
        assert_eq!(argmax(&x), argmax(y), "{arch:?}");
    }
}

#[test]
fn gemma3_layers_are_interleaved() {
    let mut spec = SynthSpec::new(Arch::Gemma3);
    spec.n_layer = 6;
    let m = load(&spec);
    let windows: Vec<_> = m.config.layers.iter().map(|l| l.window).collect();
    assert_eq!(
        windows,
        vec![Some(8), Some(8), Some(8), Some(8), Some(8), None]
    );
    assert_eq!(m.config.layers[0].rope.as_ref().unwrap().base, 10000.0);
    assert!(
        m.config.embed_scale.is_some() && m.config.qk_norm && m.config.norms.post_ffn.is_some()
    );
    // Beyond the window the model still runs (keys outside it are masked).
    let mut st = state(&m, 64, KvType::F16);
    let long: Vec<u32> = (0..40).map(|i| 7 + i).collect();
    let l = m.forward(&mut st, &long, Logits::Last).expect("forward");
    assert!(l.iter().all(|v| v.is_finite()));
}

#[test]
fn context_full_is_an_error_with_both_numbers() {
    let m = load(&SynthSpec::new(Arch::Llama));
    let mut st = state(&m, 8, KvType::F16);
    let err = m.forward(&mut st, &PROMPT, Logits::Last).unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::ContextFull {
                needed: 12,
                n_ctx: 8
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("12") && err.to_string().contains('8'));
    assert_eq!(st.n_past(), 0);
}

#[test]
fn invalid_token_is_an_error() {
    let m = load(&SynthSpec::new(Arch::Qwen2));
    let mut st = state(&m, 8, KvType::F16);
    let err = m.forward(&mut st, &[1, 999_999], Logits::Last).unwrap_err();
    assert!(
        matches!(err, ModelError::InvalidToken { token: 999_999, .. }),
        "{err}"
    );
}

#[test]
fn context_shift_keeps_decoding_consistent() {
    // After dropping positions, the cache must equal one built from the
    // kept tokens directly (keys re-rotated to their new positions). With a
    // single layer, cached K/V depend only on each token and its position,
    // so the two must agree.
    let mut spec = SynthSpec::new(Arch::Llama);
    spec.n_layer = 1;
    let m = load(&spec);
    let mut a = state(&m, 32, KvType::F32);
    m.forward(&mut a, &PROMPT, Logits::None).expect("prompt");
    m.shift_context(&mut a, 2, 4).unwrap();
    assert_eq!(a.n_past(), 8);
    let kept: Vec<u32> = PROMPT[..2].iter().chain(&PROMPT[6..]).copied().collect();
    assert_eq!(a.tokens(), kept.as_slice());
    let x = m
        .forward(&mut a, &[9], Logits::Last)
        .expect("after shift")
        .to_vec();
    let mut b = state(&m, 32, KvType::F32);
    m.forward(&mut b, &kept, Logits::None).expect("kept");
    let y = m.forward(&mut b, &[9], Logits::Last).expect("reference");
    let diff = x
        .iter()
        .zip(y)
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-3, "max diff {diff}");
}

#[test]
fn unknown_architecture_and_missing_tensor_are_named() {
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::from("mamba9"));
    w.add_tensor("token_embd.weight", GgmlType::F32, &[4, 2], vec![0; 32])
        .expect("tensor");
    let f = GgufFile::from_bytes(w.to_bytes().expect("bytes")).expect("parses");
    let err = Model::from_file(Arc::new(f)).err().expect("must fail");
    assert!(err.to_string().contains("mamba9"), "{err}");

    // Drop one tensor from a valid synthetic model.
    let good = GgufFile::from_bytes(build(&SynthSpec::new(Arch::Llama))).expect("parses");
    let mut w = GgufWriter::new();
    for (k, v) in good.metadata() {
        w.set(k, v.clone());
    }
    for t in good.tensors() {
        if t.name != "blk.1.ffn_up.weight" {
            w.add_tensor(&t.name, t.ty, &t.dims, good.tensor_data(t).to_vec())
                .expect("copy");
        }
    }
    let f = GgufFile::from_bytes(w.to_bytes().expect("bytes")).expect("parses");
    let err = Model::from_file(Arc::new(f)).err().expect("must fail");
    assert!(
        matches!(&err, ModelError::MissingTensor(n) if n == "blk.1.ffn_up.weight"),
        "{err}"
    );
}

#[test]
fn sliding_window_rings_match_a_full_cache() {
    // Gemma 3 synthetic: window 8. With micro-batches of 4, sliding-window
    // layers keep rings of 12 rows; a context of 64 with full rows must give
    // the same logits, during the prompt and token by token after it.
    let mut spec = SynthSpec::new(Arch::Gemma3);
    spec.n_layer = 6;
    let m = load(&spec);
    let pool = Arc::new(ThreadPool::new(2));
    let mut ring = State::with_ubatch(&m, 64, KvType::F32, pool.clone(), 4);
    let mut full = State::with_ubatch(&m, 64, KvType::F32, pool, 64);
    assert!(ring.kv_bytes() < full.kv_bytes());
    let prompt: Vec<u32> = (0..30).map(|i| 7 + (i * 13) % 250).collect();
    let a = m
        .forward(&mut ring, &prompt, Logits::All)
        .expect("ring")
        .to_vec();
    let b = m
        .forward(&mut full, &prompt, Logits::All)
        .expect("full")
        .to_vec();
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-4, "prompt: max diff {diff}");
    decode_alike(&m, &mut ring, &mut full, 20, 9, 1e-4);
    // Rolling back a little keeps the prefix; rolling back past what the
    // rings still hold starts over.
    assert_eq!(ring.truncate(48), 48);
    assert_eq!(ring.truncate(20), 0);
    assert_eq!(full.truncate(20), 20);
}

#[test]
fn context_shift_in_rings_matches_a_full_cache() {
    let mut spec = SynthSpec::new(Arch::Gemma3);
    spec.n_layer = 6;
    let m = load(&spec);
    let pool = Arc::new(ThreadPool::new(2));
    let mut ring = State::with_ubatch(&m, 40, KvType::F32, pool.clone(), 4);
    let mut full = State::with_ubatch(&m, 40, KvType::F32, pool, 40);
    let prompt: Vec<u32> = (0..36).map(|i| 11 + (i * 7) % 250).collect();
    m.forward(&mut ring, &prompt, Logits::None).expect("ring");
    m.forward(&mut full, &prompt, Logits::None).expect("full");
    m.shift_context(&mut ring, 2, 17).unwrap();
    m.shift_context(&mut full, 2, 17).unwrap();
    decode_alike(&m, &mut ring, &mut full, 8, 5, 1e-3);
}

/// Decodes `steps` tokens (`first`, `first + 1`, ...) in both states and
/// asserts the logits agree within `tol`.
fn decode_alike(m: &Model, a: &mut State, b: &mut State, steps: u32, first: u32, tol: f32) {
    for t in 0..steps {
        let x = m
            .forward(a, &[t + first], Logits::Last)
            .expect("step")
            .to_vec();
        let y = m.forward(b, &[t + first], Logits::Last).expect("step");
        let diff = x
            .iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        assert!(diff < tol, "step {t}: max diff {diff}");
    }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

#[test]
fn batched_sequences_match_each_alone() {
    // Three sequences at different positions advance together: a prompt
    // joining two that are decoding. Each must see what it would alone
    // (sliding-window rings included). F32 weights: with quantized ones the
    // SIMD kernels for several rows sum in another order than the one-row
    // kernel, an activation can land on the other side of a quantization
    // step, and a random tiny model magnifies such a flip far more than a
    // trained one does.
    for (arch, ty) in hearth_model::synth::ARCHS
        .into_iter()
        .map(|a| (a, GgmlType::F32))
    {
        let mut spec = SynthSpec::new(arch);
        spec.n_layer = 3;
        spec.weight_type = ty;
        let m = load(&spec);
        let pool = Arc::new(ThreadPool::new(2));
        let mk = || State::with_ubatch(&m, 64, KvType::F32, pool.clone(), 16);
        let prompts: [&[u32]; 3] = [&PROMPT[..5], &PROMPT[2..11], &[40, 41]];
        let (mut solo, mut many): (Vec<State>, Vec<State>) = (
            prompts.iter().map(|_| mk()).collect(),
            prompts.iter().map(|_| mk()).collect(),
        );
        // Warm two of them up separately.
        for i in 0..2 {
            m.forward(&mut solo[i], prompts[i], Logits::Last)
                .expect("solo");
            m.forward(&mut many[i], prompts[i], Logits::Last)
                .expect("many");
        }
        for step in 0..12u32 {
            let toks: Vec<Vec<u32>> = (0..3)
                .map(|i| {
                    if i == 2 && step == 3 {
                        prompts[2].to_vec()
                    } else {
                        vec![10 + step * 7 + i as u32]
                    }
                })
                .collect();
            let active: Vec<usize> = (0..3).filter(|&i| i < 2 || step >= 3).collect();
            let mut want = Vec::new();
            for &i in &active {
                want.push(
                    m.forward(&mut solo[i], &toks[i], Logits::All)
                        .expect("solo")
                        .to_vec(),
                );
            }
            let mut refs: Vec<&mut State> = many.iter_mut().collect();
            let mut inputs: Vec<SeqInput> = Vec::new();
            for (i, st) in refs.drain(..).enumerate() {
                if active.contains(&i) {
                    inputs.push(SeqInput {
                        state: st,
                        tokens: &toks[i],
                        logits: Logits::All,
                    });
                }
            }
            m.forward_batch(&mut inputs).expect("batch");
            for (k, &i) in active.iter().enumerate() {
                let d = max_diff(many[i].logits(), &want[k]);
                assert!(d < 1e-3, "{arch:?} {ty} step {step} seq {i}: max diff {d}");
                assert_eq!(many[i].tokens(), solo[i].tokens());
            }
        }
    }
}

#[test]
fn batch_larger_than_the_micro_batch_is_refused() {
    let m = load(&SynthSpec::new(Arch::Llama));
    let pool = Arc::new(ThreadPool::new(1));
    let mut a = State::with_ubatch(&m, 64, KvType::F32, pool.clone(), 4);
    let mut b = State::with_ubatch(&m, 64, KvType::F32, pool, 4);
    let err = m
        .forward_batch(&mut [
            SeqInput {
                state: &mut a,
                tokens: &PROMPT[..3],
                logits: Logits::Last,
            },
            SeqInput {
                state: &mut b,
                tokens: &PROMPT[..3],
                logits: Logits::Last,
            },
        ])
        .expect_err("6 tokens in a micro-batch of 4");
    assert!(
        matches!(err, ModelError::BatchTooLarge { n: 6, n_ubatch: 4 }),
        "{err}"
    );
    assert_eq!(a.n_past(), 0);
}

#[test]
fn embeddings_are_unit_mean_pooled_and_independent_of_state() {
    let m = load(&SynthSpec::new(Arch::Llama));
    let mut st = state(&m, 64, KvType::F32);
    m.forward(&mut st, &PROMPT[..4], Logits::Last)
        .expect("fill");
    let e1 = m.embed(&mut st, &PROMPT).expect("embed");
    assert_eq!(st.n_past(), 0, "embedding leaves the state empty");
    let e2 = m.embed(&mut st, &PROMPT).expect("embed again");
    assert_eq!(e1, e2);
    assert_eq!(e1.len(), m.config.n_embd);
    let norm: f32 = e1.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    let other = m.embed(&mut st, &PROMPT[..6]).expect("other");
    assert!(
        max_diff(&e1, &other) > 1e-3,
        "different texts, different vectors"
    );
    // Micro-batching does not change the result.
    let pool = Arc::new(ThreadPool::new(2));
    let mut small = State::with_ubatch(&m, 64, KvType::F32, pool, 5);
    let e3 = m.embed(&mut small, &PROMPT).expect("small batches");
    assert!(max_diff(&e1, &e3) < 1e-4);
}
