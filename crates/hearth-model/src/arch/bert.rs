//! Encoders of the BERT family.

use hearth_ops::Activation;

use super::Meta;
use crate::config::{Config, Ffn, NormKind, Norms};
use crate::ModelError;

/// BERT (all-MiniLM, bge, mxbai, arctic-embed): absolute position and
/// token-type embeddings with a LayerNorm on the input, non-causal
/// attention with biases and no RoPE, a plain GELU feed-forward, and
/// LayerNorms on the residual stream after each block.
pub(super) fn bert(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    let causal = meta.file.get(&meta.key("attention.causal"));
    if let Some(v) = causal {
        if v.as_bool() != Some(false) {
            return Err(meta.bad("attention.causal", "BERT's attention is not causal"));
        }
    }
    c.causal = false;
    c.encoder_input = true;
    c.norm = NormKind::Layer;
    c.act = Activation::Gelu;
    c.norms = Norms {
        attn: None,
        post_attn: Some("attn_output_norm"),
        ffn: None,
        post_ffn: Some("layer_output_norm"),
    };
    c.norm_after_residual = true;
    c.output_norm = None;
    for l in c.layers.iter_mut() {
        l.rope = None;
        l.ffn = Ffn::Plain;
    }
    Ok(())
}
