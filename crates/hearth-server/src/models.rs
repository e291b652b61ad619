//! Loaded models: found by path or by name through a resolver, loaded on
//! first use with one engine each, kept for `keep_alive` after their last
//! request, and unloaded least recently used first when a new one would
//! not fit the memory budget.
//!
//! No lock that other requests need is held while a model loads or
//! unloads: the map of loaded models is locked only to read or change it,
//! a load waits on a gate of its own name (so two requests for one model
//! load it once), and the slow parts (opening the file, allocating caches,
//! joining an engine thread) run on blocking threads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hearth_model::{KvType, Model};
use hearth_tokenizer::{ChatTemplate, Tokenizer};

use crate::engine::{Engine, EngineConfig};
use crate::error::ApiError;
use crate::opening::{blocking, open_model, store_entry, Locator, Opened};
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
    /// Batch-invariant engines (`--deterministic`).
    pub deterministic: bool,
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
    /// The most bytes any one token stands for (its text or its piece), so
    /// a text of `n` bytes is at least `n / max_token_bytes` tokens.
    pub max_token_bytes: usize,
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
    fn is_idle(&self) -> bool {
        self.life.lock().is_ok_and(|l| l.active == 0)
    }

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

/// The loaded models and the memory they and the loads under way hold.
#[derive(Default)]
struct Loaded {
    models: HashMap<String, Arc<LoadedModel>>,
    /// Bytes planned by loads that have not finished.
    reserved: u64,
}

impl Loaded {
    fn used(&self) -> u64 {
        self.models.values().map(|m| m.bytes).sum::<u64>() + self.reserved
    }
}

pub struct ModelManager {
    /// Locked only to read or change the map, never across a load.
    loaded: Mutex<Loaded>,
    /// One gate per name being loaded: a second request for the same
    /// model waits there and finds it loaded.
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Names seen (loaded once, copied): name → file.
    known: Mutex<HashMap<String, PathBuf>>,
    /// A file's stem → the store name of the same file, so a model loaded
    /// by path and by its store name is one model.
    aliases: Mutex<HashMap<String, String>>,
    resolver: Option<Resolver>,
    store: Option<Arc<hearth_store::Store>>,
    defaults: EngineDefaults,
    default_keep_alive: KeepAlive,
    /// Memory the loaded models may take together: the planner's figure.
    budget: hearth_plan::Available,
    /// The one pool every engine computes on, `defaults.threads` wide.
    pool: Arc<hearth_ops::ThreadPool>,
    /// Requests may name `.gguf` paths (`--allow-paths`).
    allow_paths: bool,
}

impl ModelManager {
    pub fn new(
        resolver: Option<Resolver>,
        store: Option<Arc<hearth_store::Store>>,
        defaults: EngineDefaults,
        default_keep_alive: KeepAlive,
        budget: hearth_plan::Available,
    ) -> ModelManager {
        ModelManager {
            loaded: Default::default(),
            gates: Default::default(),
            known: Default::default(),
            aliases: Default::default(),
            resolver,
            store,
            pool: Arc::new(hearth_ops::ThreadPool::new(defaults.threads)),
            defaults,
            default_keep_alive,
            budget,
            allow_paths: false,
        }
    }

    /// Whether requests may name models by file path (off by default:
    /// only store names and the models the server was started with).
    pub fn allow_paths(mut self, allow: bool) -> ModelManager {
        self.allow_paths = allow;
        self
    }

    /// Refuses a path-like name when paths are off, with the very answer a
    /// name that does not exist gets (nothing tells the two apart).
    pub fn admit(&self, name: &str) -> Result<(), ApiError> {
        if !self.allow_paths && crate::security::is_path_like(name) {
            return Err(ApiError::model_not_found(name));
        }
        Ok(())
    }

    /// Makes the file at `path` known by its display name (the models
    /// named on the command line; a model folder by its whole name);
    /// returns that name.
    pub fn register_file(&self, path: &Path) -> String {
        let key = match path.file_name().and_then(|n| n.to_str()) {
            Some(n) if path.is_dir() => n.to_string(),
            _ => display_name(&path.to_string_lossy()),
        };
        if let Ok(mut k) = self.known.lock() {
            k.insert(key.clone(), path.to_path_buf());
        }
        key
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Loaded> {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, key: &str) -> Option<Arc<LoadedModel>> {
        self.lock().models.get(key).cloned()
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
        store_entry(self.store.as_deref(), name, path)
    }

    /// The file of `name`: a known name, a path, or what the resolver finds.
    pub fn locate(&self, name: &str) -> Result<PathBuf, ApiError> {
        self.admit(name)?;
        let locator = self.locator();
        match locator.known.get(&self.key(name)) {
            Some(p) => Ok(p.clone()),
            None => locator.locate(name),
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

    /// Memory of the budget that no loaded model (or load under way) holds.
    pub fn free_bytes(&self) -> u64 {
        self.budget.bytes.saturating_sub(self.lock().used())
    }

    /// Loaded models, most recently used first.
    pub async fn loaded(&self) -> Vec<Arc<LoadedModel>> {
        let mut v: Vec<_> = self.lock().models.values().cloned().collect();
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
        self.admit(name)?;
        let key = self.key(name);
        if let Some(u) = self.take(&key, keep_alive) {
            return Ok(u);
        }
        let (model, loaded_now) = self.load_once(name, &key).await?;
        Ok(self.hold(model, loaded_now, keep_alive))
    }

    /// The loaded model `key`, marked busy while the map is locked, so that
    /// eviction and reaping (which decide under the same lock) never take a
    /// model a request has just found.
    fn take(&self, key: &str, keep_alive: Option<KeepAlive>) -> Option<ModelUse> {
        let loaded = self.lock();
        let m = loaded.models.get(key)?.clone();
        let u = self.hold(m, false, keep_alive);
        drop(loaded);
        Some(u)
    }

    /// The file of `name` and the store entry holding the same bytes, looked
    /// up on a blocking thread (finding the entry may hash the file).
    async fn find(
        &self,
        name: &str,
    ) -> Result<(PathBuf, Option<hearth_store::Manifest>), ApiError> {
        let (locate, store, name) = (self.locator(), self.store.clone(), name.to_string());
        blocking(move || {
            let path = locate.locate(&name)?;
            if hearth_speech::detect_whisper(&path) {
                return Err(ApiError::bad_request(format!(
                    "model '{name}' is a Whisper speech model: it transcribes audio \
                     (/v1/audio/transcriptions) and cannot generate, chat or embed"
                )));
            }
            let entry = store_entry(store.as_deref(), &name, &path);
            Ok((path, entry))
        })
        .await?
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

    /// Loads the model `name` (listed as `key`) unless a request that held
    /// its gate first did. Finding the file happens behind the gate, so a
    /// slow look-up (or hashing a file to find its store entry) runs once.
    async fn load_once(&self, name: &str, key: &str) -> Result<(Arc<LoadedModel>, bool), ApiError> {
        let gate = self
            .gates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone();
        let held = gate.lock().await;
        let result = match self.get(&self.key(name)) {
            Some(m) => Ok((m, false)),
            None => self.find_and_load(name, key).await,
        };
        drop(held);
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        // The map's clone and ours: nobody else waits on this gate.
        if Arc::strong_count(&gate) <= 2 {
            gates.remove(key);
        }
        result
    }

    /// Finds the file of `name`; a file the store holds is loaded and
    /// listed under its store name, whichever way it was named.
    async fn find_and_load(
        &self,
        name: &str,
        key: &str,
    ) -> Result<(Arc<LoadedModel>, bool), ApiError> {
        let (path, entry) = self.find(name).await?;
        let mut key = key.to_string();
        if let Some(e) = &entry {
            let store_key = display_name(&e.name);
            if store_key != key {
                if let Ok(mut a) = self.aliases.lock() {
                    a.insert(key.clone(), store_key.clone());
                }
                // Listed once, by its store name; the alias finds it.
                if let Ok(mut k) = self.known.lock() {
                    k.remove(&key);
                }
                key = store_key;
            }
        }
        if let Some(m) = self.get(&key) {
            return Ok((m, false));
        }
        self.load(&key, path, entry).await.map(|m| (m, true))
    }

    /// Finds and opens the model, plans it against the memory left (after
    /// unloading idle models when that makes it fit), starts its engine
    /// and lists it. The map is locked only for moments in between.
    async fn load(
        &self,
        key: &str,
        path: PathBuf,
        entry: Option<hearth_store::Manifest>,
    ) -> Result<Arc<LoadedModel>, ApiError> {
        let t0 = Instant::now();
        let opened = blocking(move || open_model(path, entry)).await??;
        let plan = self.reserve(key, &opened).await?;
        let bytes = plan.total;
        let started = {
            let (d, pool) = (self.defaults.clone(), self.pool.clone());
            let (key, keep_alive) = (key.to_string(), self.default_keep_alive);
            blocking(move || start_model(key, opened, plan, &d, pool, keep_alive, t0)).await
        };
        let mut loaded = self.lock();
        loaded.reserved = loaded.reserved.saturating_sub(bytes);
        let m = Arc::new(started??);
        loaded.models.insert(key.to_string(), m.clone());
        drop(loaded);
        if let Ok(mut k) = self.known.lock() {
            k.insert(key.to_string(), m.path.clone());
        }
        tracing::info!(model = %key, bytes = m.bytes, load_ms = m.load_duration.as_millis() as u64, "loaded");
        Ok(m)
    }

    /// What [`ModelManager::locate`] needs, owned, for a blocking thread.
    fn locator(&self) -> Locator {
        Locator {
            known: self.known.lock().map(|k| k.clone()).unwrap_or_default(),
            allow_paths: self.allow_paths,
            store: self.store.clone(),
            resolver: self.resolver.clone(),
        }
    }

    /// The plan for `opened` within the memory left, its bytes reserved.
    /// Without `--parallel` as many sequences (up to the default) as fit
    /// once every idle model is gone; then idle models are unloaded, least
    /// recently used first, until the plan fits. One that cannot fit even
    /// then is a 507 with the plan's numbers.
    async fn reserve(&self, key: &str, opened: &Opened) -> Result<hearth_plan::Plan, ApiError> {
        let d = &self.defaults;
        let trained = opened.model.config.n_ctx_train;
        let n_ctx = self.ctx_for(opened.entry.as_ref(), trained);
        if n_ctx > trained {
            tracing::warn!(
                model = %key,
                n_ctx,
                trained,
                "the context is beyond the length the model was trained for; its output may lose coherence past it"
            );
        }
        let plan_for = |parallel: usize, bytes: u64| {
            let opts = hearth_plan::Options {
                ctx: hearth_plan::Ctx::Tokens(n_ctx),
                parallel,
                kv: d.kv,
                n_ubatch: hearth_model::UBATCH,
            };
            let available = hearth_plan::Available {
                bytes,
                source: self.budget.source.clone(),
            };
            hearth_plan::check(key, opened.model.file(), &opts, &available)
        };
        let (victims, plan) = {
            let mut loaded = self.lock();
            let room = self.room(&loaded);
            let plan = self.fewer_sequences(|p| plan_for(p, room));
            let busy = self.budget.bytes.saturating_sub(room);
            let plan = plan.map_err(|e| does_not_fit(e, busy, self.budget.bytes))?;
            let victims = evict_for(&mut loaded, plan.total, self.budget.bytes);
            loaded.reserved += plan.total;
            (victims, plan)
        };
        unload_to_make_room(victims).await;
        Ok(plan)
    }

    /// The context a model is loaded with: `--ctx`, else its Modelfile's
    /// `num_ctx`, else its trained length up to [`DEFAULT_CTX`].
    fn ctx_for(&self, entry: Option<&hearth_store::Manifest>, trained: usize) -> usize {
        let modelfile_ctx = entry
            .and_then(|e| e.config.parameters.get("num_ctx")?.as_u64())
            .map(|n| n as usize);
        self.defaults
            .n_ctx
            .or(modelfile_ctx)
            .unwrap_or_else(|| trained.clamp(1, DEFAULT_CTX))
    }

    /// Memory a new model may take: the budget less what busy models and
    /// loads under way hold (idle models are unloaded to make room).
    fn room(&self, loaded: &Loaded) -> u64 {
        let idle: u64 = loaded
            .models
            .values()
            .filter(|m| m.is_idle())
            .map(|m| m.bytes)
            .sum();
        self.budget.bytes.saturating_sub(loaded.used() - idle)
    }

    /// `plan_for(parallel)` at `--parallel`, or without it at the default
    /// number of sequences, then fewer, down to one, until one fits.
    fn fewer_sequences<T, E>(&self, plan_for: impl Fn(usize) -> Result<T, E>) -> Result<T, E> {
        let mut p = self.defaults.n_parallel.unwrap_or(DEFAULT_PARALLEL);
        let mut plan = plan_for(p);
        while self.defaults.n_parallel.is_none() && plan.is_err() && p > 1 {
            p -= 1;
            plan = plan_for(p);
        }
        plan
    }

    /// What loading `name` would take now and whether it fits, without
    /// loading it (the verdict `/api/plan` gives before a load).
    pub fn plan(&self, name: &str) -> Result<hearth_plan::Plan, ApiError> {
        let path = self.locate(name)?;
        let file = hearth_gguf::GgufFile::open(&path)
            .map_err(|e| ApiError::bad_request(format!("{name}: {e}")))?;
        let bad = |e: hearth_plan::PlanError| ApiError::bad_request(format!("{name}: {e}"));
        let trained = hearth_plan::Estimator::new(&file)
            .map_err(bad)?
            .config
            .n_ctx_train;
        let n_ctx = self.ctx_for(self.store_entry(name, &path).as_ref(), trained);
        let available = hearth_plan::Available {
            bytes: self.room(&self.lock()),
            source: self.budget.source.clone(),
        };
        let plan_for = |parallel: usize| {
            let opts = hearth_plan::Options {
                ctx: hearth_plan::Ctx::Tokens(n_ctx),
                parallel,
                kv: self.defaults.kv,
                n_ubatch: hearth_model::UBATCH,
            };
            hearth_plan::check(name, &file, &opts, &available)
        };
        match self.fewer_sequences(plan_for) {
            Ok(p) => Ok(p),
            Err(hearth_plan::PlanError::DoesNotFit(d)) => Ok(d.plan),
            Err(e) => Err(bad(e)),
        }
    }

    /// Holds `bytes` of the memory budget for a model the engines do not
    /// run (a Whisper model): idle models are unloaded, least recently used
    /// first, to make room, and a 507 says when it cannot fit beside the
    /// busy ones. [`ModelManager::release_bytes`] gives the bytes back.
    pub async fn hold_bytes(&self, what: &str, bytes: u64) -> Result<(), ApiError> {
        let victims = {
            let mut loaded = self.lock();
            let room = self.room(&loaded);
            if bytes > room {
                return Err(ApiError::new(
                    axum::http::StatusCode::INSUFFICIENT_STORAGE,
                    format!(
                        "{what} needs {} and {} of the server's {} is free (idle models are unloaded to make room; retry when busy ones finish)",
                        hearth_plan::human_bytes(bytes),
                        hearth_plan::human_bytes(room),
                        hearth_plan::human_bytes(self.budget.bytes)
                    ),
                ));
            }
            let victims = evict_for(&mut loaded, bytes, self.budget.bytes);
            loaded.reserved += bytes;
            victims
        };
        unload_to_make_room(victims).await;
        Ok(())
    }

    /// Gives back bytes taken by [`ModelManager::hold_bytes`].
    pub fn release_bytes(&self, bytes: u64) {
        let mut loaded = self.lock();
        loaded.reserved = loaded.reserved.saturating_sub(bytes);
    }

    /// Unloads `name` now (its running requests are cancelled); false
    /// when it was not loaded.
    pub async fn unload(&self, name: &str) -> bool {
        let key = self.key(name);
        let Some(m) = self.lock().models.remove(&key) else {
            return false;
        };
        let _ = blocking(move || m.engine.shutdown()).await;
        tracing::info!(model = %key, "unloaded");
        true
    }

    /// Unloads idle models whose keep-alive has passed.
    pub async fn reap(&self) {
        let now = Instant::now();
        let expired: Vec<(String, Arc<LoadedModel>)> = {
            let mut loaded = self.lock();
            let keys: Vec<String> = loaded
                .models
                .iter()
                .filter(|(_, m)| {
                    m.life
                        .lock()
                        .is_ok_and(|l| l.active == 0 && l.expires.is_some_and(|e| e <= now))
                })
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter()
                .filter_map(|k| loaded.models.remove(&k).map(|m| (k, m)))
                .collect()
        };
        if expired.is_empty() {
            return;
        }
        let _ = blocking(move || {
            for (k, m) in expired {
                m.engine.shutdown();
                tracing::info!(model = %k, "unloaded after keep_alive");
            }
        })
        .await;
    }

    /// Forgets a name (and unloads it when loaded). The file stays.
    pub async fn forget(&self, name: &str) -> bool {
        if self.admit(name).is_err() {
            return false;
        }
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
        self.admit(source)?;
        if crate::security::is_path_like(dest) {
            return Err(ApiError::bad_request(
                "the destination must be a model name, not a path",
            ));
        }
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

/// Ends the engines of models taken out to make room, off the async
/// threads (a join waits a step).
async fn unload_to_make_room(victims: Vec<(String, Arc<LoadedModel>)>) {
    if victims.is_empty() {
        return;
    }
    let _ = blocking(move || {
        for (k, m) in victims {
            m.engine.shutdown();
            tracing::info!(model = %k, "unloaded to make room");
        }
    })
    .await;
}

/// Removes idle models, least recently used first, until `incoming` more
/// bytes fit `budget`; returns them for their engines to be shut down.
fn evict_for(loaded: &mut Loaded, incoming: u64, budget: u64) -> Vec<(String, Arc<LoadedModel>)> {
    let mut out = Vec::new();
    while loaded.used() + incoming > budget {
        let victim = loaded
            .models
            .iter()
            .filter_map(|(k, m)| {
                let l = m.life.lock().ok()?;
                (l.active == 0).then(|| (l.last_used, k.clone()))
            })
            .min();
        let Some((_, k)) = victim else { break };
        if let Some(m) = loaded.models.remove(&k) {
            out.push((k, m));
        }
    }
    out
}

/// A plan that does not fit even with every idle model unloaded: 507 with
/// the plan's numbers and what the other models hold.
fn does_not_fit(e: hearth_plan::PlanError, busy: u64, budget: u64) -> ApiError {
    match e {
        hearth_plan::PlanError::DoesNotFit(d) => {
            let held = if busy > 0 {
                format!(
                    "; busy models and loads under way hold {} of the server's {} (idle models are unloaded to make room; retry when they finish)",
                    hearth_plan::human_bytes(busy),
                    hearth_plan::human_bytes(budget)
                )
            } else {
                String::new()
            };
            ApiError::new(
                axum::http::StatusCode::INSUFFICIENT_STORAGE,
                format!("{d}{held}"),
            )
        }
        other => ApiError::internal(other.to_string()),
    }
}

fn start_model(
    name: String,
    o: Opened,
    plan: hearth_plan::Plan,
    d: &EngineDefaults,
    pool: Arc<hearth_ops::ThreadPool>,
    keep_alive: KeepAlive,
    t0: Instant,
) -> Result<LoadedModel, ApiError> {
    let engine = Engine::start_with_pool(
        o.model.clone(),
        o.tokenizer.clone(),
        EngineConfig {
            n_parallel: plan.parallel,
            n_ctx: plan.n_ctx,
            kv: d.kv,
            threads: pool.n_threads(),
            max_queue: d.max_queue,
            deterministic: d.deterministic,
        },
        pool,
    )
    .map_err(|e| {
        ApiError::internal(format!("starting the engine for {}: {e}", o.path.display()))
    })?;
    let max_token_bytes = (0..o.tokenizer.n_vocab() as u32)
        .map(|id| {
            let text = o.tokenizer.token_text(id).map_or(0, str::len);
            text.max(o.tokenizer.token_piece(id).len())
        })
        .max()
        .unwrap_or(1)
        .max(1);
    Ok(LoadedModel {
        name,
        path: o.path,
        max_token_bytes,
        model: o.model,
        tokenizer: o.tokenizer,
        template: o.template,
        engine,
        vocab_index: std::sync::OnceLock::new(),
        load_duration: t0.elapsed(),
        bytes: plan.total,
        file_size: o.meta.len(),
        modified: o.modified,
        digest: o.digest,
        config: o.entry.map(|e| e.config).unwrap_or_default(),
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
