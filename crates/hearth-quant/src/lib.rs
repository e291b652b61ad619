//! # hearth-quant
//!
//! The arithmetic of ggml's tensor formats: byte layouts, reference
//! quantizers, dequantizers and the dot products a matmul is made of.
//!
//! What this crate owns:
//!
//! - **Formats** — F32, F16, BF16, the 32-element blocks Q4_0, Q4_1, Q5_0,
//!   Q5_1, Q8_0, the 256-element super-blocks Q2_K … Q6_K, and the activation
//!   formats Q8_0, Q8_1 and Q8_K; for reading and dot products also the
//!   i-quants (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ4_NL,
//!   IQ4_XS, with their lookup tables in [`grids`]), the ternary TQ1_0 and
//!   TQ2_0, and MXFP4. Layouts and math are ggml's
//!   (ggml-common.h, ggml-quants.c, ggml-cpu/quants.c): the same bytes in,
//!   the same bytes (or floats) out.
//! - **The scalar reference** ([`dequantize_row`], [`quantize_row`],
//!   [`scalar_kernels`]) — plain Rust, always compiled; it produces the bytes
//!   ggml's `quantize_row_*_ref` does and follows ggml's generic dot products
//!   (the Q8_0 dot and the Q8_0/Q8_1 activations follow ggml's x86 order
//!   and rounding, so that every tier computes them as llama.cpp on x86).
//! - **SIMD tiers** behind one table of function pointers, [`Kernels`],
//!   chosen once at run time ([`kernels`]): AVX2 (+FMA, F16C) and AVX-512
//!   (F/BW/VL/VNNI: the AVX2 table with VNNI tiles for Q5_0 and Q8_0) on
//!   x86-64 today, more tiers (NEON) slot in as files of their own. Every
//!   SIMD kernel is tested against the scalar reference.
//!
//! A weight row of type `w` is dotted against an activation row quantized to
//! [`vec_dot_type`]`(w)`, as in ggml: Q4_K weights meet Q8_K activations,
//! Q4_1 meets Q8_1, and so on. For prompt processing,
//! [`Kernels::vec_dot_multi`] dots one weight row with several activation
//! rows at once ([`TILE_COLS`] per tile), unpacking each weight block once,
//! and [`Kernels::vec_dot_tile`] dots several weight rows with several
//! activation rows ([`TILE_ROWS`] × [`TILE_COLS`] per tile), so that each
//! activation block is also prepared once for several weight rows.
//!
//! ```
//! use hearth_quant::{kernels, quantize_row, vec_dot_type, GgmlType};
//!
//! let n = 256;
//! let w: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) / 6.0).collect();
//! let x: Vec<f32> = (0..n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0).collect();
//!
//! // Quantize a weight row (normally it comes from a GGUF file).
//! let wt = GgmlType::Q4K;
//! let mut wq = vec![0u8; hearth_quant::row_bytes(wt, n).unwrap()];
//! quantize_row(wt, &w, &mut wq).unwrap();
//!
//! // Quantize the activations to the type Q4_K is dotted against, then dot.
//! let k = kernels();
//! let at = vec_dot_type(wt); // Q8_K
//! let mut xq = vec![0u8; hearth_quant::row_bytes(at, n).unwrap()];
//! k.quantize_act(at, &x, &mut xq);
//! let got = k.vec_dot(wt, n, &wq, &xq);
//!
//! let exact: f32 = w.iter().zip(&x).map(|(a, b)| a * b).sum();
//! assert!((got - exact).abs() < 0.02 * n as f32);
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]
// `is_multiple_of` is newer than the workspace's rust-version.
#![allow(unknown_lints, clippy::manual_is_multiple_of)]

use std::sync::OnceLock;

mod float_gemm;
pub mod grids;
mod panel;
pub mod quantize;
mod scalar;
mod slots;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use float_gemm::{Strided, FEW_ROWS, FLOAT_PANEL};
pub use hearth_gguf::GgmlType;
pub use panel::{ActPanels, PANEL_BLOCK_BYTES, PANEL_COLS, PANEL_GROUP};
pub use scalar::float::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};
pub use scalar::legacy::quantize_q8_x86;
pub(crate) use slots::{act_slot, dot_slot, ACT_SLOTS, DOT_SLOTS};
pub use slots::{has_vec_dot, vec_dot_type};

/// Errors of the checked, row-level entry points.
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    /// The element count is not a whole number of blocks.
    #[error(
        "{ty} rows are made of {block}-element blocks; {n} elements is not a multiple of {block}"
    )]
    NotBlockMultiple {
        ty: GgmlType,
        n: usize,
        block: usize,
    },
    /// The byte buffer does not hold exactly one row of `n` elements.
    #[error("a {ty} row of {n} elements is {expected} bytes, but the buffer has {got}")]
    LengthMismatch {
        ty: GgmlType,
        n: usize,
        expected: usize,
        got: usize,
    },
    /// hearth has no such operation for this type.
    #[error("{ty} has no {op} in hearth-quant")]
    Unsupported { ty: GgmlType, op: &'static str },
}

/// Asks the CPU to bring `data` into the cache ahead of use (one hint per
/// 64-byte line; a no-op where the target has no prefetch instruction).
/// Matmuls call it on the weight rows a few tiles ahead, where the
/// hardware prefetcher does not follow the tile kernels' access pattern
/// (several rows read block by block in turn).
#[inline]
pub fn prefetch(data: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in data.chunks(64) {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is only a hint: it never faults and does not
        // change memory; `line` is a live, readable slice anyway.
        #[allow(unsafe_code)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast())
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// Bytes of a row of `n` elements of `ty`.
pub fn row_bytes(ty: GgmlType, n: usize) -> Result<usize, QuantError> {
    let block = ty.block_len();
    if n % block != 0 {
        return Err(QuantError::NotBlockMultiple { ty, n, block });
    }
    // A row that overflows usize cannot be in memory; report it as a
    // mismatch against the largest size.
    (n / block)
        .checked_mul(ty.block_bytes())
        .ok_or(QuantError::LengthMismatch {
            ty,
            n,
            expected: usize::MAX,
            got: 0,
        })
}

fn check_row(ty: GgmlType, n: usize, got: usize) -> Result<(), QuantError> {
    let expected = row_bytes(ty, n)?;
    if expected != got {
        return Err(QuantError::LengthMismatch {
            ty,
            n,
            expected,
            got,
        });
    }
    Ok(())
}

/// `true` when `len` bytes are exactly one row of `n` elements of `ty`.
#[inline]
fn row_fits(ty: GgmlType, n: usize, len: usize) -> bool {
    let block = ty.block_len();
    n % block == 0 && (n / block).checked_mul(ty.block_bytes()) == Some(len)
}

/// Dequantizes one row: `dst.len()` elements from `src`, which must be
/// exactly that row's bytes. Same floats as ggml's `dequantize_row_*`.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    let f = scalar::dequantizer(ty).ok_or(QuantError::Unsupported {
        ty,
        op: "dequantizer",
    })?;
    check_row(ty, dst.len(), src.len())?;
    f(src, dst);
    Ok(())
}

/// Reference quantizer: one row of `src.len()` elements into `dst`, which
/// must be exactly that row's bytes. Same bytes as ggml's
/// `quantize_row_*_ref` (F16/BF16 rounded to nearest even, as ggml does).
pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    let f = scalar::quantizer(ty).ok_or(QuantError::Unsupported {
        ty,
        op: "quantizer",
    })?;
    check_row(ty, src.len(), dst.len())?;
    f(src, dst);
    Ok(())
}

/// An instruction-set tier of the kernel table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Scalar,
    Avx2,
    /// AVX-512 F/BW/VL/VNNI: a superset of `Avx2` (its table is the AVX2
    /// one with VNNI tiles for Q5_0 and Q8_0). Crates that pick their own
    /// kernels from [`Kernels::isa`] should treat it as `Avx2`.
    Avx512,
}

impl Isa {
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }
}

/// A dot-product kernel: one weight row of `n` elements · one activation row
/// (lengths checked by [`Kernels::vec_dot`]).
pub(crate) type VecDotFn = fn(n: usize, w: &[u8], a: &[u8]) -> f32;
/// A multi-column dot-product kernel: one weight row of `n` elements ·
/// `a.len()` activation rows, `1 ..= TILE_COLS` of them, into `out`
/// (`out.len() == a.len()`; lengths checked by [`Kernels::vec_dot_multi`]).
pub(crate) type MultiDotFn = fn(n: usize, w: &[u8], a: &[&[u8]], out: &mut [f32]);
/// A 2-D tile kernel: `w.len()` weight rows (`1 ..= TILE_ROWS`) of `n`
/// elements · `a.len()` activation rows (`1 ..= TILE_COLS`) into `out`, with
/// `out[r * a.len() + c] = vec_dot(w[r], a[c])` (lengths checked by
/// [`Kernels::vec_dot_tile`]).
pub(crate) type TileDotFn = fn(n: usize, w: &[&[u8]], a: &[&[u8]], out: &mut [f32]);
/// A panel kernel: `w.len()` weight rows (`1 ..= TILE_ROWS`) · `p.len()`
/// activation panels (`1 ..= PANEL_GROUP`, see [`ActPanels`]) into
/// `out[r * p.len() * PANEL_COLS + j * PANEL_COLS + c]` (lengths checked by
/// [`Kernels::vec_dot_panel`]).
pub(crate) type PanelDotFn = fn(w: &[&[u8]], p: &[&[u8]], out: &mut [f32]);
/// A row quantizer (lengths checked by the caller).
pub(crate) type QuantizeFn = fn(src: &[f32], dst: &mut [u8]);
/// A row dequantizer (lengths checked by the caller).
pub(crate) type DequantizeFn = fn(src: &[u8], dst: &mut [f32]);

/// Activation rows a tier's multi-column kernels take at once; pass
/// [`Kernels::vec_dot_multi`] a multiple of this many rows where you can.
pub const TILE_COLS: usize = 4;

/// Weight rows a tier's 2-D tile kernels take at once; pass
/// [`Kernels::vec_dot_tile`] a multiple of this many weight rows where you
/// can.
pub const TILE_ROWS: usize = 4;

/// One tier's table of kernels. Get one from [`kernels`] (the best this CPU
/// runs), [`scalar_kernels`], [`avx2_kernels`] or [`avx512_kernels`].
pub struct Kernels {
    /// The tier these kernels belong to.
    pub isa: Isa,
    /// Whether a model's linear layers keep the activations in f32 for
    /// float weights (see [`Kernels::widening`]).
    widens: bool,
    dot: [VecDotFn; DOT_SLOTS],
    /// Multi-column kernels; `None` means repeated `dot`.
    multi: [Option<MultiDotFn>; DOT_SLOTS],
    /// 2-D tile kernels; `None` means `vec_dot_multi` per weight row.
    tile: [Option<TileDotFn>; DOT_SLOTS],
    /// Panel kernels; `None` means the scalar reference (see
    /// [`Kernels::has_panel`]).
    panel: [Option<PanelDotFn>; DOT_SLOTS],
    act: [QuantizeFn; ACT_SLOTS],
}

impl std::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernels").field("isa", &self.isa).finish()
    }
}

impl Kernels {
    /// This tier with every multi-row kernel taken out (no multi-column,
    /// tile or panel kernels): each product of a weight row and an
    /// activation row is this tier's one-row [`vec_dot`](Kernels::vec_dot)
    /// whatever else is in the batch, so a row's result does not depend on
    /// which rows are multiplied with it (batch-invariant, for
    /// deterministic serving). Prompt processing is slower with it.
    pub fn row_invariant(&self) -> &'static Kernels {
        static TABLES: [OnceLock<Kernels>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        TABLES[self.tier_index()].get_or_init(|| Kernels {
            isa: self.isa,
            widens: false,
            dot: self.dot,
            multi: [None; DOT_SLOTS],
            tile: [None; DOT_SLOTS],
            panel: [None; DOT_SLOTS],
            act: self.act,
        })
    }

    /// 0, 1, 2 for the scalar, AVX2 and AVX-512 tiers (the slot of a
    /// derived table).
    fn tier_index(&self) -> usize {
        match self.isa {
            Isa::Scalar => 0,
            Isa::Avx2 => 1,
            Isa::Avx512 => 2,
        }
    }

    /// This tier for models whose linear layers keep the activations in
    /// f32: with F16 or F32 weights and two or more rows, the products run
    /// on the float GEMM ([`gemm_panel`](Kernels::gemm_panel)) with the
    /// activations as they are, instead of rounding them to the weights'
    /// dot format first ([`vec_dot_type`]). Faster on batches and closer
    /// to the unrounded model, but not ggml's arithmetic, so a model opts
    /// in (encoders do; language models keep ggml's). Quantized weights
    /// keep the block dot products either way.
    pub fn widening(&self) -> &'static Kernels {
        static TABLES: [OnceLock<Kernels>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        TABLES[self.tier_index()].get_or_init(|| Kernels {
            isa: self.isa,
            widens: true,
            dot: self.dot,
            multi: self.multi,
            tile: self.tile,
            panel: self.panel,
            act: self.act,
        })
    }

    /// `true` for the tables of [`widening`](Kernels::widening).
    pub fn widens(&self) -> bool {
        self.widens
    }

    /// Dot of one weight row (`n` elements of `w_ty`, `w` its exact bytes)
    /// with one activation row (`n` elements of [`vec_dot_type`]`(w_ty)`).
    ///
    /// Hot path: no allocation, no error value. A wrong type or length is a
    /// caller bug: debug builds panic, release builds return NaN (never read
    /// out of bounds).
    #[inline]
    pub fn vec_dot(&self, w_ty: GgmlType, n: usize, w: &[u8], a: &[u8]) -> f32 {
        let Some(slot) = dot_slot(w_ty) else {
            debug_assert!(false, "vec_dot: {w_ty} has no dot product");
            return f32::NAN;
        };
        let ok = row_fits(w_ty, n, w.len()) && row_fits(vec_dot_type(w_ty), n, a.len());
        debug_assert!(
            ok,
            "vec_dot: {w_ty} row of {n} elements with {} weight bytes and {} activation bytes",
            w.len(),
            a.len()
        );
        if !ok {
            return f32::NAN;
        }
        (self.dot[slot])(n, w, a)
    }

    /// Dots one weight row with several activation rows:
    /// `out[c] = vec_dot(w_ty, n, w, a_rows[c])` for every `c`.
    ///
    /// Shape: W (1 × n) · Aᵀ (n × m) → out (m), with `m = a_rows.len() ==
    /// out.len()`. The rows are taken [`TILE_COLS`] at a time; for each
    /// tile the weight row is read and unpacked once and every unpacked
    /// block is dotted with all of the tile's activation blocks, which is
    /// what makes prompt processing faster than `m` separate [`vec_dot`]
    /// calls. Results equal `vec_dot`'s up to float summation order.
    /// Types without a multi-column kernel in this tier (and the scalar
    /// tier, always) fall back to repeated `vec_dot`.
    ///
    /// Hot path, checked like [`vec_dot`]: a wrong type or length is a
    /// caller bug: debug builds panic, release builds fill `out` with NaN
    /// (never read out of bounds).
    ///
    /// ```
    /// use hearth_quant::{kernels, quantize_row, row_bytes, GgmlType};
    ///
    /// let (ty, n) = (GgmlType::Q8_0, 64);
    /// let q = |x: Vec<f32>| {
    ///     let mut b = vec![0u8; row_bytes(ty, n).unwrap()];
    ///     quantize_row(ty, &x, &mut b).unwrap();
    ///     b
    /// };
    /// let w = q((0..n).map(|i| (i % 5) as f32 - 2.0).collect());
    /// let acts: Vec<Vec<u8>> = (0..6).map(|c| q(vec![c as f32; n])).collect();
    /// let rows: Vec<&[u8]> = acts.iter().map(Vec::as_slice).collect();
    /// let mut out = [0.0f32; 6];
    /// let k = kernels();
    /// k.vec_dot_multi(ty, n, &w, &rows, &mut out);
    /// for (o, a) in out.iter().zip(&rows) {
    ///     assert!((o - k.vec_dot(ty, n, &w, a)).abs() <= 1e-3);
    /// }
    /// ```
    ///
    /// [`vec_dot`]: Kernels::vec_dot
    #[inline]
    pub fn vec_dot_multi(
        &self,
        w_ty: GgmlType,
        n: usize,
        w: &[u8],
        a_rows: &[&[u8]],
        out: &mut [f32],
    ) {
        let Some(slot) = dot_slot(w_ty) else {
            debug_assert!(false, "vec_dot_multi: {w_ty} has no dot product");
            out.fill(f32::NAN);
            return;
        };
        let a_len = row_bytes(vec_dot_type(w_ty), n).ok();
        let ok = out.len() == a_rows.len()
            && row_fits(w_ty, n, w.len())
            && a_rows.iter().all(|a| Some(a.len()) == a_len);
        debug_assert!(
            ok,
            "vec_dot_multi: {w_ty} row of {n} elements with {} weight bytes, \
             {} activation rows (bytes {:?}) and {} outputs",
            w.len(),
            a_rows.len(),
            a_rows.iter().map(|a| a.len()).collect::<Vec<_>>(),
            out.len()
        );
        if !ok {
            out.fill(f32::NAN);
            return;
        }
        self.multi_checked(slot, n, w, a_rows, out);
    }

    /// [`vec_dot_multi`](Kernels::vec_dot_multi) after its checks.
    #[inline]
    fn multi_checked(&self, slot: usize, n: usize, w: &[u8], a_rows: &[&[u8]], out: &mut [f32]) {
        match self.multi[slot] {
            Some(f) => {
                for (a, o) in a_rows.chunks(TILE_COLS).zip(out.chunks_mut(TILE_COLS)) {
                    f(n, w, a, o);
                }
            }
            None => {
                for (a, o) in a_rows.iter().zip(out.iter_mut()) {
                    *o = (self.dot[slot])(n, w, a);
                }
            }
        }
    }

    /// Dots several weight rows with several activation rows:
    /// `out[r * a_rows.len() + c] = vec_dot(w_ty, n, w_rows[r], a_rows[c])`.
    ///
    /// Shape: W (R × n) · Aᵀ (n × C) → out (R × C, row-major), with
    /// `R = w_rows.len()`, `C = a_rows.len()`, `out.len() == R · C`. The
    /// product is taken in tiles of [`TILE_ROWS`] × [`TILE_COLS`]: within a
    /// tile each weight block is unpacked once for all its columns and each
    /// activation block's scales and sums are prepared once for all its
    /// rows, with the tile's accumulators held in registers across the whole
    /// row. Results equal `vec_dot`'s up to float summation order. Types
    /// without a tile kernel in this tier (and the scalar tier, always) run
    /// [`vec_dot_multi`] per weight row.
    ///
    /// Hot path, checked like [`vec_dot`]: a wrong type or length is a
    /// caller bug: debug builds panic, release builds fill `out` with NaN
    /// (never read out of bounds).
    ///
    /// ```
    /// use hearth_quant::{kernels, quantize_row, row_bytes, GgmlType};
    ///
    /// let n = 64;
    /// let q = |ty: GgmlType, x: Vec<f32>| {
    ///     let mut b = vec![0u8; row_bytes(ty, n).unwrap()];
    ///     quantize_row(ty, &x, &mut b).unwrap();
    ///     b
    /// };
    /// let ws: Vec<Vec<u8>> = (0..5)
    ///     .map(|r| q(GgmlType::Q5_0, (0..n).map(|i| ((i + r) % 7) as f32 - 3.0).collect()))
    ///     .collect();
    /// let acts: Vec<Vec<u8>> = (0..3).map(|c| q(GgmlType::Q8_0, vec![c as f32 - 1.0; n])).collect();
    /// let w_rows: Vec<&[u8]> = ws.iter().map(Vec::as_slice).collect();
    /// let a_rows: Vec<&[u8]> = acts.iter().map(Vec::as_slice).collect();
    /// let mut out = [0.0f32; 5 * 3];
    /// let k = kernels();
    /// k.vec_dot_tile(GgmlType::Q5_0, n, &w_rows, &a_rows, &mut out);
    /// for (r, w) in w_rows.iter().enumerate() {
    ///     for (c, a) in a_rows.iter().enumerate() {
    ///         let want = k.vec_dot(GgmlType::Q5_0, n, w, a);
    ///         assert!((out[r * 3 + c] - want).abs() <= 1e-3);
    ///     }
    /// }
    /// ```
    ///
    /// [`vec_dot`]: Kernels::vec_dot
    /// [`vec_dot_multi`]: Kernels::vec_dot_multi
    pub fn vec_dot_tile(
        &self,
        w_ty: GgmlType,
        n: usize,
        w_rows: &[&[u8]],
        a_rows: &[&[u8]],
        out: &mut [f32],
    ) {
        let Some(slot) = dot_slot(w_ty) else {
            debug_assert!(false, "vec_dot_tile: {w_ty} has no dot product");
            out.fill(f32::NAN);
            return;
        };
        let a_len = row_bytes(vec_dot_type(w_ty), n).ok();
        let ok = w_rows.len().checked_mul(a_rows.len()) == Some(out.len())
            && w_rows.iter().all(|w| row_fits(w_ty, n, w.len()))
            && a_rows.iter().all(|a| Some(a.len()) == a_len);
        debug_assert!(
            ok,
            "vec_dot_tile: {w_ty} rows of {n} elements: weight bytes {:?}, \
             activation bytes {:?}, {} outputs",
            w_rows.iter().map(|w| w.len()).collect::<Vec<_>>(),
            a_rows.iter().map(|a| a.len()).collect::<Vec<_>>(),
            out.len()
        );
        if !ok {
            out.fill(f32::NAN);
            return;
        }
        let m = a_rows.len();
        if m == 0 {
            return;
        }
        let Some(f) = self.tile[slot] else {
            for (w, o) in w_rows.iter().zip(out.chunks_exact_mut(m)) {
                self.multi_checked(slot, n, w, a_rows, o);
            }
            return;
        };
        let mut buf = [0.0f32; TILE_ROWS * TILE_COLS];
        for (r0, ws) in (0..).step_by(TILE_ROWS).zip(w_rows.chunks(TILE_ROWS)) {
            for (c0, a) in (0..).step_by(TILE_COLS).zip(a_rows.chunks(TILE_COLS)) {
                let t = &mut buf[..ws.len() * a.len()];
                f(n, ws, a, t);
                for (r, row) in t.chunks_exact(a.len()).enumerate() {
                    let o = (r0 + r) * m + c0;
                    out[o..o + a.len()].copy_from_slice(row);
                }
            }
        }
    }

    /// `true` when this tier has a fast panel kernel for `w_ty`
    /// ([`vec_dot_panel`](Kernels::vec_dot_panel)); without one, a matmul
    /// is better off with [`vec_dot_tile`](Kernels::vec_dot_tile).
    pub fn has_panel(&self, w_ty: GgmlType) -> bool {
        panel::panel_weight_type(w_ty) && dot_slot(w_ty).is_some_and(|s| self.panel[s].is_some())
    }

    /// Dots up to [`TILE_ROWS`] weight rows with up to [`PANEL_GROUP`]
    /// consecutive panels `panels` of `acts` (activation rows
    /// `PANEL_COLS·panels.start .. PANEL_COLS·panels.end` of the product):
    /// with `C = panels.len() · PANEL_COLS`,
    /// `out[r * C + c] = vec_dot(w_ty, n, w_rows[r], a_rows[PANEL_COLS·panels.start + c])`,
    /// 0 for the columns past the last activation row. Each weight block is
    /// unpacked once for all the panels.
    ///
    /// `w_ty` is Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0 and `acts` holds rows of
    /// [`vec_dot_type`]`(w_ty)` of the weight rows' length. The activations
    /// were prepared once by [`ActPanels::pack`] (scales as f32, the four
    /// columns interleaved), so a call does only the block loop. Results
    /// equal `vec_dot`'s up to float summation order. Tiers without a panel
    /// kernel for `w_ty` ([`has_panel`](Kernels::has_panel) is `false`) run
    /// the scalar reference.
    ///
    /// Hot path, checked like [`vec_dot`](Kernels::vec_dot) but without a
    /// division: a wrong type, length or panel index is a caller bug: debug
    /// builds panic, release builds fill `out` with NaN.
    ///
    /// ```
    /// use hearth_quant::{kernels, quantize_row, row_bytes, ActPanels, GgmlType, PANEL_COLS};
    ///
    /// let n = 64;
    /// let q = |ty: GgmlType, x: Vec<f32>| {
    ///     let mut b = vec![0u8; row_bytes(ty, n).unwrap()];
    ///     quantize_row(ty, &x, &mut b).unwrap();
    ///     b
    /// };
    /// let w = q(GgmlType::Q4_1, (0..n).map(|i| (i % 7) as f32 - 3.0).collect());
    /// let acts: Vec<Vec<u8>> = (0..3).map(|c| q(GgmlType::Q8_1, vec![c as f32 - 1.0; n])).collect();
    /// let a_rows: Vec<&[u8]> = acts.iter().map(Vec::as_slice).collect();
    /// let mut panels = ActPanels::default();
    /// panels.pack(GgmlType::Q8_1, n, &a_rows).unwrap();
    /// let mut out = [0.0f32; PANEL_COLS];
    /// let k = kernels();
    /// k.vec_dot_panel(GgmlType::Q4_1, &[&w], &panels, 0..1, &mut out);
    /// for (o, a) in out.iter().zip(&a_rows) {
    ///     assert!((o - k.vec_dot(GgmlType::Q4_1, n, &w, a)).abs() <= 1e-3);
    /// }
    /// assert_eq!(out[3], 0.0);
    /// ```
    #[inline]
    pub fn vec_dot_panel(
        &self,
        w_ty: GgmlType,
        w_rows: &[&[u8]],
        acts: &ActPanels,
        panels: std::ops::Range<usize>,
        out: &mut [f32],
    ) {
        let slot = dot_slot(w_ty).filter(|_| panel::panel_weight_type(w_ty));
        let wrb = acts.blocks() * w_ty.block_bytes();
        let ok = slot.is_some()
            && acts.ty() == vec_dot_type(w_ty)
            && panels.end <= acts.panels()
            && (1..=PANEL_GROUP).contains(&panels.len())
            && (1..=TILE_ROWS).contains(&w_rows.len())
            && out.len() == w_rows.len() * panels.len() * PANEL_COLS
            && w_rows.iter().all(|w| w.len() == wrb);
        debug_assert!(
            ok,
            "vec_dot_panel: {w_ty} rows (bytes {:?}) with {:?} panels {panels:?} of {} \
             ({} blocks), {} outputs",
            w_rows.iter().map(|w| w.len()).collect::<Vec<_>>(),
            acts.ty(),
            acts.panels(),
            acts.blocks(),
            out.len()
        );
        let Some(slot) = slot.filter(|_| ok) else {
            out.fill(f32::NAN);
            return;
        };
        let mut ps: [&[u8]; PANEL_GROUP] = [&[]; PANEL_GROUP];
        for (d, p) in ps.iter_mut().zip(panels.clone()) {
            *d = acts.panel(p);
        }
        let ps = &ps[..panels.len()];
        match self.panel[slot] {
            Some(f) => f(w_rows, ps, out),
            None => panel::panel_dot_ref(w_ty, w_rows, ps, out),
        }
    }

    /// Quantizes an activation row into `a_ty` (normally Q8_0, Q8_1, Q8_K,
    /// F16, BF16 or F32; any type with a reference quantizer is accepted).
    /// Every tier quantizes Q8_0/Q8_1 as ggml's x86 backend does at run
    /// time ([`quantize_q8_x86`]), so activations match llama.cpp's on x86
    /// whatever the tier; the other types give the same bytes as
    /// [`quantize_row`].
    ///
    /// # Panics
    /// When `dst` is not exactly one row of `src.len()` elements of `a_ty`,
    /// or `a_ty` has no quantizer — both caller bugs.
    pub fn quantize_act(&self, a_ty: GgmlType, src: &[f32], dst: &mut [u8]) {
        if let Err(e) = check_row(a_ty, src.len(), dst.len()) {
            panic!("quantize_act: {e}");
        }
        match act_slot(a_ty) {
            Some(slot) => (self.act[slot])(src, dst),
            None => match scalar::quantizer(a_ty) {
                Some(f) => f(src, dst),
                None => panic!("quantize_act: {a_ty} has no quantizer"),
            },
        }
    }
}

/// The scalar reference tier (always available).
pub fn scalar_kernels() -> &'static Kernels {
    &scalar::KERNELS
}

/// The AVX2 tier (AVX2 + FMA + F16C), or `None` when this CPU lacks it.
pub fn avx2_kernels() -> Option<&'static Kernels> {
    #[cfg(target_arch = "x86_64")]
    {
        x86_64::avx2::kernels()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// The AVX-512 tier (AVX-512 F/BW/VL/VNNI on top of the AVX2 tier's
/// features), or `None` when this CPU lacks it. It is the AVX2 table with
/// VNNI tile kernels for Q5_0 and Q8_0 weights.
pub fn avx512_kernels() -> Option<&'static Kernels> {
    #[cfg(target_arch = "x86_64")]
    {
        x86_64::avx512::kernels()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// The kernels for this machine, chosen once: the best tier the CPU runs,
/// unless `HEARTH_ISA=scalar|avx2|avx512` forces one (a forced tier the CPU
/// lacks falls back with a one-line warning on stderr: `avx512` to the best
/// tier the CPU has, `avx2` to scalar).
pub fn kernels() -> &'static Kernels {
    static CHOSEN: OnceLock<&'static Kernels> = OnceLock::new();
    CHOSEN.get_or_init(|| choose(std::env::var("HEARTH_ISA").ok().as_deref()))
}

fn choose(forced: Option<&str>) -> &'static Kernels {
    let best = || {
        avx512_kernels()
            .or_else(avx2_kernels)
            .unwrap_or(scalar_kernels())
    };
    let Some(want) = forced.map(str::trim).filter(|s| !s.is_empty()) else {
        return best();
    };
    match want.to_ascii_lowercase().as_str() {
        "scalar" => scalar_kernels(),
        "avx2" => avx2_kernels().unwrap_or_else(|| {
            eprintln!(
                "hearth: HEARTH_ISA=avx2 but this CPU lacks AVX2/FMA/F16C; using scalar kernels"
            );
            scalar_kernels()
        }),
        "avx512" => avx512_kernels().unwrap_or_else(|| {
            let k = best();
            eprintln!(
                "hearth: HEARTH_ISA=avx512 but this CPU lacks AVX-512 F/BW/VL/VNNI; using {} kernels",
                k.isa.name()
            );
            k
        }),
        other => {
            eprintln!("hearth: HEARTH_ISA={other} is not a tier this build has (scalar, avx2, avx512); using scalar kernels");
            scalar_kernels()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_takes_any_slice_and_leaves_it_alone() {
        let data: Vec<u8> = (0..=200u8).collect();
        for r in [0..0, 0..1, 3..67, 0..201, 130..201] {
            prefetch(&data[r]);
        }
        assert!(data.iter().enumerate().all(|(i, &b)| usize::from(b) == i));
    }

    #[test]
    fn forced_tiers() {
        assert_eq!(choose(Some("scalar")).isa, Isa::Scalar);
        assert_eq!(choose(Some(" SCALAR ")).isa, Isa::Scalar);
        assert_eq!(choose(Some("neon")).isa, Isa::Scalar);
        let auto = choose(None).isa;
        assert_eq!(choose(Some("")).isa, auto);
        let want = if avx2_kernels().is_some() {
            Isa::Avx2
        } else {
            Isa::Scalar
        };
        assert_eq!(choose(Some("avx2")).isa, want);
        let best = if avx512_kernels().is_some() {
            Isa::Avx512
        } else {
            want
        };
        assert_eq!(choose(Some("avx512")).isa, best);
        assert_eq!(choose(Some("AVX512")).isa, best);
        assert_eq!(auto, best);
        if let Some(k) = avx512_kernels() {
            // The AVX-512 tier starts from the AVX2 table.
            assert!(avx2_kernels().is_some());
            assert_eq!(k.isa.name(), "avx512");
        }
    }

    #[test]
    fn row_bytes_errors() {
        assert_eq!(row_bytes(GgmlType::Q4K, 512).ok(), Some(288));
        let e = row_bytes(GgmlType::Q4K, 100).unwrap_err().to_string();
        assert!(e.contains("256-element blocks"), "{e}");
        let mut out = [0.0f32; 32];
        let e = dequantize_row(GgmlType::Q8_0, &[0u8; 33], &mut out).unwrap_err();
        assert!(
            e.to_string().contains("is 34 bytes, but the buffer has 33"),
            "{e}"
        );
        let e = dequantize_row(GgmlType::I8, &[0u8; 32], &mut out).unwrap_err();
        assert!(matches!(e, QuantError::Unsupported { .. }));
    }

    #[test]
    fn dot_types() {
        assert_eq!(vec_dot_type(GgmlType::Q4_1), GgmlType::Q8_1);
        assert_eq!(vec_dot_type(GgmlType::Q6K), GgmlType::Q8K);
        assert_eq!(vec_dot_type(GgmlType::Q5_0), GgmlType::Q8_0);
        assert_eq!(vec_dot_type(GgmlType::BF16), GgmlType::BF16);
        assert!(!has_vec_dot(GgmlType::Q8K));
        assert!(has_vec_dot(GgmlType::Q2K));
    }
}
