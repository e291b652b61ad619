//! The OpenAI API: `/v1/chat/completions`, `/v1/completions`,
//! `/v1/embeddings`, `/v1/models`. Replies and streams: [`crate::openai_reply`].

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use hearth_engine::GenParams;
use hearth_tokenizer::RenderOptions;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::gen::{self, Run};
use crate::knowledge::{self, Grounding};
use crate::models::{LoadedModel, ModelUse};
use crate::openai_reply::{new_id, now_secs, respond, Reply};
use crate::options::{Checked, Fields, RequestFields, Sampling, SAMPLING};
use crate::params::OneOrMany;
use crate::parts::{self, PartsSpec};
use crate::prompt::{self, PromptText};
use crate::tools::{self, ToolChoice};
use crate::{structured, AppState, RequestLog};

#[derive(Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// Fields OpenAI defines that cannot change what is generated: accepted and
/// ignored (`user` included: hearth logs it nowhere).
const HARMLESS: &[&str] = &[
    "user",
    "metadata",
    "store",
    "service_tier",
    "parallel_tool_calls",
    "prediction",
];

/// Fields of both endpoints (OpenAI's, plus hearth's and llama-server's
/// `top_k`, `min_p`, `typical_p`, `repeat_penalty`, `repeat_last_n`,
/// `mirostat*`, `ignore_eos` and `truncate`).
const COMMON: &[&str] = &[
    "model",
    "max_tokens",
    "stream",
    "stream_options",
    "n",
    "truncate",
    "logit_bias",
    "ignore_eos",
    "logprobs",
];

static CHAT_FIELDS: Fields = Fields {
    prefix: "",
    known: &[
        SAMPLING,
        COMMON,
        &[
            "messages",
            "max_completion_tokens",
            "tools",
            "tool_choice",
            "response_format",
            "top_logprobs",
            "knowledge",
        ],
    ],
    harmless: HARMLESS,
    nested: None,
};

static COMPLETION_FIELDS: Fields = Fields {
    prefix: "",
    known: &[SAMPLING, COMMON, &["prompt", "suffix", "echo", "best_of"]],
    harmless: HARMLESS,
    nested: None,
};

impl RequestFields for ChatReq {
    const FIELDS: &'static Fields = &CHAT_FIELDS;
}

impl RequestFields for CompletionReq {
    const FIELDS: &'static Fields = &COMPLETION_FIELDS;
}

/// `/v1/embeddings`' fields.
static EMBEDDING_FIELDS: Fields = Fields {
    prefix: "",
    known: &[&[
        "model",
        "input",
        "encoding_format",
        "dimensions",
        "truncate",
    ]],
    harmless: HARMLESS,
    nested: None,
};

impl RequestFields for EmbeddingsReq {
    const FIELDS: &'static Fields = &EMBEDDING_FIELDS;
}

/// Choices one request may ask for (`n` times the prompts).
const MAX_CHOICES: usize = 16;

/// Fields shared by chat and text completions.
#[derive(Deserialize)]
pub struct Common {
    model: String,
    #[serde(flatten)]
    sampling: Sampling,
    max_tokens: Option<i64>,
    max_completion_tokens: Option<i64>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    n: Option<i64>,
    #[serde(default)]
    truncate: bool,
    logit_bias: Option<HashMap<String, f32>>,
    #[serde(default)]
    ignore_eos: bool,
}

impl Common {
    /// The generation parameters (the logit bias is checked against the
    /// vocabulary later, in [`logit_bias`]).
    fn params(&self, default_max: Option<usize>) -> Result<GenParams, ApiError> {
        self.params_with(&self.sampling, default_max)
    }

    /// [`params`](Common::params) over the model's Modelfile parameters:
    /// each sampling field the request leaves out comes from them, and
    /// their `num_predict` replaces the endpoint's default token limit.
    fn params_for(
        &self,
        m: &LoadedModel,
        default_max: Option<usize>,
    ) -> Result<GenParams, ApiError> {
        match crate::modelfile::under(m, &self.sampling)? {
            None => self.params(default_max),
            Some(s) => self.params_with(&s, crate::modelfile::num_predict(m).or(default_max)),
        }
    }

    fn params_with(
        &self,
        sampling: &Sampling,
        default_max: Option<usize>,
    ) -> Result<GenParams, ApiError> {
        let mut p = sampling.to_params()?;
        p.max_tokens = match self.max_completion_tokens.or(self.max_tokens) {
            None => default_max,
            Some(n) => Some(usize::try_from(n).map_err(|_| {
                ApiError::bad_request(format!("invalid max_tokens {n}: expected 0 or more"))
            })?),
        };
        p.ignore_eos = self.ignore_eos;
        Ok(p)
    }

    fn n(&self) -> Result<usize, ApiError> {
        match self.n {
            None => Ok(1),
            Some(n) => usize::try_from(n)
                .ok()
                .filter(|n| (1..=MAX_CHOICES).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!("invalid n {n}: expected 1 to {MAX_CHOICES}"))
                }),
        }
    }

    fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }
}

/// OpenAI's `logit_bias`: token id (as a string) → bias in [-100, 100],
/// added to the logit; -100 bans the token (it becomes `-inf`).
fn logit_bias(
    bias: Option<&HashMap<String, f32>>,
    n_vocab: usize,
) -> Result<Vec<(u32, f32)>, ApiError> {
    let mut out = Vec::new();
    for (k, &v) in bias.into_iter().flatten() {
        let id = k
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|&id| (id as usize) < n_vocab)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid logit_bias key '{k}': expected a token id below {n_vocab}"
                ))
            })?;
        if !(-100.0..=100.0).contains(&v) {
            return Err(ApiError::bad_request(format!(
                "invalid logit_bias {v} for token {id}: expected -100 to 100"
            )));
        }
        out.push((id, if v <= -100.0 { f32::NEG_INFINITY } else { v }));
    }
    out.sort_by_key(|e| e.0);
    Ok(out)
}

/// Starts `n` runs of `prompt` (choice `j` draws with seed `seed + j` when a
/// seed was given, else each its own random seed); the first uses `first`,
/// the others acquire the model again.
#[allow(clippy::too_many_arguments)]
async fn start_runs(
    st: &AppState,
    first: ModelUse,
    prompt: &[u32],
    params: &GenParams,
    n: usize,
    grammar: Option<&std::sync::Arc<hearth_grammar::Grammar>>,
    log: &RequestLog,
    runs: &mut Vec<Run>,
) -> Result<(), ApiError> {
    let mut first = Some(first);
    for j in 0..n {
        let use_ = match first.take() {
            Some(u) => u,
            None => st.models.acquire(&runs_model(runs), None).await?,
        };
        let mut p = params.clone();
        p.sampler.seed = params.sampler.seed.map(|s| s.wrapping_add(j as u64));
        let constraint = structured::constraint(grammar, &use_.model);
        runs.push(gen::start(
            use_,
            prompt.to_vec(),
            p,
            constraint,
            st.metrics.clone(),
            log.clone(),
        )?);
    }
    Ok(())
}

fn runs_model(runs: &[Run]) -> String {
    runs.first()
        .map(|r| r.model.model.name.clone())
        .unwrap_or_default()
}

/// Fills in what needs the model: the logit bias against its vocabulary
/// and the token limit against the room left in the context.
fn fit_params(
    c: &Common,
    params: &mut GenParams,
    m: &LoadedModel,
    n_prompt: usize,
) -> Result<(), ApiError> {
    params.sampler.logit_bias = logit_bias(c.logit_bias.as_ref(), m.tokenizer.n_vocab())?;
    let room = m.engine.n_ctx() - n_prompt;
    params.max_tokens = Some(params.max_tokens.map_or(room, |x| x.min(room)));
    Ok(())
}

#[derive(Deserialize)]
pub struct ChatReq {
    #[serde(flatten)]
    common: Common,
    messages: Vec<Value>,
    #[serde(default)]
    tools: Vec<Value>,
    tool_choice: Option<Value>,
    response_format: Option<Value>,
    #[serde(default)]
    logprobs: bool,
    top_logprobs: Option<i64>,
    /// A knowledge base to answer from (see [`crate::knowledge`]).
    knowledge: Option<Value>,
}

/// Chat's `top_logprobs` (0 to 20, only with `logprobs: true`).
fn chat_logprobs(logprobs: bool, top: Option<i64>) -> Result<Option<usize>, ApiError> {
    match (logprobs, top) {
        (false, None) => Ok(None),
        (false, Some(_)) => Err(ApiError::bad_request("top_logprobs needs logprobs: true")),
        (true, None) => Ok(Some(0)),
        (true, Some(n)) => usize::try_from(n)
            .ok()
            .filter(|&n| n <= 20)
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(format!("invalid top_logprobs {n}: expected 0 to 20"))
            }),
    }
}

pub async fn chat(
    State(st): State<AppState>,
    Extension(log): Extension<RequestLog>,
    Checked(r): Checked<ChatReq>,
) -> Result<Response, ApiError> {
    let c = &r.common;
    log.model(&c.model);
    if r.messages.is_empty() {
        return Err(ApiError::bad_request("messages must not be empty"));
    }
    let mut params = c.params(None)?;
    params.logprobs = chat_logprobs(r.logprobs, r.top_logprobs)?;
    let n = c.n()?;
    let choice = tools::parse_tool_choice(r.tool_choice.as_ref())?;
    let names = tools::tool_names(&r.tools)?;
    if let ToolChoice::Named(n) = &choice {
        if !names.contains(n) {
            return Err(ApiError::bad_request(format!(
                "tool_choice names '{n}', which is not in tools"
            )));
        }
    }
    let use_tools = !names.is_empty() && choice != ToolChoice::None;
    if use_tools && r.response_format.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(ApiError::bad_request(
            "tools and response_format cannot be combined",
        ));
    }
    let mut msgs = prompt::chat_messages(&r.messages)?;
    let grounding = knowledge::ground(&st, r.knowledge.as_ref(), &mut msgs).await?;
    if let Some(Grounding::Abstained) = grounding {
        st.models.locate(&c.model)?;
        return Ok(knowledge::openai_abstained(&c.model, c.stream));
    }
    let use_ = st.models.acquire(&c.model, None).await?;
    let m = use_.model.clone();
    if !m.config.parameters.is_empty() {
        let logprobs = params.logprobs;
        params = c.params_for(&m, None)?;
        params.logprobs = logprobs;
    }
    let format = parts::format_of(&m);
    // The template's own tool syntax when it has one and the model may
    // choose; otherwise a system message and a JSON reply the grammar holds.
    let native = use_tools && choice == ToolChoice::Auto && parts::native_tools(&format);
    let mut opts = RenderOptions::new(true);
    let (grammar, msgs) = if native {
        opts.tools = parts::chat_tools(&r.tools);
        (None, msgs)
    } else if use_tools {
        (
            Some(tools::grammar(&r.tools, &choice)?),
            prompt::with_json_tools(msgs, Some(tools::system_prompt(&r.tools, &choice)?)),
        )
    } else {
        (
            structured::from_response_format(r.response_format.as_ref())?,
            prompt::with_json_tools(msgs, None),
        )
    };
    // Harmony's channel markers are control tokens: the parser needs their text.
    params.render_special = format.harmony;
    let n_ctx = m.engine.n_ctx();
    let fitted = prompt::prepare_one(&m, PromptText::Chat(msgs, opts), n_ctx, c.truncate).await?;
    fit_params(c, &mut params, &m, fitted.tokens.len())?;
    let reply = Reply {
        id: new_id("chatcmpl"),
        created: now_secs(),
        model: c.model.clone(),
        chat: true,
        include_usage: c.include_usage(),
        tools: (use_tools && !native).then_some(names),
        parts: PartsSpec::new(format, native, fitted.opens_thinking),
        dropped: fitted.dropped,
        logprobs: params.logprobs.is_some(),
        tok: m.tokenizer.clone(),
        prompt_tokens: fitted.tokens.len(),
        citations: knowledge::citations(&grounding),
    };
    let mut runs = Vec::with_capacity(n);
    start_runs(
        &st,
        use_,
        &fitted.tokens,
        &params,
        n,
        grammar.as_ref(),
        &log,
        &mut runs,
    )
    .await?;
    respond(runs, reply, c.stream).await
}

#[derive(Deserialize)]
pub struct CompletionReq {
    #[serde(flatten)]
    common: Common,
    prompt: Value,
    suffix: Option<String>,
    #[serde(default)]
    echo: bool,
    best_of: Option<i64>,
    logprobs: Option<i64>,
}

/// One prompt of `/v1/completions`: text, or token ids used exactly as
/// given (no BOS is added).
enum PromptIn {
    Text(String),
    Ids(Vec<u32>),
}

/// `prompt`: a string, a list of strings, a list of token ids, or a list of
/// such lists.
fn prompts(v: &Value) -> Result<Vec<PromptIn>, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid prompt: expected a string, a list of strings, a list of token ids or a list of token-id lists",
        )
    };
    let ids = |a: &[Value]| -> Result<Vec<u32>, ApiError> {
        a.iter()
            .map(|t| {
                t.as_u64()
                    .and_then(|t| u32::try_from(t).ok())
                    .ok_or_else(bad)
            })
            .collect()
    };
    let out = match v {
        Value::String(s) => vec![PromptIn::Text(s.clone())],
        Value::Array(a) if a.iter().all(Value::is_string) && !a.is_empty() => a
            .iter()
            .map(|s| PromptIn::Text(s.as_str().unwrap_or_default().to_string()))
            .collect(),
        Value::Array(a) if a.iter().all(Value::is_array) && !a.is_empty() => a
            .iter()
            .map(|x| {
                Ok(PromptIn::Ids(ids(x
                    .as_array()
                    .map_or(&[][..], Vec::as_slice))?))
            })
            .collect::<Result<_, ApiError>>()?,
        Value::Array(a) => vec![PromptIn::Ids(ids(a)?)],
        _ => return Err(bad()),
    };
    Ok(out)
}

/// Completions' `logprobs` (0 to 20 alternatives; OpenAI allows up to 5).
fn completion_logprobs(n: Option<i64>) -> Result<Option<usize>, ApiError> {
    n.map(|n| {
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= 20)
            .ok_or_else(|| ApiError::bad_request(format!("invalid logprobs {n}: expected 0 to 20")))
    })
    .transpose()
}

pub async fn completions(
    State(st): State<AppState>,
    Extension(log): Extension<RequestLog>,
    Checked(r): Checked<CompletionReq>,
) -> Result<Response, ApiError> {
    let c = &r.common;
    log.model(&c.model);
    let inputs = prompts(&r.prompt)?;
    if r.suffix.as_deref().is_some_and(|s| !s.is_empty()) || r.echo {
        return Err(ApiError::bad_request("suffix and echo are not supported"));
    }
    let n = c.n()?;
    if r.best_of.is_some_and(|b| b != n as i64) {
        return Err(ApiError::bad_request(
            "best_of other than n is not supported (hearth returns every choice it generates)",
        ));
    }
    if inputs.len() * n > MAX_CHOICES {
        return Err(ApiError::bad_request(format!(
            "{} prompts times n = {n} is more than {MAX_CHOICES} choices",
            inputs.len()
        )));
    }
    // OpenAI's default for this endpoint.
    let mut params = c.params(Some(16))?;
    params.logprobs = completion_logprobs(r.logprobs)?;
    let use_ = st.models.acquire(&c.model, None).await?;
    let m = use_.model.clone();
    if !m.config.parameters.is_empty() {
        let logprobs = params.logprobs;
        params = c.params_for(&m, Some(16))?;
        params.logprobs = logprobs;
    }
    let n_vocab = m.tokenizer.n_vocab();
    let n_ctx = m.engine.n_ctx();
    let mut fitted = Vec::with_capacity(inputs.len());
    for p in inputs {
        let tokens = match p {
            PromptIn::Text(t) if t.is_empty() => {
                return Err(ApiError::bad_request("prompt must not be empty"))
            }
            PromptIn::Text(t) => {
                fitted.push(prompt::prepare_one(&m, PromptText::Text(t), n_ctx, c.truncate).await?);
                continue;
            }
            PromptIn::Ids(ids) if ids.is_empty() => {
                return Err(ApiError::bad_request("prompt must not be empty"))
            }
            PromptIn::Ids(ids) => {
                if let Some(bad) = ids.iter().find(|&&t| t as usize >= n_vocab) {
                    return Err(ApiError::bad_request(format!(
                        "prompt token id {bad} is outside the vocabulary ({n_vocab} tokens)"
                    )));
                }
                ids
            }
        };
        fitted.push(prompt::fit(&m, tokens, n_ctx, c.truncate)?);
    }
    let reply = Reply {
        id: new_id("cmpl"),
        created: now_secs(),
        model: c.model.clone(),
        chat: false,
        include_usage: c.include_usage(),
        tools: None,
        parts: None,
        dropped: fitted.iter().map(|f| f.dropped).sum(),
        logprobs: params.logprobs.is_some(),
        tok: m.tokenizer.clone(),
        prompt_tokens: fitted.iter().map(|f| f.tokens.len()).sum(),
        citations: None,
    };
    let mut runs = Vec::with_capacity(fitted.len() * n);
    let mut first = Some(use_);
    for f in &fitted {
        let mut p = params.clone();
        fit_params(c, &mut p, &m, f.tokens.len())?;
        let use_ = match first.take() {
            Some(u) => u,
            None => st.models.acquire(&c.model, None).await?,
        };
        start_runs(&st, use_, &f.tokens, &p, n, None, &log, &mut runs).await?;
    }
    respond(runs, reply, c.stream).await
}

#[derive(Deserialize)]
pub struct EmbeddingsReq {
    model: String,
    input: OneOrMany,
    encoding_format: Option<String>,
    /// Matryoshka truncation: the first `dimensions` values, renormalised.
    dimensions: Option<u64>,
    /// hearth's extension: keep the first tokens of an input longer than
    /// the model's context instead of answering 400.
    #[serde(default)]
    truncate: bool,
}

/// Standard base64 (with padding), for `encoding_format: "base64"`.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= c.len() {
                out.push(A[(n >> shift & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub async fn embeddings(
    State(st): State<AppState>,
    Extension(log): Extension<RequestLog>,
    Checked(r): Checked<EmbeddingsReq>,
) -> Result<Response, ApiError> {
    log.model(&r.model);
    let b64 = match r.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(o) => {
            return Err(ApiError::bad_request(format!(
                "invalid encoding_format '{o}': float or base64"
            )))
        }
    };
    let (vecs, n, _use) = crate::embed::embed_texts(
        &st,
        &r.model,
        r.input.into_vec(),
        r.truncate,
        r.dimensions,
        None,
    )
    .await?;
    log.tokens(n, 0);
    let data: Vec<Value> = vecs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let e = if b64 {
                json!(base64(
                    &v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()
                ))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": e})
        })
        .collect();
    Ok(Json(json!({
        "object": "list", "data": data, "model": r.model,
        "usage": {"prompt_tokens": n, "total_tokens": n},
    }))
    .into_response())
}

fn model_obj(name: &str) -> Value {
    json!({"id": name, "object": "model", "created": now_secs(), "owned_by": "hearth"})
}

/// Every model this server can answer with: the store's (as Ollama lists
/// them), then the ones it knows by path or loaded.
async fn names(st: &AppState) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    if let Some(store) = st.models.store().cloned() {
        let listed = tokio::task::spawn_blocking(move || store.list().unwrap_or_default())
            .await
            .unwrap_or_default();
        v.extend(listed.iter().map(|m| m.name.clone()));
    }
    for (n, _) in st.models.known() {
        if !v.iter().any(|x| crate::display_name(x) == n) {
            v.push(n);
        }
    }
    for m in st.models.loaded().await {
        if !v.iter().any(|x| crate::display_name(x) == m.name) {
            v.push(m.name.clone());
        }
    }
    v
}

pub async fn models(State(st): State<AppState>) -> Json<Value> {
    let data: Vec<Value> = names(&st).await.iter().map(|n| model_obj(n)).collect();
    Json(json!({"object": "list", "data": data}))
}

pub async fn model(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    st.models.admit(&id)?;
    if names(&st)
        .await
        .iter()
        .any(|n| crate::display_name(n) == crate::display_name(&id))
        || st.models.locate(&id).is_ok()
    {
        Ok(Json(model_obj(&crate::display_name(&id))))
    } else {
        Err(ApiError::model_not_found(&id))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_padding() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
    }
}
