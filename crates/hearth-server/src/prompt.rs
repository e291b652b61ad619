//! From a request to prompt tokens: chat templates, Ollama's Go-template
//! `template` field (the common substitutions), the context check and
//! truncation.

use std::sync::Arc;

use axum::http::HeaderName;
use hearth_tokenizer::{ChatMessage, ChatToolCall, RenderOptions};

/// Response header saying how many prompt tokens `truncate: true` dropped.
pub const TRUNCATED_HEADER: HeaderName = HeaderName::from_static("x-hearth-truncated-tokens");

use crate::error::ApiError;
use crate::models::LoadedModel;

/// Renders Ollama's `template` for a single prompt. Supported: `{{ .System }}`,
/// `{{ .Prompt }}` and `{{ .Response }}` (with optional `-` trim markers);
/// anything after `{{ .Response }}` is dropped since the reply goes there.
/// Any other action is an error that names it.
pub fn render_go_template(template: &str, system: &str, prompt: &str) -> Result<String, ApiError> {
    hearth_store::modelfile::render_template(template, system, prompt, None)
        .map_err(|e| ApiError::bad_request(format!("template: {e}")))
}

/// The chat prompt text for `messages` with the model's template.
pub fn render_chat(
    m: &LoadedModel,
    messages: &[ChatMessage],
    opts: &RenderOptions,
) -> Result<String, ApiError> {
    let messages = &crate::modelfile::messages(m, messages.to_vec());
    if let Some(r) = crate::modelfile::render(m, messages) {
        return r;
    }
    match &m.template {
        Some(t) => t
            .render_with(messages, opts)
            .map_err(|e| ApiError::bad_request(format!("applying the chat template: {e}"))),
        None => Err(ApiError::bad_request(format!(
            "model '{}' has no chat template; use /api/generate with raw: true or a template",
            m.name
        ))),
    }
}

/// Tokens of `text` for the model (BOS added as the model wants, special
/// token texts parsed, as `hearth run` does).
pub fn tokenize(m: &LoadedModel, text: &str) -> Vec<u32> {
    m.tokenizer.encode(text, true, true)
}

/// Refuses, before tokenizing, a text that cannot fit `n_ctx`: no token of
/// the model covers more than `max_token_bytes` bytes, so `text_bytes`
/// bytes are at least `text_bytes / max_token_bytes` tokens.
pub fn check_bytes(m: &LoadedModel, text_bytes: usize, n_ctx: usize) -> Result<(), ApiError> {
    let at_least = text_bytes / m.max_token_bytes.max(1);
    if at_least < n_ctx {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "the prompt is at least {at_least} tokens ({text_bytes} bytes, and no token of this model spans more than {} bytes) but the context holds {n_ctx}; shorten it, raise the server's --ctx, or send \"truncate\": true",
        m.max_token_bytes
    )))
}

/// Where a prompt's text comes from.
pub enum PromptText {
    Text(String),
    /// Rendered with the model's chat template.
    Chat(Vec<ChatMessage>, RenderOptions),
}

/// Renders and tokenizes each prompt and fits it to `n_ctx` (see [`fit`])
/// on a blocking thread, so a large body never stalls other connections; a
/// text far beyond the context is refused without being tokenized
/// ([`check_bytes`]) unless `truncate` asks to keep its end.
pub async fn prepare(
    m: &Arc<LoadedModel>,
    texts: Vec<PromptText>,
    n_ctx: usize,
    truncate: bool,
) -> Result<Vec<Fitted>, ApiError> {
    let m = Arc::clone(m);
    tokio::task::spawn_blocking(move || {
        texts
            .into_iter()
            .map(|t| {
                let text = match t {
                    PromptText::Text(s) => s,
                    PromptText::Chat(msgs, opts) => render_chat(&m, &msgs, &opts)?,
                };
                if !truncate {
                    check_bytes(&m, text.len(), n_ctx)?;
                }
                let mut fitted = fit(&m, tokenize(&m, &text), n_ctx, truncate)?;
                fitted.opens_thinking = crate::parts::format_of(&m).prompt_opens_thinking(&text);
                Ok(fitted)
            })
            .collect()
    })
    .await
    .map_err(|e| ApiError::internal(format!("preparing the prompt: {e}")))?
}

/// [`prepare`] for one prompt.
pub async fn prepare_one(
    m: &Arc<LoadedModel>,
    text: PromptText,
    n_ctx: usize,
    truncate: bool,
) -> Result<Fitted, ApiError> {
    let mut v = prepare(m, vec![text], n_ctx, truncate).await?;
    v.pop()
        .ok_or_else(|| ApiError::internal("preparing the prompt gave nothing"))
}

/// Result of fitting a prompt into the context.
pub struct Fitted {
    pub tokens: Vec<u32>,
    /// Tokens dropped from the front (truncate: true).
    pub dropped: usize,
    /// The rendered prompt leaves the reply inside a reasoning block.
    pub opens_thinking: bool,
}

/// Checks that the prompt fits the context (`n_ctx`, leaving room for at
/// least one generated token). Over it: a 400 with both numbers, or with
/// `truncate` the oldest tokens go (BOS kept) so that the prompt takes at
/// most three quarters of the context.
pub fn fit(
    m: &LoadedModel,
    tokens: Vec<u32>,
    n_ctx: usize,
    truncate: bool,
) -> Result<Fitted, ApiError> {
    if tokens.len() < n_ctx {
        return Ok(Fitted {
            tokens,
            dropped: 0,
            opens_thinking: false,
        });
    }
    if !truncate {
        return Err(ApiError::bad_request(format!(
            "the prompt is {} tokens but the context holds {n_ctx}; shorten it, raise the server's --ctx, or send \"truncate\": true",
            tokens.len()
        )));
    }
    let keep_bos = m.tokenizer.add_bos() && tokens.first() == m.tokenizer.bos().as_ref();
    let budget = (n_ctx * 3 / 4).max(1);
    let head = usize::from(keep_bos);
    let tail = budget.saturating_sub(head).max(1);
    let dropped = tokens.len() - head - tail.min(tokens.len() - head);
    let mut out = Vec::with_capacity(budget);
    out.extend_from_slice(&tokens[..head]);
    out.extend_from_slice(&tokens[head + dropped..]);
    Ok(Fitted {
        tokens: out,
        dropped,
        opens_thinking: false,
    })
}

/// The context a request may use: `num_ctx` when given, at most the
/// engine's. Clients send their own default (often larger than a small
/// model's slot), so a larger one is capped rather than refused; a prompt
/// that does not fit the capped context is still a 400 naming both sizes.
pub fn request_ctx(engine_ctx: usize, num_ctx: Option<i64>) -> Result<usize, ApiError> {
    match num_ctx {
        None => Ok(engine_ctx),
        Some(n) if n < 1 => Err(ApiError::bad_request(format!(
            "invalid num_ctx {n}: expected at least 1"
        ))),
        Some(n) if n as u64 > engine_ctx as u64 => {
            tracing::info!(
                num_ctx = n,
                context = engine_ctx,
                "num_ctx is larger than the server's context per sequence (--ctx); using the server's"
            );
            Ok(engine_ctx)
        }
        Some(n) => Ok(n as usize),
    }
}

/// RFC 3339 UTC time with nanoseconds, as Ollama writes `created_at`.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    hearth_time::rfc3339_nanos(t)
}

/// The text of a message's `content`: a string, null, or OpenAI's list of
/// parts (text parts only).
fn content_text(v: Option<&serde_json::Value>) -> Result<String, ApiError> {
    use serde_json::Value;
    match v {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut out = String::new();
            for p in parts {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        out.push_str(p.get("text").and_then(Value::as_str).unwrap_or(""))
                    }
                    Some(other) => {
                        return Err(ApiError::bad_request(format!(
                            "message content of type '{other}' is not supported (text only)"
                        )))
                    }
                    None => return Err(ApiError::bad_request("a content part has no type")),
                }
            }
            Ok(out)
        }
        Some(_) => Err(ApiError::bad_request(
            "message content must be a string or a list of parts",
        )),
    }
}

/// The text of a JSON value that should be a string (empty when absent).
fn str_field(m: &serde_json::Value, key: &str) -> Result<String, ApiError> {
    match m.get(key) {
        None | Some(serde_json::Value::Null) => Ok(String::new()),
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::bad_request(format!(
            "message field '{key}' must be a string"
        ))),
    }
}

/// Request messages (Ollama or OpenAI shape) as template messages: roles
/// checked (`developer` is `system`), contents as text, an assistant turn's
/// `tool_calls` (arguments as JSON text) and reasoning (`reasoning_content`,
/// or Ollama's `thinking`), a tool result's `tool_call_id` and function
/// name (`name`, or Ollama's `tool_name`).
pub fn chat_messages(messages: &[serde_json::Value]) -> Result<Vec<ChatMessage>, ApiError> {
    use serde_json::Value;
    let mut out = Vec::with_capacity(messages.len() + 1);
    for m in messages {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request("each message needs a role"))?;
        let role = if role == "developer" { "system" } else { role };
        if !matches!(role, "system" | "user" | "assistant" | "tool") {
            return Err(ApiError::bad_request(format!(
                "unknown message role '{role}' (system, user, assistant, tool)"
            )));
        }
        if m.get("images")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            return Err(ApiError::bad_request(
                "images are not supported: hearth runs text-only models",
            ));
        }
        let mut msg = ChatMessage::new(role, content_text(m.get("content"))?);
        msg.reasoning_content = str_field(m, "reasoning_content")?;
        if msg.reasoning_content.is_empty() {
            msg.reasoning_content = str_field(m, "thinking")?;
        }
        msg.tool_call_id = str_field(m, "tool_call_id")?;
        msg.name = str_field(m, "name")?;
        if msg.name.is_empty() {
            msg.name = str_field(m, "tool_name")?;
        }
        for c in m
            .get("tool_calls")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let f = c.get("function").unwrap_or(c);
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::bad_request("each tool call needs a function name"))?;
            msg.tool_calls.push(ChatToolCall {
                id: c
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                name: name.to_string(),
                arguments: match f.get("arguments") {
                    None | Some(Value::Null) => "{}".to_string(),
                    Some(Value::String(s)) => s.clone(),
                    Some(a) => a.to_string(),
                },
            });
        }
        out.push(msg);
    }
    Ok(out)
}

/// Messages for a template without a tool-call syntax of its own: earlier
/// tool calls are shown as the JSON the model was asked to write, and
/// `tool_prompt` joins the system message.
pub fn with_json_tools(
    mut msgs: Vec<ChatMessage>,
    tool_prompt: Option<String>,
) -> Vec<ChatMessage> {
    for m in &mut msgs {
        let calls: Vec<crate::tools::ToolCall> = std::mem::take(&mut m.tool_calls)
            .into_iter()
            .map(|c| crate::tools::ToolCall {
                arguments: serde_json::from_str(&c.arguments)
                    .unwrap_or(serde_json::Value::String(c.arguments)),
                name: c.name,
            })
            .collect();
        if !calls.is_empty() {
            if !m.content.is_empty() {
                m.content.push('\n');
            }
            m.content.push_str(&crate::tools::render_calls(&calls));
        }
    }
    if let Some(tp) = tool_prompt {
        match msgs.first_mut() {
            Some(first) if first.role == "system" => {
                first.content = format!("{}\n\n{tp}", first.content);
            }
            _ => msgs.insert(0, ChatMessage::new("system", tp)),
        }
    }
    msgs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_template_substitutions() {
        let t = "{{ if .System }}x{{ end }}";
        assert!(render_go_template(t, "", "").is_err());
        let t = "<s>{{ .System }}\nUser: {{- .Prompt }}\nBot: {{ .Response }}</s>";
        assert_eq!(
            render_go_template(t, "sys", " hi").expect("render"),
            "<s>sys\nUser: hi\nBot: "
        );
        assert!(render_go_template("{{ .Prompt", "", "").is_err());
        assert_eq!(render_go_template("plain", "", "").expect("r"), "plain");
    }

    #[test]
    fn time_format() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 5);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.000000005Z");
    }

    #[test]
    fn ctx_limits() {
        assert_eq!(request_ctx(4096, None).ok(), Some(4096));
        assert_eq!(request_ctx(4096, Some(2048)).ok(), Some(2048));
        assert_eq!(request_ctx(4096, Some(8192)).ok(), Some(4096));
        assert!(request_ctx(4096, Some(0)).is_err());
    }
}
