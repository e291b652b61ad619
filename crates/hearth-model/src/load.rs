//! Tensor lookup with shape checks and consumption tracking: every tensor
//! the file holds must be taken by a block's loader, or the load fails
//! naming the first one left over (a file half understood must not run).
//! Matrices stay quantized in the mapped file; only small vectors (norm
//! weights, biases, scales) are copied out as f32.

use std::collections::HashMap;

use hearth_gguf::{GgmlType, GgufFile, TensorInfo};
use hearth_ops::{ExpertsRef, WeightRef};

use crate::ModelError;

/// A matrix inside the mapped file: `rows` rows of `cols` elements.
#[derive(Clone, Debug)]
pub struct Matrix {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    start: usize,
    len: usize,
}

impl Matrix {
    pub fn view<'a>(&self, bytes: &'a [u8]) -> WeightRef<'a> {
        WeightRef {
            data: &bytes[self.start..self.start + self.len],
            ty: self.ty,
            rows: self.rows,
            cols: self.cols,
        }
    }
}

/// `n` matrices of `rows` × `cols` stacked in one 3-D tensor inside the
/// mapped file: a mixture-of-experts layer's experts, or per-head
/// projections (latent attention's `attn_k_b` / `attn_v_b`).
#[derive(Clone, Debug)]
pub struct Stacked {
    pub ty: GgmlType,
    pub n: usize,
    pub rows: usize,
    pub cols: usize,
    start: usize,
    len: usize,
}

impl Stacked {
    pub fn view<'a>(&self, bytes: &'a [u8]) -> ExpertsRef<'a> {
        ExpertsRef {
            data: &bytes[self.start..self.start + self.len],
            ty: self.ty,
            n_expert: self.n,
            rows: self.rows,
            cols: self.cols,
        }
    }
}

/// The file's tensors, each marked when a loader takes it.
pub(crate) struct Tensors<'a> {
    file: &'a GgufFile,
    index: HashMap<&'a str, usize>,
    used: Vec<bool>,
}

impl<'a> Tensors<'a> {
    pub fn new(file: &'a GgufFile) -> Self {
        let index = file
            .tensors()
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.as_str(), i))
            .collect();
        Tensors {
            file,
            index,
            used: vec![false; file.tensors().len()],
        }
    }

    pub fn file(&self) -> &'a GgufFile {
        self.file
    }

    pub fn has(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The tensor `name`, marked as consumed.
    fn take(&mut self, name: &str) -> Result<&'a TensorInfo, ModelError> {
        let &i = self
            .index
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor(name.to_string()))?;
        self.used[i] = true;
        Ok(&self.file.tensors()[i])
    }

    /// The matrix `name`: `rows` rows (any number when `None`) of `cols`.
    pub fn matrix(
        &mut self,
        name: &str,
        cols: usize,
        rows: Option<usize>,
    ) -> Result<Matrix, ModelError> {
        let t = self.take(name)?;
        let (c, r) = match t.dims.as_slice() {
            [c] => (*c, 1),
            [c, r] => (*c, *r),
            _ => return Err(shape_err(name, &t.dims, cols, rows)),
        };
        if c as usize != cols || rows.is_some_and(|r2| r2 as u64 != r) {
            return Err(shape_err(name, &t.dims, cols, rows));
        }
        weight_type(name, t)?;
        Ok(Matrix {
            ty: t.ty,
            rows: r as usize,
            cols,
            start: (self.file.data_offset() + t.offset) as usize,
            len: t.size as usize,
        })
    }

    /// The 3-D tensor `name`: `n` matrices of `rows` × `cols`.
    pub fn stacked(
        &mut self,
        name: &str,
        cols: usize,
        rows: usize,
        n: usize,
    ) -> Result<Stacked, ModelError> {
        let t = self.take(name)?;
        let want = [cols as u64, rows as u64, n as u64];
        // GGUF drops trailing dimensions of 1 (one head, one expert).
        let mut dims = t.dims.clone();
        dims.resize(3.max(dims.len()), 1);
        if dims != want {
            return Err(ModelError::BadTensor {
                tensor: name.to_string(),
                why: format!("shape {:?}, expected {want:?}", t.dims),
            });
        }
        weight_type(name, t)?;
        Ok(Stacked {
            ty: t.ty,
            n,
            rows,
            cols,
            start: (self.file.data_offset() + t.offset) as usize,
            len: t.size as usize,
        })
    }

    /// The optional 2-D tensor `name` of `rows` rows of `cols`, as f32
    /// (per-expert biases).
    pub fn opt_table(
        &mut self,
        name: &str,
        cols: usize,
        rows: usize,
    ) -> Result<Option<Vec<f32>>, ModelError> {
        if !self.has(name) {
            return Ok(None);
        }
        let m = self.matrix(name, cols, Some(rows))?;
        let mut out = vec![0f32; cols * rows];
        let bytes = &self.file.bytes()[m.start..m.start + m.len];
        let rb = bytes.len() / rows.max(1);
        for (src, dst) in bytes
            .chunks_exact(rb.max(1))
            .zip(out.chunks_exact_mut(cols))
        {
            hearth_quant::dequantize_row(m.ty, src, dst).map_err(|e| ModelError::BadTensor {
                tensor: name.to_string(),
                why: e.to_string(),
            })?;
        }
        Ok(Some(out))
    }

    pub fn vector(&mut self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        let m = self.matrix(name, len, Some(1))?;
        let mut out = vec![0f32; len];
        hearth_quant::dequantize_row(m.ty, &self.file.bytes()[m.start..m.start + m.len], &mut out)
            .map_err(|e| ModelError::BadTensor {
                tensor: name.to_string(),
                why: e.to_string(),
            })?;
        Ok(out)
    }

    /// The small matrix `name` (`rows` rows of `cols`), as f32: the taps of
    /// a convolution, per-head constants stored as `[1, n_head]`.
    pub fn small_matrix(
        &mut self,
        name: &str,
        cols: usize,
        rows: usize,
    ) -> Result<Vec<f32>, ModelError> {
        let m = self.matrix(name, cols, Some(rows))?;
        let w = m.view(self.file.bytes());
        let mut out = vec![0f32; cols * rows];
        for (r, o) in out.chunks_exact_mut(cols.max(1)).enumerate() {
            hearth_quant::dequantize_row(m.ty, w.row(r), o).map_err(|e| ModelError::BadTensor {
                tensor: name.to_string(),
                why: e.to_string(),
            })?;
        }
        Ok(out)
    }

    pub fn opt_vector(&mut self, name: &str, len: usize) -> Result<Option<Vec<f32>>, ModelError> {
        match self.has(name) {
            true => self.vector(name, len).map(Some),
            false => Ok(None),
        }
    }

    /// The optional vector `name`, required when `need` (an error naming it).
    pub fn vector_if(
        &mut self,
        need: bool,
        name: &str,
        len: usize,
    ) -> Result<Option<Vec<f32>>, ModelError> {
        match (need, self.opt_vector(name, len)?) {
            (true, None) => Err(ModelError::MissingTensor(name.to_string())),
            (_, v) => Ok(v),
        }
    }

    /// Fails naming the first tensor no loader took.
    pub fn finish(self, arch: &'static str) -> Result<(), ModelError> {
        match self.used.iter().position(|&u| !u) {
            Some(i) => Err(ModelError::UnusedTensor(
                self.file.tensors()[i].name.clone(),
                arch,
            )),
            None => Ok(()),
        }
    }
}

/// Refuses a weight type hearth has no dot product for.
fn weight_type(name: &str, t: &TensorInfo) -> Result<(), ModelError> {
    if hearth_quant::vec_dot_type(t.ty) == t.ty
        && !matches!(
            t.ty,
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 | GgmlType::Q8_0
        )
    {
        return Err(ModelError::UnsupportedWeightType {
            tensor: name.to_string(),
            ty: t.ty,
        });
    }
    Ok(())
}

fn shape_err(name: &str, dims: &[u64], cols: usize, rows: Option<usize>) -> ModelError {
    ModelError::BadTensor {
        tensor: name.to_string(),
        why: format!(
            "shape {dims:?}, expected [{cols}, {}]",
            rows.map_or("*".to_string(), |r| r.to_string())
        ),
    }
}
