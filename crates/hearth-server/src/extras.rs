//! Routes beyond the two APIs: `/health`, `/tokenize`, `/detokenize`,
//! `/metrics`, `/api/plan`.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::metrics::Gauges;
use crate::params::JsonBody;
use crate::{AppState, RequestLog};

pub async fn health(State(st): State<AppState>) -> Json<Value> {
    let loaded: Vec<String> = st
        .models
        .loaded()
        .await
        .iter()
        .map(|m| m.name.clone())
        .collect();
    Json(json!({"status": "ok", "models": loaded}))
}

#[derive(Deserialize)]
pub struct TokenizeReq {
    model: String,
    content: String,
    #[serde(default = "yes")]
    add_special: bool,
}

fn yes() -> bool {
    true
}

pub async fn tokenize(
    State(st): State<AppState>,
    Extension(log): Extension<RequestLog>,
    JsonBody(r): JsonBody<TokenizeReq>,
) -> Result<Json<Value>, ApiError> {
    log.model(&r.model);
    let m = st.models.acquire(&r.model, None).await?;
    // A large body is tokenized off the async threads.
    let tok = m.model.tokenizer.clone();
    let tokens = tokio::task::spawn_blocking(move || tok.encode(&r.content, r.add_special, true))
        .await
        .map_err(|e| ApiError::internal(format!("tokenizing: {e}")))?;
    Ok(Json(json!({ "tokens": tokens })))
}

#[derive(Deserialize)]
pub struct DetokenizeReq {
    model: String,
    tokens: Vec<u32>,
}

pub async fn detokenize(
    State(st): State<AppState>,
    Extension(log): Extension<RequestLog>,
    JsonBody(r): JsonBody<DetokenizeReq>,
) -> Result<Json<Value>, ApiError> {
    log.model(&r.model);
    let m = st.models.acquire(&r.model, None).await?;
    let n_vocab = m.model.tokenizer.n_vocab();
    if let Some(bad) = r.tokens.iter().find(|&&t| t as usize >= n_vocab) {
        return Err(ApiError::bad_request(format!(
            "token id {bad} is outside the vocabulary ({n_vocab} tokens)"
        )));
    }
    Ok(Json(
        json!({ "content": m.model.tokenizer.decode(&r.tokens, false) }),
    ))
}

pub async fn metrics(State(st): State<AppState>) -> Response {
    let mut g = Gauges::default();
    for m in st.models.loaded().await {
        let e = m.engine.metrics();
        g.queued += e.queued;
        g.active += e.active;
        g.loaded_models += 1;
    }
    let mut r = st.metrics.render(&g).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanReq {
    model: String,
}

/// `POST /api/plan {model}`: whether the model fits in the memory left now
/// (idle models count as room), with the planner's numbers and, when it
/// does not fit, the planner's message; nothing is loaded.
pub async fn plan(
    State(st): State<AppState>,
    Extension(log): Extension<RequestLog>,
    JsonBody(r): JsonBody<PlanReq>,
) -> Result<Json<Value>, ApiError> {
    if r.model.trim().is_empty() {
        return Err(ApiError::bad_request("the request names no model"));
    }
    log.model(&r.model);
    let models = st.models.clone();
    let name = r.model.clone();
    // Opening the file's header reads the disk: off the async threads.
    let p = tokio::task::spawn_blocking(move || models.plan(&name))
        .await
        .map_err(|e| ApiError::internal(format!("planning: {e}")))??;
    let message = if p.fits {
        format!(
            "fits: needs {}, {} available",
            hearth_plan::human_bytes(p.total),
            hearth_plan::human_bytes(p.available.bytes)
        )
    } else {
        format!(
            "needs {}, you have {}",
            hearth_plan::human_bytes(p.total),
            hearth_plan::human_bytes(p.available.bytes)
        )
    };
    Ok(Json(json!({
        "model": r.model,
        "fits": p.fits,
        "need_bytes": p.total,
        "have_bytes": p.available.bytes,
        "message": message,
        "plan": p,
    })))
}
