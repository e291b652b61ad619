//! Real chat templates (`../shared/templates`) render byte for byte as
//! llama.cpp renders them, for every conversation in
//! `testdata/templates/conversations`; where llama.cpp refuses a template
//! or a conversation, hearth refuses it too. llama.cpp's renderings are in
//! `testdata/templates/rendered` (see the README there for how they were
//! made); the few known differences are listed, with their reason, in
//! `testdata/templates/differences.tsv`, and must stay exactly those.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hearth_tokenizer::{ChatMessage, ChatTemplate, ChatTool, ChatToolCall, RenderOptions};
use serde_json::Value;

/// The instant the recordings were made at (2025-03-14 09:26:53 UTC).
const RECORDED_AT: u64 = 1_741_944_413;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/templates")
}

fn templates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/templates")
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// An OpenAI-style request body as hearth's messages and options.
fn conversation(body: &Value) -> (Vec<ChatMessage>, RenderOptions) {
    let messages = body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| ChatMessage {
            role: text(&m["role"]),
            content: text(&m["content"]),
            reasoning_content: text(&m["reasoning_content"]),
            tool_call_id: text(&m["tool_call_id"]),
            name: text(&m["name"]),
            tool_calls: m["tool_calls"]
                .as_array()
                .map(|calls| {
                    calls
                        .iter()
                        .map(|c| ChatToolCall {
                            id: text(&c["id"]),
                            name: text(&c["function"]["name"]),
                            arguments: text(&c["function"]["arguments"]),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    let tools = body["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .map(|t| ChatTool {
                    name: text(&t["function"]["name"]),
                    description: text(&t["function"]["description"]),
                    parameters: t["function"]["parameters"].clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let opts = RenderOptions {
        tools,
        now: Some(RECORDED_AT),
        ..RenderOptions::new(true)
    };
    (messages, opts)
}

fn tokens() -> BTreeMap<String, (String, String)> {
    let tsv = std::fs::read_to_string(data_dir().join("tokens.tsv")).expect("tokens.tsv");
    tsv.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), (f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

/// (template, conversation) pairs where hearth refuses what llama.cpp renders.
fn differences() -> Vec<(String, String)> {
    let tsv = std::fs::read_to_string(data_dir().join("differences.tsv")).expect("differences.tsv");
    tsv.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[1].to_string())
        })
        .collect()
}

#[test]
fn templates_render_as_llama_cpp_renders_them() {
    let dir = templates_dir();
    if !dir.is_dir() {
        hearth_testdata::unavailable(&format!("{} not found", dir.display()));
        return;
    }
    let tokens = tokens();
    let known = differences();
    let mut convs: Vec<(String, Value)> = std::fs::read_dir(data_dir().join("conversations"))
        .expect("conversations")
        .map(|e| e.expect("entry").path())
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let body = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (name, body)
        })
        .collect();
    convs.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(convs.len() >= 3, "at least three conversations");

    let rendered = data_dir().join("rendered");
    let (mut same, mut refused, mut differ, mut failures) = (0, 0, 0, Vec::new());
    for (name, (bos, eos)) in &tokens {
        let src = std::fs::read_to_string(dir.join(format!("{name}.jinja")))
            .unwrap_or_else(|e| panic!("{name}.jinja: {e}"));
        let template = ChatTemplate::from_jinja(&src, bos, eos);
        for (conv, body) in &convs {
            let (messages, opts) = conversation(body);
            let ours = template
                .as_ref()
                .map_err(|e| e.to_string())
                .and_then(|t| t.render_with(&messages, &opts).map_err(|e| e.to_string()));
            let want = rendered.join(format!("{name}.{conv}.txt"));
            let refusal = rendered.join(format!("{name}.{conv}.error"));
            let listed = known.contains(&(name.clone(), conv.clone()));
            match (std::fs::read(&want), ours) {
                (Ok(_), Err(_)) if listed => differ += 1,
                (_, _) if listed => failures.push(format!(
                    "{name} × {conv}: listed in differences.tsv but hearth no longer refuses it"
                )),
                (Ok(want), Ok(got)) if want == got.as_bytes() => same += 1,
                (Ok(want), Ok(got)) => failures.push(format!(
                    "{name} × {conv}: differs\n--- llama.cpp\n{}\n--- hearth\n{got}\n---",
                    String::from_utf8_lossy(&want)
                )),
                (Ok(_), Err(e)) => failures.push(format!("{name} × {conv}: hearth refused: {e}")),
                (Err(_), Err(_)) if refusal.is_file() => refused += 1,
                (Err(_), Ok(_)) if refusal.is_file() => failures.push(format!(
                    "{name} × {conv}: llama.cpp refused ({}) but hearth rendered",
                    std::fs::read_to_string(&refusal).unwrap_or_default().trim()
                )),
                (Err(_), _) => failures.push(format!("{name} × {conv}: no recording")),
            }
        }
    }
    eprintln!(
        "{} templates × {} conversations: {same} equal, {refused} refused by both, \
         {differ} known differences, {} failures",
        tokens.len(),
        convs.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
