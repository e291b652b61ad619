//! GGUF v2/v3 reading and writing.
//!
//! This crate owns the file format and nothing else: the header, typed
//! metadata (every value type, nested arrays included), tensor infos, the
//! `general.alignment` rule, and a zero-copy view of tensor bytes from a
//! memory mapping. It does no arithmetic on tensors.
//!
//! Key types: [`GgufFile`] (a parsed, mapped file), [`TensorInfo`],
//! [`Value`], [`GgmlType`], [`GgufWriter`], and [`GgufError`], whose
//! `Malformed` variant names the problem and the byte offset where it was
//! found. Every count in the file is bounded by the bytes that remain before
//! anything is allocated for it.
//!
//! ```
//! use hearth_gguf::{GgufFile, GgufWriter, GgmlType, Value};
//! let mut w = GgufWriter::new();
//! w.set("general.architecture", Value::from("llama"));
//! w.add_tensor("t", GgmlType::F32, &[4], vec![0u8; 16]).unwrap();
//! let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
//! let t = f.tensor("t").unwrap();
//! assert_eq!(f.tensor_data(t).len(), 16);
//! ```

mod error;
mod reader;
pub mod types;
mod value;
mod writer;

pub use error::{GgufError, Malformed};
pub use reader::{
    GgufFile, TensorInfo, DEFAULT_ALIGNMENT, GGUF_MAGIC, MAX_HEADER_HEAP, MAX_NESTING,
};
pub use types::GgmlType;
pub use value::{Value, ValueType};
pub use writer::{write_atomically, write_header, GgufWriter, TensorDesc, WriteError};
