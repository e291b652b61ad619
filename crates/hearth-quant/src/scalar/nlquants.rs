//! The table-valued and ternary formats: IQ4_NL, IQ4_XS (4-bit indices into
//! 16 non-linear values), MXFP4 (E2M1 values with a power-of-two block
//! scale) and TQ1_0, TQ2_0 (values −1, 0, 1).
//!
//! Byte layouts (ggml-common.h; `d` is f16, multi-byte fields little-endian):
//!
//! | type | elems | bytes | layout |
//! |------|-------|-------|--------|
//! | IQ4_NL | 32 | 18 | `d`, `qs[16]`: element j in the low nibble of `qs[j]`, j+16 in the high one |
//! | MXFP4 | 32 | 17 | `e` (E8M0 scale 2^(e−127)), `qs[16]` as IQ4_NL |
//! | IQ4_XS | 256 | 136 | `d`, `scales_h` u16 (2 high bits per 32), `scales_l[4]` (4 low bits per 32), `qs[128]` (per 32 as IQ4_NL) |
//! | TQ1_0 | 256 | 54 | `qs[48]` (5 trits a byte, base-3 fixed point), `qh[4]` (4 trits a byte), `d` |
//! | TQ2_0 | 256 | 66 | `qs[64]` (2 bits, value − 1), `d` |
//!
//! IQ4_NL and MXFP4 are dotted against Q8_0, the others against Q8_K, as in
//! ggml; dequantizers and dot products follow ggml-quants.c and the generic
//! dot products of ggml-cpu/quants.c in their float operation order.

use crate::grids::{e8m0_to_f32_half, KVALUES_IQ4NL, KVALUES_MXFP4};

use super::float::{rd_f16, rd_f32, rd_u16};
use super::kquants::{Q8K_QS, Q8_K_BYTES, QK_K};
use super::legacy::{Q8_0_BYTES, QK};

pub(crate) const IQ4_NL_BYTES: usize = 18;
pub(crate) const MXFP4_BYTES: usize = 17;
pub(crate) const IQ4_XS_BYTES: usize = 136;
pub(crate) const TQ1_0_BYTES: usize = 54;
pub(crate) const TQ2_0_BYTES: usize = 66;

/// The 16 values of 32 nibbles `qs` (low nibbles first) through `table`.
#[inline]
fn nibbles(qs: &[u8], table: &[i8; 16]) -> [i8; 32] {
    let mut v = [0i8; 32];
    for (j, &q) in qs[..16].iter().enumerate() {
        v[j] = table[usize::from(q & 0x0f)];
        v[j + 16] = table[usize::from(q >> 4)];
    }
    v
}

/// `Σ v·q` over a 32-element block, q as i8.
#[inline]
fn dot32(v: &[i8], q: &[u8]) -> i32 {
    v.iter()
        .zip(q)
        .map(|(&v, &q)| i32::from(v) * i32::from(q as i8))
        .sum()
}

// --------------------------------------------------------------- IQ4_NL

/// `dequantize_row_iq4_nl`.
pub(crate) fn dequantize_iq4_nl(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(IQ4_NL_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = rd_f16(x, 0);
        for (y, &v) in y.iter_mut().zip(&nibbles(&x[2..], &KVALUES_IQ4NL)) {
            *y = d * f32::from(v);
        }
    }
}

/// The generic `ggml_vec_dot_iq4_nl_q8_0`.
pub(crate) fn vec_dot_iq4_nl_q8_0(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(IQ4_NL_BYTES).zip(a.chunks_exact(Q8_0_BYTES)) {
        let d = rd_f16(y, 0) * rd_f16(x, 0);
        let v = nibbles(&x[2..], &KVALUES_IQ4NL);
        sumf += d * dot32(&v, &y[2..]) as f32;
    }
    sumf
}

// ---------------------------------------------------------------- MXFP4

/// `dequantize_row_mxfp4`.
pub(crate) fn dequantize_mxfp4(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(MXFP4_BYTES).zip(dst.chunks_exact_mut(QK)) {
        let d = e8m0_to_f32_half(x[0]);
        for (y, &v) in y.iter_mut().zip(&nibbles(&x[1..], &KVALUES_MXFP4)) {
            *y = f32::from(v) * d;
        }
    }
}

/// The generic `ggml_vec_dot_mxfp4_q8_0`.
pub(crate) fn vec_dot_mxfp4_q8_0(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(MXFP4_BYTES).zip(a.chunks_exact(Q8_0_BYTES)) {
        let d = rd_f16(y, 0) * e8m0_to_f32_half(x[0]);
        let v = nibbles(&x[1..], &KVALUES_MXFP4);
        sumf += d * dot32(&v, &y[2..]) as f32;
    }
    sumf
}

// --------------------------------------------------------------- IQ4_XS

/// The signed 6-bit scale (−32 ..= 31) of each 32 values of an IQ4_XS block.
#[inline]
pub(crate) fn iq4_xs_scales(x: &[u8]) -> [i32; 8] {
    let h = rd_u16(x, 2);
    let mut ls = [0i32; 8];
    for (ib, l) in ls.iter_mut().enumerate() {
        let lo = (x[4 + ib / 2] >> (4 * (ib % 2))) & 0x0f;
        let hi = ((h >> (2 * ib)) & 3) as u8;
        *l = i32::from(lo | (hi << 4)) - 32;
    }
    ls
}

/// `dequantize_row_iq4_xs`.
pub(crate) fn dequantize_iq4_xs(src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(IQ4_XS_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = rd_f16(x, 0);
        let ls = iq4_xs_scales(x);
        for ((y, qs), &l) in y.chunks_exact_mut(32).zip(x[8..].chunks_exact(16)).zip(&ls) {
            let dl = d * l as f32;
            for (y, &v) in y.iter_mut().zip(&nibbles(qs, &KVALUES_IQ4NL)) {
                *y = dl * f32::from(v);
            }
        }
    }
}

/// The generic `ggml_vec_dot_iq4_xs_q8_K`.
pub(crate) fn vec_dot_iq4_xs_q8_k(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(IQ4_XS_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        let d4d8 = rd_f16(x, 0) * rd_f32(y, 0);
        let ls = iq4_xs_scales(x);
        let q8 = &y[Q8K_QS..Q8K_QS + QK_K];
        for ((qs, q), &l) in x[8..].chunks_exact(16).zip(q8.chunks_exact(32)).zip(&ls) {
            let v = nibbles(qs, &KVALUES_IQ4NL);
            sumf += d4d8 * l as f32 * dot32(&v, q) as f32;
        }
    }
    sumf
}

// ---------------------------------------------------------- TQ1_0, TQ2_0

/// The trit (0, 1 or 2) in position `n` of a TQ1_0 byte: the byte is a
/// base-3 fixed-point fraction, so multiplying by 3^n (mod 256) brings
/// digit `n` to the top and `(q·3) >> 8` reads it.
#[inline]
fn trit(q: u8, n: u32) -> i8 {
    let q = q.wrapping_mul(3u8.pow(n));
    ((u16::from(q) * 3) >> 8) as i8
}

/// The 256 values (−1, 0, 1) of a TQ1_0 block, in element order.
pub(crate) fn unpack_tq1_0(x: &[u8]) -> [i8; QK_K] {
    let mut v = [0i8; QK_K];
    let mut o = 0;
    // 32 bytes × 5 trits, then 16 bytes × 5 trits, then 4 bytes × 4 trits;
    // in each run the trit position is the outer loop.
    for (run, trits) in [(&x[0..32], 5), (&x[32..48], 5), (&x[48..52], 4)] {
        for n in 0..trits {
            for &q in run {
                v[o] = trit(q, n) - 1;
                o += 1;
            }
        }
    }
    v
}

/// The 256 values (−1, 0, 1) of a TQ2_0 block, in element order.
pub(crate) fn unpack_tq2_0(x: &[u8]) -> [i8; QK_K] {
    let mut v = [0i8; QK_K];
    for (c, q) in x[..64].chunks_exact(32).enumerate() {
        for l in 0..4 {
            for (m, &b) in q.iter().enumerate() {
                v[128 * c + 32 * l + m] = ((b >> (2 * l)) & 3) as i8 - 1;
            }
        }
    }
    v
}

fn dequantize_tq(bytes: usize, unpack: fn(&[u8]) -> [i8; QK_K], src: &[u8], dst: &mut [f32]) {
    for (x, y) in src.chunks_exact(bytes).zip(dst.chunks_exact_mut(QK_K)) {
        let d = rd_f16(x, bytes - 2);
        for (y, &v) in y.iter_mut().zip(&unpack(x)) {
            *y = f32::from(v) * d;
        }
    }
}

fn vec_dot_tq(bytes: usize, unpack: fn(&[u8]) -> [i8; QK_K], w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(bytes).zip(a.chunks_exact(Q8_K_BYTES)) {
        let v = unpack(x);
        let sum: i32 = v
            .iter()
            .zip(&y[Q8K_QS..Q8K_QS + QK_K])
            .map(|(&v, &q)| i32::from(v) * i32::from(q as i8))
            .sum();
        sumf += sum as f32 * (rd_f16(x, bytes - 2) * rd_f32(y, 0));
    }
    sumf
}

/// `dequantize_row_tq1_0`.
pub(crate) fn dequantize_tq1_0(src: &[u8], dst: &mut [f32]) {
    dequantize_tq(TQ1_0_BYTES, unpack_tq1_0, src, dst);
}

/// `dequantize_row_tq2_0`.
pub(crate) fn dequantize_tq2_0(src: &[u8], dst: &mut [f32]) {
    dequantize_tq(TQ2_0_BYTES, unpack_tq2_0, src, dst);
}

/// The generic `ggml_vec_dot_tq1_0_q8_K`.
pub(crate) fn vec_dot_tq1_0_q8_k(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    vec_dot_tq(TQ1_0_BYTES, unpack_tq1_0, w, a)
}

/// The generic `ggml_vec_dot_tq2_0_q8_K`.
pub(crate) fn vec_dot_tq2_0_q8_k(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    vec_dot_tq(TQ2_0_BYTES, unpack_tq2_0, w, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tq1_0_trits_read_back_every_base3_digit() {
        // A byte holding the digits t0..t4 (most significant first) as the
        // fraction Σ t_i·3^(4−i) / 243, rounded up as ggml stores it.
        for code in 0..243u16 {
            let q = (code * 256).div_ceil(243) as u8;
            let mut c = code;
            let mut digits = [0i8; 5];
            for d in digits.iter_mut().rev() {
                *d = (c % 3) as i8;
                c /= 3;
            }
            for (n, &want) in digits.iter().enumerate() {
                assert_eq!(trit(q, n as u32), want, "code {code} digit {n}");
            }
        }
    }
}
