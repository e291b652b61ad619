//! The recurrent mixers a hybrid model's layers may have instead of
//! attention, as data: which kind, and the sizes its per-sequence state
//! takes (the weights and the math are in `blocks/recurrent.rs`).

use hearth_ops::{DeltaNet, Mamba2};

/// A recurrent mixer and its sizes (`blocks/recurrent.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recurrent {
    /// Mamba-2 (Granite 4 hybrids): a causal convolution of `kernel` taps
    /// over x, B and C, then the selective scan.
    Mamba2 { shape: Mamba2, kernel: usize },
    /// Gated DeltaNet (Qwen 3.5): a causal convolution of `kernel` taps over
    /// q, k and v, then the gated delta rule.
    DeltaNet { shape: DeltaNet, kernel: usize },
    /// LFM2's gated short convolution of `kernel` taps over `n_embd`
    /// channels (no scan state).
    ShortConv { kernel: usize },
}

impl Recurrent {
    /// The mixer's name, as `hearth show` lists it.
    pub fn name(&self) -> &'static str {
        match self {
            Recurrent::Mamba2 { .. } => "Mamba-2",
            Recurrent::DeltaNet { .. } => "Gated DeltaNet",
            Recurrent::ShortConv { .. } => "short convolution",
        }
    }

    /// Floats of one sequence's convolution history and of its scan state.
    pub fn mem_len(&self, n_embd: usize) -> (usize, usize) {
        match *self {
            Recurrent::Mamba2 { shape, kernel } => {
                ((kernel - 1) * shape.xbc_width(), shape.state_len())
            }
            Recurrent::DeltaNet { shape, kernel } => {
                ((kernel - 1) * shape.qkv_width(), shape.state_len())
            }
            Recurrent::ShortConv { kernel } => ((kernel - 1) * n_embd, 0),
        }
    }
}
