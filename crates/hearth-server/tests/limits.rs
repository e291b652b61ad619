//! Bounds on what one request may cost: a model whose chat template loops
//! without end is answered with a 400 naming the template's budget (and
//! the server goes on serving), and an embedding request may hold as many
//! inputs as free memory holds their vectors.
#![allow(clippy::unwrap_used)]

use axum::http::{Method, StatusCode};
use hearth_model::synth::{build, SynthSpec};
use hearth_model::Arch;
use hearth_server::{router, AppState, ServerConfig};
use serde_json::json;

mod support;
use support::{call, config, synth};

/// The synthetic model with its chat template replaced by `template`
/// (padded to the same length, so the file stays valid).
fn with_template(dir: &tempfile::TempDir, template: &str) -> std::path::PathBuf {
    let mut bytes = build(&SynthSpec::new(Arch::Llama));
    let old = "{% for m in messages %}<|im_start|>";
    let at = bytes
        .windows(old.len())
        .position(|w| w == old.as_bytes())
        .unwrap();
    let end = at
        + bytes[at..]
            .windows(10)
            .position(|w| w == &b"{% endif %}"[..10])
            .unwrap()
        + 11;
    let len = end - at;
    let mut new = template.to_string();
    assert!(new.len() + 5 <= len, "template too long for the slot");
    new += "{#";
    while new.len() < len - 2 {
        new.push(' ');
    }
    new += "#}";
    bytes[at..end].copy_from_slice(new.as_bytes());
    let p = dir.path().join("looping.gguf");
    std::fs::write(&p, bytes).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_chat_template_is_a_400_and_the_server_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = with_template(
        &dir,
        "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
    );
    let st = AppState::new(config(1));
    st.preload(path.to_str().unwrap()).await.unwrap();
    let app = router(st.clone());
    let msgs = json!([{"role": "user", "content": "hi"}]);
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/chat",
        Some(json!({"model": "looping", "messages": msgs})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("budget"), "{body}");
    let (status, body) = call(
        &app,
        Method::POST,
        "/v1/chat/completions",
        Some(json!({"model": "looping", "messages": msgs})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("budget"),
        "{body}"
    );
    let (status, _) = call(&app, Method::GET, "/health", None).await;
    assert_eq!(status, StatusCode::OK);
    let raw = json!({"model": "looping", "prompt": "hello", "raw": true, "stream": false,
                     "options": {"num_predict": 2}});
    let (status, body) = call(&app, Method::POST, "/api/generate", Some(raw)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedding_inputs_are_capped_by_free_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = synth(&dir, "synth");
    let probe = AppState::new(config(1));
    probe.preload(path.to_str().unwrap()).await.unwrap();
    let bytes = probe.models.loaded().await[0].bytes;
    // 64 dimensions, 16 bytes each: 1 KiB per input; leave room for 100.
    let st = AppState::new(ServerConfig {
        memory_budget: Some(hearth_plan::Available {
            bytes: bytes + 100 * 64 * 16,
            source: hearth_plan::MemorySource::Limit,
        }),
        ..config(1)
    });
    st.preload(path.to_str().unwrap()).await.unwrap();
    let app = router(st.clone());
    let inputs = |n: usize| (0..n).map(|i| format!("text {i}")).collect::<Vec<_>>();
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/embed",
        Some(json!({"model": "synth", "input": inputs(100)})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["embeddings"].as_array().unwrap().len(), 100);
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/embed",
        Some(json!({"model": "synth", "input": inputs(101)})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("at most 100"),
        "{body}"
    );
    // More than the old fixed cap of 2048, when memory allows.
    let roomy = AppState::new(config(1));
    roomy.preload(path.to_str().unwrap()).await.unwrap();
    let app = router(roomy);
    let (status, body) = call(
        &app,
        Method::POST,
        "/v1/embeddings",
        Some(json!({"model": "synth", "input": inputs(2500)})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 2500);
}
