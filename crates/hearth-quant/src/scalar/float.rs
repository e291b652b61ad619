//! Plain float formats: F32, F16 (IEEE binary16) and BF16, element by element.
//!
//! Conversions round the way ggml's reference does (`ggml_compute_fp32_to_fp16`
//! and `ggml_compute_fp32_to_bf16` in ggml-impl.h): round to nearest, ties to
//! even; NaN becomes a quiet NaN (`sign | 0x7E00` for F16, the top half with
//! bit 6 forced for BF16).

use std::sync::OnceLock;

/// Bytes of one element of each format.
pub(crate) const F32_BYTES: usize = 4;
pub(crate) const HALF_BYTES: usize = 2;

/// IEEE binary16 bits to f32 (exact; subnormals and NaN payloads kept).
#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x03ff);
    let bits = match exp {
        // Zero or subnormal: man * 2^-24, exact in f32.
        0 => return f32::from_bits((man as f32 * (1.0 / 16_777_216.0)).to_bits() | sign),
        // Inf / NaN.
        31 => sign | 0x7f80_0000 | (man << 13),
        // Normal: rebias 15 -> 127.
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// f32 to IEEE binary16 bits, round to nearest even; overflow gives infinity,
/// NaN gives `sign | 0x7E00` (as ggml does).
#[inline]
pub fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let abs = bits & 0x7fff_ffff;
    if abs > 0x7f80_0000 {
        return sign | 0x7e00;
    }
    if abs >= 0x4780_0000 {
        // >= 65536 (and infinity): out of range. Values in [65520, 65536)
        // round up to infinity through the normal path's carry below.
        return sign | 0x7c00;
    }
    if abs >= 0x3880_0000 {
        // Normal half: rebias the exponent, keep 10 mantissa bits, round the
        // 13 dropped bits to nearest even. A carry out of the mantissa bumps
        // the exponent, which is the right answer (up to infinity).
        let h = (abs - (112 << 23)) >> 13;
        let rest = abs & 0x1fff;
        let up = rest > 0x1000 || (rest == 0x1000 && (h & 1) == 1);
        return sign | (h + u32::from(up)) as u16;
    }
    if abs <= 0x3300_0000 {
        // <= 2^-25: rounds to (signed) zero; 2^-25 itself is a tie to even 0.
        return sign;
    }
    // Subnormal half: value = m * 2^(e-150); in units of 2^-24 that is
    // m >> (126 - e), with 14..=24 bits shifted out.
    let e = abs >> 23;
    let m = (abs & 0x007f_ffff) | 0x0080_0000;
    let shift = 126 - e;
    let h = m >> shift;
    let rest = m & ((1 << shift) - 1);
    let half = 1 << (shift - 1);
    let up = rest > half || (rest == half && (h & 1) == 1);
    sign | (h + u32::from(up)) as u16
}

/// BF16 bits to f32 (exact).
#[inline]
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// f32 to BF16 bits, round to nearest even; NaN is forced quiet
/// (`ggml_compute_fp32_to_bf16`).
#[inline]
pub fn f32_to_bf16(x: f32) -> u16 {
    let u = x.to_bits();
    if (u & 0x7fff_ffff) > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    (u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16
}

#[inline]
pub(crate) fn rd_u16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

/// Reads the little-endian f16 at `off` as f32.
#[inline]
pub(crate) fn rd_f16(b: &[u8], off: usize) -> f32 {
    f16_to_f32(rd_u16(b, off))
}

#[inline]
pub(crate) fn rd_f32(b: &[u8], off: usize) -> f32 {
    f32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

#[inline]
pub(crate) fn wr_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn dequantize_f32(src: &[u8], dst: &mut [f32]) {
    for (y, x) in dst.iter_mut().zip(src.chunks_exact(F32_BYTES)) {
        *y = rd_f32(x, 0);
    }
}

/// All 65536 f16 values as f32 (256 KiB, built on first use), as ggml's
/// `ggml_table_f32_f16`: the scalar F16 paths convert through it.
pub(crate) fn f16_table() -> &'static [f32] {
    static TABLE: OnceLock<Vec<f32>> = OnceLock::new();
    TABLE.get_or_init(|| (0..=u16::MAX).map(f16_to_f32).collect())
}

pub(crate) fn dequantize_f16(src: &[u8], dst: &mut [f32]) {
    let t = f16_table();
    for (y, x) in dst.iter_mut().zip(src.chunks_exact(HALF_BYTES)) {
        *y = t[usize::from(rd_u16(x, 0))];
    }
}

pub(crate) fn dequantize_bf16(src: &[u8], dst: &mut [f32]) {
    for (y, x) in dst.iter_mut().zip(src.chunks_exact(HALF_BYTES)) {
        *y = bf16_to_f32(rd_u16(x, 0));
    }
}

pub(crate) fn quantize_f32(src: &[f32], dst: &mut [u8]) {
    for (y, x) in dst.chunks_exact_mut(F32_BYTES).zip(src) {
        y.copy_from_slice(&x.to_le_bytes());
    }
}

pub(crate) fn quantize_f16(src: &[f32], dst: &mut [u8]) {
    for (y, &x) in dst.chunks_exact_mut(HALF_BYTES).zip(src) {
        y.copy_from_slice(&f32_to_f16(x).to_le_bytes());
    }
}

pub(crate) fn quantize_bf16(src: &[f32], dst: &mut [u8]) {
    for (y, &x) in dst.chunks_exact_mut(HALF_BYTES).zip(src) {
        y.copy_from_slice(&f32_to_bf16(x).to_le_bytes());
    }
}

/// `ggml_vec_dot_f32` (scalar path): products in f32, summed in f64.
pub(crate) fn vec_dot_f32(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0.0f64;
    for (x, y) in w.chunks_exact(F32_BYTES).zip(a.chunks_exact(F32_BYTES)) {
        sum += f64::from(rd_f32(x, 0) * rd_f32(y, 0));
    }
    sum as f32
}

/// `ggml_vec_dot_f16` (scalar path): products in f32, summed in f64.
pub(crate) fn vec_dot_f16(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let t = f16_table();
    let mut sum = 0.0f64;
    for (x, y) in w.chunks_exact(HALF_BYTES).zip(a.chunks_exact(HALF_BYTES)) {
        sum += f64::from(t[usize::from(rd_u16(x, 0))] * t[usize::from(rd_u16(y, 0))]);
    }
    sum as f32
}

/// `ggml_vec_dot_bf16` (scalar path): products in f32, summed in f64.
pub(crate) fn vec_dot_bf16(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sum = 0.0f64;
    for (x, y) in w.chunks_exact(HALF_BYTES).zip(a.chunks_exact(HALF_BYTES)) {
        sum += f64::from(bf16_to_f32(rd_u16(x, 0)) * bf16_to_f32(rd_u16(y, 0)));
    }
    sum as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_known_values() {
        assert_eq!(f32_to_f16(0.0), 0);
        assert_eq!(f32_to_f16(-0.0), 0x8000);
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f32_to_f16(65504.0), 0x7bff);
        assert_eq!(f32_to_f16(65519.99), 0x7bff);
        assert_eq!(f32_to_f16(65520.0), 0x7c00);
        assert_eq!(f32_to_f16(f32::INFINITY), 0x7c00);
        assert_eq!(f32_to_f16(f32::NAN), 0x7e00);
        assert_eq!(f32_to_f16(-f32::NAN), 0xfe00);
        // Smallest subnormal, and the tie at half of it.
        assert_eq!(f32_to_f16(5.960_464_5e-8), 1);
        assert_eq!(f32_to_f16(2.980_232_2e-8), 0);
        assert_eq!(f16_to_f32(1), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn f16_round_trips_every_value() {
        for h in 0..=u16::MAX {
            let f = f16_to_f32(h);
            if f.is_nan() {
                continue;
            }
            assert_eq!(f32_to_f16(f), h, "{h:#06x}");
        }
    }

    #[test]
    fn bf16_rounding() {
        assert_eq!(f32_to_bf16(1.0), 0x3f80);
        // 1 + 2^-8 is a tie between 1.0 and 1 + 2^-7: goes to even (1.0).
        assert_eq!(f32_to_bf16(f32::from_bits(0x3f80_8000)), 0x3f80);
        assert_eq!(f32_to_bf16(f32::from_bits(0x3f81_8000)), 0x3f82);
        assert_eq!(f32_to_bf16(f32::from_bits(0x7f80_0001)), 0x7fc0);
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
    }
}
