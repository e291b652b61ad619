//! whisper.cpp's ggml `.bin`: magic `ggml`, ten `i32` hyperparameters and
//! an `i32` file type, the mel filter bank (`i32` bins, `i32` FFT bins,
//! floats), the vocabulary (`i32` count, then `i32` length + bytes per
//! token), then tensors to the end of the file: `i32` rank, `i32` name
//! length, `i32` ggml type, the dims innermost first, the name, the data.
//!
//! Tensors are under OpenAI's names with separate Q/K/V; the loader presents
//! them under CTranslate2's names with Q/K/V fused (and a zero K bias), so
//! one builder serves both formats.

use std::collections::HashMap;

use hearth_quant::{f16_to_f32, GgmlType};

use crate::reader::Reader;
use crate::tokenizer::Tokenizer;
use crate::weights::{self, Hparams, Matrix, Source, Weights};
use crate::SpeechError;

pub const MAGIC: u32 = 0x6767_6d6c;

/// Most tokens a vocabulary may list, and most bytes a token may have.
const MAX_TOKENS: usize = 1 << 20;
const MAX_TOKEN_BYTES: usize = 1 << 10;

impl Reader<'_> {
    /// A non-negative count no larger than `max`.
    fn count(&mut self, what: &str, max: usize) -> Result<usize, SpeechError> {
        let v = self.i32(what)?;
        match usize::try_from(v) {
            Ok(n) if n <= max => Ok(n),
            _ => Err(SpeechError::Format(format!(
                "ggml file: {what} is {v}; at most {max}"
            ))),
        }
    }
}

fn hparams(r: &mut Reader<'_>) -> Result<Hparams, SpeechError> {
    let magic = r.i32("the magic")? as u32;
    if magic != MAGIC {
        return Err(SpeechError::Format(format!(
            "ggml magic is {magic:#x}, expected {MAGIC:#x}"
        )));
    }
    let mut v = [0usize; 10];
    for x in &mut v {
        *x = r.count("a hyperparameter", 1 << 20)?;
    }
    let hp = Hparams {
        n_vocab: v[0],
        n_audio_ctx: v[1],
        n_audio_state: v[2],
        n_audio_head: v[3],
        n_audio_layer: v[4],
        n_text_ctx: v[5],
        n_text_state: v[6],
        n_text_head: v[7],
        n_text_layer: v[8],
        n_mels: v[9],
    };
    hp.check()?;
    Ok(hp)
}

/// The hyperparameters at the start of a ggml file.
pub fn read_hparams(bytes: &[u8]) -> Result<Hparams, SpeechError> {
    hparams(&mut Reader::new(bytes, "ggml file"))
}

struct Tensor<'a> {
    /// Outermost first.
    dims: Vec<usize>,
    ty: GgmlType,
    data: &'a [u8],
}

struct GgmlSource<'a> {
    tensors: HashMap<String, Tensor<'a>>,
}

enum Part {
    Tensor(String),
    /// The K bias, which OpenAI's K projection does not have.
    Zeros,
}

/// The OpenAI tensors behind a CTranslate2 name.
fn parts(ct2: &str) -> Result<Vec<Part>, SpeechError> {
    let t = |s: String| vec![Part::Tensor(s)];
    let unknown = || SpeechError::Format(format!("no ggml tensor for {ct2}"));
    let fixed = match ct2 {
        "encoder/position_encodings/encodings" => Some("encoder.positional_embedding"),
        "decoder/position_encodings/encodings" => Some("decoder.positional_embedding"),
        "decoder/embeddings/weight" => Some("decoder.token_embedding.weight"),
        "encoder/layer_norm/gamma" => Some("encoder.ln_post.weight"),
        "encoder/layer_norm/beta" => Some("encoder.ln_post.bias"),
        "decoder/layer_norm/gamma" => Some("decoder.ln.weight"),
        "decoder/layer_norm/beta" => Some("decoder.ln.bias"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Ok(t(f.into()));
    }
    if let Some(rest) = ct2.strip_prefix("encoder/conv") {
        return Ok(t(format!("encoder.conv{}", rest.replace('/', "."))));
    }
    let (side, rest) = ct2.split_once("/layer_").ok_or_else(unknown)?;
    let (i, rest) = rest.split_once('/').ok_or_else(unknown)?;
    let b = format!("{side}.blocks.{i}");
    let (module, leaf) = rest.rsplit_once('/').ok_or_else(unknown)?;
    let ln = |n: &str| match leaf {
        "gamma" => Ok(t(format!("{b}.{n}.weight"))),
        "beta" => Ok(t(format!("{b}.{n}.bias"))),
        _ => Err(unknown()),
    };
    let lin = |n: &str| Ok(t(format!("{b}.{n}.{leaf}")));
    let fused = |a: &str, names: &[&str]| -> Vec<Part> {
        names
            .iter()
            .map(|n| {
                if leaf == "bias" && *n == "key" {
                    Part::Zeros
                } else {
                    Part::Tensor(format!("{b}.{a}.{n}.{leaf}"))
                }
            })
            .collect()
    };
    match module {
        "self_attention/layer_norm" => ln("attn_ln"),
        "self_attention/linear_0" => Ok(fused("attn", &["query", "key", "value"])),
        "self_attention/linear_1" => lin("attn.out"),
        "attention/layer_norm" => ln("cross_attn_ln"),
        "attention/linear_0" => lin("cross_attn.query"),
        "attention/linear_1" => Ok(fused("cross_attn", &["key", "value"])),
        "attention/linear_2" => lin("cross_attn.out"),
        "ffn/layer_norm" => ln("mlp_ln"),
        "ffn/linear_0" => lin("mlp.0"),
        "ffn/linear_1" => lin("mlp.2"),
        _ => Err(unknown()),
    }
}

impl GgmlSource<'_> {
    fn get(&self, name: &str) -> Result<&Tensor<'_>, SpeechError> {
        self.tensors
            .get(name)
            .ok_or_else(|| SpeechError::Format(format!("ggml file has no tensor {name}")))
    }
}

impl Source for GgmlSource<'_> {
    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, SpeechError> {
        let ps = parts(name)?;
        // Fused vectors are made of equal parts.
        let each = len / ps.len().max(1);
        let mut out = Vec::with_capacity(len);
        for p in &ps {
            match p {
                Part::Zeros => out.extend(std::iter::repeat_n(0.0, each)),
                Part::Tensor(n) => {
                    let t = self.get(n)?;
                    let want = each;
                    if t.dims.iter().product::<usize>() != want || each * ps.len() != len {
                        return Err(SpeechError::Format(format!(
                            "ggml tensor {n} has shape {:?}; expected {want} elements",
                            t.dims
                        )));
                    }
                    match t.ty {
                        GgmlType::F32 => out.extend(
                            t.data
                                .chunks_exact(4)
                                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                        ),
                        GgmlType::F16 => out.extend(
                            t.data
                                .chunks_exact(2)
                                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))),
                        ),
                        ty => {
                            return Err(SpeechError::Unsupported(format!(
                                "ggml tensor {n} is {ty}; vectors must be F32 or F16"
                            )))
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix, SpeechError> {
        let ps = parts(name)?;
        let mut ms = Vec::with_capacity(ps.len());
        for p in &ps {
            let Part::Tensor(n) = p else {
                return Err(SpeechError::Format(format!("no ggml weight for {name}")));
            };
            let t = self.get(n)?;
            let r = rows / ps.len();
            if t.dims != [r, cols] {
                return Err(SpeechError::Format(format!(
                    "ggml tensor {n} has shape {:?}; expected [{r}, {cols}]",
                    t.dims
                )));
            }
            ms.push(Matrix::new(t.data.to_vec(), t.ty, r, cols)?);
        }
        if ms.len() == 1 {
            return ms
                .pop()
                .ok_or_else(|| SpeechError::Format(format!("no ggml weight for {name}")));
        }
        Matrix::stack(&ms)
    }
}

/// Parses a whisper.cpp model held in memory.
pub fn load(bytes: &[u8]) -> Result<(Weights, Tokenizer), SpeechError> {
    let mut r = Reader::new(bytes, "ggml file");
    let hp = hparams(&mut r)?;
    let _ftype = r.i32("the file type")?;
    let n_mel = r.count("the filter bank's mel bins", 1024)?;
    let n_fft = r.count("the filter bank's FFT bins", 1 << 16)?;
    if n_mel != hp.n_mels {
        return Err(SpeechError::Format(format!(
            "ggml filter bank has {n_mel} bins, the model {}",
            hp.n_mels
        )));
    }
    r.take(n_mel * n_fft * 4, "the mel filter bank")?;
    let n_tokens = r.count("the vocabulary size", MAX_TOKENS)?;
    let mut regular = Vec::with_capacity(n_tokens.min(hp.n_vocab));
    for _ in 0..n_tokens {
        let n = r.count("a token length", MAX_TOKEN_BYTES)?;
        regular.push(r.take(n, "a token")?.to_vec());
    }
    let n_vocab = u32::try_from(hp.n_vocab)
        .map_err(|_| SpeechError::Format("vocabulary too large".into()))?;
    let tokenizer = Tokenizer::from_ggml(regular, n_vocab)?;
    let mut tensors = HashMap::new();
    while r.pos < bytes.len() {
        let rank = r.count("a tensor rank", 4)?;
        let name_len = r.count("a tensor name length", 256)?;
        let ty_id = r.i32("a tensor type")?;
        let ty = u32::try_from(ty_id)
            .ok()
            .and_then(|id| GgmlType::from_id(id).ok())
            .ok_or_else(|| {
                SpeechError::Unsupported(format!("ggml tensor type {ty_id} is not supported"))
            })?;
        let mut dims = Vec::with_capacity(rank);
        for _ in 0..rank {
            dims.push(r.count("a tensor dimension", 1 << 24)?);
        }
        dims.reverse();
        let name = String::from_utf8(r.take(name_len, "a tensor name")?.to_vec())
            .map_err(|_| SpeechError::Format("ggml tensor name is not UTF-8".into()))?;
        let inner = dims.last().copied().unwrap_or(1);
        let outer: usize = dims.iter().rev().skip(1).product();
        let size = ty
            .row_bytes(inner as u64)
            .and_then(|rb| rb.checked_mul(outer as u64))
            .and_then(|s| usize::try_from(s).ok())
            .ok_or_else(|| {
                SpeechError::Format(format!(
                    "ggml tensor {name}: {dims:?} is not whole {ty} blocks"
                ))
            })?;
        let data = r.take(size, &format!("tensor {name}"))?;
        // Conv biases are stored as [d, 1].
        let dims = if dims.len() == 2 && dims[1] == 1 {
            vec![dims[0]]
        } else {
            dims
        };
        tensors.insert(name, Tensor { dims, ty, data });
    }
    let weights = weights::build(&GgmlSource { tensors }, hp)?;
    Ok((weights, tokenizer))
}
