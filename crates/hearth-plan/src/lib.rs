//! The memory planner: what a model needs to run at a context length, what
//! this machine can give it, whether it fits, and the largest context that
//! does — from a GGUF header alone, before anything is allocated.
//!
//! The plan has these parts, each sized the way hearth allocates it:
//!
//! - **weights**: tensor data of the mapped file that a forward pass reads,
//!   so whose pages become resident (all of it, except an untied token
//!   embedding, of which only the rows of tokens seen are read; a
//!   mixture-of-experts model's experts all count, since different tokens
//!   choose different ones — [`Experts`] says what one token reads), plus
//!   an encoder's projections packed once into f32 panels
//!   ([`hearth_model::packed_bytes`]);
//! - **KV cache**: [`Config::kv_rows`] rows per layer (sliding-window layers
//!   keep a ring of `window + n_ubatch` rows) of keys and values in f16 or
//!   f32, per parallel sequence — committed when the `State` is created;
//! - **recurrent state**: for hybrid models, each recurrent layer's
//!   convolution history and scan state in f32 ([`Config::recurrent_bytes`]),
//!   per parallel sequence, the same at every context length;
//! - **compute buffers**: the forward pass's activations for one
//!   micro-batch, the quantized activations, one row of logits and the
//!   sampler's candidate list ([`hearth_model::buffer_bytes`]), per sequence;
//! - **fixed overhead**: the program and its runtime, the mapped GGUF header
//!   and the metadata and tokenizer tables built from it (measured; see
//!   [`overhead_bytes`]).
//!
//! Key types: [`Plan`] (the numbers and the verdict), [`Options`],
//! [`Available`] (this machine's memory), [`DoesNotFit`] (the refusal that
//! `run` and `serve` show), and [`plan_repo`] for choosing among a model
//! repository's quantizations before downloading one.
//!
//! ```no_run
//! use hearth_plan::{check, Available, Ctx, Options};
//! let file = hearth_gguf::GgufFile::open("model.gguf").unwrap();
//! let opts = Options { ctx: Ctx::Auto, ..Options::default() };
//! let plan = check("model.gguf", &file, &opts, &Available::probe().unwrap()).unwrap();
//! println!("{plan}");
//! ```

mod experts;
mod format;
mod memory;
mod repo;

use hearth_gguf::{GgufFile, Value};
use hearth_model::{Config, KvType, ModelError, UBATCH};
use serde::Serialize;

pub use experts::{experts, is_expert_tensor, Experts};
pub use format::bytes as human_bytes;
pub use memory::{parse_size, Available, CgroupMemory, MemorySource, MEMORY_LIMIT_ENV};
pub use repo::{plan_repo, quant_of, repo_table, QuantFit};

/// Contexts longer than this are refused outright (hearth's cap).
pub const MAX_CTX: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("available memory: {why}")]
    Memory { why: String },
    #[error("{0}")]
    BadOptions(String),
    #[error("{0}")]
    DoesNotFit(Box<DoesNotFit>),
}

/// A model that does not fit, with its plan: the numbers and the largest
/// context that would fit (`plan.max_ctx`).
#[derive(Clone, Debug)]
pub struct DoesNotFit {
    pub plan: Plan,
}

impl std::error::Error for DoesNotFit {}

/// The context to plan for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ctx {
    /// The largest that fits, up to the trained length.
    Auto,
    Tokens(usize),
}

impl std::str::FromStr for Ctx {
    type Err = String;
    fn from_str(s: &str) -> Result<Ctx, String> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Ctx::Auto);
        }
        // Bounds are checked where the context is used, so that a bad
        // value is reported like every other bad option.
        match s.parse::<usize>() {
            Ok(n) => Ok(Ctx::Tokens(n)),
            Err(_) => Err(format!("'{s}' is not a number of tokens or 'auto'")),
        }
    }
}

/// What to plan for.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub ctx: Ctx,
    /// Sequences held at once, each with its own KV cache and buffers.
    pub parallel: usize,
    pub kv: KvType,
    /// Tokens per micro-batch ([`UBATCH`] in `run` and `serve`).
    pub n_ubatch: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            ctx: Ctx::Tokens(4096),
            parallel: 1,
            kv: KvType::F16,
            n_ubatch: UBATCH,
        }
    }
}

/// What a model needs at a context, what is available, and the verdict.
/// Sizes in bytes.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub model: String,
    pub arch: String,
    pub n_ctx: usize,
    pub n_ctx_train: usize,
    pub parallel: usize,
    pub kv_type: &'static str,
    pub n_ubatch: usize,
    pub weights: u64,
    pub kv_cache: u64,
    /// Recurrent layers' state (0 for a transformer).
    pub recurrent_state: u64,
    pub compute: u64,
    pub overhead: u64,
    pub total: u64,
    pub available: Available,
    pub fits: bool,
    /// The largest context that fits, up to the trained length; `None`
    /// when not even one token's does.
    pub max_ctx: Option<usize>,
    /// A mixture-of-experts model's routed experts (all of them are in
    /// `weights`; a token reads `used` of `count`).
    pub experts: Option<Experts>,
}

/// The parts of a plan at one context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Breakdown {
    pub weights: u64,
    pub kv_cache: u64,
    pub recurrent: u64,
    pub compute: u64,
    pub overhead: u64,
}

impl Breakdown {
    pub fn total(&self) -> u64 {
        self.weights
            .saturating_add(self.kv_cache)
            .saturating_add(self.recurrent)
            .saturating_add(self.compute)
            .saturating_add(self.overhead)
    }
}

/// The program, its runtime and thread stacks, before any model: `hearth
/// run` on the 2-layer synthetic llama model peaks at 5.6 MiB of RSS, of
/// which about 0.5 MiB are that model's weights, cache, buffers and tables.
pub const BASE_OVERHEAD: u64 = 5 << 20;
/// Bytes per metadata array element once parsed (a `Value`, the
/// tokenizer's per-token tables), and more per string element (its heap
/// copy in the header, its copy and index entry in the tokenizer, the
/// allocator's per-block cost). Fitted to the peak RSS of `hearth tokenize`
/// on SmolLM2 (49k tokens + 49k merges) and Gemma 3 (262k tokens, scores
/// and types): within 3 MiB of both.
pub const PER_ARRAY_VALUE: u64 = 24;
pub const PER_STRING_VALUE: u64 = 160;
/// Pages the kernel maps around a faulting address of a file mapping
/// (`fault_around_bytes`): reading one row of an untied embedding makes
/// this much resident.
const FAULT_AROUND: u64 = 64 << 10;

/// Fixed overhead of a model: [`BASE_OVERHEAD`], the mapped header, and
/// the parsed metadata and tokenizer tables.
pub fn overhead_bytes(file: &GgufFile) -> u64 {
    fn count(v: &Value, values: &mut u64, strings: &mut u64) {
        if let Value::Array(_, items) = v {
            for i in items {
                *values += 1;
                if matches!(i, Value::String(_)) {
                    *strings += 1;
                }
                count(i, values, strings);
            }
        }
    }
    let (mut values, mut strings) = (0u64, 0u64);
    for (_, v) in file.metadata() {
        count(v, &mut values, &mut strings);
    }
    BASE_OVERHEAD
        .saturating_add(file.data_offset())
        .saturating_add(values.saturating_mul(PER_ARRAY_VALUE))
        .saturating_add(strings.saturating_mul(PER_STRING_VALUE))
}

/// A model's facts for planning, read once from its header.
pub struct Estimator<'a> {
    file: &'a GgufFile,
    pub config: Config,
    /// Tensor data read in full by every forward pass.
    weights_read: u64,
    /// An untied token embedding: (size, bytes per row).
    untied_embd: Option<(u64, u64)>,
    overhead: u64,
}

impl<'a> Estimator<'a> {
    pub fn new(file: &'a GgufFile) -> Result<Estimator<'a>, PlanError> {
        let config = Config::from_gguf(file)?;
        let untied = file.tensor("output.weight").is_some();
        let mut weights_read = 0u64;
        let mut untied_embd = None;
        for t in file.tensors() {
            if untied && t.name == "token_embd.weight" {
                let row = t.size / t.n_rows().max(1);
                untied_embd = Some((t.size, row));
            } else {
                weights_read = weights_read.saturating_add(t.size);
            }
        }
        // An encoder's projections, packed at load into f32 panels, are
        // held beside the mapped file.
        let weights_read = weights_read.saturating_add(hearth_model::packed_bytes(&config, file));
        Ok(Estimator {
            file,
            config,
            weights_read,
            untied_embd,
            overhead: overhead_bytes(file),
        })
    }

    /// Tensor data of the file that is read (all but an untied embedding).
    pub fn weights_read(&self) -> u64 {
        self.weights_read
    }

    /// The parts at a context of `n_ctx` tokens.
    pub fn breakdown(
        &self,
        n_ctx: usize,
        parallel: usize,
        kv: KvType,
        n_ubatch: usize,
    ) -> Breakdown {
        let seqs = parallel as u64;
        let embd = match self.untied_embd {
            Some((size, row)) => (n_ctx as u64)
                .saturating_mul(seqs)
                .saturating_mul(row.max(FAULT_AROUND))
                .min(size),
            None => 0,
        };
        let rows = n_ubatch.max(1).min(n_ctx.max(1));
        let per_seq = hearth_model::buffer_bytes(&self.config, self.file, rows).saturating_add(
            (self.config.n_vocab * std::mem::size_of::<hearth_sample::Candidate>()) as u64,
        );
        Breakdown {
            weights: self.weights_read.saturating_add(embd),
            kv_cache: self
                .config
                .kv_bytes(n_ctx, n_ubatch, kv)
                .saturating_mul(seqs),
            recurrent: self.config.recurrent_bytes().saturating_mul(seqs),
            compute: per_seq.saturating_mul(seqs),
            overhead: self.overhead,
        }
    }

    /// The largest context up to the trained length whose total is at most
    /// `available`, or `None` when not even one token's is.
    pub fn max_ctx(
        &self,
        parallel: usize,
        kv: KvType,
        n_ubatch: usize,
        available: u64,
    ) -> Option<usize> {
        let fits = |c: usize| self.breakdown(c, parallel, kv, n_ubatch).total() <= available;
        let hi = self.config.n_ctx_train.clamp(1, MAX_CTX);
        if !fits(1) {
            return None;
        }
        if fits(hi) {
            return Some(hi);
        }
        // The total grows with the context: fits(lo), !fits(hi).
        let (mut lo, mut hi) = (1, hi);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(lo)
    }
}

fn validate(opts: &Options) -> Result<(), PlanError> {
    if opts.parallel == 0 {
        return Err(PlanError::BadOptions(
            "--parallel must be at least 1".into(),
        ));
    }
    if opts.parallel > 1024 {
        return Err(PlanError::BadOptions(format!(
            "--parallel {} is more than hearth supports (1024)",
            opts.parallel
        )));
    }
    match opts.ctx {
        Ctx::Tokens(0) => Err(PlanError::BadOptions("--ctx must be at least 1".into())),
        Ctx::Tokens(n) if n > MAX_CTX => Err(PlanError::BadOptions(format!(
            "--ctx {n} is larger than hearth supports ({MAX_CTX})"
        ))),
        _ => Ok(()),
    }
}

/// The plan for the model `file` (called `name` in messages) under `opts`.
/// With [`Ctx::Auto`] the context is the largest that fits, up to the
/// trained length (1 token when none fits).
pub fn plan(
    name: &str,
    file: &GgufFile,
    opts: &Options,
    available: &Available,
) -> Result<Plan, PlanError> {
    validate(opts)?;
    let est = Estimator::new(file)?;
    let max_ctx = est.max_ctx(opts.parallel, opts.kv, opts.n_ubatch, available.bytes);
    let n_ctx = match opts.ctx {
        Ctx::Tokens(n) => n,
        Ctx::Auto => max_ctx.unwrap_or(1),
    };
    let b = est.breakdown(n_ctx, opts.parallel, opts.kv, opts.n_ubatch);
    Ok(Plan {
        model: name.to_string(),
        arch: est.config.arch.name().to_string(),
        n_ctx,
        n_ctx_train: est.config.n_ctx_train,
        parallel: opts.parallel,
        kv_type: opts.kv.name(),
        n_ubatch: opts.n_ubatch,
        weights: b.weights,
        kv_cache: b.kv_cache,
        recurrent_state: b.recurrent,
        compute: b.compute,
        overhead: b.overhead,
        total: b.total(),
        available: available.clone(),
        fits: b.total() <= available.bytes,
        max_ctx,
        experts: experts(file),
    })
}

/// [`plan`], refusing with [`PlanError::DoesNotFit`] (the numbers and the
/// way out) when the model does not fit: what `run` and `serve` call
/// before they allocate anything.
pub fn check(
    name: &str,
    file: &GgufFile,
    opts: &Options,
    available: &Available,
) -> Result<Plan, PlanError> {
    let p = plan(name, file, opts, available)?;
    if p.fits {
        Ok(p)
    } else {
        Err(PlanError::DoesNotFit(Box::new(DoesNotFit { plan: p })))
    }
}
