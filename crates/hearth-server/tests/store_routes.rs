//! The routes over a model store (`tower::ServiceExt::oneshot`, no
//! sockets) on a tiny synthetic model installed as `base`: a file loaded by
//! path is the store's `base` (one name, one digest, listed once),
//! `/api/create` (structured fields and Modelfile text, refusals),
//! Modelfile settings applied to requests, `/api/show` and `/v1/models`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use hearth_model::synth::{build, SynthSpec};
use hearth_model::{Arch, KvType};
use hearth_server::{router, AppState, EngineDefaults, ServerConfig};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// The service with a store holding the synthetic model as `base`, the
/// file also preloaded by its path; with the blob's sha256.
async fn app() -> (Router, String, tempfile::TempDir) {
    app_ctx(Some(128)).await
}

/// [`app`] with `--ctx` as given.
async fn app_ctx(n_ctx: Option<usize>) -> (Router, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("synth.gguf");
    std::fs::write(&file, build(&SynthSpec::new(Arch::Llama))).unwrap();
    let store = hearth_store::Store::at(dir.path().join("store"));
    let m = store.import(&file, Some("base")).unwrap();
    let cfg = ServerConfig {
        engine: EngineDefaults {
            n_parallel: Some(1),
            n_ctx,
            kv: KvType::F32,
            threads: 1,
            max_queue: 4,
            deterministic: false,
        },
        store: Some(Arc::new(store)),
        ..ServerConfig::default()
    };
    let st = AppState::new(cfg);
    // Loaded by path, the file is the store's `base`.
    assert_eq!(st.preload(file.to_str().unwrap()).await.unwrap(), "base");
    (router(st), m.sha256, dir)
}

/// One request; the body as JSON, or each NDJSON line's JSON as an array.
async fn call(app: &Router, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(body)
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        let text = String::from_utf8_lossy(&bytes);
        Value::Array(
            text.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect(),
        )
    });
    (status, v)
}

/// `/api/generate` of "hello" with `model`: the answer and the text of
/// the prompt it evaluated (its `context`, detokenized).
async fn generate(app: &Router, model: &str) -> (Value, String) {
    let body = json!({"model": model, "prompt": "hello", "stream": false});
    let (s, v) = call(app, Method::POST, "/api/generate", Some(body)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let tokens = json!({"model": model, "tokens": v["context"]});
    let (_, text) = call(app, Method::POST, "/detokenize", Some(tokens)).await;
    let prompt = text["content"].as_str().unwrap().to_string();
    (v, prompt)
}

#[tokio::test]
async fn a_file_loaded_by_path_is_its_store_entry() {
    let (app, sha, _d) = app().await;
    let (_, tags) = call(&app, Method::GET, "/api/tags", None).await;
    let names: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["base:latest"]);
    assert_eq!(tags["models"][0]["digest"], json!(sha));
    let (_, ps) = call(&app, Method::GET, "/api/ps", None).await;
    assert_eq!(ps["models"][0]["name"], json!("base"));
    assert_eq!(ps["models"][0]["digest"], json!(sha));
    // The file's own stem still finds the same loaded model.
    let (s, _) = call(
        &app,
        Method::POST,
        "/api/generate",
        Some(json!({"model": "synth", "keep_alive": 0})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, ps) = call(&app, Method::GET, "/api/ps", None).await;
    assert_eq!(
        ps["models"],
        json!([]),
        "stopping by the file's name stops base"
    );
}

#[tokio::test]
async fn create_show_and_the_settings_applied() {
    let (app, _, _d) = app().await;
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/create",
        Some(json!({
            "model": "tiny", "from": "base", "system": "Be brief.",
            "parameters": {"num_predict": 3, "temperature": 0, "stop": ["\n\n"]},
            "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
            "license": ["MIT", "Apache-2.0"], "stream": false,
        })),
    )
    .await;
    assert_eq!((s, v), (StatusCode::OK, json!({"status": "success"})));
    let (v, prompt) = generate(&app, "tiny").await;
    assert!(v["eval_count"].as_u64().unwrap() <= 3, "{v}");
    // The prompt held the system message and the example messages.
    for part in ["Be brief.", "hi", "yo", "hello"] {
        assert!(
            prompt.contains(part),
            "{part:?} not in the prompt {prompt:?}"
        );
    }
    // The request's own options still win.
    let (_, v) = call(
        &app,
        Method::POST,
        "/api/generate",
        Some(json!({"model": "tiny", "prompt": "hello", "stream": false,
                    "options": {"num_predict": 1}})),
    )
    .await;
    assert_eq!(v["eval_count"], json!(1), "{v}");
    let (_, v) = call(
        &app,
        Method::POST,
        "/v1/completions",
        Some(json!({"model": "tiny", "prompt": "hello"})),
    )
    .await;
    assert!(
        v["usage"]["completion_tokens"].as_u64().unwrap() <= 3,
        "{v}"
    );

    let (s, v) = call(
        &app,
        Method::POST,
        "/api/show",
        Some(json!({"model": "tiny"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["capabilities"], json!(["completion", "tools"]));
    assert_eq!(v["system"], json!("Be brief."));
    assert_eq!(v["license"], json!("MIT\nApache-2.0"));
    assert_eq!(v["details"]["parent_model"], json!("base"));
    assert_eq!(v["messages"][1]["content"], json!("yo"));
    let params = v["parameters"].as_str().unwrap();
    assert!(
        params
            .lines()
            .any(|l| l.split_whitespace().eq(["num_predict", "3"])),
        "{params}"
    );
    assert!(
        v["modelfile"]
            .as_str()
            .unwrap()
            .contains("SYSTEM Be brief."),
        "{v}"
    );

    // A TEMPLATE takes the chat template's place.
    let body = json!({"model": "tpl", "from": "tiny", "template": "<<{{ .System }}|{{ .Prompt }}>>", "stream": false});
    let (s, _) = call(&app, Method::POST, "/api/create", Some(body)).await;
    assert_eq!(s, StatusCode::OK);
    let (_, prompt) = generate(&app, "tpl").await;
    assert!(prompt.contains("<<Be brief.|hello>>"), "{prompt:?}");

    // The older form: Modelfile text; streamed, ending in success.
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/create",
        Some(json!({"model": "t2", "modelfile": "FROM tiny\nPARAMETER temperature 0.5\n"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // One NDJSON line (parsed whole) or several: the last says success.
    let last = v.as_array().and_then(|a| a.last()).unwrap_or(&v);
    assert_eq!(last["status"], json!("success"), "{v}");
    let (_, v) = call(
        &app,
        Method::POST,
        "/api/show",
        Some(json!({"model": "t2"})),
    )
    .await;
    let params = v["parameters"].as_str().unwrap();
    assert!(
        params
            .lines()
            .any(|l| l.split_whitespace().eq(["temperature", "0.5"])),
        "{params}"
    );
    assert!(
        params
            .lines()
            .any(|l| l.split_whitespace().eq(["num_predict", "3"])),
        "{params}"
    );

    // Every store model is listed by /v1/models and found by id.
    let (_, v) = call(&app, Method::GET, "/v1/models", None).await;
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["base:latest", "t2:latest", "tiny:latest", "tpl:latest"]
    );
    let (s, _) = call(&app, Method::GET, "/v1/models/t2", None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn create_refusals_are_clear() {
    let (app, _, _d) = app().await;
    for (body, status, needle) in [
        (
            json!({"model": "x", "from": "base", "adapters": {"a": "b"}}),
            400,
            "LoRA",
        ),
        (
            json!({"model": "x", "from": "base", "quantize": "q4_0"}),
            400,
            "quantize",
        ),
        (
            json!({"model": "x", "from": "base", "files": {"a.gguf": "sha256:00"}}),
            400,
            "files",
        ),
        (
            json!({"model": "x", "from": "base", "parameters": {"bogus": 1}}),
            400,
            "unknown parameter 'bogus'",
        ),
        (
            json!({"model": "x", "from": "base", "parameters": {"top_k": "many"}}),
            400,
            "whole number",
        ),
        (
            json!({"model": "x", "from": "base", "template": "{{ .Messages }}"}),
            400,
            "unsupported",
        ),
        (
            json!({"model": "x", "from": "base", "messages": [{"role": "robot", "content": "x"}]}),
            400,
            "role",
        ),
        (json!({"model": "x"}), 400, "from is required"),
        (json!({"from": "base"}), 400, "model is required"),
        (
            json!({"model": "x", "modelfile": "FROM base\nADAPTER a.gguf\n"}),
            400,
            "line 2",
        ),
        (json!({"model": "x", "from": "nothere"}), 404, "nothere"),
        (
            json!({"model": "bad name!", "from": "base"}),
            400,
            "invalid model name",
        ),
    ] {
        let (s, v) = call(&app, Method::POST, "/api/create", Some(body.clone())).await;
        assert_eq!(s.as_u16(), status, "{body}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{body}: {msg}");
    }
}

#[tokio::test]
async fn a_modelfile_num_ctx_sizes_the_model_unless_ctx_does() {
    for (ctx, want) in [(None, 64), (Some(128), 128)] {
        let (app, _, _d) = app_ctx(ctx).await;
        let body = json!({"model": "short", "from": "base", "parameters": {"num_ctx": 64}, "stream": false});
        let (s, _) = call(&app, Method::POST, "/api/create", Some(body)).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = call(
            &app,
            Method::POST,
            "/api/generate",
            Some(json!({"model": "short"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let (_, ps) = call(&app, Method::GET, "/api/ps", None).await;
        let short = ps["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "short")
            .cloned()
            .unwrap();
        assert_eq!(short["context_length"], json!(want), "--ctx {ctx:?}");
    }
}
