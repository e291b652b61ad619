//! Feeds arbitrary request bodies to every route of the whole service
//! (`hearth_server::router`, through `oneshot`, no socket) over a tiny
//! synthetic model. The first byte picks the route and method, the second
//! the content type and a few headers; the rest is the body. It must never
//! panic (a handler panic would come back as a 500), and a 5xx must never
//! come from a malformed body: only `/api/pull` may answer 5xx (the store
//! cannot reach the network here).

#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use hearth_model::synth::{build, SynthSpec};
use hearth_model::{Arch, KvType};
use hearth_server::{router, AppState, EngineDefaults, ServerConfig};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const ROUTES: [(&str, &str); 24] = [
    ("POST", "/api/generate"),
    ("POST", "/api/chat"),
    ("POST", "/api/embed"),
    ("POST", "/api/embeddings"),
    ("POST", "/api/show"),
    ("DELETE", "/api/delete"),
    ("POST", "/api/copy"),
    ("POST", "/api/pull"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/completions"),
    ("POST", "/v1/embeddings"),
    ("POST", "/tokenize"),
    ("POST", "/detokenize"),
    ("GET", "/"),
    ("GET", "/api/version"),
    ("GET", "/api/tags"),
    ("GET", "/api/ps"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/synth"),
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("PUT", "/api/generate"),
    ("POST", "/api/create"),
    ("OPTIONS", "/v1/chat/completions"),
];

const HEADERS: [&[(&str, &str)]; 8] = [
    &[],
    &[("content-type", "application/json")],
    &[("content-type", "text/plain")],
    &[("content-type", "application/x-www-form-urlencoded")],
    &[("origin", "http://localhost:3000")],
    &[("origin", "https://evil.example")],
    &[("host", "attacker.example")],
    &[
        ("sec-fetch-site", "cross-site"),
        ("content-type", "text/plain"),
    ],
];

struct Fixture {
    rt: tokio::runtime::Runtime,
    app: Router,
    _dir: std::path::PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // The store must never reach the network.
        std::env::set_var("HEARTH_OFFLINE", "1");
        let dir = std::env::temp_dir().join(format!("hearth-fuzz-api-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("synth.gguf");
        std::fs::write(&file, build(&SynthSpec::new(Arch::Llama))).expect("model");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let cfg = ServerConfig {
            engine: EngineDefaults {
                n_parallel: Some(2),
                n_ctx: Some(32),
                kv: KvType::F32,
                threads: 1,
                max_queue: 8,
                deterministic: false,
            },
            max_body: 64 * 1024,
            store: Some(std::sync::Arc::new(hearth_store::Store::at(
                dir.join("store"),
            ))),
            ..ServerConfig::default()
        };
        let state = AppState::new(cfg);
        rt.block_on(state.preload(file.to_str().expect("utf-8")))
            .expect("preload");
        Fixture {
            rt,
            app: router(state),
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let (route, headers, body) = match data {
        [r, h, body @ ..] => (*r, *h, body),
        _ => return,
    };
    let (method, uri) = ROUTES[route as usize % ROUTES.len()];
    let mut req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("method"))
        .uri(uri);
    for (k, v) in HEADERS[headers as usize % HEADERS.len()] {
        req = req.header(*k, *v);
    }
    let req = req.body(Body::from(body.to_vec())).expect("request");
    let app = f.app.clone();
    let (status, bytes) = f.rt.block_on(async move {
        let resp = app.oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.map(|b| b.to_bytes());
        (status, bytes)
    });
    let bytes = bytes.expect("the body streams to its end");
    if status.is_server_error() {
        assert!(
            uri == "/api/pull",
            "{method} {uri} answered {status} to {:?}: {}",
            String::from_utf8_lossy(body),
            String::from_utf8_lossy(&bytes)
        );
    }
    if status.is_client_error() || status.is_server_error() {
        // Every error is JSON in its API's shape.
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON error body");
        assert!(v.get("error").is_some(), "{v}");
    }
});
