//! The block-format zoo (`../shared/zoo/quant/`, see the zoo README): the
//! llama zoo model (seed 1) quantized by `llama-quantize` to each i-quant,
//! ternary and K-mix type, with llama.cpp's `batch` and `seq` logits. Each
//! file must load and match in both orders with NMSE ≤ 1e-4, so every
//! block format's dequantization and dot product (on the kernel tier in
//! use) agrees with llama.cpp inside a whole model.

#[macro_use]
mod zoo_common;

use zoo_common::check;

zoo! {
    iq1_m => "quant/llama-dense-iq1_m",
    iq1_s => "quant/llama-dense-iq1_s",
    iq2_s => "quant/llama-dense-iq2_s",
    iq2_xs => "quant/llama-dense-iq2_xs",
    iq2_xxs => "quant/llama-dense-iq2_xxs",
    iq3_s => "quant/llama-dense-iq3_s",
    iq3_xxs => "quant/llama-dense-iq3_xxs",
    iq4_nl => "quant/llama-dense-iq4_nl",
    iq4_xs => "quant/llama-dense-iq4_xs",
    tq1_0 => "quant/llama-dense-tq1_0",
    tq2_0 => "quant/llama-dense-tq2_0",
    q2_k => "quant/llama-dense-q2_k",
    q3_k_s => "quant/llama-dense-q3_k_s",
    q4_k_m => "quant/llama-dense-q4_k_m",
    q5_k_m => "quant/llama-dense-q5_k_m",
    q6_k => "quant/llama-dense-q6_k",
    gpt_oss_mxfp4 => "quant/gpt-oss-moe-mxfp4",
}
