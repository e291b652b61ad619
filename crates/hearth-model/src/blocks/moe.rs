//! The mixture-of-experts feed-forward block: a router picks each token's
//! experts ([`hearth_ops::route`]), the chosen experts' gated feed-forwards
//! run through the grouped expert matmul (only their rows are read), and
//! their outputs are summed with the routing weights; a shared expert, when
//! the model has one, adds a dense feed-forward every token goes through
//! (scaled, when the file has its gate `ffn_gate_inp_shexp`, by
//! `sigmoid(gate · x)` per token, as Qwen 3.5 MoE does).
//!
//! Experts come as 3-D tensors (`ffn_gate_exps`, `ffn_up_exps` or the
//! fused `ffn_gate_up_exps`, and `ffn_down_exps`), each with optional
//! per-expert biases (gpt-oss) and `.scale` tensors (applied where
//! llama.cpp's graph applies them, see [`MoeSpec::expert_scales`]).

use hearth_ops::{self as ops, ExpertInput, ExpertsRef, Router, Routes};

use super::ffn::Dense;
use super::{Ctx, Linear, QuantActs};
use crate::config::{Config, Ffn, MoeAct, MoeSpec};
use crate::forward::Scratch;
use crate::load::{Stacked, Tensors};
use crate::ModelError;

/// One 3-D expert tensor with its optional per-expert bias and scale.
#[derive(Debug)]
struct Experts {
    w: Stacked,
    /// `n_expert` rows of `w.rows`.
    bias: Option<Vec<f32>>,
    /// One per expert.
    scale: Option<Vec<f32>>,
}

impl Experts {
    /// `{prefix}.weight` (`n` experts of `rows` × `cols`) and its optional
    /// `.bias`, `.scale` and `.input_scale` (the last is NVFP4's activation
    /// scale, which llama.cpp's graph does not apply to other weight types:
    /// checked and left out, as for dense projections).
    fn load(
        t: &mut Tensors<'_>,
        m: &MoeSpec,
        prefix: &str,
        cols: usize,
        rows: usize,
    ) -> Result<Experts, ModelError> {
        let n = m.n_expert;
        let w = t.stacked(&format!("{prefix}.weight"), cols, rows, n)?;
        // Biases only where the architecture has them; elsewhere one is
        // left over, and the tensor check names it.
        let bias_name = format!("{prefix}.bias");
        let bias = match m.expert_biases {
            true => Some(
                t.opt_table(&bias_name, rows, n)?
                    .ok_or(ModelError::MissingTensor(bias_name))?,
            ),
            false => None,
        };
        let scale = finite(t, &format!("{prefix}.scale"), n)?.filter(|_| m.expert_scales);
        finite(t, &format!("{prefix}.input_scale"), n)?;
        Ok(Experts { w, bias, scale })
    }

    fn view<'a>(&self, bytes: &'a [u8]) -> ExpertsRef<'a> {
        self.w.view(bytes)
    }

    /// Applies the scale, then the bias, to every slot's output (llama.cpp's
    /// order).
    fn finish(&self, routes: &Routes, y: &mut [f32]) {
        let n = self.w.rows;
        let y = &mut y[..routes.n_slots() * n];
        ops::expert_scale_bias(routes, y, n, self.scale.as_deref(), self.bias.as_deref());
    }
}

/// The optional vector `name` of `len` finite values.
fn finite(t: &mut Tensors<'_>, name: &str, len: usize) -> Result<Option<Vec<f32>>, ModelError> {
    let v = t.opt_vector(name, len)?;
    if let Some(bad) = v.iter().flatten().find(|x| !x.is_finite()) {
        return Err(ModelError::BadTensor {
            tensor: name.into(),
            why: format!("value {bad} is not finite"),
        });
    }
    Ok(v)
}

#[derive(Debug)]
enum GateUp {
    Split {
        gate: Experts,
        up: Experts,
    },
    /// `ffn_gate_up_exps`: each expert's rows are the gate's, then the up
    /// projection's.
    Fused(Experts),
}

/// One mixture-of-experts layer's weights.
#[derive(Debug)]
pub(crate) struct Moe {
    router: Linear,
    /// Added to the routing probabilities for choosing only (`exp_probs_b`).
    selection_bias: Option<Vec<f32>>,
    gate_up: GateUp,
    down: Experts,
    shared: Option<Dense>,
    /// The shared expert's gate: one row, `sigmoid(row · x)` scales its
    /// output.
    shared_gate: Option<Linear>,
}

/// The buffers of a mixture-of-experts layer, kept in [`Scratch`].
#[derive(Default)]
pub(crate) struct MoeScratch {
    /// Router logits (n × n_expert).
    logits: Vec<f32>,
    routes: Routes,
    /// Per slot (n · n_used rows): gate, up and down outputs.
    gate: Vec<f32>,
    up: Vec<f32>,
    down: Vec<f32>,
    /// The shared expert's output (n × n_embd).
    shared: Vec<f32>,
}

/// Bytes of [`MoeScratch`] for `n` rows, and of the quantized activations
/// of the slots (each token once per chosen expert) the down projection
/// reads.
pub(crate) fn scratch_bytes(c: &Config, file: &hearth_gguf::GgufFile, n: u64) -> u64 {
    let Some(m) = &c.moe else {
        return 0;
    };
    let slots = n * m.n_used as u64;
    let f32s =
        n * m.n_expert as u64 + slots * (3 * m.n_ff as u64 + c.n_embd as u64) + n * c.n_embd as u64;
    // Routes: expert and weight per slot, its grouping, the offsets.
    let routes = slots * 12 + (m.n_expert as u64 + 1) * 8 + 2 * m.n_expert as u64 * 4;
    let quant_row = file
        .tensors()
        .iter()
        .filter(|t| t.dims.len() == 3)
        .filter_map(|t| hearth_quant::vec_dot_type(t.ty).row_bytes(t.row_len()))
        .max()
        .unwrap_or(0);
    f32s * 4 + routes + slots * quant_row
}

impl Moe {
    pub fn load(t: &mut Tensors<'_>, c: &Config, il: usize) -> Result<Moe, ModelError> {
        let m = c.moe.as_ref().ok_or_else(|| ModelError::BadHparam {
            key: "expert_count".into(),
            why: "a mixture-of-experts layer without experts".into(),
        })?;
        let n = |s: &str| format!("blk.{il}.{s}");
        let (e, ff) = (c.n_embd, m.n_ff);
        let router = Linear::load(t, &n("ffn_gate_inp"), e, m.n_expert)?;
        // Only gpt-oss's router has a bias.
        match (router.bias.is_some(), m.expert_biases) {
            (true, false) => {
                return Err(ModelError::UnusedTensor(
                    n("ffn_gate_inp.bias"),
                    c.arch.name(),
                ))
            }
            (false, true) => return Err(ModelError::MissingTensor(n("ffn_gate_inp.bias"))),
            _ => {}
        }
        let selection_bias = t.opt_vector(&n("exp_probs_b.bias"), m.n_expert)?;
        let gate_up = match t.has(&n("ffn_gate_up_exps.weight")) {
            true => GateUp::Fused(Experts::load(t, m, &n("ffn_gate_up_exps"), e, 2 * ff)?),
            false => GateUp::Split {
                gate: Experts::load(t, m, &n("ffn_gate_exps"), e, ff)?,
                up: Experts::load(t, m, &n("ffn_up_exps"), e, ff)?,
            },
        };
        let down = Experts::load(t, m, &n("ffn_down_exps"), ff, e)?;
        let shared = match m.n_ff_shared {
            0 => None,
            sf => Some(Dense::load_named(t, c, il, "_shexp", Ffn::Gated, sf)?),
        };
        let shared_gate = match shared {
            Some(_) => Linear::opt(t, &n("ffn_gate_inp_shexp"), e, 1)?,
            None => None,
        };
        Ok(Moe {
            router,
            selection_bias,
            gate_up,
            down,
            shared,
            shared_gate,
        })
    }

    /// `s.o = moe(s.xb)` for every row.
    pub fn forward(&self, cx: &Ctx<'_>, s: &mut Scratch) {
        let (c, n) = (cx.c, cx.n);
        let Some(m) = &c.moe else {
            return;
        };
        let (e, ff) = (c.n_embd, m.n_ff);
        if let Some(sh) = &self.shared {
            // The shared expert first, into `s.o`, kept aside.
            sh.forward(cx, s);
            s.moe.shared.clear();
            s.moe.shared.extend_from_slice(&s.o[..n * e]);
            if let Some(g) = &self.shared_gate {
                let logit = &mut s.moe.logits;
                logit.resize(n, 0.0);
                QuantActs::new(&s.xb[..n * e], n, &mut s.qbuf).linear(cx, [g], &mut [logit]);
                for (row, &l) in s.moe.shared.chunks_exact_mut(e).zip(logit.iter()) {
                    ops::scale_inplace(row, ops::sigmoid(l));
                }
            }
        }
        let ms = &mut s.moe;
        ms.logits.resize(n * m.n_expert, 0.0);
        QuantActs::new(&s.xb[..n * e], n, &mut s.qbuf).linear(
            cx,
            [&self.router],
            &mut [&mut ms.logits],
        );
        let router = Router {
            gating: m.gating,
            n_used: m.n_used,
            norm_weights: m.norm_weights,
            weight_scale: m.weight_scale,
            selection_bias: self.selection_bias.as_deref(),
            groups: m.groups,
            groups_used: m.groups_used,
        };
        ops::route(
            &router,
            &ms.logits[..n * m.n_expert],
            m.n_expert,
            &mut ms.routes,
        );
        let slots = ms.routes.n_slots();
        ms.gate.resize(slots * ff, 0.0);
        ms.up.resize(slots * ff, 0.0);
        let x = &s.xb[..n * e];
        match &self.gate_up {
            GateUp::Split { gate, up } => {
                ops::expert_matmul(
                    cx.pool,
                    cx.kern,
                    &[gate.view(cx.bytes), up.view(cx.bytes)],
                    &ms.routes,
                    x,
                    ExpertInput::PerToken,
                    &mut s.qbuf,
                    &mut [&mut ms.gate[..slots * ff], &mut ms.up[..slots * ff]],
                );
                gate.finish(&ms.routes, &mut ms.gate);
                up.finish(&ms.routes, &mut ms.up);
            }
            GateUp::Fused(w) => {
                ms.down.resize(slots * 2 * ff, 0.0);
                ops::expert_matmul(
                    cx.pool,
                    cx.kern,
                    &[w.view(cx.bytes)],
                    &ms.routes,
                    x,
                    ExpertInput::PerToken,
                    &mut s.qbuf,
                    &mut [&mut ms.down[..slots * 2 * ff]],
                );
                w.finish(&ms.routes, &mut ms.down);
                for (i, row) in ms.down[..slots * 2 * ff].chunks_exact(2 * ff).enumerate() {
                    ms.gate[i * ff..(i + 1) * ff].copy_from_slice(&row[..ff]);
                    ms.up[i * ff..(i + 1) * ff].copy_from_slice(&row[ff..]);
                }
            }
        }
        let (g, u) = (&mut ms.gate[..slots * ff], &ms.up[..slots * ff]);
        match m.act {
            MoeAct::Silu => ops::gated_act_par(cx.pool, ops::Activation::Silu, g, u),
            MoeAct::SwigluOai { alpha, limit } => ops::swiglu_oai(g, u, alpha, limit),
        }
        ms.down.resize(slots * e, 0.0);
        ops::expert_matmul(
            cx.pool,
            cx.kern,
            &[self.down.view(cx.bytes)],
            &ms.routes,
            &ms.gate[..slots * ff],
            ExpertInput::PerSlot,
            &mut s.qbuf,
            &mut [&mut ms.down[..slots * e]],
        );
        self.down.finish(&ms.routes, &mut ms.down);
        ops::combine_experts(&ms.routes, &ms.down[..slots * e], e, &mut s.o[..n * e]);
        if self.shared.is_some() {
            ops::add_inplace(&mut s.o[..n * e], &ms.shared[..n * e]);
        }
    }
}
