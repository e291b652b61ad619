//! Every route through the whole service (`tower::ServiceExt::oneshot`, no
//! sockets) on a tiny synthetic model: shapes, streaming framing, errors,
//! auth, CORS, keep_alive and truncation.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use hearth_model::synth::{build, SynthSpec};
use hearth_model::{Arch, KvType};
use hearth_server::{router, AppState, EngineDefaults, KeepAlive, ServerConfig};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const MODEL: &str = "synth";

fn synth_file(dir: &tempfile::TempDir) -> PathBuf {
    let p = dir.path().join("synth.gguf");
    std::fs::write(&p, build(&SynthSpec::new(Arch::Llama))).unwrap();
    p
}

fn config() -> ServerConfig {
    ServerConfig {
        engine: EngineDefaults {
            n_parallel: Some(2),
            n_ctx: Some(128),
            kv: KvType::F32,
            threads: 1,
            max_queue: 4,
            deterministic: false,
        },
        max_body: 64 * 1024,
        ..ServerConfig::default()
    }
}

async fn app_with(cfg: ServerConfig) -> (Router, AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = synth_file(&dir);
    let st = AppState::new(cfg);
    assert_eq!(st.preload(path.to_str().unwrap()).await.unwrap(), MODEL);
    (router(st.clone()), st, dir)
}

async fn app() -> (Router, AppState, tempfile::TempDir) {
    app_with(config()).await
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Bytes) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, bytes)
}

async fn post(app: &Router, uri: &str, body: Value) -> (StatusCode, Value) {
    let (s, _, b) = call(app, Method::POST, uri, Some(body), &[]).await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    let (s, _, b) = call(app, Method::GET, uri, None, &[]).await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

fn ndjson(b: &Bytes) -> Vec<Value> {
    std::str::from_utf8(b)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The `data:` payloads of an SSE body; checks the framing on the way.
fn sse(b: &Bytes) -> Vec<String> {
    let text = std::str::from_utf8(b).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn root_version_health() {
    let (app, _, _d) = app().await;
    let (s, _, b) = call(&app, Method::GET, "/", None, &[]).await;
    assert_eq!((s, &b[..]), (StatusCode::OK, &b"Ollama is running"[..]));
    let (s, _, _) = call(&app, Method::HEAD, "/", None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = get(&app, "/api/version").await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["version"].is_string());
    let (s, v) = get(&app, "/health").await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ok")));
}

#[tokio::test]
async fn generate_shapes_and_streaming() {
    let (app, _, _d) = app().await;
    let req = json!({"model": MODEL, "prompt": "hello world", "raw": true,
                     "options": {"temperature": 0, "num_predict": 6}});
    let mut one = req.clone();
    one["stream"] = json!(false);
    let (s, v) = post(&app, "/api/generate", one).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for k in [
        "model",
        "created_at",
        "response",
        "done",
        "done_reason",
        "context",
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    ] {
        assert!(v.get(k).is_some(), "missing {k} in {v}");
    }
    assert_eq!(v["done"], json!(true));
    assert_eq!(v["eval_count"], json!(6));
    assert_eq!(v["done_reason"], json!("length"));
    let (s, h, b) = call(&app, Method::POST, "/api/generate", Some(req), &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "application/x-ndjson");
    let lines = ndjson(&b);
    let (last, chunks) = lines.split_last().unwrap();
    assert!(chunks.iter().all(|c| c["done"] == json!(false)));
    assert_eq!(last["done"], json!(true));
    let text: String = chunks
        .iter()
        .map(|c| c["response"].as_str().unwrap())
        .collect();
    assert_eq!(
        text,
        v["response"].as_str().unwrap(),
        "greedy: same text streamed or not"
    );
    assert!(last["eval_duration"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn chat_both_apis() {
    let (app, _, _d) = app().await;
    let msgs =
        json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]);
    let (s, v) = post(
        &app,
        "/api/chat",
        json!({"model": MODEL, "messages": msgs, "stream": false,
        "options": {"num_predict": 4, "seed": 1}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["message"]["role"], json!("assistant"));
    assert!(v["message"]["content"].is_string());
    assert_eq!(v["done"], json!(true));

    let (s, v) = post(
        &app,
        "/v1/chat/completions",
        json!({"model": MODEL, "messages": msgs,
        "max_tokens": 4, "seed": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["object"], json!("chat.completion"));
    assert_eq!(v["choices"][0]["message"]["role"], json!("assistant"));
    assert_eq!(v["choices"][0]["finish_reason"], json!("length"));
    assert_eq!(v["usage"]["completion_tokens"], json!(4));

    let (s, h, b) = call(
        &app,
        Method::POST,
        "/v1/chat/completions",
        Some(json!({"model": MODEL,
        "messages": msgs, "max_tokens": 4, "stream": true,
        "stream_options": {"include_usage": true}})),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "text/event-stream");
    let events = sse(&b);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let objs: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(objs
        .iter()
        .all(|o| o["object"] == json!("chat.completion.chunk")));
    assert_eq!(objs[0]["choices"][0]["delta"]["role"], json!("assistant"));
    let usage = objs.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], json!(4));
    assert_eq!(
        objs[objs.len() - 2]["choices"][0]["finish_reason"],
        json!("length")
    );

    let (s, v) = post(
        &app,
        "/v1/completions",
        json!({"model": MODEL, "prompt": "hello", "max_tokens": 3}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["object"], json!("text_completion"));
    assert!(v["choices"][0]["text"].is_string());
}

#[tokio::test]
async fn embeddings_both_apis() {
    let (app, _, _d) = app().await;
    let (s, v) = post(
        &app,
        "/api/embed",
        json!({"model": MODEL, "input": ["hello", "world"]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let e = v["embeddings"].as_array().unwrap();
    assert_eq!(e.len(), 2);
    let norm: f64 = e[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap().powi(2))
        .sum();
    assert!((norm - 1.0).abs() < 1e-3, "L2-normalised: {norm}");
    let (s, v) = post(
        &app,
        "/api/embeddings",
        json!({"model": MODEL, "prompt": "hello"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["embedding"].as_array().unwrap().len(), 64);
    let (s, v) = post(
        &app,
        "/v1/embeddings",
        json!({"model": MODEL, "input": "hello"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["object"], json!("list"));
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 64);
    let (s, v) = post(
        &app,
        "/v1/embeddings",
        json!({"model": MODEL, "input": "hello", "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["data"][0]["embedding"].as_str().unwrap().len(),
        256_usize.div_ceil(3) * 4
    );
}

#[tokio::test]
async fn model_listing_routes() {
    let (app, _, _d) = app().await;
    let (_, v) = get(&app, "/api/tags").await;
    assert_eq!(v["models"][0]["name"], json!(MODEL));
    assert_eq!(v["models"][0]["details"]["format"], json!("gguf"));
    let (_, v) = get(&app, "/api/ps").await;
    assert_eq!(v["models"][0]["model"], json!(MODEL));
    assert!(v["models"][0]["expires_at"].is_string());
    let (s, v) = post(&app, "/api/show", json!({"model": MODEL})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["model_info"]["general.architecture"], json!("llama"));
    let (_, v) = get(&app, "/v1/models").await;
    assert_eq!(v["data"][0]["id"], json!(MODEL));
    let (s, v) = get(&app, "/v1/models/synth").await;
    assert_eq!((s, v["object"].as_str()), (StatusCode::OK, Some("model")));
    let (s, v) = get(&app, "/v1/models/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], json!("model_not_found"));
    let (s, _) = post(
        &app,
        "/api/copy",
        json!({"source": MODEL, "destination": "alias"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = get(&app, "/api/tags").await;
    assert_eq!(v["models"].as_array().unwrap().len(), 2);
    let (s, _, _) = call(
        &app,
        Method::DELETE,
        "/api/delete",
        Some(json!({"model": "alias"})),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, b) = call(
        &app,
        Method::DELETE,
        "/api/delete",
        Some(json!({"model": "alias"})),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b:?}");
    let (s, v) = post(
        &app,
        "/tokenize",
        json!({"model": MODEL, "content": "hello world"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let tokens = v["tokens"].clone();
    let (s, v) = post(
        &app,
        "/detokenize",
        json!({"model": MODEL, "tokens": tokens}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["content"].as_str().unwrap().contains("hello world"));
    let (s, v) = post(
        &app,
        "/detokenize",
        json!({"model": MODEL, "tokens": [999999]}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _, b) = call(&app, Method::GET, "/metrics", None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    let text = String::from_utf8(b.to_vec()).unwrap();
    assert!(
        text.contains("hearth_requests_total{route=\"/api/tags\",status=\"200\"}"),
        "{text}"
    );
    assert!(text.contains("hearth_active_sequences 0"));
}

#[tokio::test]
async fn errors_are_json_in_each_shape() {
    let (app, _, _d) = app().await;
    let (s, v) = post(
        &app,
        "/api/generate",
        json!({"model": "missing", "prompt": "x"}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"], json!("model 'missing' not found"));
    let (s, v) = post(
        &app,
        "/v1/chat/completions",
        json!({"model": "missing", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["error"]["message"].is_string() && v["error"]["type"].is_string());
    for uri in ["/api/chat", "/v1/chat/completions"] {
        let req = Request::post(uri).body(Body::from("{not json")).unwrap();
        let r = app.clone().oneshot(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let b = r.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert!(
            v["error"].is_string() || v["error"]["message"].is_string(),
            "{v}"
        );
    }
    let big = "x".repeat(100 * 1024);
    let (s, _, b) = call(
        &app,
        Method::POST,
        "/v1/completions",
        Some(json!({"model": MODEL, "prompt": big})),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--max-body"));
    let (s, v) = get(&app, "/no/such/route").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["error"].is_string());
    let (s, v) = post(
        &app,
        "/api/generate",
        json!({"model": MODEL, "prompt": "x", "options": {"temperature": -1}}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = post(
        &app,
        "/api/generate",
        json!({"model": MODEL, "prompt": "x", "template": "{{ range .Messages }}"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("range"));
    let (s, _) = post(
        &app,
        "/api/generate",
        json!({"model": MODEL, "prompt": "x", "keep_alive": "soon"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = post(
        &app,
        "/v1/chat/completions",
        json!({"model": MODEL, "messages": [{"role": "user", "content": "x"}], "n": 99}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = post(
        &app,
        "/api/generate",
        json!({"model": MODEL, "prompt": "x", "format": 7}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn api_key_and_cors() {
    let cfg = ServerConfig {
        api_key: Some("sekrit".into()),
        extra_origins: vec!["https://app.example".into()],
        ..config()
    };
    let (app, _, _d) = app_with(cfg).await;
    let (s, _, _) = call(&app, Method::GET, "/", None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = call(&app, Method::GET, "/health", None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, b) = call(&app, Method::GET, "/api/tags", None, &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(serde_json::from_slice::<Value>(&b).unwrap()["error"].is_string());
    let (s, _, b) = call(
        &app,
        Method::GET,
        "/v1/models",
        None,
        &[("authorization", "Bearer wrong")],
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        serde_json::from_slice::<Value>(&b).unwrap()["error"]["code"],
        json!("invalid_api_key")
    );
    let (s, _, _) = call(
        &app,
        Method::GET,
        "/v1/models",
        None,
        &[("authorization", "Bearer sekrit")],
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    let preflight = |origin: &'static str| {
        let app = app.clone();
        async move {
            let (s, h, _) = call(
                &app,
                Method::OPTIONS,
                "/v1/chat/completions",
                None,
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                    (
                        "access-control-request-headers",
                        "authorization,content-type",
                    ),
                ],
            )
            .await;
            (
                s,
                h.get("access-control-allow-origin")
                    .map(|v| v.to_str().unwrap().to_string()),
            )
        }
    };
    let (s, allow) = preflight("http://localhost:5173").await;
    assert!(s.is_success());
    assert_eq!(allow.as_deref(), Some("http://localhost:5173"));
    assert_eq!(
        preflight("https://app.example").await.1.as_deref(),
        Some("https://app.example")
    );
    assert_eq!(preflight("https://evil.example").await.1, None);
}

#[tokio::test]
async fn keep_alive_load_and_unload() {
    let (app, st, _d) = app().await;
    let (s, v) = post(
        &app,
        "/api/generate",
        json!({"model": MODEL, "keep_alive": 0}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["done_reason"], json!("unload"));
    assert!(st.models.loaded().await.is_empty());
    let (s, v) = post(&app, "/api/chat", json!({"model": MODEL, "messages": []})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["done_reason"], json!("load"));
    assert_eq!(st.models.loaded().await.len(), 1);
    // A request that asks to be unloaded afterwards, then the reaper.
    let (s, _) = post(
        &app,
        "/api/generate",
        json!({"model": MODEL, "prompt": "hello", "stream": false,
        "keep_alive": "0s", "options": {"num_predict": 2}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    st.models.reap().await;
    assert!(st.models.loaded().await.is_empty());
    // Forever: never expires.
    let (_, _) = post(
        &app,
        "/api/generate",
        json!({"model": MODEL, "keep_alive": -1}),
    )
    .await;
    st.models.reap().await;
    let (_, v) = get(&app, "/api/ps").await;
    assert!(v["models"][0]["expires_at"]
        .as_str()
        .unwrap()
        .starts_with("9999"));
    let _ = KeepAlive::For(Duration::from_secs(1));
}

#[tokio::test]
async fn over_context_is_400_unless_truncated() {
    let (app, _, _d) = app().await;
    let long = "hello world ".repeat(100);
    let (s, v) = post(
        &app,
        "/api/generate",
        json!({"model": MODEL, "prompt": long, "raw": true, "stream": false}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let msg = v["error"].as_str().unwrap();
    assert!(msg.contains("128") && msg.contains("tokens"), "{msg}");
    let (s, h, b) = call(
        &app,
        Method::POST,
        "/api/generate",
        Some(json!({"model": MODEL, "prompt": long,
        "raw": true, "stream": false, "truncate": true, "options": {"num_predict": 2}})),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let v: Value = serde_json::from_slice(&b).unwrap();
    let dropped = v["truncated_tokens"].as_u64().unwrap();
    assert!(dropped > 0);
    assert_eq!(
        h["x-hearth-truncated-tokens"].to_str().unwrap(),
        dropped.to_string()
    );
    assert!(v["prompt_eval_count"].as_u64().unwrap() <= 96);
    let (s, v) = post(
        &app,
        "/v1/chat/completions",
        json!({"model": MODEL, "messages": [{"role": "user", "content": long}]}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"]["message"].as_str().unwrap().contains("128"));
}

#[tokio::test]
async fn queue_full_is_503_with_retry_after() {
    let cfg = ServerConfig {
        engine: EngineDefaults {
            n_parallel: Some(1),
            max_queue: 0,
            deterministic: false,
            ..config().engine
        },
        ..config()
    };
    let (app, _, _d) = app_with(cfg).await;
    // One slot and no queue: of a burst of requests sent at once, those
    // that find the slot taken are refused at once rather than left waiting.
    let burst = (0..12).map(|_| {
        call(
            &app,
            Method::POST,
            "/v1/completions",
            Some(json!({"model": MODEL, "prompt": "hello", "max_tokens": 100})),
            &[],
        )
    });
    let results = futures_util::future::join_all(burst).await;
    let mut refused = 0;
    for (s, h, b) in &results {
        match *s {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                refused += 1;
                assert!(h.contains_key("retry-after"), "{h:?}");
                let v: Value = serde_json::from_slice(b).unwrap();
                assert!(v["error"]["message"].is_string(), "{v}");
            }
            other => panic!("unexpected {other}: {b:?}"),
        }
    }
    assert!(refused > 0, "no request refused");
    assert!(refused < results.len(), "every request refused");
}

/// `/api/plan`: the memory verdict before a load, nothing loaded.
#[tokio::test]
async fn plan_gives_the_verdict_before_a_load() {
    let (app, _, _d) = app().await;
    let (s, v) = post(&app, "/api/plan", json!({"model": MODEL})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["fits"], json!(true));
    let need = v["need_bytes"].as_u64().unwrap();
    assert!(need > 0 && need <= v["have_bytes"].as_u64().unwrap());
    assert_eq!(v["plan"]["n_ctx"], json!(128));
    assert!(v["message"].as_str().unwrap().starts_with("fits"), "{v}");
    for (body, want) in [
        (json!({"model": "nope"}), StatusCode::NOT_FOUND),
        (json!({"model": "/etc/passwd"}), StatusCode::NOT_FOUND),
        (json!({"model": ""}), StatusCode::BAD_REQUEST),
        (json!({"model": MODEL, "extra": 1}), StatusCode::BAD_REQUEST),
        (json!({"model": 7}), StatusCode::BAD_REQUEST),
    ] {
        let (s, v) = post(&app, "/api/plan", body.clone()).await;
        assert_eq!(s, want, "{body} -> {v}");
        assert!(v["error"].is_string() || v["error"].is_object(), "{v}");
    }

    // A server with 1 MB to spend: the model is known, not loaded, and
    // the verdict names both sizes.
    let dir = tempfile::tempdir().unwrap();
    let path = synth_file(&dir);
    let st = AppState::new(ServerConfig {
        memory_budget: Some(hearth_plan::Available {
            bytes: 1 << 20,
            source: hearth_plan::MemorySource::Unknown,
        }),
        ..config()
    });
    st.models.register_file(&path);
    let app = router(st.clone());
    let (s, v) = post(&app, "/api/plan", json!({"model": MODEL})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["fits"], json!(false));
    assert_eq!(v["have_bytes"], json!(1u64 << 20));
    assert!(v["need_bytes"].as_u64().unwrap() > 1 << 20);
    let m = v["message"].as_str().unwrap();
    assert!(m.starts_with("needs ") && m.contains(", you have "), "{m}");
    assert!(st.models.loaded().await.is_empty());
}
