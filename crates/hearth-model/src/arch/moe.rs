//! What every mixture-of-experts architecture reads — the routed experts'
//! keys shared by all of them (count, top-k, expert width, expert groups),
//! and the keys only some read (gating function, weight normalisation and
//! scale), each with llama.cpp's per-architecture default. The builders
//! live with their families (Llama, Qwen, OLMo, GLM, gpt-oss, DeepSeek).

use hearth_ops::Gating;

use super::Meta;
use crate::config::{Config, Ffn, MoeAct, MoeSpec};
use crate::ModelError;

/// Experts per layer hearth accepts (released models have at most 384).
pub(super) const MAX_EXPERTS: usize = 1 << 12;

/// Makes layers `lead..` (`leading_dense_block_count`, for the
/// architectures whose loader reads it) mixture-of-experts layers routed
/// by `gating`, with the chosen weights normalised when `norm_weights`;
/// returns the spec for the caller's further settings.
pub(super) fn experts<'c>(
    meta: &Meta<'_>,
    c: &'c mut Config,
    read_lead: bool,
    gating: Gating,
    norm_weights: bool,
) -> Result<&'c mut MoeSpec, ModelError> {
    let n_expert = meta.usize("expert_count")?;
    if !(1..=MAX_EXPERTS).contains(&n_expert) {
        return Err(meta.bad(
            "expert_count",
            format!("{n_expert} (must be 1 to {MAX_EXPERTS})"),
        ));
    }
    let n_used = meta.usize("expert_used_count")?;
    if !(1..=n_expert).contains(&n_used) {
        return Err(meta.bad(
            "expert_used_count",
            format!("{n_used} of {n_expert} experts"),
        ));
    }
    // Absent or 0: the experts are as wide as the dense feed-forward.
    let n_ff = match meta.usize_or("expert_feed_forward_length", 0)? {
        0 => c.n_ff,
        f => f,
    };
    if !(1..=crate::config::MAX_FF).contains(&n_ff) {
        return Err(meta.bad("expert_feed_forward_length", format!("{n_ff}")));
    }
    let groups = meta.usize_or("expert_group_count", 0)?;
    let groups_used = meta.usize_or("expert_group_used_count", 0)?;
    if groups > 1
        && (n_expert % groups != 0
            || !(1..groups).contains(&groups_used)
            || n_expert / groups * groups_used < n_used)
    {
        return Err(meta.bad(
            "expert_group_count",
            format!("{groups} groups ({groups_used} used) of {n_expert} experts, top-{n_used}"),
        ));
    }
    let lead = match read_lead {
        true => meta.usize_or("leading_dense_block_count", 0)?,
        false => 0,
    };
    if lead > c.n_layer {
        return Err(meta.bad(
            "leading_dense_block_count",
            format!("{lead} of {} layers", c.n_layer),
        ));
    }
    for l in &mut c.layers[lead..] {
        l.ffn = Ffn::Moe;
        l.n_ff = n_ff;
    }
    Ok(c.moe.insert(MoeSpec {
        n_expert,
        n_used,
        n_ff,
        n_ff_shared: 0,
        gating,
        norm_weights,
        weight_scale: 0.0,
        groups,
        groups_used,
        act: MoeAct::Silu,
        expert_biases: false,
        expert_scales: false,
    }))
}

/// `expert_gating_func` (0 or absent: `default`).
pub(super) fn gating(meta: &Meta<'_>, default: Gating) -> Result<Gating, ModelError> {
    Ok(match meta.usize_or("expert_gating_func", 0)? {
        0 => default,
        1 => Gating::Softmax,
        2 => Gating::Sigmoid,
        3 => Gating::SoftmaxChosen,
        4 => Gating::SqrtSoftplus,
        g => return Err(meta.bad("expert_gating_func", format!("unknown gating {g}"))),
    })
}

/// `expert_weights_norm` and `expert_weights_scale`, for the architectures
/// whose loader reads them.
pub(super) fn weights_norm_and_scale(meta: &Meta<'_>, m: &mut MoeSpec) -> Result<(), ModelError> {
    if let Some(v) = meta.file.get(&meta.key("expert_weights_norm")) {
        m.norm_weights = v
            .as_bool()
            .ok_or_else(|| meta.bad("expert_weights_norm", "not a boolean"))?;
    }
    let scale = meta.f32_opt("expert_weights_scale")?.unwrap_or(0.0);
    if !scale.is_finite() {
        return Err(meta.bad("expert_weights_scale", format!("{scale}")));
    }
    m.weight_scale = scale;
    Ok(())
}
