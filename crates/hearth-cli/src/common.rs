//! What several subcommands share: loading a model with its tokenizer,
//! thread and context defaults.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hearth_model::{KvType, Model, State};
use hearth_ops::ThreadPool;
use hearth_tokenizer::Tokenizer;

/// Default context cap when the model was trained with a longer one.
pub const DEFAULT_CTX: usize = 4096;

pub struct Loaded {
    pub model: Model,
    pub tokenizer: Tokenizer,
    pub load_time: Duration,
}

/// The file a MODEL argument names: the path itself when it exists, else
/// an installed store name (`hearth list`).
pub fn model_path(arg: &Path) -> Result<PathBuf> {
    let s = arg.to_str().context("the model path is not valid UTF-8")?;
    Ok(hearth_store::resolve_model(s)?)
}

pub fn load(arg: &Path) -> Result<Loaded> {
    let t0 = Instant::now();
    let path = &model_path(arg)?;
    let model = Model::load(path).with_context(|| format!("loading {}", path.display()))?;
    let tokenizer = Tokenizer::from_gguf(model.file())
        .with_context(|| format!("reading the tokenizer of {}", path.display()))?;
    Ok(Loaded {
        model,
        tokenizer,
        load_time: t0.elapsed(),
    })
}

/// Threads to use: the number given, else the machine's physical cores
/// (hyper-threads share one core's vector units, which these kernels
/// saturate, so llama.cpp makes the same choice).
pub fn threads(requested: Option<usize>) -> Result<usize> {
    match requested {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => Ok(n),
        None => Ok(physical_cores()),
    }
}

/// Physical cores this process may use: distinct (package, core) pairs in
/// /proc/cpuinfo, capped by the CPUs available to the process.
pub fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return logical;
    };
    let mut cores = std::collections::HashSet::new();
    let (mut pkg, mut core) = (None, None);
    for line in info.lines().chain(std::iter::once("")) {
        let mut kv = line.splitn(2, ':').map(str::trim);
        match (kv.next(), kv.next()) {
            (Some("physical id"), Some(v)) => pkg = Some(v.to_string()),
            (Some("core id"), Some(v)) => core = Some(v.to_string()),
            (Some(""), None) => {
                if let (Some(p), Some(c)) = (pkg.take(), core.take()) {
                    cores.insert((p, c));
                }
            }
            _ => {}
        }
    }
    match cores.len() {
        0 => logical,
        n => n.min(logical),
    }
}

/// Context size: the one given, else the model's trained length capped at
/// [`DEFAULT_CTX`].
pub fn context(model: &Model, requested: Option<usize>) -> Result<usize> {
    match requested {
        Some(0) => bail!("--ctx must be at least 1"),
        Some(n) if n > 1 << 20 => bail!("--ctx {n} is larger than hearth supports (1048576)"),
        Some(n) => Ok(n),
        None => Ok(model.config.n_ctx_train.clamp(1, DEFAULT_CTX)),
    }
}

pub fn new_state(model: &Model, n_ctx: usize, kv: KvType, threads: usize) -> State {
    State::new(model, n_ctx, kv, Arc::new(ThreadPool::new(threads)))
}
