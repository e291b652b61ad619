//! Embedding requests scheduled with generation: evaluated in pieces
//! between decode steps (a running generation is not held up by a large
//! batch of inputs), counted against the queue, and equal to embedding
//! each input alone however the pieces cut them.

use std::sync::Arc;

use hearth_engine::batch::{Engine, EngineConfig, Event, GenRequest};
use hearth_engine::{EngineError, GenParams};
use hearth_gguf::{GgmlType, GgufFile};
use hearth_model::synth::{build, SynthSpec};
use hearth_model::{Arch, KvType, Model, State};
use hearth_ops::ThreadPool;
use hearth_sample::SamplerConfig;
use hearth_tokenizer::Tokenizer;

fn synth() -> (Arc<Model>, Arc<Tokenizer>) {
    let mut spec = SynthSpec::new(Arch::Llama);
    spec.weight_type = GgmlType::F32;
    let file = GgufFile::from_bytes(build(&spec)).expect("synthetic GGUF parses");
    let model = Model::from_file(Arc::new(file)).expect("loads");
    let tok = Tokenizer::from_gguf(model.file()).expect("tokenizer");
    (Arc::new(model), Arc::new(tok))
}

fn cfg(max_queue: usize) -> EngineConfig {
    EngineConfig {
        n_parallel: 1,
        n_ctx: 256,
        kv: KvType::F32,
        threads: 2,
        max_queue,
        deterministic: false,
    }
}

fn generation(tok: &Tokenizer, n: usize) -> GenRequest {
    GenRequest {
        prompt: tok.encode("hello world", true, false),
        params: GenParams {
            sampler: SamplerConfig::greedy(),
            max_tokens: Some(n),
            ..Default::default()
        },
        constraint: None,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

#[test]
fn a_generation_runs_on_while_a_large_embedding_request_is_evaluated() {
    let (model, tok) = synth();
    let engine = Engine::start(model.clone(), tok.clone(), cfg(4)).expect("engine");
    // Inputs of every length up to 200 tokens: pieces cut inside them.
    let inputs: Vec<Vec<u32>> = (0..600)
        .map(|i| {
            (0..1 + i % 200)
                .map(|t| ((t * 7 + i) % 200) as u32 + 3)
                .collect()
        })
        .collect();
    let mut rx = engine.submit(generation(&tok, 120)).expect("generation");
    // The generation has started decoding before the embedding arrives.
    assert!(matches!(rx.blocking_recv(), Some(Event::Text(_))));
    let rt = runtime();
    let embedding = {
        let (engine, inputs) = (engine.clone(), inputs.clone());
        std::thread::spawn(move || rt.block_on(engine.embed(inputs)))
    };
    // The generation finishes while the embedding is still going.
    loop {
        match rx.blocking_recv() {
            Some(Event::Text(_)) => {}
            Some(Event::Done { .. }) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        !embedding.is_finished(),
        "the embedding request finished first: the generation waited for it"
    );
    let got = embedding.join().expect("thread").expect("embed");
    same_as_alone(&model, &inputs, &got);
}

/// Each vector is what embedding its input alone gives.
fn same_as_alone(model: &Model, inputs: &[Vec<u32>], got: &[Vec<f32>]) {
    assert_eq!(got.len(), inputs.len());
    let mut st = State::new(model, 256, KvType::F32, Arc::new(ThreadPool::new(2)));
    for (inp, v) in inputs.iter().zip(got) {
        let want = model.embed(&mut st, inp).expect("embed");
        let d = want
            .iter()
            .zip(v)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            d < 1e-4,
            "max diff {d} for an input of {} tokens",
            inp.len()
        );
    }
}

#[test]
fn short_inputs_are_evaluated_side_by_side_and_each_equals_its_own_embedding() {
    let (model, tok) = synth();
    let engine = Engine::start(model.clone(), tok, cfg(4)).expect("engine");
    // At most 20 tokens: 256 / 20 = 12 inputs share each micro-batch.
    let inputs: Vec<Vec<u32>> = (0..100)
        .map(|i| {
            (0..1 + i % 20)
                .map(|t| ((t * 5 + i) % 150) as u32 + 3)
                .collect()
        })
        .collect();
    let got = runtime()
        .block_on(engine.embed(inputs.clone()))
        .expect("embed");
    same_as_alone(&model, &inputs, &got);
}

#[test]
fn embedding_requests_count_against_the_queue() {
    let (model, tok) = synth();
    // One slot, no queue: while a generation holds the slot, an embedding
    // request has no room.
    let engine = Engine::start(model, tok.clone(), cfg(0)).expect("engine");
    let mut rx = engine.submit(generation(&tok, 200)).expect("generation");
    assert!(matches!(rx.blocking_recv(), Some(Event::Text(_))));
    let rt = runtime();
    let full = rt.block_on(engine.embed(vec![tok.encode("a", true, false)]));
    assert!(
        matches!(full, Err(EngineError::QueueFull { max_queue: 0 })),
        "{full:?}"
    );
    drop(rx);
    // Once the slot is free (the dropped stream is cancelled) it is taken.
    let t0 = std::time::Instant::now();
    loop {
        match rt.block_on(engine.embed(vec![tok.encode("a", true, false)])) {
            Ok(v) => break assert_eq!(v.len(), 1),
            Err(EngineError::QueueFull { .. }) => {
                assert!(t0.elapsed().as_secs() < 30, "the slot was never freed");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(engine.metrics().queued, 0);
}

#[test]
fn requests_of_other_shapes_in_turn_each_equal_their_own_embeddings() {
    let (model, tok) = synth();
    let engine = Engine::start(model.clone(), tok, cfg(4)).expect("engine");
    let rt = runtime();
    // Short inputs, then long ones (the earlier lanes are too short), then
    // very short ones (the long lanes would hold more than the context
    // together), then very short again (the lanes are taken as they are).
    let shapes = [
        (30, 20, 1),
        (5, 20, 100),
        (40, 10, 1),
        (40, 10, 1),
        (3, 3, 1),
    ];
    for (round, &(n, spread, min)) in shapes.iter().enumerate() {
        let inputs: Vec<Vec<u32>> = (0..n)
            .map(|i| {
                (0..min + (i * 7 + round) % spread)
                    .map(|t| ((t * 3 + i + round) % 150) as u32 + 3)
                    .collect()
            })
            .collect();
        let got = rt.block_on(engine.embed(inputs.clone())).expect("embed");
        same_as_alone(&model, &inputs, &got);
    }
}
