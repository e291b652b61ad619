//! Multi-head attention over the KV cache: Q/K/V projections (separate or
//! one fused tensor, each with optional bias and scale), optional QK-norm
//! (per head, or over all heads), RoPE (any variant, or none), grouped
//! query attention with an optional sliding window and score soft-capping,
//! an optional sigmoid output gate carried by the Q projection (Qwen 3.5),
//! and the output projection.

use hearth_ops::{self as ops, AttnParams, KvElem, KvView};

use super::{Ctx, Linear, QuantActs};
use crate::config::Config;
use crate::forward::{Scratch, Seg};
use crate::kv::{KvCache, LayerMem};
use crate::load::Tensors;
use crate::ModelError;

#[derive(Debug)]
enum Qkv {
    Split {
        q: Linear,
        k: Linear,
        v: Linear,
    },
    /// One `attn_qkv` tensor whose rows are Q, then K, then V (Phi-3).
    Fused(Linear),
}

/// One attention layer's weights.
#[derive(Debug)]
pub(crate) struct Attention {
    qkv: Qkv,
    /// RMS-norm weights of Q and K: `head_dim` long (per head) or the whole
    /// projection long (over all heads at once, OLMo 2).
    q_norm: Option<Vec<f32>>,
    k_norm: Option<Vec<f32>>,
    wo: Linear,
    /// Attention sinks, one logit per head (gpt-oss).
    sinks: Option<Vec<f32>>,
}

impl Attention {
    pub fn load(t: &mut Tensors<'_>, c: &Config, il: usize) -> Result<Attention, ModelError> {
        let n = |s: &str| format!("blk.{il}.{s}");
        let (e, hd) = (c.n_embd, c.head_dim);
        let (q_dim, kv_dim) = (c.n_head * hd, c.n_kv_head * hd);
        let q_rows = q_dim * (1 + usize::from(c.attn_gate));
        let qkv = match Linear::opt(t, &n("attn_qkv"), e, q_rows + 2 * kv_dim)? {
            Some(f) => Qkv::Fused(f),
            None => Qkv::Split {
                q: Linear::load(t, &n("attn_q"), e, q_rows)?,
                k: Linear::load(t, &n("attn_k"), e, kv_dim)?,
                v: Linear::load(t, &n("attn_v"), e, kv_dim)?,
            },
        };
        if let (true, Qkv::Split { q, k, v }) = (c.qkv_bias, &qkv) {
            for (l, s) in [(q, "attn_q.bias"), (k, "attn_k.bias"), (v, "attn_v.bias")] {
                if l.bias.is_none() {
                    return Err(ModelError::MissingTensor(n(s)));
                }
            }
        }
        let norm = |t: &mut Tensors<'_>, name: &str, whole: usize| {
            let name = n(&format!("{name}.weight"));
            let len = match t.file().tensor(&name).map(|i| i.n_elements()) {
                Some(l) if l == whole as u64 => whole,
                _ => hd,
            };
            t.vector_if(c.qk_norm, &name, len)
        };
        Ok(Attention {
            qkv,
            q_norm: norm(t, "attn_q_norm", q_dim)?,
            k_norm: norm(t, "attn_k_norm", kv_dim)?,
            wo: Linear::load(t, &n("attn_output"), q_dim, e)?,
            sinks: t.vector_if(c.attn_sinks, &n("attn_sinks.weight"), c.n_head)?,
        })
    }

    /// Every projection of the layer.
    pub fn linears_mut(&mut self) -> Vec<&mut Linear> {
        let mut v: Vec<&mut Linear> = match &mut self.qkv {
            Qkv::Split { q, k, v } => vec![q, k, v],
            Qkv::Fused(f) => vec![f],
        };
        v.push(&mut self.wo);
        v
    }

    /// `s.o = Wo · attention(s.xb)` for every row: within each text of the
    /// pass for an encoder's layers ([`Config::attends_in_pass`]), else over
    /// each segment's cache of layer `il`, after storing the rows' keys and
    /// values in it.
    pub fn forward(&self, cx: &Ctx<'_>, il: usize, segs: &mut [Seg<'_, '_>], s: &mut Scratch) {
        let (c, n) = (cx.c, cx.n);
        let spec = &c.layers[il];
        let hd = c.head_dim;
        let (q_dim, kv_dim) = (c.n_head * hd, c.n_kv_head * hd);
        // With an output gate, each head's queries are followed by its gate.
        let q_rows = q_dim * (1 + usize::from(c.attn_gate));
        s.q.resize(n * q_rows, 0.0);
        s.k.resize(n * kv_dim, 0.0);
        s.v.resize(n * kv_dim, 0.0);
        s.att.resize(n * q_dim, 0.0);
        let mut acts = QuantActs::new(&s.xb, n, &mut s.qbuf);
        match &self.qkv {
            Qkv::Split { q, k, v } => {
                acts.linear(cx, [q, k, v], &mut [&mut s.q, &mut s.k, &mut s.v])
            }
            Qkv::Fused(w) => {
                let width = q_rows + 2 * kv_dim;
                s.tmp.resize(n * width, 0.0);
                acts.linear(cx, [w], &mut [&mut s.tmp]);
                for (t, row) in s.tmp.chunks_exact(width).enumerate() {
                    s.q[t * q_rows..(t + 1) * q_rows].copy_from_slice(&row[..q_rows]);
                    s.k[t * kv_dim..(t + 1) * kv_dim]
                        .copy_from_slice(&row[q_rows..q_rows + kv_dim]);
                    s.v[t * kv_dim..(t + 1) * kv_dim].copy_from_slice(&row[q_rows + kv_dim..]);
                }
            }
        }
        if c.attn_gate {
            split_gate(&mut s.q, &mut s.gate, n, c.n_head, hd);
        }
        for (x, w) in [(&mut s.q, &self.q_norm), (&mut s.k, &self.k_norm)] {
            if let Some(w) = w {
                for part in x.chunks_exact_mut(w.len()) {
                    ops::rms_norm_inplace(part, w, c.norm_eps);
                }
            }
        }
        if let Some(short) = &spec.rope {
            s.rope_cs.resize(short.n_rot / 2, (0.0, 0.0));
            let mut t0 = 0;
            for g in segs.iter() {
                // LongRoPE: a context longer than the training one takes
                // the long factors (llama.cpp's choice by context size).
                let long = c
                    .rope_long
                    .as_ref()
                    .filter(|_| g.st.n_ctx() > c.rope_long_after);
                let long_rope = long.map(|f| hearth_ops::Rope {
                    factors: Some(f.clone()),
                    ..short.clone()
                });
                let rope = long_rope.as_ref().unwrap_or(short);
                for t in t0..t0 + g.tokens.len() {
                    rope.angles(s.positions[t] as f32, &mut s.rope_cs);
                    rope.apply(&mut s.q[t * q_dim..(t + 1) * q_dim], hd, &s.rope_cs);
                    rope.apply(&mut s.k[t * kv_dim..(t + 1) * kv_dim], hd, &s.rope_cs);
                }
                t0 += g.tokens.len();
            }
        }
        let scale = match c.scale_queries {
            true => {
                ops::scale_inplace(&mut s.q, c.attn_scale);
                1.0
            }
            false => c.attn_scale,
        };
        let params = AttnParams {
            n_head: c.n_head,
            n_kv_head: c.n_kv_head,
            head_dim: hd,
            scale,
            window: spec.window,
            softcap: c.attn_softcap,
            batch_invariant: cx.invariant,
            causal: c.causal,
        };
        // An encoder's texts are whole in the pass (`Model::check`): each
        // attends within itself from the projections, with nothing cached
        // (its cache has no rows: `Config::kv_rows`).
        if c.attends_in_pass(il) {
            s.lens.clear();
            s.lens.extend(segs.iter().map(|g| g.tokens.len()));
            let out = &mut s.att[..n * q_dim];
            let (q, k, v) = (&s.q[..n * q_dim], &s.k[..n * kv_dim], &s.v[..n * kv_dim]);
            ops::attention_packed(cx.pool, &params, q, k, v, &s.lens, out);
        } else {
            self.attend_cached(cx, il, &params, segs, s);
        }
        if c.attn_gate {
            ops::mul_sigmoid_inplace(&mut s.att[..n * q_dim], &s.gate[..n * q_dim]);
        }
        QuantActs::new(&s.att, n, &mut s.qbuf).linear(cx, [&self.wo], &mut [&mut s.o]);
    }

    /// `s.att` = attention of the queries `s.q` over each segment's cache,
    /// after storing the segments' new keys and values (`s.k`, `s.v`) in it.
    fn attend_cached(
        &self,
        cx: &Ctx<'_>,
        il: usize,
        params: &AttnParams,
        segs: &mut [Seg<'_, '_>],
        s: &mut Scratch,
    ) {
        let (c, n) = (cx.c, cx.n);
        let (q_dim, kv_dim) = (c.n_head * c.head_dim, c.n_kv_head * c.head_dim);
        // Store every sequence's new keys and values, then attend in one
        // parallel region over all of them.
        let mut t0 = 0;
        for g in segs.iter_mut() {
            let r = t0..t0 + g.tokens.len();
            t0 = r.end;
            let (k, v) = (
                &s.k[r.start * kv_dim..r.end * kv_dim],
                &s.v[r.start * kv_dim..r.end * kv_dim],
            );
            let pos = &s.positions[r];
            match &mut g.st.cache.layers[il] {
                LayerMem::F16(lc) => store_kv(lc, k, v, pos, kv_dim),
                LayerMem::F32(lc) => store_kv(lc, k, v, pos, kv_dim),
                // An attention layer's memory is a KV cache (`mem_specs`).
                LayerMem::Recurrent(_) => {}
            }
        }
        let views16 = views(segs, il, |m| match m {
            LayerMem::F16(l) => Some(l),
            _ => None,
        });
        let views32 = views(segs, il, |m| match m {
            LayerMem::F32(l) => Some(l),
            _ => None,
        });
        let out = &mut s.att[..n * q_dim];
        let sk = self.sinks.as_deref();
        match (views16, views32) {
            (Some(kv), _) => {
                ops::attention_batch_sinks(cx.pool, params, sk, &s.q, &kv, &s.positions, out)
            }
            (_, Some(kv)) => {
                ops::attention_batch_sinks(cx.pool, params, sk, &s.q, &kv, &s.positions, out)
            }
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
                    match &g.st.cache.layers[il] {
                        LayerMem::F16(l) => ops::attention_batch_sinks(
                            cx.pool,
                            params,
                            sk,
                            q,
                            &[l.view(pos.len())],
                            pos,
                            o,
                        ),
                        LayerMem::F32(l) => ops::attention_batch_sinks(
                            cx.pool,
                            params,
                            sk,
                            q,
                            &[l.view(pos.len())],
                            pos,
                            o,
                        ),
                        // An attention layer's memory is a KV cache (`mem_specs`).
                        LayerMem::Recurrent(_) => {}
                    }
                }
            }
        }
    }
}

/// Splits rows of `n_head` × (queries ++ gate), each `hd` long, into the
/// queries (compacted in place in `q`) and the gates (`gate`).
fn split_gate(q: &mut Vec<f32>, gate: &mut Vec<f32>, n: usize, n_head: usize, hd: usize) {
    gate.clear();
    for t in 0..n {
        for h in 0..n_head {
            let src = (t * n_head + h) * 2 * hd;
            gate.extend_from_slice(&q[src + hd..src + 2 * hd]);
            // The destination never passes the source: rows only move down.
            q.copy_within(src..src + hd, (t * n_head + h) * hd);
        }
    }
    q.truncate(n * n_head * hd);
}

/// Writes a segment's keys and values into its cache (position j in row
/// j % rows: a ring for sliding-window layers).
fn store_kv<T: KvElem>(
    lc: &mut KvCache<T>,
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
/// them have the element type `pick` selects.
fn views<'a, T: 'a>(
    segs: &'a [Seg<'_, '_>],
    il: usize,
    pick: impl Fn(&'a LayerMem) -> Option<&'a KvCache<T>>,
) -> Option<Vec<KvView<'a, T>>> {
    segs.iter()
        .map(|g| {
            let lc = pick(&g.st.cache.layers[il])?;
            Some(KvView {
                k: &lc.k,
                v: &lc.v,
                n_tokens: g.tokens.len(),
            })
        })
        .collect()
}
