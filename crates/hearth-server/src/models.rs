//! Loaded models: found by path or by name through a resolver, loaded on
//! first use with one engine each, kept for `keep_alive` after their last
//! request, and unloaded least recently used first when a new one would
//! not fit the memory budget.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hearth_model::{KvType, Model};
use hearth_tokenizer::{ChatTemplate, Tokenizer};

use crate::engine::{Engine, EngineConfig};
use crate::error::ApiError;
use crate::params::KeepAlive;

/// Finds a model file from a name (the model store plugs in here).
pub type Resolver = Arc<dyn Fn(&str) -> Result<PathBuf, String> + Send + Sync>;

/// Engine settings every model is started with.
#[derive(Clone, Debug)]
pub struct EngineDefaults {
    /// Sequences per model; `None`: [`DEFAULT_PARALLEL`], or fewer when the
    /// memory plan says that many do not fit.
    pub n_parallel: Option<usize>,
    pub n_ctx: Option<usize>,
    pub kv: KvType,
    pub threads: usize,
    pub max_queue: usize,
}

/// Sequences per model when not given and memory allows.
pub const DEFAULT_PARALLEL: usize = 4;

/// Default context when a model was trained with a longer one.
pub const DEFAULT_CTX: usize = 4096;

/// A model with its engine.
pub struct LoadedModel {
    pub name: String,
    pub path: PathBuf,
    pub model: Arc<Model>,
    pub tokenizer: Arc<Tokenizer>,
    /// `None` when the file has no template and no built-in one fits.
    pub template: Option<ChatTemplate>,
    pub engine: Engine,
    /// The vocabulary index constrained decoding walks, built on first use.
    pub vocab_index: std::sync::OnceLock<Arc<hearth_grammar::VocabIndex>>,
    pub load_duration: Duration,
    /// Weights plus KV caches.
    pub bytes: u64,
    pub file_size: u64,
    pub modified: SystemTime,
    /// The store's sha256 of the file when the store holds it (however the
    /// model was named), else an identifier from its path, size and time.
    pub digest: String,
    /// The store model's Modelfile settings (empty for a file).
    pub config: hearth_store::ModelConfig,
    life: Mutex<Life>,
}

struct Life {
    active: usize,
    last_used: Instant,
    keep_alive: KeepAlive,
    /// When it goes (None: forever, or busy).
    expires: Option<Instant>,
}

impl LoadedModel {
    /// When the model will be unloaded (None: never).
    pub fn expires_at(&self) -> Option<SystemTime> {
        let l = self.life.lock().ok()?;
        let at = match (l.active, l.keep_alive) {
            (_, KeepAlive::Forever) => return None,
            (0, _) => l.expires?,
            (_, KeepAlive::For(d)) => Instant::now() + d,
            (_, KeepAlive::Unload) => Instant::now(),
        };
        Some(SystemTime::now() + at.saturating_duration_since(Instant::now()))
    }
}

/// Holds a model in use; on drop the keep-alive clock starts again.
pub struct ModelUse {
    pub model: Arc<LoadedModel>,
    /// Whether this request loaded it.
    pub loaded_now: bool,
}

impl Drop for ModelUse {
    fn drop(&mut self) {
        if let Ok(mut l) = self.model.life.lock() {
            l.active = l.active.saturating_sub(1);
            l.last_used = Instant::now();
            if l.active == 0 {
                l.expires = match l.keep_alive {
                    KeepAlive::For(d) => Some(Instant::now() + d),
                    KeepAlive::Unload => Some(Instant::now()),
                    KeepAlive::Forever => None,
                };
            }
        }
    }
}

/// A model name as listed: store names as given, files by their stem.
pub fn display_name(name: &str) -> String {
    let p = Path::new(name);
    if name.ends_with(".gguf") || name.contains('/') {
        if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
            return stem.to_string();
        }
    }
    name.strip_suffix(":latest").unwrap_or(name).to_string()
}

pub struct ModelManager {
    loaded: tokio::sync::Mutex<HashMap<String, Arc<LoadedModel>>>,
    /// Names seen (loaded once, copied): name → file.
    known: Mutex<HashMap<String, PathBuf>>,
    /// A file's stem → the store name of the same file, so a model loaded
    /// by path and by its store name is one model.
    aliases: Mutex<HashMap<String, String>>,
    resolver: Option<Resolver>,
    store: Option<Arc<hearth_store::Store>>,
    defaults: EngineDefaults,
    default_keep_alive: KeepAlive,
    budget: u64,
}

impl ModelManager {
    pub fn new(
        resolver: Option<Resolver>,
        store: Option<Arc<hearth_store::Store>>,
        defaults: EngineDefaults,
        default_keep_alive: KeepAlive,
        budget: u64,
    ) -> ModelManager {
        ModelManager {
            loaded: Default::default(),
            known: Default::default(),
            aliases: Default::default(),
            resolver,
            store,
            defaults,
            default_keep_alive,
            budget,
        }
    }

    pub fn default_keep_alive(&self) -> KeepAlive {
        self.default_keep_alive
    }

    /// The key a model is loaded and listed under: its display name, or
    /// the store name of the same file.
    fn key(&self, name: &str) -> String {
        let key = display_name(name);
        self.aliases
            .lock()
            .ok()
            .and_then(|a| a.get(&key).cloned())
            .unwrap_or(key)
    }

    /// The store's manifest of the model `name` (at `path`): its own when
    /// `name` is a store name; for a file, the store entry holding the same
    /// bytes (one without Modelfile settings first).
    pub fn store_entry(&self, name: &str, path: &Path) -> Option<hearth_store::Manifest> {
        let store = self.store.as_ref()?;
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

    /// The file of `name`: a known name, a path, or what the resolver finds.
    pub fn locate(&self, name: &str) -> Result<PathBuf, ApiError> {
        let key = self.key(name);
        if let Some(p) = self.known.lock().ok().and_then(|k| k.get(&key).cloned()) {
            return Ok(p);
        }
        let p = Path::new(name);
        if p.is_file() {
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

    /// Names and files of every model the server knows (for `/api/tags`).
    pub fn known(&self) -> Vec<(String, PathBuf)> {
        let mut v: Vec<_> = self
            .known
            .lock()
            .map(|k| k.iter().map(|(a, b)| (a.clone(), b.clone())).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Loaded models, most recently used first.
    pub async fn loaded(&self) -> Vec<Arc<LoadedModel>> {
        let mut v: Vec<_> = self.loaded.lock().await.values().cloned().collect();
        v.sort_by_key(|m| std::cmp::Reverse(m.life.lock().map(|l| l.last_used).ok()));
        v
    }

    /// The model, loading it when needed, marked busy until the returned
    /// [`ModelUse`] is dropped; `keep_alive` replaces the model's setting.
    pub async fn acquire(
        &self,
        name: &str,
        keep_alive: Option<KeepAlive>,
    ) -> Result<ModelUse, ApiError> {
        if name.trim().is_empty() {
            return Err(ApiError::bad_request("the request names no model"));
        }
        let mut key = self.key(name);
        let mut loaded = self.loaded.lock().await;
        let found = loaded.get(&key).cloned();
        let (model, loaded_now) = match found {
            Some(m) => (m, false),
            None => {
                let path = self.locate(name)?;
                let entry = self.store_entry(name, &path);
                if let Some(e) = &entry {
                    let store_key = display_name(&e.name);
                    if store_key != key {
                        if let Ok(mut a) = self.aliases.lock() {
                            a.insert(key.clone(), store_key.clone());
                        }
                        key = store_key;
                    }
                }
                if let Some(m) = loaded.get(&key).cloned() {
                    return Ok(self.hold(m, false, keep_alive));
                }
                let m = Arc::new(self.load(key.clone(), path.clone(), entry).await?);
                self.make_room(&mut loaded, m.bytes);
                loaded.insert(key.clone(), m.clone());
                if let Ok(mut k) = self.known.lock() {
                    k.insert(key.clone(), path);
                }
                tracing::info!(model = %key, bytes = m.bytes, load_ms = m.load_duration.as_millis() as u64, "loaded");
                (m, true)
            }
        };
        Ok(self.hold(model, loaded_now, keep_alive))
    }

    /// Marks `model` busy.
    fn hold(
        &self,
        model: Arc<LoadedModel>,
        loaded_now: bool,
        keep_alive: Option<KeepAlive>,
    ) -> ModelUse {
        if let Ok(mut l) = model.life.lock() {
            l.active += 1;
            l.last_used = Instant::now();
            l.expires = None;
            if let Some(k) = keep_alive {
                l.keep_alive = k;
            }
        }
        ModelUse { model, loaded_now }
    }

    async fn load(
        &self,
        name: String,
        path: PathBuf,
        entry: Option<hearth_store::Manifest>,
    ) -> Result<LoadedModel, ApiError> {
        let d = self.defaults.clone();
        let keep_alive = self.default_keep_alive;
        tokio::task::spawn_blocking(move || load_model(name, path, entry, &d, keep_alive))
            .await
            .map_err(|e| ApiError::internal(format!("loading the model: {e}")))?
    }

    /// Unloads idle models, least recently used first, until `incoming`
    /// more bytes fit the budget. Busy models stay.
    fn make_room(&self, loaded: &mut HashMap<String, Arc<LoadedModel>>, incoming: u64) {
        loop {
            let used: u64 = loaded.values().map(|m| m.bytes).sum();
            if used + incoming <= self.budget {
                return;
            }
            let victim = loaded
                .iter()
                .filter_map(|(k, m)| {
                    let l = m.life.lock().ok()?;
                    (l.active == 0).then(|| (l.last_used, k.clone()))
                })
                .min();
            let Some((_, k)) = victim else {
                tracing::warn!(
                    used,
                    incoming,
                    budget = self.budget,
                    "over the memory budget and every loaded model is busy"
                );
                return;
            };
            if let Some(m) = loaded.remove(&k) {
                m.engine.shutdown();
                tracing::info!(model = %k, "unloaded to make room");
            }
        }
    }

    /// Unloads `name` now (its running requests are cancelled); false
    /// when it was not loaded.
    pub async fn unload(&self, name: &str) -> bool {
        let key = self.key(name);
        match self.loaded.lock().await.remove(&key) {
            Some(m) => {
                m.engine.shutdown();
                tracing::info!(model = %key, "unloaded");
                true
            }
            None => false,
        }
    }

    /// Unloads idle models whose keep-alive has passed.
    pub async fn reap(&self) {
        let now = Instant::now();
        let mut loaded = self.loaded.lock().await;
        let expired: Vec<String> = loaded
            .iter()
            .filter(|(_, m)| {
                m.life
                    .lock()
                    .is_ok_and(|l| l.active == 0 && l.expires.is_some_and(|e| e <= now))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            if let Some(m) = loaded.remove(&k) {
                m.engine.shutdown();
                tracing::info!(model = %k, "unloaded after keep_alive");
            }
        }
    }

    /// Forgets a name (and unloads it when loaded). The file stays.
    pub async fn forget(&self, name: &str) -> bool {
        let key = self.key(name);
        let unloaded = self.unload(&key).await;
        let known = self
            .known
            .lock()
            .is_ok_and(|mut k| k.remove(&key).is_some());
        unloaded || known
    }

    pub fn store(&self) -> Option<&Arc<hearth_store::Store>> {
        self.store.as_ref()
    }

    /// Makes `dest` another name for the model `source`.
    pub fn copy(&self, source: &str, dest: &str) -> Result<(), ApiError> {
        if let Some(store) = &self.store {
            if store.get(source).ok().flatten().is_some() {
                return store
                    .copy(source, dest)
                    .map(|_| ())
                    .map_err(|e| ApiError::bad_request(e.to_string()));
            }
        }
        let path = self.locate(source)?;
        let dest = display_name(dest);
        if dest.is_empty() {
            return Err(ApiError::bad_request("the destination name is empty"));
        }
        if let Ok(mut k) = self.known.lock() {
            k.insert(display_name(source), path.clone());
            k.insert(dest, path);
        }
        Ok(())
    }
}

fn load_model(
    name: String,
    path: PathBuf,
    entry: Option<hearth_store::Manifest>,
    d: &EngineDefaults,
    keep_alive: KeepAlive,
) -> Result<LoadedModel, ApiError> {
    let t0 = Instant::now();
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
    // A Modelfile's num_ctx sizes the engine when --ctx does not.
    let modelfile_ctx = entry
        .as_ref()
        .and_then(|e| e.config.parameters.get("num_ctx")?.as_u64())
        .map(|n| n as usize);
    let n_ctx = d
        .n_ctx
        .or(modelfile_ctx)
        .unwrap_or_else(|| model.config.n_ctx_train.clamp(1, DEFAULT_CTX));
    if n_ctx > model.config.n_ctx_train {
        tracing::warn!(
            model = %name,
            n_ctx,
            trained = model.config.n_ctx_train,
            "the context is beyond the length the model was trained for; its output may lose coherence past it"
        );
    }
    // The memory plan decides before anything large is allocated: a model
    // that does not fit is refused with the numbers and the way out, and
    // without --parallel the server takes as many sequences (up to the
    // default) as fit.
    let available =
        hearth_plan::Available::probe().map_err(|e| fail("measuring free memory for", &e))?;
    let plan_for = |parallel: usize| {
        let opts = hearth_plan::Options {
            ctx: hearth_plan::Ctx::Tokens(n_ctx),
            parallel,
            kv: d.kv,
            n_ubatch: hearth_model::UBATCH,
        };
        hearth_plan::check(&name, model.file(), &opts, &available)
    };
    let mut plan = plan_for(d.n_parallel.unwrap_or(DEFAULT_PARALLEL));
    if d.n_parallel.is_none() {
        let mut p = DEFAULT_PARALLEL;
        while plan.is_err() && p > 1 {
            p -= 1;
            plan = plan_for(p);
        }
    }
    let plan = plan.map_err(|e| ApiError::internal(e.to_string()))?;
    let bytes = plan.total;
    let engine = Engine::start(
        model.clone(),
        tokenizer.clone(),
        EngineConfig {
            n_parallel: plan.parallel,
            n_ctx,
            kv: d.kv,
            threads: d.threads,
            max_queue: d.max_queue,
        },
    )
    .map_err(|e| fail("starting the engine for", &e))?;
    Ok(LoadedModel {
        name,
        path,
        model,
        tokenizer,
        template,
        engine,
        vocab_index: std::sync::OnceLock::new(),
        load_duration: t0.elapsed(),
        bytes,
        file_size: meta.len(),
        modified,
        digest,
        config: entry.map(|e| e.config).unwrap_or_default(),
        life: Mutex::new(Life {
            active: 0,
            last_used: Instant::now(),
            keep_alive,
            expires: None,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            display_name("/m/SmolLM2-135M.Q4_1.gguf"),
            "SmolLM2-135M.Q4_1"
        );
        assert_eq!(display_name("smollm2:latest"), "smollm2");
        assert_eq!(display_name("smollm2:135m"), "smollm2:135m");
    }
}
