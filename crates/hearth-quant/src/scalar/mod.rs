//! The scalar reference: readable, always compiled, and the law every SIMD
//! tier is tested against.
//!
//! Every function here takes whole rows whose lengths were already checked
//! by the public entry points in `lib.rs`; they iterate with `chunks_exact`,
//! so a wrong length can only shorten the work, never read out of bounds.

pub(crate) mod float;
pub(crate) mod gemm;
pub(crate) mod iquants;
pub(crate) mod kquantize;
pub(crate) mod kquants;
pub(crate) mod legacy;
pub(crate) mod nlquants;

use crate::{DequantizeFn, GgmlType, Isa, Kernels, QuantizeFn, VecDotFn};

/// Reference dequantizer for `ty`, or `None` when hearth has none.
pub(crate) fn dequantizer(ty: GgmlType) -> Option<DequantizeFn> {
    use GgmlType as T;
    Some(match ty {
        T::F32 => float::dequantize_f32,
        T::F16 => float::dequantize_f16,
        T::BF16 => float::dequantize_bf16,
        T::Q4_0 => legacy::dequantize_q4_0,
        T::Q4_1 => legacy::dequantize_q4_1,
        T::Q5_0 => legacy::dequantize_q5_0,
        T::Q5_1 => legacy::dequantize_q5_1,
        T::Q8_0 => legacy::dequantize_q8_0,
        T::Q8_1 => legacy::dequantize_q8_1,
        T::Q2K => kquants::dequantize_q2_k,
        T::Q3K => kquants::dequantize_q3_k,
        T::Q4K => kquants::dequantize_q4_k,
        T::Q5K => kquants::dequantize_q5_k,
        T::Q6K => kquants::dequantize_q6_k,
        T::Q8K => kquants::dequantize_q8_k,
        T::IQ2XXS => iquants::dequantize_iq2_xxs,
        T::IQ2XS => iquants::dequantize_iq2_xs,
        T::IQ2S => iquants::dequantize_iq2_s,
        T::IQ3XXS => iquants::dequantize_iq3_xxs,
        T::IQ3S => iquants::dequantize_iq3_s,
        T::IQ1S => iquants::dequantize_iq1_s,
        T::IQ1M => iquants::dequantize_iq1_m,
        T::IQ4NL => nlquants::dequantize_iq4_nl,
        T::IQ4XS => nlquants::dequantize_iq4_xs,
        T::TQ1_0 => nlquants::dequantize_tq1_0,
        T::TQ2_0 => nlquants::dequantize_tq2_0,
        T::MXFP4 => nlquants::dequantize_mxfp4,
        T::I8 | T::I16 | T::I32 | T::I64 | T::F64 => return None,
    })
}

/// Reference quantizer for `ty` (`quantize_row_*_ref`), or `None`.
pub(crate) fn quantizer(ty: GgmlType) -> Option<QuantizeFn> {
    use GgmlType as T;
    Some(match ty {
        T::F32 => float::quantize_f32,
        T::F16 => float::quantize_f16,
        T::BF16 => float::quantize_bf16,
        T::Q4_0 => legacy::quantize_q4_0,
        T::Q4_1 => legacy::quantize_q4_1,
        T::Q5_0 => legacy::quantize_q5_0,
        T::Q5_1 => legacy::quantize_q5_1,
        T::Q8_0 => legacy::quantize_q8_0,
        T::Q8_1 => legacy::quantize_q8_1,
        T::Q2K => kquantize::quantize_q2_k,
        T::Q3K => kquantize::quantize_q3_k,
        T::Q4K => kquantize::quantize_q4_k,
        T::Q5K => kquantize::quantize_q5_k,
        T::Q6K => kquantize::quantize_q6_k,
        T::Q8K => kquants::quantize_q8_k,
        T::I8 | T::I16 | T::I32 | T::I64 | T::F64 => return None,
        T::IQ2XXS | T::IQ2XS | T::IQ2S | T::IQ3XXS | T::IQ3S | T::IQ1S | T::IQ1M => return None,
        T::IQ4NL | T::IQ4XS | T::TQ1_0 | T::TQ2_0 | T::MXFP4 => return None,
    })
}

/// The scalar dot-product table, in `crate::dot_slot` order.
pub(crate) const DOT: [VecDotFn; crate::DOT_SLOTS] = [
    float::vec_dot_f32,
    float::vec_dot_f16,
    float::vec_dot_bf16,
    legacy::vec_dot_q4_0_q8_0,
    legacy::vec_dot_q4_1_q8_1,
    legacy::vec_dot_q5_0_q8_0,
    legacy::vec_dot_q5_1_q8_1,
    legacy::vec_dot_q8_0_q8_0,
    kquants::vec_dot_q2_k_q8_k,
    kquants::vec_dot_q3_k_q8_k,
    kquants::vec_dot_q4_k_q8_k,
    kquants::vec_dot_q5_k_q8_k,
    kquants::vec_dot_q6_k_q8_k,
    iquants::vec_dot_iq2_xxs_q8_k,
    iquants::vec_dot_iq2_xs_q8_k,
    iquants::vec_dot_iq2_s_q8_k,
    iquants::vec_dot_iq3_xxs_q8_k,
    iquants::vec_dot_iq3_s_q8_k,
    iquants::vec_dot_iq1_s_q8_k,
    iquants::vec_dot_iq1_m_q8_k,
    nlquants::vec_dot_iq4_nl_q8_0,
    nlquants::vec_dot_iq4_xs_q8_k,
    nlquants::vec_dot_tq1_0_q8_k,
    nlquants::vec_dot_tq2_0_q8_k,
    nlquants::vec_dot_mxfp4_q8_0,
];

/// The scalar activation quantizers, in `crate::ACT_TYPES` order. Q8_0 and
/// Q8_1 follow ggml's x86 rule ([`legacy::quantize_q8_x86`]), as the SIMD
/// tiers do: every tier then quantizes activations to the same bytes as
/// llama.cpp on x86, and a model whose logits hinge on one rounding (a
/// value on a quantization boundary feeding peaked attention) does not get
/// different answers on different tiers.
pub(crate) const ACT: [QuantizeFn; crate::ACT_SLOTS] = [
    float::quantize_f32,
    float::quantize_f16,
    float::quantize_bf16,
    |x, y| legacy::quantize_q8_x86(x, y, false),
    |x, y| legacy::quantize_q8_x86(x, y, true),
    kquants::quantize_q8_k,
];

pub(crate) static KERNELS: Kernels = Kernels {
    isa: Isa::Scalar,
    widens: false,
    dot: DOT,
    // The reference for the multi-column kernels is repeated `vec_dot`.
    multi: [None; crate::DOT_SLOTS],
    // ... and for the tile kernels, repeated `vec_dot_multi`.
    tile: [None; crate::DOT_SLOTS],
    // ... and for the panel kernels, `panel::panel_dot_ref`.
    panel: [None; crate::DOT_SLOTS],
    act: ACT,
};
