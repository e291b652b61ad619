//! Encoders of the BERT family: one builder wiring the shared blocks for
//! every entry, each entry choosing its positions and feed-forward.

use hearth_ops::{Activation, RopeKind};

use super::Meta;
use crate::config::{Config, Ffn, NormKind, Norms};
use crate::ModelError;

/// BERT (all-MiniLM, bge, mxbai, arctic-embed; XLM-RoBERTa models such as
/// bge-m3 and bge-reranker, whose converted files carry a Unigram vocab and
/// a position table already starting past the padding index): absolute
/// position and token-type embeddings, a plain GELU feed-forward.
pub(super) fn bert(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    encoder(meta, c, Activation::Gelu)?;
    for l in c.layers.iter_mut() {
        l.rope = None;
        l.ffn = Ffn::Plain;
    }
    Ok(())
}

/// nomic-bert (nomic-embed-text): no position embeddings but NeoX RoPE on
/// Q and K, a fused QKV projection (taken as the attention block finds it)
/// and a gated SiLU feed-forward.
pub(super) fn nomic_bert(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    encoder(meta, c, Activation::Silu)?;
    c.set_rope_kind(RopeKind::Neox);
    for l in c.layers.iter_mut() {
        l.ffn = Ffn::Gated;
    }
    Ok(())
}

/// What every entry shares: non-causal attention with biases, the encoder
/// input (token types, LayerNorm), and LayerNorms on the residual stream
/// after each block.
fn encoder(meta: &Meta<'_>, c: &mut Config, act: Activation) -> Result<(), ModelError> {
    let causal = meta.file.get(&meta.key("attention.causal"));
    if let Some(v) = causal {
        if v.as_bool() != Some(false) {
            return Err(meta.bad("attention.causal", "an encoder's attention is not causal"));
        }
    }
    c.causal = false;
    c.encoder_input = true;
    c.norm = NormKind::Layer;
    c.act = act;
    c.norms = Norms {
        attn: None,
        post_attn: Some("attn_output_norm"),
        ffn: None,
        post_ffn: Some("layer_output_norm"),
    };
    c.norm_after_residual = true;
    c.output_norm = None;
    Ok(())
}
