//! Reference quantizers for Q2_K … Q6_K: `quantize_row_q{2..6}_K_ref` of
//! ggml-quants.c and the helpers they use (`nearest_int`, `make_qx_quants`,
//! `make_q3_quants`, `make_qkx2_quants`).
//!
//! These are written to do the same f32 operations in the same order as the
//! C reference (compiled without FMA contraction, as ggml-base is), so the
//! bytes are the same. Integer conversions mirror C's: results of
//! `nearest_int` are truncated to `u8`/`i8` exactly where ggml stores them
//! into narrow fields.

use super::float::rd_f16;
use super::kquants::{
    scale_min_k4, wr_f16, Q2_K_BYTES, Q3_K_BYTES, Q4_K_BYTES, Q5_K_BYTES, Q6_K_BYTES, QK_K,
};
use crate::quantize::search::{make_qkx3_quants, make_qx_quants};

/// ggml's `GROUP_MAX_EPS`: groups with a smaller absolute maximum are zero.
const GROUP_MAX_EPS: f32 = 1e-15;

/// `nearest_int`: round to nearest, ties to even, via the 1.5·2^23 trick.
/// Exact for |x| ≤ 4194303; beyond that it returns what ggml's does.
#[inline]
pub(crate) fn nearest_int(x: f32) -> i32 {
    let v = x + 12_582_912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// `make_q3_quants(n, nmax, x, L, do_rmse = true)`: symmetric quants in
/// `[0, 2·nmax)` refined by coordinate descent on the x²-weighted error.
fn make_q3_quants(nmax: i32, x: &[f32], l_out: &mut [i8]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out.fill(0);
        return 0.0;
    }
    let clamp = |l: i32| l.clamp(-nmax, nmax - 1);
    let iscale = -(nmax as f32) / max;
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for (q, &v) in l_out.iter_mut().zip(x) {
        let l = clamp(nearest_int(iscale * v));
        *q = l as i8;
        let w = v * v;
        sumlx += w * v * l as f32;
        suml2 += w * l as f32 * l as f32;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for (q, &v) in l_out.iter_mut().zip(x) {
            let w = v * v;
            let li = f32::from(*q);
            let mut slx = sumlx - w * v * li;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * li * li;
                let new_l = clamp(nearest_int(v * sl2 / slx));
                if new_l != i32::from(*q) {
                    slx += w * v * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *q = new_l as i8;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    for q in l_out.iter_mut() {
        *q += nmax as i8;
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// `make_qkx2_quants`: asymmetric quants `x ≈ scale·L − min` with `L` in
/// `[0, nmax]`, searching `nstep+1` scales `(rmin + rdelta·is + nmax)/(max−min)`
/// for the least weighted error (absolute when `use_mad`, else squared).
/// Returns `(scale, min)` where `min ≥ 0` is the subtracted offset.
#[allow(clippy::too_many_arguments)]
fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l_out: &mut [u8],
    l_aux: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    // The same search as `make_qkx3_quants` with the weights given (its
    // `max <= min` is `max == min` once `min` is clamped to at most 0).
    make_qkx3_quants(
        nmax,
        x,
        Some(weights),
        l_out,
        l_aux,
        rmin,
        rdelta,
        nstep,
        use_mad,
    )
}

/// Packs 256 2-bit values the K-quant way: byte `l` of each 32-byte group
/// holds elements `l, l+32, l+64, l+96` of its 128-element half.
pub(crate) fn pack_2bit(l: &[u8], qs: &mut [u8]) {
    for (half, q) in l.chunks_exact(128).zip(qs.chunks_exact_mut(32)) {
        for i in 0..32 {
            q[i] = half[i] | (half[i + 32] << 2) | (half[i + 64] << 4) | (half[i + 96] << 6);
        }
    }
}

/// `quantize_row_q2_K_ref`.
pub(crate) fn quantize_q2_k(src: &[f32], dst: &mut [u8]) {
    const Q4SCALE: f32 = 15.0;
    for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(Q2_K_BYTES)) {
        let mut l = [0u8; QK_K];
        let mut l_aux = [0u8; 16];
        let (mut scales, mut mins) = ([0.0f32; 16], [0.0f32; 16]);
        let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
        for j in 0..16 {
            let xs = &x[16 * j..16 * j + 16];
            let mut weights = [0.0f32; 16];
            for (w, &v) in weights.iter_mut().zip(xs) {
                *w = v.abs();
            }
            let lj = &mut l[16 * j..16 * j + 16];
            (scales[j], mins[j]) =
                make_qkx2_quants(3, xs, &weights, lj, &mut l_aux, -0.5, 0.1, 15, true);
            max_scale = max_scale.max_ggml(scales[j]);
            max_min = max_min.max_ggml(mins[j]);
        }
        let (sc, rest) = y.split_at_mut(16);
        if max_scale > 0.0 {
            let iscale = Q4SCALE / max_scale;
            for (s, &v) in sc.iter_mut().zip(&scales) {
                *s = nearest_int(iscale * v) as u8;
            }
            wr_f16(rest, 64, max_scale / Q4SCALE);
        } else {
            sc.fill(0);
            wr_f16(rest, 64, 0.0);
        }
        if max_min > 0.0 {
            let iscale = Q4SCALE / max_min;
            for (s, &v) in sc.iter_mut().zip(&mins) {
                *s = (i32::from(*s) | (nearest_int(iscale * v) << 4)) as u8;
            }
            wr_f16(rest, 66, max_min / Q4SCALE);
        } else {
            wr_f16(rest, 66, 0.0);
        }
        q2k_finish(x, y, &mut l);
    }
}

/// The end of every Q2_K quantizer: requantizes against the stored
/// (rounded) sub-block scales and mins, then packs the 2-bit values.
pub(crate) fn q2k_finish(x: &[f32], y: &mut [u8], l: &mut [u8; QK_K]) {
    let (sc, rest) = y.split_at_mut(16);
    let (d_all, dmin_all) = (rd_f16(rest, 64), rd_f16(rest, 66));
    for j in 0..16 {
        let d = d_all * f32::from(sc[j] & 0x0f);
        if d == 0.0 {
            continue;
        }
        let dm = dmin_all * f32::from(sc[j] >> 4);
        for ii in 0..16 {
            l[16 * j + ii] = nearest_int((x[16 * j + ii] + dm) / d).clamp(0, 3) as u8;
        }
    }
    pack_2bit(l, &mut rest[..64]);
}

/// `quantize_row_q3_K_ref`.
pub(crate) fn quantize_q3_k(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(Q3_K_BYTES)) {
        let mut l = [0i8; QK_K];
        let mut scales = [0.0f32; 16];
        let (mut max_scale, mut amax) = (0.0f32, 0.0f32);
        for j in 0..16 {
            scales[j] = make_q3_quants(4, &x[16 * j..16 * j + 16], &mut l[16 * j..16 * j + 16]);
            if scales[j].abs() > amax {
                amax = scales[j].abs();
                max_scale = scales[j];
            }
        }
        let (sc, dbytes) = y[96..].split_at_mut(12);
        sc.fill(0);
        if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            for (j, &s) in scales.iter().enumerate() {
                // C: int8_t l = nearest_int(...); l = MAX(-32, MIN(31, l)) + 32;
                let lq = (i32::from(nearest_int(iscale * s) as i8).clamp(-32, 31) + 32) as u8;
                if j < 8 {
                    sc[j] = lq & 0x0f;
                } else {
                    sc[j - 8] |= (lq & 0x0f) << 4;
                }
                sc[j % 4 + 8] |= (lq >> 4) << (2 * (j / 4));
            }
            wr_f16(dbytes, 0, 1.0 / iscale);
        } else {
            wr_f16(dbytes, 0, 0.0);
        }
        q3k_finish(x, y, &mut l);
    }
}

/// The end of every Q3_K quantizer: requantizes against the stored
/// (rounded) sub-block scales, then packs the high bits (element j's into
/// bit j/32 of hmask[j % 32]) and the low two bits.
pub(crate) fn q3k_finish(x: &[f32], y: &mut [u8], l: &mut [i8; QK_K]) {
    let (hmask, rest) = y.split_at_mut(32);
    let (qs, rest) = rest.split_at_mut(64);
    let (sc, dbytes) = rest.split_at_mut(12);
    let d_all = rd_f16(dbytes, 0);
    for j in 0..16 {
        let lo = if j < 8 { sc[j] & 0x0f } else { sc[j - 8] >> 4 };
        let hi = (sc[8 + j % 4] >> (2 * (j / 4))) & 3;
        let s = (lo | (hi << 4)) as i8 - 32;
        let d = d_all * f32::from(s);
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
    let lu: [u8; QK_K] = l.map(|v| v as u8);
    pack_2bit(&lu, qs);
}

/// Shared scale search of the Q4_K and Q5_K reference quantizers: per
/// 32-element sub-block, `make_qkx2_quants` with weights `rms + |x|`.
fn k4_subblock_scales(
    x: &[f32],
    nmax: i32,
    rmin: f32,
    nstep: i32,
    l: &mut [u8; QK_K],
) -> ([f32; 8], [f32; 8]) {
    let (mut scales, mut mins) = ([0.0f32; 8], [0.0f32; 8]);
    let mut l_aux = [0u8; 32];
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let mut sum_x2 = 0.0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        let mut weights = [0.0f32; 32];
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        (scales[j], mins[j]) = make_qkx2_quants(
            nmax,
            xs,
            &weights,
            &mut l[32 * j..32 * j + 32],
            &mut l_aux,
            rmin,
            0.1,
            nstep,
            false,
        );
    }
    (scales, mins)
}

/// Packs eight 6-bit scales and mins into Q4_K/Q5_K's 12 bytes and writes
/// `d = max_scale/63`, `dmin = max_min/63` at the start of the block.
fn k4_pack_scales(scales: &[f32; 8], mins: &[f32; 8], y: &mut [u8]) {
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for j in 0..8 {
        max_scale = max_scale.max_ggml(scales[j]);
        max_min = max_min.max_ggml(mins[j]);
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let sc = &mut y[4..16];
    for j in 0..8 {
        // C: uint8_t ls = nearest_int(...); ls = MIN(63, ls);
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            sc[j] = ls;
            sc[j + 4] = lm;
        } else {
            sc[j + 4] = (ls & 0x0f) | ((lm & 0x0f) << 4);
            sc[j - 4] |= (ls >> 4) << 6;
            sc[j] |= (lm >> 4) << 6;
        }
    }
    wr_f16(y, 0, max_scale / 63.0);
    wr_f16(y, 2, max_min / 63.0);
}

/// Requantizes each sub-block against its stored (rounded) scale and min.
pub(crate) fn k4_requantize(x: &[f32], y: &[u8], nmax: i32, l: &mut [u8; QK_K]) {
    let (d_all, dmin_all) = (rd_f16(y, 0), rd_f16(y, 2));
    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, &y[4..16]);
        let d = d_all * f32::from(sc);
        if d == 0.0 {
            continue;
        }
        let dm = dmin_all * f32::from(m);
        for ii in 0..32 {
            l[32 * j + ii] = nearest_int((x[32 * j + ii] + dm) / d).clamp(0, nmax) as u8;
        }
    }
}

/// `quantize_row_q4_K_ref`.
pub(crate) fn quantize_q4_k(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(Q4_K_BYTES)) {
        let mut l = [0u8; QK_K];
        let (scales, mins) = k4_subblock_scales(x, 15, -1.0, 20, &mut l);
        k4_pack_scales(&scales, &mins, y);
        k4_requantize(x, y, 15, &mut l);
        pack_q4k(&l, y);
    }
}

/// Packs Q4_K's nibbles: byte i of each 32-byte group holds elements i and
/// i + 32 of its 64.
pub(crate) fn pack_q4k(l: &[u8; QK_K], y: &mut [u8]) {
    for (c, q) in y[16..].chunks_exact_mut(32).enumerate() {
        for i in 0..32 {
            q[i] = l[64 * c + i] | (l[64 * c + 32 + i] << 4);
        }
    }
}

/// `quantize_row_q5_K_ref`.
pub(crate) fn quantize_q5_k(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(Q5_K_BYTES)) {
        let mut l = [0u8; QK_K];
        let (scales, mins) = k4_subblock_scales(x, 31, -0.5, 15, &mut l);
        k4_pack_scales(&scales, &mins, y);
        k4_requantize(x, y, 31, &mut l);
        pack_q5k(&l, y);
    }
}

/// Packs Q5_K's values: the fifth bits into qh, the nibbles as Q4_K's.
pub(crate) fn pack_q5k(l: &[u8; QK_K], y: &mut [u8]) {
    let (qh, ql) = y[16..].split_at_mut(32);
    qh.fill(0);
    for (c, q) in ql.chunks_exact_mut(32).enumerate() {
        let (m1, m2) = (1u8 << (2 * c), 2u8 << (2 * c));
        for i in 0..32 {
            let (mut l1, mut l2) = (l[64 * c + i], l[64 * c + 32 + i]);
            if l1 > 15 {
                l1 -= 16;
                qh[i] |= m1;
            }
            if l2 > 15 {
                l2 -= 16;
                qh[i] |= m2;
            }
            q[i] = l1 | (l2 << 4);
        }
    }
}

/// `quantize_row_q6_K_ref`.
pub(crate) fn quantize_q6_k(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(Q6_K_BYTES)) {
        let mut l = [0i8; QK_K];
        let mut scales = [0.0f32; 16];
        let (mut max_scale, mut max_abs_scale) = (0.0f32, 0.0f32);
        for ib in 0..16 {
            let s = make_qx_quants(
                32,
                &x[16 * ib..16 * ib + 16],
                &mut l[16 * ib..16 * ib + 16],
                1,
                None,
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

/// The end of every Q6_K quantizer: the 8-bit sub-block scales under
/// `d = max_scale/-128`, the values requantized against them, packed.
pub(crate) fn q6k_finish(
    x: &[f32],
    y: &mut [u8],
    scales: &[f32; 16],
    max_scale: f32,
    l: &mut [i8; QK_K],
) {
    let (ql, rest) = y.split_at_mut(128);
    let (qh, rest) = rest.split_at_mut(64);
    let (sc, dbytes) = rest.split_at_mut(16);
    let iscale = -128.0 / max_scale;
    wr_f16(dbytes, 0, 1.0 / iscale);
    for (s, &v) in sc.iter_mut().zip(scales.iter()) {
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
        for i in 0..32 {
            let q = |k: usize| lh[i + 32 * k] as u8;
            ql[i] = (q(0) & 0x0f) | ((q(2) & 0x0f) << 4);
            ql[i + 32] = (q(1) & 0x0f) | ((q(3) & 0x0f) << 4);
            qh[i] = (q(0) >> 4) | ((q(1) >> 4) << 2) | ((q(2) >> 4) << 4) | ((q(3) >> 4) << 6);
        }
    }
}

/// ggml's running maximum `if (v > m) m = v;` (keeps `m` when `v` is NaN).
trait MaxGgml {
    fn max_ggml(self, v: f32) -> f32;
}

impl MaxGgml for f32 {
    #[inline]
    fn max_ggml(self, v: f32) -> f32 {
        if v > self {
            v
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        assert_eq!(nearest_int(0.5), 0);
        assert_eq!(nearest_int(1.5), 2);
        assert_eq!(nearest_int(2.5), 2);
        assert_eq!(nearest_int(-0.5), 0);
        assert_eq!(nearest_int(-1.5), -2);
        assert_eq!(nearest_int(-3.7), -4);
        assert_eq!(nearest_int(127.49), 127);
    }
}
