//! hearth-gguf
pub mod types;
pub use types::GgmlType;
