//! The 32-element "legacy" block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1.
//!
//! Byte layouts (ggml-common.h, all little-endian, `d`/`m`/`s` are f16):
//!
//! | type | bytes | layout |
//! |------|-------|--------|
//! | Q4_0 | 18 | `d`, `qs[16]` — x = d·(q−8); element j in the low nibble of `qs[j]`, j+16 in the high nibble |
//! | Q4_1 | 20 | `d`, `m`, `qs[16]` — x = d·q + m |
//! | Q5_0 | 22 | `d`, `qh[4]` (u32, bit j = 5th bit of element j), `qs[16]` — x = d·(q−16) |
//! | Q5_1 | 24 | `d`, `m`, `qh[4]`, `qs[16]` — x = d·q + m |
//! | Q8_0 | 34 | `d`, `qs[32]` i8 — x = d·q |
//! | Q8_1 | 36 | `d`, `s` = d·Σq, `qs[32]` i8 |
//!
//! Quantizers follow `quantize_row_*_ref` in ggml-quants.c step by step (same
//! float operations in the same order), so they produce the same bytes.
//! Dot products follow `ggml_vec_dot_*_generic` in ggml-cpu/quants.c.

use super::float::{f32_to_f16, rd_f16, wr_u16};

pub(crate) const QK: usize = 32;
pub(crate) const Q4_0_BYTES: usize = 18;
pub(crate) const Q4_1_BYTES: usize = 20;
pub(crate) const Q5_0_BYTES: usize = 22;
pub(crate) const Q5_1_BYTES: usize = 24;
pub(crate) const Q8_0_BYTES: usize = 34;
pub(crate) const Q8_1_BYTES: usize = 36;

/// Absolute maximum of a block and the signed value that has it (the first
/// one on ties). NaN elements are skipped.
#[inline]
fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    (amax, max)
}

/// Minimum and maximum of a block, starting from ±f32::MAX (as ggml does).
#[inline]
fn min_max(x: &[f32]) -> (f32, f32) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

#[inline]
fn inv_or_zero(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// Reads the 32 high bits of a Q5 block.
#[inline]
fn rd_qh(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

// ---------------------------------------------------------------- quantize

/// `quantize_row_q4_0_ref`.
pub(crate) fn quantize_q4_0(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(Q4_0_BYTES)) {
        let (_, max) = signed_absmax(x);
        let d = max / -8.0;
        let id = inv_or_zero(d);
        wr_u16(y, 0, f32_to_f16(d));
        for j in 0..QK / 2 {
            // C: MIN(15, (int8_t)(x*id + 8.5f)); `as i8` truncates like C in range.
            let q0 = ((x[j] * id + 8.5) as i8).min(15) as u8;
            let q1 = ((x[j + QK / 2] * id + 8.5) as i8).min(15) as u8;
            y[2 + j] = q0 | (q1 << 4);
        }
    }
}

/// `quantize_row_q4_1_ref`.
pub(crate) fn quantize_q4_1(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(Q4_1_BYTES)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 15.0;
        let id = inv_or_zero(d);
        wr_u16(y, 0, f32_to_f16(d));
        wr_u16(y, 2, f32_to_f16(min));
        for j in 0..QK / 2 {
            let q0 = (((x[j] - min) * id + 0.5) as i8).min(15) as u8;
            let q1 = (((x[j + QK / 2] - min) * id + 0.5) as i8).min(15) as u8;
            y[4 + j] = q0 | (q1 << 4);
        }
    }
}

/// `quantize_row_q5_0_ref`.
pub(crate) fn quantize_q5_0(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(Q5_0_BYTES)) {
        let (_, max) = signed_absmax(x);
        let d = max / -16.0;
        let id = inv_or_zero(d);
        wr_u16(y, 0, f32_to_f16(d));
        let mut qh = 0u32;
        for j in 0..QK / 2 {
            let q0 = ((x[j] * id + 16.5) as i8).min(31) as u8;
            let q1 = ((x[j + QK / 2] * id + 16.5) as i8).min(31) as u8;
            y[6 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
            qh |= u32::from(q0 >> 4) << j;
            qh |= u32::from(q1 >> 4) << (j + QK / 2);
        }
        y[2..6].copy_from_slice(&qh.to_le_bytes());
    }
}

/// `quantize_row_q5_1_ref`.
pub(crate) fn quantize_q5_1(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(Q5_1_BYTES)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 31.0;
        let id = inv_or_zero(d);
        wr_u16(y, 0, f32_to_f16(d));
        wr_u16(y, 2, f32_to_f16(min));
        let mut qh = 0u32;
        for j in 0..QK / 2 {
            // C: (uint8_t)(x + 0.5f), no clamp.
            let q0 = ((x[j] - min) * id + 0.5) as u8;
            let q1 = ((x[j + QK / 2] - min) * id + 0.5) as u8;
            y[8 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
            qh |= u32::from((q0 & 0x10) >> 4) << j;
            qh |= u32::from((q1 & 0x10) >> 4) << (j + QK / 2);
        }
        y[4..8].copy_from_slice(&qh.to_le_bytes());
    }
}

/// Scale of a Q8 block: `d = amax/127`, `id = 1/d` (0 for an all-zero block).
/// NaN elements are skipped when looking for the maximum.
#[inline]
pub(crate) fn q8_scale(x: &[f32]) -> (f32, f32) {
    let (amax, _) = signed_absmax(x);
    let d = amax / 127.0;
    (d, inv_or_zero(d))
}

/// `quantize_row_q8_0_ref`: `q = roundf(x/d)` (ties away from zero).
pub(crate) fn quantize_q8_0(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(Q8_0_BYTES)) {
        let (d, id) = q8_scale(x);
        wr_u16(y, 0, f32_to_f16(d));
        for (q, &v) in y[2..].iter_mut().zip(x) {
            *q = (v * id).round() as i8 as u8;
        }
    }
}

/// `quantize_row_q8_1_ref`: as Q8_0, plus `s = f16(d · Σq)`.
pub(crate) fn quantize_q8_1(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(Q8_1_BYTES)) {
        let (d, id) = q8_scale(x);
        wr_u16(y, 0, f32_to_f16(d));
        let mut sum = 0i32;
        for (q, &v) in y[4..].iter_mut().zip(x) {
            let qi = (v * id).round() as i8;
            sum += i32::from(qi);
            *q = qi as u8;
        }
        wr_u16(y, 2, f32_to_f16(sum as f32 * d));
    }
}

/// The activation rule of ggml's x86 CPU backend (`quantize_row_q8_0` and
/// `quantize_row_q8_1` under AVX/AVX2): the multiplier is `127/amax` rather
/// than `1/d`, and rounding is to nearest even (`_mm256_round_ps`). llama.cpp
/// quantizes activations this way on the CPUs hearth's AVX2 tier serves, so
/// that tier does the same; this is its readable reference.
pub fn quantize_q8_x86(src: &[f32], dst: &mut [u8], with_sum: bool) {
    let bytes = if with_sum { Q8_1_BYTES } else { Q8_0_BYTES };
    let qs = bytes - QK;
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(bytes)) {
        let (amax, _) = signed_absmax(x);
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        wr_u16(y, 0, f32_to_f16(d));
        let mut sum = 0i32;
        for (q, &v) in y[qs..].iter_mut().zip(x) {
            // cvtps_epi32 then saturating packs: NaN becomes -128.
            let r = (v * id).round_ties_even();
            let qi = if r.is_nan() {
                -128
            } else {
                r.clamp(-128.0, 127.0) as i32
            };
            sum += qi;
            *q = qi as i8 as u8;
        }
        if with_sum {
            wr_u16(y, 2, f32_to_f16(sum as f32 * d));
        }
    }
}

// -------------------------------------------------------------- dequantize

/// `dequantize_row_q4_0`.
pub(crate) fn dequantize_q4_0(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(Q4_0_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = rd_f16(x, 0);
        for j in 0..QK / 2 {
            y[j] = (i32::from(x[2 + j] & 0x0f) - 8) as f32 * d;
            y[j + QK / 2] = (i32::from(x[2 + j] >> 4) - 8) as f32 * d;
        }
    }
}

/// `dequantize_row_q4_1`.
pub(crate) fn dequantize_q4_1(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(Q4_1_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let (d, m) = (rd_f16(x, 0), rd_f16(x, 2));
        for j in 0..QK / 2 {
            y[j] = f32::from(x[4 + j] & 0x0f) * d + m;
            y[j + QK / 2] = f32::from(x[4 + j] >> 4) * d + m;
        }
    }
}

/// `dequantize_row_q5_0`.
pub(crate) fn dequantize_q5_0(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(Q5_0_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = rd_f16(x, 0);
        let qh = rd_qh(x, 2);
        for j in 0..QK / 2 {
            let h0 = ((qh >> j) << 4) & 0x10;
            let h1 = (qh >> (j + 12)) & 0x10;
            let q0 = (u32::from(x[6 + j] & 0x0f) | h0) as i32 - 16;
            let q1 = (u32::from(x[6 + j] >> 4) | h1) as i32 - 16;
            y[j] = q0 as f32 * d;
            y[j + QK / 2] = q1 as f32 * d;
        }
    }
}

/// `dequantize_row_q5_1`.
pub(crate) fn dequantize_q5_1(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(Q5_1_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let (d, m) = (rd_f16(x, 0), rd_f16(x, 2));
        let qh = rd_qh(x, 4);
        for j in 0..QK / 2 {
            let h0 = ((qh >> j) << 4) & 0x10;
            let h1 = (qh >> (j + 12)) & 0x10;
            y[j] = (u32::from(x[8 + j] & 0x0f) | h0) as f32 * d + m;
            y[j + QK / 2] = (u32::from(x[8 + j] >> 4) | h1) as f32 * d + m;
        }
    }
}

/// `dequantize_row_q8_0`.
pub(crate) fn dequantize_q8_0(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(Q8_0_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = rd_f16(x, 0);
        for (v, &q) in y.iter_mut().zip(&x[2..]) {
            *v = f32::from(q as i8) * d;
        }
    }
}

/// Q8_1 has no dequantizer upstream; this is the obvious `q·d`.
pub(crate) fn dequantize_q8_1(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(Q8_1_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = rd_f16(x, 0);
        for (v, &q) in y.iter_mut().zip(&x[4..]) {
            *v = f32::from(q as i8) * d;
        }
    }
}

// ------------------------------------------------------------ dot products

/// `ggml_vec_dot_q4_0_q8_0_generic`: W (n, Q4_0) · A (n, Q8_0).
pub(crate) fn vec_dot_q4_0_q8_0(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(Q4_0_BYTES).zip(a.chunks_exact(Q8_0_BYTES)) {
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..QK / 2 {
            s0 += (i32::from(x[2 + j] & 0x0f) - 8) * i32::from(y[2 + j] as i8);
            s1 += (i32::from(x[2 + j] >> 4) - 8) * i32::from(y[2 + j + QK / 2] as i8);
        }
        sumf += (s0 + s1) as f32 * rd_f16(x, 0) * rd_f16(y, 0);
    }
    sumf
}

/// `ggml_vec_dot_q4_1_q8_1_generic`: W (n, Q4_1) · A (n, Q8_1); the min
/// term uses the activation block's precomputed `s = d·Σq`.
pub(crate) fn vec_dot_q4_1_q8_1(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(Q4_1_BYTES).zip(a.chunks_exact(Q8_1_BYTES)) {
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..QK / 2 {
            s0 += i32::from(x[4 + j] & 0x0f) * i32::from(y[4 + j] as i8);
            s1 += i32::from(x[4 + j] >> 4) * i32::from(y[4 + j + QK / 2] as i8);
        }
        sumf += (rd_f16(x, 0) * rd_f16(y, 0)) * (s0 + s1) as f32 + rd_f16(x, 2) * rd_f16(y, 2);
    }
    sumf
}

/// `ggml_vec_dot_q5_0_q8_0_generic`.
pub(crate) fn vec_dot_q5_0_q8_0(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(Q5_0_BYTES).zip(a.chunks_exact(Q8_0_BYTES)) {
        let qh = rd_qh(x, 2);
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..QK / 2 {
            let h0 = ((qh >> j) & 1) << 4;
            let h1 = ((qh >> (j + 16)) & 1) << 4;
            let q0 = (u32::from(x[6 + j] & 0x0f) | h0) as i32 - 16;
            let q1 = (u32::from(x[6 + j] >> 4) | h1) as i32 - 16;
            s0 += q0 * i32::from(y[2 + j] as i8);
            s1 += q1 * i32::from(y[2 + j + QK / 2] as i8);
        }
        sumf += (rd_f16(x, 0) * rd_f16(y, 0)) * (s0 + s1) as f32;
    }
    sumf
}

/// `ggml_vec_dot_q5_1_q8_1_generic`.
pub(crate) fn vec_dot_q5_1_q8_1(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(Q5_1_BYTES).zip(a.chunks_exact(Q8_1_BYTES)) {
        let qh = rd_qh(x, 4);
        let (mut s0, mut s1) = (0i32, 0i32);
        for j in 0..QK / 2 {
            let h0 = ((qh >> j) << 4) & 0x10;
            let h1 = (qh >> (j + 12)) & 0x10;
            let q0 = (u32::from(x[8 + j] & 0x0f) | h0) as i32;
            let q1 = (u32::from(x[8 + j] >> 4) | h1) as i32;
            s0 += q0 * i32::from(y[4 + j] as i8);
            s1 += q1 * i32::from(y[4 + j + QK / 2] as i8);
        }
        sumf += (rd_f16(x, 0) * rd_f16(y, 0)) * (s0 + s1) as f32 + rd_f16(x, 2) * rd_f16(y, 2);
    }
    sumf
}

/// `ggml_vec_dot_q8_0_q8_0` in the order of ggml's x86 build (its AVX2
/// path, which llama.cpp runs on x86 CPUs): each block's products summed
/// four at a time into eight lanes, each lane fused-multiply-added with the
/// block's scale into its own accumulator, the lanes summed at the end as
/// `hsum_float_8` does. The same bits as the SIMD tiers' one-row dot, so
/// that no tier rounds a product differently from llama.cpp on x86.
pub(crate) fn vec_dot_q8_0_q8_0(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut acc = [0.0f32; 8];
    for (x, y) in w.chunks_exact(Q8_0_BYTES).zip(a.chunks_exact(Q8_0_BYTES)) {
        let d = rd_f16(x, 0) * rd_f16(y, 0);
        let (qx, qy) = (&x[2..], &y[2..]);
        for (l, acc) in acc.iter_mut().enumerate() {
            let s: i32 = (4 * l..4 * l + 4)
                .map(|j| i32::from(qx[j] as i8) * i32::from(qy[j] as i8))
                .sum();
            *acc = d.mul_add(s as f32, *acc);
        }
    }
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}
