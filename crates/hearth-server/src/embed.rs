//! Embedding requests shared by `/api/embed`, `/api/embeddings` and
//! `/v1/embeddings`: tokenizing, the context limit (an input longer than
//! the model's context is a 400 naming both sizes unless the request asks
//! to truncate), the memory bound on the number of inputs, and Matryoshka
//! truncation of the vectors.
//!
//! Unlike Ollama, whose `/api/embed` truncates by default, hearth never
//! cuts an input unless the request says `"truncate": true`.

use std::sync::Arc;

use crate::error::ApiError;
use crate::gen;
use crate::models::{LoadedModel, ModelUse};
use crate::params::KeepAlive;
use crate::AppState;

/// The most tokens one input may have: the engine's context; for an
/// encoder also its learned positions and one micro-batch (it sees a text
/// in one pass).
pub(crate) fn input_limit(m: &LoadedModel) -> usize {
    let n_ctx = m.engine.n_ctx();
    let c = &m.model.config;
    match c.causal {
        true => n_ctx,
        false => n_ctx.min(c.n_ctx_train).min(hearth_model::UBATCH),
    }
    .max(1)
}

/// `tokens` of input `index` (of `count`) within `limit`: over it, an error
/// naming both sizes, or with `truncate` its first tokens with the closing
/// special tokens the tokenizer appends (`[SEP]`, EOS) kept at the end.
fn fit(
    m: &LoadedModel,
    mut tokens: Vec<u32>,
    limit: usize,
    truncate: bool,
    (index, count): (usize, usize),
) -> Result<Vec<u32>, ApiError> {
    if tokens.len() <= limit {
        return Ok(tokens);
    }
    if !truncate {
        let which = match count {
            1 => String::new(),
            _ => format!(" (input[{index}] of {count})"),
        };
        return Err(ApiError::bad_request(format!(
            "input {} tokens > context {limit}{which}; shorten it or send \"truncate\": true to keep its first {limit} tokens",
            tokens.len()
        )));
    }
    let closing = closing_tokens(m);
    let closing = match tokens.ends_with(&closing) && closing.len() < limit {
        true => closing,
        false => Vec::new(),
    };
    tokens.truncate(limit - closing.len());
    tokens.extend_from_slice(&closing);
    Ok(tokens)
}

/// The special tokens tokenizing appends after the text (`[SEP]` for
/// WordPiece, EOS where the file asks for it).
fn closing_tokens(m: &LoadedModel) -> Vec<u32> {
    let t = &m.tokenizer;
    let frame = t.encode("", true, false);
    let head = usize::from(t.add_bos() && frame.first() == t.bos().as_ref());
    frame[head..].to_vec()
}

/// Refuses, before tokenizing, a text that cannot fit `limit` tokens: no
/// token of the model spans more than `max_token_bytes` bytes.
fn check_bytes(
    m: &LoadedModel,
    text: &str,
    limit: usize,
    (index, count): (usize, usize),
) -> Result<(), ApiError> {
    let at_least = text.len() / m.max_token_bytes.max(1);
    if at_least <= limit {
        return Ok(());
    }
    let which = match count {
        1 => String::new(),
        _ => format!(" (input[{index}] of {count})"),
    };
    Err(ApiError::bad_request(format!(
        "input at least {at_least} tokens ({} bytes) > context {limit}{which}; shorten it or send \"truncate\": true to keep its first {limit} tokens",
        text.len()
    )))
}

/// Tokenizes `inputs` on a blocking thread and fits each to the model's
/// input limit (see [`fit`]).
async fn tokenize(
    m: &Arc<LoadedModel>,
    inputs: Vec<String>,
    truncate: bool,
) -> Result<Vec<Vec<u32>>, ApiError> {
    let m = Arc::clone(m);
    tokio::task::spawn_blocking(move || {
        let limit = input_limit(&m);
        let count = inputs.len();
        inputs
            .iter()
            .enumerate()
            .map(|(i, text)| {
                if !truncate {
                    check_bytes(&m, text, limit, (i, count))?;
                }
                let tokens = crate::prompt::tokenize(&m, text);
                fit(&m, tokens, limit, truncate, (i, count))
            })
            .collect()
    })
    .await
    .map_err(|e| ApiError::internal(format!("tokenizing the inputs: {e}")))?
}

/// Keeps the first `dims` values of each vector and scales it back to unit
/// length (Matryoshka embeddings); `dims` must be 1 to the model's size.
fn matryoshka(vecs: &mut [Vec<f32>], dims: Option<u64>) {
    let Some(d) = dims else { return };
    for v in vecs.iter_mut() {
        v.truncate(d as usize);
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
    }
}

/// Embeds `inputs`; returns the vectors (cut to `dimensions` when given)
/// and the prompt tokens counted.
pub(crate) async fn embed_texts(
    st: &AppState,
    model: &str,
    inputs: Vec<String>,
    truncate: bool,
    dimensions: Option<u64>,
    ka: Option<KeepAlive>,
) -> Result<(Vec<Vec<f32>>, usize, ModelUse), ApiError> {
    if inputs.is_empty() {
        return Err(ApiError::bad_request("no input to embed"));
    }
    let use_ = st.models.acquire(model, ka).await?;
    let m = &use_.model;
    if let hearth_model::Pooling::Rank { .. } = m.model.config.pooling {
        return Err(ApiError::bad_request(format!(
            "{model} is a reranker (rank pooling): it scores query-document pairs at /v1/rerank and /api/rerank, not embeddings"
        )));
    }
    let n_embd = m.model.config.n_embd;
    if let Some(d) = dimensions.filter(|&d| d == 0 || d > n_embd as u64) {
        return Err(ApiError::bad_request(format!(
            "dimensions {d}: {model} embeds in {n_embd} dimensions (ask for 1 to {n_embd})"
        )));
    }
    // The answer holds a vector per input, in memory and as JSON text
    // (about 16 bytes a dimension together): as many as the memory the
    // loaded models leave free can hold.
    let per_input = (n_embd as u64).saturating_mul(16).max(1);
    let most = st.models.free_bytes() / per_input;
    if inputs.len() as u64 > most {
        return Err(ApiError::bad_request(format!(
            "{} inputs: the answer would need {} bytes and {} are free; send at most {most} per request",
            inputs.len(),
            per_input.saturating_mul(inputs.len() as u64),
            st.models.free_bytes()
        )));
    }
    let batch = tokenize(m, inputs, truncate).await?;
    let n_tokens = batch.iter().map(Vec::len).sum();
    let mut vecs = m.engine.embed(batch).await.map_err(gen::engine_error)?;
    matryoshka(&mut vecs, dimensions);
    Ok((vecs, n_tokens, use_))
}
