//! Float matrix products: an f32 GEMM for weights kept as (or widened to)
//! f32, and the F16 row conversions around it. The AVX2 and AVX-512 tiers
//! run register-tiled FMA kernels (`x86_64/avx2/gemm_f16.rs`), the scalar
//! tier the reference (`scalar/gemm.rs`).

use crate::{scalar, Isa, Kernels};

impl Kernels {
    /// f32 matrix product of R weight rows and C activation rows, `k`
    /// elements each, both row-major: `out[r * C + c] = Σ_i w[r·k + i] ·
    /// a[c·k + i]`, with `R = w.len() / k`, `C = a.len() / k`.
    ///
    /// The SIMD tiers hold tiles of 4 weight rows × 3 activation rows in
    /// registers, so each loaded vector feeds several FMAs. Every output is
    /// one dot product in a fixed order (eight lanes, summed at the end), so
    /// it does not depend on the other rows of the call.
    ///
    /// Hot path: a length that is not a whole number of rows, or an `out`
    /// of the wrong size, is a caller bug: debug builds panic, release
    /// builds fill `out` with NaN.
    ///
    /// ```
    /// let k = hearth_quant::kernels();
    /// let w = [1.0f32, 2.0, 3.0, 4.0]; // two rows of 2
    /// let a = [1.0f32, 1.0, 0.0, 1.0, 2.0, 0.0]; // three rows of 2
    /// let mut out = [0f32; 6];
    /// k.gemm_f32(2, &w, &a, &mut out);
    /// assert_eq!(out, [3.0, 2.0, 2.0, 7.0, 4.0, 6.0]);
    /// ```
    pub fn gemm_f32(&self, k: usize, w: &[f32], a: &[f32], out: &mut [f32]) {
        let ok = k > 0
            && w.len() % k == 0
            && a.len() % k == 0
            && (w.len() / k).checked_mul(a.len() / k) == Some(out.len());
        debug_assert!(
            ok,
            "gemm_f32: k = {k}, {} weights, {} activations, {} outputs",
            w.len(),
            a.len(),
            out.len()
        );
        if !ok {
            out.fill(f32::NAN);
            return;
        }
        match self.isa {
            Isa::Scalar => scalar::gemm::gemm_f32(k, w, a, out),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 => crate::x86_64::avx2::gemm_f16::gemm_f32(k, w, a, out),
            #[cfg(not(target_arch = "x86_64"))]
            _ => scalar::gemm::gemm_f32(k, w, a, out),
        }
    }

    /// Widens a row of F16 (little-endian bytes, two per element) to f32:
    /// `dst.len()` elements from `src`, which must hold exactly that many.
    /// Exact for every value; NaN stays NaN.
    ///
    /// # Panics
    /// When `src` is not `2 · dst.len()` bytes (a caller bug).
    pub fn f16_row_to_f32(&self, src: &[u8], dst: &mut [f32]) {
        assert_eq!(src.len(), dst.len() * 2, "f16_row_to_f32: lengths");
        match self.isa {
            Isa::Scalar => scalar::float::dequantize_f16(src, dst),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 => crate::x86_64::avx2::gemm_f16::f16_to_f32_row(src, dst),
            #[cfg(not(target_arch = "x86_64"))]
            _ => scalar::float::dequantize_f16(src, dst),
        }
    }

    /// `true` when this table multiplies several activation rows at once
    /// (everything but [`row_invariant`](Kernels::row_invariant) tables):
    /// a matmul may then use [`gemm_f32`](Kernels::gemm_f32) for float
    /// weights, whose results differ from the one-row
    /// [`vec_dot`](Kernels::vec_dot) in rounding.
    pub fn batches_rows(&self) -> bool {
        !std::ptr::eq(self, self.row_invariant())
    }
}
