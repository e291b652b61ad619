//! One micro-batch through the model: embed, then per layer
//! `x += post?(mixer(pre?(x)))` and `x += post?(ffn(pre?(x)))` (each block
//! output scaled first where the model says so), then the output norm and
//! projection for the rows whose logits were asked for.

use hearth_ops::{self as ops, ThreadPool};

use crate::blocks::EncoderInput;
use crate::blocks::{Ctx, Ffn, Mixer, Norm};
use crate::config::{Config, Pooling};
use crate::forward::{Out, Scratch, Seg};
use crate::{Model, ModelError};

impl Model {
    pub(crate) fn run_with(
        &self,
        pool: &ThreadPool,
        s: &mut Scratch,
        segs: &mut [Seg<'_, '_>],
    ) -> Result<(), ModelError> {
        let c = &self.config;
        // Batch-invariant: one-row kernels only (and the one-query attention
        // path), so no row's sums depend on the batch.
        // Encoders (no causal mask) keep their activations in f32 for float
        // weights (`Kernels::widening`); decoders keep ggml's arithmetic.
        let invariant = segs.iter().any(|g| g.st.batch_invariant);
        let kern = match (invariant, c.causal) {
            (true, _) => hearth_quant::kernels().row_invariant(),
            (false, true) => hearth_quant::kernels(),
            (false, false) => hearth_quant::kernels().widening(),
        };
        let bytes = self.file.bytes();
        let n: usize = segs.iter().map(|g| g.tokens.len()).sum();
        let e = c.n_embd;
        let cx = Ctx {
            pool,
            kern,
            bytes,
            c,
            n,
            invariant,
        };
        s.x.resize(n * e, 0.0);
        s.xb.resize(n * e, 0.0);
        s.o.resize(n * e, 0.0);
        s.positions.clear();
        for g in segs.iter() {
            s.positions
                .extend(g.st.n_past..g.st.n_past + g.tokens.len());
        }

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
        if let Some(enc) = &self.weights.encoder {
            self.encoder_input(pool, enc, s)?;
        }

        for (il, layer) in self.weights.layers.iter().enumerate() {
            pre_norm(pool, c, layer.attn_norm.as_ref(), s);
            match &layer.mixer {
                Mixer::Attention(a) => a.forward(&cx, il, segs, s),
                Mixer::Mamba2(m) => m.forward(&cx, il, segs, s),
                Mixer::DeltaNet(d) => d.forward(&cx, il, segs, s),
                Mixer::ShortConv(m) => m.forward(&cx, il, segs, s),
                Mixer::Mla(a) => a.forward(&cx, il, segs, s),
            }
            residual(pool, c, layer.post_attn_norm.as_ref(), s);
            pre_norm(pool, c, layer.ffn_norm.as_ref(), s);
            match &layer.ffn {
                Ffn::Dense(f) => f.forward(&cx, s),
                Ffn::Moe(f) => f.forward(&cx, s),
            }
            residual(pool, c, layer.post_ffn_norm.as_ref(), s);
        }
        self.output(&cx, s, segs);
        for g in segs.iter_mut() {
            g.st.n_past += g.tokens.len();
            g.st.tokens.extend_from_slice(g.tokens);
        }
        Ok(())
    }

    /// An encoder's input: each row plus its position's embedding (where
    /// positions are absolute) and token type 0's, then LayerNormed.
    fn encoder_input(
        &self,
        pool: &ThreadPool,
        enc: &EncoderInput,
        s: &mut Scratch,
    ) -> Result<(), ModelError> {
        let c = &self.config;
        let e = c.n_embd;
        s.row.resize(e, 0.0);
        for (t, x) in s.x.chunks_exact_mut(e).enumerate() {
            if let Some(positions) = &enc.positions {
                let pos = positions.view(self.file.bytes());
                let p = s.positions[t];
                if p >= positions.rows {
                    return Err(ModelError::ContextFull {
                        needed: p + 1,
                        n_ctx: positions.rows,
                    });
                }
                hearth_quant::dequantize_row(pos.ty, pos.row(p), &mut s.row).map_err(|err| {
                    ModelError::BadTensor {
                        tensor: "position_embd.weight".into(),
                        why: err.to_string(),
                    }
                })?;
                ops::add_inplace(x, &s.row);
            }
            if let Some(tt) = &enc.token_type {
                ops::add_inplace(x, tt);
            }
        }
        ops::rows_par(pool, &mut s.x, e, &|x, _| {
            ROW.with_borrow_mut(|tmp| enc.norm.apply_rows(c, x, tmp))
        });
        Ok(())
    }

    /// The output norm of the rows that need it (gathered at the front of
    /// `s.xb`), then their logits, or their sum into the pooled embedding.
    fn output(&self, cx: &Ctx<'_>, s: &mut Scratch, segs: &mut [Seg<'_, '_>]) {
        let (c, e) = (cx.c, cx.c.n_embd);
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
                let x = &s.x[t * e..(t + 1) * e];
                match &self.weights.output_norm {
                    Some(norm) => norm.apply(c, x, dst),
                    None => dst.copy_from_slice(x),
                }
                if let Out::Pool = g.out {
                    let pooled = &mut g.st.pooled;
                    match c.pooling {
                        Pooling::Mean => ops::add_inplace(pooled, &s.o[..e]),
                        // The text's first token: position 0 (a reranker's
                        // head reads it too).
                        Pooling::Cls | Pooling::Rank { .. } if s.positions[t] == 0 => {
                            pooled.copy_from_slice(&s.o[..e])
                        }
                        Pooling::Cls | Pooling::Rank { .. } => {}
                        // Each row replaces the last: the text's last one stays.
                        Pooling::Last => pooled.copy_from_slice(&s.o[..e]),
                    }
                }
            }
            t0 += g.tokens.len();
        }
        if rows == 0 {
            return;
        }
        let nv = c.n_vocab;
        let output = &self.weights.output;
        let w = output.view(cx.bytes);
        let finish = |out: &mut [f32]| {
            output.finish(out);
            if let Some(ls) = c.logit_scale {
                ops::scale_inplace(out, 1.0 / ls);
            }
            if let Some(cap) = c.final_softcap {
                for v in out.iter_mut() {
                    *v = cap * (*v / cap).tanh();
                }
            }
        };
        if segs.len() == 1 {
            if let Out::Logits { dest, .. } = segs[0].out {
                let out = &mut segs[0].st.logits[dest * nv..(dest + rows) * nv];
                ops::matmul(
                    cx.pool,
                    cx.kern,
                    w,
                    &s.xb[..rows * e],
                    rows,
                    &mut s.qbuf,
                    out,
                );
                finish(out);
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
                cx.pool,
                cx.kern,
                w,
                &s.xb[..rows * e],
                rows,
                &mut s.qbuf,
                &mut dests,
            );
            for d in dests {
                finish(d);
            }
        }
    }
}

thread_local! {
    /// Each thread's row buffer for norms applied in place (kept between
    /// layers and passes, so a decode step allocates none).
    static ROW: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `s.xb = norm(s.x)` row by row (the rows spread over the pool), or a
/// copy without a pre-norm.
fn pre_norm(pool: &ThreadPool, c: &Config, norm: Option<&Norm>, s: &mut Scratch) {
    let (e, len) = (c.n_embd, s.x.len());
    match norm {
        None => s.xb[..len].copy_from_slice(&s.x),
        Some(w) => ops::rows_par2(pool, (&mut s.x, e), (&mut s.xb[..len], e), &|x, xb| {
            for (x, xb) in x.chunks_exact(e).zip(xb.chunks_exact_mut(e)) {
                w.apply(c, x, xb);
            }
        }),
    }
}

/// `x += scale? · post_norm?(o)` row by row; with
/// [`Config::norm_after_residual`], `x = post_norm?(x + scale? · o)`. With
/// a norm, the rows spread over the pool (a plain sum is not worth it).
fn residual(pool: &ThreadPool, c: &Config, post: Option<&Norm>, s: &mut Scratch) {
    let (e, len) = (c.n_embd, s.x.len());
    let rows = |x: &mut [f32], o: &mut [f32]| {
        ROW.with_borrow_mut(|tmp| {
            if let Some(w) = post.filter(|_| !c.norm_after_residual) {
                w.apply_rows(c, o, tmp);
            }
            if let Some(rs) = c.residual_scale {
                ops::scale_inplace(o, rs);
            }
            ops::add_inplace(x, o);
            if let Some(w) = post.filter(|_| c.norm_after_residual) {
                w.apply_rows(c, x, tmp);
            }
        })
    };
    match post {
        None => rows(&mut s.x, &mut s.o[..len]),
        Some(_) => ops::rows_par2(pool, (&mut s.x, e), (&mut s.o[..len], e), &rows),
    }
}
