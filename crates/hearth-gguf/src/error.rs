//! The one error type of this crate: what went wrong and where.

use std::fmt;

/// What is wrong with a GGUF file. Every variant that comes from the bytes
/// carries the byte offset at which the problem was found.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("at byte {offset}: {kind}")]
    Malformed { offset: u64, kind: Malformed },
    /// [`crate::GgufFile::from_prefix`] was given fewer bytes than the
    /// header takes: at least `needed` are required.
    #[error(
        "the first {have} bytes of the file end inside its GGUF header, which \
         takes at least {needed} bytes: fetch a longer prefix"
    )]
    PrefixTooShort { have: u64, needed: u64 },
    #[error("a prefix of {have} bytes is longer than the whole file ({file_len} bytes)")]
    PrefixTooLong { have: u64, file_len: u64 },
    #[error("metadata key '{key}': {problem}")]
    Metadata { key: String, problem: String },
}

/// The kinds of malformed input the parser recognises.
#[derive(Debug, Clone, PartialEq)]
pub enum Malformed {
    BadMagic([u8; 4]),
    BigEndian(u32),
    UnsupportedVersion(u32),
    Truncated {
        wanted: u64,
        available: u64,
    },
    CountTooLarge {
        what: &'static str,
        count: u64,
        max: u64,
    },
    /// Holding what `count` announces would take the parsed header past
    /// `limit` bytes of memory.
    HeaderTooLarge {
        what: &'static str,
        count: u64,
        limit: u64,
    },
    InvalidUtf8,
    UnknownValueType(u32),
    NestingTooDeep,
    DuplicateKey(String),
    DuplicateTensor(String),
    UnknownTensorType {
        tensor: String,
        id: u32,
    },
    UnsupportedTensorType {
        tensor: String,
        name: &'static str,
    },
    TooManyDims {
        tensor: String,
        n_dims: u32,
    },
    BadDim {
        tensor: String,
        dim: u64,
    },
    ElementCountOverflow {
        tensor: String,
    },
    RowNotBlockAligned {
        tensor: String,
        row: u64,
        block: usize,
    },
    BadAlignment(u64),
    MisalignedTensor {
        tensor: String,
        offset: u64,
        alignment: u64,
    },
    TensorOutOfBounds {
        tensor: String,
        start: u64,
        end: u64,
        data_len: u64,
    },
    TensorOverlap {
        a: String,
        b: String,
    },
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Malformed::*;
        match self {
            BadMagic(m) => write!(f, "not a GGUF file (magic {m:02x?}, expected \"GGUF\")"),
            BigEndian(v) => write!(f, "big-endian GGUF (version {v}) is not supported"),
            UnsupportedVersion(v) => write!(f, "unsupported GGUF version {v} (supported: 2, 3)"),
            Truncated { wanted, available } => write!(
                f,
                "file truncated: needed {wanted} more bytes, only {available} left"
            ),
            CountTooLarge { what, count, max } => {
                write!(f, "{what} {count} cannot fit in the file (at most {max})")
            }
            HeaderTooLarge { what, count, limit } => write!(
                f,
                "{what} {count} would take the parsed header past its memory limit of {limit} bytes"
            ),
            InvalidUtf8 => write!(f, "string is not valid UTF-8"),
            UnknownValueType(t) => write!(f, "unknown metadata value type {t}"),
            NestingTooDeep => write!(f, "metadata arrays nested too deeply"),
            DuplicateKey(k) => write!(f, "duplicate metadata key '{k}'"),
            DuplicateTensor(t) => write!(f, "duplicate tensor name '{t}'"),
            UnknownTensorType { tensor, id } => {
                write!(f, "tensor '{tensor}' has unknown type id {id}")
            }
            UnsupportedTensorType { tensor, name } => {
                write!(f, "tensor '{tensor}' has type {name}, which hearth does not support")
            }
            TooManyDims { tensor, n_dims } => {
                write!(f, "tensor '{tensor}' has {n_dims} dimensions (at most 4)")
            }
            BadDim { tensor, dim } => write!(f, "tensor '{tensor}' has invalid dimension {dim}"),
            ElementCountOverflow { tensor } => {
                write!(f, "tensor '{tensor}': element count overflows")
            }
            RowNotBlockAligned { tensor, row, block } => write!(
                f,
                "tensor '{tensor}': row length {row} is not a multiple of its block size {block}"
            ),
            BadAlignment(a) => write!(f, "general.alignment {a} is not a power of two"),
            MisalignedTensor { tensor, offset, alignment } => write!(
                f,
                "tensor '{tensor}' data offset {offset} is not a multiple of the alignment {alignment}"
            ),
            TensorOutOfBounds { tensor, start, end, data_len } => write!(
                f,
                "tensor '{tensor}' data [{start}, {end}) lies outside the data section ({data_len} bytes)"
            ),
            TensorOverlap { a, b } => write!(f, "tensors '{a}' and '{b}' overlap"),
        }
    }
}
