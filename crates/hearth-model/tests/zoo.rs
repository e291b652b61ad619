//! The architecture zoo (`../shared/zoo/`, see its README): tiny
//! random-weight models written by llama.cpp's architecture test generator,
//! with llama.cpp's logits for 24 tokens in three evaluation orders. Each
//! file must load and match in every order with NMSE ≤ 1e-4.
//!
//! One test per file, so each passes or fails on its own: a new
//! architecture adds one `zoo!` line.

#[macro_use]
mod zoo_common;

use zoo_common::check;

zoo! {
    llama_dense => "llama-dense",
    qwen35_dense => "qwen35-dense",
    granitehybrid_dense => "granitehybrid-dense",
    qwen35moe_moe => "qwen35moe-moe",
    lfm2_dense => "lfm2-dense",
    lfm2moe_moe => "lfm2moe-moe",
    mistral3_dense => "mistral3-dense",
    granite_dense => "granite-dense",
    smollm3_dense => "smollm3-dense",
    seed_oss_dense => "seed_oss-dense",
    qwen2_dense => "qwen2-dense",
    qwen3_dense => "qwen3-dense",
    gemma_dense => "gemma-dense",
    gemma2_dense => "gemma2-dense",
    gemma3_dense => "gemma3-dense",
    phi3_dense => "phi3-dense",
    olmo2_dense => "olmo2-dense",
    glm4_dense => "glm4-dense",
    exaone4_dense => "exaone4-dense",
    starcoder2_dense => "starcoder2-dense",
    llama_moe => "llama-moe",
    gpt_oss_moe => "gpt-oss-moe",
    qwen3moe_moe => "qwen3moe-moe",
    olmoe_moe => "olmoe-moe",
    granitemoe_moe => "granitemoe-moe",
    mistral3_moe => "mistral3-moe",
    glm4moe_moe => "glm4moe-moe",
    deepseek2_moe => "deepseek2-moe",
}
