//! The Ollama API: `/api/*`, NDJSON streaming (one JSON object per line;
//! the last has `done: true`, `done_reason` and the durations in ns).

use std::convert::Infallible;
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use hearth_reply::{Piece, ReplyFormat};
use hearth_tokenizer::{ChatMessage, RenderOptions};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::embed::embed_texts;
use crate::error::ApiError;
use crate::gen::{self, Finished, Run, Step};
use crate::knowledge::{self, Grounding};
use crate::models::{LoadedModel, ModelUse};
use crate::options::{Checked, Fields, Options, RequestFields, OLLAMA_OPTIONS};
use crate::params::{parse_keep_alive, KeepAlive, OneOrMany};
use crate::parts::{self, PartsSpec};
use crate::prompt::{self, rfc3339, Fitted, PromptText, TRUNCATED_HEADER};
use crate::tools::{self, ToolChoice};
use crate::{structured, AppState, RequestLog};

pub use crate::catalog::{copy, delete, ps, pull, tags, NameReq};
pub(crate) use crate::catalog::{details_of, digest};

pub async fn root() -> &'static str {
    "Ollama is running"
}

pub async fn version() -> Json<Value> {
    Json(json!({ "version": env!("CARGO_PKG_VERSION") }))
}

/// Request fields Ollama defines that change nothing hearth generates.
const HARMLESS: &[&str] = &[];

/// `/api/generate`'s fields.
static GENERATE_FIELDS: Fields = Fields {
    prefix: "",
    known: &[&[
        "model",
        "prompt",
        "suffix",
        "system",
        "template",
        "context",
        "stream",
        "raw",
        "format",
        "options",
        "keep_alive",
        "truncate",
        "images",
        "think",
    ]],
    harmless: HARMLESS,
    nested: Some(("options", &OLLAMA_OPTIONS)),
};

/// `/api/chat`'s fields.
static CHAT_FIELDS: Fields = Fields {
    prefix: "",
    known: &[&[
        "model",
        "messages",
        "tools",
        "format",
        "options",
        "stream",
        "keep_alive",
        "truncate",
        "think",
        "knowledge",
    ]],
    harmless: HARMLESS,
    nested: Some(("options", &OLLAMA_OPTIONS)),
};

/// `think`: `Some(true)` asks for the reasoning apart (a model whose
/// replies have none refuses), `Some(false)` turns it off in templates that
/// have a switch; either way reasoning the model writes goes to `thinking`.
fn thinking(m: &LoadedModel, think: Option<&Value>) -> Result<(bool, ReplyFormat), ApiError> {
    let want = parts::think_field(think)?;
    let format = parts::format_of(m);
    if want == Some(true) && format.think.is_none() && !format.harmony {
        return Err(ApiError::bad_request(format!(
            "\"{}\" does not support thinking: its chat template has no reasoning markers",
            m.name
        )));
    }
    Ok((want != Some(false), format))
}

impl RequestFields for GenerateReq {
    const FIELDS: &'static Fields = &GENERATE_FIELDS;
}

impl RequestFields for ChatReq {
    const FIELDS: &'static Fields = &CHAT_FIELDS;
}

/// `/api/embed`'s and `/api/embeddings`' fields; `options` only tune how
/// the model runs (sampling does not touch embeddings).
static EMBED_FIELDS: Fields = Fields {
    prefix: "",
    known: &[&[
        "model",
        "input",
        "prompt",
        "truncate",
        "keep_alive",
        "dimensions",
    ]],
    harmless: &["options"],
    nested: None,
};

impl RequestFields for EmbedReq {
    const FIELDS: &'static Fields = &EMBED_FIELDS;
}

#[derive(Deserialize)]
pub struct GenerateReq {
    model: String,
    #[serde(default)]
    prompt: String,
    suffix: Option<String>,
    system: Option<String>,
    template: Option<String>,
    context: Option<Vec<u32>>,
    stream: Option<bool>,
    #[serde(default)]
    raw: bool,
    format: Option<Value>,
    #[serde(default)]
    options: Options,
    keep_alive: Option<Value>,
    #[serde(default)]
    truncate: bool,
    images: Option<Vec<String>>,
    think: Option<Value>,
}

fn keep_alive(v: &Option<Value>) -> Result<Option<KeepAlive>, ApiError> {
    v.as_ref().map(parse_keep_alive).transpose()
}

fn no_images(images: Option<&Vec<String>>) -> Result<(), ApiError> {
    match images {
        Some(i) if !i.is_empty() => Err(ApiError::bad_request(
            "images are not supported: hearth runs text-only models",
        )),
        _ => Ok(()),
    }
}

/// Loads (or, with `keep_alive: 0`, unloads) the model without generating.
async fn load_only(
    st: &AppState,
    name: &str,
    ka: Option<KeepAlive>,
    chat: bool,
) -> Result<Response, ApiError> {
    let reason = if ka == Some(KeepAlive::Unload) {
        if !st.models.unload(name).await {
            // Unloading a model that is not loaded is fine, if it exists.
            st.models.locate(name)?;
        }
        "unload"
    } else {
        drop(st.models.acquire(name, ka).await?);
        "load"
    };
    let mut v = json!({
        "model": name,
        "created_at": rfc3339(SystemTime::now()),
        "done": true,
        "done_reason": reason,
    });
    if chat {
        v["message"] = json!({"role": "assistant", "content": ""});
    } else {
        v["response"] = json!("");
    }
    Ok(Json(v).into_response())
}

pub async fn generate(
    State(st): State<AppState>,
    Extension(log): Extension<RequestLog>,
    Checked(r): Checked<GenerateReq>,
) -> Result<Response, ApiError> {
    no_images(r.images.as_ref())?;
    parts::think_field(r.think.as_ref())?;
    if r.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::bad_request(
            "suffix (fill-in-the-middle) is not supported",
        ));
    }
    let ka = keep_alive(&r.keep_alive)?;
    log.model(&r.model);
    if r.prompt.is_empty() && r.context.as_ref().is_none_or(Vec::is_empty) {
        return load_only(&st, &r.model, ka, false).await;
    }
    let mut params = r.options.to_params()?;
    let grammar = structured::from_ollama_format(r.format.as_ref())?;
    let use_ = st.models.acquire(&r.model, ka).await?;
    let m = &use_.model;
    if let Some(o) = crate::modelfile::under(m, &r.options)? {
        params = o.to_params()?;
    }
    let (think, format) = thinking(m, r.think.as_ref())?;
    let opts = RenderOptions {
        enable_thinking: think,
        ..RenderOptions::new(true)
    };
    let constraint = structured::constraint(grammar.as_ref(), m);
    let system = r.system.clone().unwrap_or_default();
    let text = if r.raw {
        PromptText::Text(r.prompt.clone())
    } else if let Some(t) = r.template.as_ref().or(m.config.template.as_ref()) {
        let system = match (system.is_empty(), &m.config.system) {
            (true, Some(s)) => s.clone(),
            _ => system.clone(),
        };
        PromptText::Text(prompt::render_go_template(t, &system, &r.prompt)?)
    } else if m.template.is_some() {
        let mut msgs = Vec::new();
        if !system.is_empty() {
            msgs.push(ChatMessage::new("system", system));
        }
        msgs.push(ChatMessage::new("user", r.prompt.clone()));
        PromptText::Chat(msgs, opts.clone())
    } else {
        PromptText::Text(r.prompt.clone())
    };
    let templated = matches!(text, PromptText::Chat(..));
    params.render_special = templated && format.harmony;
    let n_ctx = prompt::request_ctx(m.engine.n_ctx(), r.options.num_ctx)?;
    let fitted = match &r.context {
        Some(ctx) if !ctx.is_empty() => {
            let text = match text {
                PromptText::Text(s) => s,
                PromptText::Chat(msgs, opts) => prompt::render_chat(m, &msgs, &opts)?,
            };
            if !r.truncate {
                prompt::check_bytes(m, text.len(), n_ctx)?;
            }
            let mut t = ctx.clone();
            t.extend(m.tokenizer.encode(&text, false, true));
            prompt::fit(m, t, n_ctx, r.truncate)?
        }
        _ => prompt::prepare_one(m, text, n_ctx, r.truncate).await?,
    };
    limit_to_ctx(&mut params, n_ctx, m.engine.n_ctx(), fitted.tokens.len())?;
    let prompt_ids = fitted.tokens.clone();
    let run = gen::start(
        use_,
        fitted.tokens.clone(),
        params,
        constraint,
        st.metrics.clone(),
        log,
    )?;
    let out = Output {
        model: r.model.clone(),
        chat: false,
        context: Some(prompt_ids),
        dropped: fitted.dropped,
        tools: None,
        parts: PartsSpec::new(format, false, fitted.opens_thinking).filter(|_| templated),
        citations: None,
    };
    respond(run, out, r.stream.unwrap_or(true), &fitted).await
}

/// The engine stops at the end of the context anyway; a request's
/// `num_ctx` below the engine's is enforced here.
/// With context shift (`num_keep`) generation goes on past the end of the
/// engine's context instead, which a smaller `num_ctx` cannot bound: that
/// combination is refused.
fn limit_to_ctx(
    p: &mut hearth_engine::GenParams,
    n_ctx: usize,
    engine_ctx: usize,
    n_prompt: usize,
) -> Result<(), ApiError> {
    if p.context_shift {
        if n_ctx < engine_ctx {
            return Err(ApiError::bad_request(format!(
                "options.num_keep (context shift) works on the server's whole context                  ({engine_ctx}); leave num_ctx out or set it to at least that"
            )));
        }
        return Ok(());
    }
    let room = n_ctx.saturating_sub(n_prompt);
    p.max_tokens = Some(p.max_tokens.map_or(room, |m| m.min(room)));
    Ok(())
}

/// How to shape the objects of one reply.
struct Output {
    model: String,
    chat: bool,
    /// Prompt tokens, returned with the generated ones as `context`.
    context: Option<Vec<u32>>,
    dropped: usize,
    /// Offered tool names: the reply is collected and parsed for calls in
    /// the JSON the tool grammar holds.
    tools: Option<Vec<String>>,
    /// The model's reply syntax (reasoning, native tool calls), when it has one.
    parts: Option<PartsSpec>,
    /// The sources of a reply grounded in a knowledge base, in the last object.
    citations: Option<Value>,
}

impl Output {
    fn chunk(&self, text: &str) -> Value {
        let mut v = json!({"model": self.model, "created_at": rfc3339(SystemTime::now())});
        if self.chat {
            v["message"] = json!({"role": "assistant", "content": text});
        } else {
            v["response"] = json!(text);
        }
        v["done"] = json!(false);
        v
    }

    fn tool_chunk(&self, calls: &[tools::ToolCall]) -> Value {
        let calls: Vec<Value> = calls
            .iter()
            .map(|c| json!({"function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
        let mut v = self.chunk("");
        v["message"]["tool_calls"] = json!(calls);
        v
    }

    /// A chunk with reasoning: `message.thinking` (chat) or `thinking`.
    fn thinking_chunk(&self, text: &str) -> Value {
        let mut v = self.chunk("");
        if self.chat {
            v["message"]["thinking"] = json!(text);
        } else {
            v["thinking"] = json!(text);
        }
        v
    }

    /// One parsed piece as a chunk.
    fn piece_chunk(&self, p: Piece) -> Value {
        match p {
            Piece::Content(t) => self.chunk(&t),
            Piece::Thinking(t) => self.thinking_chunk(&t),
            Piece::ToolCall(c) => self.tool_chunk(&[tools::ToolCall {
                name: c.name,
                arguments: c.arguments,
            }]),
        }
    }

    /// A whole reply's final object under the reply syntax: content,
    /// thinking and calls in one.
    fn parsed_last(&self, parts: &PartsSpec, text: &str, mut last: Value) -> Value {
        let (thinking, content, calls) = parts.parse_all(text);
        let key = if self.chat { "/message" } else { "" };
        if let Some(obj) = last.pointer_mut(key) {
            obj[if self.chat { "content" } else { "response" }] = json!(content);
            if !thinking.is_empty() {
                obj["thinking"] = json!(thinking);
            }
            if !calls.is_empty() && self.chat {
                let calls: Vec<Value> = calls
                    .iter()
                    .map(|c| json!({"function": {"name": c.name, "arguments": c.arguments}}))
                    .collect();
                obj["tool_calls"] = json!(calls);
            }
        }
        last
    }

    fn last(&self, f: &Finished, load_ns: u128) -> Value {
        let mut v = self.chunk("");
        v["done"] = json!(true);
        v["done_reason"] = json!(f.finish.as_str());
        if let Some(ctx) = &self.context {
            let mut all = ctx.clone();
            all.extend(&f.tokens);
            v["context"] = json!(all);
        }
        v["total_duration"] = json!(f.total.as_nanos() + load_ns);
        v["load_duration"] = json!(load_ns);
        v["prompt_eval_count"] = json!(f.prompt_tokens);
        v["prompt_eval_duration"] = json!(f.stats.prompt_eval.as_nanos());
        v["eval_count"] = json!(f.stats.gen_tokens);
        v["eval_duration"] = json!(f.stats.gen_eval.as_nanos());
        if self.dropped > 0 {
            v["truncated_tokens"] = json!(self.dropped);
        }
        if let Some(c) = &self.citations {
            v["citations"] = c.clone();
        }
        v
    }
}

fn load_ns(u: &ModelUse) -> u128 {
    if u.loaded_now {
        u.model.load_duration.as_nanos()
    } else {
        0
    }
}

fn with_truncation(mut resp: Response, dropped: usize) -> Response {
    if dropped > 0 {
        resp.headers_mut()
            .insert(TRUNCATED_HEADER, HeaderValue::from(dropped));
    }
    resp
}

pub(crate) fn line(v: &Value) -> Result<Bytes, Infallible> {
    let mut s = v.to_string();
    s.push('\n');
    Ok(Bytes::from(s))
}

async fn respond(
    mut run: Run,
    out: Output,
    stream: bool,
    fitted: &Fitted,
) -> Result<Response, ApiError> {
    let dropped = fitted.dropped;
    if let (Some(parts), false) = (&out.parts, stream) {
        let (text, f) = run.collect().await?;
        let last = out.parsed_last(parts, &text, out.last(&f, load_ns(&run.model)));
        return Ok(with_truncation(Json(last).into_response(), dropped));
    }
    if !stream || out.tools.is_some() {
        let (text, f) = run.collect().await?;
        let load = load_ns(&run.model);
        let calls = out
            .tools
            .as_ref()
            .and_then(|names| tools::parse_reply(&text, names));
        let text = match (&out.tools, &calls) {
            (Some(_), None) => tools::content_of(&text),
            _ => text,
        };
        let mut objs = Vec::new();
        let mut last = out.last(&f, load);
        match (&calls, stream) {
            (Some(c), true) => objs.push(out.tool_chunk(c)),
            (None, true) => objs.push(out.chunk(&text)),
            (Some(c), false) => last["message"] = out.tool_chunk(c)["message"].clone(),
            (None, false) => {
                if out.chat {
                    last["message"]["content"] = json!(text);
                } else {
                    last["response"] = json!(text);
                }
            }
        }
        if !stream {
            return Ok(with_truncation(Json(last).into_response(), dropped));
        }
        objs.push(last);
        let body: String = objs.iter().map(|o| format!("{o}\n")).collect();
        return Ok(ndjson(Body::from(body), dropped));
    }
    let parser = out.parts.as_ref().map(PartsSpec::parser);
    let s = futures_util::stream::unfold(Some((run, out, parser)), |state| async move {
        let (mut run, out, mut parser) = state?;
        match run.next().await {
            Step::Text(t) => {
                let body = match parser.as_mut() {
                    Some(p) => lines(&out, p.push(&t)),
                    None => line(&out.chunk(&t)),
                };
                Some((body, Some((run, out, parser))))
            }
            // The Ollama API never asks for log-probabilities.
            Step::Logprob(_) => Some((Ok(Bytes::new()), Some((run, out, parser)))),
            Step::Done(f) => {
                let load = load_ns(&run.model);
                let mut s = String::new();
                if let Some(p) = parser.as_mut() {
                    for piece in p.finish() {
                        s += &format!("{}\n", out.piece_chunk(piece));
                    }
                }
                s += &format!("{}\n", out.last(&f, load));
                Some((Ok(Bytes::from(s)), None))
            }
            Step::Error(e) => Some((line(&json!({ "error": e })), None)),
        }
    });
    Ok(ndjson(Body::from_stream(s), dropped))
}

/// The lines of parsed pieces (empty while text is held back).
fn lines(out: &Output, pieces: Vec<Piece>) -> Result<Bytes, Infallible> {
    let s: String = pieces
        .into_iter()
        .map(|p| format!("{}\n", out.piece_chunk(p)))
        .collect();
    Ok(Bytes::from(s))
}

pub(crate) fn ndjson(body: Body, dropped: usize) -> Response {
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    with_truncation(r, dropped)
}

#[derive(Deserialize)]
pub struct ChatReq {
    model: String,
    #[serde(default)]
    messages: Vec<Value>,
    #[serde(default)]
    tools: Vec<Value>,
    format: Option<Value>,
    #[serde(default)]
    options: Options,
    stream: Option<bool>,
    keep_alive: Option<Value>,
    #[serde(default)]
    truncate: bool,
    think: Option<Value>,
    /// A knowledge base to answer from (see [`crate::knowledge`]).
    knowledge: Option<Value>,
}

pub async fn chat(
    State(st): State<AppState>,
    Extension(log): Extension<RequestLog>,
    Checked(r): Checked<ChatReq>,
) -> Result<Response, ApiError> {
    parts::think_field(r.think.as_ref())?;
    let ka = keep_alive(&r.keep_alive)?;
    log.model(&r.model);
    if r.messages.is_empty() {
        return load_only(&st, &r.model, ka, true).await;
    }
    let mut params = r.options.to_params()?;
    let names = tools::tool_names(&r.tools)?;
    if !names.is_empty() && r.format.is_some() {
        return Err(ApiError::bad_request("tools and format cannot be combined"));
    }
    let mut msgs = prompt::chat_messages(&r.messages)?;
    let grounding = knowledge::ground(&st, r.knowledge.as_ref(), &mut msgs).await?;
    if let Some(Grounding::Abstained) = grounding {
        st.models.locate(&r.model)?;
        return Ok(knowledge::ollama_abstained(
            &r.model,
            r.stream.unwrap_or(true),
        ));
    }
    let use_ = st.models.acquire(&r.model, ka).await?;
    let m = &use_.model;
    if let Some(o) = crate::modelfile::under(m, &r.options)? {
        params = o.to_params()?;
    }
    let (think, format) = thinking(m, r.think.as_ref())?;
    // The template's own tool syntax when it has one; otherwise a system
    // message and a JSON reply the grammar holds.
    let native = !names.is_empty() && parts::native_tools(&format);
    let mut opts = RenderOptions {
        enable_thinking: think,
        ..RenderOptions::new(true)
    };
    let (grammar, msgs) = if native {
        opts.tools = parts::chat_tools(&r.tools);
        (None, msgs)
    } else if names.is_empty() {
        (
            structured::from_ollama_format(r.format.as_ref())?,
            prompt::with_json_tools(msgs, None),
        )
    } else {
        (
            Some(tools::grammar(&r.tools, &ToolChoice::Auto)?),
            prompt::with_json_tools(
                msgs,
                Some(tools::system_prompt(&r.tools, &ToolChoice::Auto)?),
            ),
        )
    };
    let constraint = structured::constraint(grammar.as_ref(), m);
    // Harmony's channel markers are control tokens: the parser needs their text.
    params.render_special = format.harmony;
    let n_ctx = prompt::request_ctx(m.engine.n_ctx(), r.options.num_ctx)?;
    let fitted = prompt::prepare_one(m, PromptText::Chat(msgs, opts), n_ctx, r.truncate).await?;
    limit_to_ctx(&mut params, n_ctx, m.engine.n_ctx(), fitted.tokens.len())?;
    let run = gen::start(
        use_,
        fitted.tokens.clone(),
        params,
        constraint,
        st.metrics.clone(),
        log,
    )?;
    let out = Output {
        model: r.model.clone(),
        chat: true,
        context: None,
        dropped: fitted.dropped,
        tools: (!names.is_empty() && !native).then_some(names),
        parts: PartsSpec::new(format, native, fitted.opens_thinking),
        citations: knowledge::citations(&grounding),
    };
    respond(run, out, r.stream.unwrap_or(true), &fitted).await
}

#[derive(Deserialize)]
pub struct EmbedReq {
    model: String,
    input: Option<OneOrMany>,
    /// `/api/embeddings` (legacy) names it `prompt`.
    prompt: Option<String>,
    truncate: Option<bool>,
    keep_alive: Option<Value>,
    /// Matryoshka truncation: the first `dimensions` values, renormalised.
    dimensions: Option<u64>,
}

pub async fn embed(
    State(st): State<AppState>,
    Extension(log): Extension<RequestLog>,
    Checked(r): Checked<EmbedReq>,
) -> Result<Response, ApiError> {
    log.model(&r.model);
    let t0 = std::time::Instant::now();
    let inputs = r
        .input
        .ok_or_else(|| ApiError::bad_request("input is required"))?
        .into_vec();
    let ka = keep_alive(&r.keep_alive)?;
    let truncate = r.truncate.unwrap_or(false);
    let (vecs, n, use_) = embed_texts(&st, &r.model, inputs, truncate, r.dimensions, ka).await?;
    log.tokens(n, 0);
    Ok(Json(json!({
        "model": r.model,
        "embeddings": vecs,
        "total_duration": t0.elapsed().as_nanos(),
        "load_duration": load_ns(&use_),
        "prompt_eval_count": n,
    }))
    .into_response())
}

pub async fn embeddings(
    State(st): State<AppState>,
    Extension(log): Extension<RequestLog>,
    Checked(r): Checked<EmbedReq>,
) -> Result<Response, ApiError> {
    log.model(&r.model);
    let prompt = r
        .prompt
        .ok_or_else(|| ApiError::bad_request("prompt is required"))?;
    let ka = keep_alive(&r.keep_alive)?;
    let (mut vecs, n, _use) = embed_texts(
        &st,
        &r.model,
        vec![prompt],
        r.truncate.unwrap_or(false),
        r.dimensions,
        ka,
    )
    .await?;
    log.tokens(n, 0);
    Ok(Json(json!({ "embedding": vecs.pop().unwrap_or_default() })).into_response())
}
