//! The Qwen family: Llama's blocks with NeoX RoPE; Qwen2 has Q/K/V biases.

use hearth_ops::RopeKind;

use super::Meta;
use crate::config::Config;
use crate::ModelError;

/// Qwen2, Qwen2.5.
pub(super) fn qwen2(_: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.qkv_bias = true;
    c.set_rope_kind(RopeKind::Neox);
    Ok(())
}
