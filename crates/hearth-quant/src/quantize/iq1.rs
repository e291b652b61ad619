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
            for (j, &i) in idx.iter().enumerate() {
                l[i] = if (j as i32) < besti1 {
                    0
                } else if (j as i32) < besti2 {
                    1
                } else {
                    2
                };
            }
            if scale < 0.0 {
                for v in &mut l {
                    *v = 2 - *v;
                }
                scale = -scale;
                best_shift = -best_shift;
            }
            let xx = if best_shift == 1 { &x_p } else { &x_m };
            let mut index = [0usize; 4];
            let mut all_on_grid = true;
            for k in 0..4 {
                let g = 8 * k..8 * k + 8;
                let u = lat.code(&l[g.clone()]);
                index[k] = match lat.entry(u) {
                    Some(e) => e,
                    None => {
                        all_on_grid = false;
                        best_neighbour(
                            lat,
                            u,
                            &xb[g.clone()],
                            &weight[g.clone()],
                            scale,
                            xx,
                            &mut l[g],
                        )
                    }
                };
            }
            if !all_on_grid {
                let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
                for k in 0..4 {
                    let pg = lat.pos(index[k]);
                    for j in 0..8 {
                        let w = weight[8 * k + j];
                        let q = xx[((pg[j] - 1) / 2) as usize];
                        sumqx += w * q * xb[8 * k + j];
                        sumq2 += w * q * q;
                    }
                }
                if sumqx > 0.0 && sumq2 > 0.0 {
                    scale = sumqx / sumq2;
                }
            }
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
