//! What several subcommands share: loading a model with its tokenizer,
//! thread and context defaults.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hearth_model::{KvType, Model, State};
use hearth_ops::ThreadPool;
use hearth_plan::{Available, Ctx, Options, Plan};
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
    let what = format!("loading {}", arg.display());
    let (model, tokenizer) = with_spinner(&what, || -> Result<_> {
        let model = Model::load(path).with_context(|| format!("loading {}", path.display()))?;
        let tokenizer = Tokenizer::from_gguf(model.file())
            .with_context(|| format!("reading the tokenizer of {}", path.display()))?;
        Ok((model, tokenizer))
    })?;
    Ok(Loaded {
        model,
        tokenizer,
        load_time: t0.elapsed(),
    })
}

/// Runs `work`; on a terminal, when it takes longer than a second, a
/// spinner with `message` turns on stderr until it is done.
pub fn with_spinner<T>(message: &str, work: impl FnOnce() -> T) -> T {
    let _spinner = Spinner::after_a_second(message);
    work()
}

/// A spinner on stderr that appears when it has lived for a second (and
/// only on a terminal), and goes when dropped.
pub struct Spinner {
    done: Option<Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Spinner {
    pub fn after_a_second(message: &str) -> Spinner {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return Spinner {
                done: None,
                thread: None,
            };
        }
        let done = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let flag = done.clone();
        let message = message.to_string();
        let thread = std::thread::spawn(move || {
            let (lock, cv) = &*flag;
            let Ok(g) = lock.lock() else { return };
            let Ok((g, _)) = cv.wait_timeout_while(g, Duration::from_secs(1), |d| !*d) else {
                return;
            };
            if *g {
                return;
            }
            let pb = indicatif::ProgressBar::new_spinner();
            pb.set_message(message);
            pb.enable_steady_tick(Duration::from_millis(100));
            drop(cv.wait_while(g, |d| !*d));
            pb.finish_and_clear();
        });
        Spinner {
            done: Some(done),
            thread: Some(thread),
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(done) = &self.done {
            let (lock, cv) = &**done;
            if let Ok(mut d) = lock.lock() {
                *d = true;
            }
            cv.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
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

/// Context size: the one given; with `auto`, the largest that fits in this
/// machine's memory up to the trained length (see [`fit`]); else the
/// model's trained length capped at [`DEFAULT_CTX`].
pub fn context(model: &Model, requested: Option<Ctx>, kv: KvType) -> Result<usize> {
    match requested {
        Some(Ctx::Tokens(0)) => bail!("--ctx must be at least 1"),
        Some(Ctx::Tokens(n)) if n > hearth_plan::MAX_CTX => {
            bail!(
                "--ctx {n} is larger than hearth supports ({})",
                hearth_plan::MAX_CTX
            )
        }
        Some(Ctx::Tokens(n)) => Ok(n),
        Some(Ctx::Auto) => {
            let name = model.file().get("general.name").and_then(|v| v.as_str());
            Ok(fit(model, name.unwrap_or("the model"), Ctx::Auto, kv)?.n_ctx)
        }
        None => Ok(model.config.n_ctx_train.clamp(1, DEFAULT_CTX)),
    }
}

/// The memory plan of `model` (called `name` in messages) for one
/// sequence, or the refusal, with the numbers and the way out, when it
/// does not fit in this machine's available memory.
pub fn fit(model: &Model, name: &str, ctx: Ctx, kv: KvType) -> Result<Plan> {
    let opts = Options {
        ctx,
        kv,
        ..Options::default()
    };
    Ok(hearth_plan::check(
        name,
        model.file(),
        &opts,
        &Available::probe()?,
    )?)
}

/// A state for `n_ctx` tokens, after checking that it fits in memory; the
/// KV cache is committed here, so a context that cannot be held fails now.
pub fn checked_state(
    model: &Model,
    name: &str,
    n_ctx: usize,
    kv: KvType,
    threads: usize,
) -> Result<State> {
    fit(model, name, Ctx::Tokens(n_ctx), kv)?;
    let trained = model.config.n_ctx_train;
    if n_ctx > trained {
        eprintln!(
            "warning: a context of {n_ctx} tokens is beyond the {trained} the model was trained for; its output may lose coherence past them"
        );
    }
    Ok(State::try_new(
        model,
        n_ctx,
        kv,
        Arc::new(ThreadPool::new(threads)),
    )?)
}

pub fn new_state(model: &Model, n_ctx: usize, kv: KvType, threads: usize) -> State {
    State::new(model, n_ctx, kv, Arc::new(ThreadPool::new(threads)))
}
