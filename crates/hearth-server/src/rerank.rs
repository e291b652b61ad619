//! `POST /v1/rerank` and `/api/rerank`: a reranker (a model with `rank`
//! pooling) scores each document against the query, in the shape Jina's,
//! Cohere's and llama-server's clients use:
//! `{model, query, documents: [str | {text}], top_n?, return_documents?}`
//! → `{model, object, results: [{index, relevance_score, document?}], usage}`,
//! best first. The pairs are evaluated like embeddings: queued on the
//! model's engine, packed into micro-batches between decode steps.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use hearth_engine::rerank::{pair_limit, pooling_name, rerank_pairs, PairError};
use hearth_model::Pooling;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::gen;
use crate::options::{Checked, Fields, RequestFields};
use crate::params::parse_keep_alive;
use crate::{AppState, RequestLog};

/// A document: its text, or an object with a `text` field (Cohere, Jina).
#[derive(Deserialize)]
#[serde(untagged)]
enum Document {
    Text(String),
    Object { text: String },
}

impl Document {
    fn text(&self) -> &str {
        match self {
            Document::Text(t) | Document::Object { text: t } => t,
        }
    }
}

#[derive(Deserialize)]
pub struct RerankReq {
    model: String,
    query: String,
    documents: Vec<Document>,
    top_n: Option<u64>,
    return_documents: Option<bool>,
    /// Cut a pair longer than the context (its document's end) instead of
    /// refusing it.
    truncate: Option<bool>,
    keep_alive: Option<Value>,
}

static RERANK_FIELDS: Fields = Fields {
    prefix: "",
    known: &[&[
        "model",
        "query",
        "documents",
        "top_n",
        "return_documents",
        "truncate",
        "keep_alive",
    ]],
    harmless: &[],
    nested: None,
};

impl RequestFields for RerankReq {
    const FIELDS: &'static Fields = &RERANK_FIELDS;
}

/// Handles both routes.
pub async fn rerank(
    State(st): State<AppState>,
    Extension(log): Extension<RequestLog>,
    Checked(r): Checked<RerankReq>,
) -> Result<Response, ApiError> {
    log.model(&r.model);
    if r.documents.is_empty() {
        return Err(ApiError::bad_request(
            "documents must hold at least one document",
        ));
    }
    let top_n = match r.top_n {
        Some(0) => return Err(ApiError::bad_request("top_n must be at least 1")),
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        None => r.documents.len(),
    };
    let ka = r.keep_alive.as_ref().map(parse_keep_alive).transpose()?;
    let use_ = st.models.acquire(&r.model, ka).await?;
    let m = Arc::clone(&use_.model);
    let pooling = m.model.config.pooling;
    if !matches!(pooling, Pooling::Rank { .. }) {
        return Err(ApiError::bad_request(format!(
            "{} is not a reranker: {}",
            r.model,
            PairError::NotReranker(pooling_name(pooling))
        )));
    }
    let limit = pair_limit(&m.model, &m.engine);
    let truncate = r.truncate.unwrap_or(false);
    let query = r.query;
    let texts: Vec<String> = r.documents.iter().map(|d| d.text().to_string()).collect();
    let batch = {
        let m = Arc::clone(&m);
        tokio::task::spawn_blocking(move || {
            let docs: Vec<&str> = texts.iter().map(String::as_str).collect();
            rerank_pairs(&m.model, &m.tokenizer, &query, &docs, limit, truncate)
        })
        .await
        .map_err(|e| ApiError::internal(format!("tokenizing the pairs: {e}")))?
        .map_err(|e| match e {
            PairError::PairTooLong { .. } => {
                ApiError::bad_request(format!("{e} (send \"truncate\": true to cut the document)"))
            }
            e => ApiError::bad_request(e.to_string()),
        })?
    };
    let n_tokens: usize = batch.iter().map(Vec::len).sum();
    let scores = m.engine.rerank(batch).await.map_err(gen::engine_error)?;
    log.tokens(n_tokens, 0);
    let mut order: Vec<(usize, f32)> = scores.into_iter().enumerate().collect();
    // Best first; equal scores keep the documents' order.
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    order.truncate(top_n);
    let with_docs = r.return_documents.unwrap_or(false);
    let results: Vec<Value> = order
        .into_iter()
        .map(|(i, s)| {
            let mut v = json!({"index": i, "relevance_score": s});
            if with_docs {
                v["document"] = json!({"text": r.documents[i].text()});
            }
            v
        })
        .collect();
    Ok(Json(json!({
        "model": r.model,
        "object": "list",
        "results": results,
        "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
    }))
    .into_response())
}
