//! Transformer language models over GGUF weights.
//!
//! This crate owns the architectures — each one data ([`Config`]) plus a
//! small builder that reads its hyper-parameters and wires the shared blocks
//! (`arch.rs`) — the single forward pass they all share (`forward.rs`), the
//! weights as views into the mapped file, and each sequence's memory: a KV
//! cache for attention layers and, for the recurrent layers of hybrid
//! models ([`Recurrent`]), a fixed-size state that can be kept whole or
//! started over but not truncated.
//!
//! Key types: [`Model`] (immutable, shareable), [`State`] (one sequence's KV
//! cache, recurrent state and buffers), [`Logits`] (which rows of a batch to
//! project).
//!
//! ```no_run
//! use std::sync::Arc;
//! use hearth_model::{Model, State, Logits, KvType};
//! let model = Model::load("model.gguf").unwrap();
//! let pool = Arc::new(hearth_ops::ThreadPool::new(2));
//! let mut st = State::new(&model, 2048, KvType::F16, pool);
//! let logits = model.forward(&mut st, &[1, 2, 3], Logits::Last).unwrap();
//! assert_eq!(logits.len(), model.config.n_vocab);
//! ```

mod arch;
mod blocks;
mod config;
mod forward;
mod kv;
mod load;
mod pass;
mod recurrent;
pub mod synth;

use std::path::Path;
use std::sync::Arc;

use hearth_gguf::{GgmlType, GgufError, GgufFile};
use hearth_ops::{KvElem, ThreadPool};

pub use arch::{markdown_table, supported, ArchEntry, ARCHS};
pub use blocks::packed_bytes;
pub use config::{
    Arch, Config, Ffn, LayerSpec, Mixer, MlaSpec, MoeAct, MoeSpec, NormKind, Norms, Pooling,
    Recurrent,
};
pub use forward::{buffer_bytes, Logits, SeqInput, UBATCH};
pub use kv::KvType;

use kv::{Cache, KvCache, LayerMem};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("unknown architecture '{name}' (hearth supports: {supported})")]
    UnknownArch { name: String, supported: String },
    #[error("missing tensor '{0}'")]
    MissingTensor(String),
    #[error("tensor '{0}' is not used by hearth's {1} model: the file holds weights hearth does not understand")]
    UnusedTensor(String, &'static str),
    #[error("tensor '{tensor}': {why}")]
    BadTensor { tensor: String, why: String },
    #[error("tensor '{tensor}' has type {ty}, which cannot be used as a weight matrix")]
    UnsupportedWeightType { tensor: String, ty: GgmlType },
    #[error("hyper-parameter '{key}': {why}")]
    BadHparam { key: String, why: String },
    #[error("the context is full: {needed} tokens needed, the context holds {n_ctx}")]
    ContextFull { needed: usize, n_ctx: usize },
    #[error("token id {token} is outside the vocabulary ({n_vocab} tokens)")]
    InvalidToken { token: u32, n_vocab: usize },
    #[error("logits rows {start}..{end} asked of a batch of {n}")]
    BadLogitsRange { start: usize, end: usize, n: usize },
    #[error("a batch of {n} tokens is larger than the micro-batch of {n_ubatch}")]
    BatchTooLarge { n: usize, n_ubatch: usize },
    #[error("an encoder evaluates a text in one pass: {n} tokens after {n_past} exceed what one pass holds ({n_ubatch} tokens, from position 0)")]
    EncoderPass {
        n: usize,
        n_past: usize,
        n_ubatch: usize,
    },
    #[error("the file holds only a GGUF header, not the tensor data a model needs")]
    NoTensorData,
    #[error("cannot allocate the {bytes}-byte KV cache")]
    OutOfMemory { bytes: u64 },
}

/// A loaded model: configuration and weights mapped from the file.
pub struct Model {
    pub config: Config,
    weights: blocks::Weights,
    file: Arc<GgufFile>,
}

impl Model {
    /// Maps and validates the GGUF file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Model, ModelError> {
        Self::from_file(Arc::new(GgufFile::open(path)?))
    }

    /// Builds a model from an already parsed file.
    pub fn from_file(file: Arc<GgufFile>) -> Result<Model, ModelError> {
        if !file.has_tensor_data() {
            return Err(ModelError::NoTensorData);
        }
        let mut config = Config::from_gguf(&file)?;
        let weights = blocks::load(&file, &mut config)?;
        Ok(Model {
            config,
            weights,
            file,
        })
    }

    pub fn file(&self) -> &Arc<GgufFile> {
        &self.file
    }

    /// Bytes of the weight tensors.
    pub fn weight_bytes(&self) -> u64 {
        self.file.tensors().iter().map(|t| t.size).sum()
    }

    /// Bytes of memory the model holds besides the mapped file: an
    /// encoder's projections packed for the float GEMM (four bytes a
    /// weight; none for decoders), as [`packed_bytes`] plans from the header.
    pub fn packed_bytes(&self) -> u64 {
        self.weights.packed_bytes
    }

    /// Drops cached positions `n_keep..n_keep + n_discard` and moves the
    /// later ones down, re-rotating their keys for the new positions
    /// (llama.cpp's context shift).
    ///
    /// A recurrent layer's state has no positions to drop (llama.cpp
    /// refuses to shift such models); hearth evaluates the kept tokens
    /// again from an empty state instead, so the result is what the model
    /// computes for the shortened sequence. Only that evaluation can fail.
    pub fn shift_context(
        &self,
        st: &mut State,
        n_keep: usize,
        n_discard: usize,
    ) -> Result<(), ModelError> {
        let n_keep = n_keep.min(st.n_past);
        let n_discard = n_discard.min(st.n_past - n_keep);
        if n_discard == 0 {
            return Ok(());
        }
        if st.cache.has_recurrent() {
            let mut kept = st.tokens[..n_keep].to_vec();
            kept.extend_from_slice(&st.tokens[n_keep + n_discard..]);
            st.clear();
            return self.forward(st, &kept, Logits::None).map(|_| ());
        }
        let kv_dim = self.config.n_kv_head * self.config.head_dim;
        let hd = self.config.head_dim;
        let mut cs = vec![(0f32, 0f32); hd / 2];
        let mut row = vec![0f32; kv_dim];
        /// Moves positions `n_keep + n_discard..n_past` down by `n_discard`,
        /// re-rotating keys (when the layer has RoPE); in a ring only the
        /// positions still held move, through a copy, since new and old
        /// rows may collide.
        /// `rot`: where the rotated part of a row starts and the width
        /// each rotation covers (every head of an attention row; the
        /// trailing rotary key of a latent row).
        fn shift<T: KvElem>(
            lc: &mut KvCache<T>,
            rope: Option<&hearth_ops::Rope>,
            range: (usize, usize, usize),
            kv_dim: usize,
            rot: (usize, usize),
            cs: &mut [(f32, f32)],
            row: &mut [f32],
        ) {
            let (n_keep, n_discard, n_past) = range;
            let rows = lc.k.len() / kv_dim;
            let first = (n_keep + n_discard).max(n_past.saturating_sub(rows));
            if let Some(r) = rope {
                r.angles(-(n_discard as f32), cs);
            }
            let mut k_moved = Vec::with_capacity((n_past - first) * kv_dim);
            let mut v_moved = Vec::with_capacity((n_past - first) * kv_dim);
            for src in first..n_past {
                let at = (src % rows) * kv_dim;
                for (r, k) in row.iter_mut().zip(&lc.k[at..at + kv_dim]) {
                    *r = k.to_f32();
                }
                if let Some(r) = rope {
                    r.apply(&mut row[rot.0..], rot.1, cs);
                }
                k_moved.extend(row.iter().map(|&r| T::from_f32(r)));
                if !lc.v.is_empty() {
                    v_moved.extend_from_slice(&lc.v[at..at + kv_dim]);
                }
            }
            for (i, src) in (first..n_past).enumerate() {
                let at = ((src - n_discard) % rows) * kv_dim;
                lc.k[at..at + kv_dim].copy_from_slice(&k_moved[i * kv_dim..(i + 1) * kv_dim]);
                if !lc.v.is_empty() {
                    lc.v[at..at + kv_dim].copy_from_slice(&v_moved[i * kv_dim..(i + 1) * kv_dim]);
                }
            }
        }
        let range = (n_keep, n_discard, st.n_past);
        for (mem, spec) in st.cache.layers.iter_mut().zip(&self.config.layers) {
            let rope = spec.rope.as_ref();
            let rot = match (spec.mixer, &self.config.mla) {
                (Mixer::Mla, Some(m)) => (m.kv_lora_rank, m.n_rot),
                _ => (0, hd),
            };
            match mem {
                LayerMem::F16(lc) => shift(lc, rope, range, kv_dim, rot, &mut cs, &mut row),
                LayerMem::F32(lc) => shift(lc, rope, range, kv_dim, rot, &mut cs, &mut row),
                // Handled above: recurrent models are evaluated again.
                LayerMem::Recurrent(_) => {}
            }
        }
        st.tokens.drain(n_keep..n_keep + n_discard);
        st.n_past -= n_discard;
        Ok(())
    }
}

/// One sequence's state: the KV cache, the tokens it holds, and buffers.
pub struct State {
    n_ctx: usize,
    n_past: usize,
    n_ubatch: usize,
    /// Positions that may be rolled back without losing keys a
    /// sliding-window ring still needs (`usize::MAX` without rings).
    ring_slack: usize,
    tokens: Vec<u32>,
    cache: Cache,
    pool: Arc<ThreadPool>,
    scratch: forward::Scratch,
    logits: Vec<f32>,
    /// Sum of final hidden states while embedding.
    pooled: Vec<f32>,
    /// Batch-invariant evaluation ([`State::set_batch_invariant`]).
    batch_invariant: bool,
}

impl State {
    /// A state with room for `n_ctx` positions, evaluating prompts in
    /// micro-batches of [`UBATCH`] tokens.
    pub fn new(model: &Model, n_ctx: usize, kv: KvType, pool: Arc<ThreadPool>) -> State {
        Self::with_ubatch(model, n_ctx, kv, pool, UBATCH)
    }

    /// Like [`State::new`] with micro-batches of `n_ubatch` tokens (which
    /// also sizes the sliding-window rings).
    ///
    /// Aborts, as any failed allocation does, when the KV cache cannot be
    /// allocated; [`State::try_with_ubatch`] returns an error instead.
    pub fn with_ubatch(
        model: &Model,
        n_ctx: usize,
        kv: KvType,
        pool: Arc<ThreadPool>,
        n_ubatch: usize,
    ) -> State {
        Self::build(model, n_ctx, kv, pool, n_ubatch).unwrap_or_else(|bytes| {
            let size = usize::try_from(bytes)
                .unwrap_or(usize::MAX)
                .min(isize::MAX as usize);
            let layout = std::alloc::Layout::from_size_align(size, 1)
                .unwrap_or(std::alloc::Layout::new::<u8>());
            std::alloc::handle_alloc_error(layout)
        })
    }

    /// [`State::new`] that reports a KV cache it cannot allocate as
    /// [`ModelError::OutOfMemory`].
    pub fn try_new(
        model: &Model,
        n_ctx: usize,
        kv: KvType,
        pool: Arc<ThreadPool>,
    ) -> Result<State, ModelError> {
        Self::try_with_ubatch(model, n_ctx, kv, pool, UBATCH)
    }

    /// [`State::with_ubatch`] that reports a KV cache it cannot allocate as
    /// [`ModelError::OutOfMemory`]. The cache's pages are written here, so
    /// the memory is committed (and counted in the RSS) from the start: a
    /// context that does not fit fails now, not in the middle of a reply.
    pub fn try_with_ubatch(
        model: &Model,
        n_ctx: usize,
        kv: KvType,
        pool: Arc<ThreadPool>,
        n_ubatch: usize,
    ) -> Result<State, ModelError> {
        Self::build(model, n_ctx, kv, pool, n_ubatch)
            .map_err(|bytes| ModelError::OutOfMemory { bytes })
    }

    /// The state, or the size of the KV cache that could not be allocated.
    fn build(
        model: &Model,
        n_ctx: usize,
        kv: KvType,
        pool: Arc<ThreadPool>,
        n_ubatch: usize,
    ) -> Result<State, u64> {
        let c = &model.config;
        let n_ubatch = n_ubatch.max(1);
        let rows = c.kv_rows(n_ctx, n_ubatch);
        // A ring is a layer keeping some rows, fewer than the context.
        let ring_slack = if rows.iter().any(|&r| r > 0 && r < n_ctx) {
            n_ubatch
        } else {
            usize::MAX
        };
        Ok(State {
            n_ctx,
            n_past: 0,
            n_ubatch,
            ring_slack,
            tokens: Vec::new(),
            cache: Cache::new(kv, &c.mem_specs(&rows))?,
            pool,
            scratch: Default::default(),
            logits: Vec::new(),
            pooled: Vec::new(),
            batch_invariant: false,
        })
    }

    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Positions filled so far.
    pub fn n_past(&self) -> usize {
        self.n_past
    }

    /// The tokens whose keys and values are cached, in position order.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Forgets positions from `n` on, keeping a common prefix for reuse,
    /// and returns how many positions were kept: all `n`, or none when a
    /// sliding-window ring has already overwritten keys that positions from
    /// `n` on would need (the prompt is then evaluated again, as llama.cpp
    /// does with its SWA cache), or when the model has recurrent layers,
    /// whose state holds every position at once and cannot be rolled back
    /// (so a cached prefix is reused only when the whole of it matches).
    pub fn truncate(&mut self, n: usize) -> usize {
        if n < self.n_past {
            let keep = if self.n_past - n <= self.ring_slack && !self.cache.has_recurrent() {
                n
            } else {
                0
            };
            self.n_past = keep;
            self.tokens.truncate(keep);
            if keep == 0 {
                self.cache.reset_recurrent();
            }
        }
        self.n_past
    }

    /// Forgets every position (and resets recurrent states).
    pub fn clear(&mut self) {
        self.n_past = 0;
        self.tokens.clear();
        self.cache.reset_recurrent();
    }

    /// The logits of the last [`Model::forward`] call (rows × n_vocab).
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    pub fn kv_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// Tokens one forward pass evaluates together.
    pub fn n_ubatch(&self) -> usize {
        self.n_ubatch
    }

    pub fn pool(&self) -> &Arc<ThreadPool> {
        &self.pool
    }

    /// Batch-invariant evaluation (off by default): every token's row of
    /// every product, attention and norm is computed with the same kernel
    /// and summation order whatever else is in the forward pass — how many
    /// tokens of this prompt, which other sequences — so a token's logits
    /// are the same bits whether its prompt was evaluated in one batch, in
    /// pieces (a cached prefix, then the rest), or beside other sequences.
    /// Prompt processing is slower: the multi-row kernels are not used.
    pub fn set_batch_invariant(&mut self, on: bool) {
        self.batch_invariant = on;
    }

    pub fn batch_invariant(&self) -> bool {
        self.batch_invariant
    }
}
