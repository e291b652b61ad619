//! Reasoning in replies, through both APIs (whole and streamed): a model
//! whose chat template writes `<think>` gives its reasoning as OpenAI's
//! `reasoning_content` and Ollama's `thinking`, apart from the content;
//! Ollama's `think` is honoured or refused. The tiny synthetic model is
//! made to write `"<think>abc</think>xyz"` by a JSON Schema `const` (its
//! reply is otherwise random).
#![allow(clippy::unwrap_used)]

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use axum::Router;
use hearth_model::synth::{build, SynthSpec};
use hearth_model::Arch;
use hearth_server::{router, AppState};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

mod support;

const MODEL: &str = "thinker";

/// A Qwen3-like template: ChatML, tools, and a `<think>` switch.
const TEMPLATE: &str = "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{%- endfor %}{%- if tools %}<tools>{{ tools|tojson }}</tools>{%- endif %}{%- if add_generation_prompt %}<|im_start|>assistant\n{%- if enable_thinking is false %}<think>\n\n</think>\n\n{%- endif %}{%- endif %}{# <tool_call> #}";

async fn app() -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{MODEL}.gguf"));
    let gguf = hearth_testdata::gguf::replace_string(
        &build(&SynthSpec::new(Arch::Llama)),
        "tokenizer.chat_template",
        TEMPLATE,
    );
    std::fs::write(&path, gguf).unwrap();
    let mut config = support::config(2);
    config.engine.n_ctx = Some(256);
    let st = AppState::new(config);
    assert_eq!(st.preload(path.to_str().unwrap()).await.unwrap(), MODEL);
    (router(st), dir)
}

async fn raw(app: &Router, uri: &str, body: Value) -> (StatusCode, Bytes) {
    let req = Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let s = resp.status();
    (s, resp.into_body().collect().await.unwrap().to_bytes())
}

const REPLY: &str = "<think>abc</think>xyz";

fn schema() -> Value {
    json!({"const": REPLY})
}

#[tokio::test]
async fn openai_reasoning_content_whole_and_streamed() {
    let (app, _d) = app().await;
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": schema()}}});
    let (s, b) = raw(&app, "/v1/chat/completions", body.clone()).await;
    assert_eq!(s, StatusCode::OK);
    let v: Value = serde_json::from_slice(&b).unwrap();
    let msg = &v["choices"][0]["message"];
    assert_eq!(msg["reasoning_content"], "abc", "{v}");
    // The JSON string's quotes (and any space the JSON grammar lets the
    // model write before it) are the content around the block.
    assert_eq!(msg["content"].as_str().unwrap().trim(), "\"xyz\"", "{v}");

    let mut streamed = body;
    streamed["stream"] = json!(true);
    let (s, b) = raw(&app, "/v1/chat/completions", streamed).await;
    assert_eq!(s, StatusCode::OK);
    let text = String::from_utf8(b.to_vec()).unwrap();
    let (mut thinking, mut content) = (String::new(), String::new());
    for e in text.split("\n\n").filter_map(|e| e.strip_prefix("data: ")) {
        if e == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(e).unwrap();
        let d = &v["choices"][0]["delta"];
        thinking += d["reasoning_content"].as_str().unwrap_or("");
        content += d["content"].as_str().unwrap_or("");
        assert!(
            !d["content"].as_str().unwrap_or("").contains("think"),
            "{e}"
        );
    }
    assert_eq!((thinking.as_str(), content.trim()), ("abc", "\"xyz\""));
}

#[tokio::test]
async fn ollama_thinking_whole_and_streamed() {
    let (app, _d) = app().await;
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
        "format": schema(), "think": true, "stream": false});
    let (s, b) = raw(&app, "/api/chat", body.clone()).await;
    assert_eq!(s, StatusCode::OK);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["message"]["thinking"], "abc", "{v}");
    assert_eq!(
        v["message"]["content"].as_str().unwrap().trim(),
        "\"xyz\"",
        "{v}"
    );

    let mut streamed = body;
    streamed["stream"] = json!(true);
    let (s, b) = raw(&app, "/api/chat", streamed).await;
    assert_eq!(s, StatusCode::OK);
    let (mut thinking, mut content) = (String::new(), String::new());
    for l in String::from_utf8(b.to_vec()).unwrap().lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        thinking += v["message"]["thinking"].as_str().unwrap_or("");
        content += v["message"]["content"].as_str().unwrap_or("");
    }
    assert_eq!((thinking.as_str(), content.trim()), ("abc", "\"xyz\""));

    // `think: false` renders the template's switch and is accepted; a
    // level is accepted; anything else is refused.
    for think in [json!(false), json!("high")] {
        let b = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
            "think": think, "stream": false, "options": {"num_predict": 2}});
        let (s, body) = raw(&app, "/api/chat", b).await;
        assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    }
    let b = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "think": 3});
    assert_eq!(raw(&app, "/api/chat", b).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn native_tools_render_and_tool_history_is_accepted() {
    let (app, _d) = app().await;
    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    let msgs = json!([
        {"role": "user", "content": "Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]);
    for (uri, extra) in [
        ("/v1/chat/completions", json!({"max_tokens": 3})),
        ("/api/chat", json!({"options": {"num_predict": 3}})),
    ] {
        let mut b = json!({"model": MODEL, "messages": msgs, "tools": tools, "stream": false});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (s, body) = raw(&app, uri, b).await;
        assert_eq!(
            s,
            StatusCode::OK,
            "{uri}: {}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[tokio::test]
async fn show_lists_thinking_for_a_reasoning_template() {
    let (app, _d) = app().await;
    let (s, b) = raw(&app, "/api/show", json!({"model": MODEL})).await;
    assert_eq!(s, StatusCode::OK);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        v["capabilities"],
        json!(["completion", "tools", "thinking"]),
        "{v}"
    );
}
