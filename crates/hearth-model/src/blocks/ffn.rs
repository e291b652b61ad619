//! The dense feed-forward block: gated `down(act(gate·x) ⊙ up·x)` (gate
//! and up separate, or one fused `ffn_up` of twice the width, Phi-3), or
//! plain `down(act(up·x))` (StarCoder 2); every projection with optional
//! bias and scale.

use hearth_ops as ops;

use super::{Ctx, Linear, QuantActs};
use crate::config::{Config, Ffn};
use crate::forward::Scratch;
use crate::load::Tensors;
use crate::ModelError;

#[derive(Debug)]
enum Up {
    Gated {
        gate: Linear,
        up: Linear,
    },
    /// `ffn_up` rows are the gate's, then the up projection's.
    Fused(Linear),
    Plain(Linear),
}

/// One dense feed-forward block's weights.
#[derive(Debug)]
pub(crate) struct Dense {
    up: Up,
    down: Linear,
    n_ff: usize,
}

impl Dense {
    pub fn load(t: &mut Tensors<'_>, c: &Config, il: usize) -> Result<Dense, ModelError> {
        let spec = &c.layers[il];
        Dense::load_named(t, c, il, "", spec.ffn, spec.n_ff)
    }

    /// The block of tensors `blk.{il}.ffn_{gate,up,down}{suffix}` with
    /// hidden size `ff`: a layer's dense feed-forward (no suffix) or a
    /// mixture-of-experts layer's shared expert (`_shexp`, gated).
    pub fn load_named(
        t: &mut Tensors<'_>,
        c: &Config,
        il: usize,
        suffix: &str,
        kind: Ffn,
        ff: usize,
    ) -> Result<Dense, ModelError> {
        let n = |s: &str| format!("blk.{il}.{s}{suffix}");
        let e = c.n_embd;
        // llama.cpp adds the bias before the scale here; where its graph
        // for the architecture passes no scales, the `.scale` tensors (of
        // NVFP4 checkpoints) are loaded and not applied.
        let load = |t: &mut Tensors<'_>, name: &str, cols, rows| {
            let mut l = Linear::load(t, &n(name), cols, rows)?.bias_first();
            if !c.ffn_scales {
                l.scale = None;
            }
            Ok::<_, ModelError>(l)
        };
        let up = match kind {
            Ffn::Plain => Up::Plain(load(t, "ffn_up", e, ff)?),
            Ffn::Gated | Ffn::Moe => match t.has(&format!("{}.weight", n("ffn_gate"))) {
                true => Up::Gated {
                    gate: load(t, "ffn_gate", e, ff)?,
                    up: load(t, "ffn_up", e, ff)?,
                },
                false => Up::Fused(load(t, "ffn_up", e, 2 * ff)?),
            },
        };
        Ok(Dense {
            up,
            down: load(t, "ffn_down", ff, e)?,
            n_ff: ff,
        })
    }

    /// Every projection of the block.
    pub fn linears_mut(&mut self) -> Vec<&mut Linear> {
        let mut v: Vec<&mut Linear> = match &mut self.up {
            Up::Gated { gate, up } => vec![gate, up],
            Up::Fused(f) | Up::Plain(f) => vec![f],
        };
        v.push(&mut self.down);
        v
    }

    /// `s.o = ffn(s.xb)` for every row.
    pub fn forward(&self, cx: &Ctx<'_>, s: &mut Scratch) {
        let (n, ff, act) = (cx.n, self.n_ff, cx.c.act);
        s.gate.resize(n * ff, 0.0);
        s.up.resize(n * ff, 0.0);
        let mut acts = QuantActs::new(&s.xb, n, &mut s.qbuf);
        match &self.up {
            Up::Gated { gate, up } => {
                acts.linear(cx, [gate, up], &mut [&mut s.gate, &mut s.up]);
                ops::gated_act_par(cx.pool, act, &mut s.gate[..n * ff], &s.up[..n * ff]);
            }
            Up::Fused(w) => {
                s.tmp.resize(n * 2 * ff, 0.0);
                acts.linear(cx, [w], &mut [&mut s.tmp]);
                for (t, row) in s.tmp.chunks_exact(2 * ff).enumerate() {
                    s.gate[t * ff..(t + 1) * ff].copy_from_slice(&row[..ff]);
                    s.up[t * ff..(t + 1) * ff].copy_from_slice(&row[ff..]);
                }
                ops::gated_act_par(cx.pool, act, &mut s.gate[..n * ff], &s.up[..n * ff]);
            }
            Up::Plain(up) => {
                acts.linear(cx, [up], &mut [&mut s.gate]);
                ops::act_inplace_par(cx.pool, act, &mut s.gate[..n * ff]);
            }
        }
        QuantActs::new(&s.gate[..n * ff], n, &mut s.qbuf).linear(cx, [&self.down], &mut [&mut s.o]);
    }
}
