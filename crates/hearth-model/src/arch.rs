//! One small builder per architecture: read its own hyper-parameters and
//! decide how the shared blocks are wired. Everything else is shared.

use hearth_ops::{Activation, RopeKind};

use crate::config::{common, Arch, Config, Meta};
use crate::ModelError;

/// Builds the [`Config`] for `arch` from the file's metadata.
pub(crate) fn build(meta: &Meta<'_>, arch: Arch, n_vocab: usize) -> Result<Config, ModelError> {
    let mut c = common(meta, arch, n_vocab)?;
    match arch {
        Arch::Llama => {
            // LLaMA, Mistral, TinyLlama, SmolLM: RoPE on adjacent pairs, SiLU.
            for l in &mut c.layers {
                l.rope.kind = RopeKind::Norm;
            }
        }
        Arch::Qwen2 => {
            c.qkv_bias = true;
            for l in &mut c.layers {
                l.rope.kind = RopeKind::Neox;
            }
        }
        Arch::Gemma3 => gemma3(meta, &mut c)?,
    }
    Ok(c)
}

/// Gemma 3: √n_embd embedding scale, QK-norm, post-attention and post-FFN
/// norms, GELU, and every 6th layer global (layers 5, 11, ...) with the
/// file's RoPE base; the others attend within a sliding window with base
/// 10 000 and no scaling.
fn gemma3(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    const SWA_PERIOD: usize = 6;
    const SWA_ROPE_BASE: f32 = 10_000.0;
    c.act = Activation::Gelu;
    c.embed_scale = Some((c.n_embd as f32).sqrt());
    c.qk_norm = true;
    c.post_norms = true;
    c.attn_scale = 1.0 / (c.head_dim as f32).sqrt();
    c.final_softcap = meta.f32_opt("final_logit_softcapping")?;
    c.attn_softcap = meta.f32_opt("attn_logit_softcapping")?;
    let window = meta.usize_or("attention.sliding_window", 0)?;
    for (i, l) in c.layers.iter_mut().enumerate() {
        l.rope.kind = RopeKind::Neox;
        if window > 0 && i % SWA_PERIOD < SWA_PERIOD - 1 {
            l.window = Some(window);
            l.rope.base = SWA_ROPE_BASE;
            l.rope.freq_scale = 1.0;
        }
    }
    Ok(())
}
