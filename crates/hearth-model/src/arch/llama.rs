//! The Llama family: the shared defaults are Llama's (attention with
//! optional biases and Llama 3's per-dimension RoPE factors, gated SiLU
//! feed-forward, RMS norms).

use hearth_ops::{Gating, RopeKind};

use super::{moe, Meta};
use crate::config::Config;
use crate::ModelError;

/// Llama, Mistral, TinyLlama, SmolLM2: RoPE on adjacent pairs. With
/// experts (Mixtral): every feed-forward a mixture of experts, softmax
/// routing with normalised weights, the experts' scales applied.
pub(super) fn llama(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.set_rope_kind(RopeKind::Norm);
    if meta.usize_or("expert_count", 0)? > 0 {
        moe::experts(meta, c, false, Gating::Softmax, true)?.expert_scales = true;
    }
    Ok(())
}
