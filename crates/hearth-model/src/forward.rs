//! The shared decoder forward pass, wired by a [`Config`].
//!
//! One call evaluates a batch of tokens at consecutive positions: embed,
//! then per layer `x += post_norm?(Wo · attn(rope(norm?(Wq·n(x))), ...))` and
//! `x += post_norm?(Wdown · act(Wgate·n(x)) ⊙ Wup·n(x))`, then the output
//! norm and projection for the rows whose logits were asked for.

use hearth_gguf::{GgmlType, GgufFile};
use hearth_ops::{self as ops, AttnParams, KvElem, ThreadPool, WeightRef};
use hearth_quant::{vec_dot_type, Kernels};

use crate::kv::{Cache, LayerCache};
use crate::weights::Layer;
use crate::Config;
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

impl Model {
    /// Evaluates `tokens` at positions `st.n_past()..`, appends them to the
    /// cache, and returns the logits asked for (rows × n_vocab).
    pub fn forward<'s>(
        &self,
        st: &'s mut State,
        tokens: &[u32],
        want: Logits,
    ) -> Result<&'s [f32], ModelError> {
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
        let (lo, hi) = match want {
            Logits::Last => (tokens.len().saturating_sub(1), tokens.len()),
            Logits::All => (0, tokens.len()),
            Logits::Range(a, b) if a <= b && b <= tokens.len() => (a, b),
            Logits::Range(a, b) => {
                return Err(ModelError::BadLogitsRange {
                    start: a,
                    end: b,
                    n: tokens.len(),
                })
            }
            Logits::None => (0, 0),
        };
        let n_rows = hi - lo;
        st.logits.resize(n_rows * c.n_vocab, 0.0);
        let mut start = 0;
        while start < tokens.len() {
            let end = (start + st.n_ubatch).min(tokens.len());
            let (a, b) = (lo.max(start), hi.min(end));
            let out_rows = if a < b {
                Some((a - start, b - start, a - lo))
            } else {
                None
            };
            self.ubatch(st, &tokens[start..end], out_rows)?;
            start = end;
        }
        Ok(&st.logits[..n_rows * c.n_vocab])
    }

    /// One micro-batch. `out_rows = (from, to, dest_row)`: batch rows whose
    /// logits go to `st.logits` starting at `dest_row`.
    fn ubatch(
        &self,
        st: &mut State,
        tokens: &[u32],
        out_rows: Option<(usize, usize, usize)>,
    ) -> Result<(), ModelError> {
        let c = &self.config;
        let kern = hearth_quant::kernels();
        let bytes = self.file.bytes();
        let pool = &*st.pool;
        let n = tokens.len();
        let (e, hd) = (c.n_embd, c.head_dim);
        let (q_dim, kv_dim) = (c.n_head * hd, c.n_kv_head * hd);
        let s = &mut st.scratch;
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
        s.positions.extend(st.n_past..st.n_past + n);
        s.rope_cs.resize(hd / 2, (0.0, 0.0));

        // Embeddings.
        let emb = self.weights.token_embd.view(bytes);
        for (t, &tok) in tokens.iter().enumerate() {
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
            };
            match &mut st.cache {
                Cache::F16(layers) => {
                    attend(pool, &mut layers[il], &params, s, st.n_past, n, kv_dim)
                }
                Cache::F32(layers) => {
                    attend(pool, &mut layers[il], &params, s, st.n_past, n, kv_dim)
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

        if let Some((from, to, dest)) = out_rows {
            let rows = to - from;
            for t in from..to {
                ops::rms_norm(
                    &s.x[t * e..(t + 1) * e],
                    &self.weights.output_norm,
                    c.norm_eps,
                    &mut s.xb[(t - from) * e..(t - from + 1) * e],
                );
            }
            let out = &mut st.logits[dest * c.n_vocab..(dest + rows) * c.n_vocab];
            ops::matmul(
                pool,
                kern,
                self.weights.output.view(bytes),
                &s.xb[..rows * e],
                rows,
                &mut s.qbuf,
                out,
            );
            if let Some(cap) = c.final_softcap {
                for v in out.iter_mut() {
                    *v = cap * (*v / cap).tanh();
                }
            }
        }
        st.n_past += n;
        st.tokens.extend_from_slice(tokens);
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

/// Stores this batch's K/V in the cache and attends.
fn attend<T: KvElem>(
    pool: &ThreadPool,
    lc: &mut LayerCache<T>,
    p: &AttnParams,
    s: &mut Scratch,
    n_past: usize,
    n: usize,
    kv_dim: usize,
) {
    // Position j lives in row j % rows (a ring for sliding-window layers).
    let rows = lc.k.len() / kv_dim;
    for t in 0..n {
        let slot = (n_past + t) % rows;
        let (src, dst) = (
            t * kv_dim..(t + 1) * kv_dim,
            slot * kv_dim..(slot + 1) * kv_dim,
        );
        T::store(&s.k[src.clone()], &mut lc.k[dst.clone()]);
        T::store(&s.v[src], &mut lc.v[dst]);
    }
    ops::attention(pool, p, &s.q, &lc.k, &lc.v, &s.positions, &mut s.att);
}
