//! `hearth eval MODEL --tokens 1,2,3 [--mode batch|seq|split] --json`: the
//! logits of every position, so a conversion or a kernel can be checked
//! against llama.cpp's (or another tool's) logits for the same tokens.
//!
//! Modes, as the zoo's reference files name them: `batch` evaluates all
//! tokens in one forward call; `seq` one token at a time through the KV
//! cache; `split` the first half at once and the rest one by one.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use hearth_model::{KvType, Logits, Model};

use crate::common;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Every token in one forward call.
    Batch,
    /// One token per forward call, through the KV cache.
    Seq,
    /// The first half in one call, then the rest one at a time.
    Split,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The model: a store name or a path to a GGUF file.
    pub model: PathBuf,
    /// Token ids to evaluate, comma-separated (`hearth tokenize --ids`
    /// prints them for a text).
    #[arg(long, value_delimiter = ',', required = true)]
    pub tokens: Vec<u32>,
    /// How the tokens are fed to the model.
    #[arg(long, value_enum, default_value_t = Mode::Batch)]
    pub mode: Mode,
    /// Print `{"n_vocab": V, "logits": [[…], …]}` (one row per position)
    /// instead of each position's most likely tokens.
    #[arg(long)]
    pub json: bool,
    /// Threads (default: the machine's cores).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// KV cache element type.
    #[arg(long, default_value = "f16")]
    pub kv_type: KvType,
    /// Batch-invariant kernels: the three modes give the same bits.
    #[arg(long)]
    pub deterministic: bool,
}

pub fn main(a: EvalArgs) -> Result<()> {
    let threads = common::threads(a.threads)?;
    let path = common::model_path(&a.model)?;
    let model = Model::load(&path).with_context(|| format!("loading {}", path.display()))?;
    let n_vocab = model.config.n_vocab;
    if let Some(bad) = a.tokens.iter().find(|&&t| t as usize >= n_vocab) {
        bail!("token id {bad} is outside the vocabulary ({n_vocab} tokens)");
    }
    let n = a.tokens.len();
    let name = a.model.display().to_string();
    // One more position than the tokens, so the context is never the limit.
    let mut st = common::checked_state(&model, &name, n + 1, a.kv_type, threads)?;
    st.set_batch_invariant(a.deterministic);
    let rows = logits(&model, &mut st, &a.tokens, a.mode)?;
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    if a.json {
        write_json(&mut out, n_vocab, &rows)?;
    } else {
        for (i, (t, row)) in a.tokens.iter().zip(rows.chunks(n_vocab)).enumerate() {
            let mut top: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
            top.sort_by(|x, y| y.1.total_cmp(&x.1));
            let best: Vec<String> = top
                .iter()
                .take(5)
                .map(|(id, l)| format!("{id}:{l:.4}"))
                .collect();
            writeln!(out, "{i:>5} {t:>7} -> {}", best.join(" "))?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The logits of every position of `tokens` (n × n_vocab), fed as `mode` says.
pub fn logits(
    model: &Model,
    st: &mut hearth_model::State,
    tokens: &[u32],
    mode: Mode,
) -> Result<Vec<f32>> {
    let n_vocab = model.config.n_vocab;
    let mut rows = Vec::with_capacity(tokens.len() * n_vocab);
    let head = match mode {
        Mode::Batch => tokens.len(),
        Mode::Seq => 0,
        Mode::Split => tokens.len() / 2,
    };
    if head > 0 {
        rows.extend_from_slice(model.forward(st, &tokens[..head], Logits::All)?);
    }
    for t in &tokens[head..] {
        rows.extend_from_slice(model.forward(st, std::slice::from_ref(t), Logits::All)?);
    }
    Ok(rows)
}

/// `{"n_vocab": V, "logits": [[…], …]}`, each float in the shortest form
/// that reads back to the same f32.
fn write_json(out: &mut impl Write, n_vocab: usize, rows: &[f32]) -> Result<()> {
    write!(out, "{{\"n_vocab\": {n_vocab}, \"logits\": [")?;
    for (i, row) in rows.chunks(n_vocab).enumerate() {
        if i > 0 {
            write!(out, ", ")?;
        }
        write!(out, "[")?;
        for (j, v) in row.iter().enumerate() {
            if j > 0 {
                write!(out, ", ")?;
            }
            if v.is_finite() {
                write!(out, "{v:?}")?;
            } else {
                // JSON has no infinities: a masked logit is written as null.
                write!(out, "null")?;
            }
        }
        write!(out, "]")?;
    }
    writeln!(out, "]}}")?;
    Ok(())
}
