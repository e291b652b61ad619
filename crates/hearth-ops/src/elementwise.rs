//! Row-wise and element-wise operations on f32 activations.

use std::sync::OnceLock;

use hearth_quant::{f16_to_f32, f32_to_f16};

use crate::attention::F16;
use crate::pool::{split, Disjoint, ThreadPool};
use crate::rows::rows_par;
use crate::vexp::softmax_fast;

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
    let mean = (sum_f64(x, |v| v) / n) as f32;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v - mean;
    }
    let var = sum_f64(out, |o| o * o);
    let scale = 1.0 / ((var / n) as f32 + eps).sqrt();
    match b {
        Some(b) => {
            for ((o, &g), &b) in out.iter_mut().zip(w).zip(b) {
                *o = *o * scale * g + b;
            }
        }
        None => {
            for (o, &g) in out.iter_mut().zip(w) {
                *o = *o * scale * g;
            }
        }
    }
}

/// Σ f(v) over `x` in f64, in eight interleaved partial sums: independent
/// additions rather than one chain, whose order moves an f64 sum of f32
/// values far less than an f32 rounding step.
#[inline]
fn sum_f64(x: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut acc = [0f64; 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f64::from(f(v));
        }
    }
    for (a, &v) in acc.iter_mut().zip(tail) {
        *a += f64::from(f(v));
    }
    acc.iter().sum()
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
    let mut v = [x];
    crate::vec::lookup_f16_ref(gelu_f16_table(), &mut v);
    v[0]
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
    (crate::vec::f16_kernels().lookup_f16)(gelu_f16_table(), x);
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

/// `x = tanh(x)`, element-wise (a reranker's classification head).
pub fn tanh_inplace(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = v.tanh());
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
pub fn act_inplace_par(pool: &ThreadPool, act: Activation, x: &mut [f32]) {
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

/// [`layer_norm`] of every row of `x` into `out`, the rows spread over the
/// pool.
pub fn layer_norm_rows(
    pool: &ThreadPool,
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    eps: f32,
    out: &mut [f32],
) {
    let d = w.len();
    assert_eq!(x.len(), out.len(), "layer_norm_rows: shape");
    rows_par(pool, out, d, &|o, first| {
        let x = &x[first * d..first * d + o.len()];
        for (o, r) in o.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
            layer_norm(r, w, b, eps, o);
        }
    });
}

/// `x[r] += b` for every row `r` of `x` (a bias), spread over the pool.
pub fn add_rows(pool: &ThreadPool, x: &mut [f32], b: &[f32]) {
    rows_par(pool, x, b.len(), &|part, _| {
        part.chunks_exact_mut(b.len())
            .for_each(|r| add_inplace(r, b))
    });
}

/// [`add_inplace`] spread over the pool.
pub fn add_inplace_par(pool: &ThreadPool, x: &mut [f32], y: &[f32]) {
    assert_eq!(x.len(), y.len(), "add_inplace_par: lengths");
    par_ranges(pool, x, &|part, r| add_inplace(part, &y[r]));
}

/// `out` row `r` (`d` values) = f16 of `x[r·stride..r·stride + d]`, round
/// to nearest even, by the tier's vector kernel, the rows spread over the
/// pool (`stride = d` for a whole matrix; a larger one picks some columns
/// of wider rows).
pub fn to_f16_rows(pool: &ThreadPool, x: &[f32], stride: usize, out: &mut [F16], d: usize) {
    let rows = out.len() / d.max(1);
    assert!(
        d > 0
            && stride >= d
            && out.len() == rows * d
            && (rows == 0 || (rows - 1) * stride + d <= x.len()),
        "to_f16_rows: shape"
    );
    // SAFETY: `F16` is a transparent wrapper of `u16`.
    #[allow(unsafe_code)]
    let bits = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u16>(), out.len()) };
    let from_f32 = crate::vec::f16_kernels().from_f32;
    rows_par(pool, bits, d, &|part, first| {
        for (i, o) in part.chunks_exact_mut(d).enumerate() {
            from_f32(&x[(first + i) * stride..][..d], o);
        }
    });
}

/// Softmax of one row in place as ggml computes it: `exp(x - max)`, summed
/// in f64, then scaled by the f32 reciprocal of the sum.
pub fn softmax_inplace(x: &mut [f32]) {
    softmax_with(x, f32::exp);
}

/// [`softmax_inplace`]'s steps with `exp` as the exponential.
pub(crate) fn softmax_with(x: &mut [f32], exp: impl Fn(f32) -> f32) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f64;
    for v in x.iter_mut() {
        *v = exp(*v - max);
        sum += f64::from(*v);
    }
    let inv = (1.0 / sum) as f32;
    x.iter_mut().for_each(|v| *v *= inv);
}

/// Softmax of every row of `n` values of `x` (the steps of
/// [`softmax_inplace`] with the vectorised `exp` of
/// [`crate::vexp::softmax_fast`]), the rows spread over the pool.
pub fn softmax_rows(pool: &ThreadPool, x: &mut [f32], n: usize) {
    assert!(n > 0 && x.len() / n * n == x.len(), "softmax_rows: shape");
    rows_par(pool, x, n, &|part, _| {
        part.chunks_exact_mut(n).for_each(softmax_fast)
    });
}

/// The columns of a 1-D convolution as a matrix (im2col): for input `x` of
/// `t_in` frames of `channels` values (frame-major), kernel width `kernel`,
/// `stride` and zero padding `pad` on both sides, returns `t_out` rows of
/// `channels × kernel` values (channel-major, then kernel tap), so that the
/// convolution is one matmul with its weights as `[out][channels][kernel]`.
pub fn im2col_1d(
    x: &[f32],
    t_in: usize,
    channels: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
) -> (Vec<f32>, usize) {
    assert_eq!(x.len(), t_in * channels, "im2col_1d: input shape");
    assert!(kernel > 0 && stride > 0, "im2col_1d: kernel and stride");
    let span = t_in + 2 * pad;
    let t_out = if span < kernel {
        0
    } else {
        (span - kernel) / stride + 1
    };
    let cols = channels * kernel;
    let mut col = vec![0f32; t_out * cols];
    for (t, row) in col.chunks_exact_mut(cols).enumerate() {
        for j in 0..kernel {
            let Some(src) = (t * stride + j).checked_sub(pad).filter(|&s| s < t_in) else {
                continue;
            };
            let frame = &x[src * channels..(src + 1) * channels];
            for (ch, &v) in frame.iter().enumerate() {
                row[ch * kernel + j] = v;
            }
        }
    }
    (col, t_out)
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

/// [`log_softmax`] with the sum of exponentials taken by the vectorised
/// `exp` of [`crate::vexp::exp_inplace`] (within 2 ulp each, still summed
/// in f64): the same values to about 1e-6, several times faster over a
/// vocabulary.
pub fn log_softmax_fast(x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "log_softmax_fast: lengths");
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v - max;
    }
    crate::vexp::exp_inplace(out);
    let sum: f64 = out.iter().map(|&v| f64::from(v)).sum();
    let lse = f64::from(max) + sum.ln();
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (f64::from(v) - lse) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_rows_match_one_row_at_a_time() {
        let pool = ThreadPool::new(2);
        let n = 37;
        let x: Vec<f32> = (0..n * 40)
            .map(|i| ((i * 7919) % 101) as f32 / 9.0 - 5.0)
            .collect();
        let mut par = x.clone();
        softmax_rows(&pool, &mut par, n);
        for (r, row) in x.chunks_exact(n).enumerate() {
            let mut one = row.to_vec();
            softmax_fast(&mut one);
            assert_eq!(&par[r * n..(r + 1) * n], &one[..]);
            let sum: f32 = one.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5);
        }
        let mut masked = [0.0, f32::NEG_INFINITY, 0.0];
        softmax_inplace(&mut masked);
        assert_eq!(masked, [0.5, 0.0, 0.5]);
    }

    #[test]
    fn row_helpers_on_the_pool_match_one_thread() {
        let pool = ThreadPool::new(2);
        let (d, rows) = (48, 301);
        let x: Vec<f32> = (0..d * rows)
            .map(|i| ((i * 7919) % 103) as f32 / 11.0 - 4.0)
            .collect();
        let w: Vec<f32> = (0..d).map(|i| 0.5 + i as f32 / 50.0).collect();
        let b: Vec<f32> = (0..d).map(|i| i as f32 / 30.0 - 0.7).collect();
        let mut par = vec![0f32; x.len()];
        layer_norm_rows(&pool, &x, &w, Some(&b), 1e-5, &mut par);
        let mut one = vec![0f32; d];
        for (r, row) in x.chunks_exact(d).enumerate() {
            layer_norm(row, &w, Some(&b), 1e-5, &mut one);
            assert_eq!(&par[r * d..(r + 1) * d], &one[..], "row {r}");
        }
        let mut biased = x.clone();
        add_rows(&pool, &mut biased, &b);
        let mut summed = x.clone();
        add_inplace_par(&pool, &mut summed, &par);
        for i in 0..x.len() {
            assert_eq!(biased[i], x[i] + b[i % d]);
            assert_eq!(summed[i], x[i] + par[i]);
        }
        let mut half = vec![F16(0); x.len()];
        to_f16_rows(&pool, &x, d, &mut half, d);
        assert!(half.iter().zip(&x).all(|(h, &v)| h.0 == f32_to_f16(v)));
        // Every other half-row of rows twice as wide.
        let mut cols = vec![F16(0); x.len() / 2];
        to_f16_rows(&pool, &x[d / 2..], d, &mut cols, d / 2);
        for (r, row) in cols.chunks_exact(d / 2).enumerate() {
            let src = &x[r * d + d / 2..(r + 1) * d];
            assert!(row.iter().zip(src).all(|(h, &v)| h.0 == f32_to_f16(v)));
        }
        // Short inputs stay on this thread, with the same results.
        let mut short = [F16(0); 3];
        to_f16_rows(&pool, &[1.0, -2.5, 65504.0], 3, &mut short, 3);
        assert_eq!(short.map(|h| f16_to_f32(h.0)), [1.0, -2.5, 65504.0]);
    }

    #[test]
    fn im2col_1d_against_a_direct_convolution() {
        // 2 channels, 5 frames, width 3, stride 2, padding 1.
        let (ch, t_in) = (2, 5);
        let x: Vec<f32> = (0..ch * t_in).map(|i| i as f32 + 1.0).collect();
        let w: Vec<f32> = (0..ch * 3).map(|i| (i as f32 - 2.5) / 3.0).collect();
        let (col, t_out) = im2col_1d(&x, t_in, ch, 3, 2, 1);
        assert_eq!(t_out, 3);
        for t in 0..t_out {
            let mut direct = 0f32;
            for c in 0..ch {
                for j in 0..3 {
                    let src = (t * 2 + j) as isize - 1;
                    if (0..t_in as isize).contains(&src) {
                        direct += w[c * 3 + j] * x[src as usize * ch + c];
                    }
                }
            }
            let via: f32 = col[t * ch * 3..(t + 1) * ch * 3]
                .iter()
                .zip(&w)
                .map(|(a, b)| a * b)
                .sum();
            assert!((via - direct).abs() < 1e-5, "{t}: {via} vs {direct}");
        }
        assert_eq!(im2col_1d(&[], 0, 4, 3, 1, 0).1, 0);
    }

    #[test]
    fn act_inplace_par_matches_act_inplace() {
        let pool = ThreadPool::new(2);
        let x: Vec<f32> = (0..10_000).map(|i| (i as f32 - 5000.0) / 400.0).collect();
        let (mut a, mut b) = (x.clone(), x);
        act_inplace(Activation::Gelu, &mut a);
        act_inplace_par(&pool, Activation::Gelu, &mut b);
        assert_eq!(a, b);
    }

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

    #[test]
    fn log_softmax_fast_matches_log_softmax() {
        let x: Vec<f32> = (0..51_865)
            .map(|i| ((i * 7919) % 4001) as f32 / 150.0 - 20.0)
            .chain([f32::NEG_INFINITY, -1e30, 30.0])
            .collect();
        let (mut want, mut got) = (vec![0f32; x.len()], vec![0f32; x.len()]);
        log_softmax(&x, &mut want);
        log_softmax_fast(&x, &mut got);
        for (i, (&w, &g)) in want.iter().zip(&got).enumerate() {
            if w == f32::NEG_INFINITY {
                assert_eq!(g, w, "{i}");
            } else {
                assert!((w - g).abs() <= 1e-6 * w.abs().max(1.0), "{i}: {g} vs {w}");
            }
        }
        let s: f64 = got.iter().map(|&v| f64::from(v).exp()).sum();
        assert!((s - 1.0).abs() < 1e-5, "{s}");
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
        act_inplace_par(&pool, Activation::Gelu, &mut split);
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
