//! The Qwen family: Llama's blocks with NeoX RoPE; Qwen2 has Q/K/V
//! biases, Qwen3 per-head QK-norm.

use hearth_ops::{Gating, RopeKind};

use super::{moe, Meta};
use crate::config::Config;
use crate::ModelError;

/// Qwen2, Qwen2.5.
pub(super) fn qwen2(_: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.qkv_bias = true;
    c.set_rope_kind(RopeKind::Neox);
    Ok(())
}

/// Qwen3 (dense).
pub(super) fn qwen3(_: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.qk_norm = true;
    c.ffn_scales = true;
    c.set_rope_kind(RopeKind::Neox);
    Ok(())
}

/// Qwen3-MoE: Qwen3's attention (per-head QK-norm, NeoX RoPE), every
/// feed-forward a mixture of experts with softmax routing, normalised
/// weights and the experts' scales applied.
pub(super) fn qwen3moe(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    qwen3(meta, c)?;
    moe::experts(meta, c, false, Gating::Softmax, true)?.expert_scales = true;
    Ok(())
}
