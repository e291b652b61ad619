//! `hearth convert`: a sentence-transformers folder (`config.json`,
//! `model.safetensors`, `tokenizer.json`, `1_Pooling/config.json`) of a
//! BERT encoder to a GGUF file with the tensor names, vocabulary and
//! metadata llama.cpp's converter writes, so the file loads in both.

mod safetensors;

use std::path::Path;

use hearth_gguf::{GgmlType, GgufWriter, Value, ValueType};
use serde_json::Value as Json;

pub use safetensors::{Dtype, Safetensors, TensorInfo};

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("{file}: {why}")]
    Json { file: String, why: String },
    #[error("model.safetensors: {0}")]
    Safetensors(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("tensor {name}: {why}")]
    Tensor { name: String, why: String },
    #[error("writing the GGUF: {0}")]
    Write(#[from] hearth_gguf::WriteError),
}

/// The tensor type of the converted weight matrices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutType {
    F32,
    F16,
    Q8_0,
}

impl OutType {
    pub fn parse(s: &str) -> Option<OutType> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Some(OutType::F32),
            "f16" => Some(OutType::F16),
            "q8_0" => Some(OutType::Q8_0),
            _ => None,
        }
    }

    /// `general.file_type` (llama.cpp's ftype numbering).
    fn file_type(self) -> u32 {
        match self {
            OutType::F32 => 0,
            OutType::F16 => 1,
            OutType::Q8_0 => 7,
        }
    }

    fn ggml(self) -> GgmlType {
        match self {
            OutType::F32 => GgmlType::F32,
            OutType::F16 => GgmlType::F16,
            OutType::Q8_0 => GgmlType::Q8_0,
        }
    }
}

/// What a conversion wrote.
#[derive(Debug)]
pub struct Report {
    pub tensors: usize,
    pub n_vocab: usize,
    pub pooling: &'static str,
}

/// Most bytes read from a JSON file of the folder.
const MAX_JSON: u64 = 256 << 20;

fn read(path: &Path, max: u64) -> Result<Vec<u8>, ConvertError> {
    let io = |err| ConvertError::Io {
        path: path.display().to_string(),
        err,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > max {
        return Err(ConvertError::Unsupported(format!(
            "{}: {len} bytes (at most {max})",
            path.display()
        )));
    }
    std::fs::read(path).map_err(io)
}

fn json(dir: &Path, name: &str) -> Result<Json, ConvertError> {
    let bytes = read(&dir.join(name), MAX_JSON)?;
    serde_json::from_slice(&bytes).map_err(|e| ConvertError::Json {
        file: name.into(),
        why: e.to_string(),
    })
}

fn json_bad(file: &str, why: impl Into<String>) -> ConvertError {
    ConvertError::Json {
        file: file.into(),
        why: why.into(),
    }
}

/// Converts the folder `dir` to `out` (written atomically).
pub fn convert(dir: &Path, out: &Path, ty: OutType) -> Result<Report, ConvertError> {
    let w = build(dir, ty)?;
    let report = Report {
        tensors: w.1,
        n_vocab: w.2,
        pooling: w.3,
    };
    w.0.write_file(out)?;
    Ok(report)
}

/// The GGUF image, its tensor count, vocabulary size and pooling.
fn build(
    dir: &Path,
    ty: OutType,
) -> Result<(GgufWriter, usize, usize, &'static str), ConvertError> {
    let config = json(dir, "config.json")?;
    let hp = Hparams::read(&config)?;
    let pooling = pooling(dir)?;
    let mut w = GgufWriter::new();
    let arch = "bert";
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bert".into());
    w.set("general.architecture", Value::String(arch.into()));
    w.set("general.name", Value::String(name));
    let u32v = |v: usize| Value::U32(v as u32);
    w.set("bert.context_length", u32v(hp.n_ctx));
    w.set("bert.embedding_length", u32v(hp.n_embd));
    w.set("bert.feed_forward_length", u32v(hp.n_ff));
    w.set("bert.block_count", u32v(hp.n_layer));
    w.set("bert.attention.head_count", u32v(hp.n_head));
    w.set("bert.attention.layer_norm_epsilon", Value::F32(hp.eps));
    w.set("general.file_type", Value::U32(ty.file_type()));
    w.set("bert.attention.causal", Value::Bool(false));
    w.set("bert.pooling_type", Value::U32(pooling.1));
    w.set("tokenizer.ggml.token_type_count", u32v(hp.n_types));
    let n_vocab = vocab(dir, &mut w, hp.n_vocab)?;

    let st = Safetensors::parse(read(&dir.join("model.safetensors"), u64::MAX)?)?;
    let mut n = 0;
    for (src, info) in &st.tensors {
        let Some(dst) = tensor_name(src, hp.n_layer)? else {
            continue;
        };
        if matches!(info.dtype, Dtype::Other(_)) {
            return Err(ConvertError::Tensor {
                name: src.clone(),
                why: "not a float tensor".into(),
            });
        }
        let vals = st.f32s(info);
        let dims: Vec<u64> = info.shape.iter().rev().map(|&d| d as u64).collect();
        // Norms, biases and the token types stay F32 (as llama.cpp keeps
        // them); matrices take the asked type where their rows allow.
        let tty = match (dims.len(), dst.as_str()) {
            (2, "token_types.weight") | (0 | 1, _) => GgmlType::F32,
            _ if !dims[0].is_multiple_of(ty.ggml().block_len() as u64) => GgmlType::F32,
            _ => ty.ggml(),
        };
        let dims = if dims.is_empty() { vec![1] } else { dims };
        let data = encode(&dst, tty, &vals, dims[0] as usize)?;
        w.add_tensor(&dst, tty, &dims, data)?;
        n += 1;
    }
    let want = 5 + 16 * hp.n_layer;
    if n != want {
        return Err(ConvertError::Unsupported(format!(
            "model.safetensors: {n} BERT tensors found, {want} expected for {} layers",
            hp.n_layer
        )));
    }
    Ok((w, n, n_vocab, pooling.0))
}

fn encode(name: &str, ty: GgmlType, vals: &[f32], row: usize) -> Result<Vec<u8>, ConvertError> {
    if ty == GgmlType::F32 {
        return Ok(vals.iter().flat_map(|v| v.to_le_bytes()).collect());
    }
    let rb = ty.row_bytes(row as u64).unwrap_or(0) as usize;
    let mut out = vec![0u8; rb * (vals.len() / row.max(1))];
    for (src, dst) in vals.chunks_exact(row).zip(out.chunks_exact_mut(rb)) {
        hearth_quant::quantize_row(ty, src, dst).map_err(|e| ConvertError::Tensor {
            name: name.into(),
            why: e.to_string(),
        })?;
    }
    Ok(out)
}

/// The hyper-parameters `config.json` gives a BERT model.
struct Hparams {
    n_vocab: usize,
    n_embd: usize,
    n_ff: usize,
    n_layer: usize,
    n_head: usize,
    n_ctx: usize,
    n_types: usize,
    eps: f32,
}

impl Hparams {
    fn read(c: &Json) -> Result<Hparams, ConvertError> {
        let model = c["model_type"].as_str().unwrap_or("");
        if model != "bert" {
            return Err(ConvertError::Unsupported(format!(
                "config.json: model_type {model:?} (BERT models convert)"
            )));
        }
        if let Some(p) = c["position_embedding_type"].as_str() {
            if p != "absolute" {
                return Err(json_bad(
                    "config.json",
                    format!("position_embedding_type {p:?} (absolute converts)"),
                ));
            }
        }
        if let Some(a) = c["hidden_act"].as_str() {
            if a != "gelu" {
                return Err(json_bad(
                    "config.json",
                    format!("hidden_act {a:?} (gelu converts)"),
                ));
            }
        }
        let num = |k: &str, max: u64| -> Result<usize, ConvertError> {
            c[k].as_u64()
                .filter(|&v| (1..=max).contains(&v))
                .map(|v| v as usize)
                .ok_or_else(|| json_bad("config.json", format!("{k}: {} (1 to {max})", c[k])))
        };
        let hp = Hparams {
            n_vocab: num("vocab_size", 1 << 24)?,
            n_embd: num("hidden_size", 1 << 16)?,
            n_ff: num("intermediate_size", 1 << 20)?,
            n_layer: num("num_hidden_layers", 1024)?,
            n_head: num("num_attention_heads", 4096)?,
            n_ctx: num("max_position_embeddings", 1 << 20)?,
            n_types: c["type_vocab_size"]
                .as_u64()
                .map_or(Ok(2), |_| num("type_vocab_size", 64))?,
            eps: c["layer_norm_eps"].as_f64().unwrap_or(1e-12) as f32,
        };
        if !hp.n_embd.is_multiple_of(hp.n_head) {
            return Err(json_bad(
                "config.json",
                format!(
                    "hidden_size {} is not a multiple of {} heads",
                    hp.n_embd, hp.n_head
                ),
            ));
        }
        Ok(hp)
    }
}

/// The pooling `1_Pooling/config.json` asks for: its name and llama.cpp's
/// `pooling_type` (1 mean, 2 CLS, 3 last).
fn pooling(dir: &Path) -> Result<(&'static str, u32), ConvertError> {
    let file = "1_Pooling/config.json";
    let p = json(dir, file)?;
    let on = |k: &str| p[k].as_bool().unwrap_or(false);
    let modes = [
        ("mean", on("pooling_mode_mean_tokens"), 1),
        ("cls", on("pooling_mode_cls_token"), 2),
        ("last", on("pooling_mode_lasttoken"), 3),
    ];
    let others = [
        "pooling_mode_max_tokens",
        "pooling_mode_mean_sqrt_len_tokens",
        "pooling_mode_weightedmean_tokens",
    ];
    if let Some(k) = others.iter().find(|k| on(k)) {
        return Err(json_bad(
            file,
            format!("{k} is not a pooling llama.cpp has"),
        ));
    }
    let chosen: Vec<_> = modes.iter().filter(|m| m.1).collect();
    match chosen[..] {
        [m] => Ok((m.0, m.2)),
        _ => Err(json_bad(
            file,
            "exactly one of mean, CLS or last-token pooling must be on",
        )),
    }
}

/// llama.cpp's name for a BERT tensor; `None` for the tensors it leaves
/// out (position ids, the pooler).
fn tensor_name(src: &str, n_layer: usize) -> Result<Option<String>, ConvertError> {
    let s = src
        .strip_prefix("bert.")
        .or_else(|| src.strip_prefix("model."))
        .unwrap_or(src);
    let (base, suffix) = match s.rsplit_once('.') {
        Some((b, x @ ("weight" | "bias"))) => (b, x),
        _ if s == "embeddings.position_ids" => return Ok(None),
        _ => return Err(unknown(src)),
    };
    let fixed = match base {
        "embeddings.word_embeddings" => Some("token_embd"),
        "embeddings.position_embeddings" => Some("position_embd"),
        "embeddings.token_type_embeddings" => Some("token_types"),
        "embeddings.LayerNorm" => Some("token_embd_norm"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Ok(Some(format!("{f}.{suffix}")));
    }
    if base.starts_with("pooler.") {
        return Ok(None);
    }
    let Some(rest) = base.strip_prefix("encoder.layer.") else {
        return Err(unknown(src));
    };
    let (il, part) = rest.split_once('.').ok_or_else(|| unknown(src))?;
    let il: usize = il.parse().map_err(|_| unknown(src))?;
    if il >= n_layer {
        return Err(ConvertError::Tensor {
            name: src.into(),
            why: format!("layer {il} of a model of {n_layer}"),
        });
    }
    let to = match part {
        "attention.self.query" => "attn_q",
        "attention.self.key" => "attn_k",
        "attention.self.value" => "attn_v",
        "attention.output.dense" => "attn_output",
        "attention.output.LayerNorm" => "attn_output_norm",
        "intermediate.dense" => "ffn_up",
        "output.dense" => "ffn_down",
        "output.LayerNorm" => "layer_output_norm",
        _ => return Err(unknown(src)),
    };
    Ok(Some(format!("blk.{il}.{to}.{suffix}")))
}

fn unknown(src: &str) -> ConvertError {
    ConvertError::Tensor {
        name: src.into(),
        why: "not a BERT tensor this converter knows".into(),
    }
}

/// GGUF token types (llama.cpp's `TokenType`).
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;

/// The WordPiece vocabulary of `tokenizer.json` in llama.cpp's BERT
/// convention: a word-initial piece `▁`-prefixed, a continuation piece
/// (`##x`) bare, control tokens as they are; with the special token ids.
fn vocab(dir: &Path, w: &mut GgufWriter, n_vocab: usize) -> Result<usize, ConvertError> {
    let file = "tokenizer.json";
    let t = json(dir, file)?;
    let model = &t["model"];
    if model["type"].as_str() != Some("WordPiece") {
        return Err(json_bad(
            file,
            format!("model type {} (WordPiece converts)", model["type"]),
        ));
    }
    let map = model["vocab"]
        .as_object()
        .ok_or_else(|| json_bad(file, "model.vocab is not an object"))?;
    let mut tokens: Vec<Option<String>> = vec![None; map.len()];
    for (tok, id) in map {
        let id = id
            .as_u64()
            .map(|i| i as usize)
            .filter(|&i| i < tokens.len())
            .ok_or_else(|| {
                json_bad(
                    file,
                    format!("token {tok:?} has id {id} (ids must be 0..{})", map.len()),
                )
            })?;
        if tokens[id].replace(tok.clone()).is_some() {
            return Err(json_bad(file, format!("id {id} is given twice")));
        }
    }
    if tokens.len() > n_vocab {
        return Err(json_bad(
            file,
            format!("{} tokens for an embedding of {n_vocab} rows", tokens.len()),
        ));
    }
    let mut types = vec![NORMAL; n_vocab];
    for a in t["added_tokens"].as_array().into_iter().flatten() {
        if let Some(id) = a["id"]
            .as_u64()
            .map(|i| i as usize)
            .filter(|&i| i < n_vocab)
        {
            types[id] = match a["special"].as_bool() {
                Some(true) => CONTROL,
                _ => USER_DEFINED,
            };
        }
    }
    // Rows of the embedding beyond the tokenizer's: padding tokens.
    let texts: Vec<String> = (0..n_vocab)
        .map(|i| match tokens.get(i).cloned().flatten() {
            Some(tok) if types[i] == CONTROL => tok,
            Some(tok) => match tok.strip_prefix("##") {
                Some(rest) => rest.to_string(),
                None => format!("\u{2581}{tok}"),
            },
            None => {
                types[i] = CONTROL;
                format!("[PAD{i}]")
            }
        })
        .collect();
    let id_of = |tok: &str| map.get(tok).and_then(Json::as_u64);
    w.set("tokenizer.ggml.model", Value::String("bert".into()));
    w.set("tokenizer.ggml.pre", Value::String("bert-bge".into()));
    w.set(
        "tokenizer.ggml.tokens",
        Value::Array(
            ValueType::String,
            texts.into_iter().map(Value::String).collect(),
        ),
    );
    w.set(
        "tokenizer.ggml.token_type",
        Value::Array(ValueType::I32, types.into_iter().map(Value::I32).collect()),
    );
    for (key, tok) in [
        ("unknown_token_id", "[UNK]"),
        ("seperator_token_id", "[SEP]"),
        ("padding_token_id", "[PAD]"),
        ("cls_token_id", "[CLS]"),
        ("mask_token_id", "[MASK]"),
    ] {
        if let Some(id) = id_of(tok) {
            w.set(&format!("tokenizer.ggml.{key}"), Value::U32(id as u32));
        }
    }
    let lower = t["normalizer"]["lowercase"].as_bool().unwrap_or(true);
    w.set("tokenizer.ggml.normalizer.lowercase", Value::Bool(lower));
    Ok(n_vocab)
}
