//! # hearth-quantize
//!
//! Model quantization as llama.cpp's `llama-quantize` does it, byte for
//! byte: the same type names and mixes ([`Ftype`]), the same per-tensor
//! type choice ([`policy`]), importance matrices read from llama.cpp's
//! GGUF imatrix files ([`Imatrix`]), the same metadata
//! (`general.file_type`, `general.quantization_version`,
//! `quantize.imatrix.*`) and the same tensor order and alignment. The block
//! arithmetic is `hearth_quant::quantize::quantize_rows`.
//!
//! The output is written to a temporary file beside `OUT` and renamed over
//! it when complete, so a failure never leaves a half-written model.

#![cfg_attr(test, allow(clippy::unwrap_used))]
#![allow(unknown_lints, clippy::manual_is_multiple_of)]

pub mod ftype;
pub mod imatrix;
pub mod policy;
mod write;

pub use ftype::Ftype;
pub use imatrix::{Imatrix, ImatrixError};
pub use policy::{ModelInfo, PolicyError};
pub use write::{quantize_file, quantize_to};

use hearth_gguf::{GgmlType, GgufFile, TensorInfo, Value};

/// What to produce.
pub struct Options {
    pub ftype: Ftype,
    /// The importance matrix and the path it was read from (recorded in
    /// `quantize.imatrix.file`).
    pub imatrix: Option<(Imatrix, String)>,
    /// Allow quantizing tensors that are already quantized (dequantized to
    /// f32 first; the result is worse than quantizing the original).
    pub allow_requantize: bool,
}

/// Why a model could not be quantized.
#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: hearth_gguf::GgufError,
    },
    #[error("the model has no {0} metadata")]
    Metadata(String),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("{ftype} needs an importance matrix (--imatrix FILE): tensor {tensor} would be {ty}")]
    NeedsImatrix {
        ftype: &'static str,
        tensor: String,
        ty: GgmlType,
    },
    #[error("the importance matrix has {got} values for {tensor}, which needs {want}")]
    ImatrixSize {
        tensor: String,
        got: usize,
        want: u64,
    },
    #[error("tensor {tensor} is already {ty}: requantizing loses quality; pass --allow-requantize to do it anyway")]
    Requantize { tensor: String, ty: GgmlType },
    #[error("tensor {tensor}: cannot convert {from} to f32 for requantizing")]
    NoDequantizer { tensor: String, from: GgmlType },
    #[error("tensor {tensor}: {source}")]
    Quant {
        tensor: String,
        source: hearth_quant::quantize::QuantizeError,
    },
    #[error("the input and the output are the same file: {0}")]
    SameFile(String),
    #[error("the output header: {0}")]
    Header(hearth_gguf::WriteError),
    /// Writing the output failed (before its path is known to the error).
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// One tensor of the output: where it comes from and what it becomes.
#[derive(Clone, Debug)]
pub struct PlannedTensor {
    /// Its index among the input's tensors.
    pub input: usize,
    pub name: String,
    pub dims: Vec<u64>,
    pub from: GgmlType,
    pub to: GgmlType,
    /// The importance row(s) it is quantized with (`ne0 × n_expert`).
    pub imatrix: Option<Vec<f32>>,
}

/// Everything decided before any data is written.
#[derive(Clone, Debug)]
pub struct Plan {
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<PlannedTensor>,
    /// How many tensors fell back to a 32-element type for their shape.
    pub n_fallback: usize,
}

fn arch_u64(f: &GgufFile, arch: &str, key: &str) -> Option<u64> {
    let v = f.get(&format!("{arch}.{key}"))?;
    v.as_u64().or_else(|| v.as_array()?.first()?.as_u64())
}

/// The facts the type rules need, from the model's metadata.
pub fn model_info(f: &GgufFile) -> Result<ModelInfo, QuantizeError> {
    let arch = f
        .architecture()
        .map_err(|_| QuantizeError::Metadata("general.architecture".into()))?
        .to_string();
    let n_layer = arch_u64(f, &arch, "block_count")
        .ok_or_else(|| QuantizeError::Metadata(format!("{arch}.block_count")))?;
    let n_head = arch_u64(f, &arch, "attention.head_count").unwrap_or(0);
    let n_head_kv = arch_u64(f, &arch, "attention.head_count_kv").unwrap_or(n_head);
    let n_expert = arch_u64(f, &arch, "expert_count").unwrap_or(0);
    let n_gqa = n_head.checked_div(n_head_kv).unwrap_or(0);
    let is_70b = match arch.as_str() {
        "llama" => n_expert != 8 && n_layer == 80 && n_head != n_head_kv,
        "deci" | "olmo" | "qwen2" => n_layer == 80,
        "jais2" => n_layer == 68,
        _ => false,
    };
    Ok(ModelInfo {
        arch,
        n_layer: n_layer.min(i32::MAX as u64) as i32,
        n_gqa: n_gqa.min(u32::MAX as u64) as u32,
        n_expert: n_expert.min(u32::MAX as u64) as u32,
        is_70b,
    })
}

/// llama.cpp's tensor order: tensors outside the layers first, then layer
/// by layer, by name within each group.
fn order(tensors: &[TensorInfo]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..tensors.len()).collect();
    let key = |i: &usize| {
        let n = &tensors[*i].name;
        (policy::layer_of(n).unwrap_or(-1), n.clone())
    };
    idx.sort_by_key(key);
    idx
}

/// Whether llama-quantize refuses this target type without an importance
/// matrix (`tensor_requires_imatrix`).
fn requires_imatrix(name: &str, ty: GgmlType, ftype: Ftype) -> bool {
    use GgmlType as T;
    if matches!(
        name,
        "token_embd.weight" | "per_layer_token_embd.weight" | "output.weight"
    ) {
        return false;
    }
    match ty {
        T::IQ3XXS | T::IQ2XXS | T::IQ2XS | T::IQ2S | T::IQ1M | T::IQ1S => true,
        T::Q2K => ftype == Ftype::Q2_K_S,
        _ => false,
    }
}

/// Decides every tensor's type and the output metadata.
pub fn plan(f: &GgufFile, opts: &Options) -> Result<Plan, QuantizeError> {
    let info = model_info(f)?;
    let order = order(f.tensors());
    let names: Vec<&str> = order
        .iter()
        .map(|&i| f.tensors()[i].name.as_str())
        .collect();
    let imatrix = opts.imatrix.as_ref().map(|(m, _)| m);
    let mut pol = policy::Policy::new(opts.ftype, info.clone(), imatrix.is_some(), &names)?;
    let mut tensors = Vec::with_capacity(order.len());
    for &i in &order {
        let t = &f.tensors()[i];
        let to = pol.choose(&t.name, t.ty, &t.dims)?;
        let mut rows = None;
        if to != t.ty {
            if let Some(m) = imatrix {
                if let Some(e) = m.entries.get(&t.name) {
                    let want = t.dims[0] * t.dims.get(2).copied().unwrap_or(1);
                    if e.len() as u64 == want {
                        rows = Some(e.clone());
                    } else if !matches!(
                        t.name.as_str(),
                        "token_embd.weight" | "per_layer_token_embd.weight"
                    ) {
                        return Err(QuantizeError::ImatrixSize {
                            tensor: t.name.clone(),
                            got: e.len(),
                            want,
                        });
                    }
                }
            }
            if rows.is_none() && requires_imatrix(&t.name, to, opts.ftype) {
                return Err(QuantizeError::NeedsImatrix {
                    ftype: opts.ftype.name(),
                    tensor: t.name.clone(),
                    ty: to,
                });
            }
            if policy::is_quantized(t.ty) && !opts.allow_requantize {
                return Err(QuantizeError::Requantize {
                    tensor: t.name.clone(),
                    ty: t.ty,
                });
            }
        }
        tensors.push(PlannedTensor {
            input: i,
            name: t.name.clone(),
            dims: t.dims.clone(),
            from: t.ty,
            to,
            imatrix: rows,
        });
    }
    Ok(Plan {
        metadata: metadata(f, opts),
        tensors,
        n_fallback: pol.n_fallback,
    })
}

/// The input's metadata, then the keys llama-quantize sets (each set key
/// moves to the end, as `gguf_set_val_*` does).
fn metadata(f: &GgufFile, opts: &Options) -> Vec<(String, Value)> {
    let mut md: Vec<(String, Value)> = f.metadata().to_vec();
    let mut set = |k: &str, v: Value| {
        md.retain(|(key, _)| key != k);
        md.push((k.to_string(), v));
    };
    set("general.quantization_version", Value::U32(2));
    set("general.file_type", Value::U32(opts.ftype.id()));
    if let Some((m, path)) = &opts.imatrix {
        set("quantize.imatrix.file", Value::String(path.clone()));
        if let Some(d) = m.datasets.first() {
            set("quantize.imatrix.dataset", Value::String(d.clone()));
        }
        set(
            "quantize.imatrix.entries_count",
            Value::U32(m.entries.len() as u32),
        );
        set("quantize.imatrix.chunks_count", Value::U32(m.chunk_count));
    }
    for k in ["split.no", "split.count", "split.tensors.count"] {
        md.retain(|(key, _)| key != k);
    }
    md
}
