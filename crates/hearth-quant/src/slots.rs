//! Which weight types have dot products, what they are dotted against, and
//! where each type sits in a tier's kernel table.

use crate::GgmlType;

/// The activation format a weight type is dotted against (ggml's
/// `vec_dot_type`): F32→F32, F16→F16, BF16→BF16,
/// Q4_0/Q5_0/Q8_0/IQ4_NL/MXFP4→Q8_0, Q4_1/Q5_1→Q8_1, and the 256-element
/// formats (Q2_K…Q6_K, the IQ1/IQ2/IQ3 lattices, IQ4_XS, TQ1_0, TQ2_0)→Q8_K.
/// Types without a dot product (the integer types, F64, Q8_1, Q8_K) map to
/// themselves; see [`has_vec_dot`].
pub fn vec_dot_type(w: GgmlType) -> GgmlType {
    use GgmlType as T;
    match w {
        T::Q4_0 | T::Q5_0 | T::Q8_0 | T::IQ4NL | T::MXFP4 => T::Q8_0,
        T::Q4_1 | T::Q5_1 => T::Q8_1,
        T::Q2K | T::Q3K | T::Q4K | T::Q5K | T::Q6K => T::Q8K,
        T::IQ2XXS | T::IQ2XS | T::IQ2S | T::IQ3XXS | T::IQ3S | T::IQ1S | T::IQ1M => T::Q8K,
        T::IQ4XS | T::TQ1_0 | T::TQ2_0 => T::Q8K,
        other => other,
    }
}

/// `true` when [`Kernels::vec_dot`](crate::Kernels::vec_dot) accepts
/// weights of this type.
pub fn has_vec_dot(w: GgmlType) -> bool {
    dot_slot(w).is_some()
}

/// Weight types with a dot product, in table order.
pub(crate) const DOT_SLOTS: usize = 25;
/// Activation formats with a fast quantizer, in table order.
pub(crate) const ACT_SLOTS: usize = 6;

/// The table slot of each weight type with a dot product; every tier's
/// `dot`, `multi`, `tile` and `panel` arrays are in this order.
#[inline]
pub(crate) fn dot_slot(ty: GgmlType) -> Option<usize> {
    use GgmlType as T;
    Some(match ty {
        T::F32 => 0,
        T::F16 => 1,
        T::BF16 => 2,
        T::Q4_0 => 3,
        T::Q4_1 => 4,
        T::Q5_0 => 5,
        T::Q5_1 => 6,
        T::Q8_0 => 7,
        T::Q2K => 8,
        T::Q3K => 9,
        T::Q4K => 10,
        T::Q5K => 11,
        T::Q6K => 12,
        T::IQ2XXS => 13,
        T::IQ2XS => 14,
        T::IQ2S => 15,
        T::IQ3XXS => 16,
        T::IQ3S => 17,
        T::IQ1S => 18,
        T::IQ1M => 19,
        T::IQ4NL => 20,
        T::IQ4XS => 21,
        T::TQ1_0 => 22,
        T::TQ2_0 => 23,
        T::MXFP4 => 24,
        _ => return None,
    })
}

/// The table slot of each activation format with a fast quantizer.
#[inline]
pub(crate) fn act_slot(ty: GgmlType) -> Option<usize> {
    use GgmlType as T;
    Some(match ty {
        T::F32 => 0,
        T::F16 => 1,
        T::BF16 => 2,
        T::Q8_0 => 3,
        T::Q8_1 => 4,
        T::Q8K => 5,
        _ => return None,
    })
}
