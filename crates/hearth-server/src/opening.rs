//! Finding and opening a model file for the server, off the async threads:
//! where a name leads ([`Locator`]), the store entry holding the same bytes,
//! and the file opened (mapped, tokenizer and template read) before its
//! engine allocates anything.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use hearth_model::Model;
use hearth_tokenizer::{ChatTemplate, Tokenizer};

use crate::error::ApiError;
use crate::models::{display_name, Resolver};

/// Runs `f` on a blocking thread (a panic there is a 500, not a crash).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("loading the model: {e}")))
}

/// Where names are looked up, owned so a blocking thread can use it.
pub(crate) struct Locator {
    pub(crate) known: HashMap<String, PathBuf>,
    /// Whether a request may name a file by its path (`--allow-paths`).
    pub(crate) allow_paths: bool,
    pub(crate) store: Option<Arc<hearth_store::Store>>,
    pub(crate) resolver: Option<Resolver>,
}

impl Locator {
    pub(crate) fn locate(&self, name: &str) -> Result<PathBuf, ApiError> {
        if let Some(p) = self.known.get(&display_name(name)) {
            return Ok(p.clone());
        }
        let p = Path::new(name);
        if self.allow_paths && p.is_file() {
            return Ok(p.to_path_buf());
        }
        if let Some(store) = &self.store {
            if let Ok(p) = store.model_path(name) {
                return Ok(p);
            }
        }
        match &self.resolver {
            Some(r) => r(name).map_err(|e| {
                tracing::debug!(model = name, error = %e, "resolver did not find the model");
                ApiError::model_not_found(name)
            }),
            None => Err(ApiError::model_not_found(name)),
        }
    }
}

/// A model file opened (mapped, tokenizer and template read), before its
/// engine allocates anything.
pub(crate) struct Opened {
    pub(crate) path: PathBuf,
    pub(crate) meta: std::fs::Metadata,
    pub(crate) modified: SystemTime,
    /// The store's sha256 when the store holds the file, else one derived
    /// from its path, size and time.
    pub(crate) digest: String,
    /// The store entry holding the file (its Modelfile settings).
    pub(crate) entry: Option<hearth_store::Manifest>,
    pub(crate) model: Arc<Model>,
    pub(crate) tokenizer: Arc<Tokenizer>,
    pub(crate) template: Option<ChatTemplate>,
}

pub(crate) fn open_model(
    path: PathBuf,
    entry: Option<hearth_store::Manifest>,
) -> Result<Opened, ApiError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        ApiError::internal(format!("{what} {}: {e}", path.display()))
    };
    let meta = std::fs::metadata(&path).map_err(|e| fail("reading", &e))?;
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let digest = match &entry {
        Some(e) => e.sha256.clone(),
        None => crate::ollama::digest(&path, meta.len(), modified),
    };
    let model = Arc::new(Model::load(&path).map_err(|e| fail("loading", &e))?);
    let tokenizer = Arc::new(
        Tokenizer::from_gguf(model.file()).map_err(|e| fail("reading the tokenizer of", &e))?,
    );
    let template = ChatTemplate::from_gguf(model.file()).ok();
    Ok(Opened {
        path,
        meta,
        modified,
        digest,
        entry,
        model,
        tokenizer,
        template,
    })
}

/// The store's manifest of the model `name` (at `path`): its own when
/// `name` is a store name; for a file, the store entry holding the same
/// bytes (one without Modelfile settings first).
pub(crate) fn store_entry(
    store: Option<&hearth_store::Store>,
    name: &str,
    path: &Path,
) -> Option<hearth_store::Manifest> {
    let store = store?;
    if !Path::new(name).is_file() {
        if let Ok(Some(m)) = store.get(name) {
            return Some(m);
        }
    }
    let size = std::fs::metadata(path).ok()?.len();
    let mut same: Vec<_> = store
        .list()
        .ok()?
        .into_iter()
        .filter(|m| m.size == size)
        .collect();
    same.sort_by_key(|m| (!m.config.is_empty(), m.name.clone()));
    let mut sha = None;
    for m in same {
        let sha = match &sha {
            Some(s) => s,
            None => sha.insert(hearth_store::hash_file(path).ok()?.0),
        };
        if *sha == m.sha256 {
            return Some(m);
        }
    }
    None
}
