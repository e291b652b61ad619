//! Parsing a GGUF file into metadata and tensor infos, and the zero-copy
//! view of tensor bytes.
//!
//! Layout (v2/v3, little-endian): magic `GGUF`, u32 version, u64 tensor
//! count, u64 metadata count, the metadata key/value pairs, the tensor infos
//! (name, u32 n_dims, u64 dims[n_dims], u32 type, u64 offset), padding to
//! `general.alignment` (default 32), then the data section. Tensor offsets are
//! relative to the start of the data section.
//!
//! Every count read from the file is checked against the bytes that remain
//! before anything is allocated for it, and everything the parsed header will
//! hold in memory (metadata values, strings, tensor infos) is charged against
//! [`MAX_HEADER_HEAP`] before it is allocated. A corrupt count therefore ends
//! in an error at the count's offset, never in an allocation that grows with
//! the size of a multi-gigabyte mapped file.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{GgufError, Malformed};
use crate::types::GgmlType;
use crate::value::{Value, ValueType};

pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
pub const DEFAULT_ALIGNMENT: u64 = 32;
const MAX_DIMS: u32 = 4;
/// How deeply metadata arrays may nest (an array of arrays is depth 2).
pub const MAX_NESTING: u32 = 8;
/// The most memory the parsed header (metadata and tensor infos) may take,
/// in bytes. The largest real header hearth knows, gemma-3's 262,144-token
/// vocabulary with scores and token types, takes about 26 MiB, so this leaves
/// ample room while keeping a corrupt count from exhausting memory.
pub const MAX_HEADER_HEAP: u64 = 512 << 20;
/// Smallest possible encoded tensor info: empty name (8), n_dims (4), one dim
/// (8), type (4), offset (8).
const MIN_TENSOR_INFO_LEN: u64 = 8 + 4 + 8 + 4 + 8;
/// Smallest possible encoded key/value: empty key (8), type (4), one byte.
const MIN_KV_LEN: u64 = 8 + 4 + 1;

/// One tensor's description. `dims[0]` is the innermost (row) length, as in
/// ggml's `ne`.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub ty: GgmlType,
    pub dims: Vec<u64>,
    /// Offset of the data relative to the data section.
    pub offset: u64,
    /// Size of the data in bytes.
    pub size: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
    /// Number of rows (product of all dims but the first).
    pub fn n_rows(&self) -> u64 {
        self.dims.iter().skip(1).product()
    }
    pub fn row_len(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }
}

enum Backing {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
    /// The first bytes of a longer file: the header, not the tensor data.
    Prefix(Vec<u8>),
}

/// A parsed GGUF file. Tensor bytes are borrowed from the mapping.
pub struct GgufFile {
    backing: Backing,
    pub version: u32,
    metadata: Vec<(String, Value)>,
    index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: u64,
    data_offset: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Memory-maps and parses the file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        let path = path.as_ref();
        let io = |source| GgufError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the mapping is read-only. A model file changed on disk by
        // another process while mapped is outside what any mmap-based loader
        // (llama.cpp included) can defend against; hearth never writes to it.
        #[allow(unsafe_code)]
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Self::parse(Backing::Mmap(mmap))
    }

    /// Parses a GGUF image held in memory (tests, fuzzing, downloads).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        Self::parse(Backing::Owned(bytes))
    }

    /// Parses the header of a `file_len`-byte GGUF file from its first
    /// bytes (a download's first few MiB, fetched with a Range request),
    /// to read its metadata and tensor infos without the tensor data.
    /// Tensor bounds are checked against `file_len`; the data of a tensor
    /// beyond the prefix reads as empty ([`GgufFile::has_tensor_data`] is
    /// false). A prefix that ends inside the header is
    /// [`GgufError::PrefixTooShort`].
    pub fn from_prefix(prefix: Vec<u8>, file_len: u64) -> Result<GgufFile, GgufError> {
        let have = prefix.len() as u64;
        if have > file_len {
            return Err(GgufError::PrefixTooLong { have, file_len });
        }
        match Self::parse_with_len(Backing::Prefix(prefix), file_len) {
            Err(GgufError::Malformed {
                kind: Malformed::Truncated { wanted, available },
                offset,
            }) if have < file_len && offset.saturating_add(available) == have => {
                Err(GgufError::PrefixTooShort {
                    have,
                    needed: offset.saturating_add(wanted),
                })
            }
            other => other,
        }
    }

    /// Whether the tensor data is held (false for [`GgufFile::from_prefix`]).
    pub fn has_tensor_data(&self) -> bool {
        !matches!(self.backing, Backing::Prefix(_))
    }

    fn parse(backing: Backing) -> Result<GgufFile, GgufError> {
        let len = match &backing {
            Backing::Mmap(m) => m.len(),
            Backing::Owned(v) | Backing::Prefix(v) => v.len(),
        };
        Self::parse_with_len(backing, len as u64)
    }

    fn parse_with_len(backing: Backing, file_len: u64) -> Result<GgufFile, GgufError> {
        let bytes: &[u8] = match &backing {
            Backing::Mmap(m) => m,
            Backing::Owned(v) | Backing::Prefix(v) => v,
        };
        let p = parse_header(bytes, file_len)?;
        Ok(GgufFile {
            backing,
            version: p.version,
            metadata: p.metadata,
            index: p.index,
            tensors: p.tensors,
            tensor_index: p.tensor_index,
            alignment: p.alignment,
            data_offset: p.data_offset,
        })
    }

    /// The whole file.
    /// The whole file (only its first bytes for [`GgufFile::from_prefix`]).
    pub fn bytes(&self) -> &[u8] {
        match &self.backing {
            Backing::Mmap(m) => m,
            Backing::Owned(v) | Backing::Prefix(v) => v,
        }
    }

    /// Metadata in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// A required string value.
    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        self.require(key)?
            .as_str()
            .ok_or_else(|| meta_err(key, "expected a string"))
    }

    /// A required non-negative integer value.
    pub fn get_u64(&self, key: &str) -> Result<u64, GgufError> {
        self.require(key)?
            .as_u64()
            .ok_or_else(|| meta_err(key, "expected a non-negative integer"))
    }

    /// A required numeric value as f32.
    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        self.require(key)?
            .as_f32()
            .ok_or_else(|| meta_err(key, "expected a number"))
    }

    fn require(&self, key: &str) -> Result<&Value, GgufError> {
        self.get(key).ok_or_else(|| meta_err(key, "missing"))
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Result<&str, GgufError> {
        self.get_str("general.architecture")
    }

    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute file offset of the data section. A file without tensors may
    /// end before it (the padding after an empty header is optional).
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The bytes of a tensor of this file (bounds were checked when parsing;
    /// an info that does not belong to this file gets an empty slice).
    pub fn tensor_data(&self, info: &TensorInfo) -> &[u8] {
        let range = self
            .data_offset
            .checked_add(info.offset)
            .and_then(|s| Some((s, s.checked_add(info.size)?)))
            .and_then(|(s, e)| Some(usize::try_from(s).ok()?..usize::try_from(e).ok()?));
        range.and_then(|r| self.bytes().get(r)).unwrap_or(&[])
    }
}

fn meta_err(key: &str, problem: &str) -> GgufError {
    GgufError::Metadata {
        key: key.to_string(),
        problem: problem.to_string(),
    }
}

struct Parsed {
    version: u32,
    metadata: Vec<(String, Value)>,
    index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: u64,
    data_offset: u64,
}

/// A bounds-checked little-endian cursor.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Length of the whole file, which bounds counts (`buf` may be a prefix).
    end: u64,
    /// What is left of [`MAX_HEADER_HEAP`].
    heap_left: u64,
}

impl<'a> Cursor<'a> {
    fn err(&self, kind: Malformed) -> GgufError {
        GgufError::Malformed {
            offset: self.pos as u64,
            kind,
        }
    }

    /// Bytes of the file after the cursor (bounds counts).
    fn remaining(&self) -> u64 {
        self.end.saturating_sub(self.pos as u64)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], GgufError> {
        let held = (self.buf.len() - self.pos) as u64;
        if n > held {
            return Err(self.err(Malformed::Truncated {
                wanted: n,
                available: held,
            }));
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let s = self.take(N as u64)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, GgufError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, GgufError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Reads a count that must be satisfiable by the remaining bytes given
    /// the minimum encoded size of each element, and charges `heap_each`
    /// bytes per element to the header's memory budget.
    fn count(
        &mut self,
        what: &'static str,
        min_each: u64,
        heap_each: u64,
    ) -> Result<u64, GgufError> {
        let at = self.pos;
        let n = self.u64()?;
        self.check_count(at, what, n, min_each, heap_each)?;
        Ok(n)
    }

    /// Checks a count read at `at` against the remaining bytes and charges
    /// it to the memory budget (see [`Cursor::count`]).
    fn check_count(
        &mut self,
        at: usize,
        what: &'static str,
        n: u64,
        min_each: u64,
        heap_each: u64,
    ) -> Result<(), GgufError> {
        let at = at as u64;
        let max = self.remaining() / min_each.max(1);
        if n > max {
            return Err(GgufError::Malformed {
                offset: at,
                kind: Malformed::CountTooLarge {
                    what,
                    count: n,
                    max,
                },
            });
        }
        self.charge(at, what, n, heap_each)
    }

    /// Takes `n * each` bytes from the memory budget, or names the count
    /// (read at `at`) that would exceed it.
    fn charge(&mut self, at: u64, what: &'static str, n: u64, each: u64) -> Result<(), GgufError> {
        let bytes = n.saturating_mul(each);
        if bytes > self.heap_left {
            return Err(GgufError::Malformed {
                offset: at,
                kind: Malformed::HeaderTooLarge {
                    what,
                    count: n,
                    limit: MAX_HEADER_HEAP,
                },
            });
        }
        self.heap_left -= bytes;
        Ok(())
    }

    fn string(&mut self) -> Result<String, GgufError> {
        let at = self.pos;
        let n = self.count("string length", 1, 1)?;
        let s = self.take(n)?;
        String::from_utf8(s.to_vec()).map_err(|_| GgufError::Malformed {
            offset: at as u64,
            kind: Malformed::InvalidUtf8,
        })
    }

    fn value(&mut self, ty: ValueType, depth: u32) -> Result<Value, GgufError> {
        Ok(match ty {
            ValueType::U8 => Value::U8(self.u8()?),
            ValueType::I8 => Value::I8(self.u8()? as i8),
            ValueType::U16 => Value::U16(self.u16()?),
            ValueType::I16 => Value::I16(self.u16()? as i16),
            ValueType::U32 => Value::U32(self.u32()?),
            ValueType::I32 => Value::I32(self.u32()? as i32),
            ValueType::U64 => Value::U64(self.u64()?),
            ValueType::I64 => Value::I64(self.u64()? as i64),
            ValueType::F32 => Value::F32(f32::from_bits(self.u32()?)),
            ValueType::F64 => Value::F64(f64::from_bits(self.u64()?)),
            ValueType::Bool => Value::Bool(self.u8()? != 0),
            ValueType::String => Value::String(self.string()?),
            ValueType::Array => {
                if depth >= MAX_NESTING {
                    return Err(self.err(Malformed::NestingTooDeep));
                }
                let elem = self.value_type()?;
                let n = self.count("array length", elem.min_encoded_len(), VALUE_HEAP)?;
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.value(elem, depth + 1)?);
                }
                Value::Array(elem, items)
            }
        })
    }

    fn value_type(&mut self) -> Result<ValueType, GgufError> {
        let at = self.pos;
        let id = self.u32()?;
        ValueType::from_id(id).ok_or(GgufError::Malformed {
            offset: at as u64,
            kind: Malformed::UnknownValueType(id),
        })
    }
}

/// Heap bytes charged per metadata value (strings add their length).
const VALUE_HEAP: u64 = std::mem::size_of::<Value>() as u64;
/// Heap bytes charged per key/value pair: the pair, its index entry (the key
/// is cloned into the index, so its length is charged twice when read).
const KV_HEAP: u64 =
    (std::mem::size_of::<(String, Value)>() + std::mem::size_of::<(String, usize)>()) as u64;
/// Heap bytes charged per tensor info: the info, its dims, its index entry
/// and its recorded offset (the name is charged when read, twice).
const TENSOR_HEAP: u64 = (std::mem::size_of::<TensorInfo>()
    + MAX_DIMS as usize * 8
    + std::mem::size_of::<(String, usize)>()
    + 2 * std::mem::size_of::<u64>()) as u64;

/// Parses the header at the start of `bytes`, the first bytes of a file of
/// `file_len` bytes (`bytes.len()` unless only a prefix is held).
fn parse_header(bytes: &[u8], file_len: u64) -> Result<Parsed, GgufError> {
    let mut c = Cursor {
        buf: bytes,
        pos: 0,
        end: file_len,
        heap_left: MAX_HEADER_HEAP,
    };
    let magic: [u8; 4] = c.array()?;
    if magic != GGUF_MAGIC {
        c.pos = 0;
        return Err(c.err(Malformed::BadMagic(magic)));
    }
    let version = c.u32()?;
    if version != 2 && version != 3 {
        c.pos = 4;
        if matches!(version.swap_bytes(), 2 | 3) {
            return Err(c.err(Malformed::BigEndian(version.swap_bytes())));
        }
        return Err(c.err(Malformed::UnsupportedVersion(version)));
    }
    let n_tensors = c.u64()?;
    let n_kv = c.u64()?;
    // Both counts are bounded by what the rest of the file could encode and
    // by the memory budget.
    c.check_count(16, "metadata count", n_kv, MIN_KV_LEN, KV_HEAP)?;
    c.check_count(
        8,
        "tensor count",
        n_tensors,
        MIN_TENSOR_INFO_LEN,
        TENSOR_HEAP,
    )?;

    let mut metadata = Vec::with_capacity(n_kv as usize);
    let mut index = HashMap::with_capacity(n_kv as usize);
    let mut alignment_at = 0;
    for _ in 0..n_kv {
        let at = c.pos;
        let key = c.string()?;
        c.charge(at as u64, "key length", key.len() as u64, 1)?;
        if key == "general.alignment" {
            alignment_at = at as u64;
        }
        let ty = c.value_type()?;
        let value = c.value(ty, 0)?;
        if index.insert(key.clone(), metadata.len()).is_some() {
            return Err(GgufError::Malformed {
                offset: at as u64,
                kind: Malformed::DuplicateKey(key),
            });
        }
        metadata.push((key, value));
    }

    let alignment = match index.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(&i) => {
            let a = metadata[i].1.as_u64().unwrap_or(0);
            if a == 0 || !a.is_power_of_two() {
                return Err(GgufError::Malformed {
                    offset: alignment_at,
                    kind: Malformed::BadAlignment(a),
                });
            }
            a
        }
    };

    let mut tensors = Vec::with_capacity(n_tensors as usize);
    let mut tensor_index = HashMap::with_capacity(n_tensors as usize);
    let mut info_offsets = Vec::with_capacity(n_tensors as usize);
    for _ in 0..n_tensors {
        let at = c.pos as u64;
        let name = c.string()?;
        c.charge(at, "tensor name length", name.len() as u64, 1)?;
        let mal = |kind| GgufError::Malformed { offset: at, kind };
        let n_dims = c.u32()?;
        if n_dims > MAX_DIMS {
            return Err(mal(Malformed::TooManyDims {
                tensor: name,
                n_dims,
            }));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            let d = c.u64()?;
            if d > i64::MAX as u64 {
                return Err(mal(Malformed::BadDim {
                    tensor: name,
                    dim: d,
                }));
            }
            dims.push(d);
        }
        let type_id = c.u32()?;
        let ty = match GgmlType::from_id(type_id) {
            Ok(t) => t,
            Err(Some(n)) => {
                return Err(mal(Malformed::UnsupportedTensorType {
                    tensor: name,
                    name: n,
                }))
            }
            Err(None) => {
                return Err(mal(Malformed::UnknownTensorType {
                    tensor: name,
                    id: type_id,
                }))
            }
        };
        let offset = c.u64()?;
        let n_el = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
        let Some(n_el) = n_el.filter(|&n| n <= i64::MAX as u64) else {
            return Err(mal(Malformed::ElementCountOverflow { tensor: name }));
        };
        let row = dims.first().copied().unwrap_or(1);
        if row % ty.block_len() as u64 != 0 {
            return Err(mal(Malformed::RowNotBlockAligned {
                tensor: name,
                row,
                block: ty.block_len(),
            }));
        }
        let Some(size) = ty.row_bytes(n_el) else {
            return Err(mal(Malformed::ElementCountOverflow { tensor: name }));
        };
        if offset % alignment != 0 {
            return Err(mal(Malformed::MisalignedTensor {
                tensor: name,
                offset,
                alignment,
            }));
        }
        if tensor_index.insert(name.clone(), tensors.len()).is_some() {
            return Err(mal(Malformed::DuplicateTensor(name)));
        }
        info_offsets.push(at);
        tensors.push(TensorInfo {
            name,
            ty,
            dims,
            offset,
            size,
        });
    }

    // The data section starts at the next multiple of the alignment.
    let pos = c.pos as u64;
    let data_offset = pos.div_ceil(alignment) * alignment;
    let data_len = file_len.saturating_sub(data_offset);
    if !tensors.is_empty() && data_offset > file_len {
        return Err(GgufError::Malformed {
            offset: pos,
            kind: Malformed::Truncated {
                wanted: data_offset - pos,
                available: file_len - pos,
            },
        });
    }

    // Bounds and overlap: sort by start and compare neighbours.
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by_key(|&i| tensors[i].offset);
    let mut prev: Option<usize> = None;
    for &i in &order {
        let t = &tensors[i];
        let end = t.offset.checked_add(t.size);
        if end.is_none_or(|e| e > data_len) {
            return Err(GgufError::Malformed {
                offset: info_offsets[i],
                kind: Malformed::TensorOutOfBounds {
                    tensor: t.name.clone(),
                    start: t.offset,
                    end: end.unwrap_or(u64::MAX),
                    data_len,
                },
            });
        }
        if let Some(p) = prev {
            let pt = &tensors[p];
            if pt.offset + pt.size > t.offset && t.size > 0 {
                return Err(GgufError::Malformed {
                    offset: info_offsets[i],
                    kind: Malformed::TensorOverlap {
                        a: pt.name.clone(),
                        b: t.name.clone(),
                    },
                });
            }
        }
        if t.size > 0 {
            prev = Some(i);
        }
    }

    Ok(Parsed {
        version,
        metadata,
        index,
        tensors,
        tensor_index,
        alignment,
        data_offset,
    })
}
