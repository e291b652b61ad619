//! Float matrix products: weights packed into f32 panels of 16 rows (F16
//! widened on the way), multiplied by f32 activation rows. The AVX2 and
//! AVX-512 tiers run a register-tiled FMA kernel
//! (`x86_64/avx2/gemm_f16.rs`), the scalar tier the reference
//! (`scalar/gemm.rs`).

use crate::{scalar, GgmlType, Isa, Kernels};

/// Weight rows in one packed panel of [`Kernels::pack_panel`].
pub const FLOAT_PANEL: usize = 16;

/// Most activation rows one call of [`Kernels::gemm_rows`] takes.
pub const FEW_ROWS: usize = 5;

/// Where [`Kernels::gemm_panel_to`] writes: `rows` rows `ld` floats apart,
/// the first `cols` (at most [`FLOAT_PANEL`]) of each, inside a buffer the
/// caller shares with other threads that write elsewhere in it.
pub struct Strided<'a> {
    pub(crate) ptr: *mut f32,
    pub(crate) ld: usize,
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    _buf: std::marker::PhantomData<&'a mut [f32]>,
}

impl Strided<'_> {
    /// # Safety
    /// For the lifetime of the value, the `rows × cols` floats at `ptr +
    /// r·ld + j` (r < rows, j < cols) are valid for writes and nobody else
    /// reads or writes them.
    ///
    /// # Panics
    /// When `cols` is 0 or more than [`FLOAT_PANEL`], or `ld < cols`.
    #[allow(unsafe_code)]
    pub unsafe fn new(ptr: *mut f32, ld: usize, rows: usize, cols: usize) -> Self {
        assert!(
            (1..=FLOAT_PANEL).contains(&cols) && ld >= cols,
            "Strided: shape"
        );
        Strided {
            ptr,
            ld,
            rows,
            cols,
            _buf: std::marker::PhantomData,
        }
    }
}

impl Kernels {
    /// Packs up to [`FLOAT_PANEL`] weight rows of `k` elements (`src`:
    /// whole F16 or F32 rows, little-endian) into `panel`, `k × 16` f32:
    /// `panel[i * 16 + j]` is element `i` of row `j`, zero for rows past
    /// the last. F16 widens exactly.
    ///
    /// # Panics
    /// When `ty` is not F16 or F32, `k` is 0, `src` is not a whole number of
    /// rows or holds more than 16, or `panel` is shorter than `k × 16` (all
    /// caller bugs).
    pub fn pack_panel(&self, ty: GgmlType, src: &[u8], k: usize, panel: &mut [f32]) {
        let eb = match ty {
            GgmlType::F16 => 2,
            GgmlType::F32 => 4,
            _ => panic!("pack_panel: {ty} weights"),
        };
        assert!(
            k > 0
                && src.len() % (k * eb) == 0
                && src.len() / (k * eb) <= FLOAT_PANEL
                && panel.len() >= k * FLOAT_PANEL,
            "pack_panel: {} bytes of {ty} rows of {k} into {} floats",
            src.len(),
            panel.len()
        );
        match self.isa {
            Isa::Scalar => scalar::gemm::pack_panel(ty, src, k, panel),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 => crate::x86_64::avx2::gemm_f16::pack_panel(ty, src, k, panel),
            #[cfg(not(target_arch = "x86_64"))]
            _ => scalar::gemm::pack_panel(ty, src, k, panel),
        }
    }

    /// f32 activation rows times a packed panel: `out[c * 16 + j] = Σ_i
    /// a[c·k + i] · panel[i·16 + j]` for each of the `a.len() / k` rows.
    ///
    /// The SIMD tiers hold 6 rows × 16 columns in registers, so each loaded
    /// panel vector feeds six FMAs. Every output is one sum over `i` in
    /// order, so it does not depend on the other rows of the call.
    ///
    /// Hot path: a length that is not a whole number of rows, or an `out`
    /// of the wrong size, is a caller bug: debug builds panic, release
    /// builds fill `out` with NaN.
    ///
    /// ```
    /// let kern = hearth_quant::kernels();
    /// let w = [1.0f32, 2.0, 3.0, 4.0]; // two weight rows of 2
    /// let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
    /// let mut panel = vec![0f32; 2 * 16];
    /// kern.pack_panel(hearth_quant::GgmlType::F32, &bytes, 2, &mut panel);
    /// let a = [1.0f32, 1.0, 0.0, 1.0, 2.0, 0.0]; // three activation rows
    /// let mut out = [0f32; 3 * 16];
    /// kern.gemm_panel(2, &a, &panel, &mut out);
    /// assert_eq!((out[0], out[1], out[2]), (3.0, 7.0, 0.0));
    /// assert_eq!((out[16], out[17]), (2.0, 4.0));
    /// assert_eq!((out[32], out[33]), (2.0, 6.0));
    /// ```
    pub fn gemm_panel(&self, k: usize, a: &[f32], panel: &[f32], out: &mut [f32]) {
        let ok = k > 0
            && a.len() % k == 0
            && panel.len() >= k * FLOAT_PANEL
            && out.len() == a.len() / k * FLOAT_PANEL;
        debug_assert!(
            ok,
            "gemm_panel: k = {k}, {} activations, {} panel, {} outputs",
            a.len(),
            panel.len(),
            out.len()
        );
        if !ok {
            out.fill(f32::NAN);
            return;
        }
        match self.isa {
            Isa::Scalar => scalar::gemm::gemm_panel(k, a, panel, out),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 => crate::x86_64::avx2::gemm_f16::gemm_panel(k, a, panel, out),
            #[cfg(not(target_arch = "x86_64"))]
            _ => scalar::gemm::gemm_panel(k, a, panel, out),
        }
    }

    /// [`gemm_panel`](Kernels::gemm_panel) written straight to its
    /// destination: output row `c` (its first `out.cols` values, plus
    /// `bias[j]` when given) at row `c` of `out`, with no tile in between.
    /// The products are the same bits as `gemm_panel`'s, and the bias is
    /// added after them.
    ///
    /// # Panics
    /// When `a` is not `out.rows` rows of `k`, `panel` is shorter than `k ×
    /// 16`, or a bias is shorter than `out.cols` (caller bugs).
    pub fn gemm_panel_to(
        &self,
        k: usize,
        a: &[f32],
        panel: &[f32],
        bias: Option<&[f32]>,
        out: Strided<'_>,
    ) {
        assert!(
            k > 0
                && a.len() == out.rows * k
                && panel.len() >= k * FLOAT_PANEL
                && bias.is_none_or(|b| b.len() >= out.cols),
            "gemm_panel_to: k = {k}, {} activations for {} rows, {} panel",
            a.len(),
            out.rows,
            panel.len()
        );
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 => {
                crate::x86_64::avx2::gemm_f16::gemm_panel_to(k, a, panel, bias, &out)
            }
            _ => scalar::gemm::gemm_panel_to(k, a, panel, bias, &out),
        }
    }

    /// A few activation rows times float weight rows read as they are (no
    /// packing, for products too small to repay it): `out[c * R + r] =
    /// Σ_i a[c·k + i] · w_r[i]` for the `R` whole F16 or F32 rows of `src`
    /// and the `a.len() / k` (1 to [`FEW_ROWS`]) rows of `a`. The SIMD tiers
    /// convert each weight vector once for all of them.
    ///
    /// # Panics
    /// When `ty` is not F16 or F32, `k` is 0, or the lengths are not whole
    /// rows with `out` of `m × R` (caller bugs).
    pub fn gemm_rows(&self, ty: GgmlType, src: &[u8], k: usize, a: &[f32], out: &mut [f32]) {
        let eb = match ty {
            GgmlType::F16 => 2,
            GgmlType::F32 => 4,
            _ => panic!("gemm_rows: {ty} weights"),
        };
        let ok = k > 0
            && src.len() % (k * eb) == 0
            && a.len() % k == 0
            && (1..=FEW_ROWS).contains(&(a.len() / k))
            && out.len() == a.len() / k * (src.len() / (k * eb));
        assert!(
            ok,
            "gemm_rows: k = {k}, {} weight bytes, {} activations, {} outputs",
            src.len(),
            a.len(),
            out.len()
        );
        match self.isa {
            Isa::Scalar => scalar::gemm::gemm_rows(ty, src, k, a, out),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 => crate::x86_64::avx2::gemm_f16::gemm_rows(ty, src, k, a, out),
            #[cfg(not(target_arch = "x86_64"))]
            _ => scalar::gemm::gemm_rows(ty, src, k, a, out),
        }
    }

    /// `true` when this table multiplies several activation rows at once
    /// (everything but [`row_invariant`](Kernels::row_invariant) tables):
    /// a matmul may then use [`gemm_panel`](Kernels::gemm_panel) for float
    /// weights, whose results differ from the one-row
    /// [`vec_dot`](Kernels::vec_dot) in rounding.
    pub fn batches_rows(&self) -> bool {
        !std::ptr::eq(self, self.row_invariant())
    }
}
