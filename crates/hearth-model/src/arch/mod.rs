//! The architecture table: one entry per `general.architecture` value,
//! each a name, a small builder that reads the architecture's own
//! hyper-parameters and decides how the shared blocks are wired, and the
//! facts the README's table is generated from. Everything else is shared.
//!
//! Adding an architecture: a variant of [`Arch`], an entry in [`ARCHS`] and
//! a builder in this folder's file for its family.

mod gemma;
mod granite_hybrid;
mod hybrid;
mod lfm2;
mod llama;
mod qwen;
mod qwen35;

use crate::config::{Config, Meta};
use crate::ModelError;

/// The architectures hearth can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Gemma3,
    Qwen2,
    Qwen35,
    GraniteHybrid,
    Lfm2,
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
        blocks: "attention (optional biases, Llama 3 RoPE factors) + gated SiLU FFN",
    },
    ArchEntry {
        arch: Arch::Qwen2,
        name: "qwen2",
        build: qwen::qwen2,
        models: "Qwen2, Qwen2.5",
        blocks: "attention with QKV biases, NeoX RoPE + gated SiLU FFN",
    },
    ArchEntry {
        arch: Arch::Gemma3,
        name: "gemma3",
        build: gemma::gemma3,
        models: "Gemma 3",
        blocks: "attention with QK-norm, 5:1 sliding window + gated GELU FFN, post norms",
    },
    ArchEntry {
        arch: Arch::Qwen35,
        name: "qwen35",
        build: qwen35::qwen35,
        models: "Qwen3.5",
        blocks: "Gated DeltaNet (3 of 4 layers) + gated attention with QK-norm, gated SiLU FFN",
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
    let mut s = String::from("| `general.architecture` | Models | Blocks |\n|---|---|---|\n");
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
