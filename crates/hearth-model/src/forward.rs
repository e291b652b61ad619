//! The shared decoder forward pass, wired by a [`Config`].
//!
//! One call evaluates a batch of tokens at consecutive positions: embed,
//! then per layer `x += post_norm?(Wo · attn(rope(norm?(Wq·n(x))), ...))` and
//! `x += post_norm?(Wdown · act(Wgate·n(x)) ⊙ Wup·n(x))`, then the output
//! norm and projection for the rows whose logits were asked for.

use hearth_gguf::{GgmlType, GgufFile};
use hearth_ops::{self as ops, AttnParams, KvElem, KvView, ThreadPool, WeightRef};
use hearth_quant::{vec_dot_type, Kernels};

use crate::kv::{Cache, LayerCache};
use crate::weights::Layer;
use crate::Config;
use std::sync::Arc;

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
#[derive(Default)]
pub(crate) struct Scratch {
    x: Vec<f32>,
    xb: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    o: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    qbuf: Vec<u8>,
    rope_cs: Vec<(f32, f32)>,
    positions: Vec<usize>,
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
    let small = n * 8 + hd / 2 * 8; // positions, rope angles
    let logits = c.n_vocab as u64 * 4;
    f32s * 4 + n * quant_row + small + logits
}

/// One input's activations, quantized on first use into the dot-product
/// format of the weights they meet, and reused by every later product with
/// the same format. A new value per input, so a stale quantization cannot
/// be reused by mistake.
struct QuantActs<'a> {
    x: &'a [f32],
    m: usize,
    buf: &'a mut Vec<u8>,
    ty: Option<GgmlType>,
}

impl<'a> QuantActs<'a> {
    fn new(x: &'a [f32], m: usize, buf: &'a mut Vec<u8>) -> Self {
        QuantActs {
            x,
            m,
            buf,
            ty: None,
        }
    }

    /// Quantized rows in `aty` for rows of `k` elements; bytes per row.
    fn ensure(&mut self, pool: &ThreadPool, kern: &Kernels, aty: GgmlType, k: usize) -> usize {
        if self.ty != Some(aty) {
            ops::quantize_rows(pool, kern, aty, self.x, self.m, k, self.buf);
            self.ty = Some(aty);
        }
        aty.row_bytes(k as u64).unwrap_or(0) as usize
    }

    /// `ys[i] = X · ws[i]ᵀ`: one parallel region when the weights share an
    /// activation format, else one product each.
    fn mul(
        &mut self,
        pool: &ThreadPool,
        kern: &Kernels,
        ws: &[WeightRef<'_>],
        ys: &mut [&mut [f32]],
    ) {
        let aty = vec_dot_type(ws[0].ty);
        if ws.iter().all(|w| vec_dot_type(w.ty) == aty) {
            let arb = self.ensure(pool, kern, aty, ws[0].cols);
            ops::matmul_quantized_many(pool, kern, ws, self.buf, arb, self.m, ys);
        } else {
            for (w, y) in ws.iter().zip(ys.iter_mut()) {
                let arb = self.ensure(pool, kern, vec_dot_type(w.ty), w.cols);
                ops::matmul_quantized(pool, kern, *w, self.buf, arb, self.m, y);
            }
        }
    }
}

/// One sequence's part of a batched step ([`Model::forward_batch`]).
pub struct SeqInput<'a> {
    pub state: &'a mut State,
    pub tokens: &'a [u32],
    pub logits: Logits,
}

/// What a segment of a micro-batch produces besides its cache entries.
#[derive(Clone, Copy)]
enum Out {
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
struct Seg<'s, 'a> {
    st: &'s mut State,
    tokens: &'a [u32],
    out: Out,
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
    pub fn embed_finish(&self, st: &mut State) -> Vec<f32> {
        if st.n_past == 0 {
            // Nothing fed: the zero vector.
            st.pooled.clear();
            st.pooled.resize(self.config.n_embd, 0.0);
        }
        let n = st.n_past.max(1) as f32;
        st.clear();
        let mut v = std::mem::take(&mut st.pooled);
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

    fn run_with(
        &self,
        pool: &ThreadPool,
        s: &mut Scratch,
        segs: &mut [Seg<'_, '_>],
    ) -> Result<(), ModelError> {
        let c = &self.config;
        // Batch-invariant: one-row kernels only (and, below, the one-query
        // attention path), so no row's sums depend on the batch.
        let invariant = segs.iter().any(|g| g.st.batch_invariant);
        let kern = match invariant {
            true => hearth_quant::kernels().row_invariant(),
            false => hearth_quant::kernels(),
        };
        let bytes = self.file.bytes();
        let n: usize = segs.iter().map(|g| g.tokens.len()).sum();
        let (e, hd) = (c.n_embd, c.head_dim);
        let (q_dim, kv_dim) = (c.n_head * hd, c.n_kv_head * hd);
        s.x.resize(n * e, 0.0);
        s.xb.resize(n * e, 0.0);
        s.q.resize(n * q_dim, 0.0);
        s.k.resize(n * kv_dim, 0.0);
        s.v.resize(n * kv_dim, 0.0);
        s.att.resize(n * q_dim, 0.0);
        s.o.resize(n * e, 0.0);
        s.gate.resize(n * c.n_ff, 0.0);
        s.up.resize(n * c.n_ff, 0.0);
        s.positions.clear();
        for g in segs.iter() {
            s.positions
                .extend(g.st.n_past..g.st.n_past + g.tokens.len());
        }
        s.rope_cs.resize(hd / 2, (0.0, 0.0));

        // Embeddings.
        let emb = self.weights.token_embd.view(bytes);
        let all_tokens = segs.iter().flat_map(|g| g.tokens.iter());
        for (t, &tok) in all_tokens.enumerate() {
            let row = &mut s.x[t * e..(t + 1) * e];
            hearth_quant::dequantize_row(emb.ty, emb.row(tok as usize), row).map_err(|err| {
                ModelError::BadTensor {
                    tensor: "token_embd.weight".into(),
                    why: err.to_string(),
                }
            })?;
            if let Some(sc) = c.embed_scale {
                ops::scale_inplace(row, sc);
            }
        }

        for (il, layer) in self.weights.layers.iter().enumerate() {
            let spec = &c.layers[il];
            // Attention block.
            for t in 0..n {
                ops::rms_norm(
                    &s.x[t * e..(t + 1) * e],
                    &layer.attn_norm,
                    c.norm_eps,
                    &mut s.xb[t * e..(t + 1) * e],
                );
            }
            QuantActs::new(&s.xb, n, &mut s.qbuf).mul(
                pool,
                kern,
                &[
                    layer.wq.view(bytes),
                    layer.wk.view(bytes),
                    layer.wv.view(bytes),
                ],
                &mut [&mut s.q, &mut s.k, &mut s.v],
            );
            add_bias(&mut s.q, layer.bq.as_deref());
            add_bias(&mut s.k, layer.bk.as_deref());
            add_bias(&mut s.v, layer.bv.as_deref());
            head_norm(&mut s.q, layer.q_norm.as_deref(), hd, c.norm_eps);
            head_norm(&mut s.k, layer.k_norm.as_deref(), hd, c.norm_eps);
            for t in 0..n {
                spec.rope.angles(s.positions[t] as f32, &mut s.rope_cs);
                spec.rope
                    .apply(&mut s.q[t * q_dim..(t + 1) * q_dim], hd, &s.rope_cs);
                spec.rope
                    .apply(&mut s.k[t * kv_dim..(t + 1) * kv_dim], hd, &s.rope_cs);
            }
            let params = AttnParams {
                n_head: c.n_head,
                n_kv_head: c.n_kv_head,
                head_dim: hd,
                scale: c.attn_scale,
                window: spec.window,
                softcap: c.attn_softcap,
                batch_invariant: invariant,
            };
            // Store every sequence's new keys and values, then attend in
            // one parallel region over all of them.
            let mut t0 = 0;
            for g in segs.iter_mut() {
                let r = t0..t0 + g.tokens.len();
                t0 = r.end;
                let (k, v) = (
                    &s.k[r.start * kv_dim..r.end * kv_dim],
                    &s.v[r.start * kv_dim..r.end * kv_dim],
                );
                let pos = &s.positions[r];
                match &mut g.st.cache {
                    Cache::F16(layers) => store_kv(&mut layers[il], k, v, pos, kv_dim),
                    Cache::F32(layers) => store_kv(&mut layers[il], k, v, pos, kv_dim),
                }
            }
            let views16 = views(segs, il, |c| match c {
                Cache::F16(l) => Some(l),
                Cache::F32(_) => None,
            });
            let views32 = views(segs, il, |c| match c {
                Cache::F32(l) => Some(l),
                Cache::F16(_) => None,
            });
            let out = &mut s.att[..n * q_dim];
            match (views16, views32) {
                (Some(kv), _) => ops::attention_batch(pool, &params, &s.q, &kv, &s.positions, out),
                (_, Some(kv)) => ops::attention_batch(pool, &params, &s.q, &kv, &s.positions, out),
                // Sequences with caches of different types: one call each.
                (None, None) => {
                    let mut t0 = 0;
                    for g in segs.iter() {
                        let r = t0..t0 + g.tokens.len();
                        t0 = r.end;
                        let (q, pos) = (
                            &s.q[r.start * q_dim..r.end * q_dim],
                            &s.positions[r.clone()],
                        );
                        let o = &mut s.att[r.start * q_dim..r.end * q_dim];
                        match &g.st.cache {
                            Cache::F16(l) => {
                                ops::attention(pool, &params, q, &l[il].k, &l[il].v, pos, o)
                            }
                            Cache::F32(l) => {
                                ops::attention(pool, &params, q, &l[il].k, &l[il].v, pos, o)
                            }
                        }
                    }
                }
            }
            QuantActs::new(&s.att, n, &mut s.qbuf).mul(
                pool,
                kern,
                &[layer.wo.view(bytes)],
                &mut [&mut s.o],
            );
            post_norm_add(
                &mut s.x,
                &mut s.o,
                layer.post_attn_norm.as_deref(),
                e,
                c.norm_eps,
            );

            // Feed-forward block.
            self.ffn(pool, kern, layer, s, n)?;
        }

        // Output norm of the rows that need it, gathered at the front of xb.
        let mut rows = 0;
        let mut t0 = 0;
        for g in segs.iter_mut() {
            let (from, to) = match g.out {
                Out::None => (0, 0),
                Out::Logits { from, to, .. } => (from, to),
                Out::Pool => (0, g.tokens.len()),
            };
            for t in t0 + from..t0 + to {
                let dst = match g.out {
                    Out::Pool => &mut s.o[..e],
                    _ => {
                        rows += 1;
                        &mut s.xb[(rows - 1) * e..rows * e]
                    }
                };
                ops::rms_norm(
                    &s.x[t * e..(t + 1) * e],
                    &self.weights.output_norm,
                    c.norm_eps,
                    dst,
                );
                if let Out::Pool = g.out {
                    ops::add_inplace(&mut g.st.pooled, &s.o[..e]);
                }
            }
            t0 += g.tokens.len();
        }
        if rows > 0 {
            let nv = c.n_vocab;
            let output = self.weights.output.view(bytes);
            let direct = segs.len() == 1;
            if direct {
                if let Out::Logits { dest, .. } = segs[0].out {
                    let out = &mut segs[0].st.logits[dest * nv..(dest + rows) * nv];
                    ops::matmul(
                        pool,
                        kern,
                        output,
                        &s.xb[..rows * e],
                        rows,
                        &mut s.qbuf,
                        out,
                    );
                    softcap(out, c.final_softcap);
                }
            } else {
                // Each row straight into its sequence's logits.
                let mut dests: Vec<&mut [f32]> = Vec::with_capacity(rows);
                for g in segs.iter_mut() {
                    if let Out::Logits { from, to, dest } = g.out {
                        let k = to - from;
                        dests.extend(g.st.logits[dest * nv..(dest + k) * nv].chunks_exact_mut(nv));
                    }
                }
                ops::matmul_rows(
                    pool,
                    kern,
                    output,
                    &s.xb[..rows * e],
                    rows,
                    &mut s.qbuf,
                    &mut dests,
                );
                for d in dests {
                    softcap(d, c.final_softcap);
                }
            }
        }
        for g in segs.iter_mut() {
            g.st.n_past += g.tokens.len();
            g.st.tokens.extend_from_slice(g.tokens);
        }
        Ok(())
    }

    fn ffn(
        &self,
        pool: &ThreadPool,
        kern: &Kernels,
        layer: &Layer,
        s: &mut Scratch,
        n: usize,
    ) -> Result<(), ModelError> {
        let c = &self.config;
        let e = c.n_embd;
        let bytes = self.file.bytes();
        for t in 0..n {
            ops::rms_norm(
                &s.x[t * e..(t + 1) * e],
                &layer.ffn_norm,
                c.norm_eps,
                &mut s.xb[t * e..(t + 1) * e],
            );
        }
        QuantActs::new(&s.xb, n, &mut s.qbuf).mul(
            pool,
            kern,
            &[layer.gate.view(bytes), layer.up.view(bytes)],
            &mut [&mut s.gate, &mut s.up],
        );
        ops::gated_act_par(pool, c.act, &mut s.gate[..n * c.n_ff], &s.up[..n * c.n_ff]);
        QuantActs::new(&s.gate, n, &mut s.qbuf).mul(
            pool,
            kern,
            &[layer.down.view(bytes)],
            &mut [&mut s.o],
        );
        post_norm_add(
            &mut s.x,
            &mut s.o,
            layer.post_ffn_norm.as_deref(),
            e,
            c.norm_eps,
        );
        Ok(())
    }
}

fn add_bias(x: &mut [f32], b: Option<&[f32]>) {
    if let Some(b) = b {
        for row in x.chunks_exact_mut(b.len()) {
            ops::add_inplace(row, b);
        }
    }
}

fn head_norm(x: &mut [f32], w: Option<&[f32]>, hd: usize, eps: f32) {
    if let Some(w) = w {
        for head in x.chunks_exact_mut(hd) {
            ops::rms_norm_inplace(head, w, eps);
        }
    }
}

/// `x += norm?(o)` row by row.
fn post_norm_add(x: &mut [f32], o: &mut [f32], w: Option<&[f32]>, e: usize, eps: f32) {
    for (xr, or) in x.chunks_exact_mut(e).zip(o.chunks_exact_mut(e)) {
        if let Some(w) = w {
            ops::rms_norm_inplace(or, w, eps);
        }
        ops::add_inplace(xr, or);
    }
}

/// Writes a segment's keys and values into its cache (position j in row
/// j % rows: a ring for sliding-window layers).
fn store_kv<T: KvElem>(
    lc: &mut LayerCache<T>,
    k: &[f32],
    v: &[f32],
    positions: &[usize],
    kv_dim: usize,
) {
    let rows = lc.k.len() / kv_dim;
    for (t, &pos) in positions.iter().enumerate() {
        let slot = pos % rows;
        let (src, dst) = (
            t * kv_dim..(t + 1) * kv_dim,
            slot * kv_dim..(slot + 1) * kv_dim,
        );
        T::store(&k[src.clone()], &mut lc.k[dst.clone()]);
        T::store(&v[src], &mut lc.v[dst]);
    }
}

/// Layer `il`'s cache of every segment as attention views, when all of
/// them have the element type `layers` picks.
fn views<'a, T: 'a>(
    segs: &'a [Seg<'_, '_>],
    il: usize,
    layers: impl Fn(&'a Cache) -> Option<&'a Vec<LayerCache<T>>>,
) -> Option<Vec<KvView<'a, T>>> {
    segs.iter()
        .map(|g| {
            let lc = &layers(&g.st.cache)?[il];
            Some(KvView {
                k: &lc.k,
                v: &lc.v,
                n_tokens: g.tokens.len(),
            })
        })
        .collect()
}

fn softcap(x: &mut [f32], cap: Option<f32>) {
    if let Some(cap) = cap {
        for v in x.iter_mut() {
            *v = cap * (*v / cap).tanh();
        }
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
