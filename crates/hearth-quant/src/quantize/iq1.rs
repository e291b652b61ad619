//! IQ1_S (`quantize_row_iq1_s_impl` of ggml-quants.c): values −1, 0, 1
//! plus or minus a shift (`IQ1S_DELTA`), in 8-element lattice points, with
//! a 3-bit scale and the shift's sign per 32 elements under one f16 scale
//! per 256. The best split of each sub-block into the three values is
//! found exhaustively over the sorted elements. Requires importance
//! weights.

use super::iq2::sum_squares;
use super::lattice::{iq1s, Lattice};
use crate::grids::IQ1S_DELTA;
use crate::scalar::kquantize::nearest_int;
use crate::scalar::kquants::wr_f16;

/// `iq1_find_best_neighbour2`: the neighbour of code `u` closest to `xb`
/// at `scale` with values `xg`; its levels go to `l`.
fn best_neighbour(
    lat: &Lattice,
    u: usize,
    xb: &[f32],
    w: &[f32],
    scale: f32,
    xg: &[f32; 3],
    l: &mut [i8],
) -> usize {
    let mut best_score = f32::MAX;
    let ns = lat.neighbours(u);
    // A NaN distance everywhere leaves no choice; ggml aborts there.
    let mut best = ns[0] as usize;
    for &j in ns {
        let pg = lat.pos(j as usize);
        let mut d2 = 0.0f32;
        for i in 0..8 {
            let q = xg[((pg[i] - 1) / 2) as usize];
            let diff = scale * q - xb[i];
            d2 += w[i] * diff * diff;
        }
        if d2 < best_score {
            best_score = d2;
            best = j as usize;
        }
    }
    lat.levels(best, l);
    best
}

/// The levels (0, 1, 2) of elements split at sorted positions `i1` and
/// `i2` of `idx`; a negative `scale` is made positive by mirroring the
/// levels, which the caller answers by flipping its shift (returns true).
fn split_levels(idx: &[usize], i1: i32, i2: i32, scale: &mut f32, l: &mut [i8]) -> bool {
    for (j, &i) in idx.iter().enumerate() {
        let j = j as i32;
        l[i] = if j < i1 {
            0
        } else if j < i2 {
            1
        } else {
            2
        };
    }
    // As ggml's `if (scale < 0)` (a NaN scale is left alone).
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    if !(*scale < 0.0) {
        return false;
    }
    for v in l.iter_mut() {
        *v = 2 - *v;
    }
    *scale = -*scale;
    true
}

/// Snaps each 8-element group of levels to the lattice (its best
/// neighbour under group k's values `values(k)` when off it) into
/// `index`, and refits the scale over the chosen points when a group
/// moved. Returns the scale.
fn snap_and_refit<'a>(
    lat: &Lattice,
    l: &mut [i8],
    xb: &[f32],
    weight: &[f32],
    scale: f32,
    values: &dyn Fn(usize) -> &'a [f32; 3],
    index: &mut [usize],
) -> f32 {
    let mut all_on_grid = true;
    for (k, e) in index.iter_mut().enumerate() {
        let g = 8 * k..8 * k + 8;
        let u = lat.code(&l[g.clone()]);
        *e = match lat.entry(u) {
            Some(e) => e,
            None => {
                all_on_grid = false;
                best_neighbour(
                    lat,
                    u,
                    &xb[g.clone()],
                    &weight[g.clone()],
                    scale,
                    values(k),
                    &mut l[g],
                )
            }
        };
    }
    if all_on_grid {
        return scale;
    }
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for (k, &e) in index.iter().enumerate() {
        let (xx, pg) = (values(k), lat.pos(e));
        for j in 0..8 {
            let w = weight[8 * k + j];
            let q = xx[((pg[j] - 1) / 2) as usize];
            sumqx += w * q * xb[8 * k + j];
            sumq2 += w * q * q;
        }
    }
    if sumqx > 0.0 && sumq2 > 0.0 {
        sumqx / sumq2
    } else {
        scale
    }
}

/// One row of IQ1_S (50-byte blocks).
pub(crate) fn quantize_iq1_s(src: &[f32], dst: &mut [u8], qw: &[f32]) {
    let lat = iq1s();
    let x_p = [-1.0 + IQ1S_DELTA, IQ1S_DELTA, 1.0 + IQ1S_DELTA];
    let x_m = [-1.0 - IQ1S_DELTA, -IQ1S_DELTA, 1.0 - IQ1S_DELTA];
    for (ibl, (xbl, y)) in src
        .chunks_exact(256)
        .zip(dst.chunks_exact_mut(50))
        .enumerate()
    {
        y.fill(0);
        let mut qh = [0u16; 8];
        let mut scales = [0.0f32; 8];
        let mut shifts = [0i8; 8];
        let mut max_scale = 0.0f32;
        let sigma2 = 2.0 * sum_squares(xbl) / 256.0;
        for ib in 0..8 {
            let xb = &xbl[32 * ib..32 * ib + 32];
            let q = &qw[256 * ibl + 32 * ib..][..32];
            let mut weight = [0.0f32; 32];
            for i in 0..32 {
                weight[i] = q[i] * (sigma2 + xb[i] * xb[i]).sqrt();
            }
            let mut max = xb[0].abs();
            for &v in &xb[1..] {
                let a = v.abs();
                max = if max > a { max } else { a };
            }
            if max < 1e-12 {
                scales[ib] = 0.0;
                shifts[ib] = 1;
                continue;
            }
            // Elements in ascending order (ties keep their index order).
            let mut idx: Vec<usize> = (0..32).collect();
            idx.sort_by(|&a, &b| {
                xb[a]
                    .partial_cmp(&xb[b])
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            let (mut sumx, mut sumw) = ([0.0f32; 33], [0.0f32; 33]);
            for j in 0..32 {
                let i = idx[j];
                sumx[j + 1] = sumx[j] + weight[i] * xb[i];
                sumw[j + 1] = sumw[j] + weight[i];
            }
            let mut best_score = -f32::MAX;
            let mut scale = max;
            let (mut besti1, mut besti2, mut best_shift) = (-1i32, -1i32, 0i32);
            for i1 in 0..=32 {
                for i2 in i1..=32 {
                    for (xx, shift) in [(&x_p, 1), (&x_m, -1)] {
                        let sumqx = (sumx[i1] - sumx[0]) * xx[0]
                            + (sumx[i2] - sumx[i1]) * xx[1]
                            + (sumx[32] - sumx[i2]) * xx[2];
                        let sumq2 = (sumw[i1] - sumw[0]) * xx[0] * xx[0]
                            + (sumw[i2] - sumw[i1]) * xx[1] * xx[1]
                            + (sumw[32] - sumw[i2]) * xx[2] * xx[2];
                        if sumq2 > 0.0 && sumqx * sumqx > best_score * sumq2 {
                            scale = sumqx / sumq2;
                            best_score = scale * sumqx;
                            besti1 = i1 as i32;
                            besti2 = i2 as i32;
                            best_shift = shift;
                        }
                    }
                }
            }
            if besti1 < 0 || besti2 < 0 || best_shift == 0 {
                scales[ib] = 0.0;
                shifts[ib] = 1;
                continue;
            }
            let mut l = [0i8; 32];
            if split_levels(&idx, besti1, besti2, &mut scale, &mut l) {
                best_shift = -best_shift;
            }
            let xx = if best_shift == 1 { &x_p } else { &x_m };
            let mut index = [0usize; 4];
            scale = snap_and_refit(lat, &mut l, xb, &weight, scale, &|_| xx, &mut index);
            let mut h = 0u16;
            for k in 0..4 {
                y[2 + 4 * ib + k] = (index[k] & 255) as u8;
                h |= ((index[k] >> 8) << (3 * k)) as u16;
            }
            qh[ib] = h;
            scales[ib] = scale;
            shifts[ib] = best_shift as i8;
            max_scale = if max_scale > scale { max_scale } else { scale };
        }
        if max_scale != 0.0 {
            let d = max_scale / 15.0;
            wr_f16(y, 0, d * 1.125);
            let id = 1.0 / d;
            for ib in 0..8 {
                let mut l = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 7);
                if shifts[ib] == -1 {
                    l |= 8;
                }
                qh[ib] |= (l << 12) as u16;
            }
        }
        for (c, v) in y[34..50].chunks_exact_mut(2).zip(qh) {
            c.copy_from_slice(&v.to_le_bytes());
        }
    }
}

/// The shift values of IQ1_M sub-block half `k` under sign pattern `s`
/// (0: +,+  1: +,-  2: -,+  3: -,-).
fn half_values<'a>(s: i32, k: usize, x_p: &'a [f32; 3], x_m: &'a [f32; 3]) -> &'a [f32; 3] {
    let plus = if k == 0 { s < 2 } else { s % 2 == 0 };
    if plus {
        x_p
    } else {
        x_m
    }
}

/// One row of IQ1_M (56-byte blocks: qs, qh, then four u16 holding 3-bit
/// scales and the f16 super-block scale in their top nibbles). Each
/// 16-element sub-block has two 8-element halves, each with its own shift
/// sign.
pub(crate) fn quantize_iq1_m(src: &[f32], dst: &mut [u8], qw: Option<&[f32]>) {
    let lat = iq1s();
    let delta = crate::grids::IQ1M_DELTA;
    let x_p = [-1.0 + delta, delta, 1.0 + delta];
    let x_m = [-1.0 - delta, -delta, 1.0 - delta];
    const MASKS: [u8; 4] = [0x00, 0x80, 0x08, 0x88];
    let weights = |xb: &[f32], q: Option<&[f32]>, sigma2: f32| {
        let mut w = [0.0f32; 16];
        for i in 0..16 {
            w[i] = match q {
                Some(q) => q[i] * (sigma2 + xb[i] * xb[i]).sqrt(),
                None => xb[i] * xb[i],
            };
        }
        w
    };
    for (ibl, (xbl, y)) in src
        .chunks_exact(256)
        .zip(dst.chunks_exact_mut(56))
        .enumerate()
    {
        y.fill(0);
        let (qs, qh) = (0usize, 32usize);
        let mut scales = [0.0f32; 16];
        let mut shifts = [0i32; 16];
        let mut max_scale = 0.0f32;
        let sigma2 = 2.0 * sum_squares(xbl) / 256.0;
        let qw_of = |ib: usize| qw.map(|q| &q[256 * ibl + 16 * ib..][..16]);
        for ib in 0..16 {
            let xb = &xbl[16 * ib..16 * ib + 16];
            let weight = weights(xb, qw_of(ib), sigma2);
            let mut max = xb[0].abs();
            for &v in &xb[1..] {
                let a = v.abs();
                max = if max > a { max } else { a };
            }
            if max < 1e-7 {
                continue;
            }
            let mut idx: Vec<usize> = (0..16).collect();
            idx.sort_by(|&a, &b| {
                xb[a]
                    .partial_cmp(&xb[b])
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            let (mut px, mut pw) = ([[0.0f32; 17]; 2], [[0.0f32; 17]; 2]);
            for j in 0..16 {
                let i = idx[j];
                let h = usize::from(i >= 8);
                px[h][j + 1] = px[h][j] + weight[i] * xb[i];
                px[1 - h][j + 1] = px[1 - h][j];
                pw[h][j + 1] = pw[h][j] + weight[i];
                pw[1 - h][j + 1] = pw[1 - h][j];
            }
            let txs = [px[0][16], px[1][16]];
            let tws = [pw[0][16], pw[1][16]];
            let (p2, m2) = (x_p[2], x_m[2]);
            let cp1 = x_p[0] * x_p[0] - x_p[1] * x_p[1];
            let cp2 = x_p[1] * x_p[1] - x_p[2] * x_p[2];
            let cm1 = x_m[0] * x_m[0] - x_m[1] * x_m[1];
            let cm2 = x_m[1] * x_m[1] - x_m[2] * x_m[2];
            let mut best_score = -f32::MAX;
            let mut scale = max;
            let (mut besti1, mut besti2, mut best_k) = (-1i32, -1i32, -1i32);
            for i1 in 0..=16 {
                for i2 in i1..=16 {
                    let (mut qx_p, mut qx_m, mut q2_p, mut q2_m) =
                        ([0.0f32; 2], [0.0f32; 2], [0.0f32; 2], [0.0f32; 2]);
                    for h in 0..2 {
                        let sx = px[h][i1] + px[h][i2];
                        qx_p[h] = txs[h] * p2 - sx;
                        qx_m[h] = txs[h] * m2 - sx;
                        q2_p[h] = tws[h] * p2 * p2 + pw[h][i1] * cp1 + pw[h][i2] * cp2;
                        q2_m[h] = tws[h] * m2 * m2 + pw[h][i1] * cm1 + pw[h][i2] * cm2;
                    }
                    let sumqx = [
                        qx_p[0] + qx_p[1],
                        qx_p[0] + qx_m[1],
                        qx_m[0] + qx_p[1],
                        qx_m[0] + qx_m[1],
                    ];
                    let sumq2 = [
                        q2_p[0] + q2_p[1],
                        q2_p[0] + q2_m[1],
                        q2_m[0] + q2_p[1],
                        q2_m[0] + q2_m[1],
                    ];
                    for k in 0..4 {
                        if sumq2[k] > 0.0 && sumqx[k] * sumqx[k] > best_score * sumq2[k] {
                            scale = sumqx[k] / sumq2[k];
                            best_score = scale * sumqx[k];
                            besti1 = i1 as i32;
                            besti2 = i2 as i32;
                            best_k = k as i32;
                        }
                    }
                }
            }
            if besti1 < 0 || besti2 < 0 || best_k < 0 {
                continue;
            }
            let mut l = [0i8; 16];
            if split_levels(&idx, besti1, besti2, &mut scale, &mut l) {
                best_k = 3 - best_k;
            }
            let mut index = [0usize; 2];
            let values = |k: usize| half_values(best_k, k, &x_p, &x_m);
            scale = snap_and_refit(lat, &mut l, xb, &weight, scale, &values, &mut index);
            y[qs + 2 * ib] = (index[0] & 255) as u8;
            y[qs + 2 * ib + 1] = (index[1] & 255) as u8;
            y[qh + ib] = ((index[0] >> 8) | ((index[1] >> 8) << 4)) as u8;
            scales[ib] = scale;
            shifts[ib] = best_k;
            max_scale = if max_scale > scale { max_scale } else { scale };
        }
        if max_scale == 0.0 {
            continue;
        }
        let mut sc = [0u16; 4];
        let mut d = max_scale / 15.0;
        let id = 1.0 / d;
        let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
        for ib in 0..16 {
            let l = nearest_int(0.5 * (id * scales[ib] - 1.0)).clamp(0, 7);
            sc[ib / 4] |= (l << (3 * (ib % 4))) as u16;
            y[qh + ib] |= MASKS[shifts[ib] as usize];
            let xb = &xbl[16 * ib..16 * ib + 16];
            let weight = weights(xb, qw_of(ib), sigma2);
            for k in 0..2 {
                let xx = half_values(shifts[ib], k, &x_p, &x_m);
                let hi = (usize::from(y[qh + ib]) << (8 - 4 * k)) & 0x700;
                let pg = lat.pos(usize::from(y[qs + 2 * ib + k]) + hi);
                for j in 0..8 {
                    let w = weight[8 * k + j];
                    let q = xx[((pg[j] - 1) / 2) as usize] * (2 * l + 1) as f32;
                    sumqx += w * q * xb[8 * k + j];
                    sumq2 += w * q * q;
                }
            }
        }
        if sumq2 > 0.0 {
            d = sumqx / sumq2;
        }
        let s = crate::f32_to_f16(d * 1.1125);
        sc[0] |= (s & 0x000f) << 12;
        sc[1] |= (s & 0x00f0) << 8;
        sc[2] |= (s & 0x0f00) << 4;
        sc[3] |= s & 0xf000;
        for (c, v) in y[48..56].chunks_exact_mut(2).zip(sc) {
            c.copy_from_slice(&v.to_le_bytes());
        }
    }
}
