//! Single-architecture families: Phi-3, OLMo 2, GLM-4, EXAONE 4 and
//! StarCoder 2, each a few facts over the shared blocks.

use hearth_ops::{Activation, RopeKind};

use super::Meta;
use crate::config::{swa_layers, Config, Ffn, NormKind, Norms};
use crate::ModelError;

/// Phi-3 / Phi-4: fused QKV and gate-up tensors, NeoX RoPE with LongRoPE
/// short/long factors. Its sliding window is disabled, as in llama.cpp.
pub(super) fn phi3(_: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.set_rope_kind(RopeKind::Neox);
    c.scale_queries = true;
    Ok(())
}

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
    for (l, swa) in c
        .layers
        .iter_mut()
        .zip(swa_layers(meta, c.n_layer, 4, false)?)
    {
        if swa {
            l.window = Some(window);
            if let Some(r) = &mut l.rope {
                r.base = base.unwrap_or(r.base);
                r.freq_scale = 1.0;
                r.attn_factor = 1.0;
                r.yarn = None;
            }
        }
    }
    Ok(())
}

/// GLM-4: norms around both blocks, fused gate-up. Its multi-section RoPE
/// (`rope.dimension_sections`) gives text tokens the same position in
/// every section, which is NeoX RoPE.
pub(super) fn glm4(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.norms = Norms::SANDWICH;
    let sections = match meta.file.get(&meta.key("rope.dimension_sections")) {
        None => vec![],
        Some(v) => v
            .as_array()
            .ok_or_else(|| meta.bad("rope.dimension_sections", "not an array"))?
            .iter()
            .map(|x| x.as_i64().unwrap_or(0))
            .collect(),
    };
    let mrope = sections.len() >= 2 && sections[0] > 0 && sections[1] > 0;
    c.set_rope_kind(if mrope {
        RopeKind::Neox
    } else {
        RopeKind::Norm
    });
    Ok(())
}

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
    for (l, swa) in c
        .layers
        .iter_mut()
        .zip(swa_layers(meta, c.n_layer, 4, false)?)
    {
        match swa {
            true => {
                l.window = Some(window);
                if let (Some(r), Some(b)) = (&mut l.rope, base) {
                    r.base = b;
                }
            }
            false => l.rope = None,
        }
    }
    Ok(())
}

/// StarCoder 2: LayerNorm with biases, a plain GELU feed-forward.
pub(super) fn starcoder2(_: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.set_rope_kind(RopeKind::Neox);
    c.norm = NormKind::Layer;
    c.act = Activation::Gelu;
    c.layers.iter_mut().for_each(|l| l.ffn = Ffn::Plain);
    Ok(())
}
