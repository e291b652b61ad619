//! The OpenAI API: `/v1/chat/completions`, `/v1/completions`,
//! `/v1/embeddings`, `/v1/models`. Streams are server-sent events
//! (`data: {json}\n\n` … `data: [DONE]\n\n`).

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use hearth_engine::GenParams;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::gen::{self, Finished, Run, Step};
use crate::params::{check_stops, default_sampler, seed, JsonBody, OneOrMany};
use crate::prompt::{self, TRUNCATED_HEADER};
use crate::tools::{self, ToolCall, ToolChoice};
use crate::{structured, AppState, RequestLog};

#[derive(Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// Fields shared by chat and text completions (OpenAI's, plus hearth's
/// `top_k`, `min_p`, `repeat_penalty` and `truncate`).
#[derive(Deserialize)]
pub struct Common {
    model: String,
    max_tokens: Option<i64>,
    max_completion_tokens: Option<i64>,
    stop: Option<OneOrMany>,
    seed: Option<i64>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<i64>,
    min_p: Option<f32>,
    repeat_penalty: Option<f32>,
    frequency_penalty: Option<f32>,
    presence_penalty: Option<f32>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    n: Option<i64>,
    #[serde(default)]
    truncate: bool,
}

impl Common {
    fn params(&self, default_max: Option<usize>) -> Result<GenParams, ApiError> {
        self.params_over(default_max, None)
    }

    /// [`params`](Common::params) over a model's Modelfile settings (`base`).
    fn params_over(
        &self,
        default_max: Option<usize>,
        base: Option<GenParams>,
    ) -> Result<GenParams, ApiError> {
        if self.n.is_some_and(|n| n != 1) {
            return Err(ApiError::bad_request("only n = 1 is supported"));
        }
        let default_max = base.as_ref().and_then(|b| b.max_tokens).or(default_max);
        let base_stop = base.as_ref().map(|b| b.stop.clone()).unwrap_or_default();
        let mut s = base.map_or_else(default_sampler, |b| b.sampler);
        if let Some(v) = self.temperature {
            s.temperature = v;
        }
        if let Some(v) = self.top_p {
            s.top_p = v;
        }
        if let Some(v) = self.top_k {
            s.top_k = usize::try_from(v)
                .map_err(|_| ApiError::bad_request(format!("invalid top_k {v}")))?;
        }
        if let Some(v) = self.min_p {
            s.min_p = v;
        }
        if let Some(v) = self.repeat_penalty {
            s.repeat_penalty = v;
        }
        if let Some(v) = self.frequency_penalty {
            s.frequency_penalty = v;
        }
        if let Some(v) = self.presence_penalty {
            s.presence_penalty = v;
        }
        if self.seed.is_some() {
            s.seed = seed(self.seed);
        }
        s.validate()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let max_tokens = match self.max_completion_tokens.or(self.max_tokens) {
            None => default_max,
            Some(n) if n < 0 => {
                return Err(ApiError::bad_request(format!(
                    "invalid max_tokens {n}: expected 0 or more"
                )))
            }
            Some(n) => Some(n as usize),
        };
        let stop = self
            .stop
            .clone()
            .map(OneOrMany::into_vec)
            .unwrap_or(base_stop);
        check_stops(&stop)?;
        Ok(GenParams {
            sampler: s,
            max_tokens,
            stop,
            context_shift: false,
            n_keep: 0,
        })
    }
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
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn new_id(prefix: &str) -> String {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    format!("{prefix}-{t:x}{n:x}")
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn usage(f: &Finished) -> Value {
    json!({
        "prompt_tokens": f.prompt_tokens,
        "completion_tokens": f.stats.gen_tokens,
        "total_tokens": f.prompt_tokens + f.stats.gen_tokens,
    })
}

/// The shape of one reply's objects.
struct Reply {
    id: String,
    created: u64,
    model: String,
    chat: bool,
    include_usage: bool,
    /// Offered tool names, when the reply may be a tool call.
    tools: Option<Vec<String>>,
    dropped: usize,
}

fn tool_calls_json(calls: &[ToolCall], streaming: bool) -> Value {
    let v: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut call = json!({
                "id": format!("call_{}", new_id("t")),
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments.to_string()},
            });
            if streaming {
                call["index"] = json!(i);
            }
            call
        })
        .collect();
    json!(v)
}

impl Reply {
    fn object(&self) -> &'static str {
        if self.chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        let choice = if self.chat {
            json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish})
        } else {
            json!({"index": 0, "text": delta.get("content").cloned().unwrap_or(json!("")),
                   "logprobs": null, "finish_reason": finish})
        };
        json!({
            "id": self.id, "object": self.object(), "created": self.created,
            "model": self.model, "system_fingerprint": "hearth", "choices": [choice],
        })
    }

    fn usage_chunk(&self, f: &Finished) -> Value {
        json!({
            "id": self.id, "object": self.object(), "created": self.created,
            "model": self.model, "system_fingerprint": "hearth", "choices": [], "usage": usage(f),
        })
    }

    fn whole(&self, text: &str, f: &Finished) -> Value {
        let calls = self
            .tools
            .as_ref()
            .and_then(|names| tools::parse_reply(text, names));
        let text = &match (&self.tools, &calls) {
            (Some(_), None) => tools::content_of(text),
            _ => text.to_string(),
        };
        let finish = if calls.is_some() {
            "tool_calls"
        } else {
            f.finish.as_str()
        };
        let choice = if self.chat {
            let mut msg = json!({"role": "assistant", "content": text});
            if let Some(c) = &calls {
                msg["content"] = Value::Null;
                msg["tool_calls"] = tool_calls_json(c, false);
            }
            json!({"index": 0, "message": msg, "logprobs": null, "finish_reason": finish})
        } else {
            json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish})
        };
        let mut v = json!({
            "id": self.id,
            "object": if self.chat { "chat.completion" } else { "text_completion" },
            "created": self.created, "model": self.model, "system_fingerprint": "hearth",
            "choices": [choice], "usage": usage(f),
        });
        if self.dropped > 0 {
            v["truncated_tokens"] = json!(self.dropped);
        }
        v
    }
}

fn sse(v: &Value) -> Result<Bytes, Infallible> {
    Ok(Bytes::from(format!("data: {v}\n\n")))
}

fn sse_response(body: Body, dropped: usize) -> Response {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if dropped > 0 {
        h.insert(TRUNCATED_HEADER, HeaderValue::from(dropped));
    }
    r
}

/// The events after the text: the finishing chunk, usage, `[DONE]`.
fn tail(reply: &Reply, f: &Finished, finish: &str) -> String {
    let mut s = format!("data: {}\n\n", reply.chunk(json!({}), Some(finish)));
    if reply.include_usage {
        s += &format!("data: {}\n\n", reply.usage_chunk(f));
    }
    s + "data: [DONE]\n\n"
}

async fn respond(mut run: Run, reply: Reply, stream: bool) -> Result<Response, ApiError> {
    let dropped = reply.dropped;
    if !stream {
        let (text, f) = run.collect().await?;
        let mut r = Json(reply.whole(&text, &f)).into_response();
        if dropped > 0 {
            r.headers_mut()
                .insert(TRUNCATED_HEADER, HeaderValue::from(dropped));
        }
        return Ok(r);
    }
    if let Some(names) = reply.tools.clone() {
        // A tool call is only known once the reply is whole.
        let (text, f) = run.collect().await?;
        let mut s = String::new();
        s += &format!(
            "data: {}\n\n",
            reply.chunk(json!({"role": "assistant", "content": ""}), None)
        );
        let finish = match tools::parse_reply(&text, &names) {
            Some(calls) => {
                let delta = json!({"tool_calls": tool_calls_json(&calls, true)});
                s += &format!("data: {}\n\n", reply.chunk(delta, None));
                "tool_calls"
            }
            None => {
                let content = tools::content_of(&text);
                s += &format!(
                    "data: {}\n\n",
                    reply.chunk(json!({"content": content}), None)
                );
                f.finish.as_str()
            }
        };
        s += &tail(&reply, &f, finish);
        return Ok(sse_response(Body::from(s), dropped));
    }
    let first = if reply.chat {
        Some(sse(
            &reply.chunk(json!({"role": "assistant", "content": ""}), None)
        ))
    } else {
        None
    };
    let head = futures_util::stream::iter(first);
    let rest = futures_util::stream::unfold(Some((run, reply)), |state| async move {
        let (mut run, reply) = state?;
        match run.next().await {
            Step::Text(t) => {
                let c = reply.chunk(json!({"content": t}), None);
                Some((sse(&c), Some((run, reply))))
            }
            Step::Done(f) => Some((Ok(Bytes::from(tail(&reply, &f, f.finish.as_str()))), None)),
            Step::Error(e) => {
                let err = json!({"error": {"message": e, "type": "server_error", "param": null, "code": null}});
                Some((
                    Ok(Bytes::from(format!("data: {err}\n\ndata: [DONE]\n\n"))),
                    None,
                ))
            }
        }
    });
    use futures_util::StreamExt;
    Ok(sse_response(Body::from_stream(head.chain(rest)), dropped))
}

pub async fn chat(
    State(st): State<AppState>,
    Extension(log): Extension<RequestLog>,
    JsonBody(r): JsonBody<ChatReq>,
) -> Result<Response, ApiError> {
    let c = &r.common;
    log.model(&c.model);
    if r.messages.is_empty() {
        return Err(ApiError::bad_request("messages must not be empty"));
    }
    let default_max = None;
    let mut params = c.params(default_max)?;
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
    let (grammar, tool_prompt) = if use_tools {
        (
            Some(tools::grammar(&r.tools, &choice)?),
            Some(tools::system_prompt(&r.tools, &choice)?),
        )
    } else {
        (
            structured::from_response_format(r.response_format.as_ref())?,
            None,
        )
    };
    let msgs = prompt::chat_messages(&r.messages, tool_prompt)?;
    let use_ = st.models.acquire(&c.model, None).await?;
    let m = &use_.model;
    if let Some(o) = crate::modelfile::options(m, &Default::default())? {
        params = c.params_over(default_max, Some(o.to_params()?))?;
    }
    let constraint = structured::constraint(grammar.as_ref(), m);
    let text = prompt::render_chat(m, &msgs)?;
    let n_ctx = m.engine.n_ctx();
    let fitted = prompt::fit(m, prompt::tokenize(m, &text), n_ctx, c.truncate)?;
    let room = n_ctx - fitted.tokens.len();
    params.max_tokens = Some(params.max_tokens.map_or(room, |x| x.min(room)));
    let reply = Reply {
        id: new_id("chatcmpl"),
        created: now_secs(),
        model: c.model.clone(),
        chat: true,
        include_usage: c.stream_options.as_ref().is_some_and(|o| o.include_usage),
        tools: use_tools.then_some(names),
        dropped: fitted.dropped,
    };
    let run = gen::start(
        use_,
        fitted.tokens,
        params,
        constraint,
        st.metrics.clone(),
        log,
    )?;
    respond(run, reply, c.stream).await
}

#[derive(Deserialize)]
pub struct CompletionReq {
    #[serde(flatten)]
    common: Common,
    prompt: OneOrMany,
    suffix: Option<String>,
    #[serde(default)]
    echo: bool,
}

pub async fn completions(
    State(st): State<AppState>,
    Extension(log): Extension<RequestLog>,
    JsonBody(r): JsonBody<CompletionReq>,
) -> Result<Response, ApiError> {
    let c = &r.common;
    log.model(&c.model);
    let mut prompts = r.prompt.clone().into_vec();
    if prompts.len() != 1 {
        return Err(ApiError::bad_request(
            "prompt must be one string (batches are not supported)",
        ));
    }
    if r.suffix.as_deref().is_some_and(|s| !s.is_empty()) || r.echo {
        return Err(ApiError::bad_request("suffix and echo are not supported"));
    }
    let text = prompts.pop().unwrap_or_default();
    if text.is_empty() {
        return Err(ApiError::bad_request("prompt must not be empty"));
    }
    // OpenAI's default for this endpoint.
    let default_max = Some(16);
    let mut params = c.params(default_max)?;
    let use_ = st.models.acquire(&c.model, None).await?;
    let m = &use_.model;
    if let Some(o) = crate::modelfile::options(m, &Default::default())? {
        params = c.params_over(default_max, Some(o.to_params()?))?;
    }
    let n_ctx = m.engine.n_ctx();
    let fitted = prompt::fit(m, prompt::tokenize(m, &text), n_ctx, c.truncate)?;
    let room = n_ctx - fitted.tokens.len();
    params.max_tokens = Some(params.max_tokens.map_or(room, |x| x.min(room)));
    let reply = Reply {
        id: new_id("cmpl"),
        created: now_secs(),
        model: c.model.clone(),
        chat: false,
        include_usage: c.stream_options.as_ref().is_some_and(|o| o.include_usage),
        tools: None,
        dropped: fitted.dropped,
    };
    let run = gen::start(use_, fitted.tokens, params, None, st.metrics.clone(), log)?;
    respond(run, reply, c.stream).await
}

#[derive(Deserialize)]
pub struct EmbeddingsReq {
    model: String,
    input: OneOrMany,
    encoding_format: Option<String>,
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
    JsonBody(r): JsonBody<EmbeddingsReq>,
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
    let (vecs, n, _use) =
        crate::ollama::embed_texts(&st, &r.model, r.input.into_vec(), false, None).await?;
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
