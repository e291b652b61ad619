//! `cascade` routes in `hearth serve`: the local target answers first,
//! with token log-probabilities and without streaming (a streamed request's
//! local answer is held until the verdict); [`hearth_route::cascade`] keeps
//! it or escalates — the prompt does not fit the local context, the answer
//! is unsure or a refusal — to the route's other targets through the
//! upstream path (pool, redaction, audit). The reply says which and why.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hearth_route::cascade::{self, Escalation, Thresholds};
use hearth_route::config::Target;
use hearth_route::upstream::{Exchange, Gateway};
use hearth_tokenizer::RenderOptions;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::translate::{ollama_chunk, ollama_whole, to_openai};
use super::{proxy, route_field, stream_response, with_header, Api, Fallible};
use crate::{prompt, ApiError, AppState};

/// A planned cascade: the local target first, then the escalation targets.
pub(super) struct Cascade {
    pub thresholds: Thresholds,
    pub targets: Vec<Target>,
    pub why: Vec<String>,
    pub key: Option<String>,
}

/// Runs a cascade for the client's request `json` (in the shape of `api`).
pub(super) async fn run(
    st: AppState,
    gw: Arc<Gateway>,
    api: Api,
    parts: Parts,
    json: Value,
    c: Cascade,
) -> Response {
    let mut why = c.why;
    let mut targets = c.targets.into_iter();
    let Some(Target::Local { model: local }) = targets.next() else {
        return ApiError::internal("a cascade starts with a local target").into_response();
    };
    let escalate: Vec<Target> = targets.collect();
    let target = format!("local:{local}");
    let (mut body, stream) = match to_openai(api, &json) {
        Ok(b) => b,
        Err(m) => return ApiError::bad_request(format!("a cascade route: {m}")).into_response(),
    };
    let chat = body.get("messages").is_some();
    let (prompt_tokens, n_ctx) = match prompt_tokens(&st, &local, &body, chat).await {
        Ok(n) => n,
        Err(e) => return with_header(e.into_response(), &target),
    };
    let fits = cascade::fits(&c.thresholds, prompt_tokens).and_then(|()| {
        if prompt_tokens >= n_ctx {
            return Err(Escalation::Context {
                prompt_tokens,
                max: n_ctx.saturating_sub(1),
            });
        }
        Ok(())
    });
    if let Err(e) = fits {
        if !escalate.is_empty() {
            why.push(format!("escalated before generating: {e}"));
            return up(gw, api, &json, &escalate, why, c.key).await;
        }
        let m = format!("{e}, and no target to escalate to is allowed");
        return with_header(ApiError::bad_request(m).into_response(), &target);
    }

    // The local answer, whole, with its tokens' log-probabilities.
    let asked_logprobs = body
        .get("logprobs")
        .is_some_and(|v| !v.is_null() && *v != json!(false));
    body["model"] = json!(local);
    body["stream"] = json!(false);
    if let Some(o) = body.as_object_mut() {
        o.remove("stream_options");
    }
    if !asked_logprobs {
        body["logprobs"] = if chat { json!(true) } else { json!(0) };
    }
    // The OpenAI handler answers, whatever API the client speaks (routing
    // already happened: `next` would run the client's own handler).
    let path = if chat {
        "/v1/chat/completions"
    } else {
        "/v1/completions"
    };
    let local_api = axum::Router::new()
        .route("/v1/chat/completions", post(crate::openai::chat))
        .route("/v1/completions", post(crate::openai::completions))
        .with_state(st.clone());
    let mut parts = parts;
    parts.uri = axum::http::Uri::from_static(path);
    parts.headers.remove(header::CONTENT_LENGTH);
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let req = Request::from_parts(parts, Body::from(bytes));
    let resp = match local_api.oneshot(req).await {
        Ok(r) => r,
        Err(e) => match e {},
    };
    if !resp.status().is_success() {
        return with_header(resp, &target);
    }
    let reply = match axum::body::to_bytes(resp.into_body(), 64 << 20).await {
        Ok(b) => serde_json::from_slice::<Value>(&b).unwrap_or_default(),
        Err(e) => {
            let m = format!("reading the local answer: {e}");
            return with_header(ApiError::internal(m).into_response(), &target);
        }
    };
    let (text, tokens, logprobs) = answer(&reply);
    match cascade::judge(&c.thresholds, &text, &tokens, &logprobs) {
        Some(e) if !escalate.is_empty() => {
            why.push(format!("escalated after the local answer: {e}"));
            up(gw, api, &json, &escalate, why, c.key).await
        }
        verdict => {
            why.push(match verdict {
                Some(e) => format!("{e}, but no target to escalate to is allowed: kept"),
                None => match cascade::confidence(&logprobs) {
                    Some(k) => format!(
                        "kept the local answer: mean token log-probability {:.3}, lowest {:.3}",
                        k.mean, k.min
                    ),
                    None => "kept the local answer".into(),
                },
            });
            local_reply(api, &json, stream, reply, asked_logprobs, &target, &why)
        }
    }
}

/// The prompt's tokens for the local model (chat template applied) and the
/// model's context length.
async fn prompt_tokens(
    st: &AppState,
    local: &str,
    body: &Value,
    chat: bool,
) -> Result<(u64, u64), ApiError> {
    let use_ = st.models.acquire(local, None).await?;
    let m = use_.model.clone();
    let text = if chat {
        let msgs = body["messages"].as_array().cloned().unwrap_or_default();
        let msgs = prompt::chat_messages(&msgs)?;
        prompt::render_chat(&m, &msgs, &RenderOptions::new(true))?
    } else {
        match &body["prompt"] {
            Value::String(p) => p.clone(),
            _ => {
                return Err(ApiError::bad_request(
                    "a cascade route takes one prompt (a string)",
                ))
            }
        }
    };
    let n_ctx = m.engine.n_ctx() as u64;
    let n = tokio::task::spawn_blocking(move || prompt::tokenize(&m, &text).len())
        .await
        .map_err(|e| ApiError::internal(format!("tokenizing: {e}")))?;
    Ok((n as u64, n_ctx))
}

/// The text, tokens and log-probabilities of an OpenAI chat or completions
/// reply's first choice.
fn answer(v: &Value) -> (String, Vec<String>, Vec<f64>) {
    let c = &v["choices"][0];
    let text = c["message"]["content"]
        .as_str()
        .or_else(|| c["text"].as_str())
        .unwrap_or("")
        .to_string();
    let lp = &c["logprobs"];
    let (tokens, logprobs) = match lp["content"].as_array() {
        Some(items) => (
            items
                .iter()
                .map(|t| t["token"].as_str().unwrap_or("").to_string())
                .collect(),
            items.iter().filter_map(|t| t["logprob"].as_f64()).collect(),
        ),
        None => (
            lp["tokens"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|t| t.as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default(),
            lp["token_logprobs"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default(),
        ),
    };
    (text, tokens, logprobs)
}

/// Tries the escalation targets in order.
async fn up(
    gw: Arc<Gateway>,
    api: Api,
    json: &Value,
    targets: &[Target],
    mut why: Vec<String>,
    key: Option<String>,
) -> Response {
    for t in targets {
        match t {
            Target::Upstream { upstream, model } => {
                let target = format!("upstream:{upstream}:{model}");
                let r = proxy(
                    gw.clone(),
                    api,
                    upstream,
                    model,
                    json,
                    &target,
                    &why,
                    key.clone(),
                );
                match r.await {
                    Ok(resp) | Err(Fallible::Final(resp)) => return resp,
                    Err(Fallible::Next(e)) => why.push(format!("{target} failed: {e}")),
                }
            }
            Target::Local { model } => why.push(format!(
                "skipped local:{model}: a cascade escalates to upstreams"
            )),
        }
    }
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        format!(
            "the cascade escalated and no target could answer ({})",
            why.join("; ")
        ),
    )
    .into_response()
}

/// The kept local answer in the client's shape: whole, or as a stream of
/// one content event and the end.
fn local_reply(
    api: Api,
    req: &Value,
    stream: bool,
    mut v: Value,
    keep_logprobs: bool,
    target: &str,
    why: &[String],
) -> Response {
    if !keep_logprobs {
        if let Some(c) = v["choices"][0].as_object_mut() {
            c.remove("logprobs");
        }
    }
    let requested = req.get("model").cloned().unwrap_or(Value::Null);
    let field = route_field(target, why);
    let usage = &v["usage"];
    let ex = Exchange {
        prompt_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0),
        completion_tokens: usage["completion_tokens"].as_u64().unwrap_or(0),
        finish_reason: v["choices"][0]["finish_reason"]
            .as_str()
            .map(str::to_string),
        ..Exchange::default()
    };
    if !stream {
        let mut out = if api.ollama() {
            ollama_whole(api, &requested, &v, &ex)
        } else {
            v
        };
        out["hearth_route"] = field;
        return with_header(axum::Json(out).into_response(), target);
    }
    let text = if api.ollama() {
        let mut last = ollama_whole(api, &requested, &json!({}), &ex);
        last["hearth_route"] = field;
        format!("{}{last}\n", ollama_chunk(api, &requested, &v))
    } else {
        sse(api, req, &v, field)
    };
    with_header(stream_response(api, Body::from(Bytes::from(text))), target)
}

/// A whole OpenAI reply as SSE events: the content, the finish, the usage
/// when the client asked for it, the route, `[DONE]`.
fn sse(api: Api, req: &Value, v: &Value, field: Value) -> String {
    let c = &v["choices"][0];
    let chat = api.chat();
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let head = |choices: Value| json!({"id": v["id"], "object": object, "created": v["created"], "model": v["model"], "choices": choices});
    let mut content = if chat {
        json!({"index": 0, "delta": c["message"], "finish_reason": null})
    } else {
        json!({"index": 0, "text": c["text"], "finish_reason": null})
    };
    if let Some(lp) = c.get("logprobs") {
        content["logprobs"] = lp.clone();
    }
    let finish = if chat {
        json!({"index": 0, "delta": {}, "finish_reason": c["finish_reason"]})
    } else {
        json!({"index": 0, "text": "", "finish_reason": c["finish_reason"]})
    };
    let mut out = format!(
        "data: {}\n\ndata: {}\n\n",
        head(json!([content])),
        head(json!([finish]))
    );
    if req["stream_options"]["include_usage"] == json!(true) {
        let mut u = head(json!([]));
        u["usage"] = v["usage"].clone();
        out += &format!("data: {u}\n\n");
    }
    let mut last = head(json!([]));
    last["hearth_route"] = field;
    out += &format!("data: {last}\n\ndata: [DONE]\n\n");
    out
}
