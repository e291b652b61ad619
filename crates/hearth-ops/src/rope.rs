//! Rotary position embedding, in ggml's two layouts.
//!
//! `Norm` rotates adjacent pairs (x[2i], x[2i+1]) (LLaMA); `Neox` rotates
//! (x[i], x[i + d/2]) (GPT-NeoX, Gemma, Qwen2). The angle for pair i at
//! position p is `p · freq_scale · base^(-2i/n_rot)`, computed by repeated
//! multiplication as ggml's `rope_yarn` cache does, so rounding follows it.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeKind {
    Norm,
    Neox,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rope {
    pub kind: RopeKind,
    /// Rotated dimensions per head (the rest pass through).
    pub n_rot: usize,
    pub base: f32,
    /// Linear scaling: 1 / scaling factor.
    pub freq_scale: f32,
}

impl Rope {
    /// Fills `cs` with (cos, sin) pairs for position `pos` (length n_rot/2).
    pub fn angles(&self, pos: f32, cs: &mut [(f32, f32)]) {
        let theta_scale = self.base.powf(-2.0 / self.n_rot as f32);
        let mut theta = pos;
        for c in cs.iter_mut().take(self.n_rot / 2) {
            let t = self.freq_scale * theta;
            *c = (t.cos(), t.sin());
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
        let r = Rope {
            kind: RopeKind::Neox,
            n_rot: 8,
            base: 10000.0,
            freq_scale: 1.0,
        };
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
}
