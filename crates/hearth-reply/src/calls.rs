//! The text of a call (what sits between a family's call markers) as
//! structured calls; `None` when it is not a call in that syntax.

use serde_json::{Map, Value};

use crate::{ToolCall, ToolSyntax};

pub(crate) fn parse(syntax: ToolSyntax, body: &str) -> Option<Vec<ToolCall>> {
    let body = body.trim();
    match syntax {
        ToolSyntax::Hermes => {
            if body.starts_with("<function=") {
                xml_call(body).map(|c| vec![c])
            } else {
                json_calls(body)
            }
        }
        ToolSyntax::Llama3 => {
            // Several calls may be separated by `;`.
            if let Some(c) = json_calls(body) {
                return Some(c);
            }
            let parts: Option<Vec<Vec<ToolCall>>> =
                body.split(';').map(|p| json_calls(p.trim())).collect();
            parts.map(|p| p.into_iter().flatten().collect())
        }
        ToolSyntax::Mistral => {
            if body.starts_with('[') {
                json_calls(body)
            } else {
                mistral_args(body)
            }
        }
        ToolSyntax::None => None,
    }
}

/// `{"name":..,"arguments"|"parameters":..}`, or a list of them; arguments
/// given as JSON text are parsed.
pub(crate) fn json_calls(text: &str) -> Option<Vec<ToolCall>> {
    let v: Value = serde_json::from_str(text).ok()?;
    let items = match v {
        Value::Array(a) => a,
        v @ Value::Object(_) => vec![v],
        _ => return None,
    };
    let calls: Option<Vec<ToolCall>> = items.iter().map(json_call).collect();
    calls.filter(|c| !c.is_empty())
}

fn json_call(v: &Value) -> Option<ToolCall> {
    let v = v.get("function").unwrap_or(v);
    let name = v.get("name")?.as_str()?.to_string();
    let arguments = match v.get("arguments").or_else(|| v.get("parameters")) {
        Some(Value::String(s)) => serde_json::from_str(s).ok()?,
        Some(a) => a.clone(),
        None => Value::Object(Map::new()),
    };
    Some(ToolCall { name, arguments })
}

/// Qwen3-Coder: `<function=NAME>` then `<parameter=P>VALUE</parameter>`s
/// and `</function>`; a value that is JSON is taken as JSON, else as text.
fn xml_call(body: &str) -> Option<ToolCall> {
    let rest = body.strip_prefix("<function=")?;
    let (name, mut rest) = rest.split_once('>')?;
    let mut args = Map::new();
    loop {
        rest = rest.trim_start();
        if rest.starts_with("</function>") || rest.is_empty() {
            break;
        }
        let r = rest.strip_prefix("<parameter=")?;
        let (key, r) = r.split_once('>')?;
        let (value, r) = r.split_once("</parameter>")?;
        let value = value.strip_prefix('\n').unwrap_or(value);
        let value = value.strip_suffix('\n').unwrap_or(value);
        let parsed =
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        args.insert(key.trim().to_string(), parsed);
        rest = r;
    }
    Some(ToolCall {
        name: name.trim().to_string(),
        arguments: Value::Object(args),
    })
}

/// Mistral's newer form: `NAME[ARGS]{json}` (with `[CALL_ID]ID` before
/// `[ARGS]` in some versions).
fn mistral_args(body: &str) -> Option<Vec<ToolCall>> {
    let (head, args) = body.split_once("[ARGS]")?;
    let name = head.split("[CALL_ID]").next()?.trim();
    if name.is_empty() {
        return None;
    }
    let arguments = serde_json::from_str(args.trim()).ok()?;
    Some(vec![ToolCall {
        name: name.to_string(),
        arguments,
    }])
}
