//! The matmul of float weights (F16, F32) against several activation rows:
//! the activations stay f32, a few weight rows at a time are widened to
//! f32 in a per-task buffer, and hearth-quant's float GEMM
//! ([`Kernels::gemm_f32`]) multiplies them with a block of activation rows.
//! Each weight element is converted once per block instead of once per
//! product, and the GEMM's register tiles reuse every load several times
//! (the encoder of a speech model multiplies 1 500 frames at once).

use hearth_quant::{GgmlType, Kernels};

use crate::matmul::WeightRef;
use crate::pool::{split, Disjoint, ThreadPool};

/// Activation rows per GEMM call (a multiple of the GEMM's 4-row register
/// tile).
const BLOCK_COLS: usize = 48;

/// Weight rows widened to f32 at a time (kept in cache while every
/// activation row passes; a multiple of the GEMM's 3-column tile).
const BLOCK_ROWS: usize = 24;

thread_local! {
    /// Each thread's widened weight rows and GEMM tile, kept between calls
    /// (a decode step runs this once per matrix).
    static BUFFERS: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const {
        std::cell::RefCell::new((Vec::new(), Vec::new()))
    };
}

/// `true` when [`float_matmul`] takes this product: float weights, more
/// than one activation row (a single row is bound by reading the weights,
/// which the one-row dot does without a conversion buffer) and a table
/// that multiplies several rows at once.
pub(crate) fn takes(kernels: &Kernels, ty: GgmlType, m: usize) -> bool {
    m >= 2 && matches!(ty, GgmlType::F16 | GgmlType::F32) && kernels.batches_rows()
}

/// y (m × n) = X (m × k) · Wᵀ for F16 or F32 weights W (n rows of k).
pub(crate) fn float_matmul(
    pool: &ThreadPool,
    kernels: &Kernels,
    w: WeightRef<'_>,
    x: &[f32],
    m: usize,
    y: &mut [f32],
) {
    let (n, k) = (w.rows, w.cols);
    let wrb = w.row_bytes();
    assert!(
        matches!(w.ty, GgmlType::F16 | GgmlType::F32) && w.data.len() >= n * wrb,
        "float_matmul: {} weights",
        w.ty
    );
    let out = Disjoint::new(y);
    let job = |i: usize, nt: usize| {
        let rows = split(n, i, nt);
        if rows.is_empty() {
            return;
        }
        BUFFERS.with_borrow_mut(|(wf, tile)| {
            wf.resize(BLOCK_ROWS.min(rows.len()) * k, 0.0);
            tile.resize(BLOCK_ROWS * BLOCK_COLS, 0.0);
            for r0 in rows.clone().step_by(BLOCK_ROWS) {
                let r1 = (r0 + BLOCK_ROWS).min(rows.end);
                let nr = r1 - r0;
                let wf = &mut wf[..nr * k];
                let src = &w.data[r0 * wrb..r1 * wrb];
                match w.ty {
                    GgmlType::F16 => kernels.f16_row_to_f32(src, wf),
                    _ => hearth_quant::dequantize_row(GgmlType::F32, src, wf)
                        .expect("whole F32 rows"),
                }
                // The widened rows stay in cache while the activations pass in
                // blocks; the GEMM runs with the activation rows as its "rows",
                // so each output row's run r0..r1 comes out contiguous.
                for c0 in (0..m).step_by(BLOCK_COLS) {
                    let c1 = (c0 + BLOCK_COLS).min(m);
                    let t = &mut tile[..(c1 - c0) * nr];
                    kernels.gemm_f32(k, &x[c0 * k..c1 * k], wf, t);
                    for (c, t) in (c0..c1).zip(t.chunks_exact(nr)) {
                        // SAFETY: rows r0..r1 of every output row belong to
                        // this task alone.
                        #[allow(unsafe_code)]
                        let d = unsafe { out.part(c * n + r0..c * n + r1) };
                        d.copy_from_slice(t);
                    }
                }
            }
        });
    };
    if n * m >= 64 {
        pool.run_rows(m, &job);
    } else {
        job(0, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matmul::matmul;

    /// Deterministic values in [-1, 1) that do not repeat along a row.
    fn values(n: usize, salt: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + salt * 104_729) % 2003) as f32 / 1001.5 - 1.0)
            .collect()
    }

    /// The float GEMM route against the one-row dot products of the
    /// row-invariant table (activations rounded to the weight type, as the
    /// quantized route does): equal up to that rounding.
    #[test]
    fn float_weights_match_the_row_by_row_product() {
        let pool = ThreadPool::new(2);
        // Shapes across the blocks: rows past BLOCK_ROWS, columns past
        // BLOCK_COLS, k with a tail after the 8-wide body.
        for (n, k, m) in [(5, 8, 2), (37, 64, 5), (50, 100, 49), (70, 33, 97)] {
            let (wf, x) = (values(n * k, 1), values(m * k, 2));
            for ty in [GgmlType::F16, GgmlType::F32] {
                let rb = ty.row_bytes(k as u64).expect("whole rows") as usize;
                let mut data = vec![0u8; n * rb];
                for (r, d) in wf.chunks_exact(k).zip(data.chunks_exact_mut(rb)) {
                    hearth_quant::quantize_row(ty, r, d).expect("a float row");
                }
                let w = WeightRef {
                    data: &data,
                    ty,
                    rows: n,
                    cols: k,
                };
                for kern in [hearth_quant::kernels(), hearth_quant::scalar_kernels()] {
                    assert!(takes(kern, ty, m));
                    let one_by_one = kern.row_invariant();
                    assert!(!takes(one_by_one, ty, m));
                    let (mut got, mut want) = (vec![0f32; m * n], vec![0f32; m * n]);
                    let mut scratch = Vec::new();
                    matmul(&pool, kern, w, &x, m, &mut scratch, &mut got);
                    matmul(&pool, one_by_one, w, &x, m, &mut scratch, &mut want);
                    // F16 activations round to 11 bits on the row path.
                    let tol = if ty == GgmlType::F16 { 2e-3 } else { 1e-5 } * k as f32;
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert!((g - w).abs() <= tol, "{ty} {n}x{k}·{m} [{i}]: {g} vs {w}");
                    }
                }
            }
        }
    }
}
