//! `hearth quantize IN OUT TYPE [--imatrix FILE] [--allow-requantize]`:
//! llama-quantize's mixes, tensor by tensor as it chooses them, with the
//! same bytes.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use clap::Args;
use hearth_quantize::{quantize_file, Ftype, Imatrix, Options, PlannedTensor};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args, Debug)]
pub struct QuantizeArgs {
    /// The GGUF model to quantize (usually F32, F16 or BF16).
    pub input: PathBuf,
    /// Where to write the quantized model (written to a temporary file
    /// beside it and renamed when complete).
    pub output: PathBuf,
    /// The mix, as llama-quantize names it: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
    /// Q2_K, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K,
    /// F16, BF16, F32, …
    #[arg(value_name = "TYPE")]
    pub ftype: String,
    /// An importance matrix (llama.cpp's `*.imatrix.gguf`, from
    /// llama-imatrix); the lowest-bit types require one.
    #[arg(long, value_name = "FILE")]
    pub imatrix: Option<PathBuf>,
    /// Quantize tensors that are already quantized (worse than quantizing
    /// the original).
    #[arg(long)]
    pub allow_requantize: bool,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub fn main(a: QuantizeArgs) -> Result<()> {
    let ftype = Ftype::parse(&a.ftype).ok_or_else(|| {
        let names: Vec<&str> = Ftype::names().collect();
        anyhow!(
            "unknown type {:?}; the types are {}",
            a.ftype,
            names.join(", ")
        )
    })?;
    let imatrix = match &a.imatrix {
        Some(p) => Some((Imatrix::load(p)?, p.display().to_string())),
        None => None,
    };
    let opts = Options {
        ftype,
        imatrix,
        allow_requantize: a.allow_requantize,
    };
    let tty = std::io::stderr().is_terminal();
    let mut bar: Option<ProgressBar> = None;
    let mut progress = |i: usize, total: usize, t: &PlannedTensor| {
        if tty {
            let b = bar.get_or_insert_with(|| {
                let b = ProgressBar::new(total as u64);
                let style = ProgressStyle::with_template("{wide_bar} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
                b.set_style(style);
                b
            });
            b.set_position(i as u64);
            b.set_message(format!("{} → {}", t.name, t.to));
        } else {
            eprintln!(
                "[{:>4}/{total}] {:<36} {:>6} → {}",
                i + 1,
                t.name,
                t.from.name(),
                t.to
            );
        }
    };
    let plan = quantize_file(&a.input, &a.output, &opts, &mut progress)
        .with_context(|| format!("quantizing {}", a.input.display()))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let size = |ty: hearth_gguf::GgmlType, t: &PlannedTensor| {
        ty.row_bytes(t.dims.iter().product()).unwrap_or(0)
    };
    let before: u64 = plan.tensors.iter().map(|t| size(t.from, t)).sum();
    let after: u64 = plan.tensors.iter().map(|t| size(t.to, t)).sum();
    println!(
        "wrote {} as {}: {} tensors, {:.2} MiB -> {:.2} MiB",
        a.output.display(),
        ftype.name(),
        plan.tensors.len(),
        mib(before),
        mib(after)
    );
    if plan.n_fallback > 0 {
        println!(
            "{} tensor(s) have rows that are not a multiple of the type's block and use a fallback type",
            plan.n_fallback
        );
    }
    Ok(())
}
