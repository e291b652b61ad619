//! Importance-weighted Q2_K … Q6_K (`quantize_row_q*_K_impl` of
//! ggml-quants.c): the sub-block scales are searched under the importance
//! weights, and the scales themselves are quantized by `make_qp_quants` /
//! `make_qx_quants` weighted by each sub-block's total weight.

use super::search::{make_qkx3_quants, make_qp_quants, make_qx_quants, GROUP_MAX_EPS};
use crate::scalar::float::rd_f16;
use crate::scalar::kquantize::nearest_int;
use crate::scalar::kquants::{scale_min_k4, wr_f16, QK_K};

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

/// Packs 256 2-bit values: byte `l` of each 32-byte group holds elements
/// `l, l+32, l+64, l+96` of its 128-element half.
fn pack_2bit(l: &[u8], qs: &mut [u8]) {
    for (half, q) in l.chunks_exact(128).zip(qs.chunks_exact_mut(32)) {
        for i in 0..32 {
            q[i] = half[i] | (half[i + 32] << 2) | (half[i + 64] << 4) | (half[i + 96] << 6);
        }
    }
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
            let mut w = [0.0f32; 16];
            for k in 0..16 {
                w[k] = q[k] * (sigma2 + xs[k] * xs[k]).sqrt();
            }
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
        let (dm, mm) = (rd_f16(rest, 64), rd_f16(rest, 66));
        for j in 0..16 {
            sc[j] = ls[j] | (lm[j] << 4);
        }
        for j in 0..16 {
            let d = dm * f32::from(sc[j] & 0x0f);
            if d == 0.0 {
                continue;
            }
            let m = mm * f32::from(sc[j] >> 4);
            for ii in 0..16 {
                l[16 * j + ii] = nearest_int((x[16 * j + ii] + m) / d).clamp(0, 3) as u8;
            }
        }
        pack_2bit(&l, &mut rest[..64]);
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
            let mut w = [0.0f32; 16];
            for k in 0..16 {
                w[k] = q[k] * (sigma2 + xs[k] * xs[k]).sqrt();
            }
            sw[j] = sum(&w);
            scales[j] = make_qx_quants(4, xs, &mut l[16 * j..16 * j + 16], 1, Some(&w));
        }
        let (hmask, rest) = y.split_at_mut(32);
        let (qs, rest) = rest.split_at_mut(64);
        let (sc, dbytes) = rest.split_at_mut(12);
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
        let d_all = rd_f16(dbytes, 0);
        for j in 0..16 {
            let lo = if j < 8 { sc[j] & 0x0f } else { sc[j - 8] >> 4 };
            let hi = (sc[8 + j % 4] >> (2 * (j / 4))) & 3;
            let s = (lo | (hi << 4)) as i8 as i32 - 32;
            let d = d_all * s as f32;
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                l[16 * j + ii] = (nearest_int(x[16 * j + ii] / d).clamp(-4, 3) + 4) as i8;
            }
        }
        hmask.fill(0);
        for (j, q) in l.iter_mut().enumerate() {
            if *q > 3 {
                hmask[j % 32] |= 1 << (j / 32);
                *q -= 4;
            }
        }
        pack_2bit(&l.map(|v| v as u8), qs);
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
        let mut w = [0.0f32; 32];
        for k in 0..32 {
            w[k] = q[32 * j + k] * (sigma2 + xs[k] * xs[k]).sqrt();
        }
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
    let (d_all, dmin_all) = (rd_f16(y, 0), rd_f16(y, 2));
    for j in 0..8 {
        let (s, m) = scale_min_k4(j, &y[4..16]);
        let d = d_all * f32::from(s);
        if d == 0.0 {
            continue;
        }
        let dm = dmin_all * f32::from(m);
        for ii in 0..32 {
            l[32 * j + ii] = nearest_int((x[32 * j + ii] + dm) / d).clamp(0, nmax) as u8;
        }
    }
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
        for (c, q) in y[16..].chunks_exact_mut(32).enumerate() {
            for k in 0..32 {
                q[k] = l[64 * c + k] | (l[64 * c + 32 + k] << 4);
            }
        }
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
        let (qh, ql) = y[16..].split_at_mut(32);
        qh.fill(0);
        for (c, q) in ql.chunks_exact_mut(32).enumerate() {
            let (m1, m2) = (1u8 << (2 * c), 2u8 << (2 * c));
            for k in 0..32 {
                let (mut l1, mut l2) = (l[64 * c + k], l[64 * c + 32 + k]);
                if l1 > 15 {
                    l1 -= 16;
                    qh[k] |= m1;
                }
                if l2 > 15 {
                    l2 -= 16;
                    qh[k] |= m2;
                }
                q[k] = l1 | (l2 << 4);
            }
        }
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
        let (ql, rest) = y.split_at_mut(128);
        let (qh, rest) = rest.split_at_mut(64);
        let (sc, dbytes) = rest.split_at_mut(16);
        let iscale = -128.0 / max_scale;
        wr_f16(dbytes, 0, 1.0 / iscale);
        for (s, &v) in sc.iter_mut().zip(&scales) {
            *s = nearest_int(iscale * v).min(127) as i8 as u8;
        }
        let d_all = rd_f16(dbytes, 0);
        for j in 0..16 {
            let d = d_all * f32::from(sc[j] as i8);
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                l[16 * j + ii] = (nearest_int(x[16 * j + ii] / d).clamp(-32, 31) + 32) as i8;
            }
        }
        for (h, (ql, qh)) in ql
            .chunks_exact_mut(64)
            .zip(qh.chunks_exact_mut(32))
            .enumerate()
        {
            let lh = &l[128 * h..128 * h + 128];
            for k in 0..32 {
                let q = |m: usize| lh[k + 32 * m] as u8;
                ql[k] = (q(0) & 0x0f) | ((q(2) & 0x0f) << 4);
                ql[k + 32] = (q(1) & 0x0f) | ((q(3) & 0x0f) << 4);
                qh[k] = (q(0) >> 4) | ((q(1) >> 4) << 2) | ((q(2) >> 4) << 4) | ((q(3) >> 4) << 6);
            }
        }
    }
}
