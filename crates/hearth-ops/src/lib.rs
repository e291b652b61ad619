//! CPU operations for hearth's models, with no model knowledge.
//!
//! This crate owns the thread pool ([`ThreadPool`]) and the operations a
//! transformer forward pass is built from: quantized matrix multiplication
//! ([`matmul`], activations quantized once per call into the weight type's
//! dot-product format and multiplied with the kernels `hearth-quant` picked
//! for this CPU), RMS norm, gated activations, rotary embeddings ([`Rope`])
//! attention over a KV cache ([`attention`]), mixture-of-experts routing
//! ([`route`]) with the grouped expert matmul ([`expert_matmul`]), and the
//! recurrent mixers' operations ([`recurrent`]: causal convolution with a
//! carried state, the Mamba-2 scan, the gated delta rule).
//!
//! ```
//! use hearth_ops::{ThreadPool, rms_norm};
//! let pool = ThreadPool::new(2);
//! let mut out = [0.0f32; 2];
//! rms_norm(&[3.0, 4.0], &[1.0, 1.0], 0.0, &mut out);
//! pool.run(&|_i, _n| {});
//! ```

pub mod attention;
pub mod elementwise;
pub mod experts;
mod float_matmul;
pub mod matmul;
pub mod moe;
mod packed_attention;
pub mod pool;
pub mod recurrent;
pub mod rope;
pub mod rows;
pub mod vec;
pub mod vexp;

pub use attention::{
    attention, attention_batch, attention_batch_sinks, AttnParams, KvElem, KvView, F16,
};
pub use elementwise::{
    act_inplace, act_inplace_par, add_inplace, add_inplace_par, add_rows, gated_act, gated_act_par,
    gelu, gelu_table, im2col_1d, layer_norm, layer_norm_rows, log_softmax, log_softmax_fast,
    rms_norm, rms_norm_inplace, scale_inplace, silu, softmax_inplace, softmax_rows, tanh_inplace,
    to_f16_rows, Activation,
};
pub use experts::{expert_matmul, ExpertInput, ExpertsRef};
pub use float_matmul::{matmul_panels, matmul_panels_many, multiplies_in_f32, Panels};
pub use matmul::{
    matmul, matmul_quantized, matmul_quantized_many, matmul_rows, quantize_rows, WeightRef,
};
pub use moe::{
    combine_experts, expert_scale_bias, route, swiglu_limited, swiglu_oai, Gating, Router, Routes,
};
pub use packed_attention::attention_packed;
pub use pool::{split, Disjoint, ThreadPool};
pub use recurrent::{
    causal_conv1d, gated_delta_rule, l2_norm_inplace, mamba2_scan, mul_inplace,
    mul_sigmoid_inplace, mul_silu_inplace, sigmoid, softplus, DeltaNet, Mamba2,
};
pub use rope::{Rope, RopeKind, Yarn};
pub use rows::{rows_par, rows_par2};
pub use vexp::{exp_inplace, softmax_fast};
