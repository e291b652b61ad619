//! The Gemma family: √n_embd embedding scale, GELU, NeoX RoPE; from
//! Gemma 2 on, norms around both blocks and sliding-window layers with
//! their own RoPE base.

use hearth_ops::{Activation, RopeKind};

use super::Meta;
use crate::config::{Config, Norms};
use crate::ModelError;

/// What every Gemma shares.
fn base(c: &mut Config) {
    c.act = Activation::Gelu;
    c.embed_scale = Some((c.n_embd as f32).sqrt());
    c.set_rope_kind(RopeKind::Neox);
}

/// Gemma: the queries are scaled before attention, as in llama.cpp's graph
/// (Gemma 2 and 3 scale the scores instead: the same up to the rounding of
/// the queries to the cache type, on which the Gemma 3 golden tests'
/// bounds were measured).
pub(super) fn gemma(_: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    base(c);
    c.scale_queries = true;
    Ok(())
}

/// Gemma 2: soft-capped attention scores and logits, every other layer
/// (by default) attends within a sliding window.
pub(super) fn gemma2(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    base(c);
    c.norms = Norms::SANDWICH;
    c.attn_scale = query_scale(c, 46);
    c.attn_softcap = Some(meta.f32_opt("attn_logit_softcapping")?.unwrap_or(50.0));
    c.final_softcap = Some(meta.f32_opt("final_logit_softcapping")?.unwrap_or(30.0));
    let window = meta.usize_or("attention.sliding_window", 4096)?;
    let base = meta.f32_opt("rope.freq_base_swa")?;
    c.sliding_window(meta, window, 2, |l, swa| {
        if let (true, Some(r), Some(b)) = (swa, &mut l.rope, base) {
            r.base = b;
        }
    })
}

/// Gemma 3: QK-norm, optional logit soft-capping, and 5 of every 6
/// layers (by default) in a sliding window, with RoPE base
/// `rope.freq_base_swa` (10 000 by default) and no scaling.
pub(super) fn gemma3(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    base(c);
    c.qk_norm = true;
    c.norms = Norms::SANDWICH;
    c.attn_scale = query_scale(c, 62);
    c.final_softcap = meta.f32_nonzero("final_logit_softcapping")?;
    let window = meta.usize_or("attention.sliding_window", 0)?;
    if window == 0 {
        return Ok(());
    }
    let base = meta.f32_opt("rope.freq_base_swa")?.unwrap_or(10_000.0);
    c.sliding_window(meta, window, 6, |l, swa| {
        if let (true, Some(r)) = (swa, &mut l.rope) {
            r.base = base;
            r.freq_scale = 1.0;
        }
    })
}

/// The query scale: 1/√head_dim, except the 27B models (`n_layer_27b`
/// layers), which use 1/√(n_embd / n_head) as Google's reference does.
fn query_scale(c: &Config, n_layer_27b: usize) -> f32 {
    match c.n_layer == n_layer_27b {
        true => 1.0 / ((c.n_embd / c.n_head) as f32).sqrt(),
        false => 1.0 / (c.head_dim as f32).sqrt(),
    }
}
