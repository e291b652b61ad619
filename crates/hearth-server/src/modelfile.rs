//! What a store model's Modelfile (`hearth create`, `/api/create`) adds to
//! a request: its parameters under the request's own `options`, its system
//! message when the request brings none, its example messages before the
//! conversation, and its `TEMPLATE` in place of the chat template.

use hearth_tokenizer::ChatMessage;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::models::LoadedModel;

/// The request's own settings (Ollama `options`, or OpenAI's sampling
/// fields, which share Ollama's names) over the model's Modelfile
/// parameters; `None` when the model has none (the request applies as it
/// is). A field the request sets wins; keys the type does not have are left.
pub fn under<T: Serialize + DeserializeOwned>(
    m: &LoadedModel,
    request: &T,
) -> Result<Option<T>, ApiError> {
    if m.config.parameters.is_empty() {
        return Ok(None);
    }
    let mut merged = m.config.parameters.clone();
    let own = serde_json::to_value(request)
        .map_err(|e| ApiError::internal(format!("reading the request's options: {e}")))?;
    if let Value::Object(o) = own {
        merged.extend(o.into_iter().filter(|(_, v)| !v.is_null()));
    }
    serde_json::from_value(Value::Object(merged))
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("the model's Modelfile parameters: {e}")))
}

/// The Modelfile's `num_predict` (a token limit; negative: none).
pub fn num_predict(m: &LoadedModel) -> Option<usize> {
    let n = m.config.parameters.get("num_predict")?.as_i64()?;
    usize::try_from(n).ok()
}

/// The conversation with the model's system message (when it has none)
/// and example messages in front.
pub fn messages(m: &LoadedModel, msgs: Vec<ChatMessage>) -> Vec<ChatMessage> {
    let c = &m.config;
    if c.system.is_none() && c.messages.is_empty() {
        return msgs;
    }
    let mut out = Vec::with_capacity(msgs.len() + c.messages.len() + 1);
    let has_system = msgs.first().is_some_and(|f| f.role == "system");
    let mut rest = msgs.into_iter().peekable();
    if has_system {
        out.extend(rest.next());
    } else if let Some(s) = &c.system {
        out.push(ChatMessage::new("system", s.clone()));
    }
    out.extend(
        c.messages
            .iter()
            .map(|e| ChatMessage::new(e.role.clone(), e.content.clone())),
    );
    out.extend(rest);
    out
}

/// The prompt text of a conversation under the model's `TEMPLATE`, turn
/// by turn; `None` when the model has no such template.
pub fn render(m: &LoadedModel, msgs: &[ChatMessage]) -> Option<Result<String, ApiError>> {
    let t = m.config.template.as_ref()?;
    let conv = msgs.iter().map(|x| (x.role.as_str(), x.content.as_str()));
    Some(
        hearth_store::modelfile::render_conversation(t, conv)
            .map_err(|e| ApiError::bad_request(format!("the model's TEMPLATE: {e}"))),
    )
}
