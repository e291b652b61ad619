//! The architecture table: one entry per `general.architecture` value,
//! each a name, a small builder that reads the architecture's own
//! hyper-parameters and decides how the shared blocks are wired, and the
//! facts the README's table is generated from. Everything else is shared.
//!
//! Adding an architecture: a variant of [`Arch`], an entry in [`ARCHS`] and
//! a builder in this folder's file for its family.

mod bert;
mod deepseek;
mod exaone;
mod gemma;
mod glm;
mod gpt_oss;
mod granite_hybrid;
mod hybrid;
mod lfm2;
mod llama;
mod moe;
mod olmo;
mod phi;
mod qwen;
mod qwen35;
mod starcoder;

use crate::config::{Config, Meta};
use crate::ModelError;

/// The architectures hearth can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Mistral3,
    Granite,
    Smollm3,
    SeedOss,
    Qwen2,
    Qwen3,
    Gemma,
    Gemma2,
    Gemma3,
    Phi3,
    Olmo2,
    Glm4,
    Exaone4,
    Starcoder2,
    GptOss,
    Deepseek2,
    Qwen3Moe,
    Olmoe,
    GraniteMoe,
    Glm4Moe,
    Qwen35,
    Qwen35Moe,
    GraniteHybrid,
    Lfm2,
    Lfm2Moe,
    Bert,
    NomicBert,
}

/// Reads the architecture's hyper-parameters into the [`Config`] that
/// [`crate::config::common`] filled with the shared ones.
pub(crate) type Build = fn(&Meta<'_>, &mut Config) -> Result<(), ModelError>;

/// One row of the architecture table.
pub struct ArchEntry {
    pub arch: Arch,
    /// The `general.architecture` value.
    pub name: &'static str,
    pub(crate) build: Build,
    /// Model families published under this architecture.
    pub models: &'static str,
    /// What the builder wires, in a few words.
    pub blocks: &'static str,
}

/// Every architecture hearth runs.
pub static ARCHS: &[ArchEntry] = &[
    ArchEntry {
        arch: Arch::Llama,
        name: "llama",
        build: llama::llama,
        models: "Llama 2/3.x, Mistral 7B, SmolLM2, TinyLlama",
        blocks: "attention (optional biases, Llama 3 RoPE factors) + gated SiLU FFN, or MoE (Mixtral)",
    },
    ArchEntry {
        arch: Arch::Mistral3,
        name: "mistral3",
        build: llama::mistral3,
        models: "Mistral Small 3.x, Devstral",
        blocks: "Llama's blocks",
    },
    ArchEntry {
        arch: Arch::Granite,
        name: "granite",
        build: llama::granite,
        models: "Granite 3.x",
        blocks: "Llama's blocks with embedding, residual and logit multipliers",
    },
    ArchEntry {
        arch: Arch::Smollm3,
        name: "smollm3",
        build: llama::smollm3,
        models: "SmolLM3",
        blocks: "Llama's blocks, every 4th layer without RoPE",
    },
    ArchEntry {
        arch: Arch::SeedOss,
        name: "seed_oss",
        build: llama::seed_oss,
        models: "Seed-OSS",
        blocks: "Llama's blocks with NeoX RoPE",
    },
    ArchEntry {
        arch: Arch::Qwen2,
        name: "qwen2",
        build: qwen::qwen2,
        models: "Qwen2, Qwen2.5",
        blocks: "attention with QKV biases, NeoX RoPE + gated SiLU FFN",
    },
    ArchEntry {
        arch: Arch::Qwen3,
        name: "qwen3",
        build: qwen::qwen3,
        models: "Qwen3 (dense)",
        blocks: "attention with per-head QK-norm, NeoX RoPE + gated SiLU FFN",
    },
    ArchEntry {
        arch: Arch::Gemma,
        name: "gemma",
        build: gemma::gemma,
        models: "Gemma",
        blocks: "attention, NeoX RoPE + gated GELU FFN, scaled embeddings",
    },
    ArchEntry {
        arch: Arch::Gemma2,
        name: "gemma2",
        build: gemma::gemma2,
        models: "Gemma 2",
        blocks: "Gemma + post-norms, soft-capping, alternating sliding window",
    },
    ArchEntry {
        arch: Arch::Gemma3,
        name: "gemma3",
        build: gemma::gemma3,
        models: "Gemma 3",
        blocks: "Gemma + QK-norm, post-norms, 5:1 sliding window with its own RoPE base",
    },
    ArchEntry {
        arch: Arch::Phi3,
        name: "phi3",
        build: phi::phi3,
        models: "Phi-3, Phi-3.5, Phi-4",
        blocks: "fused QKV and gate-up, LongRoPE short/long factors",
    },
    ArchEntry {
        arch: Arch::Olmo2,
        name: "olmo2",
        build: olmo::olmo2,
        models: "OLMo 2",
        blocks: "post-norms only, QK-norm over all heads",
    },
    ArchEntry {
        arch: Arch::Glm4,
        name: "glm4",
        build: glm::glm4,
        models: "GLM-4, GLM-Z1",
        blocks: "pre- and post-norms, fused gate-up; multi-section RoPE as NeoX for text",
    },
    ArchEntry {
        arch: Arch::Exaone4,
        name: "exaone4",
        build: exaone::exaone4,
        models: "EXAONE 4.0",
        blocks: "post-norms only, per-head QK-norm, sliding window with global no-RoPE layers",
    },
    ArchEntry {
        arch: Arch::Starcoder2,
        name: "starcoder2",
        build: starcoder::starcoder2,
        models: "StarCoder 2",
        blocks: "LayerNorm with biases, plain GELU FFN with biases",
    },
    ArchEntry {
        arch: Arch::GptOss,
        name: "gpt-oss",
        build: gpt_oss::gpt_oss,
        models: "gpt-oss 20B, 120B",
        blocks: "attention with biases and sinks, alternating sliding window + MoE (biased experts, clamped SwiGLU)",
    },
    ArchEntry {
        arch: Arch::Deepseek2,
        name: "deepseek2",
        build: deepseek::deepseek2,
        models: "DeepSeek-V2/V2.5/V3/R1, Kimi K2",
        blocks: "multi-head latent attention + leading dense FFN, then MoE with shared experts",
    },
    ArchEntry {
        arch: Arch::Qwen3Moe,
        name: "qwen3moe",
        build: qwen::qwen3moe,
        models: "Qwen3 30B-A3B, 235B-A22B, Qwen3-Coder",
        blocks: "attention with QK-norm + MoE (softmax, normalised weights)",
    },
    ArchEntry {
        arch: Arch::Olmoe,
        name: "olmoe",
        build: olmo::olmoe,
        models: "OLMoE",
        blocks: "attention with QK-norm over all heads + MoE (softmax)",
    },
    ArchEntry {
        arch: Arch::GraniteMoe,
        name: "granitemoe",
        build: llama::granitemoe,
        models: "Granite 3 MoE",
        blocks: "Granite's multipliers + MoE (softmax, normalised weights), optional shared expert",
    },
    ArchEntry {
        arch: Arch::Glm4Moe,
        name: "glm4moe",
        build: glm::glm4moe,
        models: "GLM-4.5, 4.6, 4.7",
        blocks: "attention with QK-norm + leading dense FFN, then MoE (sigmoid, selection bias) with shared experts",
    },
    ArchEntry {
        arch: Arch::Qwen35,
        name: "qwen35",
        build: qwen35::qwen35,
        models: "Qwen3.5",
        blocks: "Gated DeltaNet (3 of 4 layers) + gated attention with QK-norm, gated SiLU FFN",
    },
    ArchEntry {
        arch: Arch::Qwen35Moe,
        name: "qwen35moe",
        build: qwen35::qwen35moe,
        models: "Qwen3.5 MoE",
        blocks: "Qwen3.5's mixers + MoE (softmax) with a sigmoid-gated shared expert",
    },
    ArchEntry {
        arch: Arch::GraniteHybrid,
        name: "granitehybrid",
        build: granite_hybrid::granitehybrid,
        models: "Granite 4.0 H",
        blocks: "Mamba-2 + attention, gated SiLU FFN, Granite multipliers",
    },
    ArchEntry {
        arch: Arch::Lfm2,
        name: "lfm2",
        build: lfm2::lfm2,
        models: "LFM2",
        blocks: "gated short convolution + attention with QK-norm, gated SiLU FFN",
    },
    ArchEntry {
        arch: Arch::Lfm2Moe,
        name: "lfm2moe",
        build: lfm2::lfm2moe,
        models: "LFM2-MoE",
        blocks: "LFM2's mixers + leading dense FFN, then MoE (sigmoid, selection bias)",
    },
    ArchEntry {
        arch: Arch::Bert,
        name: "bert",
        build: bert::bert,
        models: "all-MiniLM, bge, mxbai-embed, arctic-embed; XLM-RoBERTa (bge-m3, bge-reranker) (embedding and rerank only)",
        blocks: "non-causal attention with biases, absolute positions + token types, plain GELU FFN, LayerNorm after each residual add; mean, CLS, last or rank pooling",
    },
    ArchEntry {
        arch: Arch::NomicBert,
        name: "nomic-bert",
        build: bert::nomic_bert,
        models: "nomic-embed-text v1, v1.5 (embedding only)",
        blocks: "BERT's blocks with NeoX RoPE instead of position embeddings, fused QKV, gated SiLU FFN",
    },
];

impl Arch {
    /// The architectures in table order.
    pub fn all() -> impl Iterator<Item = Arch> {
        ARCHS.iter().map(|e| e.arch)
    }

    /// This architecture's table entry.
    pub fn entry(self) -> &'static ArchEntry {
        // Every variant has an entry (the `table_covers_every_variant` test).
        ARCHS.iter().find(|e| e.arch == self).unwrap_or(&ARCHS[0])
    }

    /// `general.architecture` value.
    pub fn name(self) -> &'static str {
        self.entry().name
    }

    pub fn from_name(s: &str) -> Option<Arch> {
        ARCHS.iter().find(|e| e.name == s).map(|e| e.arch)
    }
}

/// The table entry for `name`, or an error listing the supported ones.
pub(crate) fn find(name: &str) -> Result<&'static ArchEntry, ModelError> {
    ARCHS
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| ModelError::UnknownArch {
            name: name.into(),
            supported: supported(),
        })
}

/// The supported `general.architecture` values, comma-separated.
pub fn supported() -> String {
    ARCHS.iter().map(|e| e.name).collect::<Vec<_>>().join(", ")
}

/// The README's architecture table, generated from [`ARCHS`].
pub fn markdown_table() -> String {
    let mut s = String::from("| `general.architecture` | Families published with it | What the builder wires |\n|---|---|---|\n");
    for e in ARCHS {
        s += &format!("| `{}` | {} | {} |\n", e.name, e.models, e.blocks);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_every_variant_once() {
        for e in ARCHS {
            assert_eq!(ARCHS.iter().filter(|o| o.arch == e.arch).count(), 1);
            assert_eq!(ARCHS.iter().filter(|o| o.name == e.name).count(), 1);
            assert_eq!(Arch::from_name(e.name), Some(e.arch));
            assert_eq!(e.arch.entry().name, e.name);
        }
    }
}
