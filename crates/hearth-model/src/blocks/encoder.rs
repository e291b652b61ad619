//! The blocks only encoders use: the input additions (absolute positions
//! and token type 0, then a LayerNorm) and a reranker's classification
//! head.

use hearth_ops::{self as ops, ThreadPool};
use hearth_quant::Kernels;

use super::{Linear, Norm};
use crate::config::{Config, Pooling};
use crate::load::{Matrix, Tensors};
use crate::ModelError;

/// What an encoder adds to its token embeddings, then normalises.
#[derive(Debug)]
pub(crate) struct EncoderInput {
    /// `position_embd`: one row per position up to the training context;
    /// `None` where positions are rotary instead (nomic-bert).
    pub positions: Option<Matrix>,
    /// Token type 0's row of `token_types` (every text is one segment);
    /// `None` where the file has no token types.
    pub token_type: Option<Vec<f32>>,
    pub norm: Norm,
}

impl EncoderInput {
    pub fn load(t: &mut Tensors<'_>, c: &Config) -> Result<EncoderInput, ModelError> {
        let e = c.n_embd;
        let rotary = c.layers.iter().any(|l| l.rope.is_some());
        let positions = match rotary {
            true => None,
            false => Some(t.matrix("position_embd.weight", e, Some(c.n_ctx_train))?),
        };
        let name = "token_types.weight";
        let token_type = match t.file().tensor(name).map(|i| i.dims.get(1).copied()) {
            None => None,
            Some(types) => {
                let types = types.unwrap_or(1);
                let n_types = usize::try_from(types)
                    .ok()
                    .filter(|&n| (1..=64).contains(&n))
                    .ok_or_else(|| ModelError::BadTensor {
                        tensor: name.into(),
                        why: format!("{types} token types (1 to 64 supported)"),
                    })?;
                let mut row = t.small_matrix(name, e, n_types)?;
                row.truncate(e);
                Some(row)
            }
        };
        Ok(EncoderInput {
            positions,
            token_type,
            norm: Norm::load(t, c, "token_embd_norm", e)?,
        })
    }
}

/// A reranker's classification head: `cls_out(tanh(cls(x)))`, either
/// projection optional (llama.cpp's `build_pooling` for `rank`).
#[derive(Debug, Default)]
pub(crate) struct RankHead {
    cls: Option<Linear>,
    cls_out: Option<Linear>,
}

impl RankHead {
    /// `cls.{weight,bias}` (n_embd → n_embd) and `cls.output.{weight,bias}`
    /// (→ the rank pooling's outputs; 1 when the file pools otherwise).
    pub fn load(t: &mut Tensors<'_>, c: &Config) -> Result<RankHead, ModelError> {
        let e = c.n_embd;
        let n_out = match c.pooling {
            Pooling::Rank { n_out } => n_out,
            _ => match t.file().tensor("cls.output.weight") {
                Some(i) => usize::try_from(i.dims.get(1).copied().unwrap_or(1)).unwrap_or(0),
                None => 1,
            },
        };
        Ok(RankHead {
            cls: Linear::opt(t, "cls", e, e)?,
            cls_out: Linear::opt(t, "cls.output", e, n_out)?,
        })
    }

    /// The scores of one pooled state `x` (n_embd long): `n_out` values,
    /// or `x` itself through the optional `cls` when the file has no
    /// output projection.
    pub fn apply(&self, pool: &ThreadPool, kern: &Kernels, bytes: &[u8], x: Vec<f32>) -> Vec<f32> {
        let mut qbuf = Vec::new();
        let mut cur = x;
        if let Some(cls) = &self.cls {
            let mut y = vec![0.0; cls.m.rows];
            ops::matmul(pool, kern, cls.view(bytes), &cur, 1, &mut qbuf, &mut y);
            cls.finish(&mut y);
            ops::tanh_inplace(&mut y);
            cur = y;
        }
        if let Some(out) = &self.cls_out {
            let mut y = vec![0.0; out.m.rows];
            ops::matmul(pool, kern, out.view(bytes), &cur, 1, &mut qbuf, &mut y);
            out.finish(&mut y);
            cur = y;
        }
        cur
    }
}
