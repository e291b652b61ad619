//! Rotary position embedding, in ggml's two layouts.
//!
//! `Norm` rotates adjacent pairs (x[2i], x[2i+1]) (LLaMA); `Neox` rotates
//! (x[i], x[i + d/2]) (GPT-NeoX, Gemma, Qwen2). The angle for pair i at
//! position p is `p · freq_scale · base^(-2i/n_rot) / factor[i]`, computed by
//! repeated multiplication as ggml's `rope_cache_init` does, so rounding
//! follows it. Per-dimension factors carry Llama 3's `rope_freqs` and
//! LongRoPE's long/short factors; YaRN blends interpolated and extrapolated
//! angles per dimension and scales the magnitude (ggml's `rope_yarn`).

use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeKind {
    Norm,
    Neox,
}

/// YaRN's extrapolation mix (ggml's `ext_factor`, `beta_fast`, `beta_slow`
/// and the training context it corrects for).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Yarn {
    pub ext_factor: f32,
    pub beta_fast: f32,
    pub beta_slow: f32,
    pub n_ctx_orig: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rope {
    pub kind: RopeKind,
    /// Rotated dimensions per head (the rest pass through).
    pub n_rot: usize,
    pub base: f32,
    /// Linear scaling: 1 / scaling factor.
    pub freq_scale: f32,
    /// Per-pair divisors of the angle (n_rot / 2 of them), or none.
    pub factors: Option<Arc<[f32]>>,
    /// Multiplier on cos and sin (ggml's `attn_factor`, YaRN's mscale).
    pub attn_factor: f32,
    pub yarn: Option<Yarn>,
}

impl Rope {
    /// Plain RoPE: no factors, no YaRN, unit magnitude.
    pub fn new(kind: RopeKind, n_rot: usize, base: f32, freq_scale: f32) -> Rope {
        Rope {
            kind,
            n_rot,
            base,
            freq_scale,
            factors: None,
            attn_factor: 1.0,
            yarn: None,
        }
    }

    /// YaRN's correction range `[start, end]` of pair dimensions (ggml's
    /// `ggml_rope_yarn_corr_dims`).
    fn corr_dims(&self, y: &Yarn) -> (f32, f32) {
        let n = self.n_rot as f32;
        let dim = |beta: f32| {
            n * (y.n_ctx_orig as f32 / (beta * 2.0 * std::f32::consts::PI)).ln()
                / (2.0 * self.base.ln())
        };
        let start = dim(y.beta_fast).floor().max(0.0);
        let end = dim(y.beta_slow).ceil().min(n - 1.0);
        (start, end)
    }

    /// Fills `cs` with (cos, sin) pairs for position `pos` (length n_rot/2).
    pub fn angles(&self, pos: f32, cs: &mut [(f32, f32)]) {
        let theta_scale = self.base.powf(-2.0 / self.n_rot as f32);
        let mut theta = pos;
        let yarn = self
            .yarn
            .filter(|y| y.ext_factor != 0.0)
            .map(|y| (y, self.corr_dims(&y)));
        for (i, c) in cs.iter_mut().take(self.n_rot / 2).enumerate() {
            let ff = self.factors.as_ref().map_or(1.0, |f| f[i]);
            let extrap = theta / ff;
            let interp = self.freq_scale * extrap;
            let mut mscale = self.attn_factor;
            let t = match yarn {
                None => interp,
                Some((y, (lo, hi))) => {
                    let r = (i as f32 - lo) / (hi - lo).max(0.001);
                    let mix = (1.0 - r.clamp(0.0, 1.0)) * y.ext_factor;
                    mscale *= 1.0 + 0.1 * (1.0 / self.freq_scale).ln();
                    interp * (1.0 - mix) + extrap * mix
                }
            };
            *c = (t.cos() * mscale, t.sin() * mscale);
            theta *= theta_scale;
        }
    }

    /// Rotates every head of `x` (heads of `head_dim` laid end to end) using
    /// the precomputed `cs` from [`Rope::angles`].
    pub fn apply(&self, x: &mut [f32], head_dim: usize, cs: &[(f32, f32)]) {
        let half = self.n_rot / 2;
        for head in x.chunks_exact_mut(head_dim) {
            match self.kind {
                RopeKind::Norm => {
                    for (i, &(c, s)) in cs.iter().enumerate().take(half) {
                        let (a, b) = (head[2 * i], head[2 * i + 1]);
                        head[2 * i] = a * c - b * s;
                        head[2 * i + 1] = a * s + b * c;
                    }
                }
                RopeKind::Neox => {
                    for (i, &(c, s)) in cs.iter().enumerate().take(half) {
                        let (a, b) = (head[i], head[i + half]);
                        head[i] = a * c - b * s;
                        head[i + half] = a * s + b * c;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_preserves_norm_and_composes() {
        let r = Rope::new(RopeKind::Neox, 8, 10000.0, 1.0);
        let mut x: Vec<f32> = (0..8).map(|i| i as f32 * 0.3 - 1.0).collect();
        let n0: f32 = x.iter().map(|v| v * v).sum();
        let mut cs = vec![(0.0, 0.0); 4];
        r.angles(5.0, &mut cs);
        r.apply(&mut x, 8, &cs);
        let n1: f32 = x.iter().map(|v| v * v).sum();
        assert!((n0 - n1).abs() < 1e-4);
        r.angles(-5.0, &mut cs);
        r.apply(&mut x, 8, &cs);
        for (i, v) in x.iter().enumerate() {
            assert!((v - (i as f32 * 0.3 - 1.0)).abs() < 1e-5);
        }
    }

    #[test]
    fn factors_divide_the_angle() {
        let mut r = Rope::new(RopeKind::Norm, 4, 10000.0, 1.0);
        r.factors = Some(vec![2.0, 4.0].into());
        let mut cs = vec![(0.0, 0.0); 2];
        r.angles(3.0, &mut cs);
        let t1 = 3.0 * 10000f32.powf(-0.5) / 4.0;
        assert!((cs[0].0 - 1.5f32.cos()).abs() < 1e-6);
        assert!((cs[1].1 - t1.sin()).abs() < 1e-6);
    }
}
