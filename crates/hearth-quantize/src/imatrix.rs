//! llama.cpp's importance-matrix files in their GGUF form (what
//! `llama-imatrix` writes): per weight, `NAME.in_sum2` (sums of squared
//! activations per column, one row per expert) and `NAME.counts` (how many
//! activations each expert saw), plus `imatrix.datasets`,
//! `imatrix.chunk_count` and `imatrix.chunk_size`.
//!
//! The importance of a column is its sum divided by its expert's count, as
//! llama-quantize computes it; an expert that saw nothing weighs 1.

use std::collections::BTreeMap;
use std::path::Path;

use hearth_gguf::{GgmlType, GgufFile};

/// Why an importance matrix could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ImatrixError {
    #[error("{path}: {source}")]
    Gguf {
        path: String,
        source: hearth_gguf::GgufError,
    },
    #[error("{0}: not an importance matrix: it lacks the imatrix.datasets, imatrix.chunk_count and imatrix.chunk_size metadata")]
    NoMetadata(String),
    #[error("{path}: {name} has {what} but no {missing}")]
    Unpaired {
        path: String,
        name: String,
        what: &'static str,
        missing: &'static str,
    },
    #[error("{path}: {name}: sums and counts must be F32, found {ty}")]
    NotF32 {
        path: String,
        name: String,
        ty: GgmlType,
    },
    #[error("{path}: {name}: {sums} sums do not split into {counts} expert rows")]
    Shape {
        path: String,
        name: String,
        sums: u64,
        counts: u64,
    },
    #[error("{path}: {name} has a non-finite importance value")]
    NonFinite { path: String, name: String },
}

/// A loaded importance matrix.
#[derive(Clone, Debug, Default)]
pub struct Imatrix {
    /// Per weight name: `ne0 × n_expert` importances, expert-major.
    pub entries: BTreeMap<String, Vec<f32>>,
    /// `imatrix.datasets` (the text files it was computed on).
    pub datasets: Vec<String>,
    /// `imatrix.chunk_count`.
    pub chunk_count: u32,
}

fn f32s(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

impl Imatrix {
    /// Reads an `*.imatrix.gguf` file.
    pub fn load(path: &Path) -> Result<Imatrix, ImatrixError> {
        let p = path.display().to_string();
        let f = GgufFile::open(path).map_err(|source| ImatrixError::Gguf {
            path: p.clone(),
            source,
        })?;
        Self::from_gguf(&f, &p)
    }

    /// Reads the importance matrix held in `f` (`path` names it in errors).
    pub fn from_gguf(f: &GgufFile, path: &str) -> Result<Imatrix, ImatrixError> {
        let datasets = f.get("imatrix.datasets").and_then(|v| v.as_array());
        let chunk_count = f.get("imatrix.chunk_count").and_then(|v| v.as_u64());
        let chunk_size = f.get("imatrix.chunk_size");
        let (Some(datasets), Some(chunk_count), Some(_)) = (datasets, chunk_count, chunk_size)
        else {
            return Err(ImatrixError::NoMetadata(path.to_string()));
        };
        let datasets = datasets
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let mut pairs: BTreeMap<&str, (Option<usize>, Option<usize>)> = BTreeMap::new();
        for (i, t) in f.tensors().iter().enumerate() {
            if let Some(n) = t.name.strip_suffix(".in_sum2") {
                pairs.entry(n).or_default().0 = Some(i);
            } else if let Some(n) = t.name.strip_suffix(".counts") {
                pairs.entry(n).or_default().1 = Some(i);
            }
        }
        let mut entries = BTreeMap::new();
        for (name, pair) in pairs {
            let unpaired = |what, missing| ImatrixError::Unpaired {
                path: path.to_string(),
                name: name.to_string(),
                what,
                missing,
            };
            let (s, c) = match pair {
                (Some(s), Some(c)) => (&f.tensors()[s], &f.tensors()[c]),
                (Some(_), None) => return Err(unpaired("sums", "counts")),
                _ => return Err(unpaired("counts", "sums")),
            };
            for t in [s, c] {
                if t.ty != GgmlType::F32 {
                    return Err(ImatrixError::NotF32 {
                        path: path.to_string(),
                        name: name.to_string(),
                        ty: t.ty,
                    });
                }
            }
            let (nval, ncounts) = (s.n_elements(), c.n_elements());
            if ncounts == 0 || nval % ncounts != 0 {
                return Err(ImatrixError::Shape {
                    path: path.to_string(),
                    name: name.to_string(),
                    sums: nval,
                    counts: ncounts,
                });
            }
            let sums: Vec<f32> = f32s(f.tensor_data(s)).collect();
            // llama.cpp rounds the counts to integers before dividing.
            let counts: Vec<f32> = f32s(f.tensor_data(c))
                .map(|v| v.round() as i64 as f32)
                .collect();
            let ne0 = sums.len() / counts.len().max(1);
            let mut e = vec![0.0f32; sums.len()];
            for (j, &count) in counts.iter().enumerate() {
                for i in 0..ne0 {
                    e[j * ne0 + i] = if count > 0.0 {
                        sums[j * ne0 + i] / count
                    } else {
                        1.0
                    };
                }
            }
            if e.iter().any(|v| !v.is_finite()) {
                return Err(ImatrixError::NonFinite {
                    path: path.to_string(),
                    name: name.to_string(),
                });
            }
            entries.insert(name.to_string(), e);
        }
        Ok(Imatrix {
            entries,
            datasets,
            chunk_count: chunk_count as u32,
        })
    }
}
