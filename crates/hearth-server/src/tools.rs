//! Tool calls for models whose template has no tool-call format of its
//! own: the tools are described in a system message that asks for a JSON
//! reply `{"tool_calls":[{"name":..,"arguments":{..}}]}`, and the reply is
//! parsed back into calls. (The grammar crate's tool-call schema will
//! constrain that reply; the parser accepts it and the common variants.)

use std::sync::Arc;

use hearth_grammar::Grammar;
use serde_json::{json, Value};

use crate::error::ApiError;

/// A parsed tool call.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    pub name: String,
    pub arguments: Value,
}

/// What the model may do with the tools.
#[derive(Clone, Debug, PartialEq)]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    Named(String),
}

/// Parses OpenAI's `tool_choice` (`"auto"`, `"none"`, `"required"`, or
/// `{"type":"function","function":{"name":..}}`).
pub fn parse_tool_choice(v: Option<&Value>) -> Result<ToolChoice, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(ToolChoice::Auto),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(ApiError::bad_request(format!(
                "invalid tool_choice '{other}': expected auto, none, required or a named function"
            ))),
        },
        Some(v) => v
            .pointer("/function/name")
            .and_then(Value::as_str)
            .map(|n| ToolChoice::Named(n.to_string()))
            .ok_or_else(|| {
                ApiError::bad_request("invalid tool_choice: expected {\"type\":\"function\",\"function\":{\"name\":...}}")
            }),
    }
}

/// Names of the functions in an OpenAI/Ollama `tools` list; every entry
/// must be `{"type":"function","function":{"name":..}}`.
pub fn tool_names(tools: &[Value]) -> Result<Vec<String>, ApiError> {
    tools
        .iter()
        .map(|t| {
            t.pointer("/function/name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "each tool needs {\"type\":\"function\",\"function\":{\"name\":...}}",
                    )
                })
        })
        .collect()
}

fn grammar_choice(choice: &ToolChoice) -> hearth_grammar::ToolChoice {
    match choice {
        ToolChoice::Required => hearth_grammar::ToolChoice::Required,
        ToolChoice::Named(n) => hearth_grammar::ToolChoice::Function(n.clone()),
        ToolChoice::Auto | ToolChoice::None => hearth_grammar::ToolChoice::Auto,
    }
}

/// The grammar a reply must follow when tools are offered: one JSON object,
/// `{"tool_calls":[{"name":..,"arguments":{..}}]}` with arguments valid for
/// the named tool's parameters, or (unless a call is required)
/// `{"content":".."}`.
pub fn grammar(tools: &[Value], choice: &ToolChoice) -> Result<Arc<Grammar>, ApiError> {
    let schema = hearth_grammar::tool_call_schema(tools, &grammar_choice(choice))
        .map_err(|e| ApiError::bad_request(format!("tools: {e}")))?;
    let g =
        Grammar::from_schema(&schema).map_err(|e| ApiError::bad_request(format!("tools: {e}")))?;
    Ok(Arc::new(g))
}

/// The system text that offers the tools and the reply format [`grammar`]
/// enforces.
pub fn system_prompt(tools: &[Value], choice: &ToolChoice) -> Result<String, ApiError> {
    hearth_grammar::tool_system_prompt(tools, &grammar_choice(choice))
        .map_err(|e| ApiError::bad_request(format!("tools: {e}")))
}

/// The text of a reply that answered without a tool: the `content` of
/// `{"content":".."}`, or the text itself.
pub fn content_of(text: &str) -> String {
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(Value::Object(o)) if o.len() == 1 => match o.get("content") {
            Some(Value::String(c)) => c.clone(),
            _ => text.to_string(),
        },
        _ => text.to_string(),
    }
}

/// How an assistant message's earlier tool calls are shown to the model:
/// the same JSON it was asked to write.
pub fn render_calls(calls: &[ToolCall]) -> String {
    let v: Vec<Value> = calls
        .iter()
        .map(|c| json!({"name": c.name, "arguments": c.arguments}))
        .collect();
    json!({ "tool_calls": v }).to_string()
}

/// The tool calls in a model's reply, when it is one; only calls of
/// offered functions count.
pub fn parse_reply(text: &str, offered: &[String]) -> Option<Vec<ToolCall>> {
    let mut t = text.trim();
    for (open, close) in [
        ("<tool_call>", "</tool_call>"),
        ("```json", "```"),
        ("```", "```"),
    ] {
        if let Some(inner) = t.strip_prefix(open) {
            t = inner.strip_suffix(close).unwrap_or(inner).trim();
        }
    }
    let v: Value = serde_json::from_str(t).ok()?;
    let items: Vec<Value> = match v {
        Value::Object(ref o) if o.contains_key("tool_calls") => {
            o.get("tool_calls")?.as_array()?.clone()
        }
        Value::Object(_) => vec![v],
        Value::Array(a) => a,
        _ => return None,
    };
    let calls: Vec<ToolCall> = items
        .into_iter()
        .filter_map(|c| {
            let c = c.get("function").cloned().unwrap_or(c);
            let name = c.get("name")?.as_str()?.to_string();
            let arguments = match c.get("arguments").or_else(|| c.get("parameters")) {
                Some(Value::String(s)) => serde_json::from_str(s).ok()?,
                Some(v) => v.clone(),
                None => json!({}),
            };
            offered
                .contains(&name)
                .then_some(ToolCall { name, arguments })
        })
        .collect();
    (!calls.is_empty()).then_some(calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_models_write() {
        let names = vec!["get_weather".to_string()];
        let want = vec![ToolCall {
            name: "get_weather".into(),
            arguments: json!({"city": "Paris"}),
        }];
        for text in [
            r#"{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}"#,
            r#"<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>"#,
            "```json\n[{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Paris\\\"}\"}]\n```",
        ] {
            assert_eq!(parse_reply(text, &names), Some(want.clone()), "{text}");
        }
        assert_eq!(parse_reply("It is sunny.", &names), None);
        assert_eq!(
            parse_reply(r#"{"name": "other", "arguments": {}}"#, &names),
            None
        );
    }

    #[test]
    fn tool_choice_forms() {
        assert_eq!(parse_tool_choice(None).ok(), Some(ToolChoice::Auto));
        assert_eq!(
            parse_tool_choice(Some(&json!("none"))).ok(),
            Some(ToolChoice::None)
        );
        assert_eq!(
            parse_tool_choice(Some(&json!({"type":"function","function":{"name":"f"}}))).ok(),
            Some(ToolChoice::Named("f".into()))
        );
        assert!(parse_tool_choice(Some(&json!("sometimes"))).is_err());
        assert!(tool_names(&[json!({"type":"function"})]).is_err());
    }
}
