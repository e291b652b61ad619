//! Whole-tensor quantization as llama-quantize does it (`ggml_quantize_chunk`):
//! rows of f32 into any block format, with an optional importance matrix
//! (one weight per column, from llama.cpp's `llama-imatrix`) that steers the
//! scale searches of the types that accept one.
//!
//! Without an importance matrix the classic and K types use their
//! reference quantizers ([`crate::quantize_row`]); with one, Q4_0, Q4_1,
//! Q5_0, Q5_1 and Q2_K … Q6_K use ggml's weighted searches
//! (`quantize_row_*_impl`), and Q8_0, TQ2_0 and the float types ignore it,
//! as ggml does. The IQ types always search, weighted by the matrix or by
//! `x²` (IQ2_XXS and IQ1_S require the matrix, as in ggml). The bytes are
//! ggml's, bit for bit.

#![allow(clippy::needless_range_loop)] // index-for-index ports of ggml's loops

mod iq1;
mod iq2;
mod iq3;
mod iq4;
mod kquants;
mod lattice;
mod legacy;
pub(crate) mod search;
mod tq;

use crate::{row_bytes, GgmlType, QuantError};

/// Why a tensor could not be quantized.
#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    #[error(transparent)]
    Quant(#[from] QuantError),
    /// The importance matrix does not have one weight per column.
    #[error("the importance matrix has {got} weights per row; the rows have {n_per_row} elements")]
    ImatrixLength { n_per_row: usize, got: usize },
    /// ggml quantizes this type only under importance weights.
    #[error("{0} needs an importance matrix")]
    NeedsImatrix(GgmlType),
}

/// `true` for the types ggml quantizes only under importance weights
/// (`ggml_quantize_requires_imatrix`).
pub fn requires_imatrix(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::IQ2XXS | GgmlType::IQ2XS | GgmlType::IQ1S)
}

/// Quantizes `src`, a whole number of rows of `n_per_row` elements, into
/// `dst` (exactly those rows' bytes of `ty`). `imatrix`, when given, holds
/// one importance weight per column (`n_per_row` values).
pub fn quantize_rows(
    ty: GgmlType,
    src: &[f32],
    n_per_row: usize,
    imatrix: Option<&[f32]>,
    dst: &mut [u8],
) -> Result<(), QuantizeError> {
    let row = row_bytes(ty, n_per_row)?;
    let rows = src.len().checked_div(n_per_row).unwrap_or(0);
    if n_per_row == 0 || src.len() % n_per_row != 0 || rows.checked_mul(row) != Some(dst.len()) {
        return Err(QuantError::LengthMismatch {
            ty,
            n: src.len(),
            expected: rows.saturating_mul(row),
            got: dst.len(),
        }
        .into());
    }
    if let Some(w) = imatrix {
        if w.len() != n_per_row {
            return Err(QuantizeError::ImatrixLength {
                n_per_row,
                got: w.len(),
            });
        }
    }
    if imatrix.is_none() && requires_imatrix(ty) {
        return Err(QuantizeError::NeedsImatrix(ty));
    }
    for (x, y) in src.chunks_exact(n_per_row).zip(dst.chunks_exact_mut(row)) {
        quantize_one(ty, x, y, imatrix)?;
    }
    Ok(())
}

/// One row, as `ggml_quantize_chunk` dispatches it: the IQ types always
/// run their searches (with `x²` weights when no importance is given), the
/// others use their weighted search only under importance weights.
fn quantize_one(
    ty: GgmlType,
    x: &[f32],
    y: &mut [u8],
    imatrix: Option<&[f32]>,
) -> Result<(), QuantError> {
    use GgmlType as T;
    match ty {
        T::IQ2XXS | T::IQ2XS | T::IQ1S => {
            // Checked by the caller: these never run without weights.
            let Some(w) = imatrix else {
                return Err(QuantError::Unsupported {
                    ty,
                    op: "quantizer without importance weights",
                });
            };
            match ty {
                T::IQ2XXS => iq2::quantize_iq2_xxs(x, y, w),
                T::IQ2XS => iq2::quantize_iq2_xs(x, y, w),
                _ => iq1::quantize_iq1_s(x, y, w),
            }
        }
        T::IQ1M => iq1::quantize_iq1_m(x, y, imatrix),
        T::TQ1_0 => tq::quantize_tq1_0(x, y),
        T::MXFP4 => tq::quantize_mxfp4(x, y),
        T::IQ2S => iq2::quantize_iq2_s(x, y, imatrix),
        T::IQ3XXS => iq3::quantize_iq3_xxs(x, y, imatrix),
        T::IQ3S => iq3::quantize_iq3_s(x, y, imatrix),
        T::IQ4NL => iq4::quantize_iq4_nl(x, y, imatrix),
        T::IQ4XS => iq4::quantize_iq4_xs(x, y, imatrix),
        T::TQ2_0 => tq::quantize_tq2_0(x, y),
        _ => match imatrix.and_then(|w| weighted_row(ty).map(|f| (f, w))) {
            Some((f, w)) => f(x, y, w),
            None => crate::quantize_row(ty, x, y)?,
        },
    }
    Ok(())
}

/// A quantizer of one row under importance weights.
type WeightedRowFn = fn(x: &[f32], y: &mut [u8], qw: &[f32]);

/// The weighted quantizer of `ty`, or `None` where ggml ignores the weights.
fn weighted_row(ty: GgmlType) -> Option<WeightedRowFn> {
    use GgmlType as T;
    Some(match ty {
        T::Q4_0 => |x, y, w| legacy::quantize_q_0(x, y, w, false),
        T::Q5_0 => |x, y, w| legacy::quantize_q_0(x, y, w, true),
        T::Q4_1 => |x, y, w| legacy::quantize_q_1(x, y, w, false),
        T::Q5_1 => |x, y, w| legacy::quantize_q_1(x, y, w, true),
        T::Q2K => kquants::quantize_q2_k,
        T::Q3K => kquants::quantize_q3_k,
        T::Q4K => kquants::quantize_q4_k,
        T::Q5K => kquants::quantize_q5_k,
        T::Q6K => kquants::quantize_q6_k,
        _ => return None,
    })
}
