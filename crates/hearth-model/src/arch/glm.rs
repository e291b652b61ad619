//! The GLM family.

use hearth_ops::{Gating, RopeKind};

use super::{moe, Meta};
use crate::config::{Config, Norms};
use crate::ModelError;

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

/// GLM-4.5 / 4.6 / 4.7: attention with optional QK-norm and NeoX RoPE, the
/// feed-forward pre-norm stored as `post_attention_norm`, leading dense
/// layers, then experts routed by sigmoid (unless the file says) with a
/// selection bias, plus shared experts.
pub(super) fn glm4moe(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    if meta.usize_or("nextn_predict_layers", 0)? > 0 {
        return Err(meta.bad(
            "nextn_predict_layers",
            "multi-token prediction layers are not supported",
        ));
    }
    c.set_rope_kind(RopeKind::Neox);
    c.norms = Norms {
        ffn: Some("post_attention_norm"),
        ..Norms::PRE
    };
    c.qk_norm = meta.file.tensor("blk.0.attn_q_norm.weight").is_some();
    let gating = moe::gating(meta, Gating::Sigmoid)?;
    let m = moe::experts(meta, c, true, gating, false)?;
    moe::weights_norm_and_scale(meta, m)?;
    m.n_ff_shared = meta.usize_or("expert_shared_count", 0)? * m.n_ff;
    Ok(())
}
