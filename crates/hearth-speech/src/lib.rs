//! # hearth-speech
//!
//! Whisper speech recognition on hearth's kernels. This crate loads a
//! Whisper model — a CTranslate2 (faster-whisper) folder or a whisper.cpp
//! ggml `.bin` — into hearth-quant formats that hearth-ops' matmul runs over,
//! with its tokenizer (byte-level BPE and Whisper's special tokens), and
//! re-encodes the large matrices as Q8_0 or Q5_0 on request.
//!
//! [`network`] runs the model: the convolution stem as im2col + matmul, the
//! encoder over a window's 1 500 frames as one batch, and the decoder with a
//! self-attention cache and cross-attention keys and values computed once
//! per window. [`Whisper::transcribe`] decodes audio of any length in 30 s
//! windows with timestamps, beam search or sampling, temperature fallback,
//! no-speech detection, language detection and word timestamps (from the
//! alignment heads' cross-attention); [`Whisper::greedy_window`]
//! decodes one window of log-mel greedily without timestamps.

#![cfg_attr(test, allow(clippy::unwrap_used))]
// `is_multiple_of` is newer than the workspace's rust-version.
#![allow(unknown_lints, clippy::manual_is_multiple_of)]

use std::path::Path;

use hearth_quant::GgmlType;

pub mod ct2;
mod decoding;
pub mod format;
pub mod ggml;
mod greedy;
pub mod network;
mod reader;
pub mod tokenizer;
mod transcribe;
pub mod weights;
mod words;

pub use tokenizer::{Specials, Tokenizer};
pub use transcribe::{Options, Segment, Transcript, Word};
pub use weights::{Hparams, Matrix, Weights};

#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("not a Whisper model: {0}")]
    Format(String),
    #[error("{0}")]
    Unsupported(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpeechError + '_ {
    move |source| SpeechError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The formats the large matrices can be kept in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightType {
    F16,
    Q8_0,
    Q5_0,
}

impl std::str::FromStr for WeightType {
    type Err = SpeechError;

    /// `f16`, `q8_0` or `q5_0` (any case).
    fn from_str(s: &str) -> Result<WeightType, SpeechError> {
        match s.to_ascii_lowercase().as_str() {
            "f16" => Ok(WeightType::F16),
            "q8_0" => Ok(WeightType::Q8_0),
            "q5_0" => Ok(WeightType::Q5_0),
            _ => Err(SpeechError::Unsupported(format!(
                "unknown weight type {s:?}; give f16, q8_0 or q5_0"
            ))),
        }
    }
}

impl WeightType {
    pub fn ggml(self) -> GgmlType {
        match self {
            WeightType::F16 => GgmlType::F16,
            WeightType::Q8_0 => GgmlType::Q8_0,
            WeightType::Q5_0 => GgmlType::Q5_0,
        }
    }
}

/// A loaded Whisper model.
#[derive(Clone, Debug)]
pub struct Whisper {
    name: String,
    pub weights: Weights,
    pub tokenizer: Tokenizer,
    /// `(decoder layer, head)` pairs whose cross-attention follows the
    /// audio (from the model's config, when it lists them).
    pub alignment_heads: Vec<(usize, usize)>,
    /// Non-speech tokens listed by the model's config (`suppress_ids`).
    pub suppress_ids: Vec<u32>,
}

impl Whisper {
    /// Loads a CTranslate2 folder (`model.bin`, `config.json`, and
    /// `vocabulary.txt` or `tokenizer.json`) or a whisper.cpp ggml file.
    pub fn load(path: &Path) -> Result<Whisper, SpeechError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".bin").to_string())
            .unwrap_or_default();
        if path.is_dir() {
            return ct2_load(path, name);
        }
        let bytes = std::fs::read(path).map_err(io(path))?;
        if bytes.starts_with(&ggml::MAGIC.to_le_bytes()) {
            let (weights, tokenizer) = ggml::load(&bytes)?;
            return Ok(Whisper {
                name,
                weights,
                tokenizer,
                alignment_heads: Vec::new(),
                suppress_ids: Vec::new(),
            });
        }
        if path.file_name().is_some_and(|n| n == "model.bin") {
            if let Some(dir) = path.parent() {
                return ct2_load(
                    dir,
                    dir.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or(name),
                );
            }
        }
        Err(SpeechError::Format(format!(
            "{} is neither a CTranslate2 folder nor a whisper.cpp ggml file",
            path.display()
        )))
    }

    /// Re-encodes the large matrices (attention, MLP, token embedding) in
    /// `kind`; vectors and the convolution stem stay f32.
    pub fn quantize(&mut self, kind: WeightType) -> Result<(), SpeechError> {
        for m in self.weights.matrices_mut() {
            m.convert(kind.ggml())?;
        }
        Ok(())
    }

    pub fn n_mels(&self) -> usize {
        self.weights.hp.n_mels
    }

    pub fn is_multilingual(&self) -> bool {
        self.tokenizer.is_multilingual()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number of weights of OpenAI's model of these sizes: the
    /// convolution stem, both positional tables, every layer's attention
    /// (no K bias), MLP and norms, and the token embedding the output
    /// shares.
    pub fn parameter_count(&self) -> u64 {
        let hp = &self.weights.hp;
        let d = hp.n_audio_state as u64;
        let (mels, vocab) = (hp.n_mels as u64, hp.n_vocab as u64);
        let norm = 2 * d;
        let attention = 4 * d * d + 3 * d + norm;
        let mlp = 8 * d * d + 5 * d + norm;
        let stem = mels * d * 3 + d + d * d * 3 + d;
        let encoder =
            stem + hp.n_audio_ctx as u64 * d + hp.n_audio_layer as u64 * (attention + mlp) + norm;
        let decoder = vocab * d
            + hp.n_text_ctx as u64 * d
            + hp.n_text_layer as u64 * (2 * attention + mlp)
            + norm;
        encoder + decoder
    }
}

/// Whether `path` is a Whisper model this crate loads: a folder (or its
/// `model.bin`) whose CTranslate2 spec is `WhisperSpec`, or a file with the
/// whisper.cpp ggml magic and plausible hyperparameters.
pub fn detect_whisper(path: &Path) -> bool {
    use std::io::Read;
    let file = if path.is_dir() {
        path.join("model.bin")
    } else {
        path.to_path_buf()
    };
    let mut head = [0u8; 64];
    let Ok(mut f) = std::fs::File::open(&file) else {
        return false;
    };
    let Ok(n) = f.read(&mut head) else {
        return false;
    };
    let head = &head[..n];
    if head.starts_with(&ggml::MAGIC.to_le_bytes()) {
        return ggml::read_hparams(head).is_ok();
    }
    // CTranslate2: u32 version, then u16 length + "WhisperSpec\0".
    let spec = b"WhisperSpec";
    head.len() >= 6 + spec.len() && &head[6..6 + spec.len()] == spec
}

struct Ct2Source<'a>(ct2::Ct2File<'a>);

impl Ct2Source<'_> {
    fn var(&self, name: &str, len: usize) -> Result<&ct2::Variable<'_>, SpeechError> {
        let v = self
            .0
            .vars
            .get(name)
            .ok_or_else(|| SpeechError::Format(format!("model.bin has no {name}")))?;
        let n: usize = v.dims.iter().product();
        if n != len {
            return Err(SpeechError::Format(format!(
                "model.bin {name} has shape {:?}; expected {len} elements",
                v.dims
            )));
        }
        Ok(v)
    }
}

impl weights::Source for Ct2Source<'_> {
    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, SpeechError> {
        let v = self.var(name, len)?;
        let c = |i: usize, w: usize| &v.data[i * w..(i + 1) * w];
        Ok(match v.ty {
            ct2::Ct2Type::F32 => (0..len)
                .map(|i| f32::from_le_bytes(c(i, 4).try_into().unwrap_or([0; 4])))
                .collect(),
            ct2::Ct2Type::F16 => (0..len)
                .map(|i| hearth_quant::f16_to_f32(u16::from_le_bytes([c(i, 2)[0], c(i, 2)[1]])))
                .collect(),
            ct2::Ct2Type::BF16 => (0..len)
                .map(|i| hearth_quant::bf16_to_f32(u16::from_le_bytes([c(i, 2)[0], c(i, 2)[1]])))
                .collect(),
            t => {
                return Err(SpeechError::Unsupported(format!(
                    "model.bin {name} is {t:?}; float16, bfloat16 or float32 models are supported"
                )))
            }
        })
    }

    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix, SpeechError> {
        let v = self.var(name, rows * cols)?;
        let ty = match v.ty {
            ct2::Ct2Type::F32 => GgmlType::F32,
            ct2::Ct2Type::F16 => GgmlType::F16,
            ct2::Ct2Type::BF16 => GgmlType::BF16,
            t => {
                return Err(SpeechError::Unsupported(format!(
                    "model.bin {name} is {t:?} (a quantized CTranslate2 model); convert it with float16 weights"
                )))
            }
        };
        if v.dims.first() != Some(&rows) {
            return Err(SpeechError::Format(format!(
                "model.bin {name} has shape {:?}; expected [{rows}, {cols}]",
                v.dims
            )));
        }
        Matrix::new(v.data.to_vec(), ty, rows, cols)
    }
}

fn ct2_hparams(f: &ct2::Ct2File<'_>) -> Result<Hparams, SpeechError> {
    let dims = |n: &str| {
        f.vars
            .get(n)
            .map(|v| v.dims.clone())
            .ok_or_else(|| SpeechError::Format(format!("model.bin has no {n}")))
    };
    let heads = |n: &str| -> Result<usize, SpeechError> {
        f.vars
            .get(n)
            .and_then(|v| v.scalar_int())
            .and_then(|h| usize::try_from(h).ok())
            .ok_or_else(|| SpeechError::Format(format!("model.bin has no integer {n}")))
    };
    let two = |n: &str| -> Result<(usize, usize), SpeechError> {
        match dims(n)?.as_slice() {
            [a, b] => Ok((*a, *b)),
            d => Err(SpeechError::Format(format!(
                "model.bin {n} has shape {d:?}; expected 2 dims"
            ))),
        }
    };
    let count = |side: &str| {
        (0..)
            .take_while(|i| {
                f.vars
                    .contains_key(&format!("{side}/layer_{i}/ffn/linear_0/weight"))
            })
            .count()
    };
    let (n_vocab, n_text_state) = two("decoder/embeddings/weight")?;
    let (n_audio_ctx, n_audio_state) = two("encoder/position_encodings/encodings")?;
    let (n_text_ctx, _) = two("decoder/position_encodings/encodings")?;
    let n_mels = match dims("encoder/conv1/weight")?.as_slice() {
        [_, m, 3] => *m,
        d => {
            return Err(SpeechError::Format(format!(
                "model.bin encoder/conv1/weight has shape {d:?}"
            )))
        }
    };
    Ok(Hparams {
        n_vocab,
        n_mels,
        n_audio_ctx,
        n_audio_state,
        n_audio_head: heads("encoder/num_heads")?,
        n_audio_layer: count("encoder"),
        n_text_ctx,
        n_text_state,
        n_text_head: heads("decoder/num_heads")?,
        n_text_layer: count("decoder"),
    })
}

fn ct2_load(dir: &Path, name: String) -> Result<Whisper, SpeechError> {
    let bin = dir.join("model.bin");
    let bytes = std::fs::read(&bin).map_err(io(&bin))?;
    let file = ct2::parse(&bytes)?;
    if file.spec != "WhisperSpec" {
        return Err(SpeechError::Format(format!(
            "{} holds a {}, not a WhisperSpec",
            bin.display(),
            file.spec
        )));
    }
    let hp = ct2_hparams(&file)?;
    let weights = weights::build(&Ct2Source(file), hp)?;
    let tokenizer = ct2_vocabulary(dir)?;
    if tokenizer.len() != weights.hp.n_vocab {
        return Err(SpeechError::Format(format!(
            "the vocabulary has {} tokens, the model {}",
            tokenizer.len(),
            weights.hp.n_vocab
        )));
    }
    let config = dir.join("config.json");
    let mut alignment_heads = Vec::new();
    let mut suppress_ids = Vec::new();
    if config.is_file() {
        let text = std::fs::read_to_string(&config).map_err(io(&config))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| SpeechError::Format(format!("{}: {e}", config.display())))?;
        if let Some(a) = v.get("alignment_heads").and_then(|a| a.as_array()) {
            for p in a {
                let pair = p
                    .as_array()
                    .and_then(|p| Some((p.first()?.as_u64()?, p.get(1)?.as_u64()?)));
                match pair {
                    Some((l, h))
                        if (l as usize) < weights.hp.n_text_layer
                            && (h as usize) < weights.hp.n_text_head =>
                    {
                        alignment_heads.push((l as usize, h as usize))
                    }
                    _ => {
                        return Err(SpeechError::Format(format!(
                            "{}: bad alignment head {p}",
                            config.display()
                        )))
                    }
                }
            }
        }
        if let Some(a) = v.get("suppress_ids").and_then(|a| a.as_array()) {
            for id in a {
                match id.as_u64().and_then(|i| u32::try_from(i).ok()) {
                    Some(i) if (i as usize) < weights.hp.n_vocab => suppress_ids.push(i),
                    _ => {
                        return Err(SpeechError::Format(format!(
                            "{}: bad suppress id {id}",
                            config.display()
                        )))
                    }
                }
            }
        }
    }
    Ok(Whisper {
        name,
        weights,
        tokenizer,
        alignment_heads,
        suppress_ids,
    })
}

/// `vocabulary.txt` (one token a line), else `tokenizer.json`'s `model.vocab`.
fn ct2_vocabulary(dir: &Path) -> Result<Tokenizer, SpeechError> {
    let txt = dir.join("vocabulary.txt");
    if txt.is_file() {
        let text = std::fs::read_to_string(&txt).map_err(io(&txt))?;
        let lines: Vec<&str> = text.lines().collect();
        return Tokenizer::from_ct2_lines(&lines);
    }
    let tj = dir.join("tokenizer.json");
    let text = std::fs::read_to_string(&tj).map_err(io(&tj))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| SpeechError::Format(format!("{}: {e}", tj.display())))?;
    let mut tokens: Vec<(u64, String)> = Vec::new();
    if let Some(m) = v.pointer("/model/vocab").and_then(|m| m.as_object()) {
        tokens.extend(
            m.iter()
                .filter_map(|(k, id)| Some((id.as_u64()?, k.clone()))),
        );
    }
    if let Some(a) = v.get("added_tokens").and_then(|a| a.as_array()) {
        tokens.extend(a.iter().filter_map(|t| {
            Some((
                t.get("id")?.as_u64()?,
                t.get("content")?.as_str()?.to_string(),
            ))
        }));
    }
    tokens.sort();
    tokens.dedup_by_key(|t| t.0);
    if tokens.iter().enumerate().any(|(i, t)| t.0 != i as u64) {
        return Err(SpeechError::Format(format!(
            "{}: token ids are not 0..n",
            tj.display()
        )));
    }
    // tokenizer.json may stop at <|notimestamps|>; the timestamps follow it.
    let mut names: Vec<String> = tokens.into_iter().map(|t| t.1).collect();
    if names.last().is_some_and(|t| t == "<|notimestamps|>") {
        names.extend(
            (0..tokenizer::N_TIMESTAMPS).map(|i| format!("<|{:.2}|>", f64::from(i) * 0.02)),
        );
    }
    let lines: Vec<&str> = names.iter().map(String::as_str).collect();
    Tokenizer::from_ct2_lines(&lines)
}
