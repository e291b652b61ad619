//! Writing GGUF v3 files: used by tests to synthesise tiny models and by
//! quantization to emit new files.

use std::io::{self, Write};
use std::path::Path;

use crate::reader::{DEFAULT_ALIGNMENT, GGUF_MAGIC, MAX_NESTING};
use crate::types::GgmlType;
use crate::value::{Value, ValueType};

/// Why a tensor could not be added.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("tensor '{0}' already added")]
    DuplicateTensor(String),
    #[error("tensor '{name}': {got} bytes of data, its shape {dims:?} of {ty} needs {want}")]
    SizeMismatch {
        name: String,
        ty: GgmlType,
        dims: Vec<u64>,
        got: usize,
        want: u64,
    },
    #[error("tensor '{name}': shape {dims:?} is not valid for {ty}")]
    BadShape {
        name: String,
        ty: GgmlType,
        dims: Vec<u64>,
    },
    #[error("array elements must all be of type {0:?}")]
    MixedArray(ValueType),
    #[error("metadata arrays nested deeper than {MAX_NESTING} levels")]
    NestingTooDeep,
    #[error(transparent)]
    Io(#[from] io::Error),
}

struct PendingTensor {
    name: String,
    ty: GgmlType,
    dims: Vec<u64>,
    data: Vec<u8>,
}

/// Collects metadata and tensors, then writes them as one GGUF v3 file.
///
/// ```
/// use hearth_gguf::{GgufWriter, GgufFile, GgmlType, Value};
/// let mut w = GgufWriter::new();
/// w.set("general.architecture", Value::from("llama"));
/// w.add_tensor("x", GgmlType::F32, &[2], 1.0f32.to_le_bytes().repeat(2)).unwrap();
/// let file = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
/// assert_eq!(file.architecture().unwrap(), "llama");
/// ```
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    tensors: Vec<PendingTensor>,
    alignment: u64,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    pub fn new() -> Self {
        GgufWriter {
            metadata: Vec::new(),
            tensors: Vec::new(),
            alignment: DEFAULT_ALIGNMENT,
        }
    }

    /// Sets (or replaces) a metadata key. `general.alignment` also changes
    /// the alignment used when writing.
    pub fn set(&mut self, key: &str, value: Value) {
        if key == "general.alignment" {
            if let Some(a) = value.as_u64().filter(|a| a.is_power_of_two()) {
                self.alignment = a;
            }
        }
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.metadata.push((key.to_string(), value)),
        }
    }

    /// Adds a tensor; `data` must be exactly its encoded size.
    pub fn add_tensor(
        &mut self,
        name: &str,
        ty: GgmlType,
        dims: &[u64],
        data: Vec<u8>,
    ) -> Result<(), WriteError> {
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(WriteError::DuplicateTensor(name.to_string()));
        }
        let bad = || WriteError::BadShape {
            name: name.to_string(),
            ty,
            dims: dims.to_vec(),
        };
        // The reader's rules: 1 to 4 dims, each at most i64::MAX (ggml's
        // `ne` is signed).
        if dims.is_empty() || dims.len() > 4 || dims.iter().any(|&d| d > i64::MAX as u64) {
            return Err(bad());
        }
        let n: u64 = dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .ok_or_else(bad)?;
        if dims[0] % ty.block_len() as u64 != 0 {
            return Err(bad());
        }
        let want = ty.row_bytes(n).ok_or_else(bad)?;
        if data.len() as u64 != want {
            return Err(WriteError::SizeMismatch {
                name: name.to_string(),
                ty,
                dims: dims.to_vec(),
                got: data.len(),
                want,
            });
        }
        self.tensors.push(PendingTensor {
            name: name.to_string(),
            ty,
            dims: dims.to_vec(),
            data,
        });
        Ok(())
    }

    /// Writes the file image to `out`.
    pub fn write_to(&self, out: &mut impl Write) -> Result<(), WriteError> {
        let mut w = CountingWriter { inner: out, n: 0 };
        let descs: Vec<TensorDesc<'_>> = self
            .tensors
            .iter()
            .map(|t| TensorDesc {
                name: &t.name,
                ty: t.ty,
                dims: &t.dims,
                size: t.data.len() as u64,
            })
            .collect();
        let offsets = write_header(&mut w, &self.metadata, &descs, self.alignment)?;
        let base = w.n;
        for (t, off) in self.tensors.iter().zip(offsets) {
            let cur = w.n - base;
            w.write_all(&vec![0u8; (off - cur) as usize])?;
            w.write_all(&t.data)?;
        }
        if !self.tensors.is_empty() {
            pad(&mut w, self.alignment)?;
        }
        Ok(())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, WriteError> {
        let mut v = Vec::new();
        self.write_to(&mut v)?;
        Ok(v)
    }

    /// Writes to `path` atomically: a temporary file beside it is written,
    /// synced and renamed, so a failure never leaves a half-written file at
    /// `path`.
    pub fn write_file(&self, path: impl AsRef<Path>) -> Result<(), WriteError> {
        write_atomically(path.as_ref(), |w| self.write_to(w))
    }
}

/// Writes `path` atomically: `write` fills a buffered temporary file beside
/// it, which is synced and renamed over `path`. On any failure the
/// temporary file is removed and `path` is left as it was.
pub fn write_atomically<E: From<io::Error>>(
    path: &Path,
    write: impl FnOnce(&mut io::BufWriter<std::fs::File>) -> Result<(), E>,
) -> Result<(), E> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
    let result = (|| {
        let f = std::fs::File::create(&tmp)?;
        let mut bw = io::BufWriter::new(f);
        write(&mut bw)?;
        let f = bw.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A tensor whose bytes the caller writes after [`write_header`] (streaming
/// writers, such as merging the parts of a split model, that never hold the
/// tensor data in memory).
#[derive(Clone, Copy, Debug)]
pub struct TensorDesc<'a> {
    pub name: &'a str,
    pub ty: GgmlType,
    pub dims: &'a [u64],
    /// Size of the data in bytes.
    pub size: u64,
}

/// Writes a GGUF v3 header: metadata, then the infos of `tensors` laid out
/// in order, each starting at a multiple of `alignment` (a power of two),
/// then padding up to the data section. Returns each tensor's offset within
/// the data section; the caller writes zero bytes up to each offset, the
/// tensor's `size` bytes, and after the last tensor pads to `alignment`.
pub fn write_header(
    out: &mut impl Write,
    metadata: &[(String, Value)],
    tensors: &[TensorDesc<'_>],
    alignment: u64,
) -> Result<Vec<u64>, WriteError> {
    let mut w = CountingWriter { inner: out, n: 0 };
    w.write_all(&GGUF_MAGIC)?;
    w.write_all(&3u32.to_le_bytes())?;
    w.write_all(&(tensors.len() as u64).to_le_bytes())?;
    w.write_all(&(metadata.len() as u64).to_le_bytes())?;
    for (k, v) in metadata {
        write_str(&mut w, k)?;
        w.write_all(&(v.value_type() as u32).to_le_bytes())?;
        write_value(&mut w, v, 0)?;
    }
    let a = alignment.max(1);
    let mut offset = 0u64;
    let mut offsets = Vec::with_capacity(tensors.len());
    for t in tensors {
        write_str(&mut w, t.name)?;
        w.write_all(&(t.dims.len() as u32).to_le_bytes())?;
        for d in t.dims {
            w.write_all(&d.to_le_bytes())?;
        }
        w.write_all(&(t.ty as u32).to_le_bytes())?;
        w.write_all(&offset.to_le_bytes())?;
        offsets.push(offset);
        offset = (offset + t.size).div_ceil(a) * a;
    }
    pad(&mut w, a)?;
    Ok(offsets)
}

struct CountingWriter<'a, W: Write> {
    inner: &'a mut W,
    n: u64,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn pad<W: Write>(w: &mut CountingWriter<'_, W>, a: u64) -> io::Result<()> {
    let target = w.n.div_ceil(a) * a;
    w.write_all(&vec![0u8; (target - w.n) as usize])
}

fn write_str(w: &mut impl Write, s: &str) -> io::Result<()> {
    w.write_all(&(s.len() as u64).to_le_bytes())?;
    w.write_all(s.as_bytes())
}

/// Writes one value; `depth` is the number of arrays around it.
fn write_value(w: &mut impl Write, v: &Value, depth: u32) -> Result<(), WriteError> {
    match v {
        Value::U8(x) => w.write_all(&[*x])?,
        Value::I8(x) => w.write_all(&x.to_le_bytes())?,
        Value::U16(x) => w.write_all(&x.to_le_bytes())?,
        Value::I16(x) => w.write_all(&x.to_le_bytes())?,
        Value::U32(x) => w.write_all(&x.to_le_bytes())?,
        Value::I32(x) => w.write_all(&x.to_le_bytes())?,
        Value::U64(x) => w.write_all(&x.to_le_bytes())?,
        Value::I64(x) => w.write_all(&x.to_le_bytes())?,
        Value::F32(x) => w.write_all(&x.to_le_bytes())?,
        Value::F64(x) => w.write_all(&x.to_le_bytes())?,
        Value::Bool(x) => w.write_all(&[*x as u8])?,
        Value::String(s) => write_str(w, s)?,
        Value::Array(ty, items) => {
            if depth >= MAX_NESTING {
                return Err(WriteError::NestingTooDeep);
            }
            if items.iter().any(|i| i.value_type() != *ty) {
                return Err(WriteError::MixedArray(*ty));
            }
            w.write_all(&(*ty as u32).to_le_bytes())?;
            w.write_all(&(items.len() as u64).to_le_bytes())?;
            for i in items {
                write_value(w, i, depth + 1)?;
            }
        }
    }
    Ok(())
}
