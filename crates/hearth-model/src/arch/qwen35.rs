//! Qwen 3.5: Gated DeltaNet layers beside gated attention.
//!
//! Three of every four layers (or those `attention.recurrent_layers`
//! marks) are Gated DeltaNet; the others attend with QK-norm and a sigmoid
//! output gate carried by the Q projection. The feed-forward's norm is
//! `post_attention_norm`.

use hearth_ops::{DeltaNet, Gating, RopeKind};

use super::hybrid::{conv_kernel, set_recurrent, ssm_sizes};
use crate::config::{Config, Meta, Recurrent};
use crate::ModelError;

/// llama.cpp's default when `attention.recurrent_layers` is absent: every
/// fourth layer attends.
const FULL_ATTENTION_INTERVAL: usize = 4;

/// Qwen 3.5's M-RoPE fed text positions (the same position in its first
/// three sections, 0 in the fourth) is NeoX RoPE, provided every rotated
/// pair belongs to one of the first three sections of ggml's interleaved
/// layout; a pair in the fourth would be left unrotated, which hearth does
/// not do, so such a file is refused.
fn imrope_is_neox(meta: &Meta<'_>, n_rot: usize) -> Result<(), ModelError> {
    let k = "rope.dimension_sections";
    let Some(v) = meta.file.get(&meta.key(k)) else {
        return Ok(());
    };
    let s: Vec<usize> = v
        .as_array()
        .unwrap_or_default()
        .iter()
        .filter_map(|x| x.as_u64().and_then(|x| usize::try_from(x).ok()))
        .collect();
    let total = s.iter().fold(0usize, |a, &b| a.saturating_add(b));
    if s.len() != 4 || total == 0 {
        return Err(meta.bad(k, "expected four section sizes"));
    }
    for pair in 0..n_rot / 2 {
        let sector = pair % total;
        if !(0..3).any(|i| sector % 3 == i && sector < 3 * s[i]) {
            return Err(meta.bad(
                k,
                format!("rotated pair {pair} falls outside the text sections {s:?}"),
            ));
        }
    }
    Ok(())
}

/// Qwen 3.5 (and, with its mixture-of-experts feed-forward, Qwen 3.5 MoE).
pub(super) fn qwen35(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.qk_norm = true;
    c.attn_gate = true;
    c.norms.ffn = Some("post_attention_norm");
    c.ffn_scales = true;
    c.set_rope_kind(RopeKind::Neox);
    if let Some(r) = c.layers.iter().find_map(|l| l.rope.as_ref()) {
        imrope_is_neox(meta, r.n_rot)?;
    }
    let [d_inner, d_state, n_v, n_k] = ssm_sizes(meta)?;
    if n_v % n_k != 0 || d_inner % n_v != 0 {
        return Err(meta.bad(
            "ssm.time_step_rank",
            format!("{n_v} value heads for {n_k} key heads and inner size {d_inner}"),
        ));
    }
    let shape = DeltaNet {
        n_k_heads: n_k,
        n_v_heads: n_v,
        head_k: d_state,
        head_v: d_inner / n_v,
    };
    let kernel = conv_kernel(meta, "ssm.conv_kernel")?;
    let recurrent: Vec<bool> = match meta.has("attention.recurrent_layers") {
        true => meta
            .per_layer("attention.recurrent_layers", c.n_layer)?
            .iter()
            .map(|&r| r != 0)
            .collect(),
        false => {
            let every = meta.usize_or("full_attention_interval", FULL_ATTENTION_INTERVAL)?;
            (0..c.n_layer)
                .map(|i| (i + 1) % every.max(1) != 0)
                .collect()
        }
    };
    for (il, r) in recurrent.into_iter().enumerate() {
        if r {
            set_recurrent(c, il, Recurrent::DeltaNet { shape, kernel });
        }
    }
    Ok(())
}

/// Qwen 3.5 MoE: Qwen 3.5 with every feed-forward a mixture of experts
/// (softmax routing, the chosen weights normalised, the experts' scales
/// applied) beside a shared expert with its own sigmoid gate.
pub(super) fn qwen35moe(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    qwen35(meta, c)?;
    let m = super::moe::experts(meta, c, false, Gating::Softmax, true)?;
    m.weight_scale = meta.f32_opt("expert_weights_scale")?.unwrap_or(0.0);
    m.expert_scales = true;
    m.n_ff_shared = meta.usize_or("expert_shared_feed_forward_length", 0)?;
    if !m.weight_scale.is_finite() || m.n_ff_shared > crate::config::MAX_FF {
        return Err(meta.bad(
            "expert_shared_feed_forward_length",
            format!("{} (scale {})", m.n_ff_shared, m.weight_scale),
        ));
    }
    Ok(())
}
