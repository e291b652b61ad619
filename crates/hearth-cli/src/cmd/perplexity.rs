//! `hearth perplexity MODEL FILE`, computed as llama.cpp's perplexity tool
//! does: the text is tokenized whole (with BOS when the model adds one), cut
//! into non-overlapping chunks of `ctx` tokens (the remainder dropped), each
//! chunk evaluated from an empty cache with its first token replaced by BOS
//! when the model adds one, and only the second half of each chunk scored
//! (positions ctx/2 .. ctx-2 predicting the next token).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use hearth_model::{KvType, Logits};

use crate::common;

#[derive(Args, Debug)]
pub struct PerplexityArgs {
    /// The model: a store name or a path to a GGUF file.
    pub model: PathBuf,
    /// Text file to score.
    pub file: PathBuf,
    /// Tokens per chunk.
    #[arg(long = "ctx", short = 'c', default_value_t = 512)]
    pub ctx: usize,
    /// Score at most this many chunks.
    #[arg(long)]
    pub chunks: Option<usize>,
    /// Threads (default: the machine's cores).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    #[arg(long, default_value = "f16")]
    pub kv_type: KvType,
}

/// Accumulates negative log-likelihoods.
#[derive(Default)]
pub struct NllSum {
    sum: f64,
    sum2: f64,
    n: usize,
}

impl NllSum {
    pub fn add(&mut self, nll: f64) {
        self.sum += nll;
        self.sum2 += nll * nll;
        self.n += 1;
    }
    pub fn ppl(&self) -> f64 {
        (self.sum / self.n.max(1) as f64).exp()
    }
    /// Standard error of the perplexity, as llama.cpp reports it.
    pub fn stderr(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        let n = self.n as f64;
        let mean = self.sum / n;
        let var = self.sum2 / n - mean * mean;
        (var.max(0.0) / (n - 1.0)).sqrt() * self.ppl()
    }
}

pub fn main(a: PerplexityArgs) -> Result<()> {
    if a.ctx < 4 {
        bail!("--ctx must be at least 4 for perplexity");
    }
    let threads = common::threads(a.threads)?;
    let text = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let text = String::from_utf8(text)
        .with_context(|| format!("{} is not UTF-8 text", a.file.display()))?;
    let loaded = common::load(&a.model)?;
    let (model, tok) = (&loaded.model, &loaded.tokenizer);
    let tokens = tok.encode(&text, true, false);
    let n_ctx = a.ctx;
    let mut n_chunks = tokens.len() / n_ctx;
    if let Some(c) = a.chunks {
        n_chunks = n_chunks.min(c);
    }
    if n_chunks == 0 {
        bail!(
            "{} has {} tokens, fewer than one chunk of {n_ctx}",
            a.file.display(),
            tokens.len()
        );
    }
    eprintln!(
        "perplexity: {} tokens, {n_chunks} chunks of {n_ctx}, {threads} threads",
        tokens.len()
    );
    let mut st = common::new_state(model, n_ctx, a.kv_type, threads);
    let first = n_ctx / 2;
    let mut acc = NllSum::default();
    let mut logp = vec![0f32; model.config.n_vocab];
    let t0 = Instant::now();
    for c in 0..n_chunks {
        let chunk = &tokens[c * n_ctx..(c + 1) * n_ctx];
        let mut input = chunk.to_vec();
        if tok.add_bos() {
            if let Some(b) = tok.bos() {
                input[0] = b;
            }
        }
        st.clear();
        let logits = model.forward(&mut st, &input, Logits::Range(first, n_ctx - 1))?;
        for (i, row) in logits.chunks_exact(model.config.n_vocab).enumerate() {
            hearth_ops::log_softmax(row, &mut logp);
            let target = chunk[first + i + 1] as usize;
            acc.add(-(logp[target] as f64));
        }
        if c == 0 {
            let secs = t0.elapsed().as_secs_f64();
            eprintln!(
                "perplexity: {secs:.2} seconds per pass - ETA {:.1} minutes",
                secs * n_chunks as f64 / 60.0
            );
        }
        print!("[{}]{:.4},", c + 1, acc.ppl());
        std::io::stdout().flush().ok();
    }
    println!();
    println!(
        "Final estimate: PPL = {:.4} +/- {:.5}",
        acc.ppl(),
        acc.stderr()
    );
    Ok(())
}
