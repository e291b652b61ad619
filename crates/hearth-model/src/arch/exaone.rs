//! The EXAONE family.

use hearth_ops::RopeKind;

use super::Meta;
use crate::config::{Config, Norms};
use crate::ModelError;

/// EXAONE 4: norms after each block only, per-head QK-norm; the 32B model
/// (64 layers) interleaves 3 sliding-window layers with RoPE and one global
/// layer without.
pub(super) fn exaone4(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    const LAYERS_32B: usize = 64;
    c.set_rope_kind(RopeKind::Neox);
    c.norms = Norms::POST;
    c.qk_norm = true;
    if c.n_layer != LAYERS_32B {
        return Ok(());
    }
    let window = meta.usize_or("attention.sliding_window", 4096)?;
    let base = meta.f32_opt("rope.freq_base_swa")?;
    c.sliding_window(meta, window, 4, |l, swa| match (swa, &mut l.rope, base) {
        (true, Some(r), Some(b)) => r.base = b,
        (true, _, _) => {}
        (false, _, _) => l.rope = None,
    })
}
