//! Whisper's weights in hearth-quant formats: matrices as rows of F16 (as
//! shipped), Q8_0 or Q5_0 that hearth-ops' matmul takes directly; vectors
//! (biases, norms) and the convolution stem as f32.

use hearth_ops::WeightRef;
use hearth_quant::{dequantize_row, quantize_row, GgmlType};

use crate::SpeechError;

/// A row-major matrix of `rows × cols` in a hearth-quant format.
#[derive(Clone, Debug)]
pub struct Matrix {
    pub data: Vec<u8>,
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
}

impl Matrix {
    pub fn new(
        data: Vec<u8>,
        ty: GgmlType,
        rows: usize,
        cols: usize,
    ) -> Result<Matrix, SpeechError> {
        let rb = ty.row_bytes(cols as u64).ok_or_else(|| {
            SpeechError::Format(format!("{ty} rows of {cols} elements are not whole blocks"))
        })?;
        if Some(data.len() as u64) != rb.checked_mul(rows as u64) {
            return Err(SpeechError::Format(format!(
                "a {rows}×{cols} {ty} matrix is {} bytes, got {}",
                rb.saturating_mul(rows as u64),
                data.len()
            )));
        }
        Ok(Matrix {
            data,
            ty,
            rows,
            cols,
        })
    }

    pub fn as_ref(&self) -> WeightRef<'_> {
        WeightRef {
            data: &self.data,
            ty: self.ty,
            rows: self.rows,
            cols: self.cols,
        }
    }

    /// Row `r` as f32 (token embeddings are looked up this way).
    pub fn row_f32(&self, r: usize, out: &mut [f32]) -> Result<(), SpeechError> {
        let w = self.as_ref();
        if r >= self.rows || out.len() != self.cols {
            return Err(SpeechError::Format(format!(
                "row {r} of a {}×{} matrix",
                self.rows, self.cols
            )));
        }
        dequantize_row(self.ty, w.row(r), out).map_err(|e| SpeechError::Format(e.to_string()))
    }

    /// Stacks matrices of the same type and width (fused Q/K/V from split ones).
    pub fn stack(parts: &[Matrix]) -> Result<Matrix, SpeechError> {
        let first = parts
            .first()
            .ok_or_else(|| SpeechError::Format("nothing to stack".into()))?;
        if parts
            .iter()
            .any(|p| p.ty != first.ty || p.cols != first.cols)
        {
            return Err(SpeechError::Format(
                "stacked matrices differ in type or width".into(),
            ));
        }
        let data = parts.iter().flat_map(|p| p.data.iter().copied()).collect();
        Matrix::new(
            data,
            first.ty,
            parts.iter().map(|p| p.rows).sum(),
            first.cols,
        )
    }

    /// Re-encodes the matrix in `ty` (row by row, through f32).
    pub fn convert(&mut self, ty: GgmlType) -> Result<(), SpeechError> {
        if ty == self.ty {
            return Ok(());
        }
        let rb = ty.row_bytes(self.cols as u64).ok_or_else(|| {
            SpeechError::Format(format!(
                "{ty} rows of {} elements are not whole blocks",
                self.cols
            ))
        })? as usize;
        let mut out = vec![0u8; rb * self.rows];
        let mut f = vec![0f32; self.cols];
        for r in 0..self.rows {
            self.row_f32(r, &mut f)?;
            quantize_row(ty, &f, &mut out[r * rb..(r + 1) * rb])
                .map_err(|e| SpeechError::Format(e.to_string()))?;
        }
        self.data = out;
        self.ty = ty;
        Ok(())
    }
}

/// `y = x·Wᵀ + b`.
#[derive(Clone, Debug)]
pub struct Linear {
    pub w: Matrix,
    pub b: Vec<f32>,
}

#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

/// Self-attention with fused Q/K/V (rows: Q, then K, then V).
#[derive(Clone, Debug)]
pub struct SelfAttention {
    pub ln: LayerNorm,
    pub qkv: Linear,
    pub out: Linear,
}

#[derive(Clone, Debug)]
pub struct CrossAttention {
    pub ln: LayerNorm,
    pub q: Linear,
    /// Fused K/V over the encoder output (rows: K, then V).
    pub kv: Linear,
    pub out: Linear,
}

#[derive(Clone, Debug)]
pub struct Mlp {
    pub ln: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
}

#[derive(Clone, Debug)]
pub struct EncoderLayer {
    pub attn: SelfAttention,
    pub mlp: Mlp,
}

#[derive(Clone, Debug)]
pub struct DecoderLayer {
    pub attn: SelfAttention,
    pub cross: CrossAttention,
    pub mlp: Mlp,
}

/// A 1-D convolution of kernel width 3: `weight` is `[out][in][3]`.
#[derive(Clone, Debug)]
pub struct Conv {
    /// `n_out × (n_in · 3)` F32, each row channel-major then kernel tap.
    pub weight: Matrix,
    pub bias: Vec<f32>,
    pub n_in: usize,
    pub n_out: usize,
}

/// The sizes of a Whisper model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hparams {
    pub n_vocab: usize,
    pub n_mels: usize,
    pub n_audio_ctx: usize,
    pub n_audio_state: usize,
    pub n_audio_head: usize,
    pub n_audio_layer: usize,
    pub n_text_ctx: usize,
    pub n_text_state: usize,
    pub n_text_head: usize,
    pub n_text_layer: usize,
}

impl Hparams {
    pub fn check(&self) -> Result<(), SpeechError> {
        let bad = |w: &str| {
            Err(SpeechError::Format(format!(
                "implausible Whisper hyperparameters ({w}): {self:?}"
            )))
        };
        if ![80, 128].contains(&self.n_mels) {
            return bad("mel bins must be 80 or 128");
        }
        if self.n_audio_head == 0 || self.n_audio_state % self.n_audio_head != 0 {
            return bad("audio width not divisible by heads");
        }
        if self.n_text_head == 0 || self.n_text_state % self.n_text_head != 0 {
            return bad("text width not divisible by heads");
        }
        if self.n_audio_state != self.n_text_state {
            return bad("audio and text widths differ");
        }
        if self.n_audio_ctx == 0
            || self.n_audio_ctx > 1500
            || self.n_text_ctx == 0
            || self.n_text_ctx > 448
        {
            return bad("contexts");
        }
        if self.n_audio_layer == 0
            || self.n_audio_layer > 64
            || self.n_text_layer == 0
            || self.n_text_layer > 64
        {
            return bad("layer count");
        }
        Ok(())
    }
}

/// All weights of a model.
#[derive(Clone, Debug)]
pub struct Weights {
    pub hp: Hparams,
    pub conv1: Conv,
    pub conv2: Conv,
    /// `n_audio_ctx × n_audio_state`.
    pub enc_pos: Vec<f32>,
    pub enc_layers: Vec<EncoderLayer>,
    pub enc_ln: LayerNorm,
    /// `n_vocab × n_text_state`: the embedding, and (tied) the output projection.
    pub tok_emb: Matrix,
    /// `n_text_ctx × n_text_state`.
    pub dec_pos: Vec<f32>,
    pub dec_layers: Vec<DecoderLayer>,
    pub dec_ln: LayerNorm,
}

impl Weights {
    /// Every matrix a matmul runs over, for re-encoding.
    pub fn matrices_mut(&mut self) -> Vec<&mut Matrix> {
        let mut v = vec![&mut self.tok_emb];
        for l in &mut self.enc_layers {
            v.extend([
                &mut l.attn.qkv.w,
                &mut l.attn.out.w,
                &mut l.mlp.fc1.w,
                &mut l.mlp.fc2.w,
            ]);
        }
        for l in &mut self.dec_layers {
            v.extend([
                &mut l.attn.qkv.w,
                &mut l.attn.out.w,
                &mut l.cross.q.w,
                &mut l.cross.kv.w,
            ]);
            v.extend([&mut l.cross.out.w, &mut l.mlp.fc1.w, &mut l.mlp.fc2.w]);
        }
        v
    }
}

/// What a loader hands the builder: a tensor as f32 or as a matrix.
pub trait Source {
    /// A tensor of `len` elements, as f32, whatever its shape.
    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, SpeechError>;
    /// A `rows × cols` matrix in its stored format.
    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix, SpeechError>;
}

pub fn layer_norm(s: &dyn Source, name: &str, d: usize) -> Result<LayerNorm, SpeechError> {
    Ok(LayerNorm {
        gamma: s.vector(&format!("{name}/gamma"), d)?,
        beta: s.vector(&format!("{name}/beta"), d)?,
    })
}

pub fn linear(s: &dyn Source, name: &str, rows: usize, cols: usize) -> Result<Linear, SpeechError> {
    Ok(Linear {
        w: s.matrix(&format!("{name}/weight"), rows, cols)?,
        b: s.vector(&format!("{name}/bias"), rows)?,
    })
}

pub fn conv(s: &dyn Source, name: &str, n_in: usize, n_out: usize) -> Result<Conv, SpeechError> {
    let w = s.vector(&format!("{name}/weight"), n_out * n_in * 3)?;
    let bytes = w.iter().flat_map(|v| v.to_le_bytes()).collect();
    Ok(Conv {
        weight: Matrix::new(bytes, GgmlType::F32, n_out, n_in * 3)?,
        bias: s.vector(&format!("{name}/bias"), n_out)?,
        n_in,
        n_out,
    })
}

/// Builds the model from tensors under CTranslate2's names (a whisper.cpp
/// file's tensors are presented under the same names by its loader).
pub fn build(s: &dyn Source, hp: Hparams) -> Result<Weights, SpeechError> {
    hp.check()?;
    let d = hp.n_audio_state;
    let sa = |p: &str| -> Result<SelfAttention, SpeechError> {
        Ok(SelfAttention {
            ln: layer_norm(s, &format!("{p}/layer_norm"), d)?,
            qkv: linear(s, &format!("{p}/linear_0"), 3 * d, d)?,
            out: linear(s, &format!("{p}/linear_1"), d, d)?,
        })
    };
    let mlp = |p: &str| -> Result<Mlp, SpeechError> {
        Ok(Mlp {
            ln: layer_norm(s, &format!("{p}/layer_norm"), d)?,
            fc1: linear(s, &format!("{p}/linear_0"), 4 * d, d)?,
            fc2: linear(s, &format!("{p}/linear_1"), d, 4 * d)?,
        })
    };
    let mut enc_layers = Vec::with_capacity(hp.n_audio_layer);
    for i in 0..hp.n_audio_layer {
        enc_layers.push(EncoderLayer {
            attn: sa(&format!("encoder/layer_{i}/self_attention"))?,
            mlp: mlp(&format!("encoder/layer_{i}/ffn"))?,
        });
    }
    let mut dec_layers = Vec::with_capacity(hp.n_text_layer);
    for i in 0..hp.n_text_layer {
        let c = format!("decoder/layer_{i}/attention");
        dec_layers.push(DecoderLayer {
            attn: sa(&format!("decoder/layer_{i}/self_attention"))?,
            cross: CrossAttention {
                ln: layer_norm(s, &format!("{c}/layer_norm"), d)?,
                q: linear(s, &format!("{c}/linear_0"), d, d)?,
                kv: linear(s, &format!("{c}/linear_1"), 2 * d, d)?,
                out: linear(s, &format!("{c}/linear_2"), d, d)?,
            },
            mlp: mlp(&format!("decoder/layer_{i}/ffn"))?,
        });
    }
    Ok(Weights {
        conv1: conv(s, "encoder/conv1", hp.n_mels, d)?,
        conv2: conv(s, "encoder/conv2", d, d)?,
        enc_pos: s.vector("encoder/position_encodings/encodings", hp.n_audio_ctx * d)?,
        enc_layers,
        enc_ln: layer_norm(s, "encoder/layer_norm", d)?,
        tok_emb: s.matrix("decoder/embeddings/weight", hp.n_vocab, d)?,
        dec_pos: s.vector("decoder/position_encodings/encodings", hp.n_text_ctx * d)?,
        dec_layers,
        dec_ln: layer_norm(s, "decoder/layer_norm", d)?,
        hp,
    })
}
