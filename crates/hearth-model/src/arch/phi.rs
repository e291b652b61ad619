//! The Phi-3 family.

use hearth_ops::RopeKind;

use super::Meta;
use crate::config::Config;
use crate::ModelError;

/// Phi-3 / Phi-4: fused QKV and gate-up tensors, NeoX RoPE with LongRoPE
/// short/long factors. Its sliding window is disabled, as in llama.cpp.
pub(super) fn phi3(_: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.set_rope_kind(RopeKind::Neox);
    c.scale_queries = true;
    Ok(())
}
