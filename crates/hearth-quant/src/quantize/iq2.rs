//! IQ2_XXS and IQ2_S (`quantize_row_iq2_xxs_impl`, `quantize_row_iq2_s_impl`
//! of ggml-quants.c): magnitudes snapped to a lattice of 8-element points
//! with one sign bit per element, a 4-bit scale per 32 (IQ2_XXS) or 16
//! (IQ2_S) elements under one f16 scale per 256.

use super::lattice::{iq2s, iq2xs, iq2xxs, Lattice};
use super::search::{importance, make_qp_quants, GROUP_MAX_EPS};
use crate::scalar::kquantize::nearest_int;
use crate::scalar::kquants::wr_f16;

const K_MAX_Q: i32 = 3;

pub(crate) fn sum_squares(x: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for &v in x {
        s += v * v;
    }
    s
}

/// Magnitudes and sign bits of 8 elements. With `even`, the element of
/// least weighted square is flipped when the count of negatives is odd,
/// so that 7 stored bits determine the 8th (IQ2_XXS, IQ3_XXS).
pub(crate) fn signs8(xb: &[f32], w: &[f32], xval: &mut [f32], even: bool) -> u8 {
    let mut s = 0u8;
    let mut nflip = 0;
    for i in 0..8 {
        if xb[i] >= 0.0 {
            xval[i] = xb[i];
        } else {
            xval[i] = -xb[i];
            nflip += 1;
            s |= 1 << i;
        }
    }
    if even && nflip % 2 == 1 {
        let mut imin = 0;
        let mut min = w[0] * xb[0] * xb[0];
        for i in 1..8 {
            let ax = w[i] * xb[i] * xb[i];
            if ax < min {
                min = ax;
                imin = i;
            }
        }
        xval[imin] = -xval[imin];
        s ^= 1 << imin;
    }
    if even {
        s & 127
    } else {
        s
    }
}

/// Splits a sub-block into magnitudes `xval` and per-8 sign bytes
/// (`signs8` with `even`), and returns the largest magnitude.
pub(crate) fn fold_signs(
    xb: &[f32],
    weight: &[f32],
    even: bool,
    xval: &mut [f32],
    signs: &mut [u8],
) -> f32 {
    for (k, s) in signs.iter_mut().enumerate() {
        *s = signs8(
            &xb[8 * k..],
            &weight[8 * k..],
            &mut xval[8 * k..8 * k + 8],
            even,
        );
    }
    let mut max = xval[0];
    for &v in &xval[1..] {
        max = if max > v { max } else { v };
    }
    max
}

/// The square roots of the weights (the neighbour searches' weights).
pub(crate) fn sqrt_all<const N: usize>(weight: &[f32; N]) -> [f32; N] {
    weight.map(f32::sqrt)
}

/// `Σ w·x·q` and `Σ w·q²` of levels `l` (q = 2l + 1).
pub(crate) fn sums(w: &[f32], xval: &[f32], l: &[i8]) -> (f32, f32) {
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for i in 0..w.len() {
        let q = (2 * i32::from(l[i]) + 1) as f32;
        sumqx += w[i] * xval[i] * q;
        sumq2 += w[i] * q * q;
    }
    (sumqx, sumq2)
}

/// Levels of group `k` (size `g`) at inverse scale `id`, clamped to
/// `[0, kmax - 1]`, into `l`; returns their code.
pub(crate) fn group_levels(lat: &Lattice, xval: &[f32], id: f32, kmax: i32, l: &mut [i8]) -> usize {
    for (d, &x) in l.iter_mut().zip(xval) {
        *d = nearest_int(0.5 * (id * x - 1.0)).clamp(0, kmax - 1) as i8;
    }
    lat.code(l)
}

/// Snaps group levels `l` to the lattice (its own entry or the best
/// neighbour at `scale`); returns the entry.
pub(crate) fn snap(
    lat: &Lattice,
    xval: &[f32],
    waux: &[f32],
    scale: f32,
    l: &mut [i8],
) -> (usize, bool) {
    let u = lat.code(l);
    match lat.entry(u) {
        Some(g) => (g, true),
        None => (lat.best_neighbour(u, xval, waux, scale, l), false),
    }
}

/// The entry of final levels (ggml aborts when they are off the lattice,
/// which its search never produces; here the nearest neighbour stands in).
pub(crate) fn final_entry(
    lat: &Lattice,
    l: &mut [i8],
    xval: &[f32],
    waux: &[f32],
    scale: f32,
) -> usize {
    snap(lat, xval, waux, scale, l).0
}

/// One trial scale of the IQ2/IQ3 searches: the levels of every
/// `g`-element group at inverse scale `id`, snapped to the lattice at
/// `1/id`, into `l`; `on[k]` says whether group k was on the lattice.
/// Returns the weighted sums of the fit.
#[allow(clippy::too_many_arguments)]
pub(crate) fn trial(
    lat: &Lattice,
    xval: &[f32],
    waux: &[f32],
    weight: &[f32],
    id: f32,
    g: usize,
    kmax: i32,
    l: &mut [i8],
    on: &mut [bool],
) -> (f32, f32) {
    let this_scale = 1.0 / id;
    for (k, on) in on.iter_mut().enumerate().take(xval.len() / g) {
        let r = g * k..g * k + g;
        group_levels(lat, &xval[r.clone()], id, kmax, &mut l[r.clone()]);
        *on = snap(
            lat,
            &xval[r.clone()],
            &waux[r.clone()],
            this_scale,
            &mut l[r],
        )
        .1;
    }
    sums(weight, xval, l)
}

/// Requantizes the groups at the chosen `scale` (those off the lattice
/// only, when `only_off` gives the on-lattice flags) and returns the
/// refitted scale (unchanged when the fit is empty).
#[allow(clippy::too_many_arguments)]
pub(crate) fn refit(
    lat: &Lattice,
    xval: &[f32],
    waux: &[f32],
    weight: &[f32],
    scale: f32,
    g: usize,
    kmax: i32,
    l: &mut [i8],
    only_off: Option<&[bool]>,
) -> f32 {
    let id = 1.0 / scale;
    for k in 0..xval.len() / g {
        if only_off.is_some_and(|on| on[k]) {
            continue;
        }
        let r = g * k..g * k + g;
        group_levels(lat, &xval[r.clone()], id, kmax, &mut l[r.clone()]);
        snap(lat, &xval[r.clone()], &waux[r.clone()], scale, &mut l[r]);
    }
    let (sumqx, sumq2) = sums(weight, xval, l);
    if sumq2 > 0.0 {
        sumqx / sumq2
    } else {
        scale
    }
}

/// One row of IQ2_XXS (66-byte blocks); requires importance weights.
pub(crate) fn quantize_iq2_xxs(src: &[f32], dst: &mut [u8], qw: &[f32]) {
    let lat = iq2xxs();
    for (ibl, (xbl, y)) in src
        .chunks_exact(256)
        .zip(dst.chunks_exact_mut(66))
        .enumerate()
    {
        let mut q2 = [0u32; 16];
        let mut scales = [0.0f32; 8];
        let mut max_scale = 0.0f32;
        let sigma2 = sum_squares(xbl) / 256.0;
        for ib in 0..8 {
            let xb = &xbl[32 * ib..32 * ib + 32];
            let q = &qw[256 * ibl + 32 * ib..][..32];
            let weight: [f32; 32] = importance(xb, q, sigma2);
            let (waux, mut xval) = (sqrt_all(&weight), [0.0f32; 32]);
            let mut block_signs = [0u8; 4];
            let max = fold_signs(xb, &weight, true, &mut xval, &mut block_signs);
            let mut l = [0i8; 32];
            if max < GROUP_MAX_EPS {
                scales[ib] = 0.0;
                continue;
            }
            let mut lq = [0u8; 32];
            let mut scale = make_qp_quants(K_MAX_Q + 1, &xval, &mut lq, &weight);
            for i in 0..32 {
                l[i] = lq[i] as i8;
            }
            let eff_max = scale * K_MAX_Q as f32;
            if eff_max <= 0.0 {
                scales[ib] = 0.0;
                continue;
            }
            let mut best = 0.0f32;
            for is in -6..=6 {
                let id = ((2 * K_MAX_Q - 1) as f32 + is as f32 * 0.1) / eff_max;
                let mut laux = [0i8; 32];
                let (sumqx, sumq2) = trial(
                    lat,
                    &xval,
                    &waux,
                    &weight,
                    id,
                    8,
                    K_MAX_Q,
                    &mut laux,
                    &mut [true; 4],
                );
                if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
                    scale = sumqx / sumq2;
                    best = scale * sumqx;
                    l = laux;
                }
            }
            if scale > 0.0 {
                scale = refit(lat, &xval, &waux, &weight, scale, 8, K_MAX_Q, &mut l, None);
            }
            if scale < 0.0 {
                scale = -scale;
                for s in &mut block_signs {
                    *s = !*s & 127;
                }
            }
            for k in 0..4 {
                let g = 8 * k..8 * k + 8;
                let e = final_entry(lat, &mut l[g.clone()], &xval[g.clone()], &waux[g], scale);
                q2[2 * ib] |= (e as u32) << (8 * k);
                q2[2 * ib + 1] |= u32::from(block_signs[k]) << (7 * k);
            }
            scales[ib] = scale;
            max_scale = if max_scale > scale { max_scale } else { scale };
        }
        y.fill(0);
        if max_scale == 0.0 {
            continue;
        }
        let d = max_scale / 31.0;
        wr_f16(y, 0, d);
        let id = 1.0 / d;
        for ib in 0..8 {
            let l = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15);
            q2[2 * ib + 1] |= (l as u32) << 28;
        }
        for (c, v) in y[2..].chunks_exact_mut(4).zip(q2) {
            c.copy_from_slice(&v.to_le_bytes());
        }
    }
}

/// One row of IQ2_S (82-byte blocks).
pub(crate) fn quantize_iq2_s(src: &[f32], dst: &mut [u8], qw: Option<&[f32]>) {
    quantize_iq2_16(src, dst, qw, false);
}

/// One row of IQ2_XS (74-byte blocks); requires importance weights.
pub(crate) fn quantize_iq2_xs(src: &[f32], dst: &mut [u8], qw: &[f32]) {
    quantize_iq2_16(src, dst, Some(qw), true);
}

/// The shared body of IQ2_S and IQ2_XS (`xs`): 16-element sub-blocks of
/// two lattice points. IQ2_XS keeps even sign parity, a 512-entry lattice
/// and packs index and signs in one u16; IQ2_S stores free signs, a
/// 1024-entry lattice with high index bits apart, and scales d by 0.9875.
fn quantize_iq2_16(src: &[f32], dst: &mut [u8], qw: Option<&[f32]>, xs: bool) {
    let lat = if xs { iq2xs() } else { iq2s() };
    let bytes = if xs { 74 } else { 82 };
    // IQ2_S: d, qs (32 lattice index bytes, 32 sign bytes), qh, scales.
    // IQ2_XS: d, qs (32 u16: index | signs << 9), scales.
    let (qs, qh, sc) = if xs { (2, 0, 66) } else { (2, 66, 74) };
    for (ibl, (xbl, y)) in src
        .chunks_exact(256)
        .zip(dst.chunks_exact_mut(bytes))
        .enumerate()
    {
        y.fill(0);
        let mut q2 = [0u16; 32];
        let mut scales = [0.0f32; 16];
        let mut max_scale = 0.0f32;
        let sigma2 = if xs { 1.0 } else { 2.0 } * sum_squares(xbl) / 256.0;
        for ib in 0..16 {
            let xb = &xbl[16 * ib..16 * ib + 16];
            let weight: [f32; 16] = match qw {
                Some(q) => importance(xb, &q[256 * ibl + 16 * ib..], sigma2),
                None => std::array::from_fn(|i| 0.25 * sigma2 + xb[i] * xb[i]),
            };
            let (waux, mut xval) = (sqrt_all(&weight), [0.0f32; 16]);
            let mut block_signs = [0u8; 2];
            let max = fold_signs(xb, &weight, xs, &mut xval, &mut block_signs);
            let mut l = [0i8; 16];
            if max < if xs { GROUP_MAX_EPS } else { 1e-8 } {
                scales[ib] = 0.0;
                continue;
            }
            let mut best = 0.0f32;
            let mut scale = max / (2 * K_MAX_Q - 1) as f32;
            let mut on_grid = [true; 2];
            for is in -9..=9 {
                let id = ((2 * K_MAX_Q - 1) as f32 + is as f32 * 0.1) / max;
                let (mut laux, mut on_aux) = ([0i8; 16], [true; 2]);
                let (sumqx, sumq2) = trial(
                    lat,
                    &xval,
                    &waux,
                    &weight,
                    id,
                    8,
                    K_MAX_Q,
                    &mut laux,
                    &mut on_aux,
                );
                if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
                    scale = sumqx / sumq2;
                    best = scale * sumqx;
                    l = laux;
                    on_grid = on_aux;
                }
            }
            if on_grid.contains(&false) && scale > 0.0 {
                scale = refit(
                    lat,
                    &xval,
                    &waux,
                    &weight,
                    scale,
                    8,
                    K_MAX_Q,
                    &mut l,
                    Some(&on_grid),
                );
            }
            if scale < 0.0 {
                scale = -scale;
                for s in &mut block_signs {
                    *s = if xs { !*s & 127 } else { !*s };
                }
            }
            for k in 0..2 {
                let g = 8 * k..8 * k + 8;
                let e = final_entry(lat, &mut l[g.clone()], &xval[g.clone()], &waux[g], scale);
                let i8_ = 2 * ib + k;
                if xs {
                    q2[i8_] = e as u16 | (u16::from(block_signs[k]) << 9);
                } else {
                    y[qs + i8_] = (e & 255) as u8;
                    y[qh + i8_ / 4] |= ((e >> 8) << (2 * (i8_ % 4))) as u8;
                    y[qs + 32 + i8_] = block_signs[k];
                }
            }
            scales[ib] = scale;
            max_scale = if max_scale > scale { max_scale } else { scale };
        }
        if max_scale == 0.0 {
            continue;
        }
        let d = max_scale / 31.0;
        wr_f16(y, 0, if xs { d } else { d * 0.9875 });
        let id = 1.0 / d;
        for ib in 0..16 {
            let l = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 15) as u8;
            if ib % 2 == 0 {
                y[sc + ib / 2] = l;
            } else {
                y[sc + ib / 2] |= l << 4;
            }
        }
        if xs {
            for (c, v) in y[qs..qs + 64].chunks_exact_mut(2).zip(q2) {
                c.copy_from_slice(&v.to_le_bytes());
            }
        }
    }
}
