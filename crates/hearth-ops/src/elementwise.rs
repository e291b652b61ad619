//! Row-wise and element-wise operations on f32 activations.

use std::sync::OnceLock;

use hearth_quant::{f16_to_f32, f32_to_f16};

use crate::pool::{split, Disjoint, ThreadPool};

/// RMS norm of one row: `out = x / sqrt(mean(x²) + eps) * w`.
/// Squares in f32 and accumulates in f64, as ggml's `rms_norm` does.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    debug_assert!(x.len() == w.len() && x.len() == out.len());
    let sum: f64 = x.iter().map(|&v| (v * v) as f64).sum();
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for ((o, &v), &g) in out.iter_mut().zip(x).zip(w) {
        *o = v * scale * g;
    }
}

/// In-place RMS norm of one row.
pub fn rms_norm_inplace(x: &mut [f32], w: &[f32], eps: f32) {
    debug_assert_eq!(x.len(), w.len());
    let sum: f64 = x.iter().map(|&v| (v * v) as f64).sum();
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for (v, &g) in x.iter_mut().zip(w) {
        *v = *v * scale * g;
    }
}

/// LayerNorm of one row: `out = (x - mean) / sqrt(var + eps) * w + b`
/// (ggml's `norm`, then the weight and bias), accumulated in f64.
pub fn layer_norm(x: &[f32], w: &[f32], b: Option<&[f32]>, eps: f32, out: &mut [f32]) {
    debug_assert!(x.len() == w.len() && x.len() == out.len());
    let n = x.len() as f64;
    let mean = (x.iter().map(|&v| v as f64).sum::<f64>() / n) as f32;
    let mut var = 0f64;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v - mean;
        var += (*o * *o) as f64;
    }
    let scale = 1.0 / ((var / n) as f32 + eps).sqrt();
    for (o, &g) in out.iter_mut().zip(w) {
        *o = *o * scale * g;
    }
    if let Some(b) = b {
        add_inplace(out, b);
    }
}

/// `x += y`.
pub fn add_inplace(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// `x *= s`.
pub fn scale_inplace(x: &mut [f32], s: f32) {
    for a in x.iter_mut() {
        *a *= s;
    }
}

pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// GELU, tanh approximation (ggml's `ggml_gelu_f32`).
pub fn gelu(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    const COEF_A: f32 = 0.044715;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + COEF_A * x * x)).tanh())
}

/// The activation of a feed-forward block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Silu,
    Gelu,
}

/// GELU through a table indexed by the input rounded to f16, as ggml
/// computes it on CPUs (`GGML_GELU_FP16`, `ggml_vec_geglu_f32`): below -10
/// the result is 0, above 10 it is x, else `f16(gelu(f16(x)))`.
pub fn gelu_table(x: f32) -> f32 {
    gelu_lookup(gelu_f16_table(), x, f32_to_f16(x))
}

/// [`gelu_table`] of `x`, whose f16 bits are `t`.
#[inline]
fn gelu_lookup(table: &[f32], x: f32, t: u16) -> f32 {
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        table[usize::from(t)]
    }
}

/// `f32(f16(gelu(f32(t))))` for every f16 bit pattern `t`: [`gelu_table`]'s
/// values, stored widened so that a lookup needs no conversion back.
fn gelu_f16_table() -> &'static [f32] {
    static TABLE: OnceLock<Box<[f32]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|t| f16_to_f32(f32_to_f16(gelu(f16_to_f32(t)))))
            .collect()
    })
}

/// [`gelu_table`] of every element, with the f32 → f16 rounding of the
/// inputs done by the tier's vector kernel (the same round to nearest even,
/// so the results are [`gelu_table`]'s bit for bit).
fn gelu_inplace(x: &mut [f32]) {
    const CHUNK: usize = 64;
    let table = gelu_f16_table();
    let to_f16 = crate::vec::f16_kernels().from_f32;
    let mut idx = [0u16; CHUNK];
    for g in x.chunks_mut(CHUNK) {
        let idx = &mut idx[..g.len()];
        to_f16(g, idx);
        for (g, &t) in g.iter_mut().zip(idx.iter()) {
            *g = gelu_lookup(table, *g, t);
        }
    }
}

/// `gate[i] = gelu_table(gate[i]) * up[i]`.
fn geglu(gate: &mut [f32], up: &[f32]) {
    gelu_inplace(gate);
    for (g, &u) in gate.iter_mut().zip(up) {
        *g *= u;
    }
}

pub fn act_inplace(act: Activation, x: &mut [f32]) {
    match act {
        Activation::Silu => x.iter_mut().for_each(|v| *v = silu(*v)),
        Activation::Gelu => gelu_inplace(x),
    }
}

/// `gate = act(gate) * up`, element-wise.
pub fn gated_act(act: Activation, gate: &mut [f32], up: &[f32]) {
    match act {
        Activation::Silu => {
            for (g, &u) in gate.iter_mut().zip(up) {
                *g = silu(*g) * u;
            }
        }
        Activation::Gelu => geglu(gate, up),
    }
}

/// [`gated_act`] spread over the pool for long inputs.
pub fn gated_act_par(pool: &ThreadPool, act: Activation, gate: &mut [f32], up: &[f32]) {
    par_ranges(pool, gate, &|g, r| gated_act(act, g, &up[r]));
}

/// [`act_inplace`] split over the pool's threads.
pub fn act_par(pool: &ThreadPool, act: Activation, x: &mut [f32]) {
    par_ranges(pool, x, &|part, _| act_inplace(act, part));
}

/// `f(part, range)` over disjoint ranges of `x`, one per pool thread (all
/// of `x` on this thread when it is too short to be worth splitting).
fn par_ranges(
    pool: &ThreadPool,
    x: &mut [f32],
    f: &(dyn Fn(&mut [f32], std::ops::Range<usize>) + Sync),
) {
    const MIN_PARALLEL: usize = 1 << 12;
    let n = x.len();
    if n < MIN_PARALLEL {
        return f(x, 0..n);
    }
    let g = Disjoint::new(x);
    pool.run(&|i, nt| {
        let r = split(n, i, nt);
        // SAFETY: each task owns the range `split` gives it.
        #[allow(unsafe_code)]
        let part = unsafe { g.part(r.clone()) };
        f(part, r);
    });
}

/// Log-softmax of one row into `out`, accumulated in f64 for stability.
pub fn log_softmax(x: &[f32], out: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = x.iter().map(|&v| ((v - max) as f64).exp()).sum();
    let lse = max as f64 + sum.ln();
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v as f64 - lse) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_unit() {
        let x = [3.0f32, 4.0];
        let mut o = [0f32; 2];
        rms_norm(&x, &[1.0, 2.0], 0.0, &mut o);
        let r = (12.5f32).sqrt();
        assert!((o[0] - 3.0 / r).abs() < 1e-6 && (o[1] - 8.0 / r).abs() < 1e-6);
    }

    #[test]
    fn log_softmax_sums_to_one() {
        let x = [1.0f32, 2.0, 3.0, -100.0];
        let mut o = [0f32; 4];
        log_softmax(&x, &mut o);
        let s: f32 = o.iter().map(|v| v.exp()).sum();
        assert!((s - 1.0).abs() < 1e-6);
    }

    /// ggml's table GELU written out: round to f16, GELU, round to f16.
    fn gelu_ref(x: f32) -> f32 {
        if x <= -10.0 {
            0.0
        } else if x >= 10.0 {
            x
        } else {
            f16_to_f32(f32_to_f16(gelu(f16_to_f32(f32_to_f16(x)))))
        }
    }

    #[test]
    fn geglu_matches_the_table_definition_bit_for_bit() {
        let mut seed = 0x9e37_79b9u32;
        let mut xs: Vec<f32> = vec![
            0.0, -0.0, 1e-8, -1e-8, 6e-5, -6e-5, 1e-3, 65504.0, -65504.0, 1e6, -1e6, -10.0, 10.0,
            -9.999, 9.999, -10.001, 10.001, 0.5, -0.5,
        ];
        // A tie between two halves (rounds to even) and its neighbours.
        let tie = f32::from_bits(0x3f80_1000);
        xs.extend([
            tie,
            f32::from_bits(tie.to_bits() - 1),
            f32::from_bits(tie.to_bits() + 1),
        ]);
        while xs.len() < 1000 {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            xs.push((seed as f32 / u32::MAX as f32) * 24.0 - 12.0);
        }
        let up: Vec<f32> = (0..xs.len()).map(|i| 1.0 + (i % 5) as f32 * 0.25).collect();
        let mut gate = xs.clone();
        gated_act(Activation::Gelu, &mut gate, &up);
        for ((&x, &u), &g) in xs.iter().zip(&up).zip(&gate) {
            let want = gelu_ref(x) * u;
            assert_eq!(g.to_bits(), want.to_bits(), "x = {x}: {g} vs {want}");
            assert_eq!(gelu_table(x).to_bits(), gelu_ref(x).to_bits(), "x = {x}");
        }
        // The plain activation (BERT's feed-forward), alone and split over
        // a pool, gives the same bits.
        let pool = crate::ThreadPool::new(2);
        let long: Vec<f32> = xs.iter().cycle().take(5 << 10).copied().collect();
        let (mut alone, mut split) = (long.clone(), long.clone());
        act_inplace(Activation::Gelu, &mut alone);
        act_par(&pool, Activation::Gelu, &mut split);
        for ((&x, &a), &p) in long.iter().zip(&alone).zip(&split) {
            assert_eq!(a.to_bits(), gelu_ref(x).to_bits(), "x = {x}");
            assert_eq!(p.to_bits(), a.to_bits(), "x = {x}");
        }
        let mut nan = [f32::NAN];
        gated_act(Activation::Gelu, &mut nan, &[1.0]);
        assert!(nan[0].is_nan());
    }

    #[test]
    fn activations() {
        assert!((silu(0.0)).abs() < 1e-7);
        assert!((gelu(1.0) - 0.841192).abs() < 1e-4);
    }
}
