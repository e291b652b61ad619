//! The StarCoder family.

use hearth_ops::{Activation, RopeKind};

use super::Meta;
use crate::config::{Config, Ffn, NormKind};
use crate::ModelError;

/// StarCoder 2: LayerNorm with biases, a plain GELU feed-forward.
pub(super) fn starcoder2(_: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.set_rope_kind(RopeKind::Neox);
    c.norm = NormKind::Layer;
    c.act = Activation::Gelu;
    c.layers.iter_mut().for_each(|l| l.ffn = Ffn::Plain);
    Ok(())
}
