//! Granite 4 hybrids: Mamba-2 layers (those without KV heads) beside
//! attention, with Granite's embedding, residual, attention and logit
//! multipliers. Attention layers use RoPE only when
//! `rope.scaling.finetuned` (default true) says so, as llama.cpp reads it.

use hearth_ops::{Mamba2, RopeKind};

use super::hybrid::{conv_kernel, kv_less_layers, set_recurrent, ssm_sizes};
use crate::config::{Config, Meta, Recurrent};
use crate::ModelError;

pub(super) fn granitehybrid(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.set_rope_kind(RopeKind::Norm);
    // llama.cpp's graph loads the feed-forward scales and does not apply them.
    c.ffn_scales = false;
    c.embed_scale = meta.f32_nonzero("embedding_scale")?;
    c.residual_scale = meta.f32_nonzero("residual_scale")?;
    c.logit_scale = meta.f32_nonzero("logit_scale")?;
    if let Some(s) = meta.f32_nonzero("attention.scale")? {
        c.attn_scale = s;
    }
    let k = "rope.scaling.finetuned";
    let rope = match meta.file.get(&meta.key(k)) {
        None => true,
        Some(v) => v.as_bool().ok_or_else(|| meta.bad(k, "not a boolean"))?,
    };
    let [d_inner, d_state, n_head, n_group] = ssm_sizes(meta)?;
    if d_inner % n_head != 0 || n_head % n_group != 0 {
        return Err(meta.bad(
            "ssm.time_step_rank",
            format!("{n_head} heads in {n_group} groups for inner size {d_inner}"),
        ));
    }
    let shape = Mamba2 {
        n_head,
        head_dim: d_inner / n_head,
        d_state,
        n_group,
    };
    let kernel = conv_kernel(meta, "ssm.conv_kernel")?;
    for (il, r) in kv_less_layers(meta, c.n_layer)?.into_iter().enumerate() {
        if r {
            set_recurrent(c, il, Recurrent::Mamba2 { shape, kernel });
        } else if !rope {
            c.layers[il].rope = None;
        }
    }
    Ok(())
}
