//! Helpers shared by the server's test files: a small engine setup, the
//! synthetic model on disk, and one call through the whole router.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use hearth_model::synth::{build, SynthSpec};
use hearth_model::{Arch, KvType};
use hearth_server::{EngineDefaults, ServerConfig};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// One thread, small contexts, `n_parallel` sequences; requests may name
/// models by path (these tests load files from temporary folders).
pub fn config(n_parallel: usize) -> ServerConfig {
    ServerConfig {
        security: hearth_server::Security {
            allow_paths: true,
            ..Default::default()
        },
        engine: EngineDefaults {
            n_parallel: Some(n_parallel),
            n_ctx: Some(128),
            kv: KvType::F32,
            threads: 1,
            max_queue: 4,
            deterministic: false,
        },
        ..ServerConfig::default()
    }
}

/// The synthetic Llama written as `<name>.gguf` in `dir`.
pub fn synth(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    let p = dir.path().join(format!("{name}.gguf"));
    std::fs::write(&p, build(&SynthSpec::new(Arch::Llama))).unwrap();
    p
}

/// One request through the router; the status and the JSON body (null
/// when it is not JSON).
pub async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(body)
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}
