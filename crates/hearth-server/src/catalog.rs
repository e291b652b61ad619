//! Ollama's model catalogue routes: `/api/tags` (the store and the known
//! files, Whisper models among them), `/api/ps` (what is loaded), `/api/delete`, `/api/copy`,
//! `/api/pull`, and the `details` every listing shares.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hearth_gguf::GgufFile;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::models::{display_name, LoadedModel};
use crate::ollama::{line, ndjson};
use crate::params::JsonBody;
use crate::prompt::rfc3339;
use crate::AppState;

/// Whether hearth's model layer builds a configuration from a header
/// (architecture, hyper-parameters), checked before a pull downloads.
fn model_runs(h: &GgufFile) -> std::result::Result<(), String> {
    hearth_model::Config::from_gguf(h)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// [`details`] with the parent a Modelfile named.
pub(crate) fn details_of(file: &GgufFile, config: &hearth_store::ModelConfig) -> Value {
    let mut d = details(file);
    if let Some(p) = &config.parent {
        d["parent_model"] = json!(p);
    }
    d
}

/// Ollama's `details` of a model file.
pub(crate) fn details(file: &GgufFile) -> Value {
    let family = file.architecture().unwrap_or("unknown").to_string();
    let params: u64 = file.tensors().iter().map(|t| t.n_elements()).sum();
    // The file type, as `hearth list` shows it (not the type of the
    // largest tensor, which is often the output's Q8_0 or Q6_K).
    let quant = hearth_store::file_type_of(file).unwrap_or_default();
    json!({
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": parameter_size(params),
        "quantization_level": quant,
    })
}

pub(crate) fn parameter_size(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.1}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.0}M", n as f64 / 1e6),
        n => format!("{:.0}K", n as f64 / 1e3),
    }
}

/// A stable identifier of a model file (from its path, size and time; not
/// a content hash).
pub(crate) fn digest(path: &Path, size: u64, modified: SystemTime) -> String {
    use std::hash::{Hash, Hasher};
    (0u8..4)
        .map(|salt| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (salt, path, size, modified).hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect()
}

fn file_entry(name: &str, path: &Path) -> Option<Value> {
    let meta = std::fs::metadata(path).ok()?;
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let file = GgufFile::open(path).ok()?;
    Some(json!({
        "name": name,
        "model": name,
        "modified_at": rfc3339(modified),
        "size": meta.len(),
        "digest": digest(path, meta.len(), modified),
        "details": details(&file),
    }))
}

pub async fn tags(State(st): State<AppState>) -> Json<Value> {
    let known = st.models.known();
    let store = st.models.store().cloned();
    let speech = st.speech.clone();
    // A file that is not GGUF may be a Whisper model.
    let entry = move |name: &str, path: &Path| {
        file_entry(name, path).or_else(|| speech.facts.tag_entry(name, path))
    };
    let models: Vec<Value> = tokio::task::spawn_blocking(move || {
        let mut out: Vec<Value> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut store_names = std::collections::HashSet::new();
        if let Some(store) = &store {
            for m in store.list().unwrap_or_default() {
                store_names.insert(display_name(&m.name));
                let path = store.blob_path(&m.sha256);
                if let Some(mut e) = entry(&m.name, &path) {
                    if let Some(p) = &m.config.parent {
                        e["details"]["parent_model"] = json!(p);
                    }
                    e["digest"] = json!(m.sha256);
                    e["modified_at"] = json!(rfc3339(
                        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(m.created)
                    ));
                    seen.insert(path);
                    out.push(e);
                }
            }
        }
        out.extend(
            known
                .iter()
                // A file loaded by path that the store holds is listed once,
                // under its store name.
                .filter(|(n, p)| !seen.contains(p) && !store_names.contains(n))
                .filter_map(|(n, p)| entry(n, p)),
        );
        out
    })
    .await
    .unwrap_or_default();
    Json(json!({ "models": models }))
}

fn ps_entry(m: &LoadedModel) -> Value {
    let expires = m.expires_at().unwrap_or_else(|| {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(253_402_300_799)
    });
    json!({
        "name": m.name,
        "model": m.name,
        "size": m.bytes,
        "digest": m.digest,
        "details": details_of(m.model.file(), &m.config),
        "expires_at": rfc3339(expires),
        "size_vram": 0,
        "context_length": m.engine.n_ctx(),
    })
}

pub async fn ps(State(st): State<AppState>) -> Json<Value> {
    let mut models: Vec<Value> = st
        .models
        .loaded()
        .await
        .iter()
        .map(|m| ps_entry(m))
        .collect();
    models.extend(st.speech.ps_entry(st.config.keep_alive));
    Json(json!({ "models": models }))
}

#[derive(Deserialize)]
pub struct NameReq {
    model: Option<String>,
    name: Option<String>,
}

impl NameReq {
    pub(crate) fn get(&self) -> Result<&str, ApiError> {
        self.model
            .as_deref()
            .or(self.name.as_deref())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::bad_request("model is required"))
    }
}

pub async fn delete(
    State(st): State<AppState>,
    JsonBody(r): JsonBody<NameReq>,
) -> Result<Response, ApiError> {
    let name = r.get()?;
    let forgot = st.models.forget(name).await;
    let removed = match st.models.store() {
        Some(store) if store.get(name).ok().flatten().is_some() => {
            store
                .remove(name)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            true
        }
        _ => false,
    };
    if forgot || removed {
        Ok(StatusCode::OK.into_response())
    } else {
        Err(ApiError::model_not_found(name))
    }
}

#[derive(Deserialize)]
pub struct CopyReq {
    source: String,
    destination: String,
}

pub async fn copy(
    State(st): State<AppState>,
    JsonBody(r): JsonBody<CopyReq>,
) -> Result<Response, ApiError> {
    st.models.copy(&r.source, &r.destination)?;
    Ok(StatusCode::OK.into_response())
}

#[derive(Deserialize)]
pub struct PullReq {
    model: Option<String>,
    name: Option<String>,
    stream: Option<bool>,
}

/// Ollama's `/api/pull`: installs a model into the store (`hf.co/OWNER/REPO[:QUANT]`
/// or a URL), streaming the store's progress as Ollama's NDJSON lines; with
/// `stream: false`, one object when it is done. A client that goes away
/// stops the download (the next pull resumes it).
pub async fn pull(
    State(st): State<AppState>,
    JsonBody(r): JsonBody<PullReq>,
) -> Result<Response, ApiError> {
    let name = r
        .model
        .or(r.name)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("model is required"))?;
    let Some(store) = st.models.store().cloned() else {
        return match st.models.locate(&name) {
            Ok(_) => Ok(Json(json!({ "status": "success" })).into_response()),
            Err(_) => Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                format!(
                    "model '{}' is not here and this server has no model store to pull into",
                    display_name(&name)
                ),
            )),
        };
    };
    let public_only = !st.config.security.insecure_pull;
    if public_only && name.contains("://") && hearth_store::name::parse_hf(&name).is_none() {
        let url = name.clone();
        tokio::task::spawn_blocking(move || hearth_store::check_public_url(&url))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(|e| ApiError::new(StatusCode::FORBIDDEN, e.to_string()))?;
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = cancel.clone();
    tokio::task::spawn_blocking(move || {
        let opts = hearth_store::PullOptions {
            public_only,
            accept: Some(model_runs),
            ..hearth_store::PullOptions::from_env()
        };
        let mut progress = |p: hearth_store::Progress| {
            if tx.send(p.to_ollama_json()).is_err() {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        };
        if let Err(e) = hearth_store::pull(&store, &name, &opts, &mut progress, &stop) {
            let status = match e {
                hearth_store::StoreError::NotFound { .. }
                | hearth_store::StoreError::NoGguf { .. }
                | hearth_store::StoreError::NoSuchQuant { .. } => 404,
                hearth_store::StoreError::Http { status, .. } => status,
                hearth_store::StoreError::BadName { .. } => 400,
                hearth_store::StoreError::NotRunnable { .. } => 422,
                hearth_store::StoreError::NotPublic { .. } => 403,
                _ => 500,
            };
            let _ = tx.send(json!({ "error": e.to_string(), "code": status }));
        }
    });
    if r.stream == Some(false) {
        let mut last = json!({});
        while let Some(v) = rx.recv().await {
            last = v;
        }
        drop(cancel);
        if let Some(msg) = last.get("error").and_then(Value::as_str) {
            let code = last["code"].as_u64().unwrap_or(500) as u16;
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Err(ApiError::new(status, msg.to_string()));
        }
        return Ok(Json(last).into_response());
    }
    let s = futures_util::stream::unfold(rx, |mut rx| async move {
        let mut v = rx.recv().await?;
        if let Some(o) = v.as_object_mut() {
            o.remove("code");
        }
        Some((line(&v), rx))
    });
    Ok(ndjson(Body::from_stream(s), 0))
}
