//! The Llama family: the shared defaults are Llama's (attention with
//! optional biases and Llama 3's per-dimension RoPE factors, gated SiLU
//! feed-forward, RMS norms).

use hearth_ops::RopeKind;

use super::Meta;
use crate::config::Config;
use crate::ModelError;

/// Llama, Mistral, TinyLlama, SmolLM2: RoPE on adjacent pairs.
pub(super) fn llama(_: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.set_rope_kind(RopeKind::Norm);
    Ok(())
}
