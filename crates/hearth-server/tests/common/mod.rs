//! Shared by the security and hostile-request tests: a server over a tiny
//! synthetic model with a store, and one-shot requests through it.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use hearth_model::synth::{build, SynthSpec};
use hearth_model::{Arch, KvType};
use hearth_server::{router, AppState, EngineDefaults, ServerConfig};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// The synthetic model's name in the API.
pub const MODEL: &str = "synth";

pub struct App {
    pub router: Router,
    pub state: AppState,
    /// The synthetic model's file (served by name; a path only with
    /// `allow_paths`).
    pub model_file: PathBuf,
    pub store: Arc<hearth_store::Store>,
    pub dir: tempfile::TempDir,
}

pub fn config() -> ServerConfig {
    ServerConfig {
        engine: EngineDefaults {
            n_parallel: Some(2),
            n_ctx: Some(128),
            kv: KvType::F32,
            threads: 1,
            max_queue: 8,
            deterministic: false,
        },
        ..ServerConfig::default()
    }
}

/// A server with `synth` named at start and an empty store in a temp dir;
/// `edit` adjusts the configuration first.
pub async fn app(edit: impl FnOnce(&mut ServerConfig)) -> App {
    let dir = tempfile::tempdir().unwrap();
    let model_file = dir.path().join("synth.gguf");
    std::fs::write(&model_file, build(&SynthSpec::new(Arch::Llama))).unwrap();
    let store = Arc::new(hearth_store::Store::at(dir.path().join("store")));
    let mut cfg = config();
    cfg.store = Some(store.clone());
    edit(&mut cfg);
    let state = AppState::new(cfg);
    assert_eq!(
        state.preload(model_file.to_str().unwrap()).await.unwrap(),
        MODEL
    );
    App {
        router: router(state.clone()),
        state,
        model_file,
        store,
        dir,
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The error message, checking the body has the shape of `uri`'s API:
    /// `{"error": {"message", "type", ...}}` under `/v1`, `{"error": "..."}`
    /// elsewhere.
    pub fn error_message(&self, uri: &str) -> String {
        let v = self.json();
        let m = if uri.starts_with("/v1") {
            assert!(v["error"]["type"].is_string(), "{uri}: {v}");
            v["error"]["message"].as_str()
        } else {
            v["error"].as_str()
        };
        m.unwrap_or_else(|| panic!("{uri}: not an error in its API's shape: {}", self.text()))
            .to_string()
    }
}

pub async fn send(app: &Router, req: Request<Body>) -> Reply {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
    send(app, req.body(body).unwrap()).await
}

/// A short greedy generation that must succeed: the server is healthy.
pub async fn healthy(app: &Router) {
    let r = call(app, Method::GET, "/health", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = serde_json::json!({"model": MODEL, "prompt": "hello", "raw": true,
        "stream": false, "options": {"temperature": 0, "num_predict": 2}});
    let r = call(app, Method::POST, "/api/generate", Some(&body), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["done"], Value::Bool(true), "{}", r.text());
}
