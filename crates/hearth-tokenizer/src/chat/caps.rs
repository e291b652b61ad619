//! What a chat template can take, found as llama.cpp finds it: by rendering
//! small probe conversations and looking at what the template used.
//!
//! - string content: a user message with a marker string renders and the
//!   marker shows;
//! - typed content: a user message whose content is
//!   `[{"type":"text","text":marker}]` renders with the marker but not as
//!   the list's printed form (the template reads the parts);
//! - system role: a system message's text shows in the output;
//! - object arguments: a tool call whose `arguments` is a mapping has its
//!   `arg` value read (by subscript, iteration or `tojson`), not merely the
//!   mapping printed.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::Value;

use super::prepare::Caps;
use crate::error::TokenizerError;

const STRING_MARKER: &str = "STRING_MARKER";
const TYPED_MARKER: &str = "TYPED_MARKER";
const SYSTEM_MARKER: &str = "SYSTEM_MARKER";

/// `{"arg": "value"}` that remembers whether `arg` was read.
#[derive(Debug, Default)]
struct TrackedArgs {
    read: AtomicBool,
}

impl Object for TrackedArgs {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        (key.as_str() == Some("arg")).then(|| {
            self.read.store(true, Ordering::Relaxed);
            Value::from("value")
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["arg"])
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{'arg': 'value'}")
    }
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    Value::from_iter(pairs.into_iter().map(|(k, v)| (k.to_string(), v)))
}

fn msg(role: &str, content: Value) -> Value {
    map(vec![("role", Value::from(role)), ("content", content)])
}

fn globals(messages: Vec<Value>, tools: Value) -> Value {
    map(vec![
        ("messages", Value::from(messages)),
        ("tools", tools),
        ("bos_token", Value::from("")),
        ("eos_token", Value::from("")),
        ("add_generation_prompt", Value::from(true)),
    ])
}

fn probe_tools() -> Value {
    Value::from_serialize(serde_json::json!([{
        "name": "tool",
        "type": "function",
        "function": {
            "name": "tool1",
            "description": "Tool description",
            "parameters": {
                "type": "object",
                "properties": {"arg": {"type": "string", "description": "Arg description"}},
                "required": ["arg"],
            },
        },
    }]))
}

/// Probes the template; `render` renders one context (errors count as
/// "cannot").
pub(super) fn probe(render: &dyn Fn(Value) -> Result<String, TokenizerError>) -> Caps {
    let none = || Value::from(Vec::<Value>::new());
    let string_content = render(globals(
        vec![msg("user", Value::from(STRING_MARKER))],
        none(),
    ))
    .is_ok_and(|out| out.contains(STRING_MARKER));
    let typed = Value::from(vec![map(vec![
        ("type", Value::from("text")),
        ("text", Value::from(TYPED_MARKER)),
    ])]);
    let typed_content = render(globals(vec![msg("user", typed)], none())).is_ok_and(|out| {
        out.contains(TYPED_MARKER) && !out.contains("'type'") && !out.contains("\"type\"")
    });
    let system_role = render(globals(
        vec![
            msg("system", Value::from(SYSTEM_MARKER)),
            msg("user", Value::from("User message")),
        ],
        none(),
    ))
    .is_ok_and(|out| out.contains(SYSTEM_MARKER));

    let args = Arc::new(TrackedArgs::default());
    let call = map(vec![
        ("id", Value::from("call00001")),
        ("type", Value::from("function")),
        (
            "function",
            map(vec![
                ("name", Value::from("tool1")),
                ("arguments", Value::from_dyn_object(args.clone())),
            ]),
        ),
    ]);
    let assistant = map(vec![
        ("role", Value::from("assistant")),
        ("content", Value::from("")),
        ("tool_calls", Value::from(vec![call])),
    ]);
    let tool = map(vec![
        ("role", Value::from("tool")),
        ("content", Value::from("Tool response")),
        ("tool_call_id", Value::from("call00001")),
    ]);
    let object_arguments = render(globals(
        vec![
            msg("user", Value::from("User message")),
            assistant,
            tool,
            msg(
                "assistant",
                Value::from("The tool response was 'tool response'"),
            ),
            msg("user", Value::from("User message")),
        ],
        probe_tools(),
    ))
    .is_ok()
        && args.read.load(Ordering::Relaxed);

    Caps {
        string_content,
        typed_content,
        system_role,
        object_arguments,
    }
}
