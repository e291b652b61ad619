//! Whisper speech models in the model listings: the entry `/api/tags`
//! lists, the `details` (family `whisper`, format `ct2` for a CTranslate2
//! folder or `ggml` for a whisper.cpp file, parameter size, weight type)
//! and what `/api/show` answers for them.
//!
//! A model's facts come from loading it once; they are kept per file
//! (path, size and time), so listing again reads nothing more.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use hearth_speech::{Hparams, Whisper};
use serde_json::{json, Value};

use crate::catalog::{digest, parameter_size};
use crate::prompt::rfc3339;

/// What the listings say about one Whisper model.
#[derive(Clone, Debug)]
pub struct Facts {
    /// `ct2` (a CTranslate2 folder) or `ggml` (a whisper.cpp file).
    pub format: &'static str,
    pub hp: Hparams,
    pub parameters: u64,
    /// The type of the large matrices as loaded (`F16`, `Q8_0`, ...).
    pub weights: String,
    pub multilingual: bool,
}

impl Facts {
    pub fn of(model: &Whisper, path: &Path) -> Facts {
        Facts {
            format: if path.is_dir() { "ct2" } else { "ggml" },
            hp: model.weights.hp.clone(),
            parameters: model.parameter_count(),
            weights: model.weights.tok_emb.ty.name().to_string(),
            multilingual: model.is_multilingual(),
        }
    }

    /// Ollama's `details` of the model.
    pub fn details(&self) -> Value {
        json!({
            "parent_model": "",
            "format": self.format,
            "family": "whisper",
            "families": ["whisper"],
            "parameter_size": parameter_size(self.parameters),
            "quantization_level": self.weights,
        })
    }

    /// What the model does, in `/api/show`'s `capabilities`: it
    /// transcribes, and a multilingual model also translates to English.
    pub fn capabilities(&self) -> Vec<&'static str> {
        let mut c = vec!["transcription"];
        if self.multilingual {
            c.push("translation");
        }
        c
    }

    /// `/api/show`'s `model_info`: the sizes, under `whisper.` keys.
    pub fn model_info(&self) -> Value {
        let hp = &self.hp;
        json!({
            "general.architecture": "whisper",
            "general.parameter_count": self.parameters,
            "whisper.multilingual": self.multilingual,
            "whisper.vocab_size": hp.n_vocab,
            "whisper.mel_bins": hp.n_mels,
            "whisper.audio.context_length": hp.n_audio_ctx,
            "whisper.audio.embedding_length": hp.n_audio_state,
            "whisper.audio.head_count": hp.n_audio_head,
            "whisper.audio.block_count": hp.n_audio_layer,
            "whisper.text.context_length": hp.n_text_ctx,
            "whisper.text.embedding_length": hp.n_text_state,
            "whisper.text.head_count": hp.n_text_head,
            "whisper.text.block_count": hp.n_text_layer,
        })
    }
}

/// The size and time that identify a model's files: a ggml file's own, a
/// folder's `model.bin`'s.
fn stamp(path: &Path) -> Option<(u64, SystemTime)> {
    let file = if path.is_dir() {
        path.join("model.bin")
    } else {
        path.to_path_buf()
    };
    let m = std::fs::metadata(file).ok()?;
    Some((m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
}

/// The size of a model's files: a ggml file, or a CTranslate2 folder.
pub fn disk_bytes(path: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    if path.is_dir() {
        std::fs::read_dir(path)
            .map(|rd| rd.flatten().map(|e| size(&e.path())).sum())
            .unwrap_or(0)
    } else {
        size(path)
    }
}

type Stamped = ((u64, SystemTime), Arc<Facts>);

/// Facts of the Whisper models seen, by path.
#[derive(Default)]
pub struct FactsCache(Mutex<HashMap<PathBuf, Stamped>>);

impl FactsCache {
    fn cached(&self, path: &Path, stamp: (u64, SystemTime)) -> Option<Arc<Facts>> {
        let c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        c.get(path)
            .filter(|(s, _)| *s == stamp)
            .map(|(_, f)| f.clone())
    }

    /// Records the facts of a model just loaded from `path`.
    pub fn put(&self, path: &Path, model: &Whisper) {
        if let Some(s) = stamp(path) {
            let f = Arc::new(Facts::of(model, path));
            let mut c = self.0.lock().unwrap_or_else(|e| e.into_inner());
            c.insert(path.to_path_buf(), (s, f));
        }
    }

    /// The facts of the Whisper model at `path`, loading it when they are
    /// not known; `None` when it is not a Whisper model hearth loads.
    /// Blocks (call it off the async threads).
    pub fn get(&self, path: &Path) -> Option<Arc<Facts>> {
        if !hearth_speech::detect_whisper(path) {
            return None;
        }
        let s = stamp(path)?;
        if let Some(f) = self.cached(path, s) {
            return Some(f);
        }
        let model = Whisper::load(path)
            .map_err(|e| tracing::warn!(path = %path.display(), "not listed: {e}"))
            .ok()?;
        let f = Arc::new(Facts::of(&model, path));
        let mut c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        c.insert(path.to_path_buf(), (s, f.clone()));
        Some(f)
    }

    /// The `/api/tags` entry of the Whisper model `name` at `path`.
    pub fn tag_entry(&self, name: &str, path: &Path) -> Option<Value> {
        let facts = self.get(path)?;
        let (_, modified) = stamp(path)?;
        let size = disk_bytes(path);
        Some(json!({
            "name": name,
            "model": name,
            "modified_at": rfc3339(modified),
            "size": size,
            "digest": digest(path, size, modified),
            "details": facts.details(),
        }))
    }
}

/// The digest `/api/tags` lists for the model at `path`.
pub fn model_digest(path: &Path) -> String {
    let modified = stamp(path).map_or(SystemTime::UNIX_EPOCH, |(_, m)| m);
    digest(path, disk_bytes(path), modified)
}

/// `/api/ps`'s entry of a loaded Whisper model holding `bytes`, named
/// `name`; `expires` is `None` when it stays loaded.
pub fn ps_entry(
    name: &str,
    bytes: u64,
    digest: &str,
    facts: &Facts,
    expires: Option<SystemTime>,
) -> Value {
    // Ollama's "never" is the last second of year 9999.
    let never = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(253_402_300_799);
    json!({
        "name": name,
        "model": name,
        "size": bytes,
        "digest": digest,
        "details": facts.details(),
        "expires_at": rfc3339(expires.unwrap_or(never)),
        "size_vram": 0,
        "context_length": facts.hp.n_text_ctx,
    })
}

/// `/api/show` of a Whisper model: no template, Modelfile or parameters
/// (it does not chat), its details, sizes and capabilities.
pub fn show(facts: &Facts, modified: SystemTime) -> Value {
    json!({
        "license": "",
        "modelfile": "",
        "parameters": "",
        "template": "",
        "details": facts.details(),
        "model_info": facts.model_info(),
        "capabilities": facts.capabilities(),
        "modified_at": rfc3339(modified),
    })
}
