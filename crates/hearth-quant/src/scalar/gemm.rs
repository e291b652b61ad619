//! The reference float GEMM: weight panels packed as plain transposes, and
//! every output one sum over `i = 0..k` in order (the SIMD tiers fuse each
//! step into an FMA; the order is the same).

use crate::float_gemm::{Strided, FLOAT_PANEL};
use crate::scalar::float::{f16_to_f32, HALF_BYTES};
use crate::GgmlType;

/// Packs `src.len() / row_bytes` (at most 16) weight rows of `k` elements,
/// F16 or F32, into `panel` (`k × 16`, zeros for the missing rows).
pub(crate) fn pack_panel(ty: GgmlType, src: &[u8], k: usize, panel: &mut [f32]) {
    let eb = if ty == GgmlType::F16 { HALF_BYTES } else { 4 };
    let rows = src.len() / (k * eb);
    for i in 0..k {
        for j in 0..FLOAT_PANEL {
            let o = (j * k + i) * eb;
            panel[i * FLOAT_PANEL + j] = match (j < rows, eb) {
                (false, _) => 0.0,
                (true, HALF_BYTES) => f16_to_f32(u16::from_le_bytes([src[o], src[o + 1]])),
                (true, _) => f32::from_le_bytes([src[o], src[o + 1], src[o + 2], src[o + 3]]),
            };
        }
    }
}

/// `out[c * 16 + j] = Σ_i a[c·k + i] · panel[i·16 + j]` for every row `c`
/// of `a`.
pub(crate) fn gemm_panel(k: usize, a: &[f32], panel: &[f32], out: &mut [f32]) {
    for (row, o) in a.chunks_exact(k).zip(out.chunks_exact_mut(FLOAT_PANEL)) {
        o.fill(0.0);
        for (&x, line) in row.iter().zip(panel.chunks_exact(FLOAT_PANEL)) {
            for (o, &w) in o.iter_mut().zip(line) {
                *o += x * w;
            }
        }
    }
}

/// [`gemm_panel`] row by row into a strided destination, `bias[j]` added
/// after each product.
pub(crate) fn gemm_panel_to(
    k: usize,
    a: &[f32],
    panel: &[f32],
    bias: Option<&[f32]>,
    out: &Strided<'_>,
) {
    let mut row = [0f32; FLOAT_PANEL];
    for (r, a) in a.chunks_exact(k).enumerate() {
        gemm_panel(k, a, panel, &mut row);
        if let Some(b) = bias {
            for (v, b) in row.iter_mut().zip(b) {
                *v += b;
            }
        }
        // SAFETY: row r < out.rows and its first out.cols floats are this
        // call's to write (`Strided::new`'s contract).
        #[allow(unsafe_code)]
        let dst = unsafe { std::slice::from_raw_parts_mut(out.ptr.add(r * out.ld), out.cols) };
        dst.copy_from_slice(&row[..out.cols]);
    }
}

/// `out[c * R + r] = Σ_i a[c·k + i] · w_r[i]` for the `R` weight rows of
/// `src` (F16 or F32) and the rows of `a`.
pub(crate) fn gemm_rows(ty: GgmlType, src: &[u8], k: usize, a: &[f32], out: &mut [f32]) {
    let eb = if ty == GgmlType::F16 { HALF_BYTES } else { 4 };
    let rows = src.len() / (k * eb);
    let mut w = vec![0f32; k];
    for (r, row) in src.chunks_exact(k * eb).enumerate() {
        for (v, b) in w.iter_mut().zip(row.chunks_exact(eb)) {
            *v = if eb == HALF_BYTES {
                f16_to_f32(u16::from_le_bytes([b[0], b[1]]))
            } else {
                f32::from_le_bytes([b[0], b[1], b[2], b[3]])
            };
        }
        for (c, x) in a.chunks_exact(k).enumerate() {
            out[c * rows + r] = w.iter().zip(x).map(|(p, q)| p * q).sum();
        }
    }
}
