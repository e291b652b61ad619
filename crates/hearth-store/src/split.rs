//! Merging the parts of a split GGUF (`name-00001-of-0000N.gguf`, as
//! written by llama.cpp's `gguf-split`) into one file, the way
//! `llama-gguf-split --merge` does: the first part's metadata without the
//! `split.*` keys, then every part's tensors in order, re-laid out in one
//! data section. Tensor bytes are streamed from the parts' mappings, so
//! memory does not grow with the model.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use hearth_gguf::{GgufFile, TensorDesc, Value};
use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};

pub const KEY_SPLIT_NO: &str = "split.no";
pub const KEY_SPLIT_COUNT: &str = "split.count";
pub const KEY_SPLIT_TENSORS: &str = "split.tensors.count";

/// A writer that hashes and counts what passes through it.
struct Hashing<W: Write> {
    inner: W,
    hash: Sha256,
    n: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.hash.update(&buf[..k]);
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn write_zeros(w: &mut impl Write, mut n: u64) -> io::Result<()> {
    let zeros = [0u8; 4096];
    while n > 0 {
        let k = n.min(zeros.len() as u64) as usize;
        w.write_all(&zeros[..k])?;
        n -= k as u64;
    }
    Ok(())
}

fn err(msg: String) -> StoreError {
    StoreError::Split(msg)
}

/// Merges `parts` (in order) into a new file at `out`, synced. Returns the
/// sha256 (hex) and size of what was written. On error `out` is removed.
pub fn merge(parts: &[PathBuf], out: &Path) -> Result<(String, u64)> {
    let r = merge_inner(parts, out);
    if r.is_err() {
        let _ = std::fs::remove_file(out);
    }
    r
}

fn merge_inner(parts: &[PathBuf], out: &Path) -> Result<(String, u64)> {
    let files = parts
        .iter()
        .map(|p| {
            GgufFile::open(p).map_err(|source| StoreError::NotGguf {
                path: p.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let first = files
        .first()
        .ok_or_else(|| err("no parts to merge".into()))?;
    let n = parts.len() as u64;
    for (i, f) in files.iter().enumerate() {
        let name = parts[i].display();
        let count = f.get(KEY_SPLIT_COUNT).and_then(Value::as_u64);
        let no = f.get(KEY_SPLIT_NO).and_then(Value::as_u64);
        if count != Some(n) {
            return Err(err(format!(
                "{name}: {KEY_SPLIT_COUNT} is {count:?}, expected {n} parts"
            )));
        }
        if no != Some(i as u64) {
            return Err(err(format!(
                "{name}: {KEY_SPLIT_NO} is {no:?}, expected {i}"
            )));
        }
    }
    let total_tensors: usize = files.iter().map(|f| f.tensors().len()).sum();
    if let Some(t) = first.get(KEY_SPLIT_TENSORS).and_then(Value::as_u64) {
        if t != total_tensors as u64 {
            return Err(err(format!(
                "the parts hold {total_tensors} tensors, the first says {t}"
            )));
        }
    }
    let metadata: Vec<(String, Value)> = first
        .metadata()
        .iter()
        .filter(|(k, _)| !k.starts_with("split."))
        .cloned()
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut descs = Vec::with_capacity(total_tensors);
    let mut sources = Vec::with_capacity(total_tensors);
    for f in &files {
        for t in f.tensors() {
            if !seen.insert(t.name.as_str()) {
                return Err(err(format!("tensor '{}' is in two parts", t.name)));
            }
            descs.push(TensorDesc {
                name: &t.name,
                ty: t.ty,
                dims: &t.dims,
                size: t.size,
            });
            sources.push((f, t));
        }
    }
    let align = first.alignment();
    let file = File::create(out).map_err(StoreError::io(out))?;
    let mut w = Hashing {
        inner: BufWriter::with_capacity(1 << 20, file),
        hash: Sha256::new(),
        n: 0,
    };
    let offsets = hearth_gguf::write_header(&mut w, &metadata, &descs, align)
        .map_err(|e| err(format!("writing the merged header: {e}")))?;
    let base = w.n;
    let io = StoreError::io(out);
    let r = (|| -> io::Result<()> {
        for ((f, t), off) in sources.iter().zip(&offsets) {
            let gap = base + off - w.n;
            write_zeros(&mut w, gap)?;
            let data = f.tensor_data(t);
            if data.len() as u64 != t.size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("tensor '{}' lies outside its part", t.name),
                ));
            }
            w.write_all(data)?;
        }
        if !offsets.is_empty() {
            let a = align.max(1);
            let end = (w.n - base).div_ceil(a) * a + base;
            let pad = end - w.n;
            write_zeros(&mut w, pad)?;
        }
        w.flush()?;
        Ok(())
    })();
    r.map_err(io)?;
    let Hashing { inner, hash, n } = w;
    let file = inner
        .into_inner()
        .map_err(|e| StoreError::io(out)(e.into_error()))?;
    file.sync_all().map_err(StoreError::io(out))?;
    Ok((crate::store::hex(&hash.finalize()), n))
}
