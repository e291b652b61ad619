//! Importance-weighted Q2_K … Q6_K (`quantize_row_q*_K_impl` of
//! ggml-quants.c): the sub-block scales are searched under the importance
//! weights, and the scales themselves are quantized by `make_qp_quants` /
//! `make_qx_quants` weighted by each sub-block's total weight.

use super::search::{importance, make_qkx3_quants, make_qp_quants, make_qx_quants, GROUP_MAX_EPS};
use crate::scalar::kquantize::{
    k4_requantize, pack_q4k, pack_q5k, q2k_finish, q3k_finish, q6k_finish,
};
use crate::scalar::kquants::{wr_f16, QK_K};

fn sum_squares(x: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for &v in x {
        s += v * v;
    }
    s
}

fn sum(x: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for &v in x {
        s += v;
    }
    s
}

/// One row of Q2_K (84-byte blocks).
pub(crate) fn quantize_q2_k(src: &[f32], dst: &mut [u8], qw: &[f32]) {
    for (i, (x, y)) in src
        .chunks_exact(QK_K)
        .zip(dst.chunks_exact_mut(84))
        .enumerate()
    {
        let sigma2 = sum_squares(x) / QK_K as f32;
        let mut l = [0u8; QK_K];
        let mut aux = [0u8; 16];
        let (mut scales, mut mins, mut sw) = ([0.0f32; 16], [0.0f32; 16], [0.0f32; 16]);
        for j in 0..16 {
            let q = &qw[QK_K * i + 16 * j..][..16];
            let xs = &x[16 * j..16 * j + 16];
            let w: [f32; 16] = importance(xs, q, sigma2);
            sw[j] = sum(&w);
            (scales[j], mins[j]) = make_qkx3_quants(
                3,
                xs,
                Some(&w),
                &mut l[16 * j..16 * j + 16],
                &mut aux,
                -0.9,
                0.05,
                36,
                false,
            );
        }
        let (mut ls, mut lm) = ([0u8; 16], [0u8; 16]);
        let dm = make_qp_quants(15, &scales, &mut ls, &sw);
        let mm = make_qp_quants(15, &mins, &mut lm, &sw);
        let (sc, rest) = y.split_at_mut(16);
        wr_f16(rest, 64, dm);
        wr_f16(rest, 66, mm);
        for j in 0..16 {
            sc[j] = ls[j] | (lm[j] << 4);
        }
        q2k_finish(x, y, &mut l);
    }
}

/// One row of Q3_K (110-byte blocks).
pub(crate) fn quantize_q3_k(src: &[f32], dst: &mut [u8], qw: &[f32]) {
    for (i, (x, y)) in src
        .chunks_exact(QK_K)
        .zip(dst.chunks_exact_mut(110))
        .enumerate()
    {
        let sigma2 = 2.0 * sum_squares(x) / QK_K as f32;
        let mut l = [0i8; QK_K];
        let (mut scales, mut sw) = ([0.0f32; 16], [0.0f32; 16]);
        for j in 0..16 {
            let q = &qw[QK_K * i + 16 * j..][..16];
            let xs = &x[16 * j..16 * j + 16];
            let w: [f32; 16] = importance(xs, q, sigma2);
            sw[j] = sum(&w);
            scales[j] = make_qx_quants(4, xs, &mut l[16 * j..16 * j + 16], 1, Some(&w));
        }
        let (sc, dbytes) = y[96..].split_at_mut(12);
        sc.fill(0);
        let mut ls = [0i8; 16];
        let d_block = make_qx_quants(32, &scales, &mut ls, 1, Some(&sw));
        for j in 0..16 {
            let v = ls[j] as i32;
            if j < 8 {
                sc[j] = (v & 0x0f) as u8;
            } else {
                sc[j - 8] |= ((v & 0x0f) << 4) as u8;
            }
            sc[j % 4 + 8] |= ((v >> 4) << (2 * (j / 4))) as u8;
        }
        wr_f16(dbytes, 0, d_block);
        q3k_finish(x, y, &mut l);
    }
}

/// The shared body of Q4_K and Q5_K: sub-block scales and mins under the
/// importance weights, their 6-bit codes, and the requantized values.
fn k4_impl(x: &[f32], q: &[f32], y: &mut [u8], nmax: i32, l: &mut [u8; QK_K]) {
    let sigma2 = 2.0 * sum_squares(x) / QK_K as f32;
    let mut aux = [0u8; 32];
    let (mut scales, mut mins, mut sw) = ([0.0f32; 8], [0.0f32; 8], [0.0f32; 8]);
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let w: [f32; 32] = importance(xs, &q[32 * j..], sigma2);
        sw[j] = sum(&w);
        (scales[j], mins[j]) = make_qkx3_quants(
            nmax,
            xs,
            Some(&w),
            &mut l[32 * j..32 * j + 32],
            &mut aux,
            -0.9,
            0.05,
            36,
            false,
        );
    }
    let (mut ls, mut lm) = ([0u8; 8], [0u8; 8]);
    let d_block = make_qp_quants(63, &scales, &mut ls, &sw);
    let m_block = make_qp_quants(63, &mins, &mut lm, &sw);
    let sc = &mut y[4..16];
    for j in 0..8 {
        let (s, m) = (ls[j].min(63), lm[j].min(63));
        if j < 4 {
            sc[j] = s;
            sc[j + 4] = m;
        } else {
            sc[j + 4] = (s & 0x0f) | ((m & 0x0f) << 4);
            sc[j - 4] |= (s >> 4) << 6;
            sc[j] |= (m >> 4) << 6;
        }
    }
    wr_f16(y, 0, d_block);
    wr_f16(y, 2, m_block);
    k4_requantize(x, y, nmax, l);
}

/// One row of Q4_K (144-byte blocks).
pub(crate) fn quantize_q4_k(src: &[f32], dst: &mut [u8], qw: &[f32]) {
    for (i, (x, y)) in src
        .chunks_exact(QK_K)
        .zip(dst.chunks_exact_mut(144))
        .enumerate()
    {
        let mut l = [0u8; QK_K];
        k4_impl(x, &qw[QK_K * i..QK_K * (i + 1)], y, 15, &mut l);
        pack_q4k(&l, y);
    }
}

/// One row of Q5_K (176-byte blocks).
pub(crate) fn quantize_q5_k(src: &[f32], dst: &mut [u8], qw: &[f32]) {
    for (i, (x, y)) in src
        .chunks_exact(QK_K)
        .zip(dst.chunks_exact_mut(176))
        .enumerate()
    {
        let mut l = [0u8; QK_K];
        k4_impl(x, &qw[QK_K * i..QK_K * (i + 1)], y, 31, &mut l);
        pack_q5k(&l, y);
    }
}

/// One row of Q6_K (210-byte blocks): the importance weights are used
/// as they are (no σ² term).
pub(crate) fn quantize_q6_k(src: &[f32], dst: &mut [u8], qw: &[f32]) {
    for (i, (x, y)) in src
        .chunks_exact(QK_K)
        .zip(dst.chunks_exact_mut(210))
        .enumerate()
    {
        let mut l = [0i8; QK_K];
        let mut scales = [0.0f32; 16];
        let (mut max_scale, mut max_abs_scale) = (0.0f32, 0.0f32);
        for ib in 0..16 {
            let q = &qw[QK_K * i + 16 * ib..][..16];
            let s = make_qx_quants(
                32,
                &x[16 * ib..16 * ib + 16],
                &mut l[16 * ib..16 * ib + 16],
                1,
                Some(q),
            );
            scales[ib] = s;
            if s.abs() > max_abs_scale {
                max_abs_scale = s.abs();
                max_scale = s;
            }
        }
        if max_abs_scale < GROUP_MAX_EPS {
            y.fill(0);
            continue;
        }
        q6k_finish(x, y, &scales, max_scale, &mut l);
    }
}
