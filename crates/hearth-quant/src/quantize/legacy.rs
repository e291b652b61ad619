//! Importance-weighted Q4_0, Q4_1, Q5_0 and Q5_1 (`quantize_row_q*_impl`
//! of ggml-quants.c). Each row's weights are `imatrix[j]·√(σ² + x[j]²)`,
//! σ² being the row's mean square.

use super::search::{importance, make_qkx3_quants, make_qx_quants};
use crate::scalar::kquants::wr_f16;

const QK: usize = 32;

fn mean_square(x: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for &v in x {
        s += v * v;
    }
    s / x.len() as f32
}

/// Packs 32 quants of at most 5 bits: low nibbles into `qs`, fifth bits
/// into the little-endian `qh` word (Q5_0/Q5_1).
fn pack_q5(l: &[u8], qh: &mut [u8], qs: &mut [u8]) {
    let mut h = 0u32;
    for j in 0..16 {
        let (a, b) = (l[j], l[j + 16]);
        qs[j] = (a & 0x0f) | ((b & 0x0f) << 4);
        h |= u32::from((a & 0x10) >> 4) << j;
        h |= u32::from((b & 0x10) >> 4) << (j + 16);
    }
    qh.copy_from_slice(&h.to_le_bytes());
}

/// One row of Q4_0 (18-byte blocks) or Q5_0 (22-byte blocks).
pub(crate) fn quantize_q_0(x: &[f32], y: &mut [u8], qw: &[f32], five_bits: bool) {
    let sigma2 = mean_square(x);
    let (nmax, bytes) = if five_bits { (16, 22) } else { (8, 18) };
    for (ib, (xb, yb)) in x
        .chunks_exact(QK)
        .zip(y.chunks_exact_mut(bytes))
        .enumerate()
    {
        let w: [f32; QK] = importance(xb, &qw[QK * ib..], sigma2);
        let mut l = [0i8; QK];
        let d = make_qx_quants(nmax, xb, &mut l, 1, Some(&w));
        wr_f16(yb, 0, d);
        let lu = l.map(|v| v as u8);
        if five_bits {
            let (qh, qs) = yb[2..].split_at_mut(4);
            pack_q5(&lu, qh, qs);
        } else {
            for j in 0..16 {
                yb[2 + j] = lu[j] | (lu[j + 16] << 4);
            }
        }
    }
}

/// One row of Q4_1 (20-byte blocks) or Q5_1 (24-byte blocks).
pub(crate) fn quantize_q_1(x: &[f32], y: &mut [u8], qw: &[f32], five_bits: bool) {
    let sigma2 = mean_square(x);
    let (nmax, bytes) = if five_bits { (31, 24) } else { (15, 20) };
    for (ib, (xb, yb)) in x
        .chunks_exact(QK)
        .zip(y.chunks_exact_mut(bytes))
        .enumerate()
    {
        let w: [f32; QK] = importance(xb, &qw[QK * ib..], sigma2);
        let (mut l, mut aux) = ([0u8; QK], [0u8; QK]);
        let (d, min) =
            make_qkx3_quants(nmax, xb, Some(&w), &mut l, &mut aux, -0.9, 0.05, 36, false);
        wr_f16(yb, 0, d);
        wr_f16(yb, 2, -min);
        if five_bits {
            let (qh, qs) = yb[4..].split_at_mut(4);
            pack_q5(&l, qh, qs);
        } else {
            for j in 0..16 {
                yb[4 + j] = l[j] | (l[j + 16] << 4);
            }
        }
    }
}
