//! Chat grounded in a knowledge base: `/api/chat` and
//! `/v1/chat/completions` take `"knowledge": "KB"` (or `{"kb": "KB", "k":
//! N}`). The last user message is the query; its turn is rewritten to the
//! numbered sources and the question, with the instructions `hearth rag
//! ask` gives, and the reply carries `citations` (`n`, `source`, `page`,
//! `span`, `heading`, `text`, `score`) in its final object. When retrieval
//! abstains the model is not run: the answer is "not in the documents"
//! with no citations, in the API's own shape.

use std::time::SystemTime;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hearth_rag::answer::{self, INSTRUCTIONS, NOT_FOUND};
use hearth_tokenizer::ChatMessage;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::openai_reply::{event, new_id, now_secs, sse_response};
use crate::prompt::rfc3339;
use crate::AppState;

/// Passages given to the model when the request does not say.
const DEFAULT_K: usize = 4;

/// What retrieval decided for a chat request.
pub enum Grounding {
    /// The messages now hold the sources; these are their citations.
    Cited(Value),
    /// Nothing relevant: answer [`NOT_FOUND`] without the model.
    Abstained,
}

/// The knowledge base and passage count a `knowledge` field names.
fn parse(v: &Value) -> Result<(String, usize), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "knowledge must be a knowledge base name or {\"kb\": NAME, \"k\": PASSAGES}",
        )
    };
    match v {
        Value::String(s) => Ok((s.clone(), DEFAULT_K)),
        Value::Object(o) => {
            if let Some(extra) = o.keys().find(|k| !matches!(k.as_str(), "kb" | "k")) {
                return Err(ApiError::bad_request(format!(
                    "knowledge has an unknown field '{extra}' (it takes kb and k)"
                )));
            }
            let kb = o.get("kb").and_then(Value::as_str).ok_or_else(bad)?;
            let k = match o.get("k") {
                None | Some(Value::Null) => DEFAULT_K,
                Some(k) => k
                    .as_u64()
                    .and_then(|k| usize::try_from(k).ok())
                    .ok_or_else(|| ApiError::bad_request("knowledge.k must be a whole number"))?,
            };
            Ok((kb.to_string(), k))
        }
        _ => Err(bad()),
    }
}

/// Retrieves for the last user message of `msgs` from the knowledge base
/// `knowledge` names and, unless retrieval abstains, rewrites that message
/// to the numbered sources and the question and adds the instructions to
/// the system message. `None`: the request has no `knowledge`.
pub async fn ground(
    st: &AppState,
    knowledge: Option<&Value>,
    msgs: &mut Vec<ChatMessage>,
) -> Result<Option<Grounding>, ApiError> {
    let Some(v) = knowledge.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let (kb, k) = parse(v)?;
    let Some(at) = msgs.iter().rposition(|m| m.role == "user") else {
        return Err(ApiError::bad_request(
            "knowledge needs a user message to retrieve with",
        ));
    };
    let question = msgs[at].content.clone();
    let found = crate::rag::retrieve(st, &kb, question.clone(), k).await?;
    if found.abstained || found.hits.is_empty() {
        return Ok(Some(Grounding::Abstained));
    }
    msgs[at].content = answer::prompt(&question, &found.hits);
    match msgs.first_mut().filter(|m| m.role == "system") {
        Some(sys) => sys.content = format!("{}\n\n{INSTRUCTIONS}", sys.content),
        None => msgs.insert(0, ChatMessage::new("system", INSTRUCTIONS)),
    }
    Ok(Some(Grounding::Cited(json!(answer::citations(
        &found.hits
    )))))
}

/// The citations of a grounded reply (`None`: not grounded).
pub fn citations(g: &Option<Grounding>) -> Option<Value> {
    match g {
        Some(Grounding::Cited(c)) => Some(c.clone()),
        _ => None,
    }
}

/// `/api/chat`'s reply when retrieval abstains: one object, or a content
/// line and a final line as NDJSON.
pub fn ollama_abstained(model: &str, stream: bool) -> Response {
    let at = rfc3339(SystemTime::now());
    let msg = |content: &str| json!({"role": "assistant", "content": content});
    let last = json!({
        "model": model, "created_at": at, "message": msg(if stream { "" } else { NOT_FOUND }),
        "done": true, "done_reason": "stop", "total_duration": 0, "load_duration": 0,
        "prompt_eval_count": 0, "eval_count": 0, "citations": [],
    });
    if !stream {
        return Json(last).into_response();
    }
    let first = json!({"model": model, "created_at": at, "message": msg(NOT_FOUND), "done": false});
    crate::ollama::ndjson(Body::from(format!("{first}\n{last}\n")), 0)
}

/// `/v1/chat/completions`' reply when retrieval abstains: a
/// `chat.completion`, or its chunks as server-sent events.
pub fn openai_abstained(model: &str, stream: bool) -> Response {
    let id = new_id("chatcmpl");
    let created = now_secs();
    let usage = json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0});
    if !stream {
        return Json(json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "system_fingerprint": "hearth",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": NOT_FOUND},
                         "logprobs": null, "finish_reason": "stop"}],
            "usage": usage, "citations": [],
        }))
        .into_response();
    }
    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": "hearth",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        })
    };
    let mut last = chunk(json!({}), json!("stop"));
    last["citations"] = json!([]);
    let body = [
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"content": NOT_FOUND}), Value::Null),
        last,
    ]
    .iter()
    .map(event)
    .collect::<String>()
        + "data: [DONE]\n\n";
    sse_response(Body::from(body), 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_knowledge_field_is_a_name_or_kb_and_k() {
        assert_eq!(parse(&json!("notes")).unwrap(), ("notes".into(), DEFAULT_K));
        assert_eq!(
            parse(&json!({"kb": "notes", "k": 2})).unwrap(),
            ("notes".into(), 2)
        );
        for bad in [
            json!(3),
            json!({"k": 2}),
            json!({"kb": "notes", "k": -1}),
            json!({"kb": "notes", "top": 2}),
        ] {
            assert!(parse(&bad).is_err(), "{bad}");
        }
    }
}
