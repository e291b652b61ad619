//! LFM2: gated short-convolution layers (those without KV heads) beside
//! attention with QK-norm and NeoX RoPE (on a sliding window when the file
//! gives one); the final norm is `token_embd_norm`.

use hearth_ops::{Gating, RopeKind};

use super::hybrid::{conv_kernel, kv_less_layers, set_recurrent};
use crate::config::{Config, Meta, Recurrent};
use crate::ModelError;

/// LFM2 (and, with its mixture-of-experts feed-forward, LFM2-MoE).
pub(super) fn lfm2(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.qk_norm = true;
    // llama.cpp's graph loads the feed-forward scales and does not apply them.
    c.ffn_scales = false;
    c.output_norm = Some("token_embd_norm");
    c.set_rope_kind(RopeKind::Neox);
    let window = meta.usize_or("attention.sliding_window", 0)?;
    let kernel = conv_kernel(meta, "shortconv.l_cache")?;
    for (il, r) in kv_less_layers(meta, c.n_layer)?.into_iter().enumerate() {
        if r {
            set_recurrent(c, il, Recurrent::ShortConv { kernel });
        } else if window > 0 {
            c.layers[il].window = Some(window);
        }
    }
    Ok(())
}

/// LFM2-MoE: LFM2 whose feed-forwards after the leading dense ones are a
/// mixture of experts routed by `expert_gating_func` with a selection
/// bias, the chosen weights always normalised (llama.cpp's graph ignores
/// `expert_weights_norm` here) and the experts' scales not applied.
pub(super) fn lfm2moe(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    lfm2(meta, c)?;
    let gating = super::moe::gating(meta, Gating::Softmax)?;
    let m = super::moe::experts(meta, c, true, gating, true)?;
    let k = "expert_weights_scale";
    m.weight_scale = meta.f32_opt(k)?.unwrap_or(0.0);
    if !m.weight_scale.is_finite() {
        return Err(meta.bad(k, format!("{}", m.weight_scale)));
    }
    Ok(())
}
