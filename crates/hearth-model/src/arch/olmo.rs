//! The OLMo family.

use hearth_ops::{Gating, RopeKind};

use super::{moe, Meta};
use crate::config::{Config, Norms};
use crate::ModelError;

/// OLMo 2: norms after each block only, QK-norm over all heads, and
/// optional sliding-window layers whose RoPE has no scaling.
pub(super) fn olmo2(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.set_rope_kind(RopeKind::Neox);
    c.norms = Norms::POST;
    c.qk_norm = true;
    let window = meta.usize_or("attention.sliding_window", 0)?;
    if window == 0 {
        return Ok(());
    }
    let base = meta.f32_opt("rope.freq_base_swa")?;
    c.sliding_window(meta, window, 4, |l, swa| {
        if let (true, Some(r)) = (swa, &mut l.rope) {
            r.base = base.unwrap_or(r.base);
            r.freq_scale = 1.0;
            r.attn_factor = 1.0;
            r.yarn = None;
        }
    })
}

/// OLMoE: pre-norms, QK-norm over all heads, NeoX RoPE; softmax routing
/// without normalisation.
pub(super) fn olmoe(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.set_rope_kind(RopeKind::Neox);
    c.qk_norm = true;
    moe::experts(meta, c, false, Gating::Softmax, false)?;
    Ok(())
}
