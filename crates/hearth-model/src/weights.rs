//! Tensor lookup with shape checks. Matrices stay quantized in the mapped
//! file; only small vectors (norm weights, biases) are copied out as f32.

use hearth_gguf::{GgmlType, GgufFile};
use hearth_ops::WeightRef;

use crate::config::Config;
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

/// One transformer block's weights.
#[derive(Debug)]
pub struct Layer {
    pub attn_norm: Vec<f32>,
    pub wq: Matrix,
    pub wk: Matrix,
    pub wv: Matrix,
    pub wo: Matrix,
    pub bq: Option<Vec<f32>>,
    pub bk: Option<Vec<f32>>,
    pub bv: Option<Vec<f32>>,
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    pub post_attn_norm: Option<Vec<f32>>,
    pub ffn_norm: Vec<f32>,
    pub gate: Matrix,
    pub up: Matrix,
    pub down: Matrix,
    pub post_ffn_norm: Option<Vec<f32>>,
}

#[derive(Debug)]
pub struct Weights {
    pub token_embd: Matrix,
    pub output_norm: Vec<f32>,
    /// The output projection; the token embedding when tied.
    pub output: Matrix,
    pub layers: Vec<Layer>,
}

struct Loader<'a> {
    file: &'a GgufFile,
}

impl Loader<'_> {
    fn matrix(&self, name: &str, cols: usize, rows: Option<usize>) -> Result<Matrix, ModelError> {
        let t = self
            .file
            .tensor(name)
            .ok_or_else(|| ModelError::MissingTensor(name.to_string()))?;
        let (c, r) = match t.dims.as_slice() {
            [c] => (*c, 1),
            [c, r] => (*c, *r),
            _ => return Err(shape_err(name, &t.dims, cols, rows)),
        };
        if c as usize != cols || rows.is_some_and(|r2| r2 as u64 != r) {
            return Err(shape_err(name, &t.dims, cols, rows));
        }
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
        Ok(Matrix {
            ty: t.ty,
            rows: r as usize,
            cols,
            start: (self.file.data_offset() + t.offset) as usize,
            len: t.size as usize,
        })
    }

    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        let m = self.matrix(name, len, Some(1))?;
        let mut out = vec![0f32; len];
        hearth_quant::dequantize_row(m.ty, &self.file.bytes()[m.start..m.start + m.len], &mut out)
            .map_err(|e| ModelError::BadTensor {
                tensor: name.to_string(),
                why: e.to_string(),
            })?;
        Ok(out)
    }

    fn opt_vector(&self, name: &str, len: usize) -> Result<Option<Vec<f32>>, ModelError> {
        if self.file.tensor(name).is_none() {
            return Ok(None);
        }
        self.vector(name, len).map(Some)
    }
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

pub(crate) fn load(file: &GgufFile, c: &Config) -> Result<Weights, ModelError> {
    let l = Loader { file };
    let (e, hd) = (c.n_embd, c.head_dim);
    let (q_dim, kv_dim) = (c.n_head * hd, c.n_kv_head * hd);
    let token_embd = l.matrix("token_embd.weight", e, Some(c.n_vocab))?;
    let output = match file.tensor("output.weight") {
        Some(_) => l.matrix("output.weight", e, Some(c.n_vocab))?,
        None => token_embd.clone(),
    };
    let mut layers = Vec::with_capacity(c.n_layer);
    for i in 0..c.n_layer {
        let n = |s: &str| format!("blk.{i}.{s}");
        let req = |cond: bool, v: Option<Vec<f32>>, name: String| -> Result<_, ModelError> {
            match (cond, v) {
                (true, None) => Err(ModelError::MissingTensor(name)),
                (_, v) => Ok(v),
            }
        };
        layers.push(Layer {
            attn_norm: l.vector(&n("attn_norm.weight"), e)?,
            wq: l.matrix(&n("attn_q.weight"), e, Some(q_dim))?,
            wk: l.matrix(&n("attn_k.weight"), e, Some(kv_dim))?,
            wv: l.matrix(&n("attn_v.weight"), e, Some(kv_dim))?,
            wo: l.matrix(&n("attn_output.weight"), q_dim, Some(e))?,
            bq: req(
                c.qkv_bias,
                l.opt_vector(&n("attn_q.bias"), q_dim)?,
                n("attn_q.bias"),
            )?,
            bk: req(
                c.qkv_bias,
                l.opt_vector(&n("attn_k.bias"), kv_dim)?,
                n("attn_k.bias"),
            )?,
            bv: req(
                c.qkv_bias,
                l.opt_vector(&n("attn_v.bias"), kv_dim)?,
                n("attn_v.bias"),
            )?,
            q_norm: req(
                c.qk_norm,
                l.opt_vector(&n("attn_q_norm.weight"), hd)?,
                n("attn_q_norm.weight"),
            )?,
            k_norm: req(
                c.qk_norm,
                l.opt_vector(&n("attn_k_norm.weight"), hd)?,
                n("attn_k_norm.weight"),
            )?,
            post_attn_norm: req(
                c.post_norms,
                l.opt_vector(&n("post_attention_norm.weight"), e)?,
                n("post_attention_norm.weight"),
            )?,
            ffn_norm: l.vector(&n("ffn_norm.weight"), e)?,
            gate: l.matrix(&n("ffn_gate.weight"), e, Some(c.n_ff))?,
            up: l.matrix(&n("ffn_up.weight"), e, Some(c.n_ff))?,
            down: l.matrix(&n("ffn_down.weight"), c.n_ff, Some(e))?,
            post_ffn_norm: req(
                c.post_norms,
                l.opt_vector(&n("post_ffw_norm.weight"), e)?,
                n("post_ffw_norm.weight"),
            )?,
        });
    }
    Ok(Weights {
        token_embd,
        output_norm: l.vector("output_norm.weight", e)?,
        output,
        layers,
    })
}
