//! TQ2_0 (`quantize_row_tq2_0_ref` of ggml-quants.c): ternary values
//! {-1, 0, 1} times one f16 scale (the block's absolute maximum) per 256
//! elements, two bits each. ggml ignores importance weights for it.

use crate::scalar::kquants::wr_f16;

/// One row of TQ2_0 (66-byte blocks of 256).
pub(crate) fn quantize_tq2_0(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(256).zip(dst.chunks_exact_mut(66)) {
        let mut amax = 0.0f32;
        for &v in x {
            let a = v.abs();
            amax = if amax > a { amax } else { a };
        }
        let d = amax;
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
