//! Routing in `hearth serve`: with a routing config, requests to
//! `/v1/chat/completions`, `/v1/completions`, `/api/chat` and
//! `/api/generate` go where `hearth_route::decide::plan` says — a local
//! model (the handler as without routing) or an upstream through the
//! [`Gateway`] — trying the planned targets in order; a `cascade` route
//! runs in [`cascade`], a `classify` route's choice comes first, and past
//! a key's budget no upstream is asked. Private requests
//! (`x-hearth-private: 1`, or a private API key) only ever get local
//! targets. Every reply carries `x-hearth-route` and a `hearth_route`
//! field (`{target, why}`) in its JSON body or last stream chunk.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hearth_route::config::Target;
use hearth_route::decide::Refusal;
use hearth_route::upstream::{Exchange, Gateway, SendError};
use serde_json::{json, Value};

use crate::{ApiError, AppState};

pub const ROUTE_HEADER: &str = "x-hearth-route";
pub const PRIVATE_HEADER: &str = "x-hearth-private";

/// Which API a routed path belongs to.
#[derive(Clone, Copy, PartialEq)]
enum Api {
    OpenAiChat,
    OpenAiCompletions,
    OllamaChat,
    OllamaGenerate,
}

impl Api {
    fn of(path: &str) -> Option<Api> {
        Some(match path {
            "/v1/chat/completions" => Api::OpenAiChat,
            "/v1/completions" => Api::OpenAiCompletions,
            "/api/chat" => Api::OllamaChat,
            "/api/generate" => Api::OllamaGenerate,
            _ => return None,
        })
    }
    fn ollama(self) -> bool {
        matches!(self, Api::OllamaChat | Api::OllamaGenerate)
    }
    fn chat(self) -> bool {
        matches!(self, Api::OpenAiChat | Api::OllamaChat)
    }
}

fn flag(v: Option<&HeaderValue>) -> bool {
    v.and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
}

/// The middleware: routes the four generation routes when a gateway is set.
pub async fn intercept(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let (Some(gw), Some(api)) = (st.gateway.clone(), Api::of(req.uri().path())) else {
        return next.run(req).await;
    };
    let (mut parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, st.config.max_body).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
                .into_response()
        }
    };
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
    let Some(model) = parsed
        .as_ref()
        .and_then(|v| v.get("model"))
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        // Not JSON or no model: the handler says what is wrong.
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    };
    let mut json = parsed.unwrap_or_default();
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let private =
        flag(parts.headers.get(PRIVATE_HEADER)) || bearer.is_some_and(|k| gw.key_is_private(k));
    let key = bearer.map(str::to_string);
    let asked = plan::Asked {
        model: model.clone(),
        prompt: plan::Asked::prompt_of(&json),
        private,
        tools: json
            .get("tools")
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty()),
        key: key.clone(),
    };
    let plan = match plan::plan_for(&st, &gw, asked).await {
        Ok(p) => p,
        Err(r) => {
            let status = match r.kind {
                Refusal::Private => StatusCode::FORBIDDEN,
                Refusal::Budget => StatusCode::TOO_MANY_REQUESTS,
                Refusal::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let why = if r.why.is_empty() {
                String::new()
            } else {
                format!(" ({})", r.why.join("; "))
            };
            return ApiError::new(status, format!("{}{why}", r.message)).into_response();
        }
    };
    if let Some(thresholds) = plan.cascade {
        let c = cascade::Cascade {
            thresholds,
            targets: plan.targets,
            why: plan.why,
            key,
        };
        return cascade::run(st, gw, api, parts, json, c).await;
    }
    let mut why = plan.why;
    for t in plan.targets {
        match t {
            Target::Local { model: local } => {
                why.push(format!("answered by local model {local:?}"));
                json["model"] = json!(local);
                let body = serde_json::to_vec(&json).unwrap_or_default();
                parts.headers.remove(header::CONTENT_LENGTH);
                let req = Request::from_parts(parts, Body::from(body));
                let resp = next.run(req).await;
                return tag(resp, &format!("local:{local}"), &why);
            }
            Target::Upstream { upstream, model } => {
                let target = format!("upstream:{upstream}:{model}");
                let r = proxy(
                    gw.clone(),
                    api,
                    &upstream,
                    &model,
                    &json,
                    &target,
                    &why,
                    key.clone(),
                );
                match r.await {
                    Ok(resp) => return resp,
                    Err(Fallible::Final(resp)) => return resp,
                    Err(Fallible::Next(e)) => why.push(format!("{target} failed: {e}")),
                }
            }
        }
    }
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        format!("no target of {model:?} could answer ({})", why.join("; ")),
    )
    .into_response()
}

enum Fallible {
    /// Before anything was sent back: the next target may be tried.
    Next(String),
    /// A reply for the client as it is.
    Final(Response),
}

fn route_field(target: &str, why: &[String]) -> Value {
    json!({ "target": target, "why": why })
}

fn with_header(mut resp: Response, target: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(target) {
        resp.headers_mut().insert(ROUTE_HEADER, v);
    }
    resp
}

/// Marks a local handler's reply: the header, and the body field in its
/// JSON, its NDJSON line with `"done": true`, or its last SSE event before
/// `[DONE]`.
fn tag(resp: Response, target: &str, why: &[String]) -> Response {
    let resp = with_header(resp, target);
    if !resp.status().is_success() {
        return resp;
    }
    let field = route_field(target, why);
    let ctype = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let (mut parts, body) = resp.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    if ctype.starts_with("application/json") {
        let body = Body::from_stream(futures_util::stream::once(async move {
            let b = axum::body::to_bytes(body, usize::MAX).await?;
            let out = match serde_json::from_slice::<Value>(&b) {
                Ok(Value::Object(mut o)) => {
                    o.insert("hearth_route".into(), field);
                    Bytes::from(serde_json::to_vec(&o).unwrap_or_default())
                }
                _ => b,
            };
            Ok::<_, axum::Error>(out)
        }));
        return Response::from_parts(parts, body);
    }
    let sse = ctype.starts_with("text/event-stream");
    let mut lines = Lines::default();
    let mut held: Option<String> = None;
    let stream = body.into_data_stream().map(move |chunk| {
        let chunk = chunk?;
        let mut out = String::new();
        for line in lines.push(&chunk) {
            if !sse {
                out += &mark_json_line(&line, "\"done\":true", &field);
                continue;
            }
            // SSE: hold each data event until the next one shows whether it
            // was the last before [DONE].
            if line.starts_with("data: [DONE]") {
                if let Some(h) = held.take() {
                    out += &mark_json_line(&h, "", &field);
                    out += "\n";
                }
                out += &line;
            } else if line.starts_with("data: {") {
                if let Some(h) = held.replace(line) {
                    out += &h;
                    out += "\n";
                }
            } else if held.is_some() && line.trim().is_empty() {
                // The blank line ending the held event follows it later.
            } else {
                out += &line;
            }
        }
        Ok::<_, axum::Error>(Bytes::from(out))
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// Adds the field to a JSON line (`data: {...}` or a bare object) that
/// contains `needle`; other lines pass as they are.
fn mark_json_line(line: &str, needle: &str, field: &Value) -> String {
    let (prefix, rest) = match line.strip_prefix("data: ") {
        Some(r) => ("data: ", r),
        None => ("", line),
    };
    if !rest.replace(' ', "").contains(needle) {
        return line.to_string();
    }
    match serde_json::from_str::<Value>(rest.trim_end()) {
        Ok(Value::Object(mut o)) => {
            o.insert("hearth_route".into(), field.clone());
            let sep = if prefix.is_empty() { "\n" } else { "\n\n" };
            format!("{prefix}{}{sep}", Value::Object(o))
        }
        _ => line.to_string(),
    }
}

/// Splits a byte stream into whole lines (each with its `\n`).
#[derive(Default)]
struct Lines(Vec<u8>);

impl Lines {
    fn push(&mut self, b: &[u8]) -> Vec<String> {
        self.0.extend_from_slice(b);
        let mut out = Vec::new();
        while let Some(i) = self.0.iter().position(|c| *c == b'\n') {
            let line: Vec<u8> = self.0.drain(..=i).collect();
            out.push(String::from_utf8_lossy(&line).into_owned());
        }
        out
    }
}

enum Msg {
    Chunk(Value),
    Done(Result<Exchange, SendError>),
}

/// Sends the request to an upstream, charging `key`'s budget; `Err(Next)`
/// when it failed before any byte came back.
#[allow(clippy::too_many_arguments)]
async fn proxy(
    gw: Arc<Gateway>,
    api: Api,
    upstream: &str,
    model: &str,
    req: &Value,
    target: &str,
    why: &[String],
    key: Option<String>,
) -> Result<Response, Fallible> {
    let (body, stream) = match to_openai(api, req) {
        Ok(b) => b,
        Err(m) => return Err(Fallible::Final(ApiError::bad_request(m).into_response())),
    };
    // Ollama's generate is sent as a chat with one user message.
    let path = if body.get("messages").is_some() {
        "/chat/completions"
    } else {
        "/completions"
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Msg>(64);
    {
        let (upstream, model) = (upstream.to_string(), model.to_string());
        tokio::task::spawn_blocking(move || {
            let chunk_tx = tx.clone();
            let mut on = |v: Value| chunk_tx.blocking_send(Msg::Chunk(v)).is_ok();
            let r = gw.exchange(key.as_deref(), &upstream, &model, path, body, &mut on);
            let _ = tx.blocking_send(Msg::Done(r));
        });
    }
    let requested = req.get("model").cloned().unwrap_or(Value::Null);
    let mut why = why.to_vec();
    let first = match rx.recv().await {
        Some(Msg::Chunk(v)) => v,
        Some(Msg::Done(Err(SendError::Status {
            upstream,
            status,
            body,
        }))) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let resp = ApiError::new(
                code,
                format!("upstream {upstream} answered {status}: {body}"),
            );
            return Err(Fallible::Final(with_header(resp.into_response(), target)));
        }
        Some(Msg::Done(Err(e))) => return Err(Fallible::Next(e.to_string())),
        Some(Msg::Done(Ok(_))) | None => {
            return Err(Fallible::Next("the upstream sent an empty reply".into()))
        }
    };
    if !stream {
        let ex = match rx.recv().await {
            Some(Msg::Done(Ok(ex))) => ex,
            Some(Msg::Done(Err(e))) => return Err(Fallible::Next(e.to_string())),
            _ => return Err(Fallible::Next("the upstream reply was cut".into())),
        };
        why.push(sent_note(&ex));
        let field = route_field(target, &why);
        let mut out = if api.ollama() {
            ollama_whole(api, &requested, &first, &ex)
        } else {
            first
        };
        out["hearth_route"] = field;
        return Ok(with_header(axum::Json(out).into_response(), target));
    }
    let header_target = target.to_string();
    let target = target.to_string();
    let mut first = Some(first);
    let mut ended = false;
    let events = futures_util::stream::poll_fn(move |cx| {
        if ended {
            return std::task::Poll::Ready(None);
        }
        if let Some(f) = first.take() {
            return std::task::Poll::Ready(Some(Msg::Chunk(f)));
        }
        rx.poll_recv(cx).map(|m| {
            if m.is_none() || matches!(m, Some(Msg::Done(_))) {
                ended = true;
            }
            m
        })
    });
    let body = events.map(move |m| {
        let text = match m {
            Msg::Chunk(v) if api.ollama() => ollama_chunk(api, &requested, &v),
            Msg::Chunk(v) => format!("data: {v}\n\n"),
            Msg::Done(Ok(ex)) => {
                why.push(sent_note(&ex));
                let field = route_field(&target, &why);
                if api.ollama() {
                    let mut last = ollama_whole(api, &requested, &json!({}), &ex);
                    last["hearth_route"] = field;
                    format!("{last}\n")
                } else {
                    let last = json!({
                        "object": if api.chat() { "chat.completion.chunk" } else { "text_completion" },
                        "model": requested,
                        "choices": [],
                        "hearth_route": field,
                    });
                    format!("data: {last}\n\ndata: [DONE]\n\n")
                }
            }
            Msg::Done(Err(e)) => {
                let err = json!({ "error": { "message": e.to_string(), "type": "upstream_error" } });
                if api.ollama() {
                    format!("{}\n", json!({ "error": e.to_string() }))
                } else {
                    format!("data: {err}\n\n")
                }
            }
        };
        Ok::<_, std::convert::Infallible>(Bytes::from(text))
    });
    Ok(with_header(
        stream_response(api, Body::from_stream(body)),
        &header_target,
    ))
}

/// A streamed reply in the client's API: NDJSON for Ollama, SSE for OpenAI.
fn stream_response(api: Api, body: Body) -> Response {
    let ctype = if api.ollama() {
        "application/x-ndjson"
    } else {
        "text/event-stream"
    };
    Response::builder()
        .header(header::CONTENT_TYPE, ctype)
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn sent_note(ex: &Exchange) -> String {
    if ex.redactions.is_empty() {
        format!("sent to {}; nothing redacted", ex.destination)
    } else {
        let counts: Vec<String> = ex
            .redactions
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        format!("sent to {}; redacted {}", ex.destination, counts.join(", "))
    }
}

/// One `/api/chat` request through the whole router, as `hearth serve`
/// handles it (security, routing, cascade, classify, budgets, audit) — the
/// path `hearth run ROUTE "prompt"` takes. Each NDJSON line of the reply
/// goes to `on_line`; an error status is `Err` with its message.
pub async fn ask_chat(
    state: AppState,
    body: Value,
    private: bool,
    on_line: &mut (dyn FnMut(Value) + Send),
) -> Result<(), String> {
    use tower::ServiceExt;
    let app = crate::router_with_ui(state, false);
    let mut req = axum::http::Request::builder()
        .method("POST")
        .uri("/api/chat")
        .header(header::HOST, "localhost")
        .header(header::CONTENT_TYPE, "application/json");
    if private {
        req = req.header(PRIVATE_HEADER, "1");
    }
    let req = req
        .body(Body::from(body.to_string()))
        .map_err(|e| e.to_string())?;
    let resp = match app.oneshot(req).await {
        Ok(r) => r,
        Err(e) => match e {},
    };
    let status = resp.status();
    if !status.is_success() {
        let b = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        let v: Value = serde_json::from_slice(&b).unwrap_or_default();
        let m = v["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&b).into_owned());
        return Err(format!("{status}: {m}"));
    }
    let mut lines = Lines::default();
    let mut data = resp.into_body().into_data_stream();
    while let Some(chunk) = data.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        for l in lines.push(&chunk) {
            if let Ok(v) = serde_json::from_str::<Value>(&l) {
                on_line(v);
            }
        }
    }
    Ok(())
}

mod cascade;
mod plan;
mod translate;
use translate::{ollama_chunk, ollama_whole, to_openai};
