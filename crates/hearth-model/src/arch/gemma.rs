//! The Gemma family: √n_embd embedding scale, GELU, NeoX RoPE, and from
//! Gemma 2 on post-block norms and sliding-window layers.

use hearth_ops::{Activation, RopeKind};

use super::Meta;
use crate::config::Config;
use crate::ModelError;

/// Gemma 3: QK-norm, post-attention and post-FFN norms, and every 6th
/// layer global (layers 5, 11, ...) with the file's RoPE base; the others
/// attend within a sliding window with base 10 000 and no scaling.
pub(super) fn gemma3(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    const SWA_PERIOD: usize = 6;
    const SWA_ROPE_BASE: f32 = 10_000.0;
    c.act = Activation::Gelu;
    c.embed_scale = Some((c.n_embd as f32).sqrt());
    c.qk_norm = true;
    c.post_norms = true;
    c.set_rope_kind(RopeKind::Neox);
    c.final_softcap = meta.f32_nonzero("final_logit_softcapping")?;
    let window = meta.usize_or("attention.sliding_window", 0)?;
    for (i, l) in c.layers.iter_mut().enumerate() {
        if window > 0 && i % SWA_PERIOD < SWA_PERIOD - 1 {
            l.window = Some(window);
            if let Some(r) = &mut l.rope {
                r.base = SWA_ROPE_BASE;
                r.freq_scale = 1.0;
            }
        }
    }
    Ok(())
}
