//! The 256-element "K" super-block formats: dequantization and dot products
//! for Q2_K … Q6_K, plus the Q8_K activation format (quantize + dequantize).
//!
//! Byte layouts (ggml-common.h; `d`, `dmin` are f16 unless noted):
//!
//! | type | bytes | layout |
//! |------|-------|--------|
//! | Q2_K | 84  | `scales[16]` (lo nibble scale, hi nibble min), `qs[64]` (2 bits), `d`, `dmin` |
//! | Q3_K | 110 | `hmask[32]` (3rd bit), `qs[64]` (2 bits), `scales[12]` (16 × 6 bits), `d` |
//! | Q4_K | 144 | `d`, `dmin`, `scales[12]` (8 scales + 8 mins, 6 bits), `qs[128]` (4 bits) |
//! | Q5_K | 176 | `d`, `dmin`, `scales[12]`, `qh[32]` (5th bit), `qs[128]` |
//! | Q6_K | 210 | `ql[128]` (4 bits), `qh[64]` (2 bits), `scales[16]` i8, `d` |
//! | Q8_K | 292 | `d` **f32**, `qs[256]` i8, `bsums[16]` i16 (sums of 16 quants) |
//!
//! Dequantizers follow `dequantize_row_*` in ggml-quants.c (same float
//! operations, so the same bits); dot products follow
//! `ggml_vec_dot_*_q8_K_generic` in ggml-cpu/quants.c, including its eight
//! float partial sums, so the scalar results match ggml's generic path.

use super::float::{f32_to_f16, rd_f16, rd_f32, wr_u16};
use super::kquantize::nearest_int;

pub(crate) const QK_K: usize = 256;
pub(crate) const Q2_K_BYTES: usize = 84;
pub(crate) const Q3_K_BYTES: usize = 110;
pub(crate) const Q4_K_BYTES: usize = 144;
pub(crate) const Q5_K_BYTES: usize = 176;
pub(crate) const Q6_K_BYTES: usize = 210;
pub(crate) const Q8_K_BYTES: usize = 292;

/// Offsets of the Q8_K fields.
pub(crate) const Q8K_QS: usize = 4;
pub(crate) const Q8K_BSUMS: usize = 4 + QK_K;

/// `get_scale_min_k4`: the j-th (scale, min) pair of a Q4_K/Q5_K block's
/// 12 packed bytes (eight 6-bit scales and eight 6-bit mins).
#[inline]
pub(crate) fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// All eight (scales, mins) of a Q4_K/Q5_K block.
#[inline]
pub(crate) fn scales_mins_k4(q: &[u8]) -> ([u8; 8], [u8; 8]) {
    let (mut sc, mut mn) = ([0u8; 8], [0u8; 8]);
    for j in 0..8 {
        (sc[j], mn[j]) = scale_min_k4(j, q);
    }
    (sc, mn)
}

/// The sixteen 6-bit scales of a Q3_K block, as stored (0..=63, bias 32).
#[inline]
pub(crate) fn scales_q3k(s: &[u8]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (j, o) in out.iter_mut().enumerate() {
        let lo = if j < 8 { s[j] & 0x0f } else { s[j - 8] >> 4 };
        let hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        *o = (lo | (hi << 4)) as i8;
    }
    out
}

#[inline]
fn rd_i16(b: &[u8], off: usize) -> i16 {
    i16::from_le_bytes([b[off], b[off + 1]])
}

// -------------------------------------------------------------- dequantize

/// `dequantize_row_q2_K`.
pub(crate) fn dequantize_q2_k(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(Q2_K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let (d, min) = (rd_f16(x, 80), rd_f16(x, 82));
        let mut out = y.iter_mut();
        let mut is = 0;
        for n in 0..2 {
            let q = &x[16 + 32 * n..16 + 32 * n + 32];
            for shift in [0, 2, 4, 6] {
                for half in [&q[..16], &q[16..]] {
                    let sc = x[is];
                    is += 1;
                    let dl = d * f32::from(sc & 0x0f);
                    let ml = min * f32::from(sc >> 4);
                    for (&b, v) in half.iter().zip(out.by_ref()) {
                        *v = dl * f32::from((b >> shift) & 3) - ml;
                    }
                }
            }
        }
    }
}

/// `dequantize_row_q3_K`.
pub(crate) fn dequantize_q3_k(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(Q3_K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d_all = rd_f16(x, 108);
        let scales = scales_q3k(&x[96..108]);
        let hm = &x[0..32];
        let mut out = y.iter_mut();
        let mut is = 0;
        let mut m = 1u8;
        for n in 0..2 {
            let q = &x[32 + 32 * n..32 + 32 * n + 32];
            for shift in [0, 2, 4, 6] {
                for l0 in [0, 16] {
                    let dl = d_all * f32::from(scales[is] - 32);
                    is += 1;
                    for l in l0..l0 + 16 {
                        let lo = ((q[l] >> shift) & 3) as i8;
                        let v = lo - if hm[l] & m != 0 { 0 } else { 4 };
                        if let Some(o) = out.next() {
                            *o = dl * f32::from(v);
                        }
                    }
                }
                m <<= 1;
            }
        }
    }
}

/// `dequantize_row_q4_K`.
pub(crate) fn dequantize_q4_k(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(Q4_K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let (d, min) = (rd_f16(x, 0), rd_f16(x, 2));
        let scales = &x[4..16];
        for (c, (q, y)) in x[16..]
            .chunks_exact(32)
            .zip(y.chunks_exact_mut(64))
            .enumerate()
        {
            let (sc1, m1) = scale_min_k4(2 * c, scales);
            let (sc2, m2) = scale_min_k4(2 * c + 1, scales);
            let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
            let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
            for l in 0..32 {
                y[l] = d1 * f32::from(q[l] & 0x0f) - m1;
                y[l + 32] = d2 * f32::from(q[l] >> 4) - m2;
            }
        }
    }
}

/// `dequantize_row_q5_K`.
pub(crate) fn dequantize_q5_k(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(Q5_K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let (d, min) = (rd_f16(x, 0), rd_f16(x, 2));
        let scales = &x[4..16];
        let qh = &x[16..48];
        for (c, (ql, y)) in x[48..]
            .chunks_exact(32)
            .zip(y.chunks_exact_mut(64))
            .enumerate()
        {
            let (sc1, m1) = scale_min_k4(2 * c, scales);
            let (sc2, m2) = scale_min_k4(2 * c + 1, scales);
            let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
            let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
            let (u1, u2) = (1u8 << (2 * c), 2u8 << (2 * c));
            for l in 0..32 {
                let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
                let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
                y[l] = d1 * f32::from((ql[l] & 0x0f) + h1) - m1;
                y[l + 32] = d2 * f32::from((ql[l] >> 4) + h2) - m2;
            }
        }
    }
}

/// Unpacks the 256 6-bit quants of a Q6_K block, minus 32. Within each
/// 128-element half, element `l + 32k` (l < 32) has its low nibble in
/// `ql[l]` (k = 0, 2: low/high nibble) or `ql[l + 32]` (k = 1, 3) and its
/// two high bits at bits `2k..2k+2` of `qh[l]`.
#[inline]
fn unpack_q6k(x: &[u8], out: &mut [i8; QK_K]) {
    for (h, out) in out.chunks_exact_mut(128).enumerate() {
        let ql = &x[64 * h..64 * h + 64];
        let qh = &x[128 + 32 * h..128 + 32 * h + 32];
        for l in 0..32 {
            let q = |lo: u8, k: u32| ((lo & 0x0f) | (((qh[l] >> (2 * k)) & 3) << 4)) as i8 - 32;
            out[l] = q(ql[l], 0);
            out[l + 32] = q(ql[l + 32], 1);
            out[l + 64] = q(ql[l] >> 4, 2);
            out[l + 96] = q(ql[l + 32] >> 4, 3);
        }
    }
}

/// `dequantize_row_q6_K`.
pub(crate) fn dequantize_q6_k(src: &[u8], dst: &mut [f32]) {
    let mut q = [0i8; QK_K];
    for (x, y) in src.chunks_exact(Q6_K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = rd_f16(x, 208);
        unpack_q6k(x, &mut q);
        for ((ys, qs), &s) in y
            .chunks_exact_mut(16)
            .zip(q.chunks_exact(16))
            .zip(&x[192..208])
        {
            let ds = d * f32::from(s as i8);
            for (v, &q) in ys.iter_mut().zip(qs) {
                *v = ds * f32::from(q);
            }
        }
    }
}

/// `dequantize_row_q8_K`.
pub(crate) fn dequantize_q8_k(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(Q8_K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = rd_f32(x, 0);
        for (v, &q) in y.iter_mut().zip(&x[Q8K_QS..Q8K_BSUMS]) {
            *v = d * f32::from(q as i8);
        }
    }
}

// ------------------------------------------------------------------- Q8_K

/// `quantize_row_q8_K_ref`: `d = max/-127` where `max` is the signed value of
/// largest magnitude (first on ties); `q = min(127, nearest_int(x/d))`;
/// `bsums` are sums of 16 quants. An all-zero block gets `d = 0` and zero
/// quants and sums (ggml leaves its sums unwritten there).
pub(crate) fn quantize_q8_k(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(Q8_K_BYTES)) {
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in x {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            y.fill(0);
            continue;
        }
        let iscale = -127.0 / max;
        for (q, &v) in y[Q8K_QS..Q8K_BSUMS].iter_mut().zip(x) {
            *q = nearest_int(iscale * v).min(127) as i8 as u8;
        }
        for j in 0..16 {
            let q = &y[Q8K_QS + 16 * j..Q8K_QS + 16 * j + 16];
            let sum: i32 = q.iter().map(|&b| i32::from(b as i8)).sum();
            let off = Q8K_BSUMS + 2 * j;
            y[off..off + 2].copy_from_slice(&(sum as i16).to_le_bytes());
        }
        y[0..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
    }
}

// ------------------------------------------------------------ dot products

/// Sums eight per-lane integer sums into the running float sums the way the
/// generic K-quant dots do: `sums[l] += d * aux32[l]`.
#[inline]
fn add_lanes(sums: &mut [f32; 8], d: f32, aux32: &[i32; 8]) {
    for (s, &a) in sums.iter_mut().zip(aux32) {
        *s += d * a as f32;
    }
}

/// Accumulates `scale · Σ q8·a` over one sub-block into eight lanes, as the
/// generic kernels do in groups of eight.
#[inline]
fn mac_lanes(aux32: &mut [i32; 8], scale: i32, q8: &[u8], a: &[i8]) {
    for (g8, ga) in q8.chunks_exact(8).zip(a.chunks_exact(8)) {
        for l in 0..8 {
            aux32[l] += scale * (i32::from(g8[l] as i8) * i32::from(ga[l]));
        }
    }
}

#[inline]
fn finish(mut sumf: f32, sums: &[f32; 8]) -> f32 {
    for &s in sums {
        sumf += s;
    }
    sumf
}

/// `ggml_vec_dot_q2_K_q8_K_generic`: W (n, Q2_K) · A (n, Q8_K).
pub(crate) fn vec_dot_q2_k_q8_k(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(Q2_K_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        let sc = &x[0..16];
        let yd = rd_f32(y, 0);
        let mut summs = 0i32;
        for (j, &s) in sc.iter().enumerate() {
            summs += i32::from(rd_i16(y, Q8K_BSUMS + 2 * j)) * i32::from(s >> 4);
        }
        let dall = yd * rd_f16(x, 80);
        let dmin = yd * rd_f16(x, 82);
        let mut isum = 0i32;
        let mut is = 0;
        let mut q8 = &y[Q8K_QS..Q8K_BSUMS];
        for n in 0..2 {
            let q2 = &x[16 + 32 * n..16 + 32 * n + 32];
            for shift in [0, 2, 4, 6] {
                for half in 0..2 {
                    let d = i32::from(sc[is] & 0x0f);
                    is += 1;
                    let mut isuml = 0i32;
                    for l in 16 * half..16 * half + 16 {
                        isuml += i32::from(q8[l] as i8) * i32::from((q2[l] >> shift) & 3);
                    }
                    isum += d * isuml;
                }
                q8 = &q8[32..];
            }
        }
        sumf += dall * isum as f32 - dmin * summs as f32;
    }
    sumf
}

/// `ggml_vec_dot_q3_K_q8_K_generic`.
pub(crate) fn vec_dot_q3_k_q8_k(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sums = [0.0f32; 8];
    let mut aux8 = [0i8; QK_K];
    for (x, y) in w.chunks_exact(Q3_K_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        let hm = &x[0..32];
        let mut m = 1u8;
        for n in 0..2 {
            let q3 = &x[32 + 32 * n..32 + 32 * n + 32];
            for (k, shift) in [0, 2, 4, 6].into_iter().enumerate() {
                let a = &mut aux8[128 * n + 32 * k..128 * n + 32 * k + 32];
                for l in 0..32 {
                    a[l] = ((q3[l] >> shift) & 3) as i8 - if hm[l] & m != 0 { 0 } else { 4 };
                }
                m <<= 1;
            }
        }
        let scales = scales_q3k(&x[96..108]);
        let q8 = &y[Q8K_QS..Q8K_BSUMS];
        let mut aux32 = [0i32; 8];
        for j in 0..16 {
            let scale = i32::from(scales[j]) - 32;
            mac_lanes(
                &mut aux32,
                scale,
                &q8[16 * j..16 * j + 16],
                &aux8[16 * j..16 * j + 16],
            );
        }
        add_lanes(&mut sums, rd_f16(x, 108) * rd_f32(y, 0), &aux32);
    }
    finish(0.0, &sums)
}

/// Shared body of the Q4_K and Q5_K generic dots once the quants `aux8`
/// (0..=31) of a block are unpacked: returns the block's lane sums and its
/// min correction `Σ bsums·mins`.
#[inline]
fn k4_block(scales: &[u8], y: &[u8], aux8: &[i8; QK_K]) -> ([i32; 8], i32) {
    let (sc, mn) = scales_mins_k4(scales);
    let mut sumi = 0i32;
    for j in 0..16 {
        sumi += i32::from(rd_i16(y, Q8K_BSUMS + 2 * j)) * i32::from(mn[j / 2]);
    }
    let q8 = &y[Q8K_QS..Q8K_BSUMS];
    let mut aux32 = [0i32; 8];
    for ((&s, g8), ga) in sc
        .iter()
        .zip(q8.chunks_exact(32))
        .zip(aux8.chunks_exact(32))
    {
        mac_lanes(&mut aux32, i32::from(s), g8, ga);
    }
    (aux32, sumi)
}

/// `ggml_vec_dot_q4_K_q8_K_generic`.
pub(crate) fn vec_dot_q4_k_q8_k(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sums = [0.0f32; 8];
    let mut sumf = 0.0f32;
    let mut aux8 = [0i8; QK_K];
    for (x, y) in w.chunks_exact(Q4_K_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        for (c, q4) in x[16..].chunks_exact(32).enumerate() {
            for l in 0..32 {
                aux8[64 * c + l] = (q4[l] & 0x0f) as i8;
                aux8[64 * c + 32 + l] = (q4[l] >> 4) as i8;
            }
        }
        let (aux32, sumi) = k4_block(&x[4..16], y, &aux8);
        let yd = rd_f32(y, 0);
        add_lanes(&mut sums, rd_f16(x, 0) * yd, &aux32);
        sumf -= rd_f16(x, 2) * yd * sumi as f32;
    }
    finish(sumf, &sums)
}

/// `ggml_vec_dot_q5_K_q8_K_generic`.
pub(crate) fn vec_dot_q5_k_q8_k(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sums = [0.0f32; 8];
    let mut sumf = 0.0f32;
    let mut aux8 = [0i8; QK_K];
    for (x, y) in w.chunks_exact(Q5_K_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        let hm = &x[16..48];
        for (c, q4) in x[48..].chunks_exact(32).enumerate() {
            let (m1, m2) = (1u8 << (2 * c), 2u8 << (2 * c));
            for l in 0..32 {
                let h1 = if hm[l] & m1 != 0 { 16 } else { 0 };
                let h2 = if hm[l] & m2 != 0 { 16 } else { 0 };
                aux8[64 * c + l] = ((q4[l] & 0x0f) + h1) as i8;
                aux8[64 * c + 32 + l] = ((q4[l] >> 4) + h2) as i8;
            }
        }
        let (aux32, sumi) = k4_block(&x[4..16], y, &aux8);
        let yd = rd_f32(y, 0);
        add_lanes(&mut sums, rd_f16(x, 0) * yd, &aux32);
        sumf -= rd_f16(x, 2) * yd * sumi as f32;
    }
    finish(sumf, &sums)
}

/// `ggml_vec_dot_q6_K_q8_K_generic`.
pub(crate) fn vec_dot_q6_k_q8_k(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sums = [0.0f32; 8];
    let mut aux8 = [0i8; QK_K];
    for (x, y) in w.chunks_exact(Q6_K_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        unpack_q6k(x, &mut aux8);
        let q8 = &y[Q8K_QS..Q8K_BSUMS];
        let mut aux32 = [0i32; 8];
        for j in 0..16 {
            let scale = i32::from(x[192 + j] as i8);
            mac_lanes(
                &mut aux32,
                scale,
                &q8[16 * j..16 * j + 16],
                &aux8[16 * j..16 * j + 16],
            );
        }
        add_lanes(&mut sums, rd_f16(x, 208) * rd_f32(y, 0), &aux32);
    }
    finish(0.0, &sums)
}

/// Writes an f16 `d` (used by the quantizers in `kquantize`).
#[inline]
pub(crate) fn wr_f16(b: &mut [u8], off: usize, v: f32) {
    wr_u16(b, off, f32_to_f16(v));
}
