//! IQ4_NL and IQ4_XS (`quantize_row_iq4_nl_impl` of ggml-quants.c): 4-bit
//! indices into a non-linear table of 16 values, one scale per 32 elements
//! (IQ4_NL) or 6-bit sub-block scales under one f16 scale per 256 (IQ4_XS).
//! Without importance weights the weights are `x²`; ggml's quantizer tries
//! 15 scales around `max/values[0]` either way.

use super::search::GROUP_MAX_EPS;
use crate::grids::KVALUES_IQ4NL as VALUES;
use crate::scalar::kquantize::nearest_int;
use crate::scalar::kquants::wr_f16;

/// `best_index_int8`: the index of the table value nearest to `x`.
fn best_index(x: f32) -> u8 {
    let v = |i: usize| f32::from(VALUES[i]);
    if x <= v(0) {
        return 0;
    }
    if x >= v(15) {
        return 15;
    }
    let (mut ml, mut mu) = (0usize, 15usize);
    while mu - ml > 1 {
        let mav = (ml + mu) / 2;
        if x < v(mav) {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    if x - v(mu - 1) < v(mu) - x {
        (mu - 1) as u8
    } else {
        mu as u8
    }
}

const NTRY: i32 = 7;

/// The scale of one 32-element block (0 for an all-zero block).
fn block_scale(xb: &[f32], weight: &[f32; 32], lb: &mut [u8]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in xb {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        return 0.0;
    }
    let v0 = f32::from(VALUES[0]);
    let mut d = -max / v0;
    let mut id = 1.0 / d;
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for j in 0..32 {
        let l = best_index(id * xb[j]);
        lb[j] = l;
        let q = f32::from(VALUES[l as usize]);
        let w = weight[j];
        sumqx += w * q * xb[j];
        sumq2 += w * q * q;
    }
    d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
    let mut best = d * sumqx;
    for itry in -NTRY..=NTRY {
        id = (itry as f32 + v0) / max;
        sumqx = 0.0;
        sumq2 = 0.0;
        for j in 0..32 {
            let q = f32::from(VALUES[best_index(id * xb[j]) as usize]);
            let w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    d
}

/// The weights of block `ib`: `qw·√(σ² + x²)`, or `x²` without `qw`.
fn weights(xb: &[f32], qw: Option<&[f32]>, sigma2: f32) -> [f32; 32] {
    let mut w = [0.0f32; 32];
    for j in 0..32 {
        w[j] = match qw {
            Some(q) => q[j] * (sigma2 + xb[j] * xb[j]).sqrt(),
            None => xb[j] * xb[j],
        };
    }
    w
}

fn sigma2(x: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for &v in x {
        s += v * v;
    }
    s * (2.0 / x.len() as f32)
}

fn pack(l: &[u8], q4: &mut [u8]) {
    for (i, q) in q4.chunks_exact_mut(16).enumerate() {
        for j in 0..16 {
            q[j] = l[32 * i + j] | (l[32 * i + 16 + j] << 4);
        }
    }
}

/// One row of IQ4_NL (18-byte blocks of 32).
pub(crate) fn quantize_iq4_nl(src: &[f32], dst: &mut [u8], qw: Option<&[f32]>) {
    // ggml keeps the index buffer across blocks.
    let mut l = [0u8; 32];
    for (ib, (x, y)) in src
        .chunks_exact(32)
        .zip(dst.chunks_exact_mut(18))
        .enumerate()
    {
        let w = weights(x, qw.map(|q| &q[32 * ib..32 * ib + 32]), sigma2(x));
        let d = block_scale(x, &w, &mut l);
        wr_f16(y, 0, d);
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        for j in 0..32 {
            l[j] = best_index(id * x[j]);
        }
        pack(&l, &mut y[2..18]);
    }
}

/// One row of IQ4_XS (136-byte blocks of 256).
pub(crate) fn quantize_iq4_xs(src: &[f32], dst: &mut [u8], qw: Option<&[f32]>) {
    let mut l = [0u8; 256];
    for (ibl, (x, y)) in src
        .chunks_exact(256)
        .zip(dst.chunks_exact_mut(136))
        .enumerate()
    {
        let s2 = sigma2(x);
        let mut scales = [0.0f32; 8];
        let (mut max_scale, mut amax_scale) = (0.0f32, 0.0f32);
        for ib in 0..8 {
            let xb = &x[32 * ib..32 * ib + 32];
            let w = weights(xb, qw.map(|q| &q[256 * ibl + 32 * ib..][..32]), s2);
            let d = block_scale(xb, &w, &mut l[32 * ib..32 * ib + 32]);
            scales[ib] = d;
            if d.abs() > amax_scale {
                amax_scale = d.abs();
                max_scale = d;
            }
        }
        let d = -max_scale / 32.0;
        wr_f16(y, 0, d);
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut scales_h = 0u16;
        let mut scales_l = [0u8; 4];
        for ib in 0..8 {
            let li = nearest_int(id * scales[ib]).clamp(-32, 31);
            let dl = d * li as f32;
            let idl = if dl != 0.0 { 1.0 / dl } else { 0.0 };
            for j in 0..32 {
                l[32 * ib + j] = best_index(idl * x[32 * ib + j]);
            }
            let lu = (li + 32) as u16;
            if ib % 2 == 0 {
                scales_l[ib / 2] = (lu & 0x0f) as u8;
            } else {
                scales_l[ib / 2] |= ((lu & 0x0f) << 4) as u8;
            }
            scales_h |= (lu >> 4) << (2 * (ib % 8));
        }
        y[2..4].copy_from_slice(&scales_h.to_le_bytes());
        y[4..8].copy_from_slice(&scales_l);
        pack(&l, &mut y[8..136]);
    }
}
