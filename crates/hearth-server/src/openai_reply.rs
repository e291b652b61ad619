//! The replies of `/v1/chat/completions` and `/v1/completions`: one choice per
//! run (`n` and several prompts), whole or as server-sent events
//! (`data: {json}\n\n` … `data: [DONE]\n\n`), with log-probabilities when
//! asked for.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use hearth_sample::TokenLogprob;
use hearth_tokenizer::Tokenizer;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::gen::{Finished, Run, Step};
use crate::parts::{piece_fields, PartsSpec};
use crate::prompt::TRUNCATED_HEADER;
use crate::tools::{self, ToolCall};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub fn new_id(prefix: &str) -> String {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    format!("{prefix}-{t:x}{n:x}")
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// OpenAI's stand-in for a log-probability that is `-inf` (JSON has no infinities).
const NEG_INF_LOGPROB: f32 = -9999.0;

fn finite(lp: f32) -> f32 {
    if lp.is_finite() {
        lp
    } else {
        NEG_INF_LOGPROB
    }
}

/// A token's text as the APIs show it: its piece, invalid UTF-8 replaced (the raw bytes go in
/// `bytes`).
fn token_text(tok: &Tokenizer, id: u32) -> (String, &[u8]) {
    let b = tok.token_piece(id);
    (String::from_utf8_lossy(b).into_owned(), b)
}

/// The shape of one reply's objects.
pub struct Reply {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub chat: bool,
    pub include_usage: bool,
    /// Offered tool names, when the reply may be a tool call in the JSON
    /// the tool grammar holds.
    pub tools: Option<Vec<String>>,
    /// The model's reply syntax (reasoning, native tool calls), when it has one.
    pub parts: Option<PartsSpec>,
    pub dropped: usize,
    /// Log-probabilities are shown (chat: `logprobs: true`; completions: `logprobs: N`).
    pub logprobs: bool,
    /// The tokenizer, for the tokens' text in `logprobs`.
    pub tok: std::sync::Arc<Tokenizer>,
    /// Prompt tokens, counted once per prompt (not once per choice).
    pub prompt_tokens: usize,
    /// The sources of a reply grounded in a knowledge base, top-level in
    /// the response and in each choice's last chunk.
    pub citations: Option<Value>,
}

/// One call as a `tool_calls` entry (`index` when streaming).
fn tool_call_json(index: usize, name: &str, arguments: &Value, streaming: bool) -> Value {
    let mut call = json!({
        "id": format!("call_{}", new_id("t")),
        "type": "function",
        "function": {"name": name, "arguments": arguments.to_string()},
    });
    if streaming {
        call["index"] = json!(index);
    }
    call
}

fn tool_calls_json(calls: &[ToolCall], streaming: bool) -> Value {
    let v: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, c)| tool_call_json(i, &c.name, &c.arguments, streaming))
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

    /// The `logprobs` of a choice: chat's `{content: [...]}`, or the completions shape with
    /// `text_offset` counted in characters from `offset`.
    fn logprobs_json(&self, lps: &[TokenLogprob], offset: &mut usize) -> Value {
        if !self.logprobs {
            return Value::Null;
        }
        if self.chat {
            let entry = |id: u32, lp: f32| {
                let (text, bytes) = token_text(&self.tok, id);
                json!({"token": text, "logprob": finite(lp), "bytes": bytes})
            };
            let content: Vec<Value> = lps
                .iter()
                .map(|l| {
                    let mut e = entry(l.id, l.logprob);
                    e["top_logprobs"] = json!(l
                        .top
                        .iter()
                        .map(|&(id, lp)| entry(id, lp))
                        .collect::<Vec<_>>());
                    e
                })
                .collect();
            return json!({"content": content, "refusal": null});
        }
        let (mut tokens, mut token_lps, mut tops, mut offsets) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for l in lps {
            let (text, _) = token_text(&self.tok, l.id);
            offsets.push(*offset);
            *offset += text.chars().count();
            tokens.push(text);
            token_lps.push(finite(l.logprob));
            let top: serde_json::Map<String, Value> = l
                .top
                .iter()
                .map(|&(id, lp)| (token_text(&self.tok, id).0, json!(finite(lp))))
                .collect();
            tops.push(Value::Object(top));
        }
        json!({"tokens": tokens, "token_logprobs": token_lps, "top_logprobs": tops,
               "text_offset": offsets})
    }

    fn chunk(&self, index: usize, delta: Value, logprobs: Value, finish: Option<&str>) -> Value {
        let choice = if self.chat {
            json!({"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish})
        } else {
            json!({"index": index, "text": delta.get("content").cloned().unwrap_or(json!("")),
                   "logprobs": logprobs, "finish_reason": finish})
        };
        let mut v = json!({
            "id": self.id, "object": self.object(), "created": self.created,
            "model": self.model, "system_fingerprint": "hearth", "choices": [choice],
        });
        if let (Some(c), Some(_)) = (&self.citations, finish) {
            v["citations"] = c.clone();
        }
        v
    }

    fn usage(&self, completion_tokens: usize) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": self.prompt_tokens + completion_tokens,
        })
    }

    fn usage_chunk(&self, completion_tokens: usize) -> Value {
        json!({
            "id": self.id, "object": self.object(), "created": self.created,
            "model": self.model, "system_fingerprint": "hearth", "choices": [],
            "usage": self.usage(completion_tokens),
        })
    }

    /// The tool calls in a finished text, if tools were offered and it is one.
    fn calls(&self, text: &str) -> (Option<Vec<ToolCall>>, String) {
        let calls = self
            .tools
            .as_ref()
            .and_then(|names| tools::parse_reply(text, names));
        let text = match (&self.tools, &calls) {
            (Some(_), None) => tools::content_of(text),
            _ => text.to_string(),
        };
        (calls, text)
    }

    fn choice(&self, index: usize, text: &str, f: &Finished) -> Value {
        if let (Some(parts), true) = (&self.parts, self.chat) {
            let (thinking, content, calls) = parts.parse_all(text);
            let mut msg = json!({"role": "assistant", "content": content});
            if !thinking.is_empty() {
                msg["reasoning_content"] = json!(thinking);
            }
            let mut finish = f.finish.as_str();
            if !calls.is_empty() {
                let v: Vec<Value> = calls
                    .iter()
                    .enumerate()
                    .map(|(i, c)| tool_call_json(i, &c.name, &c.arguments, false))
                    .collect();
                msg["tool_calls"] = json!(v);
                if msg["content"] == "" {
                    msg["content"] = Value::Null;
                }
                finish = "tool_calls";
            }
            let logprobs = self.logprobs_json(&f.logprobs, &mut 0);
            return json!({"index": index, "message": msg, "logprobs": logprobs, "finish_reason": finish});
        }
        let (calls, text) = self.calls(text);
        let finish = if calls.is_some() {
            "tool_calls"
        } else {
            f.finish.as_str()
        };
        let logprobs = self.logprobs_json(&f.logprobs, &mut 0);
        if self.chat {
            let mut msg = json!({"role": "assistant", "content": text});
            if let Some(c) = &calls {
                msg["content"] = Value::Null;
                msg["tool_calls"] = tool_calls_json(c, false);
            }
            json!({"index": index, "message": msg, "logprobs": logprobs, "finish_reason": finish})
        } else {
            json!({"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish})
        }
    }

    fn whole(&self, done: &[(String, Finished)]) -> Value {
        let choices: Vec<Value> = done
            .iter()
            .enumerate()
            .map(|(i, (text, f))| self.choice(i, text, f))
            .collect();
        let completion: usize = done.iter().map(|(_, f)| f.stats.gen_tokens).sum();
        let mut v = json!({
            "id": self.id,
            "object": if self.chat { "chat.completion" } else { "text_completion" },
            "created": self.created, "model": self.model, "system_fingerprint": "hearth",
            "choices": choices, "usage": self.usage(completion),
        });
        if self.dropped > 0 {
            v["truncated_tokens"] = json!(self.dropped);
        }
        if let Some(c) = &self.citations {
            v["citations"] = c.clone();
        }
        v
    }

    /// The streamed events of a finished choice whose text was held until the end (tools).
    fn collected_events(&self, index: usize, text: &str, f: &Finished) -> String {
        let mut s = String::new();
        if self.chat {
            let head = json!({"role": "assistant", "content": ""});
            s += &event(&self.chunk(index, head, Value::Null, None));
        }
        let (calls, content) = self.calls(text);
        let lps = self.logprobs_json(&f.logprobs, &mut 0);
        let finish = match calls {
            Some(c) => {
                let delta = json!({"tool_calls": tool_calls_json(&c, true)});
                s += &event(&self.chunk(index, delta, lps, None));
                "tool_calls"
            }
            None => {
                s += &event(&self.chunk(index, json!({"content": content}), lps, None));
                f.finish.as_str()
            }
        };
        s + &event(&self.chunk(index, json!({}), Value::Null, Some(finish)))
    }
}

pub(crate) fn event(v: &Value) -> String {
    format!("data: {v}\n\n")
}

pub(crate) fn sse_response(body: Body, dropped: usize) -> Response {
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

/// Where a streamed reply stands: the choices still running, their log-probabilities not yet
/// sent and their text offsets, and the tokens generated so far.
struct Streaming {
    reply: Reply,
    steps: futures_util::stream::SelectAll<futures_util::stream::BoxStream<'static, (usize, Step)>>,
    pending: Vec<Vec<TokenLogprob>>,
    offsets: Vec<usize>,
    completion_tokens: usize,
    /// Each choice's reply parser (when the model has a reply syntax) and
    /// how many calls it has sent.
    parsers: Vec<Option<hearth_reply::ReplyParser>>,
    calls_sent: Vec<usize>,
}

impl Streaming {
    /// The events for one step of choice `i` (empty while log-probabilities wait for text).
    fn events(&mut self, i: usize, step: Step) -> String {
        match step {
            Step::Logprob(l) => {
                self.pending[i].push(l);
                String::new()
            }
            Step::Text(t) => {
                let deltas = match self.parsers[i].as_mut().map(|p| p.push(&t)) {
                    Some(pieces) => deltas(&mut self.calls_sent[i], pieces),
                    None => vec![json!({"content": t})],
                };
                let r = &self.reply;
                let mut s = String::new();
                for d in deltas {
                    // The log-probabilities so far go with the first delta.
                    let lps = std::mem::take(&mut self.pending[i]);
                    let lps = r.logprobs_json(&lps, &mut self.offsets[i]);
                    s += &event(&r.chunk(i, d, lps, None));
                }
                s
            }
            Step::Done(f) => {
                self.completion_tokens += f.stats.gen_tokens;
                let mut s = String::new();
                if let Some(rest) = self.parsers[i].as_mut().map(|p| p.finish()) {
                    for d in deltas(&mut self.calls_sent[i], rest) {
                        s += &event(&self.reply.chunk(i, d, Value::Null, None));
                    }
                }
                let r = &self.reply;
                let finish = if self.calls_sent[i] > 0 {
                    "tool_calls"
                } else {
                    f.finish.as_str()
                };
                if !self.pending[i].is_empty() {
                    let lps = std::mem::take(&mut self.pending[i]);
                    let lps = r.logprobs_json(&lps, &mut self.offsets[i]);
                    s += &event(&r.chunk(i, json!({"content": ""}), lps, None));
                }
                s + &event(&r.chunk(i, json!({}), Value::Null, Some(finish)))
            }
            Step::Error(e) => event(
                &json!({"error": {"message": e, "type": "server_error", "param": null, "code": null}}),
            ),
        }
    }
}

/// The deltas of parsed pieces: `reasoning_content`, `content`, or one
/// `tool_calls` entry each (`calls_sent` numbers them).
fn deltas(calls_sent: &mut usize, pieces: Vec<hearth_reply::Piece>) -> Vec<Value> {
    pieces
        .into_iter()
        .map(|p| match piece_fields(p) {
            (Some(t), _, _) => json!({"reasoning_content": t}),
            (_, Some(t), _) => json!({"content": t}),
            (_, _, Some(c)) => {
                let k = *calls_sent;
                *calls_sent += 1;
                json!({"tool_calls": [tool_call_json(k, &c.name, &c.arguments, true)]})
            }
            _ => json!({}),
        })
        .collect()
}

/// One run's steps, tagged with its choice index, ending after `Done` or `Error`.
fn steps_of(i: usize, run: Run) -> futures_util::stream::BoxStream<'static, (usize, Step)> {
    futures_util::stream::unfold(Some(run), move |run| async move {
        let mut run = run?;
        let step = run.next().await;
        let more = matches!(step, Step::Text(_) | Step::Logprob(_));
        Some(((i, step), more.then_some(run)))
    })
    .boxed()
}

fn with_truncation(mut r: Response, dropped: usize) -> Response {
    if dropped > 0 {
        r.headers_mut()
            .insert(TRUNCATED_HEADER, HeaderValue::from(dropped));
    }
    r
}

/// Answers with every run's choice, whole or streamed.
pub async fn respond(runs: Vec<Run>, reply: Reply, stream: bool) -> Result<Response, ApiError> {
    let dropped = reply.dropped;
    if !stream || reply.tools.is_some() {
        // A tool call is only known once the reply is whole.
        let done = collect_all(runs).await?;
        if !stream {
            return Ok(with_truncation(
                Json(reply.whole(&done)).into_response(),
                dropped,
            ));
        }
        let mut s = String::new();
        for (i, (text, f)) in done.iter().enumerate() {
            s += &reply.collected_events(i, text, f);
        }
        if reply.include_usage {
            let n: usize = done.iter().map(|(_, f)| f.stats.gen_tokens).sum();
            s += &event(&reply.usage_chunk(n));
        }
        s += "data: [DONE]\n\n";
        return Ok(sse_response(Body::from(s), dropped));
    }
    let n = runs.len();
    let head: String = if reply.chat {
        (0..n)
            .map(|i| {
                let delta = json!({"role": "assistant", "content": ""});
                event(&reply.chunk(i, delta, Value::Null, None))
            })
            .collect()
    } else {
        String::new()
    };
    let parsers = (0..n)
        .map(|_| {
            reply
                .parts
                .as_ref()
                .filter(|_| reply.chat)
                .map(PartsSpec::parser)
        })
        .collect();
    let state = Streaming {
        parsers,
        calls_sent: vec![0; n],
        reply,
        steps: futures_util::stream::select_all(
            runs.into_iter().enumerate().map(|(i, r)| steps_of(i, r)),
        ),
        pending: vec![Vec::new(); n],
        offsets: vec![0; n],
        completion_tokens: 0,
    };
    let body = futures_util::stream::unfold(Some(state), |state| async move {
        let mut st = state?;
        loop {
            let Some((i, step)) = st.steps.next().await else {
                let mut s = String::new();
                if st.reply.include_usage {
                    s += &event(&st.reply.usage_chunk(st.completion_tokens));
                }
                s += "data: [DONE]\n\n";
                return Some((Ok::<_, Infallible>(Bytes::from(s)), None));
            };
            let failed = matches!(step, Step::Error(_));
            let s = st.events(i, step);
            if failed {
                // One choice failed: the reply ends here (the other runs are cancelled).
                return Some((Ok(Bytes::from(s + "data: [DONE]\n\n")), None));
            }
            if !s.is_empty() {
                return Some((Ok(Bytes::from(s)), Some(st)));
            }
        }
    });
    Ok(sse_response(
        Body::from_stream(
            futures_util::stream::iter((!head.is_empty()).then(|| Ok(Bytes::from(head))))
                .chain(body),
        ),
        dropped,
    ))
}

/// Runs every choice to its end, concurrently.
async fn collect_all(runs: Vec<Run>) -> Result<Vec<(String, Finished)>, ApiError> {
    let all = futures_util::future::join_all(
        runs.into_iter()
            .map(|mut r| async move { r.collect().await }),
    )
    .await;
    all.into_iter().collect()
}
