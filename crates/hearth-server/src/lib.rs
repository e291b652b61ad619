//! hearth-server: the HTTP face of hearth — the Ollama API (`/api/*`,
//! NDJSON streaming), the OpenAI API (`/v1/*`, server-sent events) and a
//! few extras (`/health`, `/tokenize`, `/detokenize`, `/metrics`) over
//! models that each run on their own engine thread.
//!
//! Handlers never touch a model's weights or caches: they turn a request
//! into prompt tokens and [`GenParams`](hearth_engine::GenParams), queue it
//! on the model's engine and stream the events that come back; a client
//! that goes away drops the receiver, which cancels its sequence.
//!
//! Key types: [`ServerConfig`] (what `hearth serve` parses its flags into),
//! [`AppState`], [`router`] (the whole service, for `axum::serve` or for
//! tests through `tower::ServiceExt::oneshot`), [`ApiError`].
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! let cfg = hearth_server::ServerConfig::default();
//! let state = hearth_server::AppState::new(cfg.clone());
//! let app = hearth_server::router(state);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:11434").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

mod audio;
mod catalog;
mod conn;
mod embed;
mod engine;
mod error;
mod extras;
mod gen;
mod knowledge;
mod metrics;
mod modelfile;
mod models;
mod ollama;
mod openai;
mod openai_reply;
mod opening;
mod options;
mod params;
mod parts;
mod prompt;
mod rag;
mod rag_upload;
mod rerank;
mod route;
mod security;
mod show;
mod strict;
mod structured;
mod tools;
mod ui;
mod whisper;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use futures_util::StreamExt;
use hearth_model::KvType;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use conn::{serve, BodyTimeout, Timeouts};
pub use engine::{Constraint, Engine, EngineConfig, EngineError, EngineMetrics, Event, GenRequest};
pub use error::ApiError;
pub use models::{display_name, EngineDefaults, LoadedModel, ModelManager, Resolver};
pub use params::{parse_duration, parse_keep_alive, KeepAlive};
pub use route::ask_chat;
pub use security::{host_allowed, is_local_origin, is_path_like, Security, ADMIN_ROUTES};

/// Everything `hearth serve` configures.
#[derive(Clone)]
pub struct ServerConfig {
    pub engine: EngineDefaults,
    /// Bearer token required on every route but `/` and `/health`.
    pub api_key: Option<String>,
    /// Largest request body in bytes.
    pub max_body: usize,
    /// How long a connection may take to send a request head (and stay
    /// idle) and a request body.
    pub timeouts: Timeouts,
    pub keep_alive: KeepAlive,
    /// Origins allowed besides localhost ones (`HEARTH_ORIGINS`).
    pub extra_origins: Vec<String>,
    /// Memory the loaded models (weights and KV caches, as planned) may
    /// take together: the planner's figure (cgroups and
    /// `HEARTH_MEMORY_LIMIT` included). `None`: probed when the state is made.
    pub memory_budget: Option<hearth_plan::Available>,
    /// Finds models by name besides the store; paths always work.
    pub resolver: Option<Resolver>,
    /// The model store: names in it are found, listed by `/api/tags`,
    /// removed and copied by `/api/delete` and `/api/copy`, and `/api/pull`
    /// installs into it.
    pub store: Option<Arc<hearth_store::Store>>,
    /// Origins, Host names, management routes, paths and pull targets.
    pub security: Security,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            engine: EngineDefaults {
                n_parallel: None,
                n_ctx: None,
                kv: KvType::F16,
                threads: 2,
                max_queue: 512,
                deterministic: false,
            },
            api_key: None,
            max_body: 16 << 20,
            timeouts: Timeouts::default(),
            keep_alive: KeepAlive::For(Duration::from_secs(300)),
            extra_origins: Vec::new(),
            memory_budget: None,
            resolver: None,
            store: None,
            security: Security::default(),
        }
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// Upstreams and routes (`hearth serve --config`); `None`: every model is local.
    pub gateway: Option<Arc<hearth_route::upstream::Gateway>>,
    pub models: Arc<ModelManager>,
    pub metrics: Arc<metrics::Metrics>,
    pub config: Arc<ServerConfig>,
    /// The Whisper model `/v1/audio/*` holds.
    pub speech: Arc<audio::Speech>,
}

impl AppState {
    pub fn new(config: ServerConfig) -> AppState {
        AppState {
            gateway: None,
            models: Arc::new(
                ModelManager::new(
                    config.resolver.clone(),
                    config.store.clone(),
                    config.engine.clone(),
                    config.keep_alive,
                    config.memory_budget.clone().unwrap_or_else(|| {
                        hearth_plan::Available::probe().unwrap_or_else(|e| {
                            tracing::warn!(error = %e, "no memory figure; loads are not limited");
                            hearth_plan::Available {
                                bytes: u64::MAX,
                                source: hearth_plan::MemorySource::Unknown,
                            }
                        })
                    }),
                )
                .allow_paths(config.security.allow_paths),
            ),
            metrics: Arc::default(),
            config: Arc::new(config),
            speech: Arc::default(),
        }
    }

    /// Loads `name` and keeps it for the default keep-alive (`hearth serve MODEL`).
    /// A file given here is served by its display name whether or not
    /// requests may name paths.
    pub async fn preload(&self, name: &str) -> Result<String, ApiError> {
        let path = std::path::Path::new(name);
        if let Some(key) = self.preload_whisper(name).await? {
            return Ok(key);
        }
        let name = if path.is_file() {
            self.models.register_file(path)
        } else {
            name.to_string()
        };
        let m = self.models.acquire(&name, None).await?;
        Ok(m.model.name.clone())
    }

    /// Loads `name` when it is a Whisper model (a store name, or a ggml
    /// file or CTranslate2 folder, which becomes known by its name) for
    /// `/v1/audio`; `None` when it is not one.
    async fn preload_whisper(&self, name: &str) -> Result<Option<String>, ApiError> {
        let path = std::path::Path::new(name);
        let (key, file) = if path.exists() && hearth_speech::detect_whisper(path) {
            (self.models.register_file(path), path.to_path_buf())
        } else {
            match self.models.locate(name) {
                Ok(p) if hearth_speech::detect_whisper(&p) => (name.to_string(), p),
                _ => return Ok(None),
            }
        };
        self.speech.preload(&self.models, &key, file).await?;
        Ok(Some(key))
    }

    /// Unloads models whose keep-alive has passed, every second, for ever.
    pub fn spawn_reaper(&self) -> tokio::task::JoinHandle<()> {
        let models = self.models.clone();
        let (speech, keep_alive) = (self.speech.clone(), self.config.keep_alive);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                models.reap().await;
                speech.reap(keep_alive);
            }
        })
    }
}

/// What the per-request log line and metrics learn from a handler.
#[derive(Clone, Default)]
pub struct RequestLog(Arc<Mutex<LogFields>>);

#[derive(Default)]
struct LogFields {
    model: String,
    prompt_tokens: usize,
    gen_tokens: usize,
}

impl RequestLog {
    pub fn model(&self, name: &str) {
        if let Ok(mut f) = self.0.lock() {
            f.model = name.to_string();
        }
    }
    pub fn tokens(&self, prompt: usize, generated: usize) {
        if let Ok(mut f) = self.0.lock() {
            f.prompt_tokens = prompt;
            f.gen_tokens = generated;
        }
    }
}

/// Written when the response body is finished or dropped (so a stream's
/// line comes at its end, with its tokens and whole duration).
struct LogOnDrop {
    method: Method,
    path: String,
    route: String,
    status: StatusCode,
    started: Instant,
    log: RequestLog,
    metrics: Arc<metrics::Metrics>,
}

impl Drop for LogOnDrop {
    fn drop(&mut self) {
        self.metrics.request(&self.route, self.status.as_u16());
        let f = self
            .log
            .0
            .lock()
            .map(|f| (f.model.clone(), f.prompt_tokens, f.gen_tokens));
        let (model, prompt, gen) = f.unwrap_or_default();
        tracing::info!(
            method = %self.method,
            path = %self.path,
            model = %model,
            status = self.status.as_u16(),
            prompt_tokens = prompt,
            tokens = gen,
            ms = self.started.elapsed().as_millis() as u64,
            "request"
        );
    }
}

async fn log_requests(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = route_of(&path).to_string();
    let log = RequestLog::default();
    req.extensions_mut().insert(log.clone());
    let resp = next.run(req).await;
    let guard = LogOnDrop {
        method,
        path,
        route,
        status: resp.status(),
        started,
        log,
        metrics: st.metrics.clone(),
    };
    let (parts, body) = resp.into_parts();
    let stream = body.into_data_stream().map(move |chunk| {
        let _ = &guard;
        chunk
    });
    Response::from_parts(parts, axum::body::Body::from_stream(stream))
}

const ROUTES: [&str; 30] = [
    "/",
    "/api/version",
    "/api/generate",
    "/api/chat",
    "/api/embed",
    "/api/embeddings",
    "/api/tags",
    "/api/show",
    "/api/ps",
    "/api/delete",
    "/api/copy",
    "/api/create",
    "/api/pull",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/models",
    "/health",
    "/tokenize",
    "/detokenize",
    "/metrics",
    "/api/plan",
    "/api/rag",
    "/api/rag/query",
    "/api/rag/add",
    "/api/rag/delete",
    "/api/rag/create",
    "/api/rag/upload",
    "/v1/rerank",
    "/api/rerank",
];

/// The route a path belongs to, for metrics labels (unknown paths share one).
fn route_of(path: &str) -> &str {
    if path.starts_with("/ui/") {
        return "/ui/{file}";
    }
    if path.starts_with("/v1/models/") {
        return "/v1/models/{id}";
    }
    ROUTES
        .iter()
        .find(|r| **r == path)
        .copied()
        .unwrap_or("unmatched")
}

async fn require_key(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let Some(key) = &st.config.api_key else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    // The page and its files hold no secrets: a browser loads them before
    // it can ask for the key.
    if path == "/"
        || path == "/health"
        || path.starts_with("/ui/")
        || req.method() == Method::OPTIONS
    {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), key.as_bytes()) => next.run(req).await,
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "invalid API key").into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing API key: send Authorization: Bearer <key>",
        )
        .into_response(),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn cors(extra: Vec<String>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin
                .to_str()
                .is_ok_and(|o| security::origin_allowed(o, &extra))
        }))
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static(route::PRIVATE_HEADER),
        ])
        .expose_headers([
            header::RETRY_AFTER,
            prompt::TRUNCATED_HEADER,
            header::HeaderName::from_static(route::ROUTE_HEADER),
        ])
        .max_age(Duration::from_secs(3600))
}

/// The whole service: routes, errors in each API's shape, the security
/// guard (origins, Host, management routes), auth, CORS,
/// body cap, panic catching, and one log line per request.
pub fn router(state: AppState) -> Router {
    router_with_ui(state, true)
}

/// [`router`], with the chat page at `/` and `/ui/` (`ui`) or without it
/// (`hearth serve --no-ui`: `/` answers as Ollama does, `/ui/` is a 404).
pub fn router_with_ui(state: AppState, ui: bool) -> Router {
    let max_body = state.config.max_body;
    let origins = state.config.extra_origins.clone();
    let routes = if ui {
        Router::new()
            .route("/", get(ui::root).head(ui::root))
            .route("/ui/{file}", get(ui::asset))
    } else {
        Router::new().route("/", get(ollama::root).head(ollama::root))
    };
    routes
        .route("/api/version", get(ollama::version))
        .route("/api/generate", post(ollama::generate))
        .route("/api/chat", post(ollama::chat))
        .route("/api/embed", post(ollama::embed))
        .route("/api/embeddings", post(ollama::embeddings))
        .route("/api/tags", get(ollama::tags))
        .route("/api/show", post(show::show))
        .route("/api/ps", get(ollama::ps))
        .route("/api/delete", delete(ollama::delete))
        .route("/api/copy", post(ollama::copy))
        // Admin, like /api/copy: writes to the store.
        .route("/api/create", post(show::create))
        .route("/api/pull", post(ollama::pull))
        .route("/v1/chat/completions", post(openai::chat))
        .route("/v1/completions", post(openai::completions))
        .route("/v1/embeddings", post(openai::embeddings))
        .route(
            "/v1/audio/transcriptions",
            post(audio::transcriptions).layer(axum::extract::DefaultBodyLimit::max(
                max_body.max(audio::MAX_AUDIO_BODY),
            )),
        )
        .route(
            "/v1/audio/translations",
            post(audio::translations).layer(axum::extract::DefaultBodyLimit::max(
                max_body.max(audio::MAX_AUDIO_BODY),
            )),
        )
        .route("/v1/models", get(openai::models))
        .route("/v1/models/{*id}", get(openai::model))
        .route("/health", get(extras::health))
        .route("/tokenize", post(extras::tokenize))
        .route("/detokenize", post(extras::detokenize))
        .route("/metrics", get(extras::metrics))
        .route("/api/plan", post(extras::plan))
        .route("/api/rag", get(rag::list))
        .route("/api/rag/query", post(rag::query))
        // Admin: reads server-side files into, and deletes, knowledge bases.
        .route("/api/rag/add", post(rag::add))
        .route("/api/rag/delete", post(rag::delete))
        .route("/api/rag/create", post(rag_upload::create))
        .route("/api/rag/upload", post(rag_upload::upload))
        .route("/v1/rerank", post(rerank::rerank))
        .route("/api/rerank", post(rerank::rerank))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            route::intercept,
        ))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), require_key))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            conn::body_deadline,
        ))
        .layer(middleware::from_fn(error::shape_errors))
        .layer(cors(origins))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security::guard,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), log_requests))
        .with_state(state)
}
