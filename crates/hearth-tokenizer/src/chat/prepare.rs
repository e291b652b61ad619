//! What a Jinja chat template is given, prepared the way llama.cpp's chat
//! layer prepares it (`common_chat_templates_apply` with Jinja on), so that a
//! template renders the same text under hearth as under llama.cpp:
//!
//! - each message becomes the OpenAI-shaped object templates expect
//!   (`content` always present, `tool_calls` as
//!   `{"type":"function","function":{"name","arguments"},"id"}`);
//! - what the template can take decides the rest ([`Caps`], found by
//!   rendering probe conversations): a template that reads only typed
//!   content gets `[{"type":"text","text":..}]`, one without a system role
//!   gets the system text prepended to the next message, one that reads
//!   arguments as a mapping gets them parsed from their JSON text;
//! - a few families get their messages reshaped as their reference
//!   implementation does (gpt-oss and LFM2 read `thinking`, Ministral 3
//!   content blocks, DeepSeek V4 tool results in call order, older Gemma 4
//!   templates `tool_responses`, StepFun trimmed contents);
//! - the globals: `messages`, `tools` (when offered), `bos_token`,
//!   `eos_token`, `enable_thinking`, `add_generation_prompt` (only when
//!   true), `datetime` and `date_string`.

use serde_json::{json, Map, Value as Json};

use super::{ChatMessage, ChatTool, RenderOptions};
use crate::error::TokenizerError;

/// What a template does with its input, found by rendering probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Caps {
    pub string_content: bool,
    pub typed_content: bool,
    pub system_role: bool,
    pub object_arguments: bool,
}

/// Families whose messages are reshaped before rendering; the tests run in
/// llama.cpp's order, the first that matches wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Family {
    Ministral3,
    GptOss,
    Lfm2,
    DeepSeekV4,
    Gemma4Legacy,
    Other,
}

impl Family {
    pub fn of(src: &str) -> Family {
        let has = |s: &str| src.contains(s);
        let special = [
            (
                has("[SYSTEM_PROMPT]") && has("[TOOL_CALLS]") && has("[ARGS]") && !has("[CALL_ID]"),
                Family::Ministral3,
            ),
            (has("<|channel|>"), Family::GptOss),
            (
                has("<atem:function_calls>") && has("<|eom|>"),
                Family::Other,
            ),
            (has(">>>all") && has(">>>${recipient}"), Family::Other),
            (
                has("<|tool_calls_section_begin|>") && has("<|tool_call_begin|>"),
                Family::Other,
            ),
            (
                has("<|open|>") && has("<|close|>") && has("<|end_of_msg|>"),
                Family::Other,
            ),
            (
                has("<role>ASSISTANT</role>") && has("<arg_key>"),
                Family::Other,
            ),
            (
                has("<|START_TEXT|>") && has("<|START_ACTION|>"),
                Family::Other,
            ),
            (
                (has("<|tool_list_start|>") && has("<|tool_list_end|>"))
                    || (has("List of tools: [") && !has("<|tool_list_start|>")),
                Family::Lfm2,
            ),
            (
                has("<|role_sep|>") && has("<|message_sep|>") && !has("<|function_call|>"),
                Family::Other,
            ),
            (
                has("]<]minimax[>[") && has("<tool_call>") && has("<invoke name="),
                Family::Other,
            ),
            (
                has("dsml_token") && has("DSML") && (has("function_calls") || has("tool_calls")),
                if has("function_calls") {
                    Family::Other
                } else {
                    Family::DeepSeekV4
                },
            ),
            (
                has("'<|tool_call>call:'"),
                if has("{#- OpenAI Chat Completions:") {
                    Family::Other
                } else {
                    Family::Gemma4Legacy
                },
            ),
        ];
        special
            .into_iter()
            .find(|(hit, _)| *hit)
            .map_or(Family::Other, |(_, f)| f)
    }
}

/// Template sources llama.cpp patches before use: gpt-oss's refusal of
/// channel markers inside a message and Mistral's refusal of an assistant
/// message with neither content nor tool calls (both fire on histories
/// llama.cpp itself produces).
pub(super) fn patch_source(src: &str) -> String {
    let mut s = super::concat::lenient_plus(src);
    // Hugging Face's `{% generation %}` blocks (which mark the assistant's
    // text for training) are no-ops when rendering.
    for (tag, with) in [("endgeneration", "endif"), ("generation", "if true")] {
        let re = fancy_regex::Regex::new(&format!(r"\{{%(-?)\s*{tag}\s*(-?)%\}}"))
            .unwrap_or_else(|_| unreachable!("a fixed pattern"));
        s = re
            .replace_all(&s, format!("{{%$1 {with} $2%}}").as_str())
            .into_owned();
    }
    // `ns.list.append(x)` and `ns.list.pop(0)` mutate a list, which
    // minijinja's values cannot; a namespace attribute can be reassigned
    // to the list that results instead.
    let rewrites = [
        (
            r"\{%(-?)\s*set\s+_\s*=\s*([A-Za-z_]\w*\.[A-Za-z_]\w*)\.append\(([^%]*?)\)\s*(-?)%\}",
            "{%$1 set $2 = ($2 + [$3])|list $4%}",
        ),
        (
            r"\{%(-?)\s*set\s+(\w+)\s*=\s*([A-Za-z_]\w*\.[A-Za-z_]\w*)\.pop\(0\)\s*(-?)%\}",
            "{%$1 set $2 = $3[0] %}{% set $3 = $3[1:] $4%}",
        ),
    ];
    for (pattern, with) in rewrites {
        let re =
            fancy_regex::Regex::new(pattern).unwrap_or_else(|_| unreachable!("a fixed pattern"));
        s = re.replace_all(&s, with).into_owned();
    }
    if s.contains("<|channel|>") && s.contains("in message.content or") {
        s = s.replace(
            "{%- if \"<|channel|>analysis<|message|>\" in message.content or \"<|channel|>final<|message|>\" in message.content %}",
            "{%- if false %}",
        );
    }
    if s.contains("[TOOL_CALLS]") && s.contains("if (message['content'] is none or") {
        s = s.replace(
            "{%- if (message['content'] is none or message['content'] == '' or message['content']|length == 0) and (message['tool_calls'] is not defined or message['tool_calls'] is none or message['tool_calls']|length == 0) %}",
            "{%- if false %}",
        );
    }
    s
}

/// A message as the OpenAI-shaped object templates read.
pub(super) fn message_json(m: &ChatMessage) -> Json {
    let mut o = Map::new();
    o.insert("role".into(), json!(m.role));
    o.insert("content".into(), json!(m.content));
    if !m.reasoning_content.is_empty() {
        o.insert("reasoning_content".into(), json!(m.reasoning_content));
    }
    if !m.name.is_empty() {
        o.insert("name".into(), json!(m.name));
    }
    if !m.tool_call_id.is_empty() {
        o.insert("tool_call_id".into(), json!(m.tool_call_id));
    }
    if !m.tool_calls.is_empty() {
        let calls = m
            .tool_calls
            .iter()
            .map(|c| {
                let mut tc = Map::new();
                tc.insert("type".into(), json!("function"));
                tc.insert(
                    "function".into(),
                    json!({"name": c.name, "arguments": c.arguments}),
                );
                if !c.id.is_empty() {
                    tc.insert("id".into(), json!(c.id));
                }
                Json::Object(tc)
            })
            .collect();
        o.insert("tool_calls".into(), Json::Array(calls));
    }
    Json::Object(o)
}

/// The tools as templates read them: `{"type":"function","function":
/// {"name","description","parameters"}}`.
pub(super) fn tools_json(tools: &[ChatTool]) -> Json {
    Json::Array(
        tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters,
                }})
            })
            .collect(),
    )
}

fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// The render context for `messages` (see the module documentation).
pub(super) fn context(
    src: &str,
    caps: &Caps,
    bos: &str,
    eos: &str,
    messages: &[ChatMessage],
    opts: &RenderOptions,
) -> Result<Json, TokenizerError> {
    let trimmed: Vec<ChatMessage>;
    let mut messages = messages;
    if src.contains("You have access to the following functions in JSONSchema format") {
        trimmed = messages
            .iter()
            .map(|m| ChatMessage {
                content: m.content.trim_matches(is_c_space).to_string(),
                reasoning_content: m.reasoning_content.trim_matches(is_c_space).to_string(),
                ..m.clone()
            })
            .collect();
        messages = &trimmed;
    }
    let only_typed = !caps.string_content && caps.typed_content;
    let mut msgs: Vec<Json> = messages.iter().map(message_json).collect();
    for m in &mut msgs {
        if only_typed {
            if let Some(Json::String(s)) = m.get("content") {
                m["content"] = json!([{"type": "text", "text": s}]);
            }
        }
    }
    if !src.contains("<|channel|>") {
        for m in &mut msgs {
            if m["role"] == "developer" {
                m["role"] = json!("system");
            }
        }
    }
    if !caps.system_role && msgs.first().is_some_and(|m| m["role"] == "system") {
        let first = msgs.remove(0);
        if let Some(next) = msgs.first_mut() {
            let (Some(a), Some(b)) = (first["content"].as_str(), next["content"].as_str()) else {
                return Err(TokenizerError::Template(
                    "the template has no system role and the system message cannot be merged into typed content".into(),
                ));
            };
            next["content"] = json!(format!("{a}\n{b}"));
        }
    }
    if caps.object_arguments {
        for m in &mut msgs {
            let Some(calls) = m.get_mut("tool_calls").and_then(Json::as_array_mut) else {
                continue;
            };
            for c in calls {
                let args = &mut c["function"]["arguments"];
                if let Json::String(s) = args {
                    *args = serde_json::from_str(s).map_err(|e| {
                        TokenizerError::Template(format!(
                            "failed to parse tool call arguments as JSON: {e}"
                        ))
                    })?;
                }
            }
        }
    }
    let msgs = match Family::of(src) {
        Family::GptOss => msgs.into_iter().map(|m| with_thinking(m, true)).collect(),
        Family::Lfm2 => msgs.into_iter().map(|m| with_thinking(m, false)).collect(),
        Family::Ministral3 => msgs.into_iter().map(content_blocks).collect(),
        Family::DeepSeekV4 => sort_tool_results(msgs),
        Family::Gemma4Legacy => gemma4_tool_responses(msgs),
        Family::Other => msgs,
    };

    let mut ctx = Map::new();
    ctx.insert("messages".into(), Json::Array(msgs));
    ctx.insert("bos_token".into(), json!(bos));
    ctx.insert("eos_token".into(), json!(eos));
    ctx.insert("enable_thinking".into(), json!(opts.enable_thinking));
    if !opts.tools.is_empty() {
        ctx.insert("tools".into(), tools_json(&opts.tools));
    }
    let now = opts.now_secs();
    ctx.insert(
        "datetime".into(),
        json!(super::clock::strftime("%b %d %Y", now)),
    );
    ctx.insert(
        "date_string".into(),
        json!(super::clock::strftime("%d %b %Y", now)),
    );
    if opts.add_generation_prompt {
        ctx.insert("add_generation_prompt".into(), json!(true));
    }
    Ok(Json::Object(ctx))
}

/// gpt-oss and LFM2 read an earlier turn's reasoning as `thinking`
/// (gpt-oss also drops the content of a message that calls tools).
fn with_thinking(mut m: Json, drop_content_with_calls: bool) -> Json {
    if let Some(r) = m
        .get("reasoning_content")
        .filter(|r| r.is_string())
        .cloned()
    {
        m["thinking"] = r;
        let calls = m["tool_calls"].as_array().is_some_and(|c| !c.is_empty());
        if drop_content_with_calls && calls {
            if let Some(o) = m.as_object_mut() {
                o.shift_remove("content");
            }
        }
    }
    m
}

/// Ministral 3 reads system and assistant contents as blocks: the
/// reasoning as `{"type":"thinking"}`, then the text.
fn content_blocks(mut m: Json) -> Json {
    if m["role"] != "system" && m["role"] != "assistant" {
        return m;
    }
    let mut blocks = Vec::new();
    if let Some(r) = m.get("reasoning_content").and_then(Json::as_str) {
        blocks.push(json!({"type": "thinking", "thinking": r}));
    }
    match m.get("content") {
        Some(Json::String(s)) => blocks.push(json!({"type": "text", "text": s})),
        Some(Json::Array(a)) => blocks.extend(a.iter().cloned()),
        _ => {}
    }
    m["content"] = Json::Array(blocks);
    if let Some(o) = m.as_object_mut() {
        o.shift_remove("reasoning_content");
    }
    m
}

/// DeepSeek V4 shows a run of tool results in the order of the calls that
/// asked for them (matched by id).
fn sort_tool_results(mut msgs: Vec<Json>) -> Vec<Json> {
    let mut order: Vec<String> = Vec::new();
    let mut i = 0;
    while i < msgs.len() {
        let role = msgs[i]["role"].as_str().unwrap_or("").to_string();
        if role == "assistant" {
            if let Some(calls) = msgs[i]["tool_calls"].as_array().filter(|c| !c.is_empty()) {
                order = calls
                    .iter()
                    .map(|c| c["id"].as_str().unwrap_or("").to_string())
                    .collect();
                i += 1;
                continue;
            }
        }
        if role != "user" && role != "tool" {
            i += 1;
            continue;
        }
        let mut end = i;
        let mut tools = Vec::new();
        while end < msgs.len() {
            match msgs[end]["role"].as_str() {
                Some("tool") => tools.push(end),
                Some("user") => {}
                _ => break,
            }
            end += 1;
        }
        if tools.len() > 1 && order.iter().any(|id| !id.is_empty()) {
            let rank = |m: &Json| {
                let id = m["tool_call_id"].as_str().unwrap_or("");
                order
                    .iter()
                    .position(|o| !o.is_empty() && o == id)
                    .unwrap_or(0)
            };
            let mut results: Vec<Json> = tools.iter().map(|&p| msgs[p].clone()).collect();
            results.sort_by_key(|m| rank(m));
            for (p, r) in tools.iter().zip(results) {
                msgs[*p] = r;
            }
        }
        i = end;
    }
    msgs
}

/// Older Gemma 4 templates read a tool exchange as one assistant message:
/// its calls, `tool_responses` (`{"name","response"}`, the response parsed
/// as JSON when it is JSON) and the final answer as `content`.
fn gemma4_tool_responses(msgs: Vec<Json>) -> Vec<Json> {
    let has_calls = |m: &Json| m["tool_calls"].as_array().is_some_and(|c| !c.is_empty());
    let mut out = Vec::new();
    let mut i = 0;
    while i < msgs.len() {
        let m = &msgs[i];
        if m["role"] != "assistant" || !has_calls(m) {
            out.push(m.clone());
            i += 1;
            continue;
        }
        let calls = m["tool_calls"].as_array().cloned().unwrap_or_default();
        let reasoning = m
            .get("reasoning_content")
            .filter(|r| r.is_string())
            .cloned();
        i += 1;
        let mut responses = Vec::new();
        while i < msgs.len() && msgs[i]["role"] == "tool" {
            let r = &msgs[i];
            let response = match r.get("content") {
                Some(Json::String(s)) => serde_json::from_str(s).unwrap_or_else(|_| json!(s)),
                Some(v) => v.clone(),
                None => Json::Null,
            };
            let mut name = calls
                .get(responses.len())
                .and_then(|c| c["function"]["name"].as_str())
                .unwrap_or("")
                .to_string();
            if name.is_empty() {
                name = r["tool_call_id"].as_str().unwrap_or("").to_string();
            }
            responses.push(json!({"name": name, "response": response}));
            i += 1;
        }
        let mut content = None;
        if let Some(next) = msgs.get(i) {
            let non_empty = match next.get("content") {
                Some(Json::String(s)) => !s.is_empty(),
                Some(Json::Array(a)) => !a.is_empty(),
                _ => false,
            };
            if next["role"] == "assistant" && !has_calls(next) && non_empty {
                content = next.get("content").cloned();
                i += 1;
            }
        }
        let mut built = Map::new();
        built.insert("role".into(), json!("assistant"));
        built.insert("tool_calls".into(), Json::Array(calls));
        if !responses.is_empty() {
            built.insert("tool_responses".into(), Json::Array(responses));
        }
        if let Some(c) = content {
            built.insert("content".into(), c);
        }
        if let Some(r) = reasoning {
            built.insert("reasoning_content".into(), r);
        }
        out.push(Json::Object(built));
    }
    out
}
