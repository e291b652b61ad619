//! What the hybrid families share: reading the recurrent mixers' sizes and
//! turning a layer into a recurrent one.

use crate::config::{Config, Meta, Mixer, Recurrent};
use crate::ModelError;

/// The largest recurrent size hearth accepts for any `ssm.*` key (far
/// beyond released models; bounds the state a crafted header can ask for).
const MAX_SSM: usize = 1 << 16;

/// A convolution's taps (`kernel`), at least 2 (one of history) and at most
/// 64.
pub(super) fn conv_kernel(meta: &Meta<'_>, k: &str) -> Result<usize, ModelError> {
    match meta.usize(k)? {
        n @ 2..=64 => Ok(n),
        n => Err(meta.bad(k, format!("{n} convolution taps (2 to 64 are supported)"))),
    }
}

/// `ssm.inner_size`, `ssm.state_size`, `ssm.time_step_rank` and
/// `ssm.group_count`, each from 1 to 2¹⁶.
pub(super) fn ssm_sizes(meta: &Meta<'_>) -> Result<[usize; 4], ModelError> {
    let keys = [
        "ssm.inner_size",
        "ssm.state_size",
        "ssm.time_step_rank",
        "ssm.group_count",
    ];
    let mut out = [0; 4];
    for (o, k) in out.iter_mut().zip(keys) {
        *o = meta.usize(k)?;
        if *o == 0 || *o > MAX_SSM {
            return Err(meta.bad(k, format!("{o} (1 to {MAX_SSM} are supported)")));
        }
    }
    Ok(out)
}

/// Makes layer `il` recurrent with `r`: no RoPE and no KV cache.
pub(super) fn set_recurrent(c: &mut Config, il: usize, r: Recurrent) {
    c.layers[il].mixer = Mixer::Recurrent(r);
    c.layers[il].rope = None;
    c.layers[il].window = None;
}

/// The layers whose `attention.head_count_kv` is 0 (Granite hybrids and
/// LFM2 mark their recurrent layers so).
pub(super) fn kv_less_layers(meta: &Meta<'_>, n_layer: usize) -> Result<Vec<bool>, ModelError> {
    Ok(meta
        .per_layer("attention.head_count_kv", n_layer)?
        .iter()
        .map(|&n| n == 0)
        .collect())
}
