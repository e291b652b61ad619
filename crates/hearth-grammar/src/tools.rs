//! Tool calls for models whose chat template has no tool-call format: the model is constrained
//! to answer with one JSON object, either `{"tool_calls": [{"name": …, "arguments": {…}}]}` or
//! `{"content": "…"}` (the generic scheme llama.cpp uses for such templates), told so by a
//! system prompt addition, and its output is parsed back into content and calls.

use serde_json::{json, Map, Value};

use crate::GrammarError;

/// OpenAI's `tool_choice`, less `"none"` (with which no constraint applies).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolChoice {
    /// Call tools or answer in text, as the model decides.
    Auto,
    /// Call at least one tool.
    Required,
    /// Call this function.
    Function(String),
}

impl ToolChoice {
    /// Reads OpenAI's `tool_choice` (`"auto"`, `"none"`, `"required"`, or
    /// `{"type": "function", "function": {"name": …}}`); `None` for `"none"`.
    pub fn from_openai(v: &Value) -> Result<Option<ToolChoice>, GrammarError> {
        match v {
            Value::String(s) => match s.as_str() {
                "auto" => Ok(Some(ToolChoice::Auto)),
                "none" => Ok(None),
                "required" => Ok(Some(ToolChoice::Required)),
                other => Err(tools_err(format!("unknown tool_choice {other:?}"))),
            },
            Value::Object(o) => o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .map(|n| Some(ToolChoice::Function(n.to_string())))
                .ok_or_else(|| tools_err("tool_choice object without function.name")),
            _ => Err(tools_err("tool_choice must be a string or an object")),
        }
    }
}

/// One call parsed from the model's output.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    pub name: String,
    /// The arguments object.
    pub arguments: Value,
}

/// The model's answer: text, tool calls, or (never both from the schema) neither.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ToolOutput {
    pub content: Option<String>,
    pub tool_calls: Vec<ToolCall>,
}

fn tools_err(msg: impl Into<String>) -> GrammarError {
    GrammarError::Tools(msg.into())
}

/// A tool's (name, description, parameters schema), checked.
fn tool_parts(tool: &Value) -> Result<(&str, Option<&str>, Value), GrammarError> {
    if let Some(t) = tool.get("type") {
        if t != "function" {
            return Err(tools_err(format!("unsupported tool type {t}")));
        }
    }
    let f = tool
        .get("function")
        .ok_or_else(|| tools_err("a tool without \"function\""))?;
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| tools_err("a tool function without a name"))?;
    let description = f.get("description").and_then(Value::as_str);
    let params = match f.get("parameters") {
        None | Some(Value::Null) => {
            json!({"type": "object", "properties": {}, "additionalProperties": false})
        }
        Some(p @ Value::Object(_)) => p.clone(),
        Some(_) => {
            return Err(tools_err(format!(
                "the parameters of tool {name:?} must be a JSON Schema object"
            )))
        }
    };
    Ok((name, description, params))
}

/// The JSON Schema the model's reply must follow, for `tools` (OpenAI tool objects) and
/// `choice`: `{"tool_calls": [...]}` (each call's `name` one tool's name, its `arguments` that
/// tool's parameters schema) or, for [`ToolChoice::Auto`], also `{"content": "..."}`.
///
/// Compile it with [`crate::Grammar::from_schema`]; a parameters schema with an unsupported
/// feature is reported there.
///
/// At most one call per reply (the shape of OpenAI's `parallel_tool_calls: false`): small
/// models asked for a list tend to repeat the same call until the token limit. Use
/// [`tool_call_schema_with_limit`] to allow more.
pub fn tool_call_schema(tools: &[Value], choice: &ToolChoice) -> Result<Value, GrammarError> {
    tool_call_schema_with_limit(tools, choice, 1)
}

/// [`tool_call_schema`] with up to `max_calls` calls per reply (at least 1).
pub fn tool_call_schema_with_limit(
    tools: &[Value],
    choice: &ToolChoice,
    max_calls: u32,
) -> Result<Value, GrammarError> {
    if tools.is_empty() {
        return Err(tools_err("no tools given"));
    }
    let mut calls = Vec::new();
    let mut names = Vec::new();
    for t in tools {
        let (name, _, params) = tool_parts(t)?;
        if names.contains(&name) {
            return Err(tools_err(format!("two tools are named {name:?}")));
        }
        names.push(name);
        if let ToolChoice::Function(wanted) = choice {
            if wanted != name {
                continue;
            }
        }
        calls.push(json!({
            "type": "object",
            "properties": {"name": {"const": name}, "arguments": params},
            "required": ["name", "arguments"],
            "additionalProperties": false,
        }));
    }
    if calls.is_empty() {
        if let ToolChoice::Function(wanted) = choice {
            return Err(tools_err(format!(
                "tool_choice names {wanted:?}, which is not among the tools"
            )));
        }
    }
    let item = if calls.len() == 1 {
        calls.remove(0)
    } else {
        json!({ "anyOf": calls })
    };
    let call_schema = json!({
        "type": "object",
        "properties": {"tool_calls": {"type": "array", "items": item, "minItems": 1, "maxItems": max_calls.max(1)}},
        "required": ["tool_calls"],
        "additionalProperties": false,
    });
    Ok(match choice {
        ToolChoice::Auto => json!({"anyOf": [call_schema, {
            "type": "object",
            "properties": {"content": {"type": "string"}},
            "required": ["content"],
            "additionalProperties": false,
        }]}),
        ToolChoice::Required | ToolChoice::Function(_) => call_schema,
    })
}

/// The text to add to the system prompt so that the model knows the tools and the reply format
/// that [`tool_call_schema`] enforces.
pub fn tool_system_prompt(tools: &[Value], choice: &ToolChoice) -> Result<String, GrammarError> {
    let mut out = String::from("You have access to the following tools:\n");
    for t in tools {
        let (name, description, params) = tool_parts(t)?;
        let mut entry = Map::new();
        entry.insert("name".into(), Value::String(name.into()));
        if let Some(d) = description {
            entry.insert("description".into(), Value::String(d.into()));
        }
        entry.insert("parameters".into(), params);
        out.push_str(&Value::Object(entry).to_string());
        out.push('\n');
    }
    let calls = "{\"tool_calls\": [{\"name\": \"<tool name>\", \"arguments\": {<arguments>}}]}";
    match choice {
        ToolChoice::Auto => out.push_str(&format!(
            "\nReply with one JSON object only. To call one or more tools, reply {calls}. \
             To answer without a tool, reply {{\"content\": \"<your answer>\"}}."
        )),
        ToolChoice::Required => out.push_str(&format!(
            "\nYou must call at least one tool. Reply with one JSON object only: {calls}."
        )),
        ToolChoice::Function(name) => out.push_str(&format!(
            "\nYou must call the tool {name:?}. Reply with one JSON object only: {calls}."
        )),
    }
    Ok(out)
}

/// Parses a reply generated under [`tool_call_schema`] into content and tool calls.
pub fn parse_tool_output(text: &str) -> Result<ToolOutput, GrammarError> {
    let v: Value = serde_json::from_str(text.trim())
        .map_err(|e| tools_err(format!("the reply is not JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| tools_err("the reply is not a JSON object"))?;
    let mut out = ToolOutput::default();
    if let Some(c) = obj.get("content") {
        let c = c
            .as_str()
            .ok_or_else(|| tools_err("\"content\" is not a string"))?;
        out.content = Some(c.to_string());
    }
    if let Some(calls) = obj.get("tool_calls") {
        let calls = calls
            .as_array()
            .ok_or_else(|| tools_err("\"tool_calls\" is not a list"))?;
        for c in calls {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| tools_err("a tool call without a name"))?;
            let arguments = c.get("arguments").cloned().unwrap_or_else(|| json!({}));
            out.tool_calls.push(ToolCall {
                name: name.to_string(),
                arguments,
            });
        }
    }
    if out.content.is_none() && out.tool_calls.is_empty() {
        return Err(tools_err(
            "the reply has neither \"content\" nor \"tool_calls\"",
        ));
    }
    Ok(out)
}
