//! Knowledge bases over HTTP, the same ones `hearth rag` keeps (`rag/`
//! beside the model store): `GET /api/rag` lists them, `POST /api/rag/add`
//! indexes server-side files (only under the root `hearth serve
//! --rag-root DIR` allows; without it the route refuses), `POST
//! /api/rag/query` retrieves, `POST /api/rag/delete` removes one. Vectors
//! come from the knowledge base's embedding model, loaded and scheduled by
//! the server like any model (its engine's embedding path).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hearth_rag::{ingest, search, Embedder, Kb, Limits, RagError};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::models::ModelUse;
use crate::params::JsonBody;
use crate::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryReq {
    kb: String,
    query: String,
    k: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddReq {
    kb: String,
    paths: Vec<String>,
    /// The embedding model of a new knowledge base (default: all-minilm).
    model: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KbReq {
    kb: String,
}

/// Most passages one query may ask for.
const MAX_K: usize = 100;

/// A loaded model's engine as an [`Embedder`], called from a blocking thread.
pub(crate) struct ServedEmbedder {
    pub use_: ModelUse,
    pub name: String,
    pub rt: tokio::runtime::Handle,
}

impl Embedder for ServedEmbedder {
    fn model_name(&self) -> &str {
        &self.name
    }
    fn dim(&self) -> usize {
        self.use_.model.model.config.n_embd
    }
    fn max_tokens(&self) -> usize {
        self.use_.model.engine.n_ctx()
    }
    fn count_tokens(&self, text: &str) -> usize {
        self.use_.model.tokenizer.encode(text, false, false).len()
    }
    fn embed(&self, texts: &[String]) -> hearth_rag::Result<Vec<Vec<f32>>> {
        let m = &self.use_.model;
        hearth_rag::engine_embed(&m.engine, &m.tokenizer, &self.rt, texts)
    }
}

pub(crate) fn rag_error(e: RagError) -> ApiError {
    match e {
        RagError::Invalid(_) | RagError::ModelMismatch { .. } => {
            ApiError::bad_request(e.to_string())
        }
        _ => ApiError::internal(e.to_string()),
    }
}

/// Where the knowledge bases live: `rag/` beside the model store.
pub(crate) fn kb_dir(st: &AppState) -> Result<PathBuf, ApiError> {
    st.config
        .store
        .as_ref()
        .and_then(|s| s.root().parent().map(|p| p.join("rag")))
        .ok_or_else(|| ApiError::not_found("this server has no model store, so no knowledge bases"))
}

/// The file of an existing knowledge base.
fn existing(st: &AppState, name: &str) -> Result<PathBuf, ApiError> {
    let path = hearth_rag::kb_file(&kb_dir(st)?, name).map_err(rag_error)?;
    if !path.is_file() {
        return Err(ApiError::not_found(format!(
            "no knowledge base named {name:?}"
        )));
    }
    Ok(path)
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("the knowledge base task failed: {e}")))?
}

/// The embedding model for knowledge base `path`, acquired: `requested`,
/// else the one the knowledge base records, else (for a new one) the
/// store's all-minilm — whose absence is an error saying how to fetch it.
pub(crate) async fn embed_model(
    st: &AppState,
    path: &Path,
    requested: Option<String>,
) -> Result<(String, ModelUse), ApiError> {
    let name = match requested {
        Some(m) => m,
        None if path.is_file() => recorded_model(path.to_path_buf()).await?,
        None => {
            let name = hearth_rag::DEFAULT_EMBED_MODEL;
            let use_ = st.models.acquire(name, None).await.map_err(|e| {
                ApiError::new(
                    e.status,
                    format!("the default embedding model {name} is not available ({e}): fetch it with scripts/fetch-models.sh minilm, or send \"model\" to name another"),
                )
            })?;
            return Ok((name.to_string(), use_));
        }
    };
    let use_ = st.models.acquire(&name, None).await?;
    Ok((name, use_))
}

pub(crate) async fn recorded_model(path: PathBuf) -> Result<String, ApiError> {
    blocking(move || Ok(Kb::open(&path).map_err(rag_error)?.model().0.to_string())).await
}

pub async fn list(State(st): State<AppState>) -> Result<Response, ApiError> {
    let dir = kb_dir(&st)?;
    let kbs = blocking(move || {
        Ok(hearth_rag::kb_names(&dir)
            .into_iter()
            .filter_map(|n| {
                let kb = Kb::open(&dir.join(format!("{n}.kb"))).ok()?;
                let s = kb.stats().ok()?;
                Some(json!({"name": n, "model": s.model, "dim": s.dim, "files": s.files, "chunks": s.chunks}))
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(json!({ "knowledge_bases": kbs })).into_response())
}

pub async fn query(
    State(st): State<AppState>,
    JsonBody(r): JsonBody<QueryReq>,
) -> Result<Response, ApiError> {
    let found = retrieve(&st, &r.kb, r.query, r.k.unwrap_or(5)).await?;
    Ok(Json(json!(found)).into_response())
}

/// The `k` best passages of knowledge base `kb` for `query` (hybrid
/// retrieval with the abstention decision), embedded by the model the
/// knowledge base records.
pub(crate) async fn retrieve(
    st: &AppState,
    kb: &str,
    query: String,
    k: usize,
) -> Result<search::Found, ApiError> {
    if k == 0 || k > MAX_K {
        return Err(ApiError::bad_request(format!(
            "k must be 1 to {MAX_K}, got {k}"
        )));
    }
    let path = existing(st, kb)?;
    let name = recorded_model(path.clone()).await?;
    let use_ = st.models.acquire(&name, None).await?;
    let rt = tokio::runtime::Handle::current();
    blocking(move || {
        let kb = Kb::open(&path).map_err(rag_error)?;
        let emb = ServedEmbedder { use_, name, rt };
        search::query(&kb, &emb, &query, k, None).map_err(rag_error)
    })
    .await
}

/// `path` when it is inside `root` (both resolved, links followed).
fn under_root(root: &Path, path: &str) -> Result<PathBuf, ApiError> {
    let refuse = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{path:?} is not under the folder this server may read (--rag-root)"),
        )
    };
    let root = std::fs::canonicalize(root).map_err(|_| refuse())?;
    let p = std::fs::canonicalize(path).map_err(|_| refuse())?;
    if p.starts_with(&root) {
        Ok(p)
    } else {
        Err(refuse())
    }
}

pub async fn add(
    State(st): State<AppState>,
    JsonBody(r): JsonBody<AddReq>,
) -> Result<Response, ApiError> {
    let Some(root) = st.config.security.rag_root.clone() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "adding server-side files is off: start the server with --rag-root DIR",
        ));
    };
    if r.paths.is_empty() {
        return Err(ApiError::bad_request("no paths to add"));
    }
    let paths = r
        .paths
        .iter()
        .map(|p| under_root(&root, p))
        .collect::<Result<Vec<_>, _>>()?;
    let dir = kb_dir(&st)?;
    let path = hearth_rag::kb_file(&dir, &r.kb).map_err(rag_error)?;
    let (name, use_) = embed_model(&st, &path, r.model).await?;
    let rt = tokio::runtime::Handle::current();
    let report = blocking(move || {
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::internal(format!("creating {}: {e}", dir.display())))?;
        let emb = ServedEmbedder { use_, name, rt };
        let mut kb = Kb::create(&path, &emb).map_err(rag_error)?;
        ingest::add(
            &mut kb,
            &emb,
            &paths,
            &Limits::default(),
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .map_err(rag_error)
    })
    .await?;
    Ok(Json(json!(report)).into_response())
}

pub async fn delete(
    State(st): State<AppState>,
    JsonBody(r): JsonBody<KbReq>,
) -> Result<Response, ApiError> {
    let path = existing(&st, &r.kb)?;
    blocking(move || hearth_rag::remove_kb(&path).map_err(rag_error)).await?;
    Ok(Json(json!({ "deleted": r.kb })).into_response())
}
