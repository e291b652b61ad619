//! The formats ggml quantizes only by reference, ignoring importance
//! weights: TQ2_0 and TQ1_0 (`quantize_row_tq{2,1}_0_ref`: ternary values
//! {-1, 0, 1} times the block's absolute maximum per 256 elements, two bits
//! each or five per byte) and MXFP4 (`quantize_row_mxfp4_ref`).

use crate::scalar::kquants::wr_f16;

/// The block's absolute maximum, as ggml's `MAX(amax, fabsf(v))` keeps it.
fn abs_max(x: &[f32]) -> f32 {
    let mut amax = 0.0f32;
    for &v in x {
        let a = v.abs();
        amax = if amax > a { amax } else { a };
    }
    amax
}

/// One row of TQ2_0 (66-byte blocks of 256).
pub(crate) fn quantize_tq2_0(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(256).zip(dst.chunks_exact_mut(66)) {
        let d = abs_max(x);
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        for (xs, qs) in x.chunks_exact(128).zip(y[..64].chunks_exact_mut(32)) {
            for m in 0..32 {
                let mut q = 0u8;
                for n in 0..4 {
                    // -1, 0, 1 -> 0, 1, 2 (lroundf rounds halves away from zero)
                    let xi = (xs[m + 32 * n] * id).round() as i32 + 1;
                    q = q.wrapping_add(((xi & 3) << (2 * n)) as u8);
                }
                qs[m] = q;
            }
        }
        wr_f16(y, 64, d);
    }
}

/// Packs trits (values 0, 1, 2; the first most significant) into one byte
/// as ggml does: the base-3 number scaled to 0..=255 by a ceiling division.
fn pack_trits(trits: impl Iterator<Item = i32>) -> u8 {
    let mut q = 0u8;
    for t in trits {
        q = q.wrapping_mul(3).wrapping_add(t as u8);
    }
    (u16::from(q) * 256).div_ceil(243) as u8
}

/// One row of TQ1_0 (54-byte blocks of 256: 48 bytes of five trits, four
/// bytes of four trits, then the f16 absolute maximum).
pub(crate) fn quantize_tq1_0(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(256).zip(dst.chunks_exact_mut(54)) {
        let d = abs_max(x);
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        // -1, 0, 1 -> 0, 1, 2 (lroundf rounds halves away from zero)
        let trit = |v: f32| (v * id).round() as i32 + 1;
        // 32 bytes of 5 trits (elements 0..160), 16 more (160..240).
        for m in 0..32 {
            y[m] = pack_trits((0..5).map(|n| trit(x[m + 32 * n])));
        }
        for m in 0..16 {
            y[32 + m] = pack_trits((0..5).map(|n| trit(x[160 + m + 16 * n])));
        }
        // 4 bytes of 4 trits (240..256), shifted to the top trit.
        for j in 0..4 {
            let t = (0..4)
                .map(|m| trit(x[240 + j + 4 * m]))
                .chain(std::iter::once(0));
            y[48 + j] = pack_trits(t);
        }
        wr_f16(y, 52, d);
    }
}

/// One row of MXFP4 (17-byte blocks of 32: an E8M0 exponent, then 4-bit
/// indices into the doubled E2M1 values, `quantize_row_mxfp4_ref`).
pub(crate) fn quantize_mxfp4(src: &[f32], dst: &mut [u8]) {
    use crate::grids::{e8m0_to_f32_half, KVALUES_MXFP4};
    let best = |v: f32, e: f32| {
        let mut bi = 0usize;
        let mut be = (f32::from(KVALUES_MXFP4[0]) * e - v).abs();
        for (i, &k) in KVALUES_MXFP4.iter().enumerate().skip(1) {
            let err = (f32::from(k) * e - v).abs();
            if err < be {
                bi = i;
                be = err;
            }
        }
        bi as u8
    };
    for (x, y) in src.chunks_exact(32).zip(dst.chunks_exact_mut(17)) {
        let mut amax = 0.0f32;
        for &v in x {
            if amax < v.abs() {
                amax = v.abs();
            }
        }
        let e = if amax > 0.0 {
            (amax.log2().floor() - 2.0 + 127.0) as u8
        } else {
            0
        };
        let d = e8m0_to_f32_half(e);
        y[0] = e;
        for j in 0..16 {
            y[1 + j] = best(x[j], d) | (best(x[16 + j], d) << 4);
        }
    }
}
