//! IQ3_XXS and IQ3_S (`quantize_row_iq3_xxs_impl`, `quantize_row_iq3_s_impl`
//! of ggml-quants.c): magnitudes snapped to a lattice of 4-element points
//! with sign bits, a 4-bit scale per 32 elements under one f16 scale per
//! 256. Without importance weights the weights are `x²`.

use super::iq2::{final_entry, fold_signs, refit, sqrt_all, sum_squares, trial};
use super::lattice::{iq3s, iq3xxs};
use crate::scalar::kquantize::nearest_int;
use crate::scalar::kquants::wr_f16;

const K_MAX_Q: i32 = 8;

/// The shared per-32 search: magnitudes `xval`, signs, levels `l` and the
/// scale, or `None` for a sub-block ggml skips as zero. `xxs` selects IQ3_XXS's rules (even sign parity, 31 trial
/// scales, a 1e-8 zero threshold, only off-lattice groups redone) over
/// IQ3_S's (free signs, 19 trial scales, exact zero, every group redone).
fn search(
    xb: &[f32],
    weight: &[f32; 32],
    xxs: bool,
    l: &mut [i8; 32],
    block_signs: &mut [u8; 4],
) -> Option<f32> {
    let lat = if xxs { iq3xxs() } else { iq3s() };
    let waux = sqrt_all(weight);
    let mut xval = [0.0f32; 32];
    let max = fold_signs(xb, weight, xxs, &mut xval, block_signs);
    *l = [0; 32];
    if (xxs && max < 1e-8) || (!xxs && max == 0.0) {
        return None;
    }
    let mut best = 0.0f32;
    let mut scale = max / (2 * K_MAX_Q - 1) as f32;
    let mut on_grid = [xxs; 8];
    let range = if xxs { 15 } else { 9 };
    for is in -range..=range {
        let id = ((2 * K_MAX_Q - 1) as f32 + is as f32 * 0.2) / max;
        let (mut laux, mut on_aux) = ([0i8; 32], [true; 8]);
        let (sumqx, sumq2) = trial(
            lat,
            &xval,
            &waux,
            weight,
            id,
            4,
            K_MAX_Q,
            &mut laux,
            &mut on_aux,
        );
        if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            *l = laux;
            on_grid = on_aux;
        }
    }
    if on_grid.contains(&false) && scale > 0.0 {
        let only_off = if xxs { Some(&on_grid[..]) } else { None };
        scale = refit(lat, &xval, &waux, weight, scale, 4, K_MAX_Q, l, only_off);
    }
    if scale < 0.0 {
        scale = -scale;
        for s in block_signs.iter_mut() {
            *s = if xxs { !*s & 127 } else { !*s };
        }
    }
    // Snap the final levels (they are on the lattice; see `final_entry`).
    for k in 0..8 {
        let g = 4 * k..4 * k + 4;
        final_entry(lat, &mut l[g.clone()], &xval[g.clone()], &waux[g], scale);
    }
    Some(scale)
}

fn weights(xb: &[f32], qw: Option<&[f32]>, sigma2: f32) -> [f32; 32] {
    let mut w = [0.0f32; 32];
    for i in 0..32 {
        w[i] = match qw {
            Some(q) => q[i] * (sigma2 + xb[i] * xb[i]).sqrt(),
            None => xb[i] * xb[i],
        };
    }
    w
}

/// One row of IQ3_XXS (98-byte blocks).
pub(crate) fn quantize_iq3_xxs(src: &[f32], dst: &mut [u8], qw: Option<&[f32]>) {
    let lat = iq3xxs();
    for (ibl, (xbl, y)) in src
        .chunks_exact(256)
        .zip(dst.chunks_exact_mut(98))
        .enumerate()
    {
        y.fill(0);
        let mut signs_scales = [0u32; 8];
        let mut scales = [0.0f32; 8];
        let mut max_scale = 0.0f32;
        let sigma2 = 2.0 * sum_squares(xbl) / 256.0;
        for ib in 0..8 {
            let xb = &xbl[32 * ib..32 * ib + 32];
            let w = weights(xb, qw.map(|q| &q[256 * ibl + 32 * ib..][..32]), sigma2);
            let (mut l, mut bs) = ([0i8; 32], [0u8; 4]);
            let Some(scale) = search(xb, &w, true, &mut l, &mut bs) else {
                continue;
            };
            for k in 0..8 {
                y[2 + 8 * ib + k] = lat.entry(lat.code(&l[4 * k..4 * k + 4])).unwrap_or(0) as u8;
            }
            signs_scales[ib] = u32::from(bs[0])
                | (u32::from(bs[1]) << 7)
                | (u32::from(bs[2]) << 14)
                | (u32::from(bs[3]) << 21);
            scales[ib] = scale;
            max_scale = if max_scale > scale { max_scale } else { scale };
        }
        if max_scale == 0.0 {
            y.fill(0);
            continue;
        }
        let d = max_scale / 31.0;
        wr_f16(y, 0, d * 1.0125);
        let id = 1.0 / d;
        for ib in 0..8 {
            let l = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15);
            signs_scales[ib] |= (l as u32) << 28;
        }
        for (c, v) in y[66..98].chunks_exact_mut(4).zip(signs_scales) {
            c.copy_from_slice(&v.to_le_bytes());
        }
    }
}

/// One row of IQ3_S (110-byte blocks).
pub(crate) fn quantize_iq3_s(src: &[f32], dst: &mut [u8], qw: Option<&[f32]>) {
    let lat = iq3s();
    // d, qs[64], qh[8], signs[32], scales[4]
    let (qs, qh, sg, sc) = (2usize, 66usize, 74usize, 106usize);
    for (ibl, (xbl, y)) in src
        .chunks_exact(256)
        .zip(dst.chunks_exact_mut(110))
        .enumerate()
    {
        y.fill(0);
        let mut scales = [0.0f32; 8];
        let mut max_scale = 0.0f32;
        let sigma2 = 2.0 * sum_squares(xbl) / 256.0;
        // ggml advances its index and sign cursors only past the sub-blocks
        // it does not skip as zero (the high bits are placed absolutely).
        let (mut qs_at, mut sg_at) = (qs, sg);
        for ib in 0..8 {
            let xb = &xbl[32 * ib..32 * ib + 32];
            let w = weights(xb, qw.map(|q| &q[256 * ibl + 32 * ib..][..32]), sigma2);
            let (mut l, mut bs) = ([0i8; 32], [0u8; 4]);
            let Some(scale) = search(xb, &w, false, &mut l, &mut bs) else {
                continue;
            };
            for k in 0..8 {
                let e = lat.entry(lat.code(&l[4 * k..4 * k + 4])).unwrap_or(0);
                y[qs_at + k] = (e & 255) as u8;
                y[qh + ib] |= ((e >> 8) << k) as u8;
            }
            y[sg_at..sg_at + 4].copy_from_slice(&bs);
            qs_at += 8;
            sg_at += 4;
            scales[ib] = scale;
            max_scale = if max_scale > scale { max_scale } else { scale };
        }
        if max_scale == 0.0 {
            continue;
        }
        let d = max_scale / 31.0;
        wr_f16(y, 0, d * 1.033);
        let id = 1.0 / d;
        for ib in (0..8).step_by(2) {
            let l1 = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15);
            let l2 = nearest_int(0.5 * (id * scales[ib + 1] - 1.0)).clamp(0, 15);
            y[sc + ib / 2] = (l1 | (l2 << 4)) as u8;
        }
    }
}
