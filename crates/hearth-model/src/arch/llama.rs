//! The Llama family: the shared defaults are Llama's (attention with
//! optional biases and per-dimension RoPE factors, gated SiLU feed-forward,
//! RMS pre-norms); its descendants change a few facts each.

use hearth_ops::{Gating, RopeKind};

use super::{moe, Meta};
use crate::config::{Config, Norms};
use crate::ModelError;

/// Llama 2/3, Mistral 7B, TinyLlama, SmolLM2: RoPE on adjacent pairs.
/// With experts (Mixtral, Mistral 3 MoE): every feed-forward a mixture of
/// experts, softmax routing with normalised weights, the experts' scales
/// applied.
pub(super) fn llama(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.set_rope_kind(RopeKind::Norm);
    c.ffn_scales = true;
    if meta.usize_or("expert_count", 0)? > 0 {
        moe::experts(meta, c, false, Gating::Softmax, true)?.expert_scales = true;
    }
    Ok(())
}

/// Mistral Small 3 / Devstral: Llama's graph; Llama 4's attention
/// temperature tuning is not implemented and refused.
pub(super) fn mistral3(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    if let Some(t) = meta.f32_nonzero("attention.temperature_scale")? {
        return Err(meta.bad(
            "attention.temperature_scale",
            format!("{t}: attention temperature tuning is not supported"),
        ));
    }
    llama(meta, c)
}

/// Granite 3: Llama with an embedding multiplier, a residual multiplier on
/// each block's output, a logit divisor and its own attention scale.
pub(super) fn granite(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.set_rope_kind(RopeKind::Norm);
    c.embed_scale = meta.f32_nonzero("embedding_scale")?;
    c.residual_scale = meta.f32_nonzero("residual_scale")?;
    c.logit_scale = Some(meta.f32("logit_scale")?).filter(|&s| s != 0.0);
    if let Some(s) = meta.f32_nonzero("attention.scale")? {
        c.attn_scale = s;
    }
    // `rope.scaling.finetuned` false: no RoPE at all (llama.cpp's rope pattern).
    let key = meta.key("rope.scaling.finetuned");
    let rope = match meta.file.get(&key) {
        None => true,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| meta.bad("rope.scaling.finetuned", "not a boolean"))?,
    };
    if !rope {
        c.layers.iter_mut().for_each(|l| l.rope = None);
    }
    Ok(())
}

/// SmolLM3: every 4th layer (3, 7, ...) has no RoPE.
pub(super) fn smollm3(_: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    const NO_ROPE_STEP: usize = 4;
    c.set_rope_kind(RopeKind::Norm);
    for (il, l) in c.layers.iter_mut().enumerate() {
        if (il + 1) % NO_ROPE_STEP == 0 {
            l.rope = None;
        }
    }
    Ok(())
}

/// Seed-OSS: NeoX RoPE; the feed-forward pre-norm is stored as
/// `post_attention_norm`.
pub(super) fn seed_oss(_: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.set_rope_kind(RopeKind::Neox);
    c.norms = Norms {
        ffn: Some("post_attention_norm"),
        ..Norms::PRE
    };
    Ok(())
}

/// Granite 3 MoE: Granite's multipliers, softmax routing with normalised
/// weights, and a shared expert when `expert_shared_feed_forward_length`
/// says so. Its loader does not read `rope.scaling.finetuned`: RoPE is on
/// in every layer.
pub(super) fn granitemoe(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    let ropes: Vec<_> = c.layers.iter().map(|l| l.rope.clone()).collect();
    granite(meta, c)?;
    for (l, r) in c.layers.iter_mut().zip(ropes) {
        l.rope = r;
    }
    let shared = meta.usize_or("expert_shared_feed_forward_length", 0)?;
    moe::experts(meta, c, false, Gating::Softmax, true)?.n_ff_shared = shared;
    Ok(())
}
