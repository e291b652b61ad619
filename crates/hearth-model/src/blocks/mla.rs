//! Multi-head latent attention (DeepSeek-V2/V3), in the absorbed form
//! llama.cpp runs it: keys and values are never decompressed.
//!
//! Per token: `attn_kv_a_mqa` gives the latent `c` (`kv_lora_rank`,
//! RMS-normed by `attn_kv_a_norm`) and a shared rotary key `k_r` (`n_rot`,
//! rotated); the cache row is `[c | k_r]`. The query (`attn_q`, or
//! `attn_q_b · norm(attn_q_a · x)`) has per head a non-rotated part `q_n`
//! and a rotated part `q_r`; `q_n` is taken into latent space by the head's
//! `attn_k_b` slice, so each head's query is `[k_b·q_n | q_r]` against the
//! cached rows — attention with one KV head whose values are the rows'
//! latent parts. Each head's latent output is decompressed by its
//! `attn_v_b` slice, and `attn_output` mixes the heads. The per-head
//! products go through the grouped expert matmul, every head an "expert"
//! every token uses.

use hearth_ops::{self as ops, AttnParams, ExpertInput, KvElem, KvView, Routes};

use super::{Ctx, Linear, QuantActs};
use crate::config::{Config, MlaSpec};
use crate::forward::{Scratch, Seg};
use crate::kv::{KvCache, LayerMem};
use crate::load::{Stacked, Tensors};
use crate::ModelError;

#[derive(Debug)]
enum Query {
    /// `attn_q_b · rms_norm(attn_q_a · x)`.
    Lora {
        a: Linear,
        norm: Vec<f32>,
        b: Linear,
    },
    Plain(Linear),
}

/// One latent attention layer's weights.
#[derive(Debug)]
pub(crate) struct Mla {
    q: Query,
    kv_a: Linear,
    kv_norm: Vec<f32>,
    /// Per head: `kv_lora_rank` rows of `qk_nope` (queries into latent space).
    k_b: Stacked,
    /// Per head: `v_head` rows of `kv_lora_rank` (latent outputs back out).
    v_b: Stacked,
    wo: Linear,
}

/// Latent attention's buffers, kept in [`Scratch`].
#[derive(Default)]
pub(crate) struct MlaScratch {
    /// Every head of every token: the per-head products' routing.
    heads: Routes,
    /// Per (token, head): the non-rotated query part, then the latent
    /// attention output.
    rows: Vec<f32>,
    /// Per (token, head): the query in latent space, then the decompressed
    /// value.
    out: Vec<f32>,
}

/// The spec of a latent attention model (set by its builder).
fn spec(c: &Config) -> Result<&MlaSpec, ModelError> {
    c.mla.as_ref().ok_or_else(|| ModelError::BadHparam {
        key: "attention.kv_lora_rank".into(),
        why: "latent attention without its sizes".into(),
    })
}

/// Bytes of [`MlaScratch`] for `n` rows.
pub(crate) fn scratch_bytes(c: &Config, n: u64) -> u64 {
    let Some(m) = &c.mla else {
        return 0;
    };
    // rows, out and the attention queries (in `Scratch::v`) per (token,
    // head); the query compression (in `Scratch::tmp`); the routes.
    let per_head =
        (m.qk_nope.max(m.kv_lora_rank) + m.kv_lora_rank.max(m.v_head) + m.kv_lora_rank + m.n_rot)
            as u64;
    let slots = n * c.n_head as u64;
    (slots * per_head + n * m.q_lora_rank as u64) * 4 + slots * 12 + (c.n_head as u64 + 1) * 8
}

impl Mla {
    pub fn load(t: &mut Tensors<'_>, c: &Config, il: usize) -> Result<Mla, ModelError> {
        let m = spec(c)?;
        let n = |s: &str| format!("blk.{il}.{s}");
        let (e, h) = (c.n_embd, c.n_head);
        let q_dim = h * (m.qk_nope + m.n_rot);
        let q = match m.q_lora_rank {
            0 => Query::Plain(Linear::load(t, &n("attn_q"), e, q_dim)?),
            r => Query::Lora {
                a: Linear::load(t, &n("attn_q_a"), e, r)?,
                norm: t.vector(&n("attn_q_a_norm.weight"), r)?,
                b: Linear::load(t, &n("attn_q_b"), r, q_dim)?,
            },
        };
        if t.has(&n("attn_kv_b.weight")) {
            return Err(ModelError::BadTensor {
                tensor: n("attn_kv_b.weight"),
                why: "an unsplit latent attention decompression (files converted before \
                      llama.cpp split it into attn_k_b and attn_v_b): reconvert the model"
                    .into(),
            });
        }
        Ok(Mla {
            q,
            kv_a: Linear::load(t, &n("attn_kv_a_mqa"), e, m.kv_lora_rank + m.n_rot)?,
            kv_norm: t.vector(&n("attn_kv_a_norm.weight"), m.kv_lora_rank)?,
            k_b: t.stacked(&n("attn_k_b.weight"), m.qk_nope, m.kv_lora_rank, h)?,
            v_b: t.stacked(&n("attn_v_b.weight"), m.kv_lora_rank, m.v_head, h)?,
            wo: Linear::load(t, &n("attn_output"), h * m.v_head, e)?,
        })
    }

    /// `s.o = Wo · latent_attention(s.xb)` for every row, storing the rows'
    /// latent cache entries in each segment's cache of layer `il`.
    pub fn forward(&self, cx: &Ctx<'_>, il: usize, segs: &mut [Seg<'_, '_>], s: &mut Scratch) {
        let (c, n) = (cx.c, cx.n);
        let Ok(m) = spec(c) else {
            return;
        };
        let (h, r, p, d) = (c.n_head, m.kv_lora_rank, m.n_rot, m.qk_nope);
        let (kw, qw) = (r + p, d + p);
        // Queries (n × h·(d + p)) and the new cache rows (n × (r + p)).
        s.q.resize(n * h * qw, 0.0);
        s.k.resize(n * kw, 0.0);
        let mut acts = QuantActs::new(&s.xb, n, &mut s.qbuf);
        match &self.q {
            Query::Plain(w) => acts.linear(cx, [w, &self.kv_a], &mut [&mut s.q, &mut s.k]),
            Query::Lora { a, norm, b } => {
                s.tmp.resize(n * a.m.rows, 0.0);
                acts.linear(cx, [a, &self.kv_a], &mut [&mut s.tmp, &mut s.k]);
                for row in s.tmp[..n * a.m.rows].chunks_exact_mut(a.m.rows) {
                    ops::rms_norm_inplace(row, norm, c.norm_eps);
                }
                QuantActs::new(&s.tmp[..n * a.m.rows], n, &mut s.qbuf).linear(
                    cx,
                    [b],
                    &mut [&mut s.q],
                );
            }
        }
        // Normalise the latent, rotate the rotary key and query parts.
        let rope = c.layers[il].rope.as_ref();
        s.rope_cs.resize(p / 2, (0.0, 0.0));
        for t in 0..n {
            let row = &mut s.k[t * kw..(t + 1) * kw];
            ops::rms_norm_inplace(&mut row[..r], &self.kv_norm, c.norm_eps);
            if let Some(rope) = rope {
                rope.angles(s.positions[t] as f32, &mut s.rope_cs);
                rope.apply(&mut row[r..], p, &s.rope_cs);
                for head in s.q[t * h * qw..(t + 1) * h * qw].chunks_exact_mut(qw) {
                    rope.apply(&mut head[d..], p, &s.rope_cs);
                }
            }
        }
        // Queries into latent space: per (token, head), k_b[head] · q_n.
        let ms = &mut s.mla;
        ms.heads.every(h, n);
        let slots = n * h;
        ms.rows.resize(slots * d.max(r), 0.0);
        ms.out.resize(slots * r.max(m.v_head), 0.0);
        for (dst, head) in ms
            .rows
            .chunks_exact_mut(d)
            .zip(s.q[..n * h * qw].chunks_exact(qw))
        {
            dst.copy_from_slice(&head[..d]);
        }
        ops::expert_matmul(
            cx.pool,
            cx.kern,
            &[self.k_b.view(cx.bytes)],
            &ms.heads,
            &ms.rows[..slots * d],
            ExpertInput::PerSlot,
            &mut s.qbuf,
            &mut [&mut ms.out[..slots * r]],
        );
        // The attention queries: [k_b·q_n | q_r] per head.
        s.att.resize(n * h * kw, 0.0);
        s.v.resize(n * h * kw, 0.0);
        for ((q, lat), head) in s.v[..slots * kw]
            .chunks_exact_mut(kw)
            .zip(ms.out[..slots * r].chunks_exact(r))
            .zip(s.q[..n * h * qw].chunks_exact(qw))
        {
            q[..r].copy_from_slice(lat);
            q[r..].copy_from_slice(&head[d..]);
        }
        // Store the rows, then attend over each sequence's cache.
        let mut t0 = 0;
        for g in segs.iter_mut() {
            let rows = t0..t0 + g.tokens.len();
            t0 = rows.end;
            let (k, pos) = (&s.k[rows.start * kw..rows.end * kw], &s.positions[rows]);
            match &mut g.st.cache.layers[il] {
                LayerMem::F16(lc) => store_rows(lc, k, pos, kw),
                LayerMem::F32(lc) => store_rows(lc, k, pos, kw),
                // A latent-attention layer's memory is a KV cache (`mem_specs`).
                LayerMem::Recurrent(_) => {}
            }
        }
        let params = AttnParams {
            n_head: h,
            n_kv_head: 1,
            head_dim: kw,
            scale: c.attn_scale,
            window: None,
            softcap: None,
            batch_invariant: cx.invariant,
            causal: true,
        };
        let (q, out) = (&s.v[..slots * kw], &mut s.att[..slots * kw]);
        let mut t0 = 0;
        for g in segs.iter() {
            let rows = t0..t0 + g.tokens.len();
            t0 = rows.end;
            let (q, pos) = (
                &q[rows.start * h * kw..rows.end * h * kw],
                &s.positions[rows.clone()],
            );
            let o = &mut out[rows.start * h * kw..rows.end * h * kw];
            match &g.st.cache.layers[il] {
                LayerMem::F16(lc) => attend(cx, &params, lc, q, pos, o),
                LayerMem::F32(lc) => attend(cx, &params, lc, q, pos, o),
                LayerMem::Recurrent(_) => {}
            }
        }
        // Each head's latent output (the first r values) decompressed by
        // its v_b slice: n × h·v_head, the heads side by side.
        for (dst, head) in ms
            .rows
            .chunks_exact_mut(r)
            .zip(s.att[..slots * kw].chunks_exact(kw))
        {
            dst.copy_from_slice(&head[..r]);
        }
        let vh = m.v_head;
        ops::expert_matmul(
            cx.pool,
            cx.kern,
            &[self.v_b.view(cx.bytes)],
            &ms.heads,
            &ms.rows[..slots * r],
            ExpertInput::PerSlot,
            &mut s.qbuf,
            &mut [&mut ms.out[..slots * vh]],
        );
        QuantActs::new(&ms.out[..slots * vh], n, &mut s.qbuf).linear(
            cx,
            [&self.wo],
            &mut [&mut s.o],
        );
    }
}

/// Writes a segment's latent rows into its cache.
fn store_rows<T: KvElem>(lc: &mut KvCache<T>, k: &[f32], positions: &[usize], kw: usize) {
    let rows = lc.k.len() / kw;
    for (t, &pos) in positions.iter().enumerate() {
        let slot = (pos % rows) * kw;
        T::store(&k[t * kw..(t + 1) * kw], &mut lc.k[slot..slot + kw]);
    }
}

/// One sequence's attention over its latent cache: the rows are the keys
/// and, through their first `kv_lora_rank` values, the values.
fn attend<T: KvElem>(
    cx: &Ctx<'_>,
    p: &AttnParams,
    lc: &KvCache<T>,
    q: &[f32],
    positions: &[usize],
    out: &mut [f32],
) {
    let view = KvView {
        k: &lc.k,
        v: &lc.k,
        n_tokens: positions.len(),
    };
    ops::attention_batch(cx.pool, p, q, &[view], positions, out);
}
