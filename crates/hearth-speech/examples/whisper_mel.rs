//! Greedy transcription of one 30 s window given as raw little-endian f32
//! log-mel (`n_mels × 3000`, mel-major), with encode and decode times.
//!
//!     cargo run --release -p hearth-speech --example whisper_mel -- MODEL MEL.f32 [THREADS]

use std::time::Instant;

use hearth_ops::ThreadPool;
use hearth_speech::network::{encode, Ctx};
use hearth_speech::Whisper;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        return Err("usage: whisper_mel MODEL MEL.f32 [THREADS]".into());
    }
    let threads = args.get(3).map(|t| t.parse()).transpose()?.unwrap_or(2);
    let t0 = Instant::now();
    let m = Whisper::load(std::path::Path::new(&args[1]))?;
    let load = t0.elapsed();
    let bytes = std::fs::read(&args[2])?;
    let mel: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let pool = ThreadPool::new(threads);
    let t1 = Instant::now();
    encode(&mut Ctx::new(&pool), &m.weights, &mel)?;
    let enc = t1.elapsed();
    let t2 = Instant::now();
    let tokens = m.greedy_window(&pool, &mel, Some("en"))?;
    let all = t2.elapsed();
    println!("{}", m.tokenizer.decode(&tokens));
    println!("tokens {tokens:?}");
    println!(
        "load {load:.2?}  encode {enc:.2?}  encode+greedy decode {all:.2?}  ({threads} threads)"
    );
    Ok(())
}
