//! The forward pass's entry points: one or several sequences, logits or a
//! pooled embedding, split into micro-batches that `pass.rs` evaluates.

use std::sync::Arc;

use hearth_gguf::GgufFile;
use hearth_quant::vec_dot_type;

use crate::config::{Config, Ffn, Pooling};

use crate::{Model, ModelError, State};

/// Tokens evaluated together by default (llama.cpp's n_ubatch).
pub const UBATCH: usize = 512;

/// Which rows of a batch produce logits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Logits {
    /// Only the last token (generation).
    Last,
    /// Every token of the batch.
    All,
    /// Tokens `start..end` of the batch (perplexity scores half a chunk).
    Range(usize, usize),
    /// None (prompt prefix that needs no distribution).
    None,
}

/// Reusable activation buffers, sized for one micro-batch.
/// Blocks size the buffers they use on each call (a resize that does not
/// grow does not allocate).
#[derive(Default)]
pub(crate) struct Scratch {
    /// The residual stream (n × n_embd).
    pub x: Vec<f32>,
    /// A block's normalised input (n × n_embd).
    pub xb: Vec<f32>,
    /// A block's output (n × n_embd).
    pub o: Vec<f32>,
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    pub att: Vec<f32>,
    pub gate: Vec<f32>,
    pub up: Vec<f32>,
    /// A fused projection's output before it is split.
    pub tmp: Vec<f32>,
    /// One row, for norms applied in place.
    pub row: Vec<f32>,
    /// Activations quantized for the weights' dot products.
    pub qbuf: Vec<u8>,
    pub rope_cs: Vec<(f32, f32)>,
    /// Each row's position in its sequence.
    pub positions: Vec<usize>,
    /// Each segment's rows (an encoder's attention within each text).
    pub lens: Vec<usize>,
    /// A mixture-of-experts layer's routes and per-expert products.
    pub moe: crate::blocks::moe::MoeScratch,
    /// Latent attention's per-head products.
    pub mla: crate::blocks::mla::MlaScratch,
}

/// Bytes of the buffers a [`State`] grows to while it evaluates
/// micro-batches of up to `n_rows` tokens and returns one row of logits
/// (generation): the [`Scratch`] activations, the activations quantized for
/// the widest weight format in `file`, and the logits. Kept beside
/// `Scratch` so the two change together.
pub fn buffer_bytes(c: &Config, file: &GgufFile, n_rows: usize) -> u64 {
    let n = n_rows as u64;
    let (e, hd) = (c.n_embd as u64, c.head_dim as u64);
    let (q_dim, kv_dim) = (c.n_head as u64 * hd, c.n_kv_head as u64 * hd);
    let ff = c.n_ff as u64;
    // x, xb, o; q, att; k, v; gate, up.
    let f32s = n * (3 * e + 2 * q_dim + 2 * kv_dim + 2 * ff);
    let quant_row = file
        .tensors()
        .iter()
        .filter(|t| t.dims.len() == 2)
        .filter_map(|t| vec_dot_type(t.ty).row_bytes(t.row_len()))
        .max()
        .unwrap_or(0);
    // A fused QKV or gate-up projection's output before it is split.
    let fused = file.tensor("blk.0.attn_qkv.weight").is_some()
        || (c.layers.first().is_some_and(|l| l.ffn == Ffn::Gated)
            && file.tensor("blk.0.ffn_gate.weight").is_none());
    let tmp = if fused {
        n * (q_dim + 2 * kv_dim).max(2 * ff)
    } else {
        0
    };
    let small = n * 8 + hd / 2 * 8 + e * 4; // positions, rope angles, a row
    let logits = c.n_vocab as u64 * 4;
    let moe =
        crate::blocks::moe::scratch_bytes(c, file, n) + crate::blocks::mla::scratch_bytes(c, n);
    (f32s + tmp) * 4 + n * quant_row + small + logits + moe
}

/// One sequence's part of a batched step ([`Model::forward_batch`]).
pub struct SeqInput<'a> {
    pub state: &'a mut State,
    pub tokens: &'a [u32],
    pub logits: Logits,
}

/// What a segment of a micro-batch produces besides its cache entries.
#[derive(Clone, Copy)]
pub(crate) enum Out {
    None,
    /// Segment rows `from..to` project to logits rows from `dest` on.
    Logits {
        from: usize,
        to: usize,
        dest: usize,
    },
    /// The normalised final hidden states are added into `State::pooled`.
    Pool,
}

/// A run of consecutive tokens of one sequence inside a micro-batch.
pub(crate) struct Seg<'s, 'a> {
    pub st: &'s mut State,
    pub tokens: &'a [u32],
    pub out: Out,
}

impl Model {
    fn check(&self, st: &State, tokens: &[u32]) -> Result<(), ModelError> {
        let c = &self.config;
        let needed = st.n_past + tokens.len();
        if needed > st.n_ctx {
            return Err(ModelError::ContextFull {
                needed,
                n_ctx: st.n_ctx,
            });
        }
        if !c.causal && (st.n_past > 0 || tokens.len() > st.n_ubatch) {
            return Err(ModelError::EncoderPass {
                n: tokens.len(),
                n_past: st.n_past,
                n_ubatch: st.n_ubatch,
            });
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= c.n_vocab) {
            return Err(ModelError::InvalidToken {
                token: bad,
                n_vocab: c.n_vocab,
            });
        }
        Ok(())
    }

    /// Evaluates `tokens` at positions `st.n_past()..`, appends them to the
    /// cache, and returns the logits asked for (rows × n_vocab).
    pub fn forward<'s>(
        &self,
        st: &'s mut State,
        tokens: &[u32],
        want: Logits,
    ) -> Result<&'s [f32], ModelError> {
        self.check(st, tokens)?;
        let n_vocab = self.config.n_vocab;
        let (lo, hi) = logits_rows(&want, tokens.len())?;
        let n_rows = hi - lo;
        st.logits.resize(n_rows * n_vocab, 0.0);
        let mut start = 0;
        while start < tokens.len() {
            let end = (start + st.n_ubatch).min(tokens.len());
            let (a, b) = (lo.max(start), hi.min(end));
            let out = if a < b {
                Out::Logits {
                    from: a - start,
                    to: b - start,
                    dest: a - lo,
                }
            } else {
                Out::None
            };
            self.run(&mut [Seg {
                st: &mut *st,
                tokens: &tokens[start..end],
                out,
            }])?;
            start = end;
        }
        Ok(&st.logits[..n_rows * n_vocab])
    }

    /// Evaluates several sequences in one pass: their tokens share every
    /// weight product, and each attends over its own cache. Each state's
    /// [`State::logits`] then holds the rows it asked for. The tokens of all
    /// sequences together must fit one micro-batch of every state
    /// ([`State::n_ubatch`]).
    pub fn forward_batch(&self, seqs: &mut [SeqInput<'_>]) -> Result<(), ModelError> {
        let total: usize = seqs.iter().map(|s| s.tokens.len()).sum();
        let mut segs = Vec::with_capacity(seqs.len());
        for s in seqs.iter_mut() {
            self.check(s.state, s.tokens)?;
            if total > s.state.n_ubatch {
                return Err(ModelError::BatchTooLarge {
                    n: total,
                    n_ubatch: s.state.n_ubatch,
                });
            }
            let (lo, hi) = logits_rows(&s.logits, s.tokens.len())?;
            s.state.logits.resize((hi - lo) * self.config.n_vocab, 0.0);
            if s.tokens.is_empty() {
                continue;
            }
            let out = if lo < hi {
                Out::Logits {
                    from: lo,
                    to: hi,
                    dest: 0,
                }
            } else {
                Out::None
            };
            segs.push(Seg {
                st: &mut *s.state,
                tokens: s.tokens,
                out,
            });
        }
        if segs.is_empty() {
            return Ok(());
        }
        self.run(&mut segs)
    }

    /// The mean of the normalised final hidden states of `tokens`, scaled
    /// to unit length (a sentence embedding). The state is cleared before
    /// and after.
    pub fn embed(&self, st: &mut State, tokens: &[u32]) -> Result<Vec<f32>, ModelError> {
        st.clear();
        self.check(st, tokens)?;
        for chunk in tokens.chunks(st.n_ubatch.max(1)) {
            self.embed_feed(st, chunk)?;
        }
        Ok(self.embed_finish(st))
    }

    /// [`Model::embed`] a piece at a time (so a caller can interleave
    /// other work): feeds the next `tokens` of the text being embedded in
    /// `st` (a cleared state starts a new one), at most `st`'s micro-batch
    /// at once. On error the state is cleared.
    pub fn embed_feed(&self, st: &mut State, tokens: &[u32]) -> Result<(), ModelError> {
        if st.n_past == 0 {
            st.pooled.clear();
            st.pooled.resize(self.config.n_embd, 0.0);
        }
        let result = self.check(st, tokens).and_then(|()| {
            tokens.chunks(st.n_ubatch.max(1)).try_for_each(|chunk| {
                self.run(&mut [Seg {
                    st: &mut *st,
                    tokens: chunk,
                    out: Out::Pool,
                }])
            })
        });
        if result.is_err() {
            st.clear();
        }
        result
    }

    /// [`Model::embed_feed`] for several texts at once, each in its own
    /// state, in one micro-batch (the weights are read once for all): at
    /// most the first state's micro-batch of tokens in all. On error every
    /// state is cleared.
    pub fn embed_feed_batch(&self, feeds: &mut [(&mut State, &[u32])]) -> Result<(), ModelError> {
        let total: usize = feeds.iter().map(|(_, t)| t.len()).sum();
        let result = (|| {
            let Some(first) = feeds.first() else {
                return Ok(());
            };
            if total > first.0.n_ubatch {
                return Err(ModelError::BatchTooLarge {
                    n: total,
                    n_ubatch: first.0.n_ubatch,
                });
            }
            let mut segs = Vec::with_capacity(feeds.len());
            for (st, tokens) in feeds.iter_mut() {
                self.check(st, tokens)?;
                if st.n_past == 0 {
                    st.pooled.clear();
                    st.pooled.resize(self.config.n_embd, 0.0);
                }
                if !tokens.is_empty() {
                    segs.push(Seg {
                        st,
                        tokens,
                        out: Out::Pool,
                    });
                }
            }
            if segs.is_empty() {
                return Ok(());
            }
            self.run(&mut segs)
        })();
        if result.is_err() {
            for (st, _) in feeds.iter_mut() {
                st.clear();
            }
        }
        result
    }

    /// The embedding of the tokens fed since the state was cleared; clears it.
    /// A reranker ([`Pooling::Rank`]) gives its head's scores instead, as
    /// they are (one per output label; not normalised).
    pub fn embed_finish(&self, st: &mut State) -> Vec<f32> {
        if st.n_past == 0 {
            // Nothing fed: the zero vector.
            st.pooled.clear();
            st.pooled.resize(self.config.n_embd, 0.0);
        }
        let n = st.n_past.max(1) as f32;
        st.clear();
        let mut v = std::mem::take(&mut st.pooled);
        if let Pooling::Rank { .. } = self.config.pooling {
            let kern = match st.batch_invariant {
                true => hearth_quant::kernels().row_invariant(),
                false => hearth_quant::kernels(),
            };
            return self
                .weights
                .rank
                .apply(&st.pool, kern, self.file.bytes(), v);
        }
        let norm = v.iter().map(|x| (x / n) * (x / n)).sum::<f32>().sqrt();
        for x in v.iter_mut() {
            *x = if norm > 0.0 { *x / n / norm } else { 0.0 };
        }
        v
    }

    /// One micro-batch made of one or more sequences' segments.
    fn run(&self, segs: &mut [Seg<'_, '_>]) -> Result<(), ModelError> {
        let pool = Arc::clone(&segs[0].st.pool);
        let mut s = std::mem::take(&mut segs[0].st.scratch);
        let r = self.run_with(&pool, &mut s, segs);
        segs[0].st.scratch = s;
        r
    }
}

/// The batch rows `lo..hi` whose logits `want` asks for.
fn logits_rows(want: &Logits, n: usize) -> Result<(usize, usize), ModelError> {
    Ok(match *want {
        Logits::Last => (n.saturating_sub(1), n),
        Logits::All => (0, n),
        Logits::Range(a, b) if a <= b && b <= n => (a, b),
        Logits::Range(a, b) => {
            return Err(ModelError::BadLogitsRange {
                start: a,
                end: b,
                n,
            })
        }
        Logits::None => (0, 0),
    })
}
