//! The recurrent token mixers — Mamba-2 (granitehybrid), Gated DeltaNet
//! (qwen35) and LFM2's gated short convolution — wired as llama.cpp's
//! `build_mamba2_layer`, `build_layer_attn_linear` and
//! `build_shortconv_block` wire them. Each keeps, per sequence, the
//! convolution's history and (Mamba-2, DeltaNet) the scan state in its
//! layer's [`RecurrentMem`] instead of a KV cache. The projections run over
//! every row of the micro-batch at once; the convolution and scan over each
//! sequence's rows with that sequence's state.

use hearth_ops::{self as ops, DeltaNet, Mamba2};

use super::{Ctx, Linear, Mixer, QuantActs};
use crate::config::{Config, Recurrent};
use crate::forward::{Scratch, Seg};
use crate::kv::{LayerMem, RecurrentMem};
use crate::load::Tensors;
use crate::ModelError;

/// Layer `il`'s recurrent mixer of kind `r`.
pub(crate) fn load(
    t: &mut Tensors<'_>,
    c: &Config,
    r: Recurrent,
    il: usize,
) -> Result<Mixer, ModelError> {
    let e = c.n_embd;
    Ok(match r {
        Recurrent::Mamba2 { shape, kernel } => {
            Mixer::Mamba2(Mamba2Mixer::load(t, e, shape, kernel, il)?)
        }
        Recurrent::DeltaNet { shape, kernel } => {
            Mixer::DeltaNet(DeltaNetMixer::load(t, e, shape, kernel, il)?)
        }
        Recurrent::ShortConv { kernel } => Mixer::ShortConv(ShortConv::load(t, e, kernel, il)?),
    })
}

/// A projection llama.cpp multiplies without bias or scale.
fn plain(t: &mut Tensors<'_>, name: &str, cols: usize, rows: usize) -> Result<Linear, ModelError> {
    Ok(Linear {
        m: t.matrix(&format!("{name}.weight"), cols, Some(rows))?,
        bias: None,
        scale: None,
        bias_first: false,
        panels: None,
    })
}

/// Runs `f` on each segment's rows `r` with its layer-`il` memory.
fn per_seq(
    segs: &mut [Seg<'_, '_>],
    il: usize,
    mut f: impl FnMut(std::ops::Range<usize>, &mut RecurrentMem),
) {
    let mut t0 = 0;
    for g in segs.iter_mut() {
        let r = t0..t0 + g.tokens.len();
        t0 = r.end;
        if let LayerMem::Recurrent(m) = &mut g.st.cache.layers[il] {
            f(r, m);
        }
    }
}

/// `dst = silu(conv(src) + bias)`: the causal convolution of `src`'s rows
/// through the carried history `conv`, as Mamba-2 and Gated DeltaNet start.
fn conv_silu(
    conv: &mut [f32],
    taps: &[f32],
    kernel: usize,
    bias: Option<&[f32]>,
    src: &[f32],
    dst: &mut [f32],
) {
    ops::causal_conv1d(conv, src, taps, kernel, dst);
    let w = taps.len() / kernel.max(1);
    for row in dst.chunks_exact_mut(w.max(1)) {
        if let Some(b) = bias {
            ops::add_inplace(row, b);
        }
        for v in row.iter_mut() {
            *v = ops::silu(*v);
        }
    }
}

/// Copies columns `cols` of every `width`-wide row of `src` into `dst`.
fn columns(src: &[f32], width: usize, cols: std::ops::Range<usize>, dst: &mut Vec<f32>) {
    dst.clear();
    for row in src.chunks_exact(width) {
        dst.extend_from_slice(&row[cols.clone()]);
    }
}

/// A Mamba-2 layer's weights.
#[derive(Debug)]
pub(crate) struct Mamba2Mixer {
    shape: Mamba2,
    kernel: usize,
    /// `n_embd → z (d_inner) ++ xBC ++ dt (n_head)`.
    ssm_in: Linear,
    /// `xbc_width × kernel` taps and a bias per channel.
    conv_w: Vec<f32>,
    conv_b: Vec<f32>,
    dt_bias: Vec<f32>,
    a: Vec<f32>,
    d: Vec<f32>,
    /// RMS-norm weights of the gated output, `d_inner` (one run per group).
    norm: Vec<f32>,
    ssm_out: Linear,
}

impl Mamba2Mixer {
    pub fn load(
        t: &mut Tensors<'_>,
        e: usize,
        shape: Mamba2,
        kernel: usize,
        il: usize,
    ) -> Result<Self, ModelError> {
        let n = |s: &str| format!("blk.{il}.{s}");
        let (di, nh, w) = (shape.d_inner(), shape.n_head, shape.xbc_width());
        Ok(Mamba2Mixer {
            shape,
            kernel,
            ssm_in: Linear::load(t, &n("ssm_in"), e, di + w + nh)?,
            conv_w: t.small_matrix(&n("ssm_conv1d.weight"), kernel, w)?,
            conv_b: t.vector(&n("ssm_conv1d.bias"), w)?,
            dt_bias: t.vector(&n("ssm_dt.bias"), nh)?,
            a: t.small_matrix(&n("ssm_a"), 1, nh)?,
            d: t.small_matrix(&n("ssm_d"), 1, nh)?,
            norm: t.small_matrix(&n("ssm_norm.weight"), di / shape.n_group, shape.n_group)?,
            ssm_out: Linear::load(t, &n("ssm_out"), di, e)?,
        })
    }

    /// `s.o = out(norm(scan(conv(xBC)) + D·x) · silu(z))` for every row.
    pub fn forward(&self, cx: &Ctx<'_>, il: usize, segs: &mut [Seg<'_, '_>], s: &mut Scratch) {
        let (c, n, m) = (cx.c, cx.n, &self.shape);
        let (di, nh, w) = (m.d_inner(), m.n_head, m.xbc_width());
        let width = di + w + nh;
        s.tmp.resize(n * width, 0.0);
        QuantActs::new(&s.xb, n, &mut s.qbuf).linear(cx, [&self.ssm_in], &mut [&mut s.tmp]);
        let proj = &s.tmp[..n * width];
        columns(proj, width, di..di + w, &mut s.q);
        columns(proj, width, di + w..width, &mut s.v);
        for dt in s.v.chunks_exact_mut(nh) {
            ops::add_inplace(dt, &self.dt_bias);
        }
        s.k.resize(n * w, 0.0);
        s.att.resize(n * di, 0.0);
        per_seq(segs, il, |r, mem| {
            let xbc = &mut s.k[r.start * w..r.end * w];
            let src = &s.q[r.start * w..r.end * w];
            conv_silu(
                &mut mem.conv,
                &self.conv_w,
                self.kernel,
                Some(&self.conv_b),
                src,
                xbc,
            );
            let dt = &s.v[r.start * nh..r.end * nh];
            ops::mamba2_scan(
                cx.pool,
                m,
                &mut mem.state,
                xbc,
                dt,
                &self.a,
                &mut s.att[r.start * di..r.end * di],
            );
        });
        let gn = di / m.n_group.max(1);
        for t in 0..n {
            let y = &mut s.att[t * di..(t + 1) * di];
            let x = &s.k[t * w..t * w + di];
            for (h, (yh, xh)) in y
                .chunks_exact_mut(m.head_dim)
                .zip(x.chunks_exact(m.head_dim))
                .enumerate()
            {
                for (yv, &xv) in yh.iter_mut().zip(xh) {
                    *yv += xv * self.d[h];
                }
            }
            ops::mul_silu_inplace(y, &proj[t * width..t * width + di]);
            for (yg, wg) in y.chunks_exact_mut(gn).zip(self.norm.chunks_exact(gn)) {
                ops::rms_norm_inplace(yg, wg, c.norm_eps);
            }
        }
        QuantActs::new(&s.att[..n * di], n, &mut s.qbuf).linear(
            cx,
            [&self.ssm_out],
            &mut [&mut s.o],
        );
    }
}

/// A Gated DeltaNet layer's weights.
#[derive(Debug)]
pub(crate) struct DeltaNetMixer {
    shape: DeltaNet,
    kernel: usize,
    /// `n_embd → q ++ k ++ v` before the convolution.
    qkv: Linear,
    /// `n_embd → z`, the output gate (`n_v_heads · head_v`).
    gate: Linear,
    /// `n_embd → n_v_heads`: write strength (before its sigmoid) and decay
    /// step (before its softplus).
    beta: Linear,
    alpha: Linear,
    conv_w: Vec<f32>,
    dt_bias: Vec<f32>,
    a: Vec<f32>,
    /// RMS-norm weights of each value head's output.
    norm: Vec<f32>,
    out: Linear,
}

impl DeltaNetMixer {
    pub fn load(
        t: &mut Tensors<'_>,
        e: usize,
        shape: DeltaNet,
        kernel: usize,
        il: usize,
    ) -> Result<Self, ModelError> {
        let n = |s: &str| format!("blk.{il}.{s}");
        let (nv, w) = (shape.n_v_heads, shape.qkv_width());
        let dv = nv * shape.head_v;
        Ok(DeltaNetMixer {
            shape,
            kernel,
            qkv: Linear::load(t, &n("attn_qkv"), e, w)?,
            gate: Linear::load(t, &n("attn_gate"), e, dv)?,
            beta: Linear::load(t, &n("ssm_beta"), e, nv)?,
            alpha: Linear::load(t, &n("ssm_alpha"), e, nv)?,
            conv_w: t.small_matrix(&n("ssm_conv1d.weight"), kernel, w)?,
            dt_bias: t.vector(&n("ssm_dt.bias"), nv)?,
            a: t.vector(&n("ssm_a"), nv)?,
            norm: t.vector(&n("ssm_norm.weight"), shape.head_v)?,
            out: Linear::load(t, &n("ssm_out"), dv, e)?,
        })
    }

    /// `s.o = out(rmsnorm(delta_rule(silu(conv(qkv)))) · silu(z))`.
    pub fn forward(&self, cx: &Ctx<'_>, il: usize, segs: &mut [Seg<'_, '_>], s: &mut Scratch) {
        let (c, n, d) = (cx.c, cx.n, &self.shape);
        let (nv, w) = (d.n_v_heads, d.qkv_width());
        let dv = nv * d.head_v;
        s.tmp.resize(n * w, 0.0);
        s.gate.resize(n * dv, 0.0);
        s.up.resize(2 * n * nv, 0.0);
        let (beta, alpha) = s.up.split_at_mut(n * nv);
        QuantActs::new(&s.xb, n, &mut s.qbuf).linear(
            cx,
            [&self.qkv, &self.gate, &self.beta, &self.alpha],
            &mut [&mut s.tmp, &mut s.gate, beta, alpha],
        );
        for b in beta.iter_mut() {
            *b = ops::sigmoid(*b);
        }
        for g in alpha.chunks_exact_mut(nv) {
            for ((g, &bias), &a) in g.iter_mut().zip(&self.dt_bias).zip(&self.a) {
                *g = ops::softplus(*g + bias) * a;
            }
        }
        s.q.resize(n * w, 0.0);
        s.att.resize(n * dv, 0.0);
        let qk = 2 * d.n_k_heads * d.head_k;
        per_seq(segs, il, |r, mem| {
            let conv = &mut s.q[r.start * w..r.end * w];
            let src = &s.tmp[r.start * w..r.end * w];
            conv_silu(&mut mem.conv, &self.conv_w, self.kernel, None, src, conv);
            for row in conv.chunks_exact_mut(w) {
                for head in row[..qk].chunks_exact_mut(d.head_k) {
                    ops::l2_norm_inplace(head, c.norm_eps);
                }
            }
            let (g, b) = (
                &alpha[r.start * nv..r.end * nv],
                &beta[r.start * nv..r.end * nv],
            );
            ops::gated_delta_rule(
                cx.pool,
                d,
                &mut mem.state,
                conv,
                g,
                b,
                &mut s.att[r.start * dv..r.end * dv],
            );
        });
        for (o, z) in s.att[..n * dv]
            .chunks_exact_mut(d.head_v)
            .zip(s.gate.chunks_exact(d.head_v))
        {
            ops::rms_norm_inplace(o, &self.norm, c.norm_eps);
            ops::mul_silu_inplace(o, z);
        }
        QuantActs::new(&s.att[..n * dv], n, &mut s.qbuf).linear(cx, [&self.out], &mut [&mut s.o]);
    }
}

/// An LFM2 short-convolution layer's weights.
#[derive(Debug)]
pub(crate) struct ShortConv {
    kernel: usize,
    /// `n_embd → B ++ C ++ x`, each `n_embd` wide.
    in_proj: Linear,
    /// `n_embd × kernel` taps.
    conv_w: Vec<f32>,
    out_proj: Linear,
}

impl ShortConv {
    pub fn load(
        t: &mut Tensors<'_>,
        e: usize,
        kernel: usize,
        il: usize,
    ) -> Result<Self, ModelError> {
        let n = |s: &str| format!("blk.{il}.shortconv.{s}");
        Ok(ShortConv {
            kernel,
            in_proj: plain(t, &n("in_proj"), e, 3 * e)?,
            conv_w: t.small_matrix(&n("conv.weight"), kernel, e)?,
            out_proj: plain(t, &n("out_proj"), e, e)?,
        })
    }

    /// `s.o = out(C · conv(B · x))` for every row.
    pub fn forward(&self, cx: &Ctx<'_>, il: usize, segs: &mut [Seg<'_, '_>], s: &mut Scratch) {
        let (n, e) = (cx.n, cx.c.n_embd);
        s.tmp.resize(n * 3 * e, 0.0);
        QuantActs::new(&s.xb, n, &mut s.qbuf).linear(cx, [&self.in_proj], &mut [&mut s.tmp]);
        s.q.clear();
        for row in s.tmp.chunks_exact(3 * e) {
            s.q.extend(row[..e].iter().zip(&row[2 * e..]).map(|(b, x)| b * x));
        }
        s.att.resize(n * e, 0.0);
        per_seq(segs, il, |r, mem| {
            let (x, y) = (
                &s.q[r.start * e..r.end * e],
                &mut s.att[r.start * e..r.end * e],
            );
            ops::causal_conv1d(&mut mem.conv, x, &self.conv_w, self.kernel, y);
        });
        for (y, row) in s.att.chunks_exact_mut(e).zip(s.tmp.chunks_exact(3 * e)) {
            ops::mul_inplace(y, &row[e..2 * e]);
        }
        QuantActs::new(&s.att[..n * e], n, &mut s.qbuf).linear(
            cx,
            [&self.out_proj],
            &mut [&mut s.o],
        );
    }
}
