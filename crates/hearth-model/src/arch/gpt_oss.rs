//! gpt-oss (OpenAI's open-weight MoE): attention with biases and sinks,
//! sliding-window layers alternating with global ones, and experts with
//! biases, routed by a softmax over the chosen experts' logits, through a
//! clamped SwiGLU.

use hearth_ops::{Gating, RopeKind};

use super::{moe, Meta};
use crate::config::{swa_layers, Config, MoeAct, Norms};
use crate::ModelError;

/// gpt-oss's SwiGLU constants (fixed in llama.cpp's graph).
const SWIGLU_ALPHA: f32 = 1.702;
const SWIGLU_LIMIT: f32 = 7.0;

pub(super) fn gpt_oss(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.set_rope_kind(RopeKind::Neox);
    c.attn_sinks = true;
    c.norms = Norms {
        ffn: Some("post_attention_norm"),
        ..Norms::PRE
    };
    // Every layer's FFN is MoE (expert_feed_forward_length is required).
    meta.usize("expert_feed_forward_length")?;
    let m = moe::experts(meta, c, false, Gating::SoftmaxChosen, false)?;
    m.act = MoeAct::SwigluOai {
        alpha: SWIGLU_ALPHA,
        limit: SWIGLU_LIMIT,
    };
    m.expert_biases = true;
    let window = meta.usize("attention.sliding_window")?;
    if window == 0 {
        return Err(meta.bad("attention.sliding_window", "0"));
    }
    let swa_base = meta.f32_opt("rope.freq_base_swa")?;
    let pattern = swa_layers(meta, c.n_layer, 2, false)?;
    for (l, swa) in c.layers.iter_mut().zip(pattern) {
        if swa {
            l.window = Some(window);
            if let (Some(r), Some(b)) = (&mut l.rope, swa_base) {
                r.base = b;
            }
        }
    }
    Ok(())
}
