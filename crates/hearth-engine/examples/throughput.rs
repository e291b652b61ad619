//! Aggregate decode throughput of the serving engine with N concurrent
//! sequences (128 tokens each, sampled with Ollama's defaults, seeded):
//! `cargo run --release -p hearth-engine --example throughput -- MODEL [N...]
//! [--deterministic]` (the last: batch-invariant engines, as `hearth serve
//! --deterministic`).
//! The HTTP-level comparison with llama-server is `scripts/bench-serve.sh`.

use std::sync::Arc;
use std::time::Instant;

use hearth_engine::batch::{Engine, EngineConfig, Event, GenRequest};
use hearth_engine::GenParams;
use hearth_model::{KvType, Model};
use hearth_sample::SamplerConfig;
use hearth_tokenizer::Tokenizer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: throughput MODEL [N...] [--deterministic]")?;
    let rest: Vec<String> = args.collect();
    let deterministic = rest.iter().any(|a| a == "--deterministic");
    let ns: Vec<usize> = rest
        .iter()
        .filter(|a| *a != "--deterministic")
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let model = Arc::new(Model::load(&path)?);
    let tok = Arc::new(Tokenizer::from_gguf(model.file())?);
    for n in if ns.is_empty() { vec![1, 4, 16] } else { ns } {
        let engine = Engine::start(
            model.clone(),
            tok.clone(),
            EngineConfig {
                n_parallel: n,
                n_ctx: 512,
                kv: KvType::F16,
                threads: 2,
                max_queue: 64,
                deterministic,
            },
        )?;
        let t0 = Instant::now();
        let rxs: Vec<_> = (0..n)
            .map(|i| {
                let prompt = tok.encode(
                    &format!(
                        "<|im_start|>user\nWrite a long story about robot number {i}.<|im_end|>\n<|im_start|>assistant\n"
                    ),
                    true,
                    true,
                );
                engine.submit(GenRequest {
                    prompt,
                    params: GenParams {
                        sampler: SamplerConfig {
                            seed: Some(i as u64),
                            ..Default::default()
                        },
                        max_tokens: Some(128),
                        ..Default::default()
                    },
                    constraint: None,
                })
            })
            .collect::<Result<_, _>>()?;
        let mut total = 0;
        for mut rx in rxs {
            while let Some(e) = rx.blocking_recv() {
                if let Event::Done { tokens, .. } = e {
                    total += tokens.len();
                    break;
                }
            }
        }
        let dt = t0.elapsed().as_secs_f64();
        println!(
            "{n:3} sequences: {total} tokens in {dt:.2} s = {:.1} t/s",
            total as f64 / dt
        );
    }
    Ok(())
}
