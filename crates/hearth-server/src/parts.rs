//! Replies as reasoning, content and tool calls, in the syntax of the
//! model's family (`hearth-reply`), for both APIs: which syntax a loaded
//! model writes, whether its template offers tools itself, and one
//! choice's parser as its text streams.

use hearth_reply::{ParseOptions, Piece, ReplyFormat, ReplyParser, ToolCall, ToolSyntax};
use hearth_tokenizer::ChatTool;
use serde_json::Value;

use crate::error::ApiError;
use crate::models::LoadedModel;

/// The syntax of the model's replies: its chat template's family's, or
/// plain text for a built-in template or a Modelfile `TEMPLATE`.
pub fn format_of(m: &LoadedModel) -> ReplyFormat {
    match (
        &m.config.template,
        m.template.as_ref().and_then(|t| t.source()),
    ) {
        (None, Some(src)) => ReplyFormat::from_template(src),
        _ => ReplyFormat::plain(),
    }
}

/// Whether the model's template describes tools and its replies have a
/// call syntax hearth reads (otherwise tools are offered through a system
/// message and a JSON reply).
pub fn native_tools(format: &ReplyFormat) -> bool {
    format.harmony || format.tools != ToolSyntax::None
}

/// The request's `tools` as the template shows them.
pub fn chat_tools(tools: &[Value]) -> Vec<ChatTool> {
    tools
        .iter()
        .filter_map(|t| {
            let f = t.get("function")?;
            Some(ChatTool {
                name: f.get("name")?.as_str()?.to_string(),
                description: f
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                parameters: f
                    .get("parameters")
                    .filter(|p| !p.is_null())
                    .cloned()
                    .unwrap_or_else(|| serde_json::json!({})),
            })
        })
        .collect()
}

/// Ollama's `think`: `true`/`false`, or a level (`"high"`, `"medium"`,
/// `"low"`, which gpt-oss reads); `None` when not given.
pub fn think_field(v: Option<&Value>) -> Result<Option<bool>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if matches!(s.as_str(), "high" | "medium" | "low") => Ok(Some(true)),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid think {other}: expected true, false, \"high\", \"medium\" or \"low\""
        ))),
    }
}

/// What one reply is parsed for.
#[derive(Clone, Debug)]
pub struct PartsSpec {
    pub format: ReplyFormat,
    pub opts: ParseOptions,
}

impl PartsSpec {
    /// `None` when the model's replies are plain text.
    pub fn new(format: ReplyFormat, tools: bool, in_thinking: bool) -> Option<PartsSpec> {
        (!format.is_plain()).then_some(PartsSpec {
            format,
            opts: ParseOptions { tools, in_thinking },
        })
    }

    pub fn parser(&self) -> ReplyParser {
        ReplyParser::new(&self.format, self.opts)
    }

    /// A whole reply's (thinking, content, calls).
    pub fn parse_all(&self, text: &str) -> (String, String, Vec<ToolCall>) {
        let mut p = self.parser();
        let mut pieces = p.push(text);
        pieces.extend(p.finish());
        hearth_reply::collect(pieces)
    }
}

/// One piece as the fields of a message delta: `(thinking, content, call)`.
pub fn piece_fields(p: Piece) -> (Option<String>, Option<String>, Option<ToolCall>) {
    match p {
        Piece::Thinking(t) => (Some(t), None, None),
        Piece::Content(t) => (None, Some(t), None),
        Piece::ToolCall(c) => (None, None, Some(c)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn qwen() -> ReplyFormat {
        ReplyFormat::from_template("<|im_start|>{# <tool_call> #}<think></think>")
    }

    #[test]
    fn native_tool_calls_stream_as_openai_deltas_and_ollama_chunks() {
        let spec = PartsSpec::new(qwen(), true, false).unwrap();
        let mut p = spec.parser();
        let text = "<think>check</think>Sure.<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
        let mut pieces = Vec::new();
        // Token-sized steps, as the engine sends them.
        for chunk in text.as_bytes().chunks(3) {
            pieces.extend(p.push(std::str::from_utf8(chunk).unwrap()));
        }
        pieces.extend(p.finish());
        let fields: Vec<_> = pieces.into_iter().map(piece_fields).collect();
        let thinking: String = fields.iter().filter_map(|f| f.0.clone()).collect();
        let content: String = fields.iter().filter_map(|f| f.1.clone()).collect();
        let calls: Vec<ToolCall> = fields.iter().filter_map(|f| f.2.clone()).collect();
        assert_eq!((thinking.as_str(), content.as_str()), ("check", "Sure."));
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].arguments, json!({"city": "Paris"}));
        assert_eq!(spec.parse_all(text).2, calls);
        // Without tools offered, the call's text stays content.
        let plain = PartsSpec::new(qwen(), false, false).unwrap();
        assert!(plain.parse_all(text).1.contains("<tool_call>"));
        assert!(PartsSpec::new(ReplyFormat::plain(), true, false).is_none());
        assert!(native_tools(&qwen()) && !native_tools(&ReplyFormat::plain()));
    }

    #[test]
    fn request_tools_and_think() {
        let tools = json!([{"type": "function", "function": {"name": "f", "description": "d"}}]);
        let t = chat_tools(tools.as_array().unwrap());
        assert_eq!(
            (t[0].name.as_str(), t[0].parameters.clone()),
            ("f", json!({}))
        );
        assert_eq!(think_field(Some(&json!("low"))).ok(), Some(Some(true)));
        assert_eq!(think_field(None).ok(), Some(None));
        assert!(think_field(Some(&json!("max"))).is_err());
    }
}
