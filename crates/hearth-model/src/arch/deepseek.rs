//! DeepSeek-V2/V3 (and the models converted to its layout: Kimi K2,
//! GigaChat 3, ...): multi-head latent attention, leading dense layers,
//! then mixture-of-experts layers with shared experts and, from V3 on,
//! sigmoid routing with a selection bias.

use hearth_ops::{Gating, RopeKind};

use super::{moe, Meta};
use crate::config::{Config, Mixer, MlaSpec};
use crate::ModelError;

pub(super) fn deepseek2(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.set_rope_kind(RopeKind::Norm);
    let kv_lora_rank = meta.usize("attention.kv_lora_rank")?;
    // The lite variants project queries directly (`attn_q`).
    let q_lora_rank = match meta.file.tensor("blk.0.attn_q_a.weight") {
        Some(_) => meta.usize("attention.q_lora_rank")?,
        None => 0,
    };
    let rope = c.layers[0]
        .rope
        .clone()
        .ok_or_else(|| meta.bad("rope.dimension_count", "latent attention needs RoPE"))?;
    let n_rot = rope.n_rot;
    let k_mla = meta.usize_or("attention.key_length_mla", c.head_dim)?;
    let v_head = meta.usize_or("attention.value_length_mla", c.head_dim)?;
    let v_len = meta.usize_or("attention.value_length", c.head_dim)?;
    if kv_lora_rank == 0 || c.head_dim != kv_lora_rank + n_rot || v_len != kv_lora_rank {
        return Err(meta.bad(
            "attention.key_length",
            format!(
                "keys of {} and values of {v_len} with a latent of {kv_lora_rank} and {n_rot} \
                 rotated dims: hearth runs the split (attn_k_b / attn_v_b) latent layout",
                c.head_dim
            ),
        ));
    }
    if !(n_rot < k_mla
        && k_mla <= crate::config::MAX_FF
        && (1..=crate::config::MAX_FF).contains(&v_head))
    {
        return Err(meta.bad(
            "attention.key_length_mla",
            format!("{k_mla} per head with {n_rot} rotated, values {v_head}"),
        ));
    }
    if meta.f32_nonzero("attention.temperature_scale")?.is_some() {
        return Err(meta.bad(
            "attention.temperature_scale",
            "attention temperature tuning is not supported",
        ));
    }
    c.mla = Some(MlaSpec {
        q_lora_rank,
        kv_lora_rank,
        n_rot,
        qk_nope: k_mla - n_rot,
        v_head,
    });
    for l in &mut c.layers {
        l.mixer = Mixer::Mla;
    }
    // YaRN's magnitude correction, as llama.cpp computes it for DeepSeek:
    // the rotation gets the context's attention factor, and q·k the square
    // of mscale (the file's multiplier is stored divided by 10).
    let f = 1.0 / rope.freq_scale;
    let log_mul = meta
        .f32_opt("rope.scaling.yarn_log_multiplier")?
        .unwrap_or(0.0)
        / 0.1;
    let get_mscale = |scale: f32, m: f32| {
        if scale <= 1.0 {
            1.0
        } else {
            0.1 * m * scale.ln() + 1.0
        }
    };
    let attn_factor = match rope.yarn {
        Some(y) if y.ext_factor != 0.0 => {
            let base = match log_mul {
                0.0 => get_mscale(f, 1.0),
                m => get_mscale(f, m) / get_mscale(f, m),
            };
            base / (1.0 + 0.1 * f.ln()) * rope.attn_factor
        }
        _ => rope.attn_factor,
    };
    for r in c.layers.iter_mut().filter_map(|l| l.rope.as_mut()) {
        r.attn_factor = attn_factor;
    }
    let mscale = attn_factor * (1.0 + 0.1 * f.ln()) * (1.0 + 0.1 * log_mul * f.ln());
    c.attn_scale = mscale * mscale / (k_mla as f32).sqrt();
    // Routing: softmax unless the file says (V3: sigmoid).
    let gating = moe::gating(meta, Gating::Softmax)?;
    let m = moe::experts(meta, c, true, gating, false)?;
    moe::weights_norm_and_scale(meta, m)?;
    m.n_ff_shared = meta.usize("expert_shared_count")? * m.n_ff;
    // llama.cpp's graph passes no scales to the dense and shared
    // feed-forwards: `ffn_scales` stays off.
    Ok(())
}
